"""A tiny, independent GDSII stream writer for crafting test files record by record.

Written from the GDSII Stream Format (Calma release 6.0) description, without any clipmill code, so
that tests can build valid files and precisely broken variants and know the byte offset of every
record. A record is ``length:uint16 BE`` (including the 4 header bytes), ``record type:uint8``,
``data type:uint8``, then the payload. Data types: 0 none, 1 bit array (2 bytes), 2 int16,
3 int32, 4 real4 (unused), 5 real8 (excess-64 base-16), 6 ASCII (padded with NUL to even length).

    g = GDS()
    g.header(); g.bgnlib(); g.libname("LIB"); g.units(1e-3, 1e-9)
    g.bgnstr("TOP"); g.boundary(1, 0, [(0, 0), (10, 0), (10, 10), (0, 10)]); g.endstr()
    g.endlib()
    data = g.bytes()
    g.offset("XY")        # byte offset of the first XY record, g.offset("XY", 1) the second ...

Every method returns the byte offset of the first record it wrote.
"""
from __future__ import annotations

import math
import struct
from fractions import Fraction

# name -> (record type, data type)
RECORDS = {
    "HEADER": (0x00, 2), "BGNLIB": (0x01, 2), "LIBNAME": (0x02, 6), "UNITS": (0x03, 5),
    "ENDLIB": (0x04, 0), "BGNSTR": (0x05, 2), "STRNAME": (0x06, 6), "ENDSTR": (0x07, 0),
    "BOUNDARY": (0x08, 0), "PATH": (0x09, 0), "SREF": (0x0A, 0), "AREF": (0x0B, 0),
    "TEXT": (0x0C, 0), "LAYER": (0x0D, 2), "DATATYPE": (0x0E, 2), "WIDTH": (0x0F, 3),
    "XY": (0x10, 3), "ENDEL": (0x11, 0), "SNAME": (0x12, 6), "COLROW": (0x13, 2),
    "TEXTNODE": (0x14, 0), "NODE": (0x15, 0), "TEXTTYPE": (0x16, 2), "PRESENTATION": (0x17, 1),
    "SPACING": (0x18, 2), "STRING": (0x19, 6), "STRANS": (0x1A, 1), "MAG": (0x1B, 5),
    "ANGLE": (0x1C, 5), "UINTEGER": (0x1D, 3), "USTRING": (0x1E, 6), "REFLIBS": (0x1F, 6),
    "FONTS": (0x20, 6), "PATHTYPE": (0x21, 2), "GENERATIONS": (0x22, 2), "ATTRTABLE": (0x23, 6),
    "STYPTABLE": (0x24, 6), "STRTYPE": (0x25, 2), "ELFLAGS": (0x26, 1), "ELKEY": (0x27, 3),
    "LINKTYPE": (0x28, 2), "LINKKEYS": (0x29, 3), "NODETYPE": (0x2A, 2), "PROPATTR": (0x2B, 2),
    "PROPVALUE": (0x2C, 6), "BOX": (0x2D, 0), "BOXTYPE": (0x2E, 2), "PLEX": (0x2F, 3),
    "BGNEXTN": (0x30, 3), "ENDEXTN": (0x31, 3), "TAPENUM": (0x32, 2), "TAPECODE": (0x33, 2),
    "STRCLASS": (0x34, 1), "RESERVED": (0x35, 3), "FORMAT": (0x36, 2), "MASK": (0x37, 6),
    "ENDMASKS": (0x38, 0), "LIBDIRSIZE": (0x39, 2), "SRFNAME": (0x3A, 6), "LIBSECUR": (0x3B, 2),
}
NAMES = {rt: name for name, (rt, _) in RECORDS.items()}


def real8(x: float) -> bytes:
    """Encode ``x`` as a GDSII 8-byte real: sign bit, 7-bit excess-64 base-16 exponent, 56-bit
    mantissa m with value = m / 2**56 * 16**(exponent - 64). Exact for every double whose value fits
    (rounded to nearest when the 56-bit mantissa cannot hold it)."""
    if x == 0:
        return b"\0" * 8
    sign = 0x80 if x < 0 else 0
    _, e2 = math.frexp(abs(x))  # abs(x) = m * 2**e2, 0.5 <= m < 1
    e16 = -((-e2) // 4)  # ceil(e2 / 4): abs(x) = f * 16**e16 with 1/16 <= f < 1
    mant = round(Fraction(abs(x)) * 2 ** 56 / Fraction(16) ** e16)  # exact arithmetic
    if mant >= 1 << 56:  # rounding carried over
        mant >>= 4
        e16 += 1
    exp = e16 + 64
    if not 0 <= exp <= 127:
        raise ValueError(f"{x} does not fit a GDSII real")
    return struct.pack(">Q", (sign << 56) | (exp << 56) | mant)


def real8_decode(b: bytes) -> float:
    """Reference decoder (exact: the mantissa has 56 bits, a double 53, so this may round)."""
    (v,) = struct.unpack(">Q", b)
    sign = -1.0 if v >> 63 else 1.0
    exp = (v >> 56) & 0x7F
    mant = v & ((1 << 56) - 1)
    return sign * math.ldexp(mant, 4 * (exp - 64) - 56)


def record(name_or_type, payload: bytes = b"", *, dtype=None, length=None) -> bytes:
    """One record. ``length`` overrides the length field (to craft broken files)."""
    if isinstance(name_or_type, str):
        rt, dt = RECORDS[name_or_type]
    else:
        rt, dt = int(name_or_type), 0
    if dtype is not None:
        dt = dtype
    n = 4 + len(payload) if length is None else length
    return struct.pack(">HBB", n & 0xFFFF, rt, dt) + payload


def ascii_payload(s: str | bytes) -> bytes:
    b = s.encode("latin-1") if isinstance(s, str) else bytes(s)
    return b + b"\0" if len(b) % 2 else b


def i16(*v) -> bytes:
    return struct.pack(f">{len(v)}h", *v)


def i32(*v) -> bytes:
    return struct.pack(f">{len(v)}i", *v)


def xy_payload(points) -> bytes:
    flat = [int(c) for p in points for c in p]
    return i32(*flat)


class GDS:
    """Accumulates records; remembers each record's name and byte offset."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.records: list[tuple[str, int]] = []  # (name, offset)
        self.size = 0

    # -- raw ---------------------------------------------------------------------------------
    def raw(self, data: bytes, name: str = "RAW") -> int:
        off = self.size
        self.chunks.append(bytes(data))
        self.records.append((name, off))
        self.size += len(data)
        return off

    def rec(self, name, payload: bytes = b"", **kw) -> int:
        label = name if isinstance(name, str) else NAMES.get(name, f"0x{int(name):02X}")
        return self.raw(record(name, payload, **kw), label)

    def bytes(self) -> bytes:
        return b"".join(self.chunks)

    def offset(self, name: str, nth: int = 0) -> int:
        hits = [o for n, o in self.records if n == name]
        return hits[nth]

    def offsets(self, name: str) -> list[int]:
        return [o for n, o in self.records if n == name]

    # -- library -----------------------------------------------------------------------------
    def header(self, version=600) -> int:
        return self.rec("HEADER", i16(version))

    def bgnlib(self) -> int:
        return self.rec("BGNLIB", i16(2024, 1, 2, 3, 4, 5, 2024, 1, 2, 3, 4, 5))

    def libname(self, name="LIB") -> int:
        return self.rec("LIBNAME", ascii_payload(name))

    def units(self, user=1e-3, meters=1e-9) -> int:
        return self.rec("UNITS", real8(user) + real8(meters))

    def begin(self, name="LIB", user=1e-3, meters=1e-9) -> int:
        off = self.header()
        self.bgnlib()
        self.libname(name)
        self.units(user, meters)
        return off

    def endlib(self) -> int:
        return self.rec("ENDLIB")

    # -- structures --------------------------------------------------------------------------
    def bgnstr(self, name: str) -> int:
        off = self.rec("BGNSTR", i16(2024, 1, 2, 3, 4, 5, 2024, 1, 2, 3, 4, 5))
        self.rec("STRNAME", ascii_payload(name))
        return off

    def endstr(self) -> int:
        return self.rec("ENDSTR")

    def _props(self, props):
        for attr, value in props or ():
            self.rec("PROPATTR", i16(attr))
            self.rec("PROPVALUE", ascii_payload(value))

    def boundary(self, layer, datatype, points, *, close=True, props=None) -> int:
        pts = list(points)
        if close and tuple(pts[0]) != tuple(pts[-1]):
            pts.append(pts[0])
        off = self.rec("BOUNDARY")
        self.rec("LAYER", i16(layer))
        self.rec("DATATYPE", i16(datatype))
        self.rec("XY", xy_payload(pts))
        self._props(props)
        self.rec("ENDEL")
        return off

    def path(self, layer, datatype, points, width, *, pathtype=None, bgnextn=None, endextn=None,
             props=None) -> int:
        off = self.rec("PATH")
        self.rec("LAYER", i16(layer))
        self.rec("DATATYPE", i16(datatype))
        if pathtype is not None:
            self.rec("PATHTYPE", i16(pathtype))
        if width is not None:
            self.rec("WIDTH", i32(width))
        if bgnextn is not None:
            self.rec("BGNEXTN", i32(bgnextn))
        if endextn is not None:
            self.rec("ENDEXTN", i32(endextn))
        self.rec("XY", xy_payload(points))
        self._props(props)
        self.rec("ENDEL")
        return off

    def box(self, layer, boxtype, x0, y0, x1, y1) -> int:
        off = self.rec("BOX")
        self.rec("LAYER", i16(layer))
        self.rec("BOXTYPE", i16(boxtype))
        self.rec("XY", xy_payload([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]))
        self.rec("ENDEL")
        return off

    def text(self, layer, texttype, x, y, string="T", *, mag=None, angle=None) -> int:
        off = self.rec("TEXT")
        self.rec("LAYER", i16(layer))
        self.rec("TEXTTYPE", i16(texttype))
        self.rec("PRESENTATION", b"\x00\x05")
        if mag is not None or angle is not None:
            self.rec("STRANS", b"\x00\x00")
            if mag is not None:
                self.rec("MAG", real8(mag))
            if angle is not None:
                self.rec("ANGLE", real8(angle))
        self.rec("XY", xy_payload([(x, y)]))
        self.rec("STRING", ascii_payload(string))
        self.rec("ENDEL")
        return off

    def node(self, layer, nodetype, points) -> int:
        off = self.rec("NODE")
        self.rec("LAYER", i16(layer))
        self.rec("NODETYPE", i16(nodetype))
        self.rec("XY", xy_payload(points))
        self.rec("ENDEL")
        return off

    def _strans(self, reflect, mag, angle, abs_mag=False, abs_angle=False):
        if not reflect and mag is None and angle is None:
            return
        bits = (0x8000 if reflect else 0) | (0x0004 if abs_mag else 0) | (0x0002 if abs_angle else 0)
        self.rec("STRANS", struct.pack(">H", bits))
        if mag is not None:
            self.rec("MAG", real8(mag))
        if angle is not None:
            self.rec("ANGLE", real8(angle))

    def sref(self, name, x, y, *, reflect=False, mag=None, angle=None, props=None) -> int:
        off = self.rec("SREF")
        self.rec("SNAME", ascii_payload(name))
        self._strans(reflect, mag, angle)
        self.rec("XY", xy_payload([(x, y)]))
        self._props(props)
        self.rec("ENDEL")
        return off

    def aref(self, name, cols, rows, origin, col_end, row_end, *, reflect=False, mag=None,
             angle=None) -> int:
        """``col_end`` = origin + cols * column vector; ``row_end`` = origin + rows * row vector."""
        off = self.rec("AREF")
        self.rec("SNAME", ascii_payload(name))
        self._strans(reflect, mag, angle)
        self.rec("COLROW", i16(cols, rows))
        self.rec("XY", xy_payload([origin, col_end, row_end]))
        self.rec("ENDEL")
        return off


def simple_library(extra_top=None) -> GDS:
    """A small valid two-level library used as the base of the broken variants:

    LEAF: a boundary on 1/0, a path on 2/0, a box on 3/0, a text on 4/0
    TOP:  the boundary 1/0, an SREF of LEAF and an AREF of LEAF (2 x 3)
    """
    g = GDS()
    g.begin()
    g.bgnstr("LEAF")
    g.boundary(1, 0, [(0, 0), (100, 0), (100, 50), (0, 50)])
    g.path(2, 0, [(0, 0), (0, 200), (150, 200)], 20, pathtype=2)
    g.box(3, 0, 10, 10, 30, 40)
    g.text(4, 0, 5, 5, "leaf")
    g.endstr()
    g.bgnstr("TOP")
    g.boundary(1, 0, [(-50, -50), (-10, -50), (-10, -10)])
    g.sref("LEAF", 1000, 0, angle=90.0)
    g.aref("LEAF", 2, 3, (0, 1000), (2 * 300, 1000), (0, 1000 + 3 * 400))
    if extra_top is not None:
        extra_top(g)
    g.endstr()
    g.endlib()
    return g


def census(data: bytes) -> dict[str, int]:
    """Raw record census of a GDSII stream {record name: count}, up to ENDLIB (independent of the
    reader under test; for reference figures of synthetic files)."""
    out: dict[str, int] = {}
    o = 0
    while o + 4 <= len(data):
        n, rt = struct.unpack_from(">HB", data, o)
        if n < 4:
            raise ValueError(f"bad record length {n} at {o}")
        name = NAMES.get(rt, f"0x{rt:02X}")
        out[name] = out.get(name, 0) + 1
        o += n
        if name == "ENDLIB":
            break
    return out
