"""engine.raster against independent references.

* gray: KLayout's ``Region.merged().rasterize(...)`` (area of the merged region per pixel). KLayout
  snaps the crossings its merge creates to the integer dbu grid, so for slanted geometry the
  reference region is first moved to the window origin and magnified by ``MAG`` (exact for the
  input vertices): the snapping error becomes negligible.
* binary: KLayout's coverage on every empty / full pixel, and for partially covered pixels an exact
  integer point-in-polygon reference written here (per-polygon non-zero winding, union; centres
  on boundaries follow the rule of a half-open rectangle [x0, x1) x [y0, y1)).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import klayout.db as kdb
from hypothesis import given, settings, strategies as st

import engine.raster as _R
from engine.errors import ClipmillError
from engine.jit import njit
from engine.polygons import Polygons
from engine.raster import Scratch, image_shape, rasterize
from tests.conftest import layout_params

MAG = 4096
DBU = 0.001


# ---------------------------------------------------------------------------------------------
# references

def kl_coverage(polys, origin, pix, shape):
    """KLayout: covered fraction of each pixel (row 0 = top) of the merged polygons.
    polys: list of int (k,2) arrays in dbu; origin (x0, ytop) dbu; pix (px, py) dbu."""
    rows, cols = shape
    px, py = pix
    x0, ytop = origin
    ybot = ytop - rows * py
    lim = 2 ** 30 // MAG
    m = 2 * max(px, py)
    clip = kdb.Region(kdb.Box(-m, -m, cols * px + m, rows * py + m))
    reg = kdb.Region()
    for p in polys:
        q = np.asarray(p, dtype=np.int64) - np.array([x0, ybot])
        if np.abs(q).max() > lim:
            # far-reaching polygon: clip it alone first (the clip's own crossings lie outside
            # the grid, so KLayout's snapping of them does not matter)
            part = kdb.Region(kdb.SimplePolygon([kdb.Point(int(a), int(b)) for a, b in q], True))
            pieces = [[(pt.x, pt.y) for pt in sp.each_point()]
                      for sp in (part & clip).each() for sp in [sp.to_simple_polygon()]]
        else:
            pieces = [q.tolist()]
        for piece in pieces:
            reg.insert(kdb.SimplePolygon([kdb.Point(int(a) * MAG, int(b) * MAG)
                                          for a, b in piece], True))
    a = np.array(reg.merged().rasterize(kdb.Point(0, 0), kdb.Vector(px * MAG, py * MAG),
                                        kdb.Vector(px * MAG, py * MAG), cols, rows),
                 dtype=np.float64)
    return a[::-1] / (px * py * MAG * MAG)


def centre_inside(polys, origin, pix, rc):
    """Exact: is the centre of each pixel (r, c) in rc inside the union (per-polygon non-zero)?"""
    px, py = pix
    x0, ytop = origin
    rc = np.asarray(rc, dtype=np.int64).reshape(-1, 2)
    xc = 2 * x0 + (2 * rc[:, 1] + 1) * px          # doubled coordinates: integers
    yc = 2 * ytop - (2 * rc[:, 0] + 1) * py
    inside = np.zeros(len(rc), dtype=bool)
    for p in polys:
        a = 2 * np.asarray(p, dtype=np.int64)
        b = np.roll(a, -1, axis=0)
        up = a[:, 1] < b[:, 1]
        lo = np.where(up[:, None], a, b)
        hi = np.where(up[:, None], b, a)
        d = np.where(up, 1, -1)
        keep = a[:, 1] != b[:, 1]
        lo, hi, d = lo[keep], hi[keep], d[keep]
        if not len(d):
            continue
        X0, Y0, X1, Y1 = (v[:, None] for v in (lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]))
        row_ok = (Y0 <= yc[None, :]) & (yc[None, :] < Y1)
        left = (X0 - xc[None, :]) * (Y1 - Y0) + (yc[None, :] - Y0) * (X1 - X0) <= 0
        w = (d[:, None] * (row_ok & left)).sum(axis=0)
        inside |= w != 0
    return inside


def to_polygons(polys, dbu=DBU):
    return Polygons.from_list([np.asarray(p, dtype=np.float64) * dbu for p in polys])


def check(polys, origin, pix, shape, *, dbu=DBU, win_frac=(0.0, 0.0)):
    """Rasterize ours (um) and compare with the references; returns (binary, gray)."""
    rows, cols = shape
    px, py = pix
    x0, ytop = origin
    # window: the grid, trimmed by a fraction of the last pixel (rounding must still give shape)
    wx = (cols - win_frac[0]) * px
    wy = (rows - win_frac[1]) * py
    window = (x0 * dbu, (ytop - wy) * dbu, (x0 + wx) * dbu, ytop * dbu)
    assert image_shape(window, (px * dbu, py * dbu)) == shape
    P = to_polygons(polys, dbu)
    g = rasterize(P, window, (px * dbu, py * dbu), mode="gray")
    b = rasterize(P, window, (px * dbu, py * dbu), mode="binary")
    assert g.shape == shape and b.shape == shape and g.dtype == np.uint8
    cov = kl_coverage(polys, origin, pix, shape)
    want = np.floor(255 * cov + 0.5)
    bad = np.abs(g.astype(int) - want) > 1
    assert not bad.any(), (f"gray differs from KLayout at {np.argwhere(bad)[:5].tolist()}: "
                           f"ours {g[bad][:5]}, KLayout {want[bad][:5]}")
    empty = cov <= 1e-12
    full = cov >= 1 - 1e-12
    assert not b[empty].any() and b[full].all()
    part = np.argwhere(~empty & ~full)
    if len(part):
        ref = centre_inside(polys, origin, pix, part)
        got = b[part[:, 0], part[:, 1]].astype(bool)
        assert (got == ref).all(), f"centre rule differs at {part[got != ref][:5].tolist()}"
    return b, g


def box(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


# ---------------------------------------------------------------------------------------------
# hand-made cases (dbu = 1 nm, pixel 10 nm unless stated)

HAND = {
    "rect_on_pixel_edges": [box(10, 10, 50, 40)],
    "rect_vertices_on_centres": [box(5, 5, 35, 25)],
    "rect_cw": [box(5, 5, 35, 25)[::-1]],
    "triangle": [[(0, 0), (80, 0), (0, 80)]],
    "triangle_45_through_centres": [[(5, 5), (75, 5), (5, 75)]],
    "arbitrary_angles": [[(3, 7), (77, 19), (61, 71), (13, 52)]],
    "steep_and_flat": [[(1, 2), (79, 3), (78, 79)], [(40, 1), (41, 78), (39, 60)]],
    "sliver_thin": [box(12, 0, 13, 80), [(0, 33), (80, 34), (80, 35), (0, 34)]],
    "larger_than_window": [box(-1000, -1000, 1000, 1000)],
    "larger_with_slant": [[(-5000, -3000), (7000, -2000), (300, 9000)]],
    "touching": [box(0, 0, 40, 40), box(40, 0, 80, 40), box(0, 40, 40, 80)],
    "overlapping": [box(3, 3, 47, 47), box(23, 23, 77, 77), box(13, 33, 63, 43)],
    "overlapping_slanted": [[(0, 0), (70, 10), (30, 70)], [(10, 60), (75, 5), (60, 75)]],
    "keyhole_hole": [[(0, 0), (80, 0), (80, 80), (0, 80), (0, 0), (25, 25), (25, 55), (55, 55),
                      (55, 25), (25, 25)]],
    "keyhole_slanted": [[(0, 0), (80, 0), (80, 80), (0, 80), (0, 0), (25, 25), (15, 55), (55, 65),
                         (55, 25), (25, 25)]],
    "bowtie": [[(0, 0), (80, 80), (80, 0), (0, 80)]],
    "bowtie_neg_lobe_covered": [[(0, 0), (80, 80), (80, 0), (0, 80)], box(40, 0, 80, 80)],
    "doubly_wound": [box(10, 10, 70, 70) * 2],
    "wound_twice_inner": [[(0, 0), (80, 0), (80, 80), (0, 80), (0, 0), (20, 20), (60, 20),
                           (60, 60), (20, 60), (20, 20)]],
    "pentagram": [[(40, 0), (64, 78), (1, 29), (79, 29), (16, 78)]],
    "degenerate": [[(0, 0), (50, 50), (20, 20)], [(5, 5), (5, 5), (5, 5)], [(1, 1), (70, 1)]],
    "outside_left_and_right": [box(-300, 10, -100, 70), box(100, 10, 300, 70),
                               [(-50, 0), (-10, 80), (-60, 80)]],
    "many_overlaps_one_pixel": [box(11 + i, 12 + i, 18 + i, 17 + 2 * i) for i in range(6)],
    # two triangles whose boxes are apart inside pixel (2, 2) (their areas add up there), then
    # a third one over the first or over the second: the pixel's sum is no longer exact
    "apart_pair_third_over_first": [[(21, 21), (24, 21), (21, 28)], [(26, 22), (29, 22), (29, 29)],
                                    [(22, 22), (23, 29), (20, 29)]],
    "apart_pair_third_over_last": [[(21, 21), (24, 21), (21, 28)], [(26, 22), (29, 22), (29, 29)],
                                   [(25, 21), (29, 25), (27, 29)]],
    # an apart pair inside a complex polygon (the finishing pass's scalar path)
    "apart_pair_in_bowtie": [[(1, 1), (79, 79), (79, 1), (1, 79)],
                             [(11, 31), (14, 31), (11, 38)], [(16, 32), (19, 32), (19, 39)]],
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_made(name):
    check(HAND[name], (0, 80), (10, 10), (8, 8))


@pytest.mark.parametrize("name", ["triangle", "overlapping_slanted", "keyhole_slanted",
                                  "bowtie_neg_lobe_covered", "touching"])
def test_hand_made_odd_grid(name):
    # x and y pixel sizes differ, grid not aligned with the geometry, window not whole pixels
    check(HAND[name], (-3, 83), (7, 11), (8, 12), win_frac=(0.4, 0.7))


def test_centre_rule_exact():
    # centres exactly on edges: left/bottom edges inside, right/top edges outside
    b = rasterize(to_polygons([box(5, 5, 35, 25)]), (0, 0, 0.04, 0.04), 0.01)
    want = np.zeros((4, 4), np.uint8)
    want[2:4, 0:3] = 1          # centres x = 5, 15, 25 (35 excluded), y = 5, 15 (25 excluded)
    assert (b == want).all()
    # 45-degree hypotenuse through centres: the interior is left of it -> outside
    t = rasterize(to_polygons([[(0, 0), (40, 0), (0, 40)]]), (0, 0, 0.04, 0.04), 0.01)
    assert (t == np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]])).all()
    # the mirrored triangle: hypotenuse has the interior on its right -> inside
    t = rasterize(to_polygons([[(40, 0), (40, 40), (0, 0)]]), (0, 0, 0.04, 0.04), 0.01)
    assert (t == np.array([[0, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]])).all()


def test_fill_rule_matches_klayout_merge():
    # KLayout's merge: per-polygon non-zero winding, union over polygons
    bow = [(0, 0), (100, 100), (100, 0), (0, 100)]
    reg = kdb.Region(kdb.SimplePolygon([kdb.Point(*p) for p in bow], True))
    reg.insert(kdb.Box(50, 0, 100, 100))
    assert reg.merged().area() == 7500         # the -1 lobe under the box: still one layer
    twice = box(0, 0, 100, 100) * 2
    reg = kdb.Region(kdb.SimplePolygon([kdb.Point(*p) for p in twice], True))
    assert reg.merged().area() == 10000
    P = to_polygons([bow, box(50, 0, 100, 100)])
    g = rasterize(P, (0, 0, 0.1, 0.1), 0.001, mode="gray")
    assert abs(g.astype(float).sum() / 255 - 7500) < 1
    g = rasterize(to_polygons([twice]), (0, 0, 0.1, 0.1), 0.01, mode="gray")
    assert (g == 255).all()


# ---------------------------------------------------------------------------------------------
# synthetic random sets

def random_polys(rng, n, span, kind):
    out = []
    for _ in range(n):
        if kind == "rects" or (kind == "mixed" and rng.random() < 0.5):
            x, y = rng.integers(-span // 4, span, 2)
            w, h = rng.integers(1, span // 3, 2)
            out.append(box(x, y, x + w, y + h))
        elif kind == "manhattan":
            x, y = rng.integers(0, span, 2)
            a, b, c = rng.integers(1, span // 3, 3)
            out.append([(x, y), (x + a, y), (x + a, y + b), (x + c, y + b), (x + c, y + 2 * b),
                        (x, y + 2 * b)])
        else:
            k = int(rng.integers(3, 7))
            cx, cy = rng.integers(0, span, 2)
            out.append(np.stack([cx + rng.integers(-span // 4, span // 4, k),
                                 cy + rng.integers(-span // 4, span // 4, k)], 1))
    return out


@pytest.mark.parametrize("kind", ["rects", "manhattan", "mixed", "random"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_synthetic(kind, seed):
    rng = np.random.default_rng(seed * 17 + len(kind))
    px, py = int(rng.integers(3, 13)), int(rng.integers(3, 13))
    rows, cols = int(rng.integers(10, 40)), int(rng.integers(10, 40))
    polys = random_polys(rng, int(rng.integers(5, 60)), max(rows * py, cols * px), kind)
    check(polys, (int(rng.integers(-20, 20)), rows * py), (px, py), (rows, cols),
          win_frac=(float(rng.random()), float(rng.random())))


def test_dense_overlaps():
    rng = np.random.default_rng(7)
    polys = random_polys(rng, 400, 200, "rects") + random_polys(rng, 60, 200, "random")
    check(polys, (0, 160), (5, 5), (32, 40))


@pytest.mark.parametrize("rings", [True, False])
def test_rect_marking_both_ways(monkeypatch, rings):
    """Rectangles are marked by walking their edges or (many rectangles) as rings through a
    difference buffer: force each way on overlapping / touching / mixed sets."""
    import engine.raster as raster
    monkeypatch.setattr(raster, "RING_MARK_MIN", 0.0 if rings else float("inf"))
    for name in ("touching", "overlapping", "many_overlaps_one_pixel", "larger_than_window",
                 "outside_left_and_right", "bowtie_neg_lobe_covered", "rect_on_pixel_edges"):
        check(HAND[name], (0, 80), (10, 10), (8, 8))
    rng = np.random.default_rng(11)
    for kind in ("rects", "mixed"):
        check(random_polys(rng, 40, 300, kind), (-7, 300), (9, 7), (43, 33),
              win_frac=(0.4, 0.3))
    check(random_polys(rng, 300, 200, "rects") + random_polys(rng, 30, 200, "random"),
          (0, 160), (5, 5), (32, 40))


# ---------------------------------------------------------------------------------------------
# real layouts: KLayout gives the polygons of a window, both rasterize them

def _window_polys(top, layers, grid):
    polys = []
    for li in layers:
        for poly in kdb.Region(top.begin_shapes_rec_touching(li, grid)).each():
            if poly.holes():
                poly = poly.to_simple_polygon()
                polys.append([(pt.x, pt.y) for pt in poly.each_point()])
            else:
                polys.append([(pt.x, pt.y) for pt in poly.each_point_hull()])
    return polys


def _real_windows(entry, rng, tries=6):
    """Two windows: one layer, and three layers together (overlaps between layers); each the one
    with most partially covered pixels among a few random windows centred on random shapes, of
    a top cell that holds shapes (one drawn at random when there are several)."""
    ly = kdb.Layout()
    ly.read(entry["path"])
    tops = [t for t in ly.top_cells() if not t.bbox().empty()]
    if not tops:    # an empty layout (some OASIS conformance files)
        return ly, []
    top = tops[int(rng.integers(len(tops)))] if len(tops) > 1 else tops[0]
    layers = [li for li in ly.layer_indexes() if not top.bbox_per_layer(li).empty()]
    found = []
    for which in ("one", "three"):
        best = None
        for _ in range(tries):
            if not layers:
                break
            li = layers[int(rng.integers(len(layers)))]
            it = top.begin_shapes_rec(li)
            k = int(rng.integers(0, 200))
            centre = None
            while not it.at_end() and k >= 0:
                centre = it.shape().bbox().transformed(it.trans()).center()
                it.next()
                k -= 1
            if centre is None:
                continue
            p = int(rng.choice([5, 10, 20, 50]))
            pxy = (p, p) if rng.random() < 0.7 else (p, int(rng.choice([5, 10, 20])))
            rows, cols = int(rng.integers(24, 56)), int(rng.integers(24, 56))
            x0 = centre.x - cols * pxy[0] // 2 + int(rng.integers(-pxy[0], pxy[0] + 1))
            y1 = centre.y + rows * pxy[1] // 2 + int(rng.integers(-pxy[1], pxy[1] + 1))
            grid = kdb.Box(x0, y1 - rows * pxy[1], x0 + cols * pxy[0], y1)
            sel = [li] if which == "one" else [
                int(v) for v in rng.choice(layers, min(3, len(layers)), replace=False)]
            polys = _window_polys(top, sel, grid)
            if not polys:
                continue
            cov = kl_coverage(polys, (x0, y1), pxy, (rows, cols))
            npart = int(((cov > 0) & (cov < 1)).sum())
            if best is None or npart > best[0]:
                best = (npart, (polys, (x0, y1), pxy, (rows, cols)))
        if best is not None:
            found.append(best[1])
    return ly, found


def _has_area_shapes(ly):
    """Whether any cell of the layout holds a polygon, box or path (texts have no area)."""
    flags = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes | kdb.Shapes.SPaths
    return any(next(iter(c.shapes(li).each(flags)), None) is not None
               for c in ly.each_cell() for li in ly.layer_indexes())


@pytest.mark.parametrize("entry", layout_params())
def test_real_layout_windows(entry):
    """Random windows of every shared GDSII and OASIS file (KLayout reads them and gives the
    polygons, so the rasterizer is checked on all of them, whatever our reader takes)."""
    rng = np.random.default_rng(zlib.crc32(entry["file"].encode()))
    ly, found = _real_windows(entry, rng)
    if not found:
        # a skip only when there is nothing to rasterize, checked here, not assumed
        assert not _has_area_shapes(ly), f"{entry['file']} has polygons, no window found them"
        pytest.skip(f"{entry['file']} holds no polygons, boxes or paths (texts only or nothing)")
    for polys, origin, pxy, shape in found:
        check(polys, origin, pxy, shape, dbu=ly.dbu, win_frac=(0.25, 0.5))


# ---------------------------------------------------------------------------------------------
# options, buffers, errors

def _sample():
    return to_polygons(HAND["overlapping_slanted"] + [box(0, 0, 13, 80)])


def test_flips_invert_packed_out_scratch():
    P = _sample()
    win = (0, 0, 0.08, 0.07)
    for mode in ("binary", "gray"):
        a = rasterize(P, win, 0.01, mode=mode)
        assert a.shape == (7, 8)
        assert (rasterize(P, win, 0.01, mode=mode, flip_x=True) == a[:, ::-1]).all()
        assert (rasterize(P, win, 0.01, mode=mode, flip_y=True) == a[::-1]).all()
        assert (rasterize(P, win, 0.01, mode=mode, flip_x=True, flip_y=True) == a[::-1, ::-1]).all()
        full = 1 if mode == "binary" else 255
        assert (rasterize(P, win, 0.01, mode=mode, invert=True) == full - a).all()
        out = np.full((7, 8), 77, np.uint8)
        sc = Scratch()
        r = rasterize(P, win, 0.01, mode=mode, out=out, scratch=sc)
        assert r is out and (out == a).all()
        r2 = rasterize(P, win, 0.01, mode=mode, scratch=sc)  # reused scratch gives the same
        assert (r2 == a).all()
    b = rasterize(P, win, 0.01)
    pk = rasterize(P, win, 0.01, packed=True)
    assert (pk == np.packbits(b, axis=1)).all() and pk.shape == (7, 1)
    pko = np.zeros((7, 1), np.uint8)
    assert rasterize(P, win, 0.01, packed=True, out=pko) is pko and (pko == pk).all()


def test_empty_and_degenerate_windows():
    e = Polygons.empty()
    assert (rasterize(e, (0, 0, 1, 1), 0.1) == 0).all()
    assert (rasterize(e, (0, 0, 1, 1), 0.1, mode="gray", invert=True) == 255).all()
    assert rasterize(_sample(), (0, 0, 0, 1), 0.1).shape == (10, 0)
    assert rasterize(_sample(), (0, 0, 0.1, 0), 0.1, mode="gray").shape == (0, 1)


def test_image_shape_rounding_and_partial_pixel():
    assert image_shape((0, 0, 1.0, 0.5), 0.1) == (5, 10)
    assert image_shape((0, 0, 1.01, 0.5), 0.1) == (5, 11)
    assert image_shape((0, 0, 0.3, 0.3), (0.1, 0.07)) == (5, 3)
    # geometry beyond the window but inside the last partial pixel counts
    P = to_polygons([box(95, 0, 100, 100)])
    b = rasterize(P, (0, 0, 0.091, 0.1), 0.01, mode="gray")
    assert b.shape == (10, 10) and (b[:, 9] == 128).all() and (b[:, :9] == 0).all()


def test_bad_arguments():
    P = _sample()
    for kw in ({"mode": "grey"}, {"mode": "gray", "packed": True}):
        with pytest.raises(ClipmillError):
            rasterize(P, (0, 0, 1, 1), 0.1, **kw)
    for ps in (0, -1, float("nan"), (0.1, 0.2, 0.3), "x"):
        with pytest.raises(ClipmillError):
            rasterize(P, (0, 0, 1, 1), ps)
    for w in ((0, 0, 1), (1, 0, 0, 1), (0, 0, float("inf"), 1)):
        with pytest.raises(ClipmillError):
            rasterize(P, w, 0.1)
    with pytest.raises(ClipmillError):
        rasterize(P, (0, 0, 1, 1), 0.1, out=np.zeros((3, 3), np.uint8))
    with pytest.raises(ClipmillError):
        rasterize("nope", (0, 0, 1, 1), 0.1)
    with pytest.raises(ClipmillError):
        rasterize(P, (0, 0, 1000, 1000), 1e-5)
    with pytest.raises(ClipmillError):
        rasterize(Polygons(np.zeros((3, 2)), np.array([0, 5]), np.zeros((1, 2), np.int32)),
                  (0, 0, 1, 1), 0.1)


@pytest.mark.parametrize("mode", ["binary", "gray"])
@pytest.mark.parametrize("window", [(0, 0, 2, 2), (0, 0, 0, 2)])
def test_bad_polygons_named(mode, window):
    """Offsets going back or past len(xy) and coordinates that are not finite (or overflow in
    pixel units) raise, naming the polygon; the kernels check them as they go (an empty image
    is checked in Python)."""
    sq = [[0, 0], [1, 0], [1, 1], [0, 1]]
    tri = [[0, 0], [2, 0], [1, 1]]
    ell = [[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]
    cases = [
        (sq + tri, [0, 4, 2, 7], "polygon 1 has offsets 4:2"),
        (sq + tri, [0, 9, 7], "polygon 0 has offsets 0:9"),
        (sq + [[0, 0], [2, 0], [np.nan, 1]], [0, 4, 7], "polygon 1 has a coordinate"),
        (sq + [[0, 0], [np.inf, 0], [1, 1], [0, 1]], [0, 4, 8], "polygon 1 has a coordinate"),
        ([[0, 0], [1e308, 0], [1, 1], [0, 1]], [0, 4], "overflows in pixel units"),
        # Manhattan polygons before them are cut into rectangles in gray: still named right
        (ell + ell + [[0, 0], [2, 0], [np.nan, 1]], [0, 6, 12, 15], "polygon 2 has a coordinate"),
        (ell + [[0, 0], [1e308, 0], [1e308, 1], [1, 1], [1, 2], [0, 2]], [0, 6, 12],
         "polygon 1 has a coordinate .* overflows in pixel units"),
    ]
    for xy, off, msg in cases:
        P = Polygons(np.array(xy, float), np.array(off), np.zeros((len(off) - 1, 2), np.int32))
        empty = window[2] == window[0]
        if empty and "overflows" in msg:
            continue   # nothing is converted to pixel units for an empty image
        with pytest.raises(ClipmillError, match=None if empty else msg):
            rasterize(P, window, 1e-3, mode=mode)


@pytest.mark.parametrize("name", ["sky130_fd_sc_hd/sky130_fd_sc_hd__sdfbbp_1.gds",
                                  "siepic_ebeam_pdk/EBeam_CD_500nm.gds"])
def test_real_whole_cell_all_layers(shared_dir, name):
    # every layer of a whole cell at once: many overlaps, slanted edges in the photonics file
    ly = kdb.Layout()
    ly.read(str(shared_dir / name))
    top = ly.top_cells()[0]
    bb = top.bbox()
    p = 20
    rows, cols = -(-bb.height() // p), -(-bb.width() // p)
    grid = kdb.Box(bb.left, bb.top - rows * p, bb.left + cols * p, bb.top)
    polys = _window_polys(top, list(ly.layer_indexes()), grid)
    assert len(polys) > 100
    check(polys, (bb.left, bb.top), (p, p), (rows, cols), dbu=ly.dbu)


@pytest.mark.parametrize("name", ["sky130_fd_sc_hd/sky130_fd_sc_hd__sdfbbp_1.gds",
                                  "gds2para/SDFFRS_X2.gds"])
def test_rasterize_layout_matches_klayout_polygons(shared_dir, name):
    # Layout.rasterize (our explode, then rasterize) against the same rasterize fed with the
    # polygons KLayout flattens for the window, and against KLayout's own coverage
    from engine import open_layout
    path = str(shared_dir / name)
    ly = kdb.Layout()
    ly.read(path)
    top = ly.top_cells()[0]
    bb = top.bbox()
    li = max(ly.layer_indexes(), key=lambda i: kdb.Region(top.begin_shapes_rec(i)).count())
    info = ly.get_info(li)
    p = 20
    rows, cols = min(-(-bb.height() // p), 100), min(-(-bb.width() // p), 150)
    x0, y1 = bb.left + 7, bb.top - 3
    grid = kdb.Box(x0, y1 - rows * p, x0 + cols * p, y1)
    polys = _window_polys(top, [li], grid)
    d = ly.dbu
    window = (x0 * d, (y1 - rows * p) * d, (x0 + cols * p) * d, y1 * d)
    with open_layout(path) as lay:
        for mode in ("binary", "gray"):
            ours = lay.rasterize(window, p * d, layers=[f"{info.layer}/{info.datatype}"],
                                 mode=mode)
            ref = rasterize(to_polygons(polys, d), window, p * d, mode=mode)
            assert ours.shape == (rows, cols)
            assert np.abs(ours.astype(int) - ref).max() <= (0 if mode == "binary" else 1)
    check(polys, (x0, y1), (p, p), (rows, cols), dbu=d)


# ---------------------------------------------------------------------------------------------
# rectangles' union sweep (fast path) against the general path and KLayout

def _sweep_cases(rng):
    """Sets of polygons (dbu) in a 400 x 400 area: overlapping rectangles of every size (smaller
    than a pixel too), rectangles on pixel edges, stacks, wires wider than the window,
    rectangles mixed with slanted convex quads, triangles and L-shapes, and rows of rectangles
    overlapping their neighbours."""
    def rects(n, lo, hi, span=400, step=1):
        x, y = rng.integers(-40, span, (2, n)) // step * step
        w, h = rng.integers(lo, hi, (2, n)) // step * step
        return [box(a, b, a + max(c, step), b + max(d, step)) for a, b, c, d in zip(x, y, w, h)]

    def quads(n):
        out = []
        for x, y, w, h in zip(*rng.integers(0, 380, (2, n)), *rng.integers(8, 40, (2, n))):
            s = int(rng.integers(-w // 3, w // 3 + 1))
            out.append([(x, y), (x + w, y), (x + w // 2, y + h), (x + s, y + h)])
        return out

    def chains():
        # rows of rectangles each starting before the last one ends (2 or 3 active at a
        # time), at offsets in y: the sweep's clusters of at most two active pieces and others
        out = []
        for row in range(12):
            x, y = int(rng.integers(-20, 10)), 32 * row + int(rng.integers(0, 8))
            for _ in range(14):
                w, h = int(rng.integers(8, 45)), int(rng.integers(6, 28))
                dy = int(rng.integers(-6, 7))
                out.append(box(x, y + dy, x + w, y + dy + h))
                x += int(rng.integers(2, w + 4))
        return out

    grid = []
    for gy in range(16):
        for gx in range(16):
            x = gx * 25 + int(rng.integers(-2, 4))
            y = gy * 25 + int(rng.integers(-2, 4))
            w, h = (int(v) for v in rng.integers(10, 27, 2))
            if rng.random() < 0.15:
                grid.append([(x, y), (x + w, y), (x + w // 2, y + h), (x + w // 4, y + h)])
            else:
                grid.append(box(x, y, x + w, y + h))
    return {
        "random_overlapping": rects(150, 1, 60),
        "on_pixel_edges": rects(120, 10, 80, step=10),
        "smaller_than_pixel": rects(300, 1, 10, span=120),
        "stacked_and_wires": [box(30, 30, 90, 70)] * 3 + [box(30, 30, 90, 70)[::-1]]
        + [box(-500, 95 + 13 * k, 900, 101 + 13 * k) for k in range(8)]
        + [box(200 + 7 * k, -300, 204 + 7 * k, 700) for k in range(6)] + rects(40, 5, 50),
        "layout_like_grid": grid,
        "mixed": rects(80, 3, 50) + quads(40) + random_polys(rng, 15, 400, "random")
        + random_polys(rng, 15, 400, "manhattan"),
        # self-intersecting polygons covering pixels that a triangle crosses and rectangles
        # cover in part
        "complex_over_mixed": [[(0, 0), (400, 400), (400, 0), (0, 400)],
                               [(0, 0), (200, 0), (200, 200), (0, 200), (0, 0), (50, 50),
                                (50, 150), (150, 150), (150, 50), (50, 50)]]
        + [[(x, y), (x + 23, y + 4), (x + 6, y + 19)] for x, y in rng.integers(0, 380, (40, 2))]
        + rects(60, 3, 30),
        "overlap_chains": chains(),
    }


def test_rect_sweep_against_general_and_klayout(monkeypatch):
    """Rectangles through the union sweep (RING_MARK_MIN = 0) or, like every other polygon, the
    general path (inf): both equal KLayout's coverage within one gray level and each other
    within one level."""
    import engine.raster as raster
    for name, polys in _sweep_cases(np.random.default_rng(23)).items():
        got = []
        for ring in (0.0, float("inf")):
            monkeypatch.setattr(raster, "RING_MARK_MIN", ring)
            got.append(check(polys, (0, 400), (10, 10), (40, 40))[1].astype(int))
            got.append(check(polys, (-3, 397), (7, 11), (36, 58), win_frac=(0.3, 0.6))[1]
                       .astype(int))
        assert np.abs(got[0] - got[2]).max() <= 1, name
        assert np.abs(got[1] - got[3]).max() <= 1, name


@pytest.mark.parametrize("tall", [False, True])
@pytest.mark.parametrize("reorder", [False, True])
@pytest.mark.parametrize("rects", [True, False])
def test_walk_ring_of_rows(monkeypatch, tall, reorder, rects):
    """The gray pass walks each non-rectangle just before its first pixel row, into rings of
    rows as tall as the tallest one (a power of two): slanted quads and triangles 1-40 pixels
    tall, some starting above the window, ending below it or reaching left of it (the
    row-difference buffer), over rectangles, equal KLayout's coverage within one level; tall:
    one more polygon spans every row, and polygons are walked 16 rows at a time (WALK_CHUNK),
    so the ring is 16 rows and the taller ones are walked in several chunks. reorder: the
    polygons (in random order) are first copied band by band of rows (_others_by_band), as for
    large windows; without rects, the same set less its rectangles (no union sweep, the compact
    copy all the same)."""
    import engine.raster as raster
    monkeypatch.setattr(raster, "ROW_ORDER_MIN", 0 if reorder else 10 ** 9)
    if tall:
        monkeypatch.setattr(raster, "WALK_CHUNK", 16)
    copied = []
    by_band = raster._others_by_band
    monkeypatch.setattr(raster, "_others_by_band", lambda *a: copied.append(1) or by_band(*a))
    rng = np.random.default_rng(41 + tall)
    polys = []
    for _ in range(300):
        x, y = rng.integers(-60, 1500), rng.integers(-60, 1100)
        w, h = rng.integers(5, 120), rng.integers(5, 400)
        k = rng.integers(3)
        if k == 0:
            if rects:
                polys.append(box(x, y, x + w, y + h))
        elif k == 1:
            polys.append([(x, y), (x + w, y), (x + w // 2, y + h)])
        else:
            polys.append([(x, y), (x + w, y + h // 3), (x + w + 7, y + h), (x - 9, y + h)])
    if tall:
        polys.append([(300, -50), (420, -50), (380, 1200), (330, 1200)])
    check(polys, (0, 1000), (10, 10), (100, 150))
    check(polys, (-3, 997), (7, 11), (90, 160), win_frac=(0.3, 0.6))
    sc = Scratch()
    rasterize(to_polygons(polys, DBU), (0, 0, 1.5, 1.0), 0.01, mode="gray", scratch=sc)
    ring = sc.capacity("state") // 150
    assert ring == 16 if tall else ring == 64, ring     # the tallest polygon: 41 rows
    assert bool(copied) == reorder


def test_others_by_band_is_a_stable_band_sort():
    """_others_by_band against numpy: a stable sort by band of 8 pixel rows (the box's top,
    clamped to the image) then by column (the box's left side, clamped), ids, boxes and
    vertices moved together."""
    from engine.raster import TILE_SHIFT, _others_by_band
    rng = np.random.default_rng(5)
    n, nrows, ncols = 300, 40, 30
    counts = rng.integers(3, 9, n)
    ooff = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ouv = rng.uniform(-5, 45, (ooff[-1], 2))
    obox = np.zeros((n, 4))
    for q in range(n):
        v = ouv[ooff[q]:ooff[q + 1]]
        obox[q] = v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()
    others = rng.permutation(10 * n)[:n].astype(np.int32)
    out = (np.zeros((n, 4)), np.zeros_like(ouv), np.zeros(n + 1, np.int64),
           np.zeros(n, np.int32))
    _others_by_band(obox, ouv, ooff, others, n, nrows, ncols,
                    np.zeros(max(nrows, ncols) + 1, np.int64), np.zeros(n, np.int32),
                    np.zeros(n, np.int32), *out)
    first = np.minimum(np.floor(np.clip(obox[:, 2], 0, nrows)), nrows - 1).astype(int)
    col = np.floor(np.clip(obox[:, 0], 0, ncols - 1)).astype(int)
    order = np.lexsort((np.arange(n), col, first >> TILE_SHIFT))
    obox2, ouv2, ooff2, others2 = out
    assert (others2 == others[order]).all() and (obox2 == obox[order]).all()
    assert (np.diff(ooff2) == counts[order]).all() and ooff2[0] == 0
    for d, q in enumerate(order):
        assert (ouv2[ooff2[d]:ooff2[d + 1]] == ouv[ooff[q]:ooff[q + 1]]).all()


@pytest.mark.parametrize("order", ["rows", "jittered", "few_late", "shuffled"])
def test_out_of_order_polygons_detected(monkeypatch, order):
    """_classify samples one in 16 rectangles and one in 16 other polygons: those starting more
    than 8 rows above the lowest first row sampled before them are late; more than one late in
    16 sampled makes the gray pass take the rectangles column by column (_rect_rows bycol) and
    copy the others band by band (_others_by_band). A grid of rectangles and slanted quads row
    by row, also with offsets up to 7 rows back, or a few far back, is left in its order; the
    same shuffled is not; the image equals KLayout's coverage either way."""
    import engine.raster as raster
    monkeypatch.setattr(raster, "ROW_ORDER_MIN", 0)
    seen = {"band": 0, "bycol": set()}
    by_band, rect_rows = raster._others_by_band, raster._rect_rows
    monkeypatch.setattr(raster, "_others_by_band",
                        lambda *a: seen.__setitem__("band", seen["band"] + 1) or by_band(*a))
    monkeypatch.setattr(raster, "_rect_rows", lambda *a: seen["bycol"].add(a[11]) or rect_rows(*a))
    rng = np.random.default_rng(23)
    polys = []
    for gy in range(48):
        for gx in range(48):
            x, y = 30 * gx, 1440 - 30 * gy - 25
            if order == "jittered":
                y += int(rng.integers(0, 70))      # up to 7 rows of 10 above its row's top
            if order == "few_late" and rng.random() < 1 / 40:
                y = 1400                           # far above: late
            w, h = int(rng.integers(8, 28)), int(rng.integers(8, 25))
            if (gx + gy) % 3 == 0:
                polys.append([(x, y), (x + w, y), (x + w // 2, y + h), (x, y + h)])
            else:
                polys.append(box(x, y, x + w, y + h))
    if order == "shuffled":
        polys = [polys[k] for k in rng.permutation(len(polys))]
    check(polys, (0, 1440), (10, 10), (144, 144))
    late = order == "shuffled"
    assert seen["bycol"] == {late} and (seen["band"] > 0) == late


@njit
def _sort_runs(pc, ids, starts, bcount, tmpi, tmpc, nearly):
    for t in range(starts.shape[0] - 1):
        _R._sort_run(pc, ids, starts[t], starts[t + 1], bcount, tmpi, tmpc, nearly)


def test_sort_run_every_branch():
    """_sort_run sorts each group of pieces by u0, stably, ids and boxes together, whatever
    branch it takes: already sorted, two runs (merge), a few steps down (insertion in place
    when nearly), many (bucket counting sort then insertion); against numpy's stable sort."""
    rng = np.random.default_rng(13)
    groups = []
    for kind in range(4):
        for _ in range(6):
            n = int(rng.integers(2, 120))
            u = np.sort(rng.integers(0, 60, n).astype(float) + rng.choice([0, 0.25, 0.5], n))
            if kind == 1:
                u = np.concatenate([u[::2], u[1::2]])           # two sorted runs
            elif kind == 2:
                for _ in range(max(n // 10, 1)):                 # a few swaps of neighbours
                    j = int(rng.integers(1, n))
                    u[j - 1], u[j] = u[j], u[j - 1]
            elif kind == 3:
                u = rng.permutation(u)
            groups.append(u)
    u = np.concatenate(groups)
    starts = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
    pc = np.stack([u, u + 1 + rng.random(len(u)), rng.random(len(u)), 2 + rng.random(len(u))], 1)
    ids = np.arange(len(u), dtype=np.int32)
    want_pc, want_ids = pc.copy(), ids.copy()
    for a, b in zip(starts[:-1], starts[1:]):
        o = a + np.argsort(pc[a:b, 0], kind="stable")
        want_pc[a:b], want_ids[a:b] = pc[o], ids[o]
    most = max(len(g) for g in groups)
    for nearly in (False, True):
        got_pc, got_ids = pc.copy(), ids.copy()
        _sort_runs(got_pc, got_ids, starts, np.zeros(60 // _R.RECT_BUCKET + 2, np.int64),
                   np.zeros(most, np.int32), np.zeros((most, 4)), nearly)
        assert (got_ids == want_ids).all() and (got_pc == want_pc).all(), nearly


@pytest.mark.parametrize("gather", [1, 4096])
def test_rect_rows_any_order(monkeypatch, gather):
    """The rectangles are grouped by first row and sorted by left side within each group, then
    merged row by row into the finishing pass's list: in polygon order, shuffled and reversed
    (groups sorted, made of two runs or in random order; out of first-row order, the rectangles
    are taken column by column first) the image equals KLayout's coverage
    within one gray level, also with rectangles reaching left of the window, and the three
    orders agree within one level (float sums in another order). gather = 1: the buffer of
    rectangles gathered for listed pixels starts too short, so the finishing pass is run again
    with a longer one (which happens on the grid and mixed cases)."""
    import engine.raster as raster
    monkeypatch.setattr(raster, "GATHER_MIN", gather)
    bycol = set()
    rect_rows = raster._rect_rows
    monkeypatch.setattr(raster, "_rect_rows", lambda *a: bycol.add(a[11]) or rect_rows(*a))
    rng = np.random.default_rng(31)
    for name, polys in _sweep_cases(rng).items():
        check(polys, (0, 400), (10, 10), (40, 40))
        check(polys, (37, 397), (7, 11), (36, 46), win_frac=(0.3, 0.6))
        imgs = [check(order, (-3, 397), (7, 11), (36, 58), win_frac=(0.3, 0.6))[1].astype(int)
                for order in (polys, [polys[k] for k in rng.permutation(len(polys))],
                              polys[::-1])]
        assert max(np.abs(imgs[0] - m).max() for m in imgs[1:]) <= 1, name
    assert bycol == {False, True}   # rectangles taken in polygon order and column by column


@pytest.mark.parametrize("with_complex", [False, True])
def test_binary_rect_marks_batched(with_complex):
    # binary takes axis-parallel rectangles through their corner marks, gathered in batches of
    # RECT_BATCH (more rectangles here than one batch, both orientations, edges on pixel centres
    # and beyond every window side); the same boxes given as 5-vertex polygons (a collinear
    # extra vertex) take the edge-by-edge path. A bow-tie sends the rest through the complex path.
    from engine.raster import RECT_BATCH
    rng = np.random.default_rng(11)
    n = 2 * RECT_BATCH + 37
    x = rng.integers(-40, 200, n) // 5 * 5
    y = rng.integers(-40, 160, n) // 5 * 5
    w = rng.integers(1, 12, n) * 5
    h = rng.integers(1, 12, n) * 5
    rects = [box(a, b, a + c, b + d) for a, b, c, d in zip(x, y, w, h)]
    rects = [r[::-1] if k % 2 else r for k, r in enumerate(rects)]
    extra = [[(-10, 50), (90, 150), (90, 50), (-10, 150)]] if with_complex else []
    b, _ = check(rects + extra, (0, 160), (10, 10), (16, 20), win_frac=(0.3, 0.6))
    five = [[r[0], ((r[0][0] + r[1][0]) / 2, (r[0][1] + r[1][1]) / 2)] + r[1:] for r in rects]
    P = to_polygons(five + extra)
    win = (0.0, 0.16 - 0.154, 0.197, 0.16)
    assert (rasterize(P, win, 0.01) == b).all()


def _star(rng, cx, cy, n, rmin, rmax):
    """A simple (star-shaped, often non-convex) polygon of n integer vertices around (cx, cy):
    the angles between neighbours stay under pi."""
    while True:
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        if np.diff(np.append(ang, ang[0] + 2 * np.pi)).max() < 0.8 * np.pi:
            break
    rad = rng.uniform(rmin, rmax, n)
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).round().astype(int)
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    return pts[keep]


def _kl_area(polys, boxes, clip, scale=10 ** 6):
    """KLayout's area of (union of polys and boxes) inside the box clip, coordinates multiplied
    by scale first (its boolean snaps crossings to the integer grid: 1e-6 of a unit here)."""
    def pt(a, b):
        return kdb.Point(int(a) * scale, int(b) * scale)
    reg = kdb.Region()
    for p in polys:
        reg.insert(kdb.SimplePolygon([pt(a, b) for a, b in p], True))
    for x0, y0, x1, y1 in boxes:
        reg.insert(kdb.Box(pt(x0, y0), pt(x1, y1)))
    c = clip
    return (reg.merged() & kdb.Region(kdb.Box(pt(c[0], c[1]), pt(c[2], c[3])))).area() / scale ** 2


def test_clip_area_and_cover_against_klayout():
    """_clip_area (a simple polygon inside a box) and _clip_cover (union of one simple polygon
    and boxes inside a pixel) equal KLayout's boolean areas: star-shaped, often non-convex
    polygons and boxes in a 100 x 100 pixel scaled to 1 x 1, with vertices and box sides on the
    pixel sides; boxes past the polygon's box are skipped by _clip_cover, so they are drawn
    anywhere in the pixel."""
    from engine.raster import _clip_area, _clip_cover
    rng = np.random.default_rng(41)
    xb, iv0, iv1 = np.empty(64), np.empty(32), np.empty(32)
    tested = 0
    for trial in range(300):
        poly = _star(rng, *rng.integers(0, 100, 2), int(rng.integers(3, 12)), 5, 90)
        if len(poly) < 3 or kdb.SimplePolygon([kdb.Point(int(a), int(b)) for a, b in poly],
                                              True).area() == 0:
            continue
        uv = poly.astype(np.float64) / 100.0
        (x0, x1), (y0, y1) = sorted(rng.integers(-20, 120, 2)), sorted(rng.integers(-20, 120, 2))
        if x1 > x0 and y1 > y0:
            got = _clip_area(uv, 0, len(uv), x0 / 100, x1 / 100, y0 / 100, y1 / 100)
            want = _kl_area([poly], [], (x0, y0, x1, y1)) / 1e4
            assert abs(got - want) < 1e-6, (trial, got, want)
        bxs = []
        for _ in range(int(rng.integers(1, 5))):
            (a, b), (c, d) = sorted(rng.integers(0, 101, 2)), sorted(rng.integers(0, 101, 2))
            if b > a and d > c:
                bxs.append((a, c, b, d))
        lo, hi = poly.min(0).clip(0, 100), poly.max(0).clip(0, 100)
        bx = np.array([[lo[0], hi[0], lo[1], hi[1]]] + [[a, b, c, d] for a, c, b, d in bxs],
                      dtype=np.float64) / 100.0
        got = _clip_cover(uv, 0, len(uv), bx, len(bx), 0.0, 0.0, xb, iv0, iv1)
        want = _kl_area([poly], bxs, (0, 0, 100, 100)) / 1e4
        assert abs(got - want) < 1e-6, (trial, got, want)
        tested += 1
    assert tested > 200


def test_clip_cover_path_equals_sweep_path(monkeypatch):
    """Pixels crossed by one simple polygon (slanted, non-convex) that overlaps rectangles there
    take the clipped areas (CLIP_COVER) or the local sweep: both equal KLayout within one level
    and each other within one level."""
    import engine.raster as raster
    rng = np.random.default_rng(43)
    x, y = rng.integers(-10, 390, (2, 150))
    w, h = rng.integers(3, 40, (2, 150))
    rects = [box(a, b, a + c, b + d) for a, b, c, d in zip(x, y, w, h)]
    stars = [[tuple(p) for p in _star(rng, *rng.integers(0, 400, 2), int(rng.integers(3, 9)),
                                      4, 30)] for _ in range(60)]
    polys = rects + [s for s in stars if len(s) >= 3]
    got = []
    for clip in (True, False):
        monkeypatch.setattr(raster, "CLIP_COVER", clip)
        got.append(check(polys, (0, 400), (10, 10), (40, 40))[1].astype(int))
        got.append(check(polys, (-3, 397), (7, 11), (36, 58), win_frac=(0.3, 0.6))[1].astype(int))
    assert np.abs(got[0] - got[2]).max() <= 1
    assert np.abs(got[1] - got[3]).max() <= 1


@njit
def _advance_all(pcs, starts, xs):
    out = np.empty(starts.shape[0], np.int64)
    for t in range(starts.shape[0]):
        out[t] = _R._advance(pcs, starts[t], pcs.shape[0], xs[t])
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=0, max_size=80), st.data())
def test_advance_is_searchsorted(keys, data):
    """_gather's galloping cursor: from any start j, the first index at or after j whose
    (sorted) u0 is not below x, as numpy's searchsorted (ties included)."""
    u0 = np.sort(np.asarray(keys, dtype=np.float64) * 0.25)
    pcs = np.zeros((u0.shape[0], 4))
    pcs[:, 0] = u0
    n = u0.shape[0]
    starts = np.asarray(data.draw(st.lists(st.integers(0, n), min_size=1, max_size=10)),
                        dtype=np.int64)
    xs = np.asarray(data.draw(st.lists(st.integers(-2, 44), min_size=starts.shape[0],
                                       max_size=starts.shape[0])), dtype=np.float64) * 0.25
    got = _advance_all(pcs, starts, xs)
    want = np.maximum(np.searchsorted(u0, xs, side="left"), starts)
    assert (got == want).all()
