"""The record table: unique tags and names, every record of the GDSII stream format present."""
from engine import records

# The GDSII Stream Format Manual (release 6.0) record list, written out independently.
SPEC = """HEADER BGNLIB LIBNAME UNITS ENDLIB BGNSTR STRNAME ENDSTR BOUNDARY PATH SREF AREF TEXT
LAYER DATATYPE WIDTH XY ENDEL SNAME COLROW TEXTNODE NODE TEXTTYPE PRESENTATION SPACING STRING
STRANS MAG ANGLE UINTEGER USTRING REFLIBS FONTS PATHTYPE GENERATIONS ATTRTABLE STYPTABLE STRTYPE
ELFLAGS ELKEY LINKTYPE LINKKEYS NODETYPE PROPATTR PROPVALUE BOX BOXTYPE PLEX BGNEXTN ENDEXTN
TAPENUM TAPECODE STRCLASS RESERVED FORMAT MASK ENDMASKS LIBDIRSIZE SRFNAME LIBSECUR""".split()


def test_tags_and_names_unique():
    tags = [t for t, _, _ in records.RECORDS]
    names = [n for _, n, _ in records.RECORDS]
    assert len(set(tags)) == len(tags)
    assert len(set(names)) == len(names)


def test_every_spec_record_present_in_spec_order():
    # the manual numbers the records consecutively from 0x00 in the order listed above
    assert [records.NAMES[i] for i in range(len(SPEC))] == SPEC
    assert records.MAX_TAG == len(SPEC) - 1
    assert int(records.KNOWN.sum()) == len(SPEC)


def test_kernel_constants_match_table():
    for name in ("HEADER", "BGNSTR", "XY", "SNAME", "BOX", "BGNEXTN", "ENDEXTN", "PROPVALUE"):
        assert getattr(records, name) == records.TAGS[name]
    assert records.DATATYPES[records.TAGS["XY"]] == records.INT4
    assert records.DATATYPES[records.TAGS["MAG"]] == records.REAL8
    assert records.name(0x99) == "0x99"
