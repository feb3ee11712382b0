"""engine.simple: the rasterizer's test for simple polygons.

- The sweep gives the all-pairs loop's answer (hypothesis, polygons on a small grid, so that
  edges touch and cross often); the heap sort orders as numpy does.
- Keyholes (KLayout's to_simple_polygon of polygons with holes, slanted or not; parts joined by
  cuts; islands in holes) are simple, and rasterize as KLayout does.
- Polygons whose winding is not 0 or 1 everywhere (wound twice, a hole in the outline's
  direction, parts of opposite directions, a figure 8 through one vertex, a bow-tie) stay
  complex, and so does a hole touching the outline at a point; they rasterize as KLayout does
  all the same.
- Long polygons: a comb of 300 teeth is simple; one of 3000 teeth exceeds the sweep's budget
  (complex) without a quadratic wait.
- Soundness: whenever a polygon is taken as simple, its winding number at points all over it
  is 0 or the sign of its area (hypothesis: keyholes with random spikes, reversals, repeats,
  moved vertices, walked twice).
- Once more in a subprocess under NUMBA_BOUNDSCHECK=1.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from engine.simple import (SWEEP_MIN, _heap_sort, _is_simple, _pairs_apart, _radix_sort,
                           _run_sort, _sweep_apart, scratch_shapes)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conftest import run_boundscheck  # noqa: E402
from test_raster import check  # noqa: E402


def _scratch():
    (a, b), (c, d) = scratch_shapes()
    return np.zeros((a, b)), np.zeros((c, d), np.int32)


SK, SI = _scratch()


def simple(points):
    uv = np.asarray(points, dtype=np.float64)
    return _is_simple(uv, 0, len(uv), SK, SI)


def swept(uv):
    """The sweep alone, every edge followed by the next (what _is_simple runs from SWEEP_MIN
    vertices on, before any reduction)."""
    n = len(uv)
    if any((uv[k] == uv[(k + 1) % n]).all() for k in range(n)):
        return False
    ea = np.arange(n, dtype=np.int32)
    nxt = ((ea + 1) % n).astype(np.int32)
    return bool(_sweep_apart(uv, 0, n, ea, nxt, nxt, SK, SI[0], SI[1], SI[4]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=3, max_size=70))
def test_sweep_equals_all_pairs(points):
    uv = np.asarray(points, dtype=np.float64)
    assert swept(uv) == bool(_pairs_apart(uv, 0, len(uv)))


@settings(max_examples=300, deadline=None)
@given(st.integers(24, 300), st.integers(0, 10 ** 6), st.sampled_from([3, 40, 1000]))
def test_sweep_equals_all_pairs_star(n, seed, grid):
    """Star-shaped polygons (their edges' keys in few runs: the merge of runs sorts them),
    snapped to a coarse grid so that some edges touch or fold."""
    rng = np.random.default_rng(seed)
    a = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.3, 1.0, n) * grid
    uv = np.round(np.stack([r * np.cos(a), r * np.sin(a)], 1))
    assert swept(uv) == bool(_pairs_apart(uv, 0, n))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=300),
       st.integers(0, 8))
def test_run_sort(keys, blocks):
    """_run_sort on keys made of a few monotone pieces (sorted or reversed slices; blocks 0:
    the keys as drawn, jagged): numpy's stable order. With room for fewer run starts than the
    keys hold: False."""
    m = len(keys)
    key = np.asarray(keys)
    if blocks:
        parts = np.array_split(key, blocks)
        key = np.concatenate([np.sort(p)[::(-1) ** k] for k, p in enumerate(parts)])
    idx = np.zeros(m, np.int32)
    assert _run_sort(idx, m, key, np.zeros(m, np.int32), np.zeros(m + 2, np.int32))
    assert (idx == np.argsort(key, kind="stable")).all()
    runs, t = 0, 0          # runs: strictly falling, else not falling
    while t < m:
        runs += 1
        u = t + 1
        fall = u < m and key[u] < key[t]
        while u < m and (key[u] < key[u - 1]) == fall:
            u += 1
        t = u
    short = np.zeros(runs, np.int32)      # room for runs - 1 starts and the end
    assert not _run_sort(idx, m, key, np.zeros(m, np.int32), short)


@settings(max_examples=150, deadline=None)
@given(st.integers(256, 3000), st.integers(0, 10 ** 6),
       st.sampled_from(["jagged", "grid", "signs", "tiny", "ulps"]))
def test_run_sort_radix(m, seed, kind):
    """Keys in more runs than RADIX_RUNS, RADIX_MIN or more of them, room for the radix
    counts: _run_sort takes the radix sort; numpy's stable order (-0.0 equal to 0.0), and
    _radix_sort called directly gives it too."""
    rng = np.random.default_rng(seed)
    key = {"jagged": lambda: rng.uniform(-1e3, 1e3, m),
           "grid": lambda: np.round(rng.normal(1.2e7, 1e6, m)) * 0.25,
           "signs": lambda: rng.choice([-0.0, 0.0, 1.0, -1.0, 2.5, -2.5], m),
           "tiny": lambda: rng.integers(-3, 4, m) * 1e-300,
           # keys apart in their lowest bytes only
           "ulps": lambda: 1.0 + rng.integers(0, 600, m) * np.finfo(float).eps}[kind]()
    ref = np.argsort(key, kind="stable")
    idx = np.zeros(m, np.int32)
    assert _run_sort(idx, m, key, np.zeros(m, np.int32), np.zeros(m + 8 * 256, np.int32))
    assert (idx == ref).all()
    idx[:] = -1
    _radix_sort(idx, m, key, np.zeros(m, np.int32), np.zeros(8 * 256, np.int32))
    assert (idx == ref).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(-5, 5)), min_size=1, max_size=200),
       st.integers(0, 2))
def test_heap_sort(points, mode):
    """Mode 0 by a key, 1 by (v, u), 2 by (u, v): the keys in numpy's order."""
    uv = np.asarray(points, dtype=np.float64)
    n = len(uv)
    key = uv[:, 1] * 100 + uv[:, 0] if mode != 2 else uv[:, 0] * 100 + uv[:, 1]
    idx = np.arange(n, dtype=np.int32)
    _heap_sort(idx, n, uv, 0, key if mode == 0 else uv[0], mode)
    assert sorted(idx.tolist()) == list(range(n))
    assert (key[idx] == np.sort(key)).all()


def star(rng, n, cx, cy, r0, r1):
    """A simple star-shaped polygon of n vertices around (cx, cy), radii in [r0, r1], angles
    evenly spaced and jittered (so it holds the disc of radius about r0 cos(pi / n))."""
    a = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
    r = rng.uniform(r0, r1, n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1).round()


def keyhole(outer, holes):
    """KLayout's simple polygon (cut lines to the holes) of outer with holes, integer points."""
    import klayout.db as kdb
    poly = kdb.Polygon([kdb.Point(int(x), int(y)) for x, y in outer])
    for h in holes:
        poly.insert_hole([kdb.Point(int(x), int(y)) for x, y in h])
    sp = poly.to_simple_polygon()
    return [(p.x, p.y) for p in sp.each_point()]


def test_klayout_keyholes_are_simple():
    rng = np.random.default_rng(5)
    for t in range(40):
        n = int(rng.integers(10, 60))
        outer = star(rng, n, 500, 500, 440, 490) if t % 2 else [(0, 0), (1000, 0), (1000, 1000),
                                                                   (0, 1000)]
        holes = []
        for k in range(int(rng.integers(1, 4))):
            cx = 250 + 250 * k
            holes.append(star(rng, int(rng.integers(3, 12)), cx, 500, 40, 90)
                         if t % 3 else [(cx - 60, 440), (cx + 60, 440), (cx + 60, 560),
                                        (cx - 60, 560)])
        pts = keyhole(outer, holes)
        assert len(set(pts)) < len(pts), "a keyhole repeats its cut's ends"
        assert simple(pts) == 1, (t, pts)
        if t < 8:
            check([pts], (0, 1000), (37, 41), (28, 28))


CASES = {
    # two parts joined by a cut (there and back), both counter-clockwise: winding 0 or 1
    "two parts": ([(0, 0), (40, 0), (40, 40), (60, 40), (60, 20), (100, 20), (100, 80), (60, 80),
                   (60, 40), (40, 40), (40, 60), (0, 60)], 1),
    # an island inside a hole inside the outline
    "island": ([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0), (20, 20), (20, 80), (80, 80),
                (80, 20), (40, 40), (60, 40), (60, 60), (40, 60), (40, 40), (80, 20), (20, 20),
                (0, 0)], 1),
    # a repeated vertex (zero-length edge) in an otherwise plain polygon
    "repeated vertex": ([(0, 0), (50, 0), (50, 0), (50, 30), (0, 30)], 1),
    "wound twice": ([(0, 0), (50, 0), (50, 50), (0, 50)] * 2, 0),
    "hole walked like the outline": ([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0), (20, 20),
                                      (80, 20), (80, 80), (20, 80), (20, 20), (0, 0)], 0),
    "parts of opposite directions": ([(0, 0), (40, 0), (40, 40), (60, 40), (60, 80), (100, 80),
                                      (100, 20), (60, 20), (60, 40), (40, 40), (40, 60), (0, 60)],
                                     0),
    "figure 8 through a vertex": ([(0, 0), (50, 50), (100, 0), (100, 100), (50, 50), (0, 100)],
                                  0),
    "bow-tie": ([(0, 0), (100, 100), (100, 0), (0, 100)], 0),
    # a text glyph's way: the hole's side runs on along the cut to a point of the outline;
    # cut at (80, 80), the two pieces there and back cancel
    "hole on a cut": ([(0, 0), (0, 100), (80, 100), (100, 80), (20, 80), (20, 20), (80, 20),
                       (80, 80), (100, 80), (100, 0)], 1),
    # a hole touching the outline at one point: two edges leave it (left complex)
    "hole touching the outline": ([(0, 0), (50, 0), (40, 20), (60, 20), (50, 0), (100, 0),
                                   (100, 100), (0, 100)], 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_winding_cases(name):
    pts, want = CASES[name]
    assert simple(pts) == want
    big = SWEEP_MIN // len(pts) + 1     # the same polygon with extra vertices on its first edge:
    (x0, y0), (x1, y1) = pts[0], pts[1]  # the sweep's way instead of all pairs
    extra = [(x0 + (x1 - x0) * k / (4 * big), y0 + (y1 - y0) * k / (4 * big))
             for k in range(1, 4 * big)]
    assert simple([pts[0]] + extra + pts[1:]) == want
    check([pts], (-7, 110), (9, 11), (14, 14))
    check([pts, [(30, 30), (70, 30), (70, 45), (30, 45)]], (-7, 110), (9, 11), (14, 14))


def winding(pts, sx, sy):
    """Winding numbers of polygon pts at the points (sx, sy): crossings of the ray to +x."""
    p = np.asarray(pts, dtype=np.float64)
    q = np.roll(p, -1, axis=0)
    x0, y0, x1, y1 = p[:, 0], p[:, 1], q[:, 0], q[:, 1]
    up = (y0[None] <= sy[:, None]) & (y1[None] > sy[:, None])
    down = (y1[None] <= sy[:, None]) & (y0[None] > sy[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        x = x0[None] + (sy[:, None] - y0[None]) * (x1 - x0)[None] / (y1 - y0)[None]
    right = x > sx[:, None]
    return (up & right).sum(1) - (down & right).sum(1)


def on_edge(pts, sx, sy, tol=1e-9):
    """Which points (sx, sy) lie on an edge of polygon pts (where the winding is undefined)."""
    p = np.asarray(pts, dtype=np.float64)
    q = np.roll(p, -1, axis=0)
    dx, dy = (q - p)[:, 0][None], (q - p)[:, 1][None]
    ex, ey = sx[:, None] - p[:, 0][None], sy[:, None] - p[:, 1][None]
    cross = dx * ey - dy * ex
    dot = dx * ex + dy * ey
    return ((np.abs(cross) <= tol) & (dot >= 0) & (dot <= dx * dx + dy * dy)).any(1)


def mutated_keyhole(rng):
    """An outline on a 24 x 24 grid with 0-2 rectangular holes joined by cuts, then 0-3 random
    changes (a spike there and back, a hole walked the other way, a repeated vertex, the whole
    walked twice, a vertex moved): simple or not, often close to the border between."""
    outer = [(0, 0), (24, 0), (24, 24), (0, 24)]
    if rng.random() < 0.5:
        outer = [tuple(v) for v in star(rng, int(rng.integers(5, 12)), 12, 12, 9, 12)]
    pts = list(outer)
    for h in range(int(rng.integers(0, 3))):
        x, y = int(rng.integers(5, 15)), 6 + 8 * h
        hole = [(x, y), (x, y + 3), (x + 4, y + 3), (x + 4, y)]    # clockwise: a hole
        k = int(rng.integers(len(pts)))
        pts = pts[:k + 1] + hole + [hole[0], pts[k]] + pts[k + 1:]
    for _ in range(int(rng.integers(0, 4))):
        op = int(rng.integers(5))
        k = int(rng.integers(len(pts)))
        if op == 0:
            pts = pts[:k + 1] + [tuple(rng.integers(0, 25, 2)), pts[k]] + pts[k + 1:]
        elif op == 1 and len(pts) > 8:
            j = int(rng.integers(k, len(pts)))
            pts = pts[:k] + pts[k:j][::-1] + pts[j:]
        elif op == 2:
            pts = pts[:k + 1] + [pts[k]] + pts[k + 1:]
        elif op == 3:
            pts = pts + pts
        else:
            pts[k] = tuple(rng.integers(0, 25, 2))
    return [(float(x), float(y)) for x, y in pts]


@settings(max_examples=600, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
@example(24148)
def test_simple_means_winding_0_or_1(seed):
    """Soundness: whenever _is_simple says simple, the winding number at points all over the
    polygon (off the grid lines; those a slanted edge passes through are left out: seed 24148
    put one on a spike, where the ray count says 2) is 0 or the sign of the area; the same for
    a copy with 31 more vertices along its first edge (the sweep's size)."""
    rng = np.random.default_rng(seed)
    pts = mutated_keyhole(rng)
    gx, gy = np.meshgrid(np.arange(-1, 26) + 0.37, np.arange(-1, 26) + 0.61)
    sx, sy = gx.ravel(), gy.ravel()
    off = ~on_edge(pts, sx, sy)
    sx, sy = sx[off], sy[off]
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]))
    w = winding(pts, sx, sy)
    (x0, y0), (x1, y1) = pts[0], pts[1]
    big = [pts[0]] + [(x0 + (x1 - x0) * k / 32, y0 + (y1 - y0) * k / 32)
                      for k in range(1, 32)] + pts[1:]
    for p in (pts, big):
        if simple(p):
            g = 1 if area > 0 else -1
            assert set(np.unique(w)) <= {0, g}, (p, np.unique(w))


def comb(teeth, height=100000):
    pts = [(0, 0)]
    for k in range(teeth):
        pts += [(10 * k, height), (10 * k + 5, height), (10 * k + 5, 10)]
    pts += [(10 * teeth, 10), (10 * teeth, 0)]
    return pts


def test_long_polygons():
    assert simple(comb(300)) == 1
    t = time.perf_counter()
    assert simple(comb(3000)) == 0      # 9000 edges, 6000 active at once: past the budget
    assert time.perf_counter() - t < 5.0
    rng = np.random.default_rng(2)
    ring = keyhole(star(rng, 4000, 0, 0, 9000, 9100), [star(rng, 3000, 0, 0, 5000, 5100)])
    assert simple(ring) == 1


def boundscheck_main():
    import numba
    assert numba.config.BOUNDSCHECK
    rng = np.random.default_rng(3)
    sk, si = _scratch()
    found = [0, 0, 0]
    for t in range(400):
        n = int(rng.integers(3, 90))
        pts = rng.integers(0, 9 if t % 2 else 1000, (n, 2)).astype(np.float64)
        if t % 5 == 0:
            pts = np.concatenate([pts, pts[::-1]])     # there and back: every edge paired
        if t % 7 == 0:
            pts = np.repeat(pts, 2, axis=0)            # zero-length edges
        found[_is_simple(pts, 0, len(pts), sk, si)] += 1
    for t in range(300):
        pts = np.asarray(mutated_keyhole(rng), dtype=np.float64)
        found[_is_simple(pts, 0, len(pts), sk, si)] += 1
    for name in sorted(CASES):
        pts = np.asarray(CASES[name][0], dtype=np.float64)
        assert _is_simple(pts, 0, len(pts), sk, si) == CASES[name][1], name
    for m in (256, 1000, 3000):     # keys in many runs: the radix sort
        key = rng.uniform(-1e3, 1e3, m)
        idx = np.zeros(m, np.int32)
        assert _run_sort(idx, m, key, np.zeros(m, np.int32), np.zeros(m + 8 * 256, np.int32))
        assert (idx == np.argsort(key, kind="stable")).all()
        pts = rng.integers(0, 1000, (m, 2)).astype(np.float64)
        found[_is_simple(pts, 0, m, sk, si)] += 1
    print("BOUNDSCHECK DONE", found)


def test_simple_under_boundscheck(tmp_path):
    run_boundscheck(tmp_path, "test_simple")
