"""Rasterize flat polygons (engine.polygons.Polygons, um) into a window bitmap.

``rasterize(polygons, window, pixel_size, mode="binary"|"gray", ...)`` -> uint8 (rows, cols).

Pixel grid
    Anchored at the window's top-left corner (x0, y1). Pixel (row, col) covers
    x in [x0 + col*px, x0 + (col+1)*px], y in [y1 - (row+1)*py, y1 - row*py]; row 0 is the top.
    cols = ceil((x1 - x0)/px - 1e-9), rows = ceil((y1 - y0)/py - 1e-9). When the window is not a
    whole number of pixels the last column / row extends past x1 / below y0 and is rasterized in
    full: geometry beyond the window edge but inside that last partial pixel counts.
    ``flip_y`` gives bottom-up rows, ``flip_x`` right-to-left columns.

Fill rule (KLayout's merge semantics, checked on bow-ties and doubly wound polygons)
    Each polygon covers the points where ITS OWN winding number is non-zero; the picture is the
    union of all polygons (overlaps never count twice, a negatively wound lobe of a bow-tie is
    inside, a region wound twice is inside once).

binary
    1 exactly when the pixel centre is inside. A centre exactly on a boundary follows the
    half-open rule of a rectangle [x0, x1) x [y0, y1): left and bottom edges are inside, right and
    top edges outside (for slanted edges: a centre on an edge that has the interior to its right
    (looking in +x) is inside, on one with the interior to its left outside). A centre within
    1e-9 pixel of an edge counts as on it, so vertices and edges through pixel centres behave
    exactly despite the float rounding of um values.

gray
    round(255 * covered fraction of the pixel), the covered area of the union computed
    analytically (exact up to float rounding, any edge angle): axis-parallel rectangles through
    an exact union sweep per pixel row; pixels crossed by the edges of one other simple polygon
    use an exact signed-area accumulation added to the rectangles' coverage when they share no
    area there; pixels crossed by the edges of several polygons (or of a complex one, or of
    one overlapping a rectangle) get an exact local sweep of the union inside the pixel
    (sub-bands split at every vertex and crossing); untouched pixels are 0 or 255.

``invert`` swaps inside and outside (1 - b, 255 - g with g the gray level above).
``packed=True`` (binary only) returns ``np.packbits(image, axis=1)``. ``out`` receives the image
(uint8, C-contiguous, right shape). ``scratch`` is a ``Scratch()`` kept per worker: every buffer
is grown once and reused, so a window allocates nothing but its output and the kernels allocate
nothing per polygon.

Polygons are never clipped beforehand: edges outside the window are simply ignored (edges left of
the window still count for the winding of the pixels to their right).

How (all numba kernels, scratch reused):
* coordinates go to pixel units (times the reciprocal pixel size), each polygon's offsets and
  coordinates checked (finite in pixel units) before its first use; each polygon is classified:
  outside (skipped), simple (winding 0 or +-1 everywhere: no two edges touching, or a keyhole
  whose cuts cancel; engine.simple: O(n) for convex polygons, a sweep otherwise) with its
  orientation normalised so that its winding is 0 or 1, or complex;
* binary: a 2-D difference buffer of winding counts at pixel centres, filled in the same single
  pass over the polygons that converts and classifies them (_classify is not run): an
  axis-parallel rectangle (tested on its coordinates in registers) adds the 4 corner marks of its
  box (gathered RECT_BATCH at a time, then added: the scattered writes overlap better), another
  simple polygon per non-horizontal edge one +-1 per row it covers (vertical edges O(1): mark and
  cancel in the same column); then prefix sums down the columns and along the rows, fused with
  writing the image (a running column sum per row) when no polygon is complex; complex polygons
  add their own indicator (winding != 0) over their bounding box. Inside = count > 0.
* gray, Manhattan polygons (every edge axis-parallel, 5 to 64 vertices: L, T, U, combs) are first
  cut into disjoint rectangles when they are at least CUT_MIN_SHARE of the polygons
  (engine.manhattan; the cut copies the whole set, so a few among many are left as they are):
  they then take the rectangles' exact union sweep below instead of the walk and the local pass
  wherever they meet rectangles (real layouts: the SRAM window of bench/raster_vs_klayout.py
  0.86x the time; 1.40-1.45x faster on a layout window with 20% L shapes);
* gray, rectangles (when their perimeter exceeds RING_MARK_MIN x the pixel count, by default
  whenever there is one): grouped by the first pixel row they meet (a counting sort) and
  sorted by left side within each group (groups in polygon order are mostly sorted: a merge of
  two runs, or a counting sort by RECT_BUCKET-column buckets and an insertion sort; rectangles
  out of first-row order, as _classify finds by sampling, are first sorted by column, so
  their groups come nearly sorted and an insertion sort in place finishes them). The
  finishing pass keeps, row by row, the list of rectangles meeting the row sorted by left
  side: the previous row's list less those ending above, merged (branch-free) with the row's
  group; nothing per row band is stored for the whole image. In a band the covered length
  L(u) of the union's cross-section is a step function of u; a sweep over the list, run for
  each row just before it is finished, adds each step dL at u to a one-row accumulation
  buffer as a vertical edge of height dL would (coverage = prefix sum along the row, as in
  font rasterizers): the pieces (the rectangles' parts in the band) come in clusters overlapping
  in u; a piece meeting no other one steps by its height and back, a pair is done in closed
  form, in larger clusters full-height pieces merge as u-intervals (L = 1), the others are kept
  active sorted by their lower end and L is the length of the union of their intervals.
  Exact for any overlap, no per-pixel bookkeeping.
* gray, other polygons (walked from a compact copy of their vertices that _classify writes,
  copied again band by band of pixel rows and left to right when they come out of first-row
  order, so that the later passes read them nearly in sequence: _others_by_band):
  grouped by the first pixel row they meet and walked inside the finishing pass just before
  that row, into rings of rows (as tall as the tallest of them, a power of two; the whole
  image when one spans it) that stay in cache: per edge piece, the exact signed area right of
  it goes into an accumulation buffer and each pixel records which simple polygon's boundary
  crosses it, or "several" (no per-pixel lists); two simple polygons whose boxes share no area
  in the pixel leave it as exact as one (their areas add up: all-slanted 200 000, 111 -> 92 ms).
* gray, finishing (one pass, prefix sums fused; 16 pixels a step in explicit vector code,
  engine.simd, float32 sums): a pixel crossed by no other boundary is 1 when a polygon covers
  it, else the rectangles' coverage cR; crossed by one simple polygon (or two apart):
  min(cR + its area (+ polygons covering the whole pixel), 1) when cR is 0 or that sum is
  known exact, else listed; "several": 1 when the rectangles cover it, else listed. The
  rectangles meeting a listed pixel are gathered from its row's list at the end of the row
  (two galloping cursors); a pixel crossed by one polygon whose box, clipped to the pixel,
  meets none of theirs is settled there first (the sum is exact). The other listed pixels get
  their other polygons from a tile index (CSR of the non-rectangles per tile of
  1 << TILE_SHIFT pixels a side, built only for tiles holding listed pixels from the
  non-rectangles' ids and boxes that _classify lists in sequence; shifts, never integer
  divisions) and their rectangles from those gathered: every polygon whose open box meets the
  open pixel; each box is checked against the ones already taken as it is added.
  If a rectangle covers the whole pixel: 1. If the boxes clipped to the pixel do not overlap
  (pairs of rectangles excepted: their union is in cR; convex pairs separated by an edge line
  count as apart), the sum is exact; otherwise the pixel's covered area is computed alone: the
  union of boxes for rectangles only; for one simple polygon P over rectangles, A(union of the
  boxes) + A(P in the pixel) - A(P in that union), the union cut into disjoint boxes and P's
  area in each one meeting its box (the trapezoid rule over P's edges clipped to the box's u
  range, their v clamped to it: exact for a simple polygon); else the polygons' edges (a
  rectangle's two sides from its box) clipped to the pixel (parts left of it projected onto its
  left side), where a polygon whose boundary misses the open pixel is constant there (its
  centre winding says all or nothing), are swept in sub-bands split at every end point and
  crossing, tracking each polygon's own winding.
* every kernel runs without numba's reference counting (see ``engine.jit.kernel``).
"""
from __future__ import annotations

import math

import numpy as np

from engine import manhattan
from engine.errors import ClipmillError
from engine.jit import kernel, njit
from engine.polygons import Polygons
from engine.simd import LANES, gray_block, lowest_bit, prefetch
from engine.simple import _is_simple, scratch_shapes

EPS = 1e-9             # a centre within EPS pixel of an edge is on it
MAX_PIXELS = 1 << 30   # larger images are refused (int32 pixel indices, memory)
RING_MARK_MIN = 0.0    # rectangles take the union sweep when their perimeter exceeds this x pixels
#                        (inf: every polygon takes the general path; the name is historical)
COVER_EPS = 1e-5       # rectangles' union coverage within this of 1 counts as whole cover
RECT_BUCKET = 8        # columns per bucket of the per-row counting sort of rectangle pieces
CLIP_COVER = True      # one simple polygon over rectangles in a pixel: clipped areas (see doc;
#                        False: the local sweep, as for several polygons)
GATHER_MIN = 4096      # gray: room for this many rectangles gathered for listed pixels at first
RECT_BATCH = 256       # binary: rectangles' boxes gathered before their marks are added
TILE_SHIFT = 3         # tiles indexing polygons for the exact pass: 1 << TILE_SHIFT pixels a side
CUT_MIN_SHARE = 0.03   # gray: Manhattan polygons are cut into rectangles when at least this share
#                        of the polygons are such (engine.manhattan); inf: never
ROW_ORDER_MIN = 512    # gray: more other polygons than this are put in band order when they are
#                        out of first-row order (_others_by_band); fewer stay in cache
WALK_CHUNK = 256       # gray: taller polygons are walked this many pixel rows at a time
PREFETCH_AHEAD = 8     # exact pass and _others_by_band: vertices fetched this many items ahead
_U1, _U2, _U3, _U4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)



class Scratch:
    """Per-worker reusable buffers (grow-only)."""

    def __init__(self):
        self._bufs = {}
        self._clean = {}    # name: the number of leading elements known to be zero
        self._last = {}     # name: (n, dtype as passed, the view handed out for them)

    def get(self, name, n, dtype, zero=False):
        if self._clean:
            self._clean.pop(name, None)
        last = self._last.get(name)
        if last is not None and last[0] == n and last[1] is dtype:
            v = last[2]     # the same request as the last one: its view (a call asks ~50)
        else:
            v = self._view(name, n, dtype)
        if zero:
            v.fill(0)
        return v

    def _view(self, name, n, dtype):
        m = max(int(n), 0)
        dt = np.dtype(dtype)
        b = self._bufs.get(name)
        if b is None or b.size < m or b.dtype != dt:
            grow = int(b.size * 1.25) if (b is not None and b.dtype == dt) else 0
            b = np.empty(max(m, grow, 1), dtype=dt)
            self._bufs[name] = b
        v = b[:m]
        self._last[name] = (n, dtype, v)
        return v

    def zeroed(self, name, n, dtype):
        """get(name, n, dtype, zero=True), but without the fill when the buffer's first n
        elements were handed back zero (kept_zero) and not taken since."""
        clean = self._clean.pop(name, 0)
        b = self._bufs.get(name)
        if b is not None and b.dtype == np.dtype(dtype) and 0 <= n <= clean:
            return b[:n]
        return self.get(name, n, dtype, zero=True)

    def kept_zero(self, name, n):
        """The caller leaves buffer name's first n elements zero: the next zeroed() skips its
        fill."""
        self._clean[name] = int(n)

    def capacity(self, name) -> int:
        """Elements the buffer name holds now (0 before its first use)."""
        b = self._bufs.get(name)
        return 0 if b is None else b.size

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._bufs.values())


# ----------------------------------------------------------------------------------------------
# small shared helpers (the SAME centre rule everywhere)

@njit(inline="always", _nrt=False)
def _row_range(vmin, vmax, nrows):
    """Rows r whose centre r+0.5 satisfies vmin < r+0.5 <= vmax (within EPS: a centre within EPS
    of vmin / vmax counts as equal to it), clamped to [0, nrows)."""
    a = min(max(vmin - 0.5 + EPS, -2.0), nrows + 2.0)
    b = min(max(vmax - 0.5 + EPS, -2.0), nrows + 2.0)
    r0 = int(math.floor(a)) + 1
    r1 = int(math.floor(b))
    if r0 < 0:
        r0 = 0
    if r1 > nrows - 1:
        r1 = nrows - 1
    return r0, r1


@njit(inline="always", _nrt=False)
def _first_col(u0, v0, u1, v1, vc, ncols):
    """First column whose centre is at or right of the edge at row-centre line vc (clamped to
    [0, ncols]; ncols means none)."""
    if u0 == u1:
        uc = u0
    else:
        uc = u0 + (vc - v0) * (u1 - u0) / (v1 - v0)
    uc = min(max(uc - 0.5 - EPS, -2.0), ncols + 2.0)
    c = int(math.ceil(uc))
    if c < 0:
        c = 0
    if c > ncols:
        c = ncols
    return c


@njit(inline="always", _nrt=False)
def _quad(xy, s, x0, y1, ipx, ipy):
    """The 4 vertices xy[s:s + 4] in pixel units (ua, va, ..., vd; ipx, ipy: the reciprocals
    of the pixel sizes) and whether they form an axis-parallel rectangle of non-zero width and
    height (edges alternate vertical and horizontal)."""
    s = np.uint64(s)    # unsigned: no wrap-around code for negative indices
    ua = (xy[s, 0] - x0) * ipx
    va = (y1 - xy[s, 1]) * ipy
    ub = (xy[s + _U1, 0] - x0) * ipx
    vb = (y1 - xy[s + _U1, 1]) * ipy
    uc = (xy[s + _U2, 0] - x0) * ipx
    vc = (y1 - xy[s + _U2, 1]) * ipy
    ud = (xy[s + _U3, 0] - x0) * ipx
    vd = (y1 - xy[s + _U3, 1]) * ipy
    isrect = (((ua == ub and vb == vc and uc == ud and vd == va)
               or (va == vb and ub == uc and vc == vd and ud == ua))
              and ua != uc and va != vc)
    return ua, va, ub, vb, uc, vc, ud, vd, isrect


@njit(inline="always", _nrt=False)
def _to_pixels(xy, s, e, x0, y1, ipx, ipy, uv):
    """Vertices xy[s:e] to pixel units in uv[s:e] (see _quad); returns 0.0 when they are all
    finite there, else NaN (as _zero4)."""
    z = 0.0
    for k in range(s, e):
        u = (xy[k, 0] - x0) * ipx
        v = (y1 - xy[k, 1]) * ipy
        uv[k, 0] = u
        uv[k, 1] = v
        z += (u - u) + (v - v)
    return z


@njit(inline="always", _nrt=False)
def _zero4(a, b, c, d):
    """0.0 when a, b, c and d are all finite, else NaN (x - x is +0.0 for finite x only)."""
    return ((a - a) + (b - b)) + ((c - c) + (d - d))


@njit(inline="always", _nrt=False)
def _box_area(uv, s, e):
    """Bounding box (umin, umax, vmin, vmax) of the vertices uv[s:e] and twice their signed
    area (shoelace sum; negative when the polygon runs counter-clockwise in layout x, y, as
    the v axis points down)."""
    umin = uv[s, 0]
    umax = uv[s, 0]
    vmin = uv[s, 1]
    vmax = uv[s, 1]
    area = 0.0
    for k in range(s, e):
        u, v = uv[k, 0], uv[k, 1]
        umin = min(umin, u)
        umax = max(umax, u)
        vmin = min(vmin, v)
        vmax = max(vmax, v)
        k2 = k + 1 if k + 1 < e else s
        area += u * uv[k2, 1] - uv[k2, 0] * v
    return umin, umax, vmin, vmax, area


@njit(inline="always", _nrt=False)
def _late(ra, top, late):
    """One polygon sampled for order, first row ra, top the lowest first row sampled before it:
    (late + 1 when it starts more than 8 rows above top, else late; the new top). See
    _out_of_order."""
    return late + (ra + 8 < top), max(top, ra)


def _out_of_order(late, n):
    """n polygons (rectangles, or the others) are out of first-row order when more than one in
    16 of those _classify sampled (one in 16) were late (_late). A layout written row by row
    with small offsets is not; an explode's cell by cell order often is."""
    return 256 * late > n


@kernel
def _classify(xy, x0, y1, ipx, ipy, uv, offsets, nrows, ncols, cls, orient, rect, bbox, rcount,
              estart, others, obox, ouv, ooff, sk, si):
    """Vertices to pixel units (uv: u right, v down from the top-left corner) and each polygon
    classified: cls: 0 irrelevant / degenerate, 1 simple (winding 0 or +-1 everywhere, keyholes
    included: engine.simple), 2 not proved so (complex). orient: +-1 so that simple polygons
    get winding +1 inside. rect: 1 axis-parallel rectangle, 2 other
    strictly convex polygon, 0 else. bbox: umin, umax, vmin, vmax. The rectangles meeting each
    pixel row are counted for the most in a row (rcount, nrows + 1: two difference marks per
    rectangle, then one pass sums them), and by the first row they meet into estart[ra + 1]
    (nrows + 1; see _rect_rows). others[:n]: the ids of the n relevant polygons other than
    axis-parallel rectangles, obox[:n] their boxes (read in sequence by _tile_index),
    ouv[ooff[q]:ooff[q + 1]] the vertices of others[q] (a compact copy that _walk_poly reads in
    sequence). Returns (complex polygons, n, rectangles' perimeter clipped to the image, most
    rectangles meeting a row, rectangles, how many of one in 16 of them start more than 8 rows
    above the lowest first row of those sampled before, the same for the n others, -1), or
    (..., i) as soon as polygon i has offsets
    going back or past len(xy) or a coordinate that is not finite in pixel units (the caller
    raises; nothing else has used them). Four-vertex polygons are tested for being axis-parallel
    rectangles on their coordinates in registers (writing their uv costs less than skipping
    it: measured, again this session)."""
    ncomplex = 0
    nother = 0
    ooff[0] = 0
    nrect = 0
    rlate = 0
    rtop = 0
    olate = 0
    otop = 0
    perim = 0.0
    for r in range(nrows + 1):
        rcount[r] = 0
        estart[r] = 0
    for i in range(offsets.shape[0] - 1):
        s, e = offsets[i], offsets[i + 1]
        n = e - s
        cls[i] = 0
        orient[i] = 1
        rect[i] = 0
        if n < 0 or e > xy.shape[0]:
            return -1, 0, 0.0, 0, 0, 0, 0, i
        if n == 4:
            ua, va, ub, vb, uc, vc, ud, vd, isrect = _quad(xy, s, x0, y1, ipx, ipy)
            su = np.uint64(s)
            uv[su, 0], uv[su, 1], uv[su + _U1, 0], uv[su + _U1, 1] = ua, va, ub, vb
            uv[su + _U2, 0], uv[su + _U2, 1], uv[su + _U3, 0], uv[su + _U3, 1] = uc, vc, ud, vd
            z = _zero4(ua, va, ub, vb) + _zero4(uc, vc, ud, vd)
        else:
            isrect = False
            z = _to_pixels(xy, s, e, x0, y1, ipx, ipy, uv)
        if z != 0.0:
            return -1, 0, 0.0, 0, 0, 0, 0, i
        if n < 3:
            continue
        if isrect:
            u0, u1 = min(ua, uc), max(ua, uc)
            v0, v1 = min(va, vc), max(va, vc)
            bbox[i, 0], bbox[i, 1], bbox[i, 2], bbox[i, 3] = u0, u1, v0, v1
            if u0 >= ncols or u1 <= 0.0 or v1 <= 0.0 or v0 >= nrows:
                continue
            cls[i] = 1
            rect[i] = 1
            nrect += 1
            perim += 2.0 * (min(u1, ncols) - max(u0, 0.0) + min(v1, nrows) - max(v0, 0.0))
            # one piece in each row of [ra, rb): difference marks, summed below
            ra = max(int(math.floor(v0)), 0)
            rb = min(int(math.ceil(v1)), nrows)
            estart[ra + 1] += 1
            if (nrect & 15) == 0:
                rlate, rtop = _late(ra, rtop, rlate)
            if ra < rb:
                rcount[ra + 1] += 1
                if rb < nrows:
                    rcount[rb + 1] -= 1
            # orientation from the turn at vertex 1
            cr = (ub - ua) * (vc - vb) - (vb - va) * (uc - ub)
            orient[i] = 1 if cr < 0 else -1
            continue
        if n == 4:      # from the registers _quad left them in
            umin, umax = min(min(ua, ub), min(uc, ud)), max(max(ua, ub), max(uc, ud))
            vmin, vmax = min(min(va, vb), min(vc, vd)), max(max(va, vb), max(vc, vd))
            area = (ua - uc) * (vb - vd) - (ub - ud) * (va - vc)
        else:
            umin, umax, vmin, vmax, area = _box_area(uv, s, e)
        bbox[i, 0], bbox[i, 1], bbox[i, 2], bbox[i, 3] = umin, umax, vmin, vmax
        if umin >= ncols or umax <= 0.0 or vmax <= 0.0 or vmin >= nrows or vmax == vmin:
            continue
        orient[i] = 1 if area <= 0 else -1
        if (nother & 15) == 0:
            olate, otop = _late(int(max(vmin, 0.0)), otop, olate)
        others[nother] = i
        obox[nother, 0], obox[nother, 1], obox[nother, 2], obox[nother, 3] = umin, umax, vmin, vmax
        t = ooff[nother]
        for k in range(s, e):
            ouv[t + k - s, 0] = uv[k, 0]
            ouv[t + k - s, 1] = uv[k, 1]
        nother += 1
        ooff[nother] = t + n
        simple = _is_simple(uv, s, n, sk, si)
        if simple:
            cls[i] = 1
            rect[i] = 2 if simple == 2 else 0
        else:
            cls[i] = 2
            ncomplex += 1
    most = 0
    run = 0
    for r in range(nrows):
        run += rcount[r + 1]
        most = max(most, run)
    return ncomplex, nother, perim, most, nrect, rlate, olate, -1


# ----------------------------------------------------------------------------------------------
# binary: winding number at pixel centres through a 2-D difference buffer

@kernel
def _edge_diff(u0, v0, u1, v1, d, nrows, ncols, diff, r_off, c_off, nc):
    """Add d at (row, first column right of the edge) for each row centre the edge covers, as a
    column-difference (cancelled one row below). diff is flat (rows+1) x nc, indices shifted by
    r_off / c_off (local buffers of complex polygons)."""
    if v0 > v1:
        u0, v0, u1, v1 = u1, v1, u0, v0
    r0, r1 = _row_range(v0, v1, nrows)
    if r0 > r1:
        return
    if u0 == u1:
        c = _first_col(u0, v0, u1, v1, 0.0, ncols)
        if c >= ncols:
            return
        c = max(c - c_off, 0)
        if c >= nc:
            return
        diff[(r0 - r_off) * nc + c] += d
        diff[(r1 + 1 - r_off) * nc + c] -= d
        return
    for r in range(r0, r1 + 1):
        c = _first_col(u0, v0, u1, v1, r + 0.5, ncols)
        if c >= ncols:
            continue
        c = max(c - c_off, 0)
        if c >= nc:
            continue
        diff[(r - r_off) * nc + c] += d
        diff[(r + 1 - r_off) * nc + c] -= d


@njit(inline="always", _nrt=False)
def _rect_marks(u0, u1, v0, v1, nrows, ncols, diff):
    """The 4 corner marks of the axis-parallel rectangle [u0, u1] x [v0, v1] (winding +1 inside)
    in diff: the same rows and columns as _edge_diff on its two vertical edges."""
    r0, r1 = _row_range(v0, v1, nrows)
    if r0 > r1:
        return
    ca = _first_col(u0, 0.0, u0, 1.0, 0.0, ncols)
    if ca >= ncols:
        return
    cb = _first_col(u1, 0.0, u1, 1.0, 0.0, ncols)
    a = r0 * ncols
    b = (r1 + 1) * ncols
    diff[a + ca] += 1
    diff[b + ca] -= 1
    if cb < ncols:
        diff[a + cb] -= 1
        diff[b + cb] += 1


@kernel
def _binary_marks(xy, x0, y1, ipx, ipy, uv, offsets, nrows, ncols, cls, diff, rb, sk, si):
    """Binary in one pass over the polygons (_classify and _winding_simple fused, the vertices
    read once): an axis-parallel rectangle, tested on its coordinates in registers, adds its 4
    corner marks to diff (zeroed, flat (nrows+1) x ncols) and writes nothing else; another
    polygon gets its uv, is classified like _classify does (cls: 0 irrelevant, 1 simple, 2
    complex) and, when simple, adds its edges at once (orientation from its
    signed area). Returns the number of complex polygons (left to _winding_complex), or -1 - i
    as soon as polygon i has offsets going back or past len(xy) or a coordinate that is not
    finite in pixel units (nothing has been written for it; the caller raises)."""
    ncomplex = 0
    nb = 0
    for i in range(offsets.shape[0] - 1):
        s, e = offsets[i], offsets[i + 1]
        n = e - s
        cls[i] = 0
        if n < 0 or e > xy.shape[0]:
            return -1 - i
        if n == 4:
            ua, va, ub, vb, uc, vc, ud, vd, isrect = _quad(xy, s, x0, y1, ipx, ipy)
            if _zero4(ua, va, ub, vb) + _zero4(uc, vc, ud, vd) != 0.0:
                return -1 - i
            if isrect:
                rb[nb, 0], rb[nb, 1] = min(ua, uc), max(ua, uc)
                rb[nb, 2], rb[nb, 3] = min(va, vc), max(va, vc)
                nb += 1
                if nb == rb.shape[0]:
                    for j in range(nb):
                        _rect_marks(rb[j, 0], rb[j, 1], rb[j, 2], rb[j, 3], nrows, ncols, diff)
                    nb = 0
                continue
            uv[s, 0], uv[s, 1], uv[s + 1, 0], uv[s + 1, 1] = ua, va, ub, vb
            uv[s + 2, 0], uv[s + 2, 1], uv[s + 3, 0], uv[s + 3, 1] = uc, vc, ud, vd
        else:
            z = _to_pixels(xy, s, e, x0, y1, ipx, ipy, uv)
            if z != 0.0:
                return -1 - i
            if n < 3:
                continue
        umin, umax, vmin, vmax, area = _box_area(uv, s, e)
        if umin >= ncols or umax <= 0.0 or vmax <= 0.0 or vmin >= nrows or vmax == vmin:
            continue
        if not _is_simple(uv, s, n, sk, si):
            cls[i] = 2
            ncomplex += 1
            continue
        cls[i] = 1
        o = 1 if area <= 0 else -1
        for k in range(s, e):
            k2 = k + 1 if k + 1 < e else s
            u0, v0, u1, v1 = uv[k, 0], uv[k, 1], uv[k2, 0], uv[k2, 1]
            if v0 == v1:
                continue
            d = o if v1 > v0 else -o
            _edge_diff(u0, v0, u1, v1, d, nrows, ncols, diff, 0, 0, ncols)
    for j in range(nb):
        _rect_marks(rb[j, 0], rb[j, 1], rb[j, 2], rb[j, 3], nrows, ncols, diff)
    return ncomplex


@kernel
def _prefix(diff, nrows, ncols):
    for r in range(1, nrows):
        b = r * ncols
        a = b - ncols
        for c in range(ncols):
            diff[b + c] += diff[a + c]
    for r in range(nrows):
        b = r * ncols
        acc = 0
        for c in range(ncols):
            acc += diff[b + c]
            diff[b + c] = acc


@kernel
def _winding_complex(uv, offsets, cls, nrows, ncols, local, count, count2):
    """For each complex polygon add its indicator (own winding != 0) at pixel centres to count
    (and to count2, the complex-only count used by gray). local: flat scratch of
    (nrows+1)*ncols int32."""
    for i in range(offsets.shape[0] - 1):
        if cls[i] != 2:
            continue
        s, e = offsets[i], offsets[i + 1]
        umin = uv[s, 0]
        umax = uv[s, 0]
        vmin = uv[s, 1]
        vmax = uv[s, 1]
        for k in range(s, e):
            umin = min(umin, uv[k, 0])
            umax = max(umax, uv[k, 0])
            vmin = min(vmin, uv[k, 1])
            vmax = max(vmax, uv[k, 1])
        r0, r1 = _row_range(vmin, vmax, nrows)
        if r0 > r1:
            continue
        c0 = _first_col(umin, 0.0, umin, 1.0, 0.0, ncols)
        c1 = min(_first_col(umax, 0.0, umax, 1.0, 0.0, ncols), ncols - 1)
        if c0 > c1:
            continue
        nc = c1 - c0 + 1
        nr = r1 - r0 + 1
        for j in range((nr + 1) * nc):
            local[j] = 0
        for k in range(s, e):
            k2 = k + 1 if k + 1 < e else s
            u0, v0, u1, v1 = uv[k, 0], uv[k, 1], uv[k2, 0], uv[k2, 1]
            if v0 == v1:
                continue
            d = 1 if v1 > v0 else -1
            _edge_diff(u0, v0, u1, v1, d, nrows, ncols, local, r0, c0, nc)
        for rr in range(nr):
            b = rr * nc
            if rr > 0:
                for cc in range(nc):
                    local[b + cc] += local[b - nc + cc]
        for rr in range(nr):
            b = rr * nc
            acc = 0
            g = (r0 + rr) * ncols + c0
            for cc in range(nc):
                acc += local[b + cc]
                if acc != 0:
                    count[g + cc] += 1
                    count2[g + cc] += 1


@kernel
def _prefix_finish(diff, nrows, ncols, colsum, invert, flip_x, flip_y, out):
    """_prefix and _finish_binary in one pass: a running column sum (colsum, ncols) per row and
    its prefix sum along the row give the count; diff is only read."""
    for c in range(ncols):
        colsum[c] = 0
    lo = 1 if invert else 0
    hi = 1 - lo
    for r in range(nrows):
        ro = nrows - 1 - r if flip_y else r
        b = r * ncols
        for c in range(ncols):
            colsum[c] += diff[b + c]
        acc = 0
        if flip_x:
            for c in range(ncols):
                acc += colsum[c]
                out[ro, ncols - 1 - c] = hi if acc != 0 else lo
        else:
            for c in range(ncols):
                acc += colsum[c]
                out[ro, c] = hi if acc != 0 else lo


@kernel
def _finish_binary(count, nrows, ncols, invert, flip_x, flip_y, out):
    for r in range(nrows):
        ro = nrows - 1 - r if flip_y else r
        b = r * ncols
        for c in range(ncols):
            co = ncols - 1 - c if flip_x else c
            v = 1 if count[b + c] != 0 else 0
            out[ro, co] = 1 - v if invert else v


# ----------------------------------------------------------------------------------------------
# gray: signed-area accumulation + owner marking, exact local sweeps where polygons meet

@njit(inline="always", _nrt=False)
def _apart(wbox, o, pu0, pu1, pv0, pv1, c, r):
    """Boxes wbox[o] and (pu0, pu1, pv0, pv1) share no area inside pixel (c, r)."""
    u0 = max(max(wbox[o, 0], pu0), float(c))
    u1 = min(min(wbox[o, 1], pu1), c + 1.0)
    v0 = max(max(wbox[o, 2], pv0), float(r))
    v1 = min(min(wbox[o, 3], pv1), r + 1.0)
    return u0 >= u1 or v0 >= v1


@njit(inline="always", _nrt=False)
def _mark(pix, c, r, i, simple, owner, state, wbox, pu0, pu1, pv0, pv1):
    """Mark pixel pix (column c, image row r) as crossed by polygon i (box pu0, pu1, pv0, pv1).
    state: 0 none, 1 one simple polygon (its mark in owner), 3 two simple polygons whose boxes
    (wbox[owner], i's) share no area in the pixel (the second one's mark in owner), 2 else
    (several polygons, or a complex one): in states 1 and 3 the polygons' areas add up
    exactly. owner is only read and written where state is not 0, so it needs no clearing
    (the finishing pass streams one byte per pixel, not 4). Polygons are walked one after
    the other, so a pixel marked last by i is only revisited by i."""
    st = state[pix]
    if st == 0:
        state[pix] = 1 if simple else 2
        owner[pix] = i
    elif (st & 1) == 1 and owner[pix] != i:
        if st == 1 and simple and _apart(wbox, owner[pix], pu0, pu1, pv0, pv1, c, r):
            state[pix] = 3
            owner[pix] = i
        else:
            state[pix] = 2


@kernel
def _walk_poly(q, i, uv, offsets, cls, orient, nrows, ncols, acc, lacc, owner, state, rmask, rlo,
               rhi, wbox):
    """Walk polygon i (vertices uv[offsets[q]:offsets[q + 1]], marked as q) in pixel rows rlo to
    rhi: accumulate the signed area right of each of its edges into acc (rows of ncols + 1:
    coverage = prefix sum along the row) and mark the pixels whose open interior its boundary
    crosses (state / owner; see _mark; wbox[q]: its box). Image row r is row r & rmask of acc,
    owner and state (a ring of rows when rmask + 1 is a power of two; rmask = -1: the whole
    image). lacc (nrows + 1): row-difference buffer for edges left of the window, summed into
    acc's column 0 by the caller."""
    W = ncols + 1
    ci = cls[i]
    s, e = offsets[q], offsets[q + 1]
    o = orient[i]
    doacc = ci == 1
    pu0, pu1, pv0, pv1 = wbox[q, 0], wbox[q, 1], wbox[q, 2], wbox[q, 3]
    for k in range(s, e):
        k2 = k + 1 if k + 1 < e else s
        u0, v0, u1, v1 = uv[k, 0], uv[k, 1], uv[k2, 0], uv[k2, 1]
        if v0 == v1:
            # horizontal: no area, but it crosses pixel interiors unless on a row line
            if v0 <= 0.0 or v0 >= nrows:
                continue
            r = int(math.floor(v0))
            if r == v0 or r < rlo or r > rhi:
                continue
            lo, hi = min(u0, u1), max(u0, u1)
            if hi <= 0.0 or lo >= ncols:
                continue
            ca = max(int(math.floor(lo)), 0)
            cb = min(int(math.ceil(hi)) - 1, ncols - 1)
            for c in range(ca, cb + 1):
                _mark((r & rmask) * ncols + c, c, r, q, doacc, owner, state, wbox, pu0,
                      pu1, pv0, pv1)
            continue
        d = o if v1 > v0 else -o
        if v0 > v1:
            u0, v0, u1, v1 = u1, v1, u0, v0
        if v1 <= rlo or v0 >= rhi + 1:
            continue
        if min(u0, u1) >= ncols:
            continue
        ra = max(int(math.floor(v0)), rlo)
        rb = min(int(math.ceil(v1)) - 1, rhi)
        if max(u0, u1) <= 0.0:
            # wholly left of the window: d x its height in each row, into column 0; the
            # full rows between its end rows through the row-difference buffer lacc
            if doacc and ra <= rb:
                acc[(ra & rmask) * W] += d * (min(v1, ra + 1.0) - max(v0, float(ra)))
                if rb > ra:
                    acc[(rb & rmask) * W] += d * (min(v1, rb + 1.0) - max(v0, float(rb)))
                    lacc[ra + 1] += d
                    lacc[rb] -= d
            continue
        if u0 == u1:
            # vertical: one column, hoisted out of the row loop
            c = int(math.floor(u0))
            fr = c + 1 - u0
            inner = u0 != c
            for r in range(ra, rb + 1):
                h = min(v1, r + 1.0) - max(v0, float(r))
                if h <= 0.0:
                    continue
                if doacc:
                    f = h * fr
                    acc[(r & rmask) * W + c] += d * f
                    acc[(r & rmask) * W + c + 1] += d * (h - f)
                if inner:
                    _mark((r & rmask) * ncols + c, c, r, q, doacc, owner, state, wbox, pu0,
                          pu1, pv0, pv1)
            continue
        slope = (u1 - u0) / (v1 - v0)
        for r in range(ra, rb + 1):
            va = max(v0, float(r))
            vb = min(v1, float(r + 1))
            h = vb - va
            if h <= 0.0:
                continue
            ua = u0 + (va - v0) * slope if va != v0 else u0     # (vertical edges: above)
            ub = u0 + (vb - v0) * slope if vb != v1 else u1
            rowb = (r & rmask) * W
            lo, hi = min(ua, ub), max(ua, ub)
            if lo >= ncols:
                continue
            if hi <= 0.0:
                if doacc:
                    acc[rowb] += d * h
                continue
            c = int(math.floor(lo))
            if c == int(math.floor(hi)):
                # within one pixel column (a steep edge): its mean u gives the area
                if doacc:
                    f = h * (c + 1 - 0.5 * (ua + ub))
                    acc[rowb + c] += d * f
                    acc[rowb + c + 1] += d * (h - f)
                if hi > c:
                    _mark((r & rmask) * ncols + c, c, r, q, doacc, owner, state, wbox, pu0,
                          pu1, pv0, pv1)
                continue
            # slanted: walk from the low-u end to the high-u end
            if ua <= ub:
                su, sv, eu, ev = ua, va, ub, vb
            else:
                su, sv, eu, ev = ub, vb, ua, va
            dvdu = (ev - sv) / (eu - su)
            cu = su
            cv = sv
            if cu < 0.0:
                nv = sv + (0.0 - su) * dvdu
                if doacc:
                    acc[rowb] += d * abs(nv - cv)
                cu = 0.0
                cv = nv
            c = int(math.floor(cu))
            carry = 0.0     # the part for pixel c + 1, added with that pixel's own (one
            #                 read-modify-write a pixel: no chain through memory)
            while cu < eu and c < ncols:
                if c + 1 >= eu:
                    nu = eu
                    nv = ev
                else:
                    nu = float(c + 1)
                    nv = sv + (nu - su) * dvdu
                hs = abs(nv - cv)
                if doacc:
                    f = hs * (c + 1 - 0.5 * (cu + nu))
                    acc[rowb + c] += d * f + carry
                    carry = d * (hs - f)
                if hs > 0.0 or nu > cu:
                    _mark((r & rmask) * ncols + c, c, r, q, doacc, owner, state, wbox, pu0,
                          pu1, pv0, pv1)
                cu = nu
                cv = nv
                c += 1
            if doacc:
                acc[rowb + c] += carry


@kernel
def _walk_rows(cls, wbox, others, nothers, skiprect, nrows, chunk, wstart, wlist):
    """The polygons the gray pass walks (skiprect: the non-rectangles others[:nothers], by
    their position q there, boxes obox; else every relevant polygon, by its id q, boxes bbox:
    wbox[q] either way, read in sequence) grouped by the first pixel row they meet (a stable
    counting sort: group r is wlist[wstart[r]:wstart[r + 1]]), so that the finishing pass
    walks each just before its first row. A polygon meeting more than chunk rows is listed
    once per chunk rows, in the groups of rows ra, ra + chunk, ...: the pass walks it chunk by
    chunk (rows r to r + chunk - 1 from group r), so that the rings of rows stay chunk rows at
    most (one ring of the whole image missed the cache on most of the walk's reads of a
    grating coupler's arcs). Returns (the most rows one walk meets: the ring of rows it needs,
    the number of entries): when that exceeds len(wlist), nothing was listed (the caller grows
    wlist and runs again)."""
    for r in range(nrows + 1):
        wstart[r] = 0
    n = nothers if skiprect else cls.shape[0]
    most = 0
    total = 0
    for q in range(n):
        if skiprect or cls[q] != 0:     # others are all relevant
            ra, rb = _walk_span(wbox, q, nrows)
            if ra <= rb:
                most = max(most, min(rb - ra + 1, chunk))
                r = ra
                while r <= rb:     # (a range with a step divides: 0.15 ms at 20 000)
                    wstart[r + 1] += 1
                    total += 1
                    r += chunk
    if total > wlist.shape[0]:
        return most, total
    for r in range(nrows):
        wstart[r + 1] += wstart[r]
    for q in range(n):
        if skiprect or cls[q] != 0:
            ra, rb = _walk_span(wbox, q, nrows)
            r = ra
            while r <= rb:
                wlist[wstart[r]] = q
                wstart[r] += 1
                r += chunk
    for r in range(nrows, 0, -1):
        wstart[r] = wstart[r - 1]
    wstart[0] = 0
    return most, total


@njit(inline="always", _nrt=False)
def _left_col(box, i, ncols):
    """The pixel column of the left side of box[i] (u0 first), clamped to the image."""
    return int(min(max(box[i, 0], 0.0), ncols - 1.0))


@njit(inline="always", _nrt=False)
def _band(box, i, nrows):
    """The band of 1 << TILE_SHIFT pixel rows of the first row box[i] meets (_walk_span)."""
    return min(_walk_span(box, i, nrows)[0], nrows - 1) >> TILE_SHIFT


@njit(inline="always", _nrt=False)
def _count_sort(box, src, dst, n, cnt, nk, by_band, nrows, ncols):
    """The polygons src[:n] into dst[:n], stably sorted by the band of their first row (_band)
    when by_band, else by their left column (_left_col): nk keys, cnt (nk + 1) scratch."""
    for c in range(nk + 1):
        cnt[c] = 0
    for k in range(n):
        q = src[k]
        cnt[(_band(box, q, nrows) if by_band else _left_col(box, q, ncols)) + 1] += 1
    for c in range(nk):
        cnt[c + 1] += cnt[c]
    for k in range(n):
        q = src[k]
        c = _band(box, q, nrows) if by_band else _left_col(box, q, ncols)
        dst[cnt[c]] = q
        cnt[c] += 1


@kernel
def _others_by_band(obox, ouv, ooff, others, n, nrows, ncols, cnt, tmp, pos, obox2, ouv2, ooff2,
                   others2):
    """The other polygons of the gray pass (others[:n], their boxes obox and vertices
    ouv[ooff[q]:ooff[q + 1]], in polygon order) copied into obox2, ouv2, ooff2 and others2
    band by band of 1 << TILE_SHIFT pixel rows (the band of the first row they meet,
    _walk_span), left to right within a band (by the column of their left side): two stable
    counting sorts, by column then by band (cnt: max(nrows, ncols) + 1, tmp and pos: n,
    scratch; pos[d]: the polygon of slot d). The finishing pass walks them row by row, and the
    gather and exact passes look up the polygons of a row's pixels and tiles: in that order
    they read them nearly in sequence, not all over, and the exact pass finds a pixel's
    polygons mostly left to right, which the insertion sorts of its local sweep like.
    Measured: layout 200 000 in random order, the finishing pass 19 -> 14.6 ms; all-slanted
    layout 200 000, the exact pass 85-89 ms in first-row order alone, 62 ms in band and
    column order, 59-70 ms in the layout's own order (row of sites by row of sites). The
    caller copies only polygons out of first-row order (see _raster_into)."""
    for q in range(n):
        pos[q] = q
    _count_sort(obox, pos, tmp, n, cnt, ncols, False, nrows, ncols)
    _count_sort(obox, tmp, pos, n, cnt, ((nrows - 1) >> TILE_SHIFT) + 1, True, nrows, ncols)
    # copied slot by slot: the reads jump, the writes run in sequence. Ids, boxes and vertex
    # counts first, so that no slot waits on the loads of the one before; then the vertices,
    # those of the polygon PREFETCH_AHEAD slots on fetched ahead (all-slanted layout 200 000 in
    # random order, this kernel when it sorted by first row alone: 6.5 ms so, 12-19 ms with
    # one copy loop and no fetch)
    ooff2[0] = 0
    for d in range(n):
        q = pos[d]
        others2[d] = others[q]
        obox2[d, 0], obox2[d, 1], obox2[d, 2], obox2[d, 3] = (obox[q, 0], obox[q, 1],
                                                              obox[q, 2], obox[q, 3])
        ooff2[d + 1] = ooff[q + 1] - ooff[q]
    for d in range(n):
        ooff2[d + 1] += ooff2[d]
    for d in range(n):
        if d + PREFETCH_AHEAD < n:
            prefetch(ouv, 2 * ooff[pos[d + PREFETCH_AHEAD]])
        q = pos[d]
        t = ooff2[d] - ooff[q]
        for k in range(ooff[q], ooff[q + 1]):
            ouv2[t + k, 0] = ouv[k, 0]
            ouv2[t + k, 1] = ouv[k, 1]


@njit(inline="always", _nrt=False)
def _walk_span(bbox, i, nrows):
    """The pixel rows ra..rb (clamped to the image) that the edges of the polygon of box
    bbox[i] can touch."""
    ra = int(math.floor(min(max(bbox[i, 2], 0.0), float(nrows))))
    rb = int(math.ceil(min(max(bbox[i, 3], 0.0), float(nrows)))) - 1
    return ra, min(rb, nrows - 1)


@njit(inline="always", _nrt=False)
def _box_apart(uv, s, e, o, bu0, bu1, bv0, bv1):
    """True when the line of an edge of the convex polygon uv[s:e] (orientation o, see _classify)
    leaves the box [bu0, bu1] x [bv0, bv1] wholly on its outer side (closed): no common area."""
    for k in range(s, e):
        k2 = k + 1 if k + 1 < e else s
        au, av = uv[k, 0], uv[k, 1]
        du, dv = uv[k2, 0] - au, uv[k2, 1] - av
        if (o * (du * (bv0 - av) - dv * (bu0 - au)) >= 0.0
                and o * (du * (bv0 - av) - dv * (bu1 - au)) >= 0.0
                and o * (du * (bv1 - av) - dv * (bu0 - au)) >= 0.0
                and o * (du * (bv1 - av) - dv * (bu1 - au)) >= 0.0):
            return True
    return False


@njit(inline="always", _nrt=False)
def _move_piece(dl, dc, z, sl, sc, i):
    """Entry i of (sl, sc) to slot z of (dl, dc): its rectangle id and (u0, u1, v0, v1)."""
    dl[z] = sl[i]
    dc[z, 0] = sc[i, 0]
    dc[z, 1] = sc[i, 1]
    dc[z, 2] = sc[i, 2]
    dc[z, 3] = sc[i, 3]


@njit(inline="always", _nrt=False)
def _merge_two(pc, rlist, a, m, b, tmpi, tmpc):
    """Merge the sorted runs a:m and m:b of the entries (pc, rlist) by u0 (stable), through a
    copy of the first run in tmpi / tmpc."""
    for d in range(m - a):
        _move_piece(tmpi, tmpc, d, rlist, pc, a + d)
    i1 = 0
    n1 = m - a
    i2 = m
    z = a
    while i1 < n1:
        if i2 < b and pc[i2, 0] < tmpc[i1, 0]:
            _move_piece(rlist, pc, z, rlist, pc, i2)
            i2 += 1
        else:
            _move_piece(rlist, pc, z, tmpi, tmpc, i1)
            i1 += 1
        z += 1


@njit(inline="always", _nrt=False)
def _sort_run(pc, rlist, a, b, bcount, tmpi, tmpc, nearly):
    """Sort the entries a:b of (pc, rlist) by u0 = pc[:, 0] (stable): nothing when sorted, a
    merge when made of two sorted runs (_merge_two), an insertion sort in place when nearly
    (each entry at most a few places off: the groups _rect_rows made column by column) and at
    most one in 8 steps goes down, else a counting sort by RECT_BUCKET-column buckets (bcount:
    scratch, ncols // RECT_BUCKET + 2) and an insertion sort within them (tmpi / tmpc:
    scratch, b - a)."""
    down = 0
    m = b
    lim = max((b - a) >> 3, 1) if nearly else 1
    for j in range(a + 1, b):
        if pc[j, 0] < pc[j - 1, 0]:
            down += 1
            if down == 1:
                m = j
            elif down > lim:
                break
    if down == 0:
        return
    if down == 1:
        _merge_two(pc, rlist, a, m, b, tmpi, tmpc)
        return
    if down <= lim:
        for d in range(m, b):
            u = pc[d, 0]
            if u >= pc[d - 1, 0]:
                continue
            _move_piece(tmpi, tmpc, 0, rlist, pc, d)
            z = d
            while z > a and pc[z - 1, 0] > u:
                _move_piece(rlist, pc, z, rlist, pc, z - 1)
                z -= 1
            _move_piece(rlist, pc, z, tmpi, tmpc, 0)
        return
    nb = bcount.shape[0]
    for q in range(nb):
        bcount[q] = 0
    for j in range(a, b):
        bcount[min(max(int(pc[j, 0]) // RECT_BUCKET + 1, 0), nb - 1)] += 1
    run = 0
    for q in range(nb):
        t = bcount[q]
        bcount[q] = run
        run += t
    for j in range(a, b):
        q = min(max(int(pc[j, 0]) // RECT_BUCKET + 1, 0), nb - 1)
        d = bcount[q]
        bcount[q] = d + 1
        _move_piece(tmpi, tmpc, d, rlist, pc, j)
    for d in range(b - a):
        u = tmpc[d, 0]
        z = a + d
        while z > a and pc[z - 1, 0] > u:
            _move_piece(rlist, pc, z, rlist, pc, z - 1)
            z -= 1
        _move_piece(rlist, pc, z, tmpi, tmpc, d)


@njit(inline="always", _nrt=False)
def _put_rect(bbox, i, estart, sid, sbox):
    """Rectangle i into the next slot of its group (the first row it meets)."""
    ra = max(int(math.floor(bbox[i, 2])), 0)
    d = estart[ra]
    estart[ra] = d + 1
    sid[d] = i
    sbox[d, 0] = max(bbox[i, 0], 0.0)
    sbox[d, 1] = bbox[i, 1]
    sbox[d, 2] = bbox[i, 2]
    sbox[d, 3] = bbox[i, 3]


@kernel
def _rect_rows(cls, rect, bbox, nrows, ncols, estart, sid, sbox, bcount, tmpi, tmpc, bycol, ccount,
               cids):
    """The axis-parallel rectangles grouped by the first pixel row they meet (ra = floor(v0)
    clamped at 0; a counting sort, stable, on the counts _classify left in estart[ra + 1]) and
    sorted by left side within each group (_sort_run): group r is sid / sbox[estart[r]:
    estart[r + 1]], sbox = (u0, u1, v0, v1) with u0 clamped at 0 (the sweep never looks left
    of the image). The finishing pass merges each group into the list of rectangles met by
    the row above (_row_pieces). bycol (rectangles out of first-row order): their ids are
    first sorted by the column of their left side (a counting sort, ccount: ncols + 1, into
    cids: their count, scratch), then taken in that order (boxes fetched ahead), so that each
    group comes sorted but for rectangles starting in the same column (layout 200 000 in
    random order: 4.3 -> 3.3 ms standalone; in its own order, taken the plain way: 1.2 ms)."""
    for r in range(nrows):
        estart[r + 1] += estart[r]
    if bycol:
        for c in range(ncols + 1):
            ccount[c] = 0
        for i in range(cls.shape[0]):
            if cls[i] == 1 and rect[i] == 1:
                ccount[_left_col(bbox, i, ncols) + 1] += 1
        for c in range(ncols):
            ccount[c + 1] += ccount[c]
        for i in range(cls.shape[0]):
            if cls[i] == 1 and rect[i] == 1:
                c = _left_col(bbox, i, ncols)
                cids[ccount[c]] = i
                ccount[c] += 1
        n = ccount[ncols]
        for k in range(n):
            if k + PREFETCH_AHEAD < n:
                prefetch(bbox, 4 * cids[k + PREFETCH_AHEAD])
            _put_rect(bbox, cids[k], estart, sid, sbox)
    else:
        for i in range(cls.shape[0]):
            if cls[i] == 1 and rect[i] == 1:
                _put_rect(bbox, i, estart, sid, sbox)
    for r in range(nrows, 0, -1):
        estart[r] = estart[r - 1]
    estart[0] = 0
    for r in range(nrows):
        if estart[r + 1] - estart[r] > 1:
            _sort_run(sbox, sid, estart[r], estart[r + 1], bcount, tmpi, tmpc, bycol)


@njit(inline="always", _nrt=False)
def _take(rq, ri, m, i, j, t, fr):
    """Entry i (when t, else j) of rq (flat, 4 per entry: u0, u1, v0, v1) / ri to slot m; returns
    (1 when it reaches below fr (v1 > fr) else 0, as uint64, and its width then, else 0). Both
    entries are loaded and their values selected, not the index: LLVM's x86 cmov-conversion
    turns an index select that feeds loads into a branch, mispredicted about every other step
    of _row_pieces' merge (seen in the asm)."""
    i4 = _U4 * i
    j4 = _U4 * j
    m4 = _U4 * m
    x0, y0 = rq[i4], rq[j4]
    x1, y1 = rq[i4 + _U1], rq[j4 + _U1]
    x2, y2 = rq[i4 + _U2], rq[j4 + _U2]
    x3, y3 = rq[i4 + _U3], rq[j4 + _U3]
    xi, yi = ri[i], ri[j]
    a0 = x0 if t else y0
    a1 = x1 if t else y1
    a3 = x3 if t else y3
    rq[m4] = a0
    rq[m4 + _U1] = a1
    rq[m4 + _U2] = x2 if t else y2
    rq[m4 + _U3] = a3
    ri[m] = xi if t else yi
    keep = np.uint64(a3 > fr)
    return keep, (a1 - a0) * float(keep)


@njit(inline="always", _nrt=False)
def _row_pieces(r, estart, rq, ri, src, dst, n):
    """The rectangles meeting row r sorted by u0, into rq / ri[dst:dst + count] (rq flat, 4 per
    entry: u0, u1, v0, v1; ids in ri): the previous row's list (from src, n entries) less
    those ending above the row's top (v1 <= r), merged with group r of _rect_rows
    (estart[r]:estart[r + 1]). The merge is branch-free (an unpredictable branch per step cost
    more than the steps: measured; see _take for how it stays so in the machine code):
    each step copies the entry with the lower u0 to slot m and moves m on when it reaches
    below r (the group's always do), so slot dst + count may be written. Indices are uint64
    (no wrap-around code). Returns (their count, the widest one's width)."""
    fr = float(r)
    m = np.uint64(dst)
    wm = 0.0
    i = np.uint64(src)
    ie = np.uint64(src + n)
    j = np.uint64(estart[r])
    je = np.uint64(estart[r + 1])
    if i < ie and j < je:
        # the heads' keys ki, kj and the next ones ki1, kj1 in registers: a step's compare
        # waits on a select, not on a load from the index it moved (entries ie and je exist:
        # the list's spare slot, the next group or the lists after the groups)
        rk = rq.view(np.int64)  # u0 >= 0: its bits order as its value (-0.0 first: equal)
        ki = rk[_U4 * i]
        kj = rk[_U4 * j]
        ki1 = rk[_U4 * (i + _U1)]
        kj1 = rk[_U4 * (j + _U1)]
        while True:
            t = ki <= kj
            keep, w = _take(rq, ri, m, i, j, t, fr)
            wm = max(wm, w)
            ta = np.uint64(t)
            m += keep
            i += ta
            j += _U1 - ta
            if i >= ie or j >= je:
                break
            mk = -np.int64(ta)
            ki = (ki1 & mk) | (ki & ~mk)
            kj = (kj & mk) | (kj1 & ~mk)
            ki1 = rk[_U4 * (i + _U1)]
            kj1 = rk[_U4 * (j + _U1)]
    while i < ie:
        keep, w = _take(rq, ri, m, i, i, True, fr)
        wm = max(wm, w)
        m += keep
        i += _U1
    while j < je:
        keep, w = _take(rq, ri, m, j, j, True, fr)
        wm = max(wm, w)
        m += keep
        j += _U1
    return int(m) - dst, wm


@njit(inline="always", _nrt=False)
def _add_step(acc, x, dl, ncols):
    """Coverage of the row steps by dl at u = x: the part of pixel floor(x) right of x, and all
    pixels after it (through the prefix sum along the row). Unsigned indices: no wrap-around
    code."""
    if x >= ncols:
        return
    if x <= 0.0:
        acc[0] += dl
        return
    c = np.uint64(x)
    f = dl * (float(c) + 1.0 - x)
    acc[c] += f
    acc[c + _U1] += dl - f


@njit(inline="always", _nrt=False)
def _poly_outside(uv, s, e, o, t0, t1):
    """True when the line of an edge of the convex polygon uv[s:e] (orientation o) leaves every
    vertex of polygon uv[t0:t1] on its outer side (closed)."""
    for k in range(s, e):
        k2 = k + 1 if k + 1 < e else s
        au, av = uv[k, 0], uv[k, 1]
        du, dv = uv[k2, 0] - au, uv[k2, 1] - av
        out = True
        for q in range(t0, t1):
            if o * (du * (uv[q, 1] - av) - dv * (uv[q, 0] - au)) < 0.0:
                out = False
                break
        if out:
            return True
    return False


@kernel
def _convex_apart(vuv, orient, rect, bx, i, p, si, ei, j, q, sj, ej):
    """Convex polygons i and j (rect != 0; a rectangle taken as its box bx[p] / bx[q] clipped to
    the pixel, the others as their vertices vuv[si:ei] / vuv[sj:ej]) certainly share no area:
    an edge line of one separates them."""
    if rect[i] == 1:
        return _box_apart(vuv, sj, ej, orient[j], bx[p, 0], bx[p, 1], bx[p, 2], bx[p, 3])
    if rect[j] == 1:
        return _box_apart(vuv, si, ei, orient[i], bx[q, 0], bx[q, 1], bx[q, 2], bx[q, 3])
    return (_poly_outside(vuv, si, ei, orient[i], sj, ej)
            or _poly_outside(vuv, sj, ej, orient[j], si, ei))


@njit(inline="always", _nrt=False)
def _union_length(m, ay0, ay1):
    """Length of the union of the intervals (ay0[q], ay1[q]), q < m, sorted by ay0."""
    total = 0.0
    ca = ay0[0]
    cb = ay1[0]
    for q in range(1, m):
        if ay0[q] > cb:
            total += cb - ca
            ca = ay0[q]
            cb = ay1[q]
        elif ay1[q] > cb:
            cb = ay1[q]
    return total + cb - ca


@kernel
def _sweep_row(r, ncols, n, pc, acc, ae, ay0, ay1):
    """Exact coverage of the union of the rectangles in the band (r, r + 1): the covered length
    L(u) of the cross-section at u is a step function changing only where a rectangle meeting
    the row (pc[:n] = (u0, u1, v0, v1), sorted by u0: _row_pieces) starts or ends; each change
    dL at u is added to acc (ncols + 1, zeroed; coverage = prefix sum along the row) as by a
    vertical edge of height dL. The pieces (the rectangles' parts in the band) come in clusters
    of pieces overlapping in u (each starts left of the furthest end before it): a piece alone
    steps by its height and back, a pair in closed form (measured faster than _sweep_two for
    pairs), a larger cluster to _sweep_two when at most two of its pieces are active at any u,
    else to _sweep_cluster."""
    fr = float(r)
    fr1 = fr + 1.0
    j = np.uint64(0)   # unsigned indices: no wrap-around code
    un = np.uint64(n)
    while j < un:
        u1 = pc[j, 1]
        ya = max(pc[j, 2], fr)
        yb = min(pc[j, 3], fr1)
        k = j + _U1
        if k == un or pc[k, 0] >= u1:
            _add_step(acc, pc[j, 0], yb - ya, ncols)
            _add_step(acc, u1, ya - yb, ncols)
            j = k
            continue
        w1 = pc[k, 1]
        reach = max(u1, w1)
        if k + _U1 == un or pc[k + _U1, 0] >= reach:
            # a pair: L = ha from u0, the union of both y-intervals from the second's u0, the
            # height of the one ending last from the first end, 0 from the second
            za = max(pc[k, 2], fr)
            zb = min(pc[k, 3], fr1)
            ha = yb - ya
            hb = zb - za
            hu = ha + hb - max(min(yb, zb) - max(ya, za), 0.0)
            hr = hb if u1 < w1 else (ha if w1 < u1 else 0.0)
            _add_step(acc, pc[j, 0], ha, ncols)
            _add_step(acc, pc[k, 0], hu - ha, ncols)
            _add_step(acc, min(u1, w1), hr - hu, ncols)
            _add_step(acc, reach, -hr, ncols)
            j = k + _U1
            continue
        k += _U1
        e2 = min(u1, w1)    # the second furthest end so far
        two = True          # at most two pieces active at any u: each starts at or after e2
        while k < un and pc[k, 0] < reach:
            x = pc[k, 0]
            two &= x >= e2
            e = pc[k, 1]
            e2 = max(e2, min(e, reach))
            reach = max(reach, e)
            k += _U1
        if two:
            _sweep_two(fr, fr1, ncols, j, k, pc, acc)
        else:
            _sweep_cluster(r, ncols, np.int64(j), np.int64(k), pc, acc, ae, ay0, ay1)
        j = k


@njit(inline="always", _nrt=False)
def _sweep_two(fr, fr1, ncols, j, k, pc, acc):
    """_sweep_row's steps for a cluster pc[j:k] in which at most two pieces are active at any u:
    L(u) is the sum of the active pieces' heights less the overlap of their y-intervals where
    two are (inclusion-exclusion). Each piece steps by its height and back; the only earlier
    piece a new one can meet is the one reaching furthest (o), so each such pair steps by minus
    their y-overlap over their common u-interval."""
    o = j
    for q in range(j, k):
        ya = max(pc[q, 2], fr)
        yb = min(pc[q, 3], fr1)
        _add_step(acc, pc[q, 0], yb - ya, ncols)
        _add_step(acc, pc[q, 1], ya - yb, ncols)
        if q > j and pc[o, 1] > pc[q, 0]:
            hi = min(yb, min(pc[o, 3], fr1)) - max(ya, max(pc[o, 2], fr))
            if hi > 0.0:
                _add_step(acc, pc[q, 0], -hi, ncols)
                _add_step(acc, min(pc[o, 1], pc[q, 1]), hi, ncols)
        if pc[q, 1] > pc[o, 1]:
            o = q


@njit(_nrt=False)
def _sweep_cluster(r, ncols, j0, jend, pc, acc, ae, ay0, ay1):
    """The union sweep of _sweep_row over the pieces pc[j0:jend] (a cluster: nothing else is
    active in its u-range). Pieces of full height make L = 1 over the union of their
    u-intervals, merged on the fly (they come sorted by u0): only the end fe of the current
    merged one is kept; the pieces that start inside it are run through at once (full-height
    ones extend it, partial ones inside it are skipped). The others are kept active, sorted by
    their lower end (ae, ay0, ay1: scratch, most pieces in a row), for the length of their
    union."""
    fr = float(r)
    fr1 = fr + 1.0
    m = 0          # partial-height active pieces
    fe = -np.inf   # end of the merged u-interval of full-height pieces (open while > x)
    nh = 0         # 1 while that interval is open
    L = 0.0
    emin = np.inf  # first end among the partial ones
    j = j0
    while True:
        if j < jend:
            xs = pc[j, 0]
        elif m == 0 and nh == 0:
            break
        else:
            xs = np.inf
        xf = fe if nh > 0 else np.inf
        if xf <= xs and xf <= emin:
            x = xf
            nh = 0
        elif emin <= xs:
            # the partial piece ending first ends
            x = emin
            ke = 0
            for q in range(1, m):
                if ae[q] < ae[ke]:
                    ke = q
            for q in range(ke, m - 1):
                ae[q] = ae[q + 1]
                ay0[q] = ay0[q + 1]
                ay1[q] = ay1[q + 1]
            m -= 1
            emin = np.inf
            for q in range(m):
                emin = min(emin, ae[q])
        else:
            x = xs
            u1 = pc[j, 1]
            y0 = max(pc[j, 2], fr)
            y1 = min(pc[j, 3], fr1)
            j += 1
            if y0 <= fr and y1 >= fr1:
                fe = max(fe, u1) if nh > 0 else u1
                nh = 1
                # run through the pieces starting inside this interval: full-height ones
                # extend it, partial ones inside it change nothing; stop at one sticking out of
                # it (L is 1 all along, so the active pieces that end meanwhile are dropped
                # later, without a step)
                while j < jend and pc[j, 0] < fe:
                    if pc[j, 2] <= fr and pc[j, 3] >= fr1:
                        fe = max(fe, pc[j, 1])
                    elif pc[j, 1] > fe:
                        break
                    j += 1
            elif nh > 0 and u1 <= fe:
                continue    # inside the open full-height interval: changes nothing
            else:
                z = m
                while z > 0 and ay0[z - 1] > y0:
                    ae[z] = ae[z - 1]
                    ay0[z] = ay0[z - 1]
                    ay1[z] = ay1[z - 1]
                    z -= 1
                ae[z] = u1
                ay0[z] = y0
                ay1[z] = y1
                m += 1
                emin = min(emin, u1)
        if nh > 0:
            nl = 1.0
        elif m == 0:
            nl = 0.0
        elif m == 1:
            nl = ay1[0] - ay0[0]
        else:
            nl = _union_length(m, ay0, ay1)
        if nl != L:
            _add_step(acc, x, nl - L, ncols)
            L = nl


@kernel
def _centre_winding(uv, s, e, r, c, ncols):
    """Own winding of polygon uv[s:e] at the centre of pixel (r, c), same rule as the buffer."""
    w = 0
    vc = r + 0.5
    for k in range(s, e):
        k2 = k + 1 if k + 1 < e else s
        u0, v0, u1, v1 = uv[k, 0], uv[k, 1], uv[k2, 0], uv[k2, 1]
        if v0 == v1:
            continue
        d = 1 if v1 > v0 else -1
        if v0 > v1:
            u0, v0, u1, v1 = u1, v1, u0, v0
        # same arithmetic as _edge_diff: row range then first column
        r0, r1 = _row_range(v0, v1, r + 1)
        if r < r0 or r > r1:
            continue
        if u0 == u1:
            cf = _first_col(u0, v0, u1, v1, 0.0, ncols)
        else:
            cf = _first_col(u0, v0, u1, v1, vc, ncols)
        if c >= cf:
            w += d
    return w


@njit(inline="always", _nrt=False)
def _small_sort(a, n):
    """Sort a[:n] in place: an insertion sort for the short lists of one pixel (n <= 48), else a
    shell sort (gaps 3h + 1) ending in one (no allocation, no array views)."""
    h = 1
    while n > 48 and 3 * h + 1 < n // 2:
        h = 3 * h + 1
    while h >= 1:
        for t in range(h, n):
            x = a[t]
            z = t
            while z >= h and a[z - h] > x:
                a[z] = a[z - h]
                z -= h
            a[z] = x
        h //= 3


@njit(inline="always", _nrt=False)
def _box_breaks(bx, j0, k, xb):
    """The u ends of the boxes bx[j0:k] = (u0, u1, v0, v1), sorted into xb; returns their count
    (the strips of a coordinate compression lie between neighbours)."""
    n = 0
    for j in range(j0, k):
        xb[n] = bx[j, 0]
        xb[n + 1] = bx[j, 1]
        n += 2
    _small_sort(xb, n)
    return n


@njit(inline="always", _nrt=False)
def _strip_intervals(bx, j0, k, xm, iv0, iv1):
    """The v-intervals (iv0, iv1) of the boxes bx[j0:k] whose open u-range holds xm, sorted by
    their lower end; returns their count."""
    m = 0
    for j in range(j0, k):
        if bx[j, 0] < xm < bx[j, 1]:
            y0 = bx[j, 2]
            y1 = bx[j, 3]
            z = m
            while z > 0 and iv0[z - 1] > y0:
                iv0[z] = iv0[z - 1]
                iv1[z] = iv1[z - 1]
                z -= 1
            iv0[z] = y0
            iv1[z] = y1
            m += 1
    return m


@kernel
def _rect_union_area(bx, k, xb, iv0, iv1):
    """Area of the union of boxes bx[:k] = (u0, u1, v0, v1) (coordinate compression)."""
    n = _box_breaks(bx, 0, k, xb)
    area = 0.0
    for t in range(n - 1):
        xa = xb[t]
        xe = xb[t + 1]
        if xe <= xa:
            continue
        m = _strip_intervals(bx, 0, k, 0.5 * (xa + xe), iv0, iv1)
        if m > 0:
            area += _union_length(m, iv0, iv1) * (xe - xa)
    return area


@kernel
def _tiles_needed(fpix, fown, nflag, ncols, tsh, ntc, tneed):
    """tneed[tile] = 1 for the tiles (1 << tsh pixels a side) holding a listed pixel crossed by
    several polygons (owner -2; see _exact)."""
    for k in range(nflag):
        if fown[k] >= 0:
            continue
        r = fpix[k] // ncols
        tneed[(r >> tsh) * ntc + ((fpix[k] - r * ncols) >> tsh)] = 1


@kernel
def _tile_index(cls, rect, skiprect, others, nothers, bbox, nrows, ncols, tsh, ntc, tneed, tstart,
                tlist, fill):
    """CSR of polygons per tile (1 << tsh pixels a side; shifts, not divisions): every polygon
    whose open box meets the open interior of a pixel of the tile, for the tiles with
    tneed != 0 only (the others stay empty); skiprect: rectangles left out (_exact finds them
    in the rows of the union sweep, and only the listed non-rectangles others[:nothers] are
    visited, their boxes then in bbox[:nothers]: obox of _classify, read in sequence). tlist
    holds positions q in that box array (polygon others[q] when skiprect, else q). tstart
    (ntiles+1), tlist. fill=False: count only (then prefix sum; returns the total);
    fill=True: write tlist (tstart as counted)."""
    nt = tstart.shape[0] - 1
    if not fill:
        for t in range(nt + 1):
            tstart[t] = 0
    for q in range(nothers if skiprect else cls.shape[0]):
        if skiprect:
            i = others[q]
        else:
            i = q
            if cls[i] == 0:
                continue
        c0 = max(int(math.floor(bbox[q, 0])), 0)
        c1 = min(int(math.ceil(bbox[q, 1])) - 1, ncols - 1)
        r0 = max(int(math.floor(bbox[q, 2])), 0)
        r1 = min(int(math.ceil(bbox[q, 3])) - 1, nrows - 1)
        if c0 > c1 or r0 > r1:
            continue
        for tr in range(r0 >> tsh, (r1 >> tsh) + 1):
            for tc in range(c0 >> tsh, (c1 >> tsh) + 1):
                t = tr * ntc + tc
                if tneed[t] == 0:
                    continue
                if fill:
                    tlist[tstart[t]] = q
                    tstart[t] += 1
                else:
                    tstart[t + 1] += 1
    if fill:
        # tstart[t] now holds the end of tile t: shift back
        for t in range(nt, 0, -1):
            tstart[t] = tstart[t - 1]
        tstart[0] = 0
        return tstart[nt]
    for t in range(nt):
        tstart[t + 1] += tstart[t]
    return tstart[nt]

@njit(inline="always", _nrt=False)
def _is_full(bx, q, fc, fr):
    """The clipped box bx[q] is the whole pixel (fc, fr)."""
    return bx[q, 0] == fc and bx[q, 1] == fc + 1.0 and bx[q, 2] == fr and bx[q, 3] == fr + 1.0


@njit(inline="always", _nrt=False)
def _add_box(vuv, vs, ve, orient, rect, u0, u1, v0, v1, i, fc, fr, skip, plocal, pv, bx, n,
             nchk, K):
    """Append polygon i with box (u0, u1, v0, v1) clipped to pixel (fc, fr) and its vertices
    vuv[vs:ve] (unused for rectangles) to plocal / pv / bx (when room: n < K) and check it
    against the first nchk boxes already there (unless skip): returns n + 1, negated when their
    clipped boxes overlap (convex pairs separated by an edge line count as apart)."""
    if n >= K:
        return n + 1
    plocal[n] = i
    pv[n, 0] = vs
    pv[n, 1] = ve
    bx[n, 0] = min(max(u0, fc), fc + 1.0)
    bx[n, 1] = min(max(u1, fc), fc + 1.0)
    bx[n, 2] = min(max(v0, fr), fr + 1.0)
    bx[n, 3] = min(max(v1, fr), fr + 1.0)
    if skip:
        return n + 1
    for q in range(nchk):
        if (bx[n, 0] < bx[q, 1] and bx[q, 0] < bx[n, 1] and bx[n, 2] < bx[q, 3]
                and bx[q, 2] < bx[n, 3]):
            iq = plocal[q]
            if rect[i] != 0 and rect[iq] != 0 and _convex_apart(
                    vuv, orient, rect, bx, i, n, vs, ve, iq, q, pv[q, 0], pv[q, 1]):
                continue
            return -(n + 1)
    return n + 1


@njit(inline="always", _nrt=False)
def _clamped_integral(ya, yb, y0, y1):
    """Mean over t in [0, 1] of min(max(ya + t (yb - ya), y0), y1) - y0: the pieces of the
    segment below y0, between and above y1 (split where it crosses them) each taken at its
    middle, where the clamped value is exact on average (linear or constant on each)."""
    if ya == yb:
        return min(max(ya, y0), y1) - y0
    inv = 1.0 / (yb - ya)
    ta = min(max((y0 - ya) * inv, 0.0), 1.0)
    tb = min(max((y1 - ya) * inv, 0.0), 1.0)
    t1 = min(ta, tb)
    t2 = max(ta, tb)
    dy = yb - ya
    m = 0.0
    m += t1 * (min(max(ya + 0.5 * t1 * dy, y0), y1) - y0)
    m += (t2 - t1) * (min(max(ya + 0.5 * (t1 + t2) * dy, y0), y1) - y0)
    m += (1.0 - t2) * (min(max(ya + 0.5 * (t2 + 1.0) * dy, y0), y1) - y0)
    return m


@kernel
def _clip_area(uv, s, e, x0, x1, y0, y1):
    """Area of the simple polygon uv[s:e] inside the box [x0, x1] x [y0, y1]: the trapezoid
    rule with every edge's second coordinate clamped to [y0, y1] and its first clipped to
    [x0, x1] (along any line x = const in the box, the polygon's part is the signed sum of its
    boundary crossings clamped to the box, so this is exact for any simple polygon)."""
    area = 0.0
    for k in range(s, e):
        k2 = k + 1 if k + 1 < e else s
        xa, ya, xb, yb = uv[k, 0], uv[k, 1], uv[k2, 0], uv[k2, 1]
        if xa == xb:
            continue
        sg = 1.0
        if xb < xa:
            xa, ya, xb, yb = xb, yb, xa, ya
            sg = -1.0
        lo = max(xa, x0)
        hi = min(xb, x1)
        if hi <= lo:
            continue
        slope = (yb - ya) / (xb - xa)
        ylo = ya if lo == xa else ya + (lo - xa) * slope
        yhi = yb if hi == xb else ya + (hi - xa) * slope
        area += sg * (hi - lo) * _clamped_integral(ylo, yhi, y0, y1)
    return abs(area)


@kernel
def _clip_cover(uv, s, e, bx, n, fc, fr, xb, iv0, iv1):
    """Covered fraction of pixel (fc, fr) by the union of the simple polygon P = uv[s:e] (box
    bx[0], clipped to the pixel) and the boxes bx[1:n] (rectangles clipped to the pixel):
    A(U) + A(P in pixel) - A(P in U), U the union of the boxes cut into disjoint boxes (strips
    between their u ends, intervals merged in each), each meeting P's box clipped against P
    (_clip_area)."""
    m = _box_breaks(bx, 1, n, xb)
    ap = _clip_area(uv, s, e, fc, fc + 1.0, fr, fr + 1.0)
    cr = 0.0
    for t in range(m - 1):
        xa = xb[t]
        xe = xb[t + 1]
        if xe <= xa:
            continue
        q = _strip_intervals(bx, 1, n, 0.5 * (xa + xe), iv0, iv1)
        if q == 0:
            continue
        ca = iv0[0]
        cb = iv1[0]
        for z in range(1, q + 1):
            if z < q and iv0[z] <= cb:
                cb = max(cb, iv1[z])
                continue
            if cb > ca:
                cr += (cb - ca) * (xe - xa)
                if xa < bx[0, 1] and bx[0, 0] < xe and ca < bx[0, 3] and bx[0, 2] < cb:
                    cr -= _clip_area(uv, s, e, xa, xe, ca, cb)
            if z < q:
                ca = iv0[z]
                cb = iv1[z]
    return cr + ap


@kernel
def _exact(vuv, voff, cls, orient, rect, nrows, ncols, rsweep, compact, clip, fpix, fown, tsh, ntc,
           tstart, tlist, tbox, others, gstart, gb, gid, k_start, nflag, cov, plocal, pv, pu0,
           pv0, pu1, pv1, pd, pj, vs, xs, xd, xj, wcur, bx, xb, iv0, iv1, need):
    """Covered fraction of the union inside each listed pixel fpix[k_start:nflag] into cov[k],
    which holds on entry the sum of the pixel's partial coverages (the union of the rectangles
    when rsweep, plus the signed-area sums of the other simple polygons): kept when that sum is
    exact, i.e. when the polygons meeting the pixel are simple and their boxes clipped to it do
    not overlap (pairs of rectangles excepted when rsweep: their union is in the sum).
    The polygons of a pixel are those of its tile whose open box meets the open pixel: every
    polygon crossing it or covering any of it (tstart, tlist: _tile_index, positions into tbox,
    and into others when compact); when rsweep the rectangles come instead from those
    _finish_gray gathered for the pixel (gstart, gb, gid: boxes clipped to the row band). Each
    box is checked against those already taken as it is added (_add_box; pv, scratch like
    plocal: each one's range of vertices in vuv, which holds those of tbox[q] at
    voff[q]:voff[q + 1]: _classify's compact copy when compact, read far less scattered than the
    caller's uv; the local sweep reads them there too, and takes a rectangle's two sides from
    its clipped box). A pixel crossed by
    one other polygon only (owner >= 0: its position in tbox, and in others when compact; see
    _walk_poly) meets no other one but the rectangles (a polygon meeting it without crossing it
    would cover all of it: such pixels are never listed); when its box overlaps theirs and
    clip, its covered area is the rectangles' union plus the polygon's area minus the
    polygon's area inside that union (_clip_cover), else (and for every other pixel whose sum
    is not exact) a local sweep.
    Returns the index of the first pixel that needs bigger scratch (need[0] pieces, need[1]
    v-breaks, need[2] polygons) or nflag."""
    K = plocal.shape[0]
    P = pu0.shape[0]
    V = vs.shape[0]
    for k in range(k_start, nflag):
        if k + PREFETCH_AHEAD < nflag:
            # the vertices of an owner PREFETCH_AHEAD pixels ahead: last read by the walk, far
            # out of cache by now (a fifth of this pass was waiting for them: perf)
            qa = fown[k + PREFETCH_AHEAD]
            if 0 <= qa < voff.shape[0] - 1 and 0 <= voff[qa] < vuv.shape[0]:
                prefetch(vuv, 2 * voff[qa])
        pix = fpix[k]
        r = pix // ncols
        c = pix - r * ncols
        tt = (r >> tsh) * ntc + (c >> tsh)
        npoly = 0
        fc = float(c)
        fc1 = fc + 1.0
        fr_ = float(r)
        fr1_ = fr_ + 1.0
        allrect = True
        anycomplex = False
        fullrect = False
        overlap = False
        qo = fown[k]
        o = -1
        if qo >= 0:
            o = others[qo] if compact else qo
            npoly = _add_box(vuv, voff[qo], voff[qo + 1], orient, rect, tbox[qo, 0],
                             tbox[qo, 1], tbox[qo, 2], tbox[qo, 3], o, fc, fr_, rsweep, plocal, pv,
                             bx, npoly, 0, K)
            allrect = rect[o] == 1
            anycomplex = cls[o] == 2
            fullrect = allrect and _is_full(bx, 0, fc, fr_)
        for t in range(tstart[tt], tstart[tt + 1] if o < 0 else tstart[tt]):
            q = tlist[t]
            if (tbox[q, 0] < fc1 and tbox[q, 1] > fc and tbox[q, 2] < fr1_
                    and tbox[q, 3] > fr_):
                i = others[q] if compact else q
                q0 = npoly
                npoly = _add_box(vuv, voff[q], voff[q + 1], orient, rect, tbox[q, 0],
                                 tbox[q, 1], tbox[q, 2], tbox[q, 3], i, fc, fr_,
                                 overlap or anycomplex, plocal, pv, bx, npoly, npoly, K)
                if npoly < 0:
                    npoly = -npoly
                    overlap = True
                if rect[i] != 1:
                    allrect = False
                elif npoly <= K and _is_full(bx, q0, fc, fr_):
                    fullrect = True
                if cls[i] == 2:
                    anycomplex = True
        nnr = npoly     # the non-rectangles come first when rsweep
        if rsweep:
            for j in range(gstart[k], gstart[k + 1]):
                q0 = npoly
                npoly = _add_box(vuv, 0, 0, orient, rect, gb[j, 0], gb[j, 1], gb[j, 2],
                                 gb[j, 3], gid[j], fc, fr_, overlap or anycomplex, plocal, pv, bx,
                                 npoly, nnr, K)
                if npoly < 0:
                    npoly = -npoly
                    overlap = True
                if npoly <= K and _is_full(bx, q0, fc, fr_):
                    fullrect = True
        if npoly > K:
            need[0] = 0
            need[1] = 0
            need[2] = npoly
            return k
        if fullrect:
            cov[k] = 1.0
            continue
        if not anycomplex and not overlap:
            continue
        if allrect:
            # every polygon meeting the pixel is listed: the union of their clipped boxes
            cov[k] = min(max(_rect_union_area(bx, npoly, xb, iv0, iv1), 0.0), 1.0)
            continue
        if clip and rsweep and qo >= 0:
            # one simple polygon and rectangles: clipped areas (no sweep)
            a = _clip_cover(vuv, voff[qo], voff[qo + 1], bx, npoly, fc, fr_, xb, iv0, iv1)
            cov[k] = min(max(a, 0.0), 1.0)
            continue
        # pieces clipped to the pixel; parts left of it projected onto its left side
        m = 0
        fr = float(r)
        fr1 = float(r + 1)
        cl = float(c)
        cr = float(c + 1)
        overflow = False
        full = False
        for jj in range(npoly):
            i = plocal[jj]
            if rect[i] == 1:
                # an axis-parallel rectangle: its box clipped to the pixel (not the full pixel:
                # fullrect), i.e. its two sides as pieces (read from bx, not from uv)
                if m + 2 > P:
                    overflow = True
                    m += 2
                    continue
                for side in range(2):
                    pu0[m] = bx[jj, side]
                    pu1[m] = bx[jj, side]
                    pv0[m] = bx[jj, 2]
                    pv1[m] = bx[jj, 3]
                    pd[m] = 1 - 2 * side
                    pj[m] = jj
                    m += 1
                continue
            s, e = pv[jj, 0], pv[jj, 1]     # its vertices in vuv (the compact copy when compact)
            mstart = m
            meets = False   # does the boundary of i meet the open pixel?
            for q in range(s, e):
                q2 = q + 1 if q + 1 < e else s
                u0, v0, u1, v1 = vuv[q, 0], vuv[q, 1], vuv[q2, 0], vuv[q2, 1]
                if v0 == v1:
                    if fr < v0 < fr1 and min(u0, u1) < cr and max(u0, u1) > cl:
                        meets = True
                    continue
                d = 1 if v1 > v0 else -1
                if v0 > v1:
                    u0, v0, u1, v1 = u1, v1, u0, v0
                if v1 <= fr or v0 >= fr1 or min(u0, u1) >= cr:
                    continue
                va = max(v0, fr)
                vb = min(v1, fr1)
                if vb <= va:
                    continue
                slope = (u1 - u0) / (v1 - v0)
                ua = u0 if (u0 == u1 or va == v0) else u0 + (va - v0) * slope
                ub = u1 if (u0 == u1 or vb == v1) else u0 + (vb - v0) * slope
                # break points where u crosses cl / cr
                br0 = va
                br3 = vb
                br1 = vb
                br2 = vb
                if ua != ub:
                    t1 = va + (cl - ua) * (vb - va) / (ub - ua)
                    t2 = va + (cr - ua) * (vb - va) / (ub - ua)
                    if t1 > t2:
                        t1, t2 = t2, t1
                    br1 = min(max(t1, va), vb)
                    br2 = min(max(t2, va), vb)
                for seg in range(3):
                    p0 = br0 if seg == 0 else (br1 if seg == 1 else br2)
                    p1 = br1 if seg == 0 else (br2 if seg == 1 else br3)
                    if p1 <= p0:
                        continue
                    if ua == ub:
                        um = ua
                        ua_ = ua
                        ub_ = ua
                    else:
                        um = ua + (0.5 * (p0 + p1) - va) * (ub - ua) / (vb - va)
                        ua_ = ua + (p0 - va) * (ub - ua) / (vb - va)
                        ub_ = ua + (p1 - va) * (ub - ua) / (vb - va)
                    if um >= cr:
                        continue
                    if um > cl:
                        meets = True
                    if m >= P:
                        overflow = True
                        m += 1
                        continue
                    if um <= cl:
                        ua_ = cl
                        ub_ = cl
                    else:
                        ua_ = min(max(ua_, cl), cr)
                        ub_ = min(max(ub_, cl), cr)
                    pu0[m] = ua_
                    pv0[m] = p0
                    pu1[m] = ub_
                    pv1[m] = p1
                    pd[m] = d
                    pj[m] = jj
                    m += 1
            if not meets:
                # i is constant on the pixel (its centre is >= 1/2 pixel from i's boundary):
                # all of it or none of it
                m = mstart
                if _centre_winding(vuv, s, e, r, c, ncols) != 0:
                    full = True
                    break
        if full:
            cov[k] = 1.0
            continue
        if overflow:
            need[0] = m
            need[1] = 0
            return k
        # v break points: band, piece ends, crossings
        nv = 0
        nvneed = 2 + 2 * m
        if nvneed > V:
            need[0] = 0
            need[1] = nvneed + m * (m - 1) // 2
            return k
        vs[nv] = fr
        vs[nv + 1] = fr1
        nv = 2
        for p in range(m):
            vs[nv] = pv0[p]
            vs[nv + 1] = pv1[p]
            nv += 2
        for p in range(m):
            dup = pu1[p] - pu0[p]
            dvp = pv1[p] - pv0[p]
            for q in range(p + 1, m):
                lo = max(pv0[p], pv0[q])
                hi = min(pv1[p], pv1[q])
                if hi <= lo:
                    continue
                duq = pu1[q] - pu0[q]
                dvq = pv1[q] - pv0[q]
                sp = dup / dvp
                sq = duq / dvq
                if sp == sq:
                    continue
                # u_p(v) = u_q(v)
                up_lo = pu0[p] + (lo - pv0[p]) * sp
                uq_lo = pu0[q] + (lo - pv0[q]) * sq
                vx = lo + (uq_lo - up_lo) / (sp - sq)
                if lo < vx < hi:
                    if nv >= V:
                        need[0] = 0
                        need[1] = 2 + 2 * m + m * (m - 1) // 2
                        return k
                    vs[nv] = vx
                    nv += 1
        vv = vs[:nv]
        _small_sort(vv, nv)
        area = 0.0
        for t in range(nv - 1):
            y0 = vv[t]
            y1 = vv[t + 1]
            hgt = y1 - y0
            if hgt <= 0.0:
                continue
            ym = 0.5 * (y0 + y1)
            na = 0
            for p in range(m):
                if pv0[p] < ym < pv1[p]:
                    if pu0[p] == pu1[p]:
                        x = pu0[p]
                    else:
                        x = pu0[p] + (ym - pv0[p]) * (pu1[p] - pu0[p]) / (pv1[p] - pv0[p])
                    # insertion sort by x
                    z = na
                    while z > 0 and xs[z - 1] > x:
                        xs[z] = xs[z - 1]
                        xd[z] = xd[z - 1]
                        xj[z] = xj[z - 1]
                        z -= 1
                    xs[z] = x
                    xd[z] = pd[p]
                    xj[z] = pj[p]
                    na += 1
            for jj in range(npoly):
                wcur[jj] = 0
            nz = 0
            cur = cl
            length = 0.0
            for z in range(na):
                x = xs[z]
                if nz > 0:
                    length += x - cur
                cur = x
                jj = xj[z]
                before = wcur[jj]
                wcur[jj] = before + xd[z]
                if before == 0:
                    nz += 1
                elif wcur[jj] == 0:
                    nz -= 1
            if nz > 0:
                length += cr - cur
            area += length * hgt
        cov[k] = min(max(area, 0.0), 1.0)
    return nflag


@njit(inline="always", _nrt=False)
def _put(out, r, c, nrows, ncols, f, invert, flip_x, flip_y):
    """Gray level round(255 f) of pixel (r, c) into out (invert: 255 minus it)."""
    g = int(255.0 * f + 0.5)
    out[nrows - 1 - r if flip_y else r, ncols - 1 - c if flip_x else c] = np.uint8(
        255 - g if invert else g)


@njit(inline="always", _nrt=False)
def _advance(pcs, j, n, x):
    """The first index from j to n whose entry pcs[:, 0] (sorted) is not below x: a galloping
    search (steps 1, 2, 4, ... then a bisection), so that a cursor passing many entries
    between two listed pixels costs their logarithm, not their number."""
    if j >= n or pcs[j, 0] >= x:
        return j
    lo = j          # pcs[lo, 0] < x
    step = 1
    hi = j + 1
    while hi < n and pcs[hi, 0] < x:
        lo = hi
        step <<= 1
        hi = lo + step
    hi = min(hi, n)
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if pcs[mid, 0] < x:
            lo = mid
        else:
            hi = mid
    return hi


@kernel
def _one_rect_cover(uv, s, e, b, j, fc, fr):
    """Covered fraction of pixel (fc, fr) by the union of the simple polygon uv[s:e] and the
    rectangle b[j] = (u0, u1, v0, v1): A(R in pixel) + A(P in pixel) - A(P in R in pixel)
    (_clip_cover's sum for one rectangle)."""
    x0 = max(b[j, 0], fc)
    x1 = min(b[j, 1], fc + 1.0)
    y0 = max(b[j, 2], fr)
    y1 = min(b[j, 3], fr + 1.0)
    a = (x1 - x0) * (y1 - y0) + _clip_area(uv, s, e, fc, fc + 1.0, fr, fr + 1.0)
    return min(max(a - _clip_area(uv, s, e, x0, x1, y0, y1), 0.0), 1.0)


@njit(inline="always", _nrt=False)
def _gather(pcs, pid, n, wm, r, b, fpix, fown, cov, k0, k1, obox, wuv, woff, orow, inv, gstart,
            gb, gid, ng, G):
    """The rectangles of row r's list (pcs / pid[:n], sorted by u0, widest wm) whose open box
    meets listed pixel k, for k in k0:k1 (one row, increasing columns: two cursors move
    right by galloping searches, _advance, past the entries out of reach, u0 < c - wm),
    into gb / gid from ng (stored while below G), boxes clipped to the row band;
    gstart[k + 1] = the end. A pixel crossed by one other polygon (fown[k] >= 0, its box
    obox[fown[k]], its vertices wuv[woff[fown[k]]:woff[fown[k] + 1]]) is settled here first,
    nothing gathered, when its box clipped to the pixel meets none of theirs (cov[k] is exact,
    see _exact) or when one rectangle meets the pixel (_one_rect_cover: 9 in 10 of those
    left at layout 20 000): its level written to orow (xor inv) and the pixel dropped from
    the list (compacted in place). Returns (the new list end, the gathered end)."""
    fr = float(r)
    fr1 = fr + 1.0
    jlo = 0     # the first entry within reach of pixel k (u0 >= c - wm)
    jhi = 0     # the first entry right of it (u0 >= c + 1)
    kk = k0
    for k in range(k0, k1):
        c = fpix[k] - b
        fc = float(c)
        fc1 = fc + 1.0
        jhi = _advance(pcs, jhi, n, fc1)
        jlo = _advance(pcs, jlo, jhi, fc - wm)
        qo = fown[k]
        if qo >= 0:
            # settled when the owner's box clipped to the pixel meets none of theirs
            pu0 = max(obox[qo, 0], fc)
            pu1 = min(obox[qo, 1], fc1)
            pv0 = max(obox[qo, 2], fr)
            pv1 = min(obox[qo, 3], fr1)
            meet = False
            nlive = 0
            jl = jlo
            for j in range(jlo, jhi):
                live = pcs[j, 1] > fc
                nlive += live
                jl = j if live else jl
                meet |= (live & (pcs[j, 0] < pu1) & (pcs[j, 1] > pu0) & (pcs[j, 2] < pv1)
                         & (pcs[j, 3] > pv0))
            if meet and nlive == 1:
                cov[k] = _one_rect_cover(wuv, woff[qo], woff[qo + 1], pcs, jl, fc, fr)
            if not meet or nlive == 1:
                orow[c] = np.uint8(int(255.0 * cov[k] + 0.5) ^ inv)
                continue
        for j in range(jlo, jhi):
            if pcs[j, 1] > fc:
                if ng < G:
                    gid[ng] = pid[j]
                    gb[ng, 0] = pcs[j, 0]
                    gb[ng, 1] = pcs[j, 1]
                    gb[ng, 2] = max(pcs[j, 2], fr)
                    gb[ng, 3] = min(pcs[j, 3], fr1)
                ng += 1
        fpix[kk] = fpix[k]
        fown[kk] = qo
        cov[kk] = cov[k]
        gstart[kk + 1] = ng
        kk += 1
    return kk, ng


@njit(inline="always", _nrt=False)
def _pixel(c, s, sr, t, ow, count2, b, has_complex, rsweep, cov, fpix, fown, orow, inv, nf):
    """Pixel c of a row (state t, sums s and sr): its gray level into orow, or listed at nf
    (see _finish_gray); returns the new list end."""
    cr = min(max(sr, 0.0), 1.0)
    if t == 0:
        f = 1.0 if s >= 0.5 else cr
        if has_complex and count2[b + c] != 0:
            f = 1.0
    elif (t & 1) == 1 and has_complex and count2[b + c] != 0:
        f = 1.0
    elif (t & 1) == 1 and (not rsweep or cr <= COVER_EPS or s >= 1.0 - COVER_EPS):
        f = min(cr + min(max(s, 0.0), 1.0), 1.0)
    elif cr >= 1.0 - COVER_EPS:
        f = 1.0
    else:
        cov[nf] = min(cr + min(max(s, 0.0), 1.0), 1.0)
        fpix[nf] = b + c
        fown[nf] = ow[c] if t == 1 else -2
        return nf + 1
    orow[c] = np.uint8(int(255.0 * f + 0.5) ^ inv)
    return nf


@kernel
def _row_values(a, rowacc, st, ow, count2, b, ncols, has_complex, rsweep, cov, fpix, fown, orow,
                inv, nf, lanes):
    """One row of _finish_gray's values: prefix sums of a (other simple polygons) and rowacc
    (rectangles), each pixel's gray level into orow or listed from nf (cov, fpix, fown); a,
    rowacc and st are left zero. Returns the new list end. Without complex polygons, LANES
    pixels a step (engine.simd.gray_block: float32 sums, the same rule; the pixels it lists
    are listed here from the sums it leaves in lanes; the arrays' lengths checked first, as the
    block reads and writes them unchecked)."""
    s = np.float32(0.0)
    sr = np.float32(0.0)
    c0 = 0
    if not has_complex and lanes.shape[0] >= 2 * LANES and min(
            a.shape[0], rowacc.shape[0], st.shape[0], orow.shape[0]) >= ncols:
        for c0 in range(0, ncols - LANES + 1, LANES):
            m, m2, s2, sr2 = gray_block(a, rowacc, st, orow, c0, lanes, inv, s, sr, rsweep,
                                        COVER_EPS)
            s = s2
            sr = sr2
            while m != 0:
                j = lowest_bit(m)
                m &= m - 1
                nf = _pixel(c0 + j, lanes[j], lanes[LANES + j], 1 + ((m2 >> j) & 1), ow,
                            count2, b, has_complex, rsweep, cov, fpix, fown, orow, inv, nf)
        c0 = ncols - ncols % LANES
    for c in range(c0, ncols):
        s += a[c]
        sr += np.float32(rowacc[c])     # all zero when not rsweep; sums stay float32
        t = st[c]
        a[c] = 0.0
        rowacc[c] = 0.0
        st[c] = 0
        nf = _pixel(c, s, sr, t, ow, count2, b, has_complex, rsweep, cov, fpix, fown, orow, inv,
                    nf)
    return nf


@kernel
def _finish_gray(rsweep, compact, estart, rq, rb, ri, most, ae, ay0, ay1, rowacc, wuv, woff, wbox,
                 cls, orient, others, wstart, wlist, acc, lacc, owner, state, rmask, chunk, count2,
                 has_complex, cov, fpix, fown, obox, gstart, gb, gid, nrows, ncols, invert, flip_x,
                 flip_y, out, lanes):
    """Prefix sums along the rows and the final values: rectangles' union coverage cR (when
    rsweep: each row's rectangles, _row_pieces into rq / ri[nr + (r & 1) (most + 1):] from the
    previous row's list and its group (rq flat, rb the same memory as (n, 4): nr rectangles in
    groups, _rect_rows, then two rows' lists of up to most each and a spare slot), then its
    union sweep, _sweep_row, into rowacc (ncols + 1, zeroed; left zeroed)) and the other
    simple polygons' signed-area sum s (acc: the polygons of _walk_rows' group r, vertices
    wuv / woff, are walked (_walk_poly, rows r to r + chunk - 1) just before row r, into rings
    of rows of acc, owner and state (row r at r & rmask; each row left zero once done) that stay
    in cache; lacc is zeroed here). A pixel crossed by no other boundary: 1 when
    covered by a polygon (s >= 1/2 or a complex one), else cR. Crossed by one simple polygon:
    1 when a complex one covers it, else min(cR + s, 1) (s = its area plus the polygons
    covering the whole pixel) when cR is 0 or 1 or s >= 1 (or there are no rectangles), else
    listed. Several: 1 when the rectangles cover it, else listed. Listed pixels go to
    fpix[k] with cov[k] = min(cR + s, 1) and fown[k] their owner (-2: several); when rsweep,
    the rectangles meeting them are gathered at the end of the row (gstart, gb, gid: _gather,
    which settles those whose sum is exact or that one rectangle meets), for _exact. Returns
    (the number listed, the number of rectangles gathered): when that exceeds gb's length, the
    ones past it were not stored (the caller grows gb and runs again)."""
    W = ncols + 1
    nf = 0
    ng = 0
    G = gb.shape[0]
    nact = 0
    wm = 0.0
    nr = rb.shape[0] - 2 * (most + 1)    # rb[:nr]: the groups; then the two rows' lists
    gstart[0] = 0
    inv = 255 if invert else 0
    for r in range(nrows + 1):
        lacc[r] = 0.0
    run = 0.0
    for r in range(nrows):
        for k in range(wstart[r], wstart[r + 1]):
            q = wlist[k]
            _walk_poly(q, others[q] if compact else q, wuv, woff, cls, orient, nrows, ncols, acc,
                       lacc, owner, state, rmask, r, min(r + chunk, nrows) - 1, wbox)
        rr = r & rmask
        run += lacc[r]
        acc[rr * W] += run
        b = r * ncols
        orow = out[nrows - 1 - r if flip_y else r]
        dst = nr + (r & 1) * (most + 1)
        if rsweep:
            nact, wm = _row_pieces(r, estart, rq, ri, nr + ((r + 1) & 1) * (most + 1), dst,
                                   nact)
            _sweep_row(r, ncols, nact, rb[dst:dst + nact], rowacc, ae, ay0, ay1)
            rowacc[ncols] = 0.0
        nf0 = nf
        a = acc[rr * W:rr * W + ncols]
        ow = owner[rr * ncols:(rr + 1) * ncols]
        st = state[rr * ncols:(rr + 1) * ncols]
        nf = _row_values(a, rowacc, st, ow, count2, b, ncols, has_complex, rsweep, cov, fpix,
                         fown, orow, inv, nf, lanes)
        acc[rr * W + ncols] = 0.0
        if rsweep and nf > nf0:
            nf, ng = _gather(rb[dst:dst + nact], ri[dst:dst + nact], nact, wm, r, b, fpix, fown,
                             cov, nf0, nf, obox, wuv, woff, orow, inv, gstart, gb, gid, ng, G)
        if flip_x:
            for c in range(ncols // 2):
                t = orow[c]
                orow[c] = orow[ncols - 1 - c]
                orow[ncols - 1 - c] = t
    return nf, ng


@kernel
def _finish_listed(fpix, nflag, cov, nrows, ncols, invert, flip_x, flip_y, out):
    for k in range(nflag):
        pix = fpix[k]
        r = pix // ncols
        _put(out, r, pix - r * ncols, nrows, ncols, cov[k], invert, flip_x, flip_y)


# ----------------------------------------------------------------------------------------------
# Python wrappers

def _pixel_size(pixel_size):
    if np.ndim(pixel_size) == 0:
        px = py = pixel_size
    else:
        ps = list(np.asarray(pixel_size, dtype=np.float64).reshape(-1))
        if len(ps) != 2:
            raise ClipmillError(f"pixel_size {pixel_size!r} must be a number or (px, py)")
        px, py = ps
    try:
        px, py = float(px), float(py)
    except (TypeError, ValueError):
        raise ClipmillError(f"pixel_size {pixel_size!r} is not a number") from None
    if not (math.isfinite(px) and math.isfinite(py) and px > 0 and py > 0):
        raise ClipmillError(f"pixel_size {pixel_size!r} must be positive and finite")
    return px, py


def _window(window):
    try:
        w = [float(v) for v in np.asarray(window, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise ClipmillError(f"window {window!r} is not four numbers (x0, y0, x1, y1)") from None
    if len(w) != 4:
        raise ClipmillError(f"window {window!r} must have four numbers (x0, y0, x1, y1)")
    if not all(math.isfinite(v) for v in w):
        raise ClipmillError(f"window {tuple(window)} has a non-finite coordinate")
    if w[2] < w[0] or w[3] < w[1]:
        raise ClipmillError(f"window {tuple(window)} has x1 < x0 or y1 < y0")
    return w


def image_shape(window, pixel_size) -> tuple[int, int]:
    """(rows, cols) of the image of a window: ceil(size / pixel - 1e-9) each way."""
    return _shape(*_window(window), *_pixel_size(pixel_size))


def _shape(x0, y0, x1, y1, px, py):
    cols = max(int(math.ceil((x1 - x0) / px - 1e-9)), 0)
    rows = max(int(math.ceil((y1 - y0) / py - 1e-9)), 0)
    return rows, cols


@kernel
def _all_finite(a):
    """No NaN or infinity in a (one pass, no temporary array)."""
    ok = True
    for k in range(a.shape[0]):
        ok &= abs(a[k]) < np.inf
    return ok


_OFFSETS_RULE = "Polygons.offsets must start at 0, be non-decreasing and end at len(xy)"


def _check_polygons(polygons, full):
    """xy (float64, C order) and offsets (int64) of polygons. The ends of offsets are checked
    here; the rest (offsets non-decreasing, coordinates finite) only when full: otherwise the
    first kernel checks each polygon before it uses it (_bad_polygon raises)."""
    if not isinstance(polygons, Polygons):
        raise ClipmillError("rasterize takes engine.polygons.Polygons, got "
                            f"{type(polygons).__name__}")
    xy = np.ascontiguousarray(polygons.xy, dtype=np.float64).reshape(-1, 2)
    off = np.ascontiguousarray(polygons.offsets, dtype=np.int64).reshape(-1)
    if off.size == 0 or off[0] != 0 or off[-1] != xy.shape[0]:
        raise ClipmillError(_OFFSETS_RULE)
    if full and np.any(np.diff(off) < 0):
        raise ClipmillError(_OFFSETS_RULE)
    if full and xy.size and not _all_finite(xy.reshape(-1)):
        raise ClipmillError("Polygons.xy has a non-finite coordinate")
    return xy, off


def _bad_polygon(xy, off, i):
    """Raise for polygon i, which a kernel refused (offsets going back or a coordinate that is
    not finite once in pixel units)."""
    if off[i + 1] < off[i] or off[i + 1] > xy.shape[0]:
        raise ClipmillError(f"{_OFFSETS_RULE} ({xy.shape[0]}): polygon {i} has offsets "
                            f"{off[i]}:{off[i + 1]}")
    bad = xy[off[i]:off[i + 1]]
    raise ClipmillError(f"polygon {i} has a coordinate that is not finite"
                        + ("" if not np.isfinite(bad).all() else
                           " at this pixel size (it overflows in pixel units)")
                        + f": {bad.tolist()[:8]}")


def rasterize(polygons, window, pixel_size, *, mode="binary", invert=False, flip_x=False,
              flip_y=False, out=None, packed=False, scratch=None) -> np.ndarray:
    """Bitmap of ``polygons`` (um) in ``window`` (x0, y0, x1, y1 um); see the module doc."""
    if mode not in ("binary", "gray"):
        raise ClipmillError(f"mode must be 'binary' or 'gray', not {mode!r}")
    if packed and mode != "binary":
        raise ClipmillError("packed=True needs mode='binary'")
    x0, y0, x1, y1 = _window(window)
    px, py = _pixel_size(pixel_size)
    rows, cols = _shape(x0, y0, x1, y1, px, py)
    if rows * cols > MAX_PIXELS:
        raise ClipmillError(f"window {tuple(window)} at pixel size {(px, py)} gives {rows} x "
                            f"{cols} pixels, more than {MAX_PIXELS}")
    xy, off = _check_polygons(polygons, full=not (rows and cols))
    sc = scratch if scratch is not None else Scratch()

    img = out if (out is not None and not packed) else None
    if img is not None:
        if (not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.shape != (rows, cols)
                or not img.flags.c_contiguous or not img.flags.writeable):
            raise ClipmillError(f"out must be a writable C-contiguous uint8 array of shape "
                                f"{(rows, cols)}")
    else:
        img = (sc.get("img", rows * cols, np.uint8).reshape(rows, cols) if packed
               else np.empty((rows, cols), dtype=np.uint8))
    if rows and cols:
        _raster_into(xy, off, x0, y1, px, py, rows, cols, mode, bool(invert), bool(flip_x),
                     bool(flip_y), img, sc)
    if not packed:
        return img
    nb = (cols + 7) // 8
    if out is not None:
        if (not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != (rows, nb)
                or not out.flags.c_contiguous):
            raise ClipmillError(f"out must be a C-contiguous uint8 array of shape {(rows, nb)}")
        out[...] = np.packbits(img, axis=1) if rows and cols else 0
        return out
    return np.packbits(img, axis=1) if cols else np.zeros((rows, 0), dtype=np.uint8)


def _gray_rings(sc, compact, cls, wbox, others, nother, rows, cols):
    """Gray: the walked polygons (compact: others[:nother], else every relevant one) grouped by
    first row (_walk_rows; those taller than WALK_CHUNK rows once per WALK_CHUNK rows) and the
    rings of rows of acc, owner and state they need (rows: a power of two at least the most
    rows one walk meets, or the whole image; acc and state zeroed, their fill skipped when the
    last call left them zero). Returns (wstart, wlist, acc, owner, state, rmask, chunk)."""
    wstart = sc.get("wstart", rows + 1, np.int64)
    wlist = sc.get("wlist", nother if compact else cls.shape[0], np.int32)
    chunk = max(int(WALK_CHUNK), 1)
    span, total = _walk_rows(cls, wbox, others, nother, compact, rows, chunk, wstart, wlist)
    if total > wlist.shape[0]:
        wlist = sc.get("wlist", total, np.int32)
        span, total = _walk_rows(cls, wbox, others, nother, compact, rows, chunk, wstart, wlist)
    ring = 1 << max(span - 1, 0).bit_length()
    hrows, rmask = (rows, -1) if ring >= rows else (ring, ring - 1)
    acc = sc.zeroed("acc", hrows * (cols + 1), np.float32)
    owner = sc.get("owner", hrows * cols, np.int32)
    state = sc.zeroed("state", hrows * cols, np.uint8)
    return wstart, wlist, acc, owner, state, rmask, chunk


def _others_in_band_order(sc, others, obox, ouv, ooff, n, rows, cols):
    """(others, obox, ouv, ooff) of the gray pass's n other polygons copied band by band of pixel
    rows, left to right, into scratch (_others_by_band)."""
    alt = (sc.get("obox2", 4 * n, np.float64).reshape(-1, 4),
           sc.get("ouv2", 2 * int(ooff[n]), np.float64).reshape(-1, 2),
           sc.get("ooff2", n + 1, np.int64), sc.get("others2", n, np.int32))
    _others_by_band(obox, ouv, ooff, others, n, rows, cols,
                    sc.get("ocount", max(rows, cols) + 1, np.int64), sc.get("otmp", n, np.int32),
                    sc.get("opos", n, np.int32), *alt)
    return alt[3], alt[0], alt[1], alt[2]


def _simple_scratch(sc):
    """The two scratch arrays of engine.simple._is_simple."""
    (a, b), (c, d) = scratch_shapes()
    return (sc.get("simple_f", a * b, np.float64).reshape(a, b),
            sc.get("simple_i", c * d, np.int32).reshape(c, d))


def _raster_into(xy, off, x0, y1, px, py, rows, cols, mode, invert, flip_x, flip_y, img, sc,
                 orig=None):
    """img from polygons (xy, off); orig: (xy, off, src) of the caller's polygons when these
    are their Manhattan ones cut into rectangles (gray: engine.manhattan), src naming each one's
    polygon there (for errors)."""
    if mode == "gray" and orig is None:
        cut = manhattan.decompose(xy, off, sc, min_share=CUT_MIN_SHARE)
        if cut is not None:
            _raster_into(cut[0], cut[1], x0, y1, px, py, rows, cols, mode, invert, flip_x,
                         flip_y, img, sc, (xy, off, cut[2]))
            return
    npoly = off.shape[0] - 1
    uv = sc.get("uv", 2 * xy.shape[0], np.float64).reshape(-1, 2)
    cls = sc.get("cls", npoly, np.int8)
    if mode != "gray":
        count = sc.get("count", (rows + 1) * cols, np.int32, zero=True)
        ncomplex = _binary_marks(xy, x0, y1, 1.0 / px, 1.0 / py, uv, off, rows, cols, cls,
                                 count, sc.get("rbatch", 4 * RECT_BATCH, np.float64).reshape(-1, 4),
                                 *_simple_scratch(sc))
        if ncomplex < 0:
            _bad_polygon(xy, off, -1 - ncomplex)
        if not ncomplex:
            _prefix_finish(count, rows, cols, sc.get("colsum", cols, np.int32), invert, flip_x,
                           flip_y, img)
            return
        _prefix(count, rows, cols)
        local = sc.get("local", (rows + 1) * cols, np.int32)
        _winding_complex(uv, off, cls, rows, cols, local, count, count)
        _finish_binary(count, rows, cols, invert, flip_x, flip_y, img)
        return
    orient = sc.get("orient", npoly, np.int8)
    rect = sc.get("rect", npoly, np.int8)
    bbox = sc.get("bbox", 4 * npoly, np.float64).reshape(-1, 4)
    rcount = sc.get("rcount", rows + 1, np.int64)
    others = sc.get("others", npoly, np.int32)
    obox = sc.get("obox", 4 * npoly, np.float64).reshape(-1, 4)
    ouv = sc.get("ouv", 2 * xy.shape[0], np.float64).reshape(-1, 2)
    ooff = sc.get("ooff", npoly + 1, np.int64)
    estart = sc.get("estart", rows + 1, np.int64)
    ncomplex, nother, rperim, most, nrect, rlate, olate, bad = _classify(
        xy, x0, y1, 1.0 / px, 1.0 / py, uv, off, rows, cols, cls, orient, rect, bbox, rcount,
        estart, others, obox, ouv, ooff, *_simple_scratch(sc))
    if bad >= 0:
        _bad_polygon(*((xy, off, bad) if orig is None else (orig[0], orig[1], orig[2][bad])))
    npx = rows * cols
    count2 = sc.get("count2", npx if ncomplex else 1, np.int32, zero=True)
    if ncomplex:
        local = sc.get("local", (rows + 1) * cols, np.int32)
        _winding_complex(uv, off, cls, rows, cols, local, count2, count2)
    rsweep = rperim > 0.0 and rperim > RING_MARK_MIN * npx
    # compact: the polygons walked and listed are others[:nother], by position there (boxes
    # obox, vertices ouv / ooff): all the relevant ones but the rectangles that are swept, so
    # also when there is no rectangle at all; else every polygon by its id (bbox, uv / off)
    compact = rsweep or nrect == 0
    if compact and nother > ROW_ORDER_MIN and _out_of_order(olate, nother):
        # (a full sort of a nearly ordered layout, row by row with small offsets, made the exact
        # pass slower: all-slanted 200 000, 64 -> 78 ms)
        others, obox, ouv, ooff = _others_in_band_order(sc, others, obox, ouv, ooff, nother, rows,
                                                       cols)
    rings = _gray_rings(sc, compact, cls, obox if compact else bbox, others, nother, rows, cols)
    acc, state = rings[2], rings[4]
    walk = ((ouv, ooff, obox) if compact else (uv, off, bbox)) + (cls, orient, others) + rings[:3]
    walk += (sc.get("lacc", rows + 1, np.float64),) + rings[3:]
    if rsweep:
        rq = sc.get("rb", 4 * (nrect + 2 * most + 2), np.float64)
        rb = rq.reshape(-1, 4)
        ri = sc.get("ri", nrect + 2 * most + 2, np.int32)
        bycol = _out_of_order(rlate, nrect)
        _rect_rows(cls, rect, bbox, rows, cols, estart, ri, rb,
                   sc.get("bcount", cols // RECT_BUCKET + 2, np.int64),
                   sc.get("tmpi", most, np.int32),
                   sc.get("tmpc", 4 * most, np.float64).reshape(-1, 4), bycol,
                   sc.get("ccount", cols + 1 if bycol else 1, np.int64),
                   sc.get("cids", nrect if bycol else 1, np.int32))
        act = [sc.get(nm, most, np.float64) for nm in ("ae", "ay0", "ay1")]
    else:
        most = -1
        rb = bbox[:0]
        rq = rb.reshape(-1)
        ri = sc.get("ri", 1, np.int32)
        act = [sc.get(nm, 1, np.float64) for nm in ("ae", "ay0", "ay1")]
    cov = sc.get("cov", npx, np.float64)  # listed pixels: cov[k], fpix[k], fown[k]
    fpix = sc.get("fpix", npx, np.int32)
    fown = sc.get("fown", npx, np.int32)
    gstart = sc.get("gstart", npx + 1 if rsweep else 1, np.int64)
    rowacc = sc.zeroed("rowacc", cols + 1, np.float64)
    cap = max(GATHER_MIN, sc.capacity("gid"))
    while True:
        gb = sc.get("gb", 4 * cap, np.float64).reshape(-1, 4)
        gid = sc.get("gid", cap, np.int32)
        nflag, ng = _finish_gray(rsweep, compact, estart, rq, rb, ri, most, *act, rowacc, *walk,
                                 count2, bool(ncomplex), cov, fpix, fown, obox, gstart, gb, gid,
                                 rows, cols, invert, flip_x, flip_y, img,
                                 sc.get("lanes", 2 * LANES, np.float32))
        if ng <= gb.shape[0]:
            break
        cap = ng
    for name, buf in (("acc", acc), ("state", state), ("rowacc", rowacc)):
        sc.kept_zero(name, buf.shape[0])
    if not nflag:
        return
    tsh = TILE_SHIFT
    ntc = ((cols - 1) >> tsh) + 1
    ntiles = ntc * (((rows - 1) >> tsh) + 1)
    tneed = sc.get("tneed", ntiles, np.int8, zero=True)
    _tiles_needed(fpix, fown, nflag, cols, tsh, ntc, tneed)
    tstart = sc.get("tstart", ntiles + 1, np.int64)
    tbox = obox if compact else bbox
    vuv, voff = (ouv, ooff) if compact else (uv, off)    # vertices of tbox[q]: vuv[voff[q]:]
    total = _tile_index(cls, rect, compact, others, nother, tbox, rows, cols, tsh, ntc, tneed,
                        tstart, tstart[:0].astype(np.int32), False)
    tlist = sc.get("tlist", total, np.int32)
    _tile_index(cls, rect, compact, others, nother, tbox, rows, cols, tsh, ntc, tneed, tstart,
                tlist, True)
    caps = [64, 256, 16]
    need = sc.get("need", 3, np.int64)
    k = 0
    while k < nflag:
        cap_p, cap_v, cap_k = caps
        bufs = [sc.get(nm, cap_p, dt) for nm, dt in (
            ("pu0", np.float64), ("pv0", np.float64), ("pu1", np.float64),
            ("pv1", np.float64), ("pd", np.int32), ("pj", np.int32))]
        xs = sc.get("xs", cap_p, np.float64)
        xd = sc.get("xd", cap_p, np.int32)
        xj = sc.get("xj", cap_p, np.int32)
        vs = sc.get("vs", cap_v, np.float64)
        plocal = sc.get("plocal", cap_k, np.int32)
        wcur = sc.get("wcur", cap_k, np.int64)
        bx = sc.get("bx", 4 * cap_k, np.float64).reshape(-1, 4)
        xb = sc.get("xb", 2 * cap_k, np.float64)
        iv0 = sc.get("iv0", cap_k, np.float64)
        iv1 = sc.get("iv1", cap_k, np.float64)
        k = _exact(vuv, voff, cls, orient, rect, rows, cols, rsweep, compact, CLIP_COVER, fpix,
                   fown, tsh, ntc, tstart, tlist, tbox, others, gstart, gb, gid, k, nflag, cov,
                   plocal, sc.get("pv", 2 * cap_k, np.int64).reshape(-1, 2), *bufs, vs, xs, xd,
                   xj, wcur, bx, xb, iv0, iv1, need)
        if k < nflag:
            caps = [max(cap_p, int(need[0]) + 16), max(cap_v, int(need[1]) + 16),
                    max(cap_k, int(need[2]) + 4)]
    _finish_listed(fpix, nflag, cov, rows, cols, invert, flip_x, flip_y, img)


def rasterize_layout(layout, window, pixel_size, *, cell=None, layers=None, depth=None, **kw):
    """layout.explode(window, cell=, layers=, depth=) then rasterize(...)."""
    polys = layout.explode(window, cell=cell, layers=layers, depth=depth)
    return rasterize(polys, window, pixel_size, **kw)
