"""The reader's fast paths (runs of plain BOUNDARY elements, plain SREFs, BOX) against KLayout, on a
crafted library whose elements alternate between the shapes the fast paths take and the ones they
leave to the general decoder: rectangles in both vertex orders, closed and unclosed, non-rectangular
quadrilaterals, triangles, many-vertex polygons, layer changes inside a run, elements with
properties, paths and boxes between runs, placements with and without transforms.

Every check of tests/test_reader_vs_klayout.py runs on it (cells, counts, bboxes, per-shape boxes,
areas per cell and layer, placements), plus a layer filter and degenerate boundaries inside a run.
"""
from __future__ import annotations

import numpy as np
import pytest

import kref
import test_reader_vs_klayout as T
from gdsbytes import GDS, census


def _run(g, x0, y0, n_layers=(1, 2)):
    """Boundaries of every shape the fast path distinguishes, at (x0, y0)."""
    lays = list(n_layers)
    for i in range(12):
        lay = lays[(i // 3) % len(lays)]
        x = x0 + 300 * i
        y = y0
        g.boundary(lay, 0, [(x, y), (x + 100, y), (x + 100, y + 50), (x, y + 50)])   # y-first rect
        g.boundary(lay, 0, [(x, y), (x, y + 70), (x + 40, y + 70), (x + 40, y)])      # x-first rect
        g.boundary(lay, 1, [(x, y), (x + 90, y), (x + 90, y + 30), (x, y + 30)], close=False)
        g.boundary(lay, 0, [(x, y), (x + 80, y + 10), (x + 90, y + 60), (x - 5, y + 40)])  # quad
        g.boundary(lay, 0, [(x, y), (x + 80, y + 10), (x + 90, y + 60), (x - 5, y + 40)],
                   close=False)
        g.boundary(lay, 2, [(x, y), (x + 50, y), (x + 25, y + 40)])                    # triangle
        g.boundary(lay, 0, [(x, y), (x + 60, y), (x + 60, y + 20), (x + 30, y + 20),
                            (x + 30, y + 60), (x, y + 60)])                             # L shape
        g.boundary(lay, 0, [(x + 7 * k, y + (k * k) % 13) for k in range(9)] + [(x + 30, y - 40)])
        g.boundary(lay, 0, [(x, y), (x, y + 10), (x + 10, y + 10), (x + 10, y)], close=False)


def _wires(g, n=400, seed=5):
    """Two-point paths off the segment shortcut (round ends, slanted), a few shapes repeated at
    many places (the hull memo's hits) and many distinct ones (its misses and slot reuse).
    Returns [(points, width, pathtype, bgnextn, endextn)] in file order."""
    rng = np.random.default_rng(seed)
    shapes = [((int(rng.integers(-900, 900)), int(rng.integers(-900, 900))),
               int(rng.integers(1, 300)) * 2 + int(rng.integers(0, 2)),
               int(rng.choice([0, 1, 2, 4]))) for _ in range(12)]
    out = []
    for i in range(n):
        if i % 3 == 0:   # distinct
            d = (int(rng.integers(-2000, 2000)), int(rng.integers(-2000, 2000)))
            w, pt = int(rng.integers(1, 400)), int(rng.choice([1, 1, 0, 4]))
        else:
            d, w, pt = shapes[int(rng.integers(0, len(shapes)))]
        if i % 7 == 0:
            d = (d[0], 0)       # axis-parallel: round ones only reach the memo
        x, y = int(rng.integers(-10 ** 6, 10 ** 6)), int(rng.integers(-10 ** 6, 10 ** 6))
        bgn = end = None
        if pt == 4 or i % 11 == 0:
            bgn, end = int(rng.integers(-50, 200)), int(rng.integers(-50, 200))
        pts = [(x, y), (x + d[0], y + d[1])]
        g.path(8, 0, pts, w, pathtype=pt, bgnextn=bgn, endextn=end)
        out.append((pts, w, pt, bgn, end))
    return out


def crafted(path):
    g = GDS()
    g.begin()
    g.bgnstr("WIRES")
    _wires(g)
    g.endstr()
    g.bgnstr("LEAF")
    _run(g, 0, 0)
    g.boundary(3, 0, [(0, 0), (10, 0), (10, 10), (0, 10)], props=[(1, "p")])   # general path
    _run(g, 0, 500, n_layers=(3, 1, 4))
    g.box(5, 0, -20, -30, 40, 50)
    g.box(5, 1, 10, 10, 11, 12)
    g.path(6, 0, [(0, 0), (0, 200)], 20, pathtype=2)
    _run(g, 0, 1000)
    g.text(7, 0, 5, 5, "t")
    _run(g, 0, 1500, n_layers=(2,))
    g.endstr()
    g.bgnstr("MID")
    _run(g, 10000, 0)
    for i in range(5):
        g.sref("LEAF", 20000 * i, 0)
        g.sref("LEAF", 20000 * i, 5000, angle=90.0)
        g.sref("LEAF", 20000 * i, 9000, reflect=True)
        g.sref("LEAF", 20000 * i, 14000, mag=2.0, props=[(3, "x")])
    g.aref("LEAF", 2, 3, (0, -20000), (2 * 5000, -20000), (0, -20000 + 3 * 6000))
    g.endstr()
    g.bgnstr("TOP")
    g.sref("MID", 0, 0)
    g.sref("MID", 0, 100000, angle=180.0)
    g.sref("LEAF", -50000, 0)
    g.sref("MID", 300000, 0)
    g.sref("WIRES", 0, -300000)
    _run(g, -90000, -90000)
    g.endstr()
    g.endlib()
    with open(path, "wb") as f:
        f.write(g.bytes())
    return g


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fast") / "fastpaths.gds")
    g = crafted(path)
    kl = kref.kload(path)
    e = {"file": "fastpaths.gds", "path": path, "records": census(g.bytes()),
         "num_cells": len(kref.kcell_names(kl)), "top_cells": kref.ktop_cells(kl),
         "dbu_um": kl.dbu, "layers": [f"{l}/{d}" for l, d in kref.klayers_all(kl)]}
    return e, T.Ours(path), kl


@pytest.mark.parametrize("check", [
    "test_schema_and_cells", "test_record_counts", "test_layers", "test_bboxes",
    "test_poly_bbox_and_kind", "test_shape_counts_per_cell_layer", "test_areas_per_cell_layer",
    "test_placements"])
def test_against_klayout(pair, check):
    getattr(T, check)(pair)


@pytest.mark.parametrize("spec", [[1], [(2, 0), 4], [(1, 1), "3/0", 5]])
def test_layer_filter_in_runs(pair, spec):
    from engine.layers import matches, parse_layers
    e, full, kl = pair
    part = T.Ours(e["path"], layers=spec)
    specs = parse_layers(spec)
    want = [ld for ld in full.layer_list() if matches(specs, *ld)]
    assert want and part.layer_list() == want
    fa, pa = full.areas2(), part.areas2()
    for cell in fa:
        assert pa[cell] == {ld: v for ld, v in fa[cell].items() if ld in want}, cell
    fc, pc = full.poly_counts(), part.poly_counts()
    for cell in fc:
        assert pc[cell] == {ld: v for ld, v in fc[cell].items() if ld in want}, cell


def test_degenerate_boundaries_in_a_run(tmp_path):
    """Boundaries with fewer than 3 points (closing point dropped) inside a run of plain ones are
    skipped, counted and reported; the others are stored unchanged."""
    from engine.database import polygon_arrays
    from engine.reader import load_gdsii
    g = GDS()
    g.begin()
    g.bgnstr("A")
    want = []
    for i in range(10):
        pts = [(i, 0), (i + 10, 0), (i + 10, 5), (i, 5)]
        g.boundary(1, 0, pts)
        want.append(pts)
        g.boundary(1, 0, [(i, 0), (i + 3, 3)])                 # 2 points + closing point
        g.boundary(1, 0, [(i, 0)], close=False)                # 1 point
        tri = [(i, 0), (i + 4, 0), (i, 9)]
        g.boundary(2, 0, tri)
        want.append(tri)
    g.endstr()
    g.endlib()
    p = tmp_path / "degenerate.gds"
    p.write_bytes(g.bytes())
    arrays, meta = load_gdsii(str(p))
    assert meta["counts"]["boundary"] == 40
    assert any("20 BOUNDARY elements with fewer than 3 points" in w for w in meta["warnings"])
    off, v = polygon_arrays(arrays)
    got = [sorted(map(tuple, v[off[k]:off[k + 1]].tolist())) for k in range(len(off) - 1)]
    assert got == [sorted(w) for w in want]
    assert np.array_equal(arrays["poly_bbox"][:, :2], np.array([np.min(w, 0) for w in want]))
    assert np.array_equal(arrays["poly_bbox"][:, 2:], np.array([np.max(w, 0) for w in want]))


def test_two_point_path_memo_is_the_construction(tmp_path):
    """Every two-point path is stored with the very vertices of engine.paths.path_polygon (the
    construction tested against KLayout in test_paths), whether its hull came from the memo or
    was built; round-ended boxes are KLayout's (checked in test_against_klayout)."""
    from engine.database import polygon_arrays
    from engine.paths import path_polygon
    from engine.reader import load_gdsii
    g = GDS()
    g.begin()
    g.bgnstr("W")
    wires = _wires(g, n=3000, seed=9)
    g.endstr()
    g.endlib()
    p = tmp_path / "wires.gds"
    p.write_bytes(g.bytes())
    arrays, meta = load_gdsii(str(p))
    off, v = polygon_arrays(arrays)
    assert len(off) - 1 == len(wires)
    for k, (pts, w, pt, bgn, end) in enumerate(wires):
        want = path_polygon(pts, w, pt, bgn, end)
        got = v[off[k]:off[k + 1]]
        if len(want) == 4 and len(got) == 4 and not np.array_equal(got, want):
            assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, want.tolist())), k
        else:
            assert np.array_equal(got, want), (k, pts, w, pt, bgn, end)


def test_integer_placement_box_is_the_float_construction():
    """_bboxes boxes placements with integer matrices (90-degree multiples, integer MAG) in
    integers (_int_box); it must give _corner_box's rounded floating-point result exactly."""
    from engine.reader import _corner_box, _int_box, _small_ints
    rng = np.random.default_rng(3)
    for _ in range(20000):
        k = int(rng.integers(0, 4))
        mag = float(rng.choice([1, 1, 2, 3, 1024]))
        f = float(rng.choice([-1, 1]))
        co, si = [(1, 0), (0, 1), (-1, 0), (0, -1)][k]
        m = (mag * co, -mag * si * f + 0.0, mag * si, mag * co * f)
        assert _small_ints(*m)
        b = sorted(int(v) for v in rng.integers(-2 ** 31, 2 ** 31, 2))
        c = sorted(int(v) for v in rng.integers(-2 ** 31, 2 ** 31, 2))
        box = (b[0], c[0], b[1], c[1])
        tx, ty = (int(v) for v in rng.integers(-2 ** 31, 2 ** 31, 2))
        want = _corner_box(*m, float(tx), float(ty), *box)
        assert _int_box(*(int(v) for v in m), tx, ty, *box) == want, (m, box, tx, ty)
    assert not _small_ints(0.5, 0.0, 0.0, 0.5) and not _small_ints(0.866, -0.5, 0.5, 0.866)
