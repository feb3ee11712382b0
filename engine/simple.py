"""Is a polygon simple? The rasterizer's test (numba kernels, scratch passed in).

A polygon is taken as simple when its winding number is 0 or +-1 (one sign) everywhere off its
boundary: its signed area accumulated edge by edge is then exactly its covered area, and the
rasterizer's fast paths hold (engine.raster: ``cls`` 1). Otherwise (``cls`` 2) the rasterizer
falls back on the winding at pixel centres and the exact local sweep, which are right for any
polygon but slower. The test is conservative: a polygon it cannot prove simple is complex.

Two ways to be simple:

* no two edges touch, except consecutive ones at their shared vertex (which must not fold back
  onto each other). Edges are swept in order of their lower v (a merge of their monotone runs,
  a radix sort when they fall into many) and each is tested only against the edges still active
  there; the pairs left out are those whose v-ranges are apart, which ``_seg_touch`` would
  reject on that test alone, so the answer is the same as testing all pairs
  (``tests/test_simple.py`` checks it against the all-pairs loop).
  Below SWEEP_MIN vertices the all-pairs loop itself is cheaper.
* keyholes (how GDSII writes a polygon with holes: a cut from the outline to each hole, walked
  there and back): when the first test finds touching edges, the polygon's edges are reduced
  first. Axis-parallel edges are cut at the polygon's points lying inside them (KLayout's cut
  runs along a hole's side: there it is one edge, back it is two), then zero-length edges and
  pairs of opposite edges (P -> Q and Q -> P) are dropped: neither changes the winding
  anywhere. What remains must have at most one edge leaving each point; it then splits into
  cycles, which the first test (with "consecutive" now meaning the next edge of the cycle)
  must find apart from each other and each one simple. Disjoint cycles' windings add
  up: with W the winding of a point on cycle c from the other cycles and o its orientation, the
  winding is W just outside c and W + o just inside. Both must be 0 or g (the sign of the whole
  polygon's area), for every cycle, so every region's winding is 0 or g. A hole walked in the
  outline's direction (winding 2 inside), two outlines touching at a point, a hole touching
  the outline, or slanted cuts overlapping only in part stay complex.

Polygons with more than NMAX vertices (the scratch's length), or whose sweep would test more
than PAIR_BUDGET pairs per edge beyond all pairs of ALL_PAIRS edges (many long edges spanning
the same rows, as in a tall comb of more than 500 teeth), or whose cycles' nesting takes more
tests than CYCLE_BUDGET allows, are left complex.
"""
from __future__ import annotations

import numpy as np

from engine.jit import kernel, njit

SWEEP_MIN = 24         # polygons with this many vertices or more: the sweep (fewer: all pairs)
NMAX = 1 << 15         # larger polygons are left complex (the scratch holds 2 NMAX edges)
PAIR_BUDGET = 64       # pair tests per edge the sweep may make before giving up, beyond...
ALL_PAIRS = 1024       # ...all pairs of up to this many edges (the old test's limit) and 4096
RADIX_RUNS = 32        # _run_sort: keys in more monotone runs than this (and at least RADIX_MIN
RADIX_MIN = 256        # keys) take the radix sort instead of the merges of runs
_NEG_ZERO = -(1 << 63)
_TOP = np.uint64(1 << 63)
_B255 = np.uint64(255)
CYCLE_BUDGET = 64      # a reduced keyhole's cycles are nested by a sweep of their test points: at
#                        most CYCLE_BUDGET tests per edge beyond ALL_PAIRS^2 / 2, else complex


# rows of _is_simple's int32 scratch (2 NMAX entries each: edges, once cut, may outnumber the
# vertices)
_IDX, _ACT, _NXT, _GRP, _EA, _EB, _IDX2, _GRP2, _OUT, _CYC = range(10)
_ROWS = 10


def scratch_shapes():
    """Shapes of the two scratch arrays _is_simple takes: float64 (4, 2 NMAX), int32
    (_ROWS, 2 NMAX)."""
    return (4, 2 * NMAX), (_ROWS, 2 * NMAX)


@kernel
def _seg_touch(ax, ay, bx, by, cx, cy, dx, dy):
    """Closed segments ab and cd intersect or (nearly) touch: conservative."""
    if max(ax, bx) < min(cx, dx) or max(cx, dx) < min(ax, bx):
        return False
    if max(ay, by) < min(cy, dy) or max(cy, dy) < min(ay, by):
        return False
    ex, ey = bx - ax, by - ay
    fx, fy = dx - cx, dy - cy
    le = abs(ex) + abs(ey)
    lf = abs(fx) + abs(fy)
    tol1 = 1e-9 * le * (lf + abs(cx - ax) + abs(cy - ay) + abs(dx - ax) + abs(dy - ay) + 1.0)
    o1 = ex * (cy - ay) - ey * (cx - ax)
    o2 = ex * (dy - ay) - ey * (dx - ax)
    if (o1 > tol1 and o2 > tol1) or (o1 < -tol1 and o2 < -tol1):
        return False
    tol2 = 1e-9 * lf * (le + abs(ax - cx) + abs(ay - cy) + abs(bx - cx) + abs(by - cy) + 1.0)
    o3 = fx * (ay - cy) - fy * (ax - cx)
    o4 = fx * (by - cy) - fy * (bx - cx)
    if (o3 > tol2 and o4 > tol2) or (o3 < -tol2 and o4 < -tol2):
        return False
    return True


@njit(inline="always", _nrt=False)
def _folds(ax, ay, bx, by, cx, cy, dx, dy):
    """Consecutive edges ab and cd (sharing a vertex) fold back onto each other."""
    ex, ey, fx, fy = bx - ax, by - ay, dx - cx, dy - cy
    cr = ex * fy - ey * fx
    tol = 1e-12 * (abs(ex) + abs(ey)) * (abs(fx) + abs(fy))
    return abs(cr) <= tol and ex * fx + ey * fy < 0


@kernel
def _pairs_apart(uv, s, n):
    """The all-pairs test: no two edges of uv[s:s + n] touch but consecutive ones at their
    vertex, no edge has zero length, no consecutive pair folds back."""
    for a in range(n):
        a0 = s + a
        a1 = s + a + 1 if a + 1 < n else s
        ax, ay, bx, by = uv[a0, 0], uv[a0, 1], uv[a1, 0], uv[a1, 1]
        if ax == bx and ay == by:
            return False
        for b in range(a + 1, n):
            b0 = s + b
            b1 = s + b + 1 if b + 1 < n else s
            cx, cy, dx, dy = uv[b0, 0], uv[b0, 1], uv[b1, 0], uv[b1, 1]
            if b == a + 1 or (a == 0 and b == n - 1):
                if _folds(ax, ay, bx, by, cx, cy, dx, dy):
                    return False
                continue
            if _seg_touch(ax, ay, bx, by, cx, cy, dx, dy):
                return False
    return True


@njit(inline="always", _nrt=False)
def _before(uv, s, key, a, b, mode):
    """Sort order: edge a's key before edge b's (mode 0); vertex a before vertex b by (v, u)
    (mode 1) or by (u, v) (mode 2)."""
    if mode == 0:
        return key[a] < key[b]
    x, y = (1, 0) if mode == 1 else (0, 1)
    pa, pb = uv[s + a, x], uv[s + b, x]
    return pa < pb or (pa == pb and uv[s + a, y] < uv[s + b, y])


@njit(inline="always", _nrt=False)
def _sift(idx, root, end, uv, s, key, mode):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _before(uv, s, key, idx[child], idx[child + 1], mode):
            child += 1
        if not _before(uv, s, key, idx[root], idx[child], mode):
            return
        idx[root], idx[child] = idx[child], idx[root]
        root = child


@kernel
def _heap_sort(idx, m, uv, s, key, mode):
    """idx[:m] sorted in place (heap sort: no scratch, n log n at worst); see _before."""
    for root in range(m // 2 - 1, -1, -1):
        _sift(idx, root, m, uv, s, key, mode)
    for end in range(m - 1, 0, -1):
        idx[0], idx[end] = idx[end], idx[0]
        _sift(idx, 0, end, uv, s, key, mode)


@kernel
def _run_sort(idx, m, key, tmp, runs):
    """idx[:m] = 0 .. m - 1 sorted by key, stable (tmp, runs: scratch): the monotone runs of
    key[:m] are found (a falling one reversed) and merged pairwise, O(m log runs): few runs for
    the keys of a polygon's edges in order (its v-monotone chains). More than RADIX_RUNS runs
    in RADIX_MIN keys or more go to _radix_sort instead (runs as its counts when it holds
    8 x 256), whose passes do not branch on the keys: d1's keyholes of 3 700 jagged vertices
    fall into 190-355 runs. Returns False, idx not sorted, only when runs cannot hold the
    runs' starts (the caller heap-sorts)."""
    nr = 0
    t = 0
    while t < m:
        if nr + 1 >= runs.shape[0]:
            return False
        runs[nr] = t
        nr += 1
        u = t + 1
        if u < m and key[u] < key[t]:
            while u < m and key[u] < key[u - 1]:
                u += 1
            for z in range(t, u):
                idx[z] = t + u - 1 - z      # a falling run, reversed
        else:
            while u < m and key[u] >= key[u - 1]:
                u += 1
            for z in range(t, u):
                idx[z] = z
        t = u
    runs[nr] = m
    if nr > RADIX_RUNS and m >= RADIX_MIN and runs.shape[0] >= 8 * 256:
        _radix_sort(idx, m, key, tmp, runs)
        return True
    inidx = True    # the merged runs are in idx (else in tmp)
    while nr > 1:
        src, dst = (idx, tmp) if inidx else (tmp, idx)
        k = 0
        for q in range(0, nr, 2):
            b = runs[q + 1]
            _merge(src, dst, runs[q], b, runs[q + 2] if q + 1 < nr else b, key)
            runs[k] = runs[q]
            k += 1
        runs[k] = m
        nr = k
        inidx = not inidx
    if not inidx:
        for z in range(m):
            idx[z] = tmp[z]
    return True


@njit(inline="always", _nrt=False)
def _order_bits(x):
    """A float64's bits (int64 x, -0.0 taken as +0.0) as a uint64 in the same order."""
    if x == _NEG_ZERO:
        x = 0
    return np.uint64(~x) if x < 0 else np.uint64(x) | _TOP


@kernel
def _radix_sort(idx, m, key, tmp, cnt):
    """idx[:m] = 0 .. m - 1 sorted by key, stable: an LSD radix sort on the keys' bits (8 bits
    a pass; a pass is skipped where every key has the same byte, as the low bytes of coordinates
    on a coarse grid do). No branch depends on the keys' order: the merges of many short runs
    missed one branch in two (d1's keyholes: _run_sort held half of their tests' time).
    cnt: scratch, 8 x 256."""
    kb = key.view(np.int64)
    for t in range(8 * 256):
        cnt[t] = 0
    for z in range(m):
        u = _order_bits(kb[z])
        for d in range(8):
            cnt[d * 256 + int((u >> np.uint64(8 * d)) & _B255)] += 1
    for z in range(m):
        idx[z] = z
    src, dst = idx, tmp
    inidx = True
    for d in range(8):
        c0 = d * 256
        if cnt[c0 + int((_order_bits(kb[0]) >> np.uint64(8 * d)) & _B255)] == m:
            continue    # one byte for all
        run = 0
        for t in range(c0, c0 + 256):
            c = cnt[t]
            cnt[t] = run
            run += c
        for z in range(m):
            e = src[z]
            t = c0 + int((_order_bits(kb[e]) >> np.uint64(8 * d)) & _B255)
            dst[cnt[t]] = e
            cnt[t] += 1
        src, dst = dst, src
        inidx = not inidx
    if not inidx:
        for z in range(m):
            idx[z] = tmp[z]


@njit(inline="always", _nrt=False)
def _merge(src, dst, a, b, c, key):
    """src[a:b] and src[b:c] (each sorted by key) merged into dst[a:c], stable."""
    i, j, o = a, b, a
    while i < b and j < c:
        x = src[i]
        y = src[j]
        if key[y] < key[x]:
            dst[o] = y
            j += 1
        else:
            dst[o] = x
            i += 1
        o += 1
    for w in range(i, b):
        dst[o] = src[w]
        o += 1
    for w in range(j, c):
        dst[o] = src[w]
        o += 1


@kernel
def _sweep_apart(uv, s, m, ea, eb, nxt, sk, idx, act, runs):
    """The edges e < m (from vertex ea[e] to vertex eb[e] of uv[s:]; nxt[e] the edge that
    follows e) are apart: no two touch except an edge and the one that follows it, at their
    shared vertex, without folding back. A sweep in order of the edges' lower v (sk[0]: each
    edge's lower v, sorted by _run_sort; idx, act, runs: scratch); the active edges' upper v and
    u-range are kept beside them (sk[1:4]), so that those out of reach are passed over without
    reading their vertices (_seg_touch would reject them on that test first). False too when
    the sweep would test more pairs than its budget (PAIR_BUDGET)."""
    key, avm, au0, au1 = sk[0], sk[1], sk[2], sk[3]
    for e in range(m):
        key[e] = min(uv[s + ea[e], 1], uv[s + eb[e], 1])
    if not _run_sort(idx, m, key, act, runs):
        for e in range(m):
            idx[e] = e
        _heap_sort(idx, m, uv, s, key, 0)
    budget = PAIR_BUDGET * m + min(m, ALL_PAIRS) ** 2 // 2 + 4096
    na = 0
    for t in range(m):
        a = idx[t]
        lo = key[a]
        a0 = s + ea[a]
        a1 = s + eb[a]
        ax, ay, bx, by = uv[a0, 0], uv[a0, 1], uv[a1, 0], uv[a1, 1]
        umin = min(ax, bx)
        umax = max(ax, bx)
        w = 0
        for z in range(na):
            if avm[z] < lo:
                continue        # ends above this edge and every later one: dropped
            b = act[z]
            act[w] = b
            avm[w] = avm[z]
            u0 = au0[z]
            u1 = au1[z]
            au0[w] = u0
            au1[w] = u1
            w += 1
            if u1 < umin or u0 > umax:
                continue
            b0 = s + ea[b]
            b1 = s + eb[b]
            cx, cy, dx, dy = uv[b0, 0], uv[b0, 1], uv[b1, 0], uv[b1, 1]
            if nxt[a] == b or nxt[b] == a:
                if _folds(ax, ay, bx, by, cx, cy, dx, dy):
                    return False
            elif _seg_touch(ax, ay, bx, by, cx, cy, dx, dy):
                return False
        budget -= na
        if budget < 0:
            return False
        na = w
        act[na] = a
        avm[na] = max(ay, by)
        au0[na] = umin
        au1[na] = umax
        na += 1
    return True


@njit(inline="always", _nrt=False)
def _same(uv, s, a, b):
    return uv[s + a, 0] == uv[s + b, 0] and uv[s + a, 1] == uv[s + b, 1]


@kernel
def _small_sort(idx, a, b, uv, s, key, mode):
    """idx[a:b] sorted in place (see _before): by insertion when short, else a heap sort."""
    if b - a > 16:
        _heap_sort(idx[a:b], b - a, uv, s, key, mode)
        return
    for t in range(a + 1, b):
        x = idx[t]
        z = t
        while z > a and _before(uv, s, key, x, idx[z - 1], mode):
            idx[z] = idx[z - 1]
            z -= 1
        idx[z] = x


@kernel
def _groups(uv, s, n, idx, grp, mode, key, tmp, runs):
    """Vertices sorted (mode 1: by (v, u), 2: by (u, v)) into idx; grp[k] = the position in idx
    where vertex k's point starts (the same for equal points). The first coordinate is sorted
    by merging its runs (_run_sort: a polygon's vertices in order fall into few), then each
    group of equal first coordinates by the second (_small_sort); a heap sort of all when runs
    is too short (key, tmp, runs: scratch)."""
    x = 1 if mode == 1 else 0
    for k in range(n):
        key[k] = uv[s + k, x]
    if _run_sort(idx, n, key, tmp, runs):
        t = 0
        while t < n:
            u = t + 1
            while u < n and key[idx[u]] == key[idx[t]]:
                u += 1
            if u - t > 1:
                _small_sort(idx, t, u, uv, s, key, mode)
            t = u
    else:
        for k in range(n):
            idx[k] = k
        _heap_sort(idx, n, uv, s, key, mode)
    g = 0
    for t in range(n):
        if t == 0 or not _same(uv, s, idx[t], idx[t - 1]):
            g = t
        grp[idx[t]] = g


@njit(inline="always", _nrt=False)
def _group_end(idx, grp, n, g):
    t = g
    while t < n and grp[idx[t]] == g:
        t += 1
    return t


@kernel
def _split_edge(a, b, n, idx, grp, ea, eb, m, cap):
    """Edge a -> b (axis-parallel: idx / grp sort its line's points by the coordinate along
    it) as its pieces between the polygon's points lying inside it, into ea / eb from m (a
    point's first vertex in idx stands for it). Returns the new m, or -1 past cap."""
    prev = a
    if grp[a] < grp[b]:     # the points between, in the edge's direction
        t, stop, step = _group_end(idx, grp, n, grp[a]), grp[b], 1
    else:
        t, stop, step = grp[a] - 1, _group_end(idx, grp, n, grp[b]) - 1, -1
    while t != stop:
        if grp[idx[t]] == t:
            if m >= cap:
                return -1
            ea[m] = prev
            eb[m] = idx[t]
            prev = idx[t]
            m += 1
        t += step
    if m >= cap:
        return -1
    ea[m] = prev
    eb[m] = b
    return m + 1


@kernel
def _reduce(uv, s, n, si, sk):
    """Keyhole reduction (see the module doc) of polygon uv[s:s + n] into the edges e < m (the
    count returned; -1: not reducible, left complex): from vertex EA[e] to vertex EB[e], NXT[e]
    the edge that follows e. Axis-parallel edges are first cut at the polygon's points lying
    inside them, so that overlapping opposite ones (KLayout's cuts along a hole's side) become
    equal pieces; zero-length edges and opposite pairs are then dropped; at most one kept edge
    may leave each point."""
    idx, grp, ea, eb, nxt = si[_IDX], si[_GRP], si[_EA], si[_EB], si[_NXT]
    idx2, grp2, out = si[_IDX2], si[_GRP2], si[_OUT]
    cap = ea.shape[0]
    _groups(uv, s, n, idx, grp, 1, sk[0], si[_ACT], si[_CYC])
    _groups(uv, s, n, idx2, grp2, 2, sk[0], si[_ACT], si[_CYC])
    m = 0
    for k in range(n):
        k2 = k + 1 if k + 1 < n else 0
        if grp[k] == grp[k2]:
            continue    # zero length
        if uv[s + k, 1] == uv[s + k2, 1]:
            m = _split_edge(k, k2, n, idx, grp, ea, eb, m, cap)
        elif uv[s + k, 0] == uv[s + k2, 0]:
            m = _split_edge(k, k2, n, idx2, grp2, ea, eb, m, cap)
        elif m < cap:
            ea[m] = k
            eb[m] = k2
            m += 1
        else:
            m = -1
        if m < 0 or m > PAIR_BUDGET * n + 4096:
            return -1
    # opposite pieces: equal keys (their two points, lower first), counted by direction
    # sorted by that key: a counting sort by the lower point (out: the counts), then each
    # bucket (the edges meeting one point: few) by the key
    key = sk[0]
    for p in range(n + 1):
        out[p] = 0
    for e in range(m):
        pa, pb = grp[ea[e]], grp[eb[e]]
        lo = min(pa, pb)
        key[e] = float(lo) * n + float(max(pa, pb))
        out[lo + 1] += 1
    for p in range(n):
        out[p + 1] += out[p]
    for e in range(m):
        lo = min(grp[ea[e]], grp[eb[e]])
        idx2[out[lo]] = e
        out[lo] += 1
    a = 0
    for p in range(n):     # out[p]: now the end of bucket p
        if out[p] - a > 1:
            _small_sort(idx2, a, out[p], uv, s, key, 0)
        a = out[p]
    t = 0
    while t < m:
        t1 = t
        fwd = 0
        for z in range(t, m):
            e = idx2[z]
            if key[e] != key[idx2[t]]:
                break
            t1 = z + 1
            fwd += 1 if grp[ea[e]] < grp[eb[e]] else -1
        if fwd < -1 or fwd > 1:
            return -1       # the same piece twice in one direction
        for z in range(t, t1):
            e = idx2[z]
            f = 1 if grp[ea[e]] < grp[eb[e]] else -1
            nxt[e] = -2 if f == fwd else -1
            fwd -= f if f == fwd else 0
        t = t1
    for k in range(n):
        out[k] = -1
    w = 0
    for e in range(m):
        if nxt[e] == -2:
            ea[w] = ea[e]
            eb[w] = eb[e]
            p = grp[ea[w]]
            if out[p] >= 0:
                return -1   # two kept edges leave one point
            out[p] = w
            w += 1
    for e in range(w):
        nxt[e] = out[grp[eb[e]]]
        if nxt[e] < 0:
            return -1       # cannot happen: every point keeps as many edges in as out
    return w


@kernel
def _cycles_nest(uv, s, m, ea, eb, nxt, byv, cyc, first, order, act, area, pvs, pus):
    """The edges e < m (see _reduce; byv: their order by lower v, as _sweep_apart left it)
    split into cycles (cyc[e]: its cycle; first[c]: an edge of cycle c; area[c]: twice its
    signed area): True when each point's winding is 0 or the sign of the total area (see the
    module doc). The winding of each cycle's test point (the middle of its first edge: pvs,
    pus) from the other cycles counts the edges crossing its ray to +u: the points in order of
    v (order), the edges meeting their row kept active (act) as in the sweep. False too when
    that takes more tests than the budget (CYCLE_BUDGET)."""
    for e in range(m):
        cyc[e] = -1
    nc = 0
    total = 0.0
    for e in range(m):
        if cyc[e] >= 0:
            continue
        a = 0.0
        j = e
        steps = 0
        while cyc[j] < 0:
            cyc[j] = nc
            p, q = s + ea[j], s + eb[j]
            a += uv[p, 0] * uv[q, 1] - uv[q, 0] * uv[p, 1]
            j = nxt[j]
            steps += 1
            if steps > m:
                return False
        if j != e:
            return False    # cannot happen: nxt is a permutation of the edges
        first[nc] = e
        area[nc] = a
        pus[nc] = 0.5 * (uv[s + ea[e], 0] + uv[s + eb[e], 0])
        pvs[nc] = 0.5 * (uv[s + ea[e], 1] + uv[s + eb[e], 1])
        order[nc] = nc
        total += a
        nc += 1
    if total == 0.0:
        return False
    if nc == 1:
        return True
    g = 1 if total > 0.0 else -1
    _heap_sort(order, nc, uv, s, pvs, 0)
    budget = CYCLE_BUDGET * m + ALL_PAIRS ** 2 // 2
    na = 0
    t = 0
    for z in range(nc):
        c = order[z]
        pv = pvs[c]
        pu = pus[c]
        while t < m and min(uv[s + ea[byv[t]], 1], uv[s + eb[byv[t]], 1]) <= pv:
            act[na] = byv[t]
            na += 1
            t += 1
        w = 0           # winding of (pu, pv) from the other cycles: edges crossing the ray to +u
        k = 0
        for y in range(na):
            j = act[y]
            u0, v0 = uv[s + ea[j], 0], uv[s + ea[j], 1]
            u1, v1 = uv[s + eb[j], 0], uv[s + eb[j], 1]
            if max(v0, v1) <= pv:
                continue    # ends at or above this row and every later one: dropped
            act[k] = j
            k += 1
            if cyc[j] != c and (v0 <= pv) != (v1 <= pv):
                x = u0 + (pv - v0) * (u1 - u0) / (v1 - v0)
                if x > pu:
                    w += 1 if v1 > v0 else -1
        budget -= na
        na = k
        if budget < 0:
            return False
        o = 1 if area[c] > 0.0 else -1
        if not ((w == 0 and o == g) or (w == g and o == -g)):
            return False
    return True


@njit(inline="always", _nrt=False)
def _turn(ax, ay, bx, by, cx, cy):
    """Cross product of (b - a) and (c - b): the turn at b."""
    return (bx - ax) * (cy - by) - (by - ay) * (cx - bx)


@njit(inline="always", _nrt=False)
def _quad_convex(uv, s):
    """The quadrilateral uv[s:s + 4] turns the same way, never straight, at every vertex
    (without branches: the common case of _is_simple)."""
    x0, y0, x1, y1 = uv[s, 0], uv[s, 1], uv[s + 1, 0], uv[s + 1, 1]
    x2, y2, x3, y3 = uv[s + 2, 0], uv[s + 2, 1], uv[s + 3, 0], uv[s + 3, 1]
    t0 = _turn(x3, y3, x0, y0, x1, y1)
    t1 = _turn(x0, y0, x1, y1, x2, y2)
    t2 = _turn(x1, y1, x2, y2, x3, y3)
    t3 = _turn(x2, y2, x3, y3, x0, y0)
    pos = (t0 > 0.0) & (t1 > 0.0) & (t2 > 0.0) & (t3 > 0.0)
    neg = (t0 < 0.0) & (t1 < 0.0) & (t2 < 0.0) & (t3 < 0.0)
    return pos | neg


@kernel
def _is_simple(uv, s, n, sk, si):
    """2 when polygon uv[s:s+n] is strictly convex, 1 when it is otherwise simple (see the
    module doc: apart edges, or a keyhole), 0 when it may not be. sk, si: scratch of
    scratch_shapes()."""
    # fast path: strictly convex with one turn (rectangles, triangles, ...); turns of one sign,
    # each under a half turn, add up to one turn when there are 3 or 4 (a quadrilateral without
    # branches: 27 -> 10 ns each, 200 000 slanted ones); neighbours by stepping, not by %
    if n == 4:
        if _quad_convex(uv, s):
            return 2
    sgn = 0
    convex = True
    a = s + n - 1
    for b in range(s, s + n):
        c = b + 1 if b + 1 < s + n else s
        cr = _turn(uv[a, 0], uv[a, 1], uv[b, 0], uv[b, 1], uv[c, 0], uv[c, 1])
        a = b
        if cr == 0.0:
            convex = False
            break
        g = 1 if cr > 0 else -1
        if sgn == 0:
            sgn = g
        elif g != sgn:
            convex = False
            break
    if convex:
        if n <= 4:
            return 2
        changes = 0
        last = 0
        first = 0
        for k in range(s, s + n):
            dy = uv[k + 1 if k + 1 < s + n else s, 1] - uv[k, 1]
            g = 1 if dy > 0 else (-1 if dy < 0 else 0)
            if g == 0:
                continue
            if first == 0:
                first = g
            elif g != last:
                changes += 1
            last = g
        if last != first:
            changes += 1
        return 2 if changes == 2 else 0
    if n > NMAX or sk.shape[0] < 4 or si.shape[0] < _ROWS or min(sk.shape[1], si.shape[1]) < 2 * n:
        return 0
    ea, eb, nxt, idx, act = si[_EA], si[_EB], si[_NXT], si[_IDX], si[_ACT]
    if n < SWEEP_MIN:
        if _pairs_apart(uv, s, n):
            return 1
    else:
        zero = False    # a zero-length edge: only the reduction can take it
        for k in range(n):
            k2 = k + 1 if k + 1 < n else 0
            ea[k] = k
            eb[k] = k2
            nxt[k] = k2
            zero |= _same(uv, s, k, k2)
        if not zero and _sweep_apart(uv, s, n, ea, eb, nxt, sk, idx, act, si[_OUT]):
            return 1
    if n < 4:
        return 0
    m = _reduce(uv, s, n, si, sk)
    if m < 3 or not _sweep_apart(uv, s, m, ea, eb, nxt, sk, idx, act, si[_OUT]):
        return 0
    return 1 if _cycles_nest(uv, s, m, ea, eb, nxt, idx, si[_CYC], si[_GRP], si[_IDX2], act,
                             sk[1], sk[2], sk[3]) else 0
