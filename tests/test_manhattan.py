"""engine.manhattan: Manhattan polygons cut into rectangles for the gray rasterizer.

The cut is checked against KLayout (the union of the rectangles XOR the polygon's merged region
is empty, and the rectangles' areas add up to the merged area: they are disjoint), on random
rectilinear closed walks that cross and retrace themselves (the fill rule is each polygon's own
non-zero winding, as KLayout merges), on mixed sets (what is not cut is copied unchanged and
src names its polygon), with scratch too small at first (it grows and the cut runs again), and
once more in a subprocess under NUMBA_BOUNDSCHECK=1. The rasterizer with and without the cut
gives the same picture (and tests/test_raster.py checks it against KLayout on every shared file).
"""
from __future__ import annotations

import sys
from pathlib import Path

import klayout.db as kdb
import numpy as np
import pytest

import engine.raster as R
from engine.manhattan import NMAX_CUT, decompose
from engine.polygons import Polygons

from conftest import run_boundscheck

HERE = Path(__file__).resolve().parent


def walk(rng, n, span=20):
    """A closed rectilinear walk of n vertices (n even) on an integer grid, moves alternating x
    and y: crossings, retraced edges, zero-length moves and collinear vertices all occur."""
    pts = []
    x = y = 0
    for k in range(n // 2):
        x = int(rng.integers(-span, span))
        pts.append((x, y))
        y = int(rng.integers(-span, span)) if k < n // 2 - 1 else 0
        pts.append((x, y))
    return np.array(pts, float)


def kl_merged(p):
    return kdb.Region(kdb.Polygon([kdb.Point(int(a), int(b)) for a, b in p], True)).merged()


def check_cut(p, rects):
    """rects (list of (4, 2) arrays) tile polygon p's filled area exactly, using p's coordinates."""
    reg = kl_merged(p)
    got = kdb.Region()
    area = 0
    for q in rects:
        assert q.shape == (4, 2)
        assert set(q[:, 0]) <= set(p[:, 0]) and set(q[:, 1]) <= set(p[:, 1])
        x0, x1, y0, y1 = q[:, 0].min(), q[:, 0].max(), q[:, 1].min(), q[:, 1].max()
        assert x1 > x0 and y1 > y0
        assert {tuple(v) for v in q} == {(x0, y0), (x1, y0), (x1, y1), (x0, y1)}
        got.insert(kdb.Box(int(x0), int(y0), int(x1), int(y1)))
        area += (x1 - x0) * (y1 - y0)
    assert (got ^ reg).is_empty(), p.tolist()
    assert area == reg.area(), p.tolist()     # disjoint


def pieces(res):
    oxy, ooff, src = res
    return [oxy[ooff[j]:ooff[j + 1]] for j in range(len(src))], src


@pytest.mark.parametrize("seed", range(4))
def test_random_walks_against_klayout(seed):
    rng = np.random.default_rng(seed)
    sc = R.Scratch()
    for _ in range(400):
        n = 2 * int(rng.integers(3, NMAX_CUT // 2 + 1))
        p = walk(rng, n)
        res = decompose(p, np.array([0, n]), sc)
        assert res is not None, p.tolist()
        rects, src = pieces(res)
        assert (src == 0).all()
        check_cut(p, rects)


def test_shapes_by_hand():
    sc = R.Scratch()
    shapes = {
        "L": [(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)],
        "comb": [(0, 0), (5, 0), (5, 1), (4, 1), (4, 3), (3, 3), (3, 1), (2, 1),
                                (2, 3), (1, 3), (1, 1), (0, 1)],
        "collinear vertices": [(0, 0), (2, 0), (4, 0), (4, 2), (4, 4), (0, 4)],
        "keyhole (hole)": [(0, 0), (6, 0), (6, 6), (0, 6), (0, 3), (2, 3), (2, 4), (4, 4),
                           (4, 2), (2, 2), (2, 3), (0, 3)],
        "doubly wound": [(0, 0), (4, 0), (4, 4), (0, 4), (0, 0), (4, 0), (4, 4), (0, 4)],
        "figure eight": [(0, 0), (2, 0), (2, 2), (4, 2), (4, 4), (2, 4), (2, 2), (0, 2)],
    }
    for name, p in shapes.items():
        p = np.array(p, float)
        res = decompose(p, np.array([0, len(p)]), sc)
        assert res is not None, name
        rects, _ = pieces(res)
        check_cut(p, rects)
    # a U with arms of different heights: the taller arm is one rectangle, not one per slab
    u = np.array([(0, 0), (5, 0), (5, 4), (4, 4), (4, 1), (1, 1), (1, 3), (0, 3)], float)
    rects, _ = pieces(decompose(u, np.array([0, len(u)]), sc))
    check_cut(u, rects)
    assert len(rects) == 3


def test_mixed_set_copies_and_names():
    """Rectangles, slanted quads, triangles, a Manhattan polygon over NMAX_CUT vertices and one
    with a NaN stay as they are; the others are cut; src names each output's polygon."""
    rng = np.random.default_rng(5)
    polys, want_cut = [], []
    for k in range(300):
        kind = k % 6
        if kind == 0:
            p = np.array([(0, 0), (3, 0), (3, 2), (0, 2)], float) + k
        elif kind == 1:
            p = np.array([(0, 0), (3, 0), (2, 2), (0, 2)], float) + k
        elif kind == 2:
            p = np.array([(0, 0), (3, 0), (1, 2)], float)
        elif kind == 3:
            p = walk(rng, 2 * int(rng.integers(3, 12))) + k
        elif kind == 4:
            p = walk(rng, NMAX_CUT + 2)
        else:
            p = walk(rng, 8)
            p[3, 0] = np.nan
        polys.append(p)
        want_cut.append(kind == 3)
    xy = np.concatenate(polys)
    off = np.concatenate([[0], np.cumsum([len(p) for p in polys])])
    sc = R.Scratch()
    for _ in range(2):      # first with scratch grown on the way, then reused
        rects, src = pieces(decompose(xy, off, sc))
        assert (np.diff(src) >= 0).all()
        for i, p in enumerate(polys):
            mine = [q for q, s in zip(rects, src) if s == i]
            if want_cut[i]:
                check_cut(p, mine)
            else:
                assert len(mine) == 1
                np.testing.assert_array_equal(mine[0], p)


def test_nothing_to_cut():
    sc = R.Scratch()
    sq = np.array([(0, 0), (1, 0), (1, 1), (0, 1)], float)
    assert decompose(sq, np.array([0, 4]), sc) is None
    L = np.array([(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)], float)
    xy = np.concatenate([L, sq])
    assert decompose(xy, np.array([0, 6, 4]), sc) is None           # offsets going back
    assert decompose(xy, np.array([0, 6, 10]), sc, min_share=0.6) is None


def test_raster_same_with_and_without_cut(shared_dir):
    """Gray images of the real SRAM window with the cut and without it (CUT_MIN_SHARE = inf)
    agree within one level (both are exact up to float rounding)."""
    path = shared_dir / "chameleon" / "sram_1rw1r_32_256_8_sky130.gds"
    if not path.exists():
        pytest.skip(f"{path} not present")
    sys.path.insert(0, str(HERE.parent / "bench"))
    import raster_vs_klayout as B
    polys, win = B.real_window(str(path))
    sc = R.Scratch()
    with_cut = R.rasterize(polys, win, 0.01, mode="gray", scratch=sc)
    assert sc.capacity("mxy"), "the window holds Manhattan polygons: the cut should have run"
    saved = R.CUT_MIN_SHARE
    R.CUT_MIN_SHARE = float("inf")
    try:
        without = R.rasterize(polys, win, 0.01, mode="gray", scratch=R.Scratch())
    finally:
        R.CUT_MIN_SHARE = saved
    assert np.abs(with_cut.astype(int) - without).max() <= 1


def boundscheck_main():
    import numba
    assert numba.config.BOUNDSCHECK
    rng = np.random.default_rng(11)
    sc = R.Scratch()
    for t in range(300):
        polys = [walk(rng, 2 * int(rng.integers(2, NMAX_CUT // 2 + 2)))
                 for _ in range(int(rng.integers(1, 6)))]
        xy = np.concatenate(polys)
        off = np.concatenate([[0], np.cumsum([len(p) for p in polys])])
        decompose(xy, off, sc if t % 2 else R.Scratch())
        R.rasterize(Polygons(xy / 10, off, np.zeros((len(polys), 2), np.int32)),
                    (-2, -2, 2, 2), 0.1, mode="gray", scratch=sc)
    print("BOUNDSCHECK DONE")


def test_cut_under_boundscheck(tmp_path):
    run_boundscheck(tmp_path, "test_manhattan")
