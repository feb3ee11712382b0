"""GDSII PATH -> polygon, following KLayout's construction (``db::path<C>::hull``) exactly.

Why KLayout's construction: tests compare polygon areas with KLayout to 1e-9, and the hull of a
path is not unique (how corners are joined and how points round to the grid). KLayout's rules,
re-implemented here from its documented behaviour (dbPath.cc, GDS2 reader):

* Points: consecutive duplicates dropped, a middle point that lies on the segment joining its
  neighbours (closer than half a dbu, KLayout's ``edge::contains``) dropped.
* Each side is the centre line shifted by half the width. At a vertex the two shifted segments are
  intersected ("miter") when the intersection lies within one half-width of the vertex along both
  segments; otherwise the corner is cut off with two points at one half-width beyond the vertex;
  if the segments are too short to intersect, a 3-point loop (shifted, vertex, shifted) is emitted.
  A 180-degree reversal gets two points one half-width beyond the vertex.
* Shift vectors of horizontal/vertical segments use the rounded half-width, 45-degree ones a
  half-width rounded so the result stays on grid; every point is rounded to the integer grid
  (half away from zero) as an offset from its integer centre-line vertex.
* Ends: begin/end extensions (flush: 0, square: width/2, custom: BGNEXTN/ENDEXTN).
* Round ends (PATHTYPE 1): each end is a half ellipse with semi-axes (extension, width/2)
  approximated by 16 points (32 per full circle, KLayout's default ``num_circle_points``) on a
  polygon circumscribing the ellipse (vertices at radius r / cos(pi/32)).
* A one-point path is a segment of direction (1, 0) and zero length.

GDS reader rules (KLayout's): a negative WIDTH is taken as its absolute value; for pathtypes 1 and
2 without explicit BGNEXTN/ENDEXTN the extension is WIDTH/2 truncated toward zero *of the signed
WIDTH* (so a negative-width square-ended path gets negative extensions, as in KLayout); explicit
BGNEXTN/ENDEXTN are used for any pathtype; an unknown pathtype is read as 0. Zero-width paths
produce no polygon (they have no area; the reader still counts them).
"""
from __future__ import annotations

import math

import numpy as np

from engine.jit import jit

EPS = 1e-10            # db::epsilon
SEMI_CIRCLE_POINTS = 16
SQRT2 = math.sqrt(2.0)
SQRT1_2 = math.sqrt(0.5)


@jit
def _rnd(v):
    """KLayout's coord_traits<int32>::rounded: half away from zero."""
    if v > 0:
        return np.int64(v + 0.5)
    return np.int64(v - 0.5)


@jit
def _dpx_scale(px, py, d):
    """KLayout's dpx: the factor applied to unit vector (px, py) for length d."""
    if abs(px) < EPS or abs(py) < EPS:
        return float(_rnd(d))
    if abs(abs(px) - abs(py)) < EPS:
        return SQRT2 * float(_rnd(d * SQRT1_2))
    return d


@jit
def real_points(xs, ys, n, rx, ry):
    """Drop duplicates and collinear middle points (KLayout's path::real_points). Returns count."""
    m = 0
    i = 0
    while i < n:
        rx[m] = xs[i]
        ry[m] = ys[i]
        m += 1
        i += 1
        while i < n and xs[i] == rx[m - 1] and ys[i] == ry[m - 1]:
            i += 1
        if i < n:
            pn = i
            while True:
                i += 1
                while i < n and xs[i] == xs[pn] and ys[i] == ys[pn]:
                    i += 1
                if i >= n or not _contains(rx[m - 1], ry[m - 1], xs[i], ys[i], xs[pn], ys[pn]):
                    break
                pn = i
            i -= 1
            # i now is the last point that is not swallowed (pn)
    return m


@jit
def _contains(x1, y1, x2, y2, px, py):
    """KLayout's edge<int>::contains: distance < 0.5 dbu after rounding, projection inside."""
    if x1 == x2 and y1 == y2:
        return px == x1 and py == y1
    dx = float(x2 - x1)
    dy = float(y2 - y1)
    length = _rnd(math.sqrt(dx * dx + dy * dy))
    axb = float(x2 - x1) * float(py - y1) - float(y2 - y1) * float(px - x1)
    d = abs(axb) / float(length)
    if _rnd(d) >= 1:
        return False
    s1 = (px - x1) * (x2 - x1) + (py - y1) * (y2 - y1)
    s2 = (px - x2) * (x1 - x2) + (py - y2) * (y1 - y2)
    return s1 >= 0 and s2 >= 0


@jit
def _emit(out, k, x, y):
    out[k, 0] = x
    out[k, 1] = y
    return k + 1


@jit
def _shifted(rx, ry, m, forward, start, end, width, ncircle, out, k):
    """One side of the hull (KLayout's create_shifted_points). Points rx/ry[0:m] are walked
    forward or backward. Writes int64 points into out[k:], returns the new k."""
    disp = float(width) * 0.5
    if m == 0:
        return k
    if forward:
        i0, step = 0, 1
    else:
        i0, step = m - 1, -1
    if m == 1:
        edx = 1.0 if forward else -1.0
        edy = 0.0
        ndx = -edy
        ndy = edx
        x0 = rx[i0]
        y0 = ry[i0]
        if ncircle > 2:
            a0 = math.pi / (2.0 * ncircle)
            cd = math.cos(a0)
            sd = math.sin(a0)
            c2d = cd * cd - sd * sd
            s2d = 2 * cd * sd
            f = float(-start) / cd
            eddx, eddy = edx * f, edy * f
            g = disp / cd
            nddx, nddy = ndx * g, ndy * g
            c, s = cd, sd
            for _ in range(ncircle // 2):
                k = _emit(out, k, x0 + _rnd(eddx * c + nddx * s), y0 + _rnd(eddy * c + nddy * s))
                c, s = c * c2d - s * s2d, s * c2d + c * s2d
            f = float(end) / cd
            eddx, eddy = edx * f, edy * f
            c = math.cos(a0 * (ncircle - 1))
            s = math.sin(a0 * (ncircle - 1))
            for _ in range(ncircle // 2):
                k = _emit(out, k, x0 + _rnd(eddx * c + nddx * s), y0 + _rnd(eddy * c + nddy * s))
                c, s = c * c2d + s * s2d, s * c2d - c * s2d
        else:
            k = _emit(out, k, x0 + _rnd(edx * float(-start) + ndx * disp),
                      y0 + _rnd(edy * float(-start) + ndy * disp))
            k = _emit(out, k, x0 + _rnd(edx * float(end) + ndx * disp),
                      y0 + _rnd(edy * float(end) + ndy * disp))
        return k

    first = True
    p = i0
    pp = i0 + step
    last = i0 + step * m   # "to"
    while pp != last:
        ppp = pp + step
        edx = float(rx[pp] - rx[p])
        edy = float(ry[pp] - ry[p])
        inv = 1.0 / math.sqrt(edx * edx + edy * edy)
        edx *= inv
        edy *= inv
        ndx = -edy
        ndy = edx
        f = _dpx_scale(ndx, ndy, disp)
        ndx *= f
        ndy *= f
        if first:
            first = False
            if ncircle > 2:
                a0 = math.pi / (2.0 * ncircle)
                cd = math.cos(a0)
                sd = math.sin(a0)
                c2d = cd * cd - sd * sd
                s2d = 2 * cd * sd
                c, s = cd, sd
                g = float(-start) / cd
                eddx, eddy = edx * g, edy * g
                h = 1.0 / cd
                nddx, nddy = ndx * h, ndy * h
                for _ in range(ncircle // 2):
                    k = _emit(out, k, rx[p] + _rnd(eddx * c + nddx * s),
                              ry[p] + _rnd(eddy * c + nddy * s))
                    c, s = c * c2d - s * s2d, s * c2d + c * s2d
            else:
                g = _dpx_scale(edx, edy, float(-start))
                k = _emit(out, k, rx[p] + _rnd(edx * g + ndx), ry[p] + _rnd(edy * g + ndy))
        if ppp == last:
            if ncircle > 2:
                a0 = math.pi / (2.0 * ncircle)
                cd = math.cos(a0)
                sd = math.sin(a0)
                c2d = cd * cd - sd * sd
                s2d = 2 * cd * sd
                c = math.cos(a0 * (ncircle - 1))
                s = math.sin(a0 * (ncircle - 1))
                g = float(end) / cd
                eddx, eddy = edx * g, edy * g
                h = 1.0 / cd
                nddx, nddy = ndx * h, ndy * h
                for _ in range(ncircle // 2):
                    k = _emit(out, k, rx[pp] + _rnd(eddx * c + nddx * s),
                              ry[pp] + _rnd(eddy * c + nddy * s))
                    c, s = c * c2d + s * s2d, s * c2d - c * s2d
            else:
                g = _dpx_scale(edx, edy, float(end))
                k = _emit(out, k, rx[pp] + _rnd(edx * g + ndx), ry[pp] + _rnd(edy * g + ndy))
        else:
            eedx = float(rx[ppp] - rx[pp])
            eedy = float(ry[ppp] - ry[pp])
            inv = 1.0 / math.sqrt(eedx * eedx + eedy * eedy)
            eedx *= inv
            eedy *= inv
            nndx = -eedy
            nndy = eedx
            f = _dpx_scale(nndx, nndy, disp)
            nndx *= f
            nndy *= f
            l1max = math.sqrt(ndx * ndx + ndy * ndy)
            l2max = math.sqrt(nndx * nndx + nndy * nndy)
            d1x = float(rx[p] - rx[pp])
            d1y = float(ry[p] - ry[pp])
            d2x = float(rx[ppp] - rx[pp])
            d2y = float(ry[ppp] - ry[pp])
            l1min = -math.sqrt(d1x * d1x + d1y * d1y) - l1max
            l2min = -math.sqrt(d2x * d2x + d2y * d2y) - l2max
            dv = edx * eedy - edy * eedx
            if abs(dv) > EPS:
                l1 = ((nndx - ndx) * eedy - (nndy - ndy) * eedx) / dv
                l2 = ((ndx - nndx) * edy - (ndy - nndy) * edx) / dv
                if l1 < l1min - EPS or l2 < l2min - EPS:
                    k = _emit(out, k, rx[pp] + _rnd(ndx), ry[pp] + _rnd(ndy))
                    k = _emit(out, k, rx[pp], ry[pp])
                    k = _emit(out, k, rx[pp] + _rnd(nndx), ry[pp] + _rnd(nndy))
                elif l1 < l1max + EPS and l2 < l2max + EPS:
                    k = _emit(out, k, rx[pp] + _rnd(ndx + edx * l1), ry[pp] + _rnd(ndy + edy * l1))
                else:
                    a = min(l1max, l1)
                    b = min(l2max, l2)
                    k = _emit(out, k, rx[pp] + _rnd(ndx + edx * a), ry[pp] + _rnd(ndy + edy * a))
                    k = _emit(out, k, rx[pp] + _rnd(nndx - eedx * b),
                              ry[pp] + _rnd(nndy - eedy * b))
                p = pp
            elif edx * eedx + edy * eedy < -EPS:
                g = _dpx_scale(edx, edy, disp)
                h = _dpx_scale(eedx, eedy, disp)
                k = _emit(out, k, rx[pp] + _rnd(ndx + edx * g), ry[pp] + _rnd(ndy + edy * g))
                k = _emit(out, k, rx[pp] + _rnd(nndx - eedx * h), ry[pp] + _rnd(nndy - eedy * h))
                p = pp
        pp = ppp
    return k


@jit
def segment_hull(x0, y0, x1, y1, width, bgn_ext, end_ext, out):
    """``path_hull`` of a two-point axis-parallel path with flush, square or custom ends (no
    round ends), without its floating point: the same 4 points in the same order into out[0:4]
    (what the general construction gives for such a segment: half-width rounded half away from
    zero, extensions along the segment). Returns 4, or 0 when the path is not such a segment
    (then ``path_hull`` is needed). Most paths of a layout are these; the general construction
    costs several square roots per corner."""
    if (x0 == x1) == (y0 == y1):      # a single point, or a slanted segment
        return 0
    h = _rnd(width * 0.5)
    if y0 == y1:
        s = 1 if x1 > x0 else -1
        xa = x0 - s * bgn_ext
        xb = x1 + s * end_ext
        out[0, 0], out[0, 1] = xa, y0 + s * h
        out[1, 0], out[1, 1] = xb, y0 + s * h
        out[2, 0], out[2, 1] = xb, y0 - s * h
        out[3, 0], out[3, 1] = xa, y0 - s * h
    else:
        s = 1 if y1 > y0 else -1
        ya = y0 - s * bgn_ext
        yb = y1 + s * end_ext
        out[0, 0], out[0, 1] = x0 - s * h, ya
        out[1, 0], out[1, 1] = x0 - s * h, yb
        out[2, 0], out[2, 1] = x0 + s * h, yb
        out[3, 0], out[3, 1] = x0 + s * h, ya
    return 4


@jit
def segment_box(x0, y0, x1, y1, width, bgn_ext, end_ext):
    """Bounding box (x0, y0, x1, y1) of ``segment_hull``'s 4 points, from scalars alone (that
    hull is always an axis-parallel rectangle, stored as its box). Only for what segment_hull
    takes: a two-point axis-parallel path, no round ends."""
    h = _rnd(width * 0.5)
    if y0 == y1:
        s = 1 if x1 > x0 else -1
        xa = x0 - s * bgn_ext
        xb = x1 + s * end_ext
        return min(xa, xb), min(y0 + h, y0 - h), max(xa, xb), max(y0 + h, y0 - h)
    s = 1 if y1 > y0 else -1
    ya = y0 - s * bgn_ext
    yb = y1 + s * end_ext
    return min(x0 - h, x0 + h), min(ya, yb), max(x0 - h, x0 + h), max(ya, yb)


def max_hull_points(npoints: int, round_ends: bool) -> int:
    """Upper bound of the hull size for a path of ``npoints`` points."""
    return 6 * max(npoints, 1) + (2 * SEMI_CIRCLE_POINTS if round_ends else 4)


@jit
def path_hull(xs, ys, n, width, bgn_ext, end_ext, round_ends, rx, ry, out, k):
    """Hull of a path into out[k:] (int64 [*, 2]); rx, ry: scratch of n int64. Returns new k."""
    m = real_points(xs, ys, n, rx, ry)
    nc = SEMI_CIRCLE_POINTS if round_ends else 2
    k = _shifted(rx, ry, m, True, bgn_ext, end_ext, width, nc, out, k)
    k = _shifted(rx, ry, m, False, end_ext, bgn_ext, width, nc, out, k)
    return k


def gds_extensions(pathtype: int, width: int, bgnextn=None, endextn=None):
    """(width, bgn_ext, end_ext, round) for GDSII path parameters, as KLayout reads them."""
    if pathtype not in (0, 1, 2, 4):
        pathtype = 0
    half = int(width / 2)  # C truncation of the signed width
    bgn = bgnextn if bgnextn is not None else (half if pathtype in (1, 2) else 0)
    end = endextn if endextn is not None else (half if pathtype in (1, 2) else 0)
    return abs(int(width)), int(bgn), int(end), pathtype == 1


def path_polygon(points, width, pathtype=0, bgnextn=None, endextn=None) -> np.ndarray:
    """Polygon (int64 [k, 2]) of a GDSII path; empty for zero width or no points."""
    pts = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    w, bgn, end, rnd = gds_extensions(pathtype, width, bgnextn, endextn)
    n = len(pts)
    if w == 0 or n == 0:
        return np.zeros((0, 2), dtype=np.int64)
    xs = np.ascontiguousarray(pts[:, 0])
    ys = np.ascontiguousarray(pts[:, 1])
    out = np.empty((max_hull_points(n, rnd), 2), dtype=np.int64)
    rx = np.empty(n, dtype=np.int64)
    ry = np.empty(n, dtype=np.int64)
    k = path_hull(xs, ys, n, w, bgn, end, rnd, rx, ry, out, 0)
    return out[:k].copy()
