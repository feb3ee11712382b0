"""PATH -> polygon against KLayout's own path hull (klayout.db.Path.polygon)."""
import numpy as np
import pytest

import klayout.db as kdb

from engine.paths import gds_extensions, path_polygon


def klayout_polygon(pts, width, pathtype, bgn=None, end=None):
    # KLayout's GDS reader semantics, spelled out independently of engine.paths
    if pathtype not in (0, 1, 2, 4):
        pathtype = 0
    half = int(width / 2)
    b = bgn if bgn is not None else (half if pathtype in (1, 2) else 0)
    e = end if end is not None else (half if pathtype in (1, 2) else 0)
    path = kdb.Path([kdb.Point(int(x), int(y)) for x, y in pts], abs(width), b, e, pathtype == 1)
    poly = path.polygon()
    pts = np.array([[p.x, p.y] for p in poly.each_point_hull()], dtype=np.int64)
    return pts, poly.area2(), poly.bbox()


def area2(a):
    x, y = a[:, 0].astype(np.float64), a[:, 1].astype(np.float64)
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def random_points(rng, kind, n):
    if kind == "arbitrary":
        return rng.integers(-1000, 1000, (n, 2))
    if kind == "manhattan45":   # 0/45/90-degree joins, acute and obtuse
        return np.cumsum(rng.choice([-1, 0, 1], (n, 2)) * rng.integers(1, 500, (n, 1)), axis=0)
    if kind == "grid":          # many reversals, collinear and duplicate points
        return np.cumsum(rng.integers(-2, 3, (n, 2)) * 100, axis=0)
    # short segments with sharp angles: loops and cut-off corners
    return np.cumsum(rng.integers(-40, 41, (n, 2)), axis=0)


@pytest.mark.parametrize("pathtype", [0, 1, 2, 4])
@pytest.mark.parametrize("kind", ["arbitrary", "manhattan45", "grid", "short"])
def test_path_polygon_matches_klayout(pathtype, kind):
    rng = np.random.default_rng(1000 * pathtype + len(kind))
    checked = 0
    for _ in range(120):
        n = int(rng.integers(1, 7))
        pts = random_points(rng, kind, n)
        width = int(rng.integers(-300, 301))   # negative = absolute width
        bgn = end = None
        if pathtype == 4 or rng.random() < 0.1:   # BGNEXTN/ENDEXTN (also given on other types)
            bgn, end = int(rng.integers(-100, 250)), int(rng.integers(-100, 250))
        ours = path_polygon(pts, width, pathtype, bgn, end)
        if width == 0:
            assert len(ours) == 0
            continue
        ref, ref_area2, bbox = klayout_polygon(pts, width, pathtype, bgn, end)
        assert sorted(map(tuple, ours.tolist())) == sorted(map(tuple, ref.tolist())), (pts, width)
        assert abs(area2(ours) - ref_area2) <= 1e-9 * max(ref_area2, 1)
        if len(ours):
            assert (ours[:, 0].min(), ours[:, 1].min(), ours[:, 0].max(), ours[:, 1].max()) == \
                (bbox.left, bbox.bottom, bbox.right, bbox.top)
        checked += 1
    assert checked > 100


def test_simple_cases_by_hand():
    # flush horizontal wire 0..100, width 20: rectangle y -10..10
    assert sorted(map(tuple, path_polygon([(0, 0), (100, 0)], 20, 0).tolist())) == \
        [(0, -10), (0, 10), (100, -10), (100, 10)]
    # square ends extend by half the width
    assert sorted(map(tuple, path_polygon([(0, 0), (100, 0)], 20, 2).tolist())) == \
        [(-10, -10), (-10, 10), (110, -10), (110, 10)]
    # negative width: absolute width, but (as KLayout reads it) the implied square-end
    # extension is half the signed width, so the ends pull in
    assert sorted(map(tuple, path_polygon([(0, 0), (100, 0)], -20, 2).tolist())) == \
        [(10, -10), (10, 10), (90, -10), (90, 10)]
    # custom extensions
    p = path_polygon([(0, 0), (0, 50)], 10, 4, 3, 7)
    assert (p[:, 1].min(), p[:, 1].max()) == (-3, 57)
    # round ends: a 16-point half circle per end
    assert len(path_polygon([(0, 0), (1000, 0)], 200, 1)) == 32
    assert len(path_polygon([(0, 0), (10, 0)], 0, 0)) == 0


def test_extension_rules():
    assert gds_extensions(2, 11) == (11, 5, 5, False)
    assert gds_extensions(2, -11) == (11, -5, -5, False)   # KLayout: w/2 of the signed width
    assert gds_extensions(1, 10) == (10, 5, 5, True)
    assert gds_extensions(4, 10, 1, 2) == (10, 1, 2, False)
    assert gds_extensions(3, 10) == (10, 0, 0, False)      # unknown type read as flush


def _segments(rng, count):
    """Two-point axis-parallel paths, both directions, odd and even widths, custom (also
    negative) extensions, some near the int32 limits."""
    for _ in range(count):
        lim = 2**31 - 5000 if rng.random() < 0.3 else 5000
        x0, y0 = (int(v) for v in rng.integers(-lim, lim, 2))
        d = int(rng.choice([-1, 1]) * rng.integers(1, 3000))
        x1, y1 = (x0 + d, y0) if rng.random() < 0.5 else (x0, y0 + d)
        width = int(rng.integers(1, 1500)) * (1 if rng.random() < 0.8 else -1)
        pathtype = int(rng.choice([0, 2, 4]))
        bgn = end = None
        if pathtype == 4 or rng.random() < 0.2:
            bgn, end = int(rng.integers(-800, 800)), int(rng.integers(-800, 800))
        yield (x0, y0, x1, y1), width, pathtype, bgn, end


def test_segment_hull_matches_klayout_and_the_general_construction():
    """The reader's shortcut for two-point axis-parallel paths gives KLayout's polygon and the very
    points of the general construction, in order."""
    from engine.paths import path_hull, segment_hull
    rng = np.random.default_rng(7)
    out = np.zeros((4, 2), dtype=np.int64)
    gen = np.zeros((64, 2), dtype=np.int64)
    scratch = np.zeros(2, dtype=np.int64)
    for (x0, y0, x1, y1), width, pathtype, bgn, end in _segments(rng, 3000):
        w, b, e, rnd = gds_extensions(pathtype, width, bgn, end)
        assert segment_hull(x0, y0, x1, y1, w, b, e, out) == 4
        k = path_hull(np.array([x0, x1]), np.array([y0, y1]), 2, w, b, e, rnd, scratch,
                      scratch.copy(), gen, 0)
        assert k == 4 and np.array_equal(gen[:4], out), ((x0, y0, x1, y1), width, b, e)
        ref, _, _ = klayout_polygon([(x0, y0), (x1, y1)], width, pathtype, bgn, end)
        assert sorted(map(tuple, out.tolist())) == sorted(map(tuple, ref.tolist()))
    # not a segment it handles: slanted, or a single point
    assert segment_hull(0, 0, 10, 5, 4, 0, 0, out) == 0
    assert segment_hull(3, 3, 3, 3, 4, 0, 0, out) == 0


def test_segment_box_is_the_box_of_segment_hull():
    """The reader stores a two-point axis-parallel path as segment_box alone: it must be the
    bounding box of segment_hull's rectangle (tested above against KLayout)."""
    from engine.paths import segment_box, segment_hull
    rng = np.random.default_rng(11)
    out = np.zeros((4, 2), dtype=np.int64)
    for (x0, y0, x1, y1), width, pathtype, bgn, end in _segments(rng, 3000):
        w, b, e, _ = gds_extensions(pathtype, width, bgn, end)
        assert segment_hull(x0, y0, x1, y1, w, b, e, out) == 4
        box = (out[:, 0].min(), out[:, 1].min(), out[:, 0].max(), out[:, 1].max())
        assert segment_box(x0, y0, x1, y1, w, b, e) == box, ((x0, y0, x1, y1), w, b, e)
