"""Explode: every polygon of a window, flattened through the hierarchy, in one numba kernel.

Selection follows KLayout's ``begin_shapes_rec_touching`` exactly (closed intervals):

* the window (um) is converted to an integer dbu box by rounding half away from zero (as KLayout
  converts a DBox to a Box);
* each cell visited has a *local region*, an integer box: the parent's local region mapped by the
  inverse of the placement's transform, bbox of its four corners, rounded, intersected with the
  child's ``cell_bbox``; an empty region stops the descent;
* placement copies are candidates as in KLayout's ``CellInstArray::begin_touching``: with ``ob``
  the child's bbox under the placement's linear part (rounded) and ``D`` the box of translations
  ``t`` for which ``ob + t`` touches the local region, an SREF is a candidate when its translation
  lies in ``D``; an AREF's copies (i, j) are those inside the bbox of ``D``'s corners mapped to
  lattice coordinates (inverse of [colvec rowvec]; every copy for a degenerate lattice), which is
  conservative for skewed lattices; a candidate is then descended when its local region (above)
  is not empty;
* a polygon is selected when its bbox touches its cell's local region.

For placements whose transforms are multiples of 90 degrees with unit magnification (nearly all
real data) this is the same as "the polygon's bbox, transformed to the top, touches the window";
for other angles and magnifications it reproduces KLayout's count, rounding included.

Kernel design: an explicit stack of frames (cell, depth, composed 2x3 float64 transform to the
top, local region int64[4]); each frame queries the cell's polygon R-tree and placement R-tree
(``engine.index``) with its local region; AREFs are one tree item each and the kernel solves for
the column/row range of candidate copies (above) instead of expanding them. Output and stack
buffers live in an ``ExplodeScratch`` reused from call to call; the kernel allocates nothing and,
when a buffer is too small, keeps counting and reports the size it needs; the wrapper grows the
buffer (output: to the counted size + 25%, at least doubling; frame stack: doubling) and runs
again, so in steady state there is one kernel call per window. Leaves of the R-trees are visited
with ``engine.index.tree_next`` (no hit list); a leaf whose node box lies inside the local
region selects all its polygons without per-polygon box tests. ``clip=True`` transforms each
polygon in a small call-free pass (``_transform_poly``) and cuts (``_cut``) only those crossing a
window side, along the sides crossed. The kernel only reads the database (safe from forked
workers sharing it).

The public ``explode`` keeps what does not change between calls in an ``ExplodeState`` on the
layout (kernel arguments, top cell, layer masks, per-thread scratch), dropped by
``Layout.close``; the kernel also writes each polygon's (layer, datatype), so a call costs the
kernel plus a few microseconds (window check, copies of the outputs, the dbu scaling).
"""
from __future__ import annotations

import threading

import numpy as np

from engine.database import vertex_offsets, vtx_start
from engine.errors import ClipmillError
from engine.index import MAX_LEVELS, tree_next, tree_start
from engine.jit import jit
from engine.layout import check_window
from engine.polygons import Polygons

OK, ERR_CYCLE, OUT_FULL, STACK_FULL = 0, 1, 2, 3
ARG_F = -2      # position of the leaf size in db_args (then layer_ld, last)


@jit
def _round(v):
    """KLayout's coord rounding: half away from zero."""
    return np.floor(v + 0.5) if v > 0 else np.ceil(v - 0.5)


@jit
def _clip_axis(buf, src, n, dst, axis, bound, keep_ge):
    """One Sutherland-Hodgman pass from buf[src, :n] into buf[dst]: keep coord[axis] >= bound
    (keep_ge) or <= bound. (Indexes into one buffer, no array views: a view costs reference
    counting per call.)"""
    m = 0
    if n == 0:
        return 0
    px = buf[src, n - 1, 0]
    py = buf[src, n - 1, 1]
    pv = buf[src, n - 1, axis]
    pin = pv >= bound if keep_ge else pv <= bound
    for i in range(n):
        cx = buf[src, i, 0]
        cy = buf[src, i, 1]
        cv = buf[src, i, axis]
        cin = cv >= bound if keep_ge else cv <= bound
        if cin != pin:
            t = (bound - pv) / (cv - pv)
            if axis == 0:
                buf[dst, m, 0] = bound
                buf[dst, m, 1] = py + t * (cy - py)
            else:
                buf[dst, m, 0] = px + t * (cx - px)
                buf[dst, m, 1] = bound
            m += 1
        if cin:
            buf[dst, m, 0] = cx
            buf[dst, m, 1] = cy
            m += 1
        px = cx
        py = cy
        pv = cv
        pin = cin
    return m


@jit
def _transform_poly(s, k, vtx, T, wx0, wy0, wx1, wy1, cbuf):
    """Transform the polygon vtx[s:s+k] into cbuf[0, :k]. Returns k when it lies wholly inside
    the window (no cut needed), 0 when it is then degenerate (zero area: its area, only tested
    against zero, is summed here in the same order as ``_cut`` sums it), -1 when it crosses a
    side (``_cut`` next). Kept small and call-free (no array-taking helper, not even an inlined
    one): a function with such calls pays reference counting of its arrays per call, and this
    shape compiles to a fast loop."""
    t0 = T[0]
    t1 = T[1]
    t2 = T[2]
    t3 = T[3]
    t4 = T[4]
    t5 = T[5]
    out = False
    area = 0.0
    pu = 0.0
    pv = 0.0
    for i in range(k):
        x = float(vtx[s + i, 0])
        y = float(vtx[s + i, 1])
        u = t0 * x + t1 * y + t4
        v = t2 * x + t3 * y + t5
        cbuf[0, i, 0] = u
        cbuf[0, i, 1] = v
        if u < wx0 or u > wx1 or v < wy0 or v > wy1:
            out = True
        if i > 0:
            area += pu * v - u * pv
        pu = u
        pv = v
    if out:
        return -1
    if k < 3:
        return 0
    area += pu * cbuf[0, 0, 1] - cbuf[0, 0, 0] * pv
    return 0 if area == 0.0 else k


@jit
def _transform_rect(p, poly_bbox, T, wx0, wy0, wx1, wy1, cbuf):
    """``_transform_poly`` for the rectangle poly_bbox[p] (a polygon stored without vertices:
    counter-clockwise from (x0, y0)); same results, 4 vertices."""
    t0 = T[0]
    t1 = T[1]
    t2 = T[2]
    t3 = T[3]
    t4 = T[4]
    t5 = T[5]
    bx0 = float(poly_bbox[p, 0])
    by0 = float(poly_bbox[p, 1])
    bx1 = float(poly_bbox[p, 2])
    by1 = float(poly_bbox[p, 3])
    out = False
    area = 0.0
    pu = 0.0
    pv = 0.0
    for i in range(4):
        x = bx1 if (i == 1 or i == 2) else bx0
        y = by1 if i >= 2 else by0
        u = t0 * x + t1 * y + t4
        v = t2 * x + t3 * y + t5
        cbuf[0, i, 0] = u
        cbuf[0, i, 1] = v
        if u < wx0 or u > wx1 or v < wy0 or v > wy1:
            out = True
        if i > 0:
            area += pu * v - u * pv
        pu = u
        pv = v
    if out:
        return -1
    area += pu * cbuf[0, 0, 1] - cbuf[0, 0, 0] * pv
    return 0 if area == 0.0 else 4


@jit
def _cut(cbuf, k, wx0, wy0, wx1, wy1):
    """Clip the polygon in cbuf[0, :k] to the window; result in cbuf[0, :m]. Returns m (0 when
    nothing with a non-zero area is left). Only the passes for the sides that some vertex
    crosses are run: the others would keep every vertex unchanged (cut points interpolate
    between vertices, so they never fall beyond a side no vertex crosses)."""
    sides = 0
    for i in range(k):
        u = cbuf[0, i, 0]
        v = cbuf[0, i, 1]
        if u < wx0:
            sides |= 1
        if u > wx1:
            sides |= 2
        if v < wy0:
            sides |= 4
        if v > wy1:
            sides |= 8
    m = k
    src = 0
    if sides & 1:
        m = _clip_axis(cbuf, src, m, 1 - src, 0, wx0, True)
        src = 1 - src
    if sides & 2:
        m = _clip_axis(cbuf, src, m, 1 - src, 0, wx1, False)
        src = 1 - src
    if sides & 4:
        m = _clip_axis(cbuf, src, m, 1 - src, 1, wy0, True)
        src = 1 - src
    if sides & 8:
        m = _clip_axis(cbuf, src, m, 1 - src, 1, wy1, False)
        src = 1 - src
    if m < 3:
        return 0
    if src == 1:
        for i in range(m):
            cbuf[0, i, 0] = cbuf[1, i, 0]
            cbuf[0, i, 1] = cbuf[1, i, 1]
    area = 0.0
    for i in range(m):
        j = i + 1 if i + 1 < m else 0
        area += cbuf[0, i, 0] * cbuf[0, j, 1] - cbuf[0, j, 0] * cbuf[0, i, 1]
    if area == 0.0:
        return 0
    return m


@jit
def _box_of(M, bx0, by0, bx1, by1, out):
    """bbox (float) of box (bx0..by1) under the 2x3 transform M."""
    x0 = np.inf
    y0 = np.inf
    x1 = -np.inf
    y1 = -np.inf
    for c in range(4):
        x = bx0 if (c & 1) == 0 else bx1
        y = by0 if (c & 2) == 0 else by1
        u = M[0] * x + M[1] * y + M[4]
        v = M[2] * x + M[3] * y + M[5]
        x0 = min(x0, u)
        x1 = max(x1, u)
        y0 = min(y0, v)
        y1 = max(y1, v)
    out[0] = x0
    out[1] = y0
    out[2] = x1
    out[3] = y1


@jit
def _lattice_range(na, nb, ax, ay, bx, by, dx0, dy0, dx1, dy1):
    """Copies [i0, i1) x [j0, j1) of an na x nb lattice (vectors a, b) that KLayout visits for
    the displacement box D: the lattice-coordinate bbox of D's corners (a degenerate lattice,
    |det| < 0.5, visits every copy; a zero vector collapses its copies into one)."""
    eps = 1e-10
    za = ax == 0.0 and ay == 0.0
    zb = bx == 0.0 and by == 0.0
    ea_x, ea_y, eb_x, eb_y = ax, ay, bx, by
    if za:
        if zb:
            ea_x, ea_y = 1.0, 0.0
        else:
            ea_x, ea_y = by, -bx
    if zb:
        if za:
            eb_x, eb_y = 0.0, 1.0
        else:
            eb_x, eb_y = -ay, ax
    det = ea_x * eb_y - ea_y * eb_x
    if abs(det) < 0.5:
        return 0, na, 0, nb
    amax_e = 1 if za else na
    bmax_e = 1 if zb else nb
    u0 = np.inf
    u1 = -np.inf
    v0 = np.inf
    v1 = -np.inf
    for cc in range(4):
        px = dx0 if (cc & 1) == 0 else dx1
        py = dy0 if (cc & 2) == 0 else dy1
        u = (px * eb_y - py * eb_x) / det
        v = (ea_x * py - ea_y * px) / det
        u0 = min(u0, u)
        u1 = max(u1, u)
        v0 = min(v0, v)
        v1 = max(v1, v)
    return (_lo_index(u0, amax_e, eps), _hi_index(u1, amax_e, eps),
            _lo_index(v0, bmax_e, eps), _hi_index(v1, bmax_e, eps))


@jit
def _lo_index(v, n, eps):
    if v < eps:
        return 0
    if v >= n:
        return n
    return min(int(v + 1.0 - eps), n)


@jit
def _hi_index(v, n, eps):
    if v < -eps:
        return 0
    if v >= n:
        return n
    return min(int(v + eps) + 1, n)


@jit
def explode_kernel(cell_poly_off, poly_vtx_blk, poly_vtx_rel, vtx, poly_layer, poly_bbox,
                   cell_ref_off, cell_bbox, ref_cell, ref_xf, ref_org, ref_aref, ref_bbox, xf_mat,
                   aref_cols, aref_rows, aref_colvec, aref_rowvec, pnode_off, pnode_bbox,
                   rnode_off, rnode_bbox, F, layer_ld, top, win, layer_mask, max_depth, clip,
                   out_xy, out_off, out_lay, out_ld, st_cell, st_depth, st_T, st_R, tstack, starts,
                   cbuf):
    """The whole descent. win: float64[4] window in dbu (top-cell coordinates).

    Returns (status, npoly, nvtx): polygon i is out_xy[out_off[i]:out_off[i+1]] with layer row
    out_lay[i] and (layer, datatype) out_ld[i] (= layer_ld[out_lay[i]]). status OUT_FULL: the
    output buffers were too small; npoly/nvtx are then the sizes
    needed (the traversal went on counting). STACK_FULL: the frame stack overflowed (double it).
    Nothing is allocated; nothing but the output/scratch buffers is written."""
    ncells = len(cell_poly_off) - 1
    wx0 = win[0]
    wy0 = win[1]
    wx1 = win[2]
    wy1 = win[3]
    cap_v = out_xy.shape[0]
    cap_p = min(out_off.shape[0] - 1, out_lay.shape[0], out_ld.shape[0])
    cap_s = st_cell.shape[0]
    npoly = 0
    nv = 0
    write = True
    all_layers = True
    for q in range(layer_mask.shape[0]):
        if layer_mask[q] == 0:
            all_layers = False
    out_off[0] = 0
    # top frame: the rounded window (as KLayout's DBox -> Box)
    r0 = _round(wx0)
    r1 = _round(wy0)
    r2 = _round(wx1)
    r3 = _round(wy1)
    if (r0 > cell_bbox[top, 2] or r2 < cell_bbox[top, 0] or r1 > cell_bbox[top, 3]
            or r3 < cell_bbox[top, 1]):
        return OK, 0, 0
    st_cell[0] = top
    st_depth[0] = 0
    st_T[0, 0] = 1.0
    st_T[0, 1] = 0.0
    st_T[0, 2] = 0.0
    st_T[0, 3] = 1.0
    st_T[0, 4] = 0.0
    st_T[0, 5] = 0.0
    st_R[0, 0] = r0
    st_R[0, 1] = r1
    st_R[0, 2] = r2
    st_R[0, 3] = r3
    sp = 1
    T = np.empty(6)
    M = np.empty(6)
    Mi = np.empty(6)
    Ml = np.empty(6)
    bb = np.empty(4)
    while sp > 0:
        sp -= 1
        c = st_cell[sp]
        d = st_depth[sp]
        if d > ncells:
            return ERR_CYCLE, npoly, nv
        for q in range(6):
            T[q] = st_T[sp, q]
        # the transform in scalars: the vertex loop below then keeps it in registers (stores
        # to out_xy could alias T for the compiler)
        t0 = T[0]
        t1 = T[1]
        t2 = T[2]
        t3 = T[3]
        t4 = T[4]
        t5 = T[5]
        R0 = st_R[sp, 0]
        R1 = st_R[sp, 1]
        R2 = st_R[sp, 2]
        R3 = st_R[sp, 3]
        # own polygons: leaves of the cell's R-tree touching the local region
        a = cell_poly_off[c]
        n = cell_poly_off[c + 1] - a
        tsp = tree_start(n, F, starts, tstack)
        while tsp > 0:
            k, tsp = tree_next(pnode_off[c], pnode_bbox, starts, F, R0, R1, R2, R3, tstack, tsp)
            if k < 0:
                break
            # a leaf inside the local region: every polygon of it touches (no bbox tests)
            j = pnode_off[c] + k
            inside = (pnode_bbox[j, 0] >= R0 and pnode_bbox[j, 2] <= R2
                      and pnode_bbox[j, 1] >= R1 and pnode_bbox[j, 3] <= R3)
            for p in range(a + k * F, min(a + (k + 1) * F, a + n)):
                if not inside and (poly_bbox[p, 0] > R2 or poly_bbox[p, 2] < R0
                                   or poly_bbox[p, 1] > R3 or poly_bbox[p, 3] < R1):
                    continue
                if not all_layers and layer_mask[poly_layer[p]] == 0:
                    continue
                s0 = vtx_start(poly_vtx_blk, poly_vtx_rel, p)
                k0 = vtx_start(poly_vtx_blk, poly_vtx_rel, p + 1) - s0
                if clip:
                    if k0 > 0:
                        m = _transform_poly(s0, k0, vtx, T, wx0, wy0, wx1, wy1, cbuf)
                    else:
                        m = _transform_rect(p, poly_bbox, T, wx0, wy0, wx1, wy1, cbuf)
                    if m < 0:
                        m = _cut(cbuf, k0 if k0 > 0 else 4, wx0, wy0, wx1, wy1)
                    if m == 0:
                        continue
                    if write and (nv + m > cap_v or npoly + 1 > cap_p):
                        write = False
                    if write:
                        for i in range(m):
                            out_xy[nv + i, 0] = cbuf[0, i, 0]
                            out_xy[nv + i, 1] = cbuf[0, i, 1]
                else:
                    m = k0 if k0 > 0 else 4
                    if write and (nv + m > cap_v or npoly + 1 > cap_p):
                        write = False
                    if write and k0 > 0:
                        for i in range(m):
                            x = float(vtx[s0 + i, 0])
                            y = float(vtx[s0 + i, 1])
                            out_xy[nv + i, 0] = t0 * x + t1 * y + t4
                            out_xy[nv + i, 1] = t2 * x + t3 * y + t5
                    elif write:  # the rectangle poly_bbox[p], counter-clockwise from (x0, y0)
                        x0 = float(poly_bbox[p, 0])
                        y0 = float(poly_bbox[p, 1])
                        x1 = float(poly_bbox[p, 2])
                        y1 = float(poly_bbox[p, 3])
                        out_xy[nv, 0] = t0 * x0 + t1 * y0 + t4
                        out_xy[nv, 1] = t2 * x0 + t3 * y0 + t5
                        out_xy[nv + 1, 0] = t0 * x1 + t1 * y0 + t4
                        out_xy[nv + 1, 1] = t2 * x1 + t3 * y0 + t5
                        out_xy[nv + 2, 0] = t0 * x1 + t1 * y1 + t4
                        out_xy[nv + 2, 1] = t2 * x1 + t3 * y1 + t5
                        out_xy[nv + 3, 0] = t0 * x0 + t1 * y1 + t4
                        out_xy[nv + 3, 1] = t2 * x0 + t3 * y1 + t5
                nv += m
                if write:
                    lr = poly_layer[p]
                    out_lay[npoly] = lr
                    out_ld[npoly, 0] = layer_ld[lr, 0]
                    out_ld[npoly, 1] = layer_ld[lr, 1]
                    out_off[npoly + 1] = nv
                npoly += 1
        if d >= max_depth:
            continue
        # placements: leaves of the placement R-tree touching the local region
        a = cell_ref_off[c]
        n = cell_ref_off[c + 1] - a
        tsp = tree_start(n, F, starts, tstack)
        while tsp > 0:
            k, tsp = tree_next(rnode_off[c], rnode_bbox, starts, F, R0, R1, R2, R3, tstack, tsp)
            if k < 0:
                break
            for r in range(a + k * F, min(a + (k + 1) * F, a + n)):
                if (ref_bbox[r, 0] > R2 or ref_bbox[r, 2] < R0 or ref_bbox[r, 1] > R3
                        or ref_bbox[r, 3] < R1):
                    continue
                ch = ref_cell[r]
                cx0 = float(cell_bbox[ch, 0])
                cy0 = float(cell_bbox[ch, 1])
                cx1 = float(cell_bbox[ch, 2])
                cy1 = float(cell_bbox[ch, 3])
                if cx0 > cx1 or cy0 > cy1:
                    continue
                xr = ref_xf[r]
                for q in range(4):
                    M[q] = xf_mat[xr, q]
                M[4] = float(ref_org[r, 0])
                M[5] = float(ref_org[r, 1])
                det = M[0] * M[3] - M[1] * M[2]
                Mi[0] = M[3] / det
                Mi[1] = -M[1] / det
                Mi[2] = -M[2] / det
                Mi[3] = M[0] / det
                # KLayout's candidate copies: displacements t with (ob + t) touching R, ob the
                # cell bbox under the linear part (rounded); copy (i, j) is a candidate when
                # (i, j) lies in the lattice-coordinate bbox of that displacement box
                # (dbArray.h regular_array::begin_touching; exact for SREFs).
                Ml[0] = M[0]
                Ml[1] = M[1]
                Ml[2] = M[2]
                Ml[3] = M[3]
                Ml[4] = 0.0
                Ml[5] = 0.0
                _box_of(Ml, cx0, cy0, cx1, cy1, bb)
                dx0 = R0 - (_round(bb[2]) + M[4])
                dy0 = R1 - (_round(bb[3]) + M[5])
                dx1 = R2 - (_round(bb[0]) + M[4])
                dy1 = R3 - (_round(bb[1]) + M[5])
                ia = ref_aref[r]
                if ia < 0:      # SREF
                    if dx0 > 0.0 or dx1 < 0.0 or dy0 > 0.0 or dy1 < 0.0:
                        continue
                    ax = 0.0
                    ay = 0.0
                    bx = 0.0
                    by = 0.0
                    i0, i1, j0, j1 = 0, 1, 0, 1
                else:
                    ax = aref_colvec[ia, 0]
                    ay = aref_colvec[ia, 1]
                    bx = aref_rowvec[ia, 0]
                    by = aref_rowvec[ia, 1]
                    i0, i1, j0, j1 = _lattice_range(aref_cols[ia], aref_rows[ia], ax, ay, bx, by,
                                                    dx0, dy0, dx1, dy1)
                for j in range(j0, j1):
                    for i in range(i0, i1):
                        ox = M[4] + i * ax + j * bx
                        oy = M[5] + i * ay + j * by
                        # local region in the child: inverse transform of R, rounded, & bbox
                        Mi[4] = -(Mi[0] * ox + Mi[1] * oy)
                        Mi[5] = -(Mi[2] * ox + Mi[3] * oy)
                        _box_of(Mi, R0, R1, R2, R3, bb)
                        n0 = max(_round(bb[0]), cx0)
                        n1 = max(_round(bb[1]), cy0)
                        n2 = min(_round(bb[2]), cx1)
                        n3 = min(_round(bb[3]), cy1)
                        if n0 > n2 or n1 > n3:
                            continue
                        if sp >= cap_s:
                            return STACK_FULL, npoly, nv
                        st_cell[sp] = ch
                        st_depth[sp] = d + 1
                        st_T[sp, 0] = T[0] * M[0] + T[1] * M[2]
                        st_T[sp, 1] = T[0] * M[1] + T[1] * M[3]
                        st_T[sp, 2] = T[2] * M[0] + T[3] * M[2]
                        st_T[sp, 3] = T[2] * M[1] + T[3] * M[3]
                        st_T[sp, 4] = T[0] * ox + T[1] * oy + T[4]
                        st_T[sp, 5] = T[2] * ox + T[3] * oy + T[5]
                        st_R[sp, 0] = n0
                        st_R[sp, 1] = n1
                        st_R[sp, 2] = n2
                        st_R[sp, 3] = n3
                        sp += 1
    return (OK if write else OUT_FULL), npoly, nv


class ExplodeScratch:
    """Reusable buffers of one caller (one per thread or worker): output, frame stack, tree
    traversal stack and the clipping buffer. The kernel never allocates: when the output or the
    frame stack is too small it says so, ``explode_arrays`` grows the buffer here (to the size the
    kernel counted, or doubling the stack) and runs again; steady state needs no retry."""

    def __init__(self, max_poly_vertices: int = 8, leaf_size: int = 16):
        self.out_xy = np.empty((1 << 14, 2))
        self.out_off = np.empty(1 << 12, dtype=np.int64)
        self.out_lay = np.empty(1 << 12, dtype=np.int32)
        self.out_ld = np.empty((1 << 12, 2), dtype=np.int32)
        self.st_cell = np.empty(1024, dtype=np.int32)
        self.st_depth = np.empty(1024, dtype=np.int64)
        self.st_T = np.empty((1024, 6))
        self.st_R = np.empty((1024, 4))
        self.tstack = np.empty(2 * MAX_LEVELS * leaf_size + 16, dtype=np.int64)
        self.starts = np.empty(MAX_LEVELS + 1, dtype=np.int64)
        # each Sutherland-Hodgman pass at most doubles the vertex count: 4 passes, 16x
        self.cbuf = np.empty((2, 16 * max_poly_vertices + 16, 2))
        self.retries = 0

    def grow_output(self, npoly: int, nvtx: int) -> None:
        if nvtx > self.out_xy.shape[0]:
            self.out_xy = np.empty((max(nvtx + nvtx // 4, 2 * self.out_xy.shape[0]), 2))
        if npoly + 1 > self.out_off.shape[0] - 1:
            n = max(npoly + npoly // 4 + 2, 2 * self.out_off.shape[0])
            self.out_off = np.empty(n, dtype=np.int64)
            self.out_lay = np.empty(n, dtype=np.int32)
            self.out_ld = np.empty((n, 2), dtype=np.int32)

    def grow_stack(self) -> None:
        n = 2 * self.st_cell.shape[0]
        self.st_cell = np.empty(n, dtype=np.int32)
        self.st_depth = np.empty(n, dtype=np.int64)
        self.st_T = np.empty((n, 6))
        self.st_R = np.empty((n, 4))


def db_args(db) -> tuple:
    """The database and index arrays the kernel reads, in its argument order (the low-level
    entry builds them per call; the public ``explode`` keeps them in the layout's
    ``ExplodeState``, dropped by ``Layout.close``)."""
    a = db.arena.arrays
    if "ix_leaf" not in a:
        raise ClipmillError("layout has no spatial index (ix_* arrays); build it with "
                            "engine.index.build_index")
    return (a["cell_poly_off"], a["poly_vtx_blk"], a["poly_vtx_rel"], a["vtx"], a["poly_layer"],
            a["poly_bbox"],
            a["cell_ref_off"], a["cell_bbox"], a["ref_cell"], a["ref_xf"], a["ref_org"],
            a["ref_aref"], a["ref_bbox"], a["xf_mat"], a["aref_cols"], a["aref_rows"],
            a["aref_colvec"], a["aref_rowvec"],
            a["ix_pnode_off"], a["ix_pnode_bbox"], a["ix_rnode_off"], a["ix_rnode_bbox"],
            int(a["ix_leaf"][0]), a["layer_ld"])


def max_poly_vertices(db) -> int:
    """Most vertices of any polygon (sizes the clipping buffer); cached on ``db``."""
    v = db.__dict__.get("_explode_maxv")
    if v is None:
        off = vertex_offsets(db.arena.arrays)
        v = max(int(np.diff(off).max()), 4) if len(off) > 1 else 4
        db.__dict__["_explode_maxv"] = v
    return v


def new_scratch(db) -> ExplodeScratch:
    return ExplodeScratch(max_poly_vertices(db), int(db.arena.arrays["ix_leaf"][0]))


def _fit_scratch(s: ExplodeScratch, maxv: int, F: int) -> None:
    """Clipping buffer and tree stack large enough for this database."""
    if s.cbuf.shape[1] < 16 * maxv + 16:
        s.cbuf = np.empty((2, 16 * maxv + 16, 2))
    if s.tstack.shape[0] < 2 * MAX_LEVELS * F + 16:
        s.tstack = np.empty(2 * MAX_LEVELS * F + 16, dtype=np.int64)


def _run(args, window_dbu, cell: int, layer_mask, depth: int, clip: bool, s: ExplodeScratch):
    """One kernel call (a retry after growing a buffer); returns (npoly, nvtx). ``depth``
    already mapped (-1 -> 1 << 40), arrays already contiguous of the kernel's dtypes."""
    while True:
        status, npoly, nv = explode_kernel(*args, cell, window_dbu, layer_mask, depth, clip,
                                           s.out_xy, s.out_off, s.out_lay, s.out_ld, s.st_cell,
                                           s.st_depth, s.st_T, s.st_R, s.tstack, s.starts, s.cbuf)
        if status == OK:
            return npoly, nv
        if status == OUT_FULL:
            s.grow_output(npoly, nv)
        elif status == STACK_FULL:
            s.grow_stack()
        else:
            raise ClipmillError("cell hierarchy is recursive (a cell places itself)")
        s.retries += 1


def explode_arrays(db, window_dbu, cell: int, layer_mask, depth: int, clip: bool,
                   scratch: ExplodeScratch):
    """Low-level entry (rasterizer, workers): window in dbu (float64[4], validated), cell row,
    uint8 layer mask over layer_ld rows, depth (-1 = unlimited).

    Returns (xy float64[N,2] dbu, offsets int64[M+1], layer_row int32[M]): VIEWS into ``scratch``,
    valid until its next use."""
    args = db_args(db)
    s = scratch
    window_dbu = np.ascontiguousarray(window_dbu, dtype=np.float64)
    layer_mask = np.ascontiguousarray(layer_mask, dtype=np.uint8)
    _fit_scratch(s, max_poly_vertices(db), args[ARG_F])
    d = int(depth) if depth >= 0 else 1 << 40
    npoly, nv = _run(args, window_dbu, int(cell), layer_mask, d, bool(clip), s)
    return s.out_xy[:nv], s.out_off[:npoly + 1], s.out_lay[:npoly]


class ExplodeState:
    """What the public ``explode`` needs of one layout, built once: the kernel's database
    arguments, dbu, the top cell row and layer masks already resolved (masks are cached per
    ``layers`` value that can be a dict key). Holds views of the arena: ``Layout.close`` drops
    it (``drop_state``) before closing the arena."""

    MAX_MASKS = 64

    def __init__(self, layout):
        db = layout.db
        self.args = db_args(db)
        self.maxv = max_poly_vertices(db)
        self.F = self.args[ARG_F]
        self.dbu = layout.dbu_um
        self.masks = {}
        self.top = None
        self.scratch = {}      # thread id -> ExplodeScratch

    def mask(self, layout, layers):
        try:
            if layers is not None and type(layers) not in (list, tuple):
                raise TypeError  # str, number, iterator ...: not cached
            # the type is part of the key: (1, 0) is layer 1/0, [1, 0] layers 1 and 0
            key = None if layers is None else (type(layers), tuple(layers))
            m = self.masks.get(key)
        except TypeError:      # unhashable items too: no caching
            return np.ascontiguousarray(layout.layer_mask(layers), dtype=np.uint8)
        if m is None:
            m = np.ascontiguousarray(layout.layer_mask(layers), dtype=np.uint8)
            if len(self.masks) >= self.MAX_MASKS:
                self.masks.clear()
            self.masks[key] = m
        return m

    def cell(self, layout, cell) -> int:
        if cell is None:
            if self.top is None:
                self.top = layout.resolve_cell(None)   # raises while there are several tops
            return self.top
        return layout.resolve_cell(cell)

    def scratch_for_thread(self) -> ExplodeScratch:
        """The calling thread's buffers (the kernel releases the GIL, so threads may explode
        concurrently; each gets its own)."""
        tid = threading.get_ident()
        s = self.scratch.get(tid)
        if s is None:
            s = self.scratch[tid] = ExplodeScratch(self.maxv, self.F)
        return s


def state_of(layout) -> ExplodeState:
    st = layout.__dict__.get("_explode_state")
    if st is None:
        st = layout.__dict__["_explode_state"] = ExplodeState(layout)
    return st


def drop_state(layout) -> None:
    """Forget the cached views and buffers (``Layout.close``)."""
    layout.__dict__.pop("_explode_state", None)


def _check_depth(depth) -> int:
    if depth is None:
        return 1 << 40
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise ClipmillError(f"depth must be a whole number >= 0 or None (got {depth!r})")
    if depth < 0:
        raise ClipmillError(f"depth must be >= 0 or None (got {depth})")
    return int(depth)


def explode(layout, window, *, cell=None, layers=None, depth=None, clip=False) -> Polygons:
    """Every polygon of ``layers`` whose bbox (KLayout touching semantics, see module doc)
    touches ``window`` (x0, y0, x1, y1 um, in ``cell`` coordinates), flattened to ``cell``
    coordinates in um; ``clip`` cuts each polygon to the window (polygons stay separate; one
    that clips to nothing is dropped); ``depth`` levels below ``cell`` (0 = own shapes)."""
    st = state_of(layout)
    w = check_window(window, st.dbu)
    c = st.cell(layout, cell)
    mask = st.mask(layout, layers)
    d = _check_depth(depth)
    s = st.scratch_for_thread()
    npoly, nv = _run(st.args, w, c, mask, d, bool(clip), s)
    return Polygons(s.out_xy[:nv] * st.dbu, s.out_off[:npoly + 1].copy(), s.out_ld[:npoly].copy())
