"""Axis-parallel (Manhattan) polygons cut into disjoint rectangles, for the gray rasterizer.

Real layouts are mostly rectangles plus L, T, U and comb shapes with every edge axis-parallel.
The gray rasterizer (engine.raster) takes rectangles through an exact union sweep per pixel row;
every other polygon has its boundary walked and, where it shares pixels with rectangles, needs
an exact local pass per pixel. Cut into rectangles first, a Manhattan polygon takes the fast
path instead (the rectangles' union is exact however they touch or overlap).

The cut (``decompose``): each candidate polygon (every edge axis-parallel, 5 to NMAX_CUT
vertices, finite coordinates) is split at each distinct vertex y into slabs; in a slab the
vertical edges crossing it, sorted by x, give the x-intervals where the polygon's own winding
number is non-zero (the fill rule of engine.raster: self-intersecting and keyhole polygons
are cut exactly as they fill), and an interval equal to one of the slab below continues that
rectangle instead of starting a new one. The rectangles are disjoint and their union is the
polygon's filled area; their vertices are the polygon's own coordinates (no arithmetic), so
their pixel positions are bit-for-bit the ones the polygon's would have been.

The output lists every polygon in input order, each candidate replaced by its rectangles
(none when it encloses no area); ``src`` maps each output polygon back to its input polygon,
so that errors about a polygon left as it was still name the caller's index.
"""
from __future__ import annotations

import numpy as np

from engine.jit import kernel, njit

NMAX_CUT = 64     # Manhattan polygons with more vertices keep the general path


@njit(inline="always", _nrt=False)
def _is_candidate(xy, s, e, nmax):
    """Polygon xy[s:e] has 5..nmax vertices, all finite, every edge axis-parallel."""
    n = e - s
    if n < 5 or n > nmax:
        return False
    for k in range(s, e):
        k2 = k + 1 if k + 1 < e else s
        x, y = xy[k, 0], xy[k, 1]
        if not (abs(x) < np.inf and abs(y) < np.inf):
            return False
        if x != xy[k2, 0] and y != xy[k2, 1]:
            return False
    return True


@kernel
def _plan(xy, off, nmax, cand):
    """cand[i] = 1 for the polygons to cut. Returns how many, or -1 - i for the first polygon
    i whose offsets are out of order (nothing is cut then: the rasterizer reports it)."""
    ncand = 0
    nxy = xy.shape[0]
    for i in range(off.shape[0] - 1):
        s, e = off[i], off[i + 1]
        cand[i] = 0
        if s < 0 or e < s or e > nxy:
            return -1 - i
        if _is_candidate(xy, s, e, nmax):
            cand[i] = 1
            ncand += 1
    return ncand


@njit(inline="always", _nrt=False)
def _sorted_ys(xy, s, e, ys):
    """The distinct y of xy[s:e] into ys, increasing; returns how many."""
    m = 0
    for k in range(s, e):
        y = xy[k, 1]
        z = m
        while z > 0 and ys[z - 1] > y:
            z -= 1
        if z > 0 and ys[z - 1] == y:
            continue
        for w in range(m, z, -1):
            ys[w] = ys[w - 1]
        ys[z] = y
        m += 1
    return m


@njit(inline="always", _nrt=False)
def _vertical_edges(xy, s, e, ex):
    """The vertical edges of xy[s:e] into ex (x, lower y, upper y, direction +-1), sorted by
    x; returns how many."""
    na = 0
    for k in range(s, e):
        k2 = k + 1 if k + 1 < e else s
        y0, y1 = xy[k, 1], xy[k2, 1]
        if y0 == y1:
            continue
        x = xy[k, 0]
        z = na
        while z > 0 and ex[z - 1, 0] > x:
            ex[z, 0], ex[z, 1], ex[z, 2], ex[z, 3] = ex[z - 1, 0], ex[z - 1, 1], ex[z - 1, 2], \
                ex[z - 1, 3]
            z -= 1
        ex[z, 0], ex[z, 1], ex[z, 2] = x, min(y0, y1), max(y0, y1)
        ex[z, 3] = 1.0 if y1 > y0 else -1.0
        na += 1
    return na


@njit(inline="always", _nrt=False)
def _slab_intervals(ex, na, ya, yb, iv):
    """x-intervals of slab ya..yb where the polygon of edges ex[:na] (_vertical_edges) winds
    non-zero into iv[:, 0:2]; returns how many."""
    w = 0.0
    m = 0
    for z in range(na):
        if ex[z, 1] > ya or ex[z, 2] < yb:
            continue
        x = ex[z, 0]
        if w == 0.0:
            iv[m, 0] = x
        w += ex[z, 3]
        if w == 0.0 and x > iv[m, 0]:
            iv[m, 1] = x
            m += 1
    return m


@njit(inline="always", _nrt=False)
def _emit(oxy, nv, x0, x1, ya, yb):
    oxy[nv, 0], oxy[nv, 1] = x0, ya
    oxy[nv + 1, 0], oxy[nv + 1, 1] = x1, ya
    oxy[nv + 2, 0], oxy[nv + 2, 1] = x1, yb
    oxy[nv + 3, 0], oxy[nv + 3, 1] = x0, yb


@njit(inline="always", _nrt=False)
def _holds(a, n, x0, x1):
    """Some row of a[:n] starts with the interval x0, x1."""
    for q in range(n):
        if a[q, 0] == x0 and a[q, 1] == x1:
            return True
    return False


@njit(inline="always", _nrt=False)
def _cut(xy, s, e, i, oxy, ooff, src, nv, np_, ys, ex, iv, op):
    """Polygon i = xy[s:e] as rectangles appended at oxy[nv:] / ooff[np_ + 1:] (src: i; only
    counted past their room); op (n, 3): the rectangles still open (x0, x1, bottom y).
    Returns (nv, np_)."""
    ny = _sorted_ys(xy, s, e, ys)
    na = _vertical_edges(xy, s, e, ex)
    nop = 0
    for j in range(ny):
        ya = ys[j]
        m = _slab_intervals(ex, na, ya, ys[j + 1], iv) if j + 1 < ny else 0
        keep = 0
        for q in range(nop):         # close the open rectangles the slab does not continue
            if _holds(iv, m, op[q, 0], op[q, 1]):
                op[keep, 0], op[keep, 1], op[keep, 2] = op[q, 0], op[q, 1], op[q, 2]
                keep += 1
            else:
                if nv + 4 <= oxy.shape[0] and np_ < src.shape[0]:
                    _emit(oxy, nv, op[q, 0], op[q, 1], op[q, 2], ya)
                    ooff[np_ + 1] = nv + 4
                    src[np_] = i
                nv += 4
                np_ += 1
        nop = keep
        for t in range(m):           # open the new ones
            if not _holds(op, nop, iv[t, 0], iv[t, 1]):
                op[nop, 0], op[nop, 1], op[nop, 2] = iv[t, 0], iv[t, 1], ya
                nop += 1
    return nv, np_


@njit(inline="always", _nrt=False)
def _copy(xy, a, b, oxy, nv):
    """xy[a:b] into oxy from nv when it fits."""
    if nv + b - a <= oxy.shape[0]:
        for k in range(b - a):
            oxy[nv + k, 0] = xy[a + k, 0]
            oxy[nv + k, 1] = xy[a + k, 1]


@kernel
def _decompose(xy, off, cand, oxy, ooff, src, ys, ex, iv, op):
    """Every polygon into oxy / ooff (src: its input polygon; ooff one longer), candidates cut
    (_cut), runs of the others copied whole; what does not fit is only counted. Returns
    (output polygons, output vertices)."""
    nv = 0
    np_ = 0
    run = 0         # the run of polygons kept as they are starts at vertex run of xy
    for i in range(off.shape[0] - 1):
        s, e = off[i], off[i + 1]
        if cand[i]:
            _copy(xy, run, s, oxy, nv)
            nv += s - run
            nv, np_ = _cut(xy, s, e, i, oxy, ooff, src, nv, np_, ys, ex, iv, op)
            run = e
            continue
        if np_ < src.shape[0]:
            ooff[np_ + 1] = nv + e - run
            src[np_] = i
        np_ += 1
    e = off[off.shape[0] - 1]
    _copy(xy, run, e, oxy, nv)
    return np_, nv + e - run


def decompose(xy, off, sc, nmax=NMAX_CUT, min_share=0.0):
    """(xy, offsets, src) with the Manhattan polygons of (xy, off) cut into rectangles (see the
    module doc), in scratch buffers of sc (engine.raster.Scratch); None when there is none to
    cut, fewer than min_share of the polygons, or an offset out of order (left to the
    rasterizer to report)."""
    npoly = off.shape[0] - 1
    cand = sc.get("mcand", npoly, np.uint8)
    ncand = _plan(xy, off, nmax, cand)
    if ncand <= 0 or ncand < min_share * npoly:
        return None
    work = [sc.get("mys", nmax, np.float64), sc.get("mex", 4 * nmax, np.float64).reshape(-1, 4),
            sc.get("miv", nmax, np.float64).reshape(-1, 2),
            sc.get("mop", 3 * nmax, np.float64).reshape(-1, 3)]
    cap_v = max(sc.capacity("mxy") // 2, 2 * xy.shape[0])     # room, grown when short
    cap_p = max(sc.capacity("msrc"), 2 * npoly)
    while True:
        oxy = sc.get("mxy", 2 * cap_v, np.float64).reshape(-1, 2)
        ooff = sc.get("moff", cap_p + 1, np.int64)
        src = sc.get("msrc", cap_p, np.int64)
        ooff[0] = 0
        n, nv = _decompose(xy, off, cand, oxy, ooff, src, *work)
        if nv <= cap_v and n <= cap_p:
            return oxy[:nv], ooff[:n + 1], src[:n]
        cap_v, cap_p = max(cap_v, nv), max(cap_p, n)
