"""GDSII stream record types: the one table (tag, name, data type) everything else derives from.

A record is ``uint16 length (big endian, header included) | uint8 type | uint8 data type | data``.
Data types: 0 no data, 1 bit array, 2 int16, 3 int32, 4 real4 (unused), 5 real8, 6 ASCII.
The table covers every record of the GDSII stream format release 6/7 (0x00 .. 0x3B).
"""
from __future__ import annotations

import numpy as np

NODATA, BITARRAY, INT2, INT4, REAL4, REAL8, ASCII = 0, 1, 2, 3, 4, 5, 6
DATATYPE_NAMES = ("no data", "bit array", "int16", "int32", "real4", "real8", "ASCII")

# (tag, name, data type)
RECORDS = (
    (0x00, "HEADER", INT2), (0x01, "BGNLIB", INT2), (0x02, "LIBNAME", ASCII),
    (0x03, "UNITS", REAL8), (0x04, "ENDLIB", NODATA), (0x05, "BGNSTR", INT2),
    (0x06, "STRNAME", ASCII), (0x07, "ENDSTR", NODATA), (0x08, "BOUNDARY", NODATA),
    (0x09, "PATH", NODATA), (0x0A, "SREF", NODATA), (0x0B, "AREF", NODATA),
    (0x0C, "TEXT", NODATA), (0x0D, "LAYER", INT2), (0x0E, "DATATYPE", INT2),
    (0x0F, "WIDTH", INT4), (0x10, "XY", INT4), (0x11, "ENDEL", NODATA),
    (0x12, "SNAME", ASCII), (0x13, "COLROW", INT2), (0x14, "TEXTNODE", NODATA),
    (0x15, "NODE", NODATA), (0x16, "TEXTTYPE", INT2), (0x17, "PRESENTATION", BITARRAY),
    (0x18, "SPACING", INT2), (0x19, "STRING", ASCII), (0x1A, "STRANS", BITARRAY),
    (0x1B, "MAG", REAL8), (0x1C, "ANGLE", REAL8), (0x1D, "UINTEGER", INT4),
    (0x1E, "USTRING", ASCII), (0x1F, "REFLIBS", ASCII), (0x20, "FONTS", ASCII),
    (0x21, "PATHTYPE", INT2), (0x22, "GENERATIONS", INT2), (0x23, "ATTRTABLE", ASCII),
    (0x24, "STYPTABLE", ASCII), (0x25, "STRTYPE", INT2), (0x26, "ELFLAGS", BITARRAY),
    (0x27, "ELKEY", INT4), (0x28, "LINKTYPE", INT2), (0x29, "LINKKEYS", INT4),
    (0x2A, "NODETYPE", INT2), (0x2B, "PROPATTR", INT2), (0x2C, "PROPVALUE", ASCII),
    (0x2D, "BOX", NODATA), (0x2E, "BOXTYPE", INT2), (0x2F, "PLEX", INT4),
    (0x30, "BGNEXTN", INT4), (0x31, "ENDEXTN", INT4), (0x32, "TAPENUM", INT2),
    (0x33, "TAPECODE", INT2), (0x34, "STRCLASS", BITARRAY), (0x35, "RESERVED", INT4),
    (0x36, "FORMAT", INT2), (0x37, "MASK", ASCII), (0x38, "ENDMASKS", NODATA),
    (0x39, "LIBDIRSIZE", INT2), (0x3A, "SRFNAME", ASCII), (0x3B, "LIBSECUR", INT2),
)

NAMES = {tag: name for tag, name, _ in RECORDS}
TAGS = {name: tag for tag, name, _ in RECORDS}
DATATYPES = {tag: dt for tag, _, dt in RECORDS}

# module constants for the kernels (numba freezes globals at compile time)
HEADER, BGNLIB, LIBNAME, UNITS, ENDLIB = 0x00, 0x01, 0x02, 0x03, 0x04
BGNSTR, STRNAME, ENDSTR, BOUNDARY, PATH = 0x05, 0x06, 0x07, 0x08, 0x09
SREF, AREF, TEXT, LAYER, DATATYPE = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E
WIDTH, XY, ENDEL, SNAME, COLROW = 0x0F, 0x10, 0x11, 0x12, 0x13
NODE, TEXTTYPE, STRANS, MAG, ANGLE = 0x15, 0x16, 0x1A, 0x1B, 0x1C
PATHTYPE, PROPATTR, PROPVALUE, BOX, BOXTYPE = 0x21, 0x2B, 0x2C, 0x2D, 0x2E
BGNEXTN, ENDEXTN = 0x30, 0x31
MAX_TAG = 0x3B

# uint8[256]: 1 for a known record type (what the scanner validates every header against)
KNOWN = np.zeros(256, dtype=np.uint8)
KNOWN[[tag for tag, _, _ in RECORDS]] = 1


def name(tag: int) -> str:
    """Record name for a tag, or ``0xNN`` for an unknown one."""
    return NAMES.get(int(tag), f"0x{int(tag):02X}")
