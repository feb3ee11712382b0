"""engine.synth: generated layouts checked against KLayout, gdstk and an independent record walker."""
from __future__ import annotations

import argparse
import hashlib
import struct
import warnings
from fractions import Fraction

import klayout.db as kdb
import numpy as np
import pytest

from engine import synth
from engine.errors import ClipmillError

SHAPES = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes | kdb.Shapes.SPaths


def _read(path):
    ly = kdb.Layout()
    ly.read(str(path))
    return ly


def _gdstk(path):
    import gdstk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gdstk warns that it skips NODE records
        return gdstk.read_gds(str(path))


def _walk(path):
    """Independent minimal record walker: record counts by type and PATHTYPE / STRANS values."""
    data = open(path, "rb").read()
    counts, pathtypes, pos = {}, set(), 0
    while pos < len(data):
        n, rt, dt = struct.unpack_from(">HBB", data, pos)
        assert n >= 4 and n % 2 == 0 and pos + n <= len(data)
        counts[rt] = counts.get(rt, 0) + 1
        if rt == 0x21:
            pathtypes.add(struct.unpack_from(">h", data, pos + 4)[0])
        pos += n
        if rt == 0x04:
            break
    assert pos == len(data)
    return counts, pathtypes


def _decode_real8(b: bytes) -> Fraction:
    sign = -1 if b[0] & 0x80 else 1
    exp = (b[0] & 0x7F) - 64
    mant = int.from_bytes(b[1:], "big")
    return sign * Fraction(mant, 2 ** 56) * Fraction(16) ** exp


def _count_window(ly, top, win_um):
    box = kdb.Box(*[int(round(v / ly.dbu)) for v in win_um])
    n = 0
    for li in ly.layer_indexes():
        it = top.begin_shapes_rec_overlapping(li, box)
        it.shape_flags = SHAPES
        while not it.at_end():
            n += 1
            it.next()
    return n


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    cache = {}

    def make(name, **kw):
        if name not in cache:
            p = d / f"{name}.gds"
            cache[name] = (p, synth.synthesize(p, **kw))
        return cache[name]
    return make


@pytest.mark.parametrize("levels", [3, 4, 5])
def test_reads_and_hierarchy_depth(gen, levels):
    path, s = gen(f"lv{levels}", die_um=45, density=100, levels=levels, seed=levels)
    ly = _read(path)
    assert [c.name for c in ly.top_cells()] == ["TOP"]
    assert ly.top_cell().hierarchy_levels() == levels - 1  # levels below TOP
    assert abs(ly.dbu - 0.001) < 1e-15
    assert ly.cells() == s["cells"]
    lib = _gdstk(path)
    assert len(lib.cells) == ly.cells()
    assert abs(lib.precision - 1e-9) < 1e-21
    # flat shapes per cell: KLayout vs the record walker (BOUNDARY + PATH + BOX records)
    counts, _ = _walk(path)
    nk = sum(c.shapes(li).size() for c in ly.each_cell() for li in ly.layer_indexes())
    assert nk == sum(counts.get(r, 0) for r in (0x08, 0x09, 0x2D, 0x0C))  # + TEXT
    assert counts.get(0x08, 0) == s["counts"]["boundary"]
    assert counts.get(0x0A, 0) == s["counts"]["sref"] and counts.get(0x0B, 0) == s["counts"]["aref"]


def test_placements_orientations_arrays_mag_angles(gen):
    path, _ = gen("lv5", die_um=45, density=100, levels=5, seed=5)
    ly = _read(path)
    orients, mags, angles, arrays = set(), set(), set(), []
    for c in ly.each_cell():
        for inst in c.each_inst():
            t = inst.cplx_trans
            orients.add((t.is_mirror(), round(t.angle, 6)))
            mags.add(round(t.mag, 6))
            if inst.is_regular_array():
                arrays.append((inst.a, inst.b, inst.na, inst.nb))
    for m in (False, True):
        for a in (0, 90, 180, 270):
            assert (m, a) in orients
    assert {0.5, 1.5, 2.0} <= mags
    assert (False, 30.0) in orients and (True, 45.0) in orients
    assert len(arrays) >= 3
    arr_orients = {(i.cplx_trans.is_mirror(), round(i.cplx_trans.angle)) for c in ly.each_cell()
                   for i in c.each_inst() if i.is_regular_array()}
    assert {(False, 0), (True, 0), (True, 180)} <= arr_orients
    skewed = [a for a in arrays if a[0].x * a[1].x + a[0].y * a[1].y != 0]
    assert skewed, "expected an AREF with a non-orthogonal lattice"
    # the same arrays seen by gdstk
    lib = _gdstk(path)
    reps = [r.repetition for c in lib.cells for r in c.references if r.repetition.size > 1]
    assert len(reps) == len(arrays)
    assert any(r.v1 is not None and np.dot(r.v1, r.v2) != 0 for r in reps)
    assert all(r.columns * r.rows == na * nb for r, (_, _, na, nb) in
               zip(sorted(reps, key=lambda r: r.size), sorted(arrays, key=lambda a: a[2] * a[3])))


def test_paths_shapes_records(gen):
    path, s = gen("lv5", die_um=45, density=100, levels=5, seed=5)
    counts, pathtypes = _walk(path)
    assert pathtypes == {0, 1, 2, 4}
    for rt in (0x2D, 0x0C, 0x15, 0x0B):  # BOX, TEXT, NODE, AREF
        assert counts.get(rt, 0) > 0
    lib = _gdstk(path)
    ends = set()
    for c in lib.cells:
        for p in c.paths:
            e = p.ends[0] if isinstance(p.ends, (list, tuple)) else p.ends
            ends.add(e if isinstance(e, str) else "custom")
    assert {"flush", "round", "extended", "custom"} <= ends
    # non-rectangular polygons: L shapes (6 vertices, all 90 degrees) and 45-degree chamfers
    ly = _read(path)
    nverts, diag = set(), False
    for c in ly.each_cell():
        for li in ly.layer_indexes():
            for sh in c.shapes(li).each(kdb.Shapes.SPolygons):
                poly = sh.polygon
                nverts.add(poly.num_points_hull())
                for e in poly.each_edge():
                    if e.dx() != 0 and abs(e.dx()) == abs(e.dy()):
                        diag = True
    assert 6 in nverts and 8 in nverts and diag
    layers = {(i.layer, i.datatype) for i in ly.layer_infos()}
    assert {(k, 0) for k in range(1, 11)} <= layers
    assert any(dt == 1 for _, dt in layers)


@pytest.mark.parametrize("density,die", [(20, 70), (300, 25), (2000, 12)])
def test_density_in_blocks(gen, density, die):
    path, s = gen(f"d{density}", die_um=die, density=density, seed=1)
    ly = _read(path)
    top = ly.top_cell()
    assert s["dense_blocks_um"]
    for kind, x0, y0, x1, y1 in s["blocks_um"]:
        m = (x1 - x0) / 4
        n = _count_window(ly, top, (x0 + m, y0 + m, x1 - m, y1 - m))
        got = n / (x1 - x0 - 2 * m) / (y1 - y0 - 2 * m)
        assert abs(got / density - 1) < 0.2, (kind, got, density)


def test_deterministic_per_seed(tmp_path, capsys):
    a, b, c = tmp_path / "a.gds", tmp_path / "b.gds", tmp_path / "c.gds"
    for p, seed, workers in ((a, 3, 1), (b, 3, 3), (c, 4, 2)):  # threads do not change bytes
        synth.synthesize(p, die_um=(50, 40), density=80, seed=seed, workers=workers)
    h = [hashlib.sha1(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert h[0] == h[1] and h[0] != h[2]
    assert capsys.readouterr().out == ""  # library code never prints


def test_size_target(tmp_path):
    p = tmp_path / "s.gds"
    s = synth.synthesize(p, size_bytes="4MB", density=150, seed=2)
    assert abs(p.stat().st_size / 4e6 - 1) < 0.1
    assert s["bytes"] == p.stat().st_size
    ly = _read(p)
    assert ly.top_cell().name == "TOP"


def test_other_dbu_and_layers(tmp_path):
    p = tmp_path / "u.gds"
    s = synth.synthesize(p, die_um=80, density=20, dbu_um=0.005, layers=6, levels=4)
    ly = _read(p)
    assert abs(ly.dbu - 0.005) < 1e-12
    nums = {i.layer for i in ly.layer_infos()}
    assert nums == set(range(1, 7))
    x0, y0, x1, y1 = s["dense_blocks_um"][0]
    m = (x1 - x0) / 4
    n = _count_window(ly, ly.top_cell(), (x0 + m, y0 + m, x1 - m, y1 - m))
    assert abs(n / (x1 - x0 - 2 * m) ** 2 / 20 - 1) < 0.2


def test_real8_encoder():
    assert synth.real8(1.0).hex() == "4110000000000000"
    assert synth.real8(90.0).hex() == "425a000000000000"
    assert synth.real8(0.5).hex() == "4080000000000000"
    assert synth.real8(-1.0).hex() == "c110000000000000"
    # 0.001 as written by older tools (decimal truncated to 56 bits) is within 1e-16 of ours
    assert abs(_decode_real8(bytes.fromhex("3e4189374bc6a7ef"))
               - _decode_real8(synth.real8(0.001))) < Fraction(1, 10 ** 18)
    assert synth.real8(0.0) == bytes(8)
    rng = np.random.default_rng(0)
    for x in np.concatenate([rng.normal(size=200) * 10.0 ** rng.integers(-30, 30, 200),
                             [90.0, -270.0, 0.5, 1.5, 1e-300 * 1e-40, 2.0 ** -200]]):
        x = float(x)
        if x == 0 or abs(x) < 16.0 ** -65:
            continue
        b = synth.real8(x)
        assert _decode_real8(b) == Fraction(x)
        assert (b[1] >> 4) != 0  # normalised mantissa


def test_bad_arguments(tmp_path):
    p = tmp_path / "x.gds"
    with pytest.raises(ClipmillError):
        synth.synthesize(p, levels=7)
    with pytest.raises(ClipmillError):
        synth.synthesize(p, layers=2)
    with pytest.raises(ClipmillError):
        synth.synthesize(p, layers=5, levels=5)
    with pytest.raises(ClipmillError):
        synth.synthesize(p, density=0.1)  # 200 um die too small for 3.9 um features
    with pytest.raises(ClipmillError):
        synth.synthesize(p, density=5e5)  # features below 4 dbu
    with pytest.raises(ClipmillError):
        synth.synthesize(p, die_um=3e6)  # does not fit int32 at 1 nm
    with pytest.raises(ClipmillError):
        synth.synthesize(p, features=["bogus"])
    with pytest.raises(ClipmillError):
        synth.parse_size("12 parsecs")
    assert not p.exists() and not (tmp_path / "x.gds.part").exists()
    assert synth.parse_size("1GB") == 10 ** 9 and synth.parse_size("2MiB") == 2 << 20


def test_cli_entry(tmp_path, capsys):
    ap = argparse.ArgumentParser()
    synth.add_arguments(ap)
    out = tmp_path / "cli.gds"
    args = ap.parse_args([str(out), "--die-um", "40,30", "--density", "50", "--seed", "7",
                          "--levels", "4"])
    assert synth.run(args) == 0
    assert "MB" in capsys.readouterr().out
    ly = _read(out)
    b = ly.top_cell().dbbox()
    assert b.right <= 40 and b.top <= 30 and b.width() > 35 and b.height() > 25
    assert ly.top_cell().hierarchy_levels() == 3


def test_bundled_demo(tmp_path):
    demo = synth.DEMO_PATH
    size = len(open(demo, "rb").read())
    assert 1e6 <= size <= 3.5e6
    ly = _read(demo)
    assert ly.top_cell().name == "TOP" and ly.top_cell().hierarchy_levels() == 4
    b = ly.top_cell().dbbox()
    assert 190 <= b.width() <= 200 and 190 <= b.height() <= 200
    counts, pathtypes = _walk(demo)
    assert pathtypes == {0, 1, 2, 4} and all(counts.get(r, 0) for r in (0x2D, 0x0C, 0x15, 0x0B))
    # the committed file is exactly what make_demo() writes (documented in engine/data/README.md)
    again = tmp_path / "demo.gds"
    synth.make_demo(again)
    assert again.read_bytes() == open(demo, "rb").read()


@pytest.mark.parametrize("features", [[], ["path", "aref"], ["mag", "angle", "nonrect"]])
def test_feature_subsets(tmp_path, features):
    p = tmp_path / "f.gds"
    s = synth.synthesize(p, die_um=40, density=100, features=features, mix=(1, 1, 1), seed=9)
    ly = _read(p)
    assert [c.name for c in ly.top_cells()] == ["TOP"]  # no cell left unplaced
    counts, pathtypes = _walk(p)
    assert (counts.get(0x0B, 0) > 0) == ("aref" in features)
    assert (pathtypes >= {1, 2, 4}) == ("path" in features)
    mags = {round(i.cplx_trans.mag, 3) for c in ly.each_cell() for i in c.each_inst()}
    assert (2.0 in mags) == ("mag" in features)
    assert s["counts"]["node"] == 0 and counts.get(0x15, 0) == 0
