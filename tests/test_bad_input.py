"""Broken GDSII input: every defect gives a ClipmillError naming the file, the byte offset of the
offending record and the record; never a crash. Files are crafted record by record with
tests/gdsbytes.py (an independent writer), so every expected offset is known from construction.

Where a defect is only detectable at a later record, the expected offset is that record's (the
place a reader finds the problem): a missing ENDSTR is reported at the record that arrives instead
(ENDLIB or the next BGNSTR), a missing ENDLIB at the end of the file.
"""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import kref
from gdsbytes import GDS, i16, i32, record, simple_library, xy_payload

from engine.database import polygon_arrays, ref_matrices
from engine.errors import ClipmillError


def load(path, layers=None):
    from engine.reader import load_gdsii
    return load_gdsii(str(path), layers=layers)


def patch_length(data: bytes, off: int, length: int) -> bytes:
    b = bytearray(data)
    b[off:off + 2] = struct.pack(">H", length)
    return bytes(b)


def insert(data: bytes, off: int, raw: bytes) -> bytes:
    return data[:off] + raw + data[off:]


def remove_record(data: bytes, off: int) -> bytes:
    (n,) = struct.unpack_from(">H", data, off)
    return data[:off] + data[off + n:]


# -- the cases: name -> () -> (bytes, expected offset, expected record name or None) ----------

def case_truncated_mid_record():
    g = simple_library()
    d = g.bytes()
    xy = g.offset("XY", 1)  # the path's XY
    return d[:xy + 10], xy, "XY"


def case_truncated_mid_header():
    g = simple_library()
    d = g.bytes()
    o = g.offset("ENDEL", 2)
    return d[:o + 2], o, None  # 2 bytes of a header: no record type to name


def case_truncated_at_record_boundary():
    g = simple_library()
    d = g.bytes()
    o = g.offset("ENDEL", 3)
    cut = o + 4  # a clean cut right after an ENDEL: structure and library never end
    return d[:cut], cut, None


def case_odd_length():
    g = simple_library()
    o = g.offset("LAYER", 0)
    return patch_length(g.bytes(), o, 7), o, "LAYER"


def case_zero_length():
    g = simple_library()
    o = g.offset("ENDEL", 1)
    return patch_length(g.bytes(), o, 0), o, "ENDEL"


def case_length_two():
    g = simple_library()
    o = g.offset("DATATYPE", 0)
    return patch_length(g.bytes(), o, 2), o, "DATATYPE"


def case_length_past_eof():
    g = simple_library()
    o = g.offset("STRNAME", 1)
    return patch_length(g.bytes(), o, 0xFFFE), o, "STRNAME"


def case_vertex_count_overflow():
    """An XY record claiming 8191 vertices (65532 bytes) in a file far shorter than that."""
    g = simple_library()
    o = g.offset("XY", 0)
    return patch_length(g.bytes(), o, 0xFFFC), o, "XY"


def case_unknown_record_type():
    g = simple_library()
    o = g.offset("BGNSTR", 1)  # between the two structures
    return insert(g.bytes(), o, struct.pack(">HBB", 4, 0x60, 0)), o, "0x60"


def case_unknown_record_in_element():
    g = simple_library()
    o = g.offset("DATATYPE", 1)
    return insert(g.bytes(), o, struct.pack(">HBBh", 6, 0x3C, 2, 7)), o, "0x3C"


def case_missing_endstr_last():
    g = simple_library()
    o = g.offset("ENDSTR", 1)
    return remove_record(g.bytes(), o), o, "ENDLIB"


def case_missing_endstr_first():
    g = simple_library()
    o = g.offset("ENDSTR", 0)
    return remove_record(g.bytes(), o), o, "BGNSTR"


def case_missing_endlib():
    g = simple_library()
    d = g.bytes()
    o = g.offset("ENDLIB")
    return d[:o], o, None


def case_xy_odd_count():
    g = GDS()
    g.begin()
    g.bgnstr("A")
    g.rec("BOUNDARY")
    g.rec("LAYER", i16(1))
    g.rec("DATATYPE", i16(0))
    o = g.rec("XY", i32(0, 0, 10, 0, 10))  # 5 coordinates
    g.rec("ENDEL")
    g.endstr()
    g.endlib()
    return g.bytes(), o, "XY"


def case_xy_not_int32_multiple():
    g = GDS()
    g.begin()
    g.bgnstr("A")
    g.rec("BOUNDARY")
    g.rec("LAYER", i16(1))
    g.rec("DATATYPE", i16(0))
    o = g.rec("XY", i32(0, 0, 10, 0, 10, 10, 0, 0) + b"\0\0")  # 34 bytes of data
    g.rec("ENDEL")
    g.endstr()
    g.endlib()
    return g.bytes(), o, "XY"


def case_path_outline_beyond_int32():
    """A square-ended path whose outline leaves the int32 coordinate range."""
    g = GDS()
    g.begin()
    g.bgnstr("A")
    g.boundary(1, 0, [(0, 0), (10, 0), (10, 10)])
    p = g.path(1, 0, [(0, 0), (2**31 - 20, 0)], 200, pathtype=2)
    g.endstr()
    g.endlib()
    xy = [o for o in g.offsets("XY") if o > p][0]
    return g.bytes(), {p: "PATH", xy: "XY", g.offsets("WIDTH")[0]: "WIDTH"}, None


def _cycle(self_ref=False):
    g = GDS()
    g.begin()
    g.bgnstr("TOP")
    g.sref("A", 0, 0)
    g.endstr()
    g.bgnstr("A")
    g.boundary(1, 0, [(0, 0), (10, 0), (10, 10)])
    g.sref("A" if self_ref else "B", 100, 0)
    g.endstr()
    if not self_ref:
        g.bgnstr("B")
        g.sref("A", 0, 100)
        g.endstr()
    g.endlib()
    return g


def _cycle_places(g, cells):
    """Where a cycle may be reported: the SREF (or its SNAME) in a cell of the cycle that closes
    it, or that cell's BGNSTR; offset and record name must agree."""
    places = {}
    for name in ("SREF", "SNAME", "BGNSTR"):
        for k in cells:
            places[g.offsets(name)[k]] = name
    return places


def case_reference_cycle():
    g = _cycle()
    # the cycle A -> B -> A: A's and B's SREF (either closes it), or their BGNSTR
    return g.bytes(), _cycle_places(g, [1, 2]), None


def case_self_reference():
    g = _cycle(self_ref=True)
    return g.bytes(), _cycle_places(g, [1]), None


def case_empty_library():
    g = GDS()
    g.begin()
    o = g.endlib()
    return g.bytes(), o, "ENDLIB"


def case_not_gds_text():
    return b"This is not a GDSII file, just some text.\n" * 4, 0, None


def case_not_gds_starts_with_bgnstr():
    g = GDS()
    g.bgnstr("A")
    g.endstr()
    g.endlib()
    return g.bytes(), 0, "BGNSTR"


def case_element_outside_structure():
    g = GDS()
    g.begin()
    o = g.boundary(1, 0, [(0, 0), (10, 0), (10, 10)])
    g.endlib()
    return g.bytes(), o, "BOUNDARY"


def case_missing_endel():
    g = GDS()
    g.begin()
    g.bgnstr("A")
    g.rec("BOUNDARY")
    g.rec("LAYER", i16(1))
    g.rec("DATATYPE", i16(0))
    g.rec("XY", xy_payload([(0, 0), (10, 0), (10, 10), (0, 0)]))
    o = g.boundary(1, 0, [(0, 0), (10, 0), (10, 10)])  # a new element before ENDEL
    g.endstr()
    g.endlib()
    return g.bytes(), o, "BOUNDARY"


def case_aref_xy_one_point():
    g = GDS()
    g.begin()
    g.bgnstr("L")
    g.boundary(1, 0, [(0, 0), (10, 0), (10, 10)])
    g.endstr()
    g.bgnstr("TOP")
    g.rec("AREF")
    g.rec("SNAME", b"L\0")
    g.rec("COLROW", i16(2, 2))
    o = g.rec("XY", xy_payload([(0, 0)]))
    g.rec("ENDEL")
    g.endstr()
    g.endlib()
    return g.bytes(), o, "XY"


def boundary_too_few_points():
    g = GDS()
    g.begin()
    g.bgnstr("A")
    g.rec("BOUNDARY")
    g.rec("LAYER", i16(1))
    g.rec("DATATYPE", i16(0))
    o = g.rec("XY", xy_payload([(0, 0)]))
    g.rec("ENDEL")
    g.endstr()
    g.endlib()
    return g.bytes(), o, "XY"


def test_boundary_too_few_points_ignored_with_warning(tmp_path):
    """Like KLayout ("BOUNDARY with less than 3 points ignored"): no polygon, a warning."""
    data, _, _ = boundary_too_few_points()
    path = tmp_path / "few.gds"
    path.write_bytes(data)
    arrays, meta = load(path)
    assert len(arrays["poly_kind"]) == 0
    assert meta["warnings"] and any("BOUNDARY" in w for w in meta["warnings"])
    assert kref.kshape_counts(kref.kload(path)) == {"A": {}}


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


def _check(err: ClipmillError, path, offset, rec):
    assert str(path) in str(err), f"message does not name the file: {err}"
    assert err.file is not None and str(path) in str(err.file)
    if isinstance(offset, dict):  # several acceptable places: {offset: record name}
        assert err.offset in offset, f"offset {err.offset} not in {sorted(offset)}: {err}"
        rec = offset[err.offset]
    else:
        assert err.offset == offset, f"offset {err.offset} != {offset}: {err}"
    assert f"{err.offset}" in str(err)
    if rec is not None:
        assert err.record is not None, f"no record named: {err}"
        assert any(r.upper() == str(err.record).upper().split()[0].strip("()")
                   or r.upper() in str(err.record).upper()
                   for r in rec.split("|")), f"record {err.record!r} is not {rec}: {err}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path):
    data, offset, rec = CASES[case]()
    path = tmp_path / f"{case}.gds"
    path.write_bytes(data)
    with pytest.raises(ClipmillError) as ei:
        load(path)
    _check(ei.value, path, offset, rec)


@pytest.mark.parametrize("case", ["truncated_mid_record", "odd_length", "unknown_record_type",
                                  "missing_endlib", "reference_cycle", "xy_odd_count"])
def test_bad_input_gzip(case, tmp_path):
    """Inside a .gds.gz the offsets are those of the decompressed stream."""
    data, offset, rec = CASES[case]()
    path = tmp_path / f"{case}.gds.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ClipmillError) as ei:
        load(path)
    _check(ei.value, path, offset, rec)


@pytest.mark.parametrize("case", ["truncated_mid_record", "reference_cycle", "not_gds_text"])
def test_bad_input_open_layout(case, tmp_path):
    from engine import open_layout
    data, offset, rec = CASES[case]()
    path = tmp_path / f"{case}.gds"
    path.write_bytes(data)
    with pytest.raises(ClipmillError) as ei:
        open_layout(path)
    _check(ei.value, path, offset, rec)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(simple_library().bytes())
    for name, data in [("garbage", good[:10] + bytes(range(256)) * 4),
                       ("truncated", good[:len(good) // 2]),
                       ("badcrc", good[:-8] + b"\xde\xad\xbe\xef" + good[-4:])]:
        path = tmp_path / f"{name}.gds.gz"
        path.write_bytes(data)
        with pytest.raises(ClipmillError) as ei:
            load(path)
        assert str(path) in str(ei.value), name


def test_missing_file(tmp_path):
    from engine import open_layout
    with pytest.raises(ClipmillError):
        load(tmp_path / "nope.gds")
    with pytest.raises(ClipmillError):
        open_layout(tmp_path / "nope.gds")


# -- valid edge cases -------------------------------------------------------------------------

def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("pad", [2, 100, 2048 - 1])
def test_padding_after_endlib(tmp_path, pad):
    d = simple_library().bytes()
    p0, p1 = tmp_path / "plain.gds", tmp_path / "padded.gds"
    p0.write_bytes(d)
    p1.write_bytes(d + b"\0" * (pad + (len(d) + pad) % 2))
    a0, m0 = load(p0)
    a1, m1 = load(p1)
    _same(a0, a1)
    assert m0["counts"] == m1["counts"]


def test_undefined_reference_is_a_warning(tmp_path):
    g = simple_library(extra_top=lambda g: g.sref("NOWHERE", 5, 5))
    path = tmp_path / "undef.gds"
    path.write_bytes(g.bytes())
    arrays, meta = load(path)
    assert meta["undefined_cells"] == ["NOWHERE"]
    assert any("NOWHERE" in w for w in meta["warnings"])
    off = arrays["cell_name_off"]
    names = [bytes(arrays["cell_name_data"][off[i]:off[i + 1]]).decode() for i in range(len(off) - 1)]
    r = names.index("NOWHERE")
    assert arrays["cell_defined"][r] == 0 and arrays["cell_offset"][r] == -1
    assert arrays["cell_poly_off"][r] == arrays["cell_poly_off"][r + 1]
    kl = kref.kload(path)
    assert kref.kundefined_cells(kl) == ["NOWHERE"]
    assert sorted(names) == kref.kcell_names(kl)


def test_huge_aref_is_one_placement(tmp_path):
    """32767 x 32767 copies stay one placement; the bbox covers the whole lattice (as KLayout's)."""
    g = GDS()
    g.begin()
    g.bgnstr("BIT")
    g.boundary(1, 0, [(0, 0), (80, 0), (80, 60), (0, 60)])
    g.endstr()
    g.bgnstr("TOP")
    n = 32767
    g.aref("BIT", n, n, (-5, 7), (-5 + n * 100, 7), (-5, 7 + n * 90))
    g.endstr()
    g.endlib()
    path = tmp_path / "huge.gds"
    path.write_bytes(g.bytes())
    arrays, meta = load(path)
    assert len(arrays["ref_cell"]) == 1 and arrays["ref_aref"][0] == 0
    assert arrays["aref_cols"][0] == n and arrays["aref_rows"][0] == n
    kb = kref.kbboxes_geometry(kref.kload(path))
    off = arrays["cell_name_off"]
    names = [bytes(arrays["cell_name_data"][off[i]:off[i + 1]]).decode() for i in range(len(off) - 1)]
    assert [int(v) for v in arrays["cell_bbox"][names.index("TOP")]] == kb["TOP"]
    assert [int(v) for v in arrays["ref_bbox"][0]] == kb["TOP"]


def every_record_library() -> GDS:
    """A valid library using every kind of record a reader must handle or skip, read by KLayout
    too: path types 0/1/2/4 with extensions and a negative (absolute) width, BOX, TEXT, NODE,
    properties, ELFLAGS, PLEX, SREF/AREF with reflection, magnification and a 30-degree angle, and
    library records that carry nothing for geometry (REFLIBS, FONTS, GENERATIONS, ATTRTABLE,
    FORMAT). (KLayout rejects STRCLASS: see test_skipped_records.)"""
    g = GDS()
    g.header()
    g.bgnlib()
    g.libname("EVERY")
    g.rec("REFLIBS", b"\0" * 90)
    g.rec("FONTS", b"\0" * 176)
    g.rec("GENERATIONS", i16(3))
    g.rec("ATTRTABLE", b"attrs.txt\0")
    g.rec("FORMAT", i16(0))
    g.units(1e-3, 1e-9)
    g.bgnstr("LEAF")
    g.rec("BOUNDARY")
    g.rec("ELFLAGS", b"\0\1")
    g.rec("PLEX", i32(7))
    g.rec("LAYER", i16(1))
    g.rec("DATATYPE", i16(2))
    g.rec("XY", xy_payload([(0, 0), (400, 0), (400, 300), (200, 500), (0, 300), (0, 0)]))
    g.rec("PROPATTR", i16(1))
    g.rec("PROPVALUE", b"hello\0")
    g.rec("ENDEL")
    g.path(2, 0, [(0, 0), (1000, 0), (1000, 800)], 40)                 # flush ends
    g.path(2, 1, [(0, 100), (600, 100)], 30, pathtype=2)               # square ends, odd width
    g.path(2, 2, [(0, 200), (0, 900), (-500, 900)], 60, pathtype=4, bgnextn=25, endextn=-10)
    g.path(2, 3, [(100, 1000), (900, 1000)], -50)                      # absolute width
    g.path(2, 4, [(0, 0), (300, 400), (700, 400)], 20, pathtype=2)     # 45-ish corner
    g.path(2, 5, [(2000, 0), (2600, 0), (2600, 500)], 100, pathtype=1)  # round ends
    g.box(3, 5, -100, -100, 50, 60)
    g.text(4, 0, 10, 10, "t1", mag=2.0, angle=90.0)
    g.node(5, 1, [(0, 0), (10, 10)])
    g.endstr()
    g.bgnstr("MID")
    g.sref("LEAF", 0, 0)
    g.sref("LEAF", 5000, 0, reflect=True)
    g.sref("LEAF", 0, 5000, mag=2.5, angle=30.0)
    g.sref("LEAF", -5000, 0, reflect=True, angle=270.0)
    g.aref("LEAF", 3, 2, (10000, 0), (10000 + 3 * 1500, 0), (10000, 2 * 2000))
    g.aref("LEAF", 2, 2, (0, -10000), (2 * 1000, -10000 + 2 * 1000), (-2 * 500, -10000 + 2 * 1500),
           reflect=True, angle=90.0)
    g.endstr()
    g.bgnstr("TOP")
    g.sref("MID", 100, 200, angle=180.0)
    g.boundary(1, 2, [(-20000, -20000), (-19000, -20000), (-19000, -19000), (-20000, -19000)])
    g.endstr()
    g.endlib()
    return g


def test_every_record_kind_vs_klayout(tmp_path):
    path = tmp_path / "every.gds"
    path.write_bytes(every_record_library().bytes())
    arrays, meta = load(path)
    kl = kref.kload(path)
    assert meta["counts"] == {"boundary": 2, "path": 6, "box": 1, "text": 1, "node": 1,
                              "sref": 5, "aref": 2}
    off = arrays["cell_name_off"]
    names = [bytes(arrays["cell_name_data"][off[i]:off[i + 1]]).decode() for i in range(len(off) - 1)]
    assert sorted(names) == kref.kcell_names(kl)
    layers = [tuple(map(int, r)) for r in arrays["layer_ld"]]
    assert layers == kref.klayers_geometry(kl)
    # per cell, per layer: twice the area, exact
    po, v = polygon_arrays(arrays)      # rectangles expanded from their bbox
    ref = kref.kareas2(kl)
    for c, name in enumerate(names):
        mine = {}
        for p in range(arrays["cell_poly_off"][c], arrays["cell_poly_off"][c + 1]):
            q = v[po[p]:po[p + 1]]
            a2 = abs(int(np.sum(q[:, 0] * np.roll(q[:, 1], -1) - np.roll(q[:, 0], -1) * q[:, 1])))
            ld = layers[arrays["poly_layer"][p]]
            mine[ld] = mine.get(ld, 0) + a2
        assert mine == ref[name], name
    # bboxes: exact where KLayout's bottom-up box is exact (no 30-degree placement below)
    kb = kref.kbboxes_geometry(kl)
    r = names.index("LEAF")
    assert [int(x) for x in arrays["cell_bbox"][r]] == kb["LEAF"]
    t = names.index("TOP")
    flat = kref.kbbox_flat(kl, "TOP")
    b = [int(x) for x in arrays["cell_bbox"][t]]
    assert b[0] <= flat[0] and b[1] <= flat[1] and b[2] >= flat[2] and b[3] >= flat[3]
    assert b[0] >= kb["TOP"][0] - 1 and b[1] >= kb["TOP"][1] - 1
    assert b[2] <= kb["TOP"][2] + 1 and b[3] <= kb["TOP"][3] + 1
    # placements: matrices vs KLayout
    def key(item):
        return (item[0], item[1], tuple(round(x, 6) + 0.0 for x in item[2]))

    p = kref.kplacements(kl)
    kp = sorted(zip(p["parent"], p["child"], map(tuple, kref.kplacement_matrices(p))), key=key)
    mine = []
    mats = ref_matrices(arrays)
    for c, name in enumerate(names):
        for k in range(arrays["cell_ref_off"][c], arrays["cell_ref_off"][c + 1]):
            mine.append((name, names[arrays["ref_cell"][k]], tuple(mats[k])))
    mine.sort(key=key)
    assert len(mine) == len(kp)
    for (p1, c1, m1), (p2, c2, m2) in zip(mine, kp):
        assert (p1, c1) == (p2, c2)
        assert np.allclose(m1, m2, rtol=0, atol=1e-9), (p1, c1, m1, m2)


def test_skipped_records(tmp_path):
    """Records with nothing for geometry (STRCLASS, ELFLAGS, PLEX, properties, TAPENUM ...)
    inserted at legal places change nothing in the database."""
    plain = simple_library().bytes()
    g = simple_library()
    d = g.bytes()
    o_str = g.offset("BOUNDARY", 0)   # after LEAF's STRNAME
    o_el = g.offset("LAYER", 0)       # inside the first BOUNDARY, before LAYER
    o_end = g.offset("ENDEL", 0)      # after its XY
    d = (d[:o_str] + record("STRCLASS", b"\0\0") + d[o_str:o_el]
         + record("ELFLAGS", b"\0\3") + record("PLEX", i32(12)) + d[o_el:o_end]
         + record("PROPATTR", i16(5)) + record("PROPVALUE", b"x\0") + d[o_end:])
    p0, p1 = tmp_path / "plain.gds", tmp_path / "extra.gds"
    p0.write_bytes(plain)
    p1.write_bytes(d)
    a0, m0 = load(p0)
    a1, m1 = load(p1)
    for k in a0:
        if k != "cell_offset":
            assert np.array_equal(a0[k], a1[k]), k
    assert m0["counts"] == m1["counts"]


def test_many_distinct_transforms_grow_the_table(tmp_path):
    """More distinct (mag, angle, reflect) than the first transform table holds (it is grown and
    the load retried): every placement's matrix still equals KLayout's, and equal transforms
    share one row."""
    g = GDS()
    g.begin()
    g.bgnstr("LEAF")
    g.boundary(1, 0, [(0, 0), (100, 0), (100, 50), (0, 50)])
    g.endstr()
    g.bgnstr("TOP")
    n = 1500
    for i in range(n):
        g.sref("LEAF", 1000 * i, -7 * i, reflect=bool(i % 3 == 0), mag=1.0 + (i % 5) * 0.25,
               angle=(i * 0.37) % 360.0)
    for i in range(20):                       # repeats: shared rows
        g.sref("LEAF", 5, 5 * i, angle=90.0)
    g.endstr()
    g.endlib()
    path = tmp_path / "xf.gds"
    path.write_bytes(g.bytes())
    arrays, meta = load(path)
    assert len(arrays["ref_cell"]) == n + 20
    assert n < len(arrays["xf_mat"]) <= n + 1 and len(set(arrays["ref_xf"][-20:].tolist())) == 1
    kl = kref.kload(path)
    p = kref.kplacements(kl)
    ref = np.array(sorted(map(tuple, np.round(kref.kplacement_matrices(p), 6))))
    mine = np.array(sorted(map(tuple, np.round(ref_matrices(arrays), 6))))
    assert ref.shape == mine.shape and np.allclose(mine, ref, rtol=0, atol=2e-6)
