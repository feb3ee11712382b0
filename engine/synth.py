"""Seeded generator of realistic hierarchical multi-layer GDSII layouts (``clipmill synth``).

The layout is a die: a pad ring around a core of square *tiles* separated by routing channels.

* tiles are of three kinds, shuffled by the seed in the proportions ``mix`` (dense, logic, memory):

  - ``TDnnnnn`` dense block: a unique flat cell holding all drawing layers (except the two top
    routing layers) at the requested ``density``: rectangles on tracks (horizontal and vertical
    layers alternate), square cuts on via layers, and a share of L shapes, 45-degree chamfered
    octagons, PATHs (pathtypes 0, 1 = round, 2 and 4 with BGNEXTN/ENDEXTN), BOXes, a second datatype,
    TEXT labels and a NODE.
  - ``TLnnnnn`` logic block: rows of standard-cell-like leaf cells in R0/R180/MX/MX180 (through
    shared ``ROWn`` cells when ``levels >= 4``), a region of columns of leaves placed R90/R270/
    MX90/MX270, and its own flat routing on the routing layers (unique per tile).
  - ``MEM`` memory macro (one shared definition, placed in any of the 8 orientations): an AREF of
    the bit cell, an AREF of the mirrored bit cell, a *skewed* AREF of a strap cell (non-orthogonal
    lattice), a periphery of rotated leaves and flat routing.

* the top cell ``TOP`` places the tiles, the pads (4 orientations), fill cells in the channels
  (vectorised SREF blocks), ``LOGO`` with MAG 2 and 0.5 and ``TESTKEY`` at 30 degrees and at 45
  degrees reflected with MAG 1.5, and routes the channels with PATHs on the two top layers
  (including 3-point jogs), via rectangles at the crossings and a power-ring polygon.

Hierarchy depth ``levels`` (3..5): TOP > tile > leaf (3); TOP > tile > ROW > leaf (4); leaves also
place a via cell (5).

Knobs (arguments of :func:`synthesize`, same names on the CLI):

``die_um``      die size in micrometres, ``W`` or ``(W, H)`` (default 200)
``density``     polygons per um2 in the dense regions (all layers together; up to a few thousand).
                Feature pitch follows: ``pitch = sqrt(1.5 / density)`` um (27 nm at 2000/um2).
``size_bytes``  instead of ``die_um``: choose a square die so that the file is about this size
                (at the same density, so per-window costs compare across sizes)
``layers``      number of drawing layers, 4..64 (default 10): GDS layers 1..n, datatype 0, some
                shapes on datatype 1, labels on texttype 10; the last two are the top routing layers
``levels``      hierarchy depth 3..5 (default 5)
``dbu_um``      database unit in um (default 0.001 = 1 nm); user unit 1 um
``mix``         (dense, logic, memory) tile proportions (default (0.4, 0.4, 0.2))
``tile_pitches`` largest tile side in feature pitches (default 512; bounds memory per cell)
``features``    subset of FEATURES to include (default all)
``seed``        everything is a function of the seed: same seed, same bytes
``workers``     threads building tile cells (default: cores, at most 8); does not change the bytes

Sizes: the die holds at least 2 x 2 tiles of at least 64 pitches, so the smallest file at a given
density is about 1.5 MB (the default mix); above that ``size_bytes`` lands within about 1%.
File bytes are about 66 B x polygons of the unique cells (dense tiles, logic tiles' routing).
Coordinates are int32 database units: the die must stay under 2**31 dbu (2 m at 1 nm), and a
layout whose predicted size exceeds the free disk space is refused (ClipmillError).

Summary (returned dict): path, bytes, seconds, mb_per_s, cpu_seconds, mb_per_cpu_s, cells,
top_cell, levels, dbu_um, die_um [W, H], density, pitch_um, tile_um, tiles {dense, logic, mem},
counts {boundary, path, box, text, node, sref, aref} (records written), polygons, kinds (rect,
lshape, chamfer, path0/1/2/4, box, via), layers, dense_blocks_um [[x0, y0, x1, y1]] and blocks_um
[[kind, x0, y0, x1, y1]] (tile boxes in TOP, um), seed, size_target.

Records are built as numpy structured arrays (one block of thousands of fixed-size records at a
time) and written straight to the file, so large files are written at hundreds of MB/s.
"""
from __future__ import annotations

import math
import os
import shutil
import struct
import time

import numpy as np

from engine.errors import ClipmillError

FEATURES = ("nonrect", "box", "path", "text", "node", "aref", "mag", "angle", "route")

# record type (high byte) and data type (low byte)
HEADER, BGNLIB, LIBNAME, UNITS, ENDLIB = 0x0002, 0x0102, 0x0206, 0x0305, 0x0400
BGNSTR, STRNAME, ENDSTR = 0x0502, 0x0606, 0x0700
BOUNDARY, PATH, SREF, AREF, TEXT = 0x0800, 0x0900, 0x0A00, 0x0B00, 0x0C00
LAYER, DATATYPE, WIDTH, XY, ENDEL = 0x0D02, 0x0E02, 0x0F03, 0x1003, 0x1100
SNAME, COLROW, NODE, TEXTTYPE, PRESENTATION = 0x1206, 0x1302, 0x1500, 0x1602, 0x1701
STRING, STRANS, MAG, ANGLE, PATHTYPE = 0x1906, 0x1A01, 0x1B05, 0x1C05, 0x2102
NODETYPE, BOX, BOXTYPE, BGNEXTN, ENDEXTN = 0x2A02, 0x2D00, 0x2E02, 0x3003, 0x3103

DATE = (2025, 1, 1, 0, 0, 0)
LABEL_TEXTTYPE = 10
PITCH_K = 1.5  # polygons per pitch^2 in a dense region: pitch = sqrt(PITCH_K / density)

# leaf cells: name, width in sites (site = pitch); height LEAF_H sites
LEAVES = [("SC_INV_X1", 3), ("SC_BUF_X1", 4), ("SC_NAND2_X1", 4), ("SC_NOR2_X1", 4),
          ("SC_AOI21_X1", 6), ("SC_MUX2_X1", 8), ("SC_DFF_X1", 12), ("SC_TAP", 2),
          ("SC_FILL1", 1)]
LEAF_P = np.array([0.16, 0.14, 0.16, 0.12, 0.1, 0.08, 0.14, 0.05, 0.05])
LEAF_H = 10
MIN_TILE = 64  # smallest tile side in pitches (room for a column of every leaf type)
FILL1 = len(LEAVES) - 1


# ---------------------------------------------------------------- scalar records


def real8(x: float) -> bytes:
    """GDSII 8-byte real (excess-64 base-16 exponent, 56-bit mantissa), exact for doubles."""
    if x == 0:
        return bytes(8)
    sign = 0x80 if x < 0 else 0
    m, e = math.frexp(abs(x))
    ex = -((-e) // 4)  # ceil(e / 4): abs(x) = f * 16**ex with 1/16 <= f < 1
    mant = int(math.ldexp(m, 56 + e - 4 * ex))
    if not 0 <= ex + 64 <= 127:
        raise ClipmillError(f"{x!r} is out of the range of a GDSII real")
    return bytes([sign | (ex + 64)]) + mant.to_bytes(7, "big")


def _r8(x: float) -> int:
    return int.from_bytes(real8(x), "big")


ANGLE8 = [_r8(a) for a in (0.0, 90.0, 180.0, 270.0)]


def rec(code: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HH", 4 + len(payload), code) + payload


def rec_str(code: int, s: str) -> bytes:
    b = s.encode("ascii")
    return rec(code, b + b"\0" * (len(b) % 2))


def rec_i16(code, *v):
    return rec(code, struct.pack(f">{len(v)}h", *v))


def rec_i32(code, *v):
    return rec(code, struct.pack(f">{len(v)}i", *v))


def rec_r8(code, *v):
    return rec(code, b"".join(real8(x) for x in v))


def text_rec(layer, x, y, s, texttype=LABEL_TEXTTYPE, pres=5) -> bytes:
    return (rec(TEXT) + rec_i16(LAYER, layer) + rec_i16(TEXTTYPE, texttype)
            + rec_i16(PRESENTATION, pres) + rec_i16(STRANS, 0) + rec_i32(XY, int(x), int(y))
            + rec_str(STRING, s) + rec(ENDEL))


def node_rec(layer, pts) -> bytes:
    flat = [int(v) for p in pts for v in p]
    return rec(NODE) + rec_i16(LAYER, layer) + rec_i16(NODETYPE, 0) + rec_i32(XY, *flat) + rec(ENDEL)


def _strans(reflect, absmag=False, absang=False):
    return (0x8000 if reflect else 0) | (4 if absmag else 0) | (2 if absang else 0)


def ref_rec(name, x, y, reflect=False, mag=None, angle=None, colrow=None, lattice=None) -> bytes:
    """One SREF (or AREF when ``colrow=(cols, rows)`` and ``lattice=(colvec_end, rowvec_end)``)."""
    out = rec(AREF if colrow else SREF) + rec_str(SNAME, name)
    if reflect or mag is not None or angle is not None:
        out += rec_i16(STRANS, _strans(reflect) - (1 << 16 if reflect else 0))
        if mag is not None:
            out += rec_r8(MAG, mag)
        if angle is not None:
            out += rec_r8(ANGLE, angle)
    if colrow:
        out += rec_i16(COLROW, *colrow)
        (cx, cy), (rx, ry) = lattice
        out += rec_i32(XY, int(x), int(y), int(cx), int(cy), int(rx), int(ry))
    else:
        out += rec_i32(XY, int(x), int(y))
    return out + rec(ENDEL)


# ---------------------------------------------------------------- record blocks (numpy)


def _h(nbytes, code):
    return (nbytes << 16) | code


def rect_block(x0, y0, x1, y1, layer, dt):
    """BOUNDARY rectangles, one 64-byte record each."""
    n = len(x0)
    a = np.empty(n, np.dtype([("b", ">u4"), ("lh", ">u4"), ("l", ">i2"), ("dh", ">u4"),
                              ("d", ">i2"), ("xh", ">u4"), ("xy", ">i4", (10,)), ("e", ">u4")]))
    a["b"] = _h(4, BOUNDARY)
    a["lh"] = _h(6, LAYER)
    a["l"] = layer
    a["dh"] = _h(6, DATATYPE)
    a["d"] = dt
    a["xh"] = _h(44, XY)
    xy = a["xy"]
    xy[:, 0] = x0
    xy[:, 1] = y0
    xy[:, 2] = x1
    xy[:, 3] = y0
    xy[:, 4] = x1
    xy[:, 5] = y1
    xy[:, 6] = x0
    xy[:, 7] = y1
    xy[:, 8] = x0
    xy[:, 9] = y0
    a["e"] = _h(4, ENDEL)
    return a


def boundary_block(pts, layer, dt):
    """BOUNDARY polygons of k vertices each: ``pts`` int [N, k, 2] (closing vertex added)."""
    n, k, _ = pts.shape
    nxy = 2 * (k + 1)
    a = np.empty(n, np.dtype([("b", ">u4"), ("lh", ">u4"), ("l", ">i2"), ("dh", ">u4"),
                              ("d", ">i2"), ("xh", ">u4"), ("xy", ">i4", (nxy,)), ("e", ">u4")]))
    a["b"] = _h(4, BOUNDARY)
    a["lh"] = _h(6, LAYER)
    a["l"] = layer
    a["dh"] = _h(6, DATATYPE)
    a["d"] = dt
    a["xh"] = _h(4 + 4 * nxy, XY)
    xy = a["xy"]
    xy[:, :2 * k] = pts.reshape(n, 2 * k)
    xy[:, 2 * k:] = pts[:, 0, :]
    a["e"] = _h(4, ENDEL)
    return a


def path_block(pts, layer, dt, pathtype, width, ext=None):
    """PATHs of m points each: ``pts`` int [N, m, 2]; ``ext`` (begin, end) arrays for type 4."""
    n, m, _ = pts.shape
    f = [("p", ">u4"), ("lh", ">u4"), ("l", ">i2"), ("dh", ">u4"), ("d", ">i2"), ("th", ">u4"),
         ("t", ">i2"), ("wh", ">u4"), ("w", ">i4")]
    if pathtype == 4:
        f += [("bh", ">u4"), ("bx", ">i4"), ("eh", ">u4"), ("ex", ">i4")]
    f += [("xh", ">u4"), ("xy", ">i4", (2 * m,)), ("e", ">u4")]
    a = np.empty(n, np.dtype(f))
    a["p"] = _h(4, PATH)
    a["lh"] = _h(6, LAYER)
    a["l"] = layer
    a["dh"] = _h(6, DATATYPE)
    a["d"] = dt
    a["th"] = _h(6, PATHTYPE)
    a["t"] = pathtype
    a["wh"] = _h(8, WIDTH)
    a["w"] = width
    if pathtype == 4:
        a["bh"] = _h(8, BGNEXTN)
        a["bx"] = ext[0]
        a["eh"] = _h(8, ENDEXTN)
        a["ex"] = ext[1]
    a["xh"] = _h(4 + 8 * m, XY)
    a["xy"] = pts.reshape(n, 2 * m)
    a["e"] = _h(4, ENDEL)
    return a


def box_block(x0, y0, x1, y1, layer, boxtype=0):
    n = len(x0)
    a = np.empty(n, np.dtype([("b", ">u4"), ("lh", ">u4"), ("l", ">i2"), ("th", ">u4"),
                              ("t", ">i2"), ("xh", ">u4"), ("xy", ">i4", (10,)), ("e", ">u4")]))
    a["b"] = _h(4, BOX)
    a["lh"] = _h(6, LAYER)
    a["l"] = layer
    a["th"] = _h(6, BOXTYPE)
    a["t"] = boxtype
    a["xh"] = _h(44, XY)
    xy = a["xy"]
    for i, (xs, ys) in enumerate(((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))):
        xy[:, 2 * i] = xs
        xy[:, 2 * i + 1] = ys
    a["e"] = _h(4, ENDEL)
    return a


def sref_block(names, x, y, orient):
    """SREFs with STRANS and ANGLE: ``names`` one name or an array of equal-length names,
    ``orient`` 0..7 (R0, R90, R180, R270, then the same after reflection about x)."""
    n = len(x)
    if isinstance(names, str):
        names = names.encode("ascii")
    ln = len(names) if isinstance(names, bytes) else names.dtype.itemsize
    ln += ln % 2
    a = np.empty(n, np.dtype([("s", ">u4"), ("nh", ">u4"), ("n", f"S{ln}"), ("sh", ">u4"),
                              ("st", ">u2"), ("ah", ">u4"), ("an", ">u8"), ("xh", ">u4"),
                              ("xy", ">i4", (2,)), ("e", ">u4")]))
    a["s"] = _h(4, SREF)
    a["nh"] = _h(4 + ln, SNAME)
    a["n"] = names
    a["sh"] = _h(6, STRANS)
    orient = np.asarray(orient)
    a["st"] = np.where(orient >= 4, 0x8000, 0)
    a["ah"] = _h(12, ANGLE)
    a["an"] = np.asarray(ANGLE8, dtype=np.uint64)[orient % 4]
    a["xh"] = _h(12, XY)
    a["xy"][:, 0] = x
    a["xy"][:, 1] = y
    a["e"] = _h(4, ENDEL)
    return a


# ---------------------------------------------------------------- orientations

_COS = np.array([1, 0, -1, 0])
_SIN = np.array([0, 1, 0, -1])


def orient_matrix(o):
    """(a, b, c, d) integer arrays: child (x, y) -> (a x + b y, c x + d y) for orientation o."""
    o = np.asarray(o)
    c, s = _COS[o % 4], _SIN[o % 4]
    f = np.where(o >= 4, -1, 1)
    return c, -s * f, s, c * f


def place_origin(o, w, h, x, y):
    """Origin that puts the footprint of a [0, w] x [0, h] cell in orientation ``o`` at (x, y)."""
    a, b, c, d = orient_matrix(o)
    ox = x - (np.minimum(0, a * w) + np.minimum(0, b * h))
    oy = y - (np.minimum(0, c * w) + np.minimum(0, d * h))
    return ox, oy


def oriented_size(o, w, h):
    o = np.asarray(o)
    rot = (o % 2) == 1
    return np.where(rot, h, w), np.where(rot, w, h)


# ---------------------------------------------------------------- shape generation


class _Stats:
    def __init__(self):
        self.c = dict(boundary=0, path=0, box=0, text=0, node=0, sref=0, aref=0)
        self.kinds = dict(rect=0, lshape=0, chamfer=0, path0=0, path1=0, path2=0, path4=0,
                          box=0, via=0, other=0)

    def add(self, o):
        for k, v in o.c.items():
            self.c[k] += v
        for k, v in o.kinds.items():
            self.kinds[k] += v


def _in_order(fn, items, workers):
    """fn over items in threads (numpy releases the GIL), results in order, at most
    workers + 1 in flight (bounded memory)."""
    if workers <= 1 or len(items) <= 1:
        for it in items:
            yield fn(it)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as ex:
        q = deque()
        for it in items:
            q.append(ex.submit(fn, it))
            if len(q) > workers:
                yield q.popleft().result()
        while q:
            yield q.popleft().result()


def _count(n_float, rng):
    """Stochastic rounding (unbiased count)."""
    return int(math.floor(n_float + rng.random()))


def _tracks(rng, W, H, p, n):
    """n segments on horizontal tracks of pitch p filling [0, W] x [0, H] (track coordinates)."""
    ntr = max(1, H // p)
    k = -(-n // ntr)
    excess = ntr * k - n
    wts = rng.random((ntr, k), dtype=np.float32) * np.float32(0.8) + np.float32(0.2)
    b = np.empty((ntr, k + 1))
    b[:, 0] = 0
    np.cumsum(wts, axis=1, out=b[:, 1:])
    b *= W / b[:, -1:]
    s, e = b[:, :-1], b[:, 1:]
    g = 0.15 * (e - s)
    x0 = (s + g).astype(np.int64)
    x1 = np.maximum((e - g).astype(np.int64), x0 + 1)
    w = max(1, p // 2)
    y0 = np.broadcast_to((np.arange(ntr, dtype=np.int64) * p + (p - w) // 2)[:, None], x0.shape)
    if excess:
        keep = np.ones((ntr, k), bool)
        shift = int(rng.integers(ntr))
        keep[(np.arange(ntr) + shift) % ntr < excess, -1] = False
        return x0[keep], y0[keep], x1[keep], (y0 + w)[keep]
    return x0.ravel(), y0.ravel(), x1.ravel(), (y0 + w).ravel()


def _vias(rng, W, H, p, n):
    nx, ny = W // p, H // p
    if n <= 0 or nx * ny == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    q = n / (nx * ny)
    if q > 0.9:
        sub = math.ceil(math.sqrt(q / 0.9))
        p = max(1, p // sub)
        nx, ny = W // p, H // p
        q = min(1.0, n / (nx * ny))
    idx = np.flatnonzero(rng.random(nx * ny, dtype=np.float32) < np.float32(q))
    v = max(1, p // 2)
    x0 = (idx % nx) * p + (p - v) // 2
    y0 = (idx // nx) * p + (p - v) // 2
    return x0, y0, x0 + v, y0 + v


def _swap(pts, swap):
    return pts[..., ::-1] if swap else pts


def _emit_lines(out, st, rng, layer, x0, y0, x1, y1, swap, ox, oy, variety, feats):
    """Turn track segments into records: mostly rectangles, some L shapes, chamfered octagons,
    PATHs of the four pathtypes and BOXes (``variety``)."""
    n = len(x0)
    if n == 0:
        return
    dt = np.where(np.arange(n) % 13 == 5, 1, 0).astype(np.int16)
    if variety:
        cat = rng.random(n, dtype=np.float32)
        w, ln = y1 - y0, x1 - x0
        lmask = (cat < 0.04) & (w >= 2) & (ln >= 2) if "nonrect" in feats else np.zeros(n, bool)
        c = np.minimum(w, ln) // 4
        cmask = ((cat >= 0.04) & (cat < 0.07) & (c >= 1)) if "nonrect" in feats else np.zeros(n, bool)
        pmask = (cat >= 0.07) & (cat < 0.15) if "path" in feats else np.zeros(n, bool)
        bmask = (cat >= 0.15) & (cat < 0.16) if "box" in feats else np.zeros(n, bool)
        rmask = ~(lmask | cmask | pmask | bmask)
    else:
        rmask = None
    r = rmask if rmask is not None else slice(None)
    X0, Y0, X1, Y1 = (x0[r], y0[r], x1[r], y1[r]) if not swap else (y0[r], x0[r], y1[r], x1[r])
    out.append(rect_block(X0 + ox, Y0 + oy, X1 + ox, Y1 + oy, layer, dt[r]))
    st.c["boundary"] += len(X0)
    st.kinds["rect"] += len(X0)
    if rmask is None:
        return
    off = np.array([ox, oy])
    if lmask.any():
        a, b, cc, d = x0[lmask], y0[lmask], x1[lmask], y1[lmask]
        xm, ym = a + (cc - a) // 2, b + (d - b) // 2
        pts = np.stack([np.stack(v, -1) for v in
                        ((a, b), (cc, b), (cc, ym), (xm, ym), (xm, d), (a, d))], 1)
        out.append(boundary_block(_swap(pts, swap) + off, layer, dt[lmask]))
        st.c["boundary"] += len(a)
        st.kinds["lshape"] += len(a)
    if cmask.any():
        a, b, cc, d, k = x0[cmask], y0[cmask], x1[cmask], y1[cmask], c[cmask]
        pts = np.stack([np.stack(v, -1) for v in
                        ((a + k, b), (cc - k, b), (cc, b + k), (cc, d - k), (cc - k, d), (a + k, d),
                         (a, d - k), (a, b + k))], 1)
        out.append(boundary_block(_swap(pts, swap) + off, layer, dt[cmask]))
        st.c["boundary"] += len(a)
        st.kinds["chamfer"] += len(a)
    if pmask.any():
        ptype = np.array([0, 1, 2, 4])[rng.integers(0, 4, int(pmask.sum()))]
        a, b, cc, d, dd = x0[pmask], y0[pmask], x1[pmask], y1[pmask], dt[pmask]
        w = d - b
        yc = b + w // 2
        w = w - (w % 2)  # even widths keep the outline on the grid
        short = (cc - a) <= w + 2
        ptype = np.where(short & ((ptype == 1) | (ptype == 2)), 0, ptype)
        ptype = np.where((ptype == 4) & ((cc - a) <= 2 * (w // 4) + 1), 0, ptype)
        for t in (0, 1, 2, 4):
            m = ptype == t
            if not m.any():
                continue
            half = w[m] // 2 if t in (1, 2) else (w[m] // 4 if t == 4 else 0)
            pts = np.stack([np.stack((a[m] + half, yc[m]), -1), np.stack((cc[m] - half, yc[m]), -1)], 1)
            ext = (half, half // 2) if t == 4 else None
            out.append(path_block(_swap(pts, swap) + off, layer, dd[m], t, np.maximum(w[m], 2), ext))
            st.c["path"] += int(m.sum())
            st.kinds[f"path{t}"] += int(m.sum())
    if bmask.any():
        a, b, cc, d = x0[bmask], y0[bmask], x1[bmask], y1[bmask]
        if swap:
            a, b, cc, d = b, a, d, cc
        out.append(box_block(a + ox, b + oy, cc + ox, d + oy, layer, 0))
        st.c["box"] += len(a)
        st.kinds["box"] += len(a)


def region_shapes(out, st, rng, layers, x0, y0, W, H, p, per_layer_dbu2, feats, variety=True,
                  hold_vias=0):
    """Fill [x0, x0+W] x [y0, y0+H] with ``per_layer_dbu2 * W * H`` shapes on each of ``layers``
    (list of (gds layer, kind 'h'/'v'/'via')). Appends record blocks to ``out``. Returns the
    positions of ``hold_vias`` via shapes left out (for via cells) as (layer, xs, ys)."""
    held = None
    for lay, kind in layers:
        n = _count(per_layer_dbu2 * W * H, rng)
        if kind == "via":
            a, b, c, d = _vias(rng, W, H, p, n)
            if hold_vias and held is None and len(a) > hold_vias:
                held = (lay, (a[:hold_vias] + c[:hold_vias]) // 2 + x0,
                        (b[:hold_vias] + d[:hold_vias]) // 2 + y0, int(c[0] - a[0]))
                a, b, c, d = a[hold_vias:], b[hold_vias:], c[hold_vias:], d[hold_vias:]
            if len(a):
                out.append(rect_block(a + x0, b + y0, c + x0, d + y0, lay, 0))
                st.c["boundary"] += len(a)
                st.kinds["via"] += len(a)
        else:
            swap = kind == "v"
            tw, th = (H, W) if swap else (W, H)
            a, b, c, d = _tracks(rng, tw, th, p, n) if n > 0 else (np.zeros(0, np.int64),) * 4
            _emit_lines(out, st, rng, lay, a, b, c, d, swap, x0, y0, variety, feats)
    return held


# ---------------------------------------------------------------- writer


class _Writer:
    def __init__(self, f):
        self.f, self.n, self.cells = f, 0, 0

    def put(self, b):
        if isinstance(b, np.ndarray):
            if b.size:
                self.f.write(b.view(np.uint8).data)
                self.n += b.nbytes
        else:
            self.f.write(b)
            self.n += len(b)

    def cell(self, name, blocks):
        self.put(rec_i16(BGNSTR, *DATE, *DATE) + rec_str(STRNAME, name))
        for b in blocks:
            self.put(b)
        self.put(rec(ENDSTR))
        self.cells += 1


# ---------------------------------------------------------------- plan


def _parse_die(die_um):
    if die_um is None:
        return None
    if isinstance(die_um, str):
        die_um = [float(v) for v in die_um.replace("x", ",").split(",") if v.strip()]
    if np.ndim(die_um) == 0:
        return float(die_um), float(die_um)
    v = [float(x) for x in die_um]
    if len(v) == 1:
        return v[0], v[0]
    if len(v) != 2:
        raise ClipmillError(f"die size {die_um!r}: give W or W,H in um")
    return v[0], v[1]


def _layer_roles(n):
    if not 4 <= n <= 64:
        raise ClipmillError(f"layers={n}: choose 4..64 drawing layers")
    nums = list(range(1, n + 1))
    top = nums[-2:]
    nleaf = max(1, math.ceil((n - 2) * 0.6))
    if nleaf >= n - 2:
        nleaf = n - 3
    leaf, route = nums[:nleaf], nums[nleaf:n - 2]

    def kinds(ls, start):
        out = []
        for i, lay in enumerate(ls):
            j = i + start
            out.append((lay, "via" if j % 3 == 2 else ("h" if j % 2 == 0 else "v")))
        return out
    return kinds(leaf, 0), kinds(route, len(leaf)), top


def _plan(die_w_um, die_h_um, density, dbu_um, layers, levels, mix, tile_pitches, seed):
    if not density > 0:
        raise ClipmillError(f"density {density!r} must be > 0 polygons/um2")
    if levels not in (3, 4, 5):
        raise ClipmillError(f"levels={levels}: choose 3, 4 or 5")
    p = int(round(math.sqrt(PITCH_K / density) / dbu_um))
    if p < 4:
        raise ClipmillError(f"density {density}/um2 needs features below 4 database units of "
                            f"{dbu_um} um: use a smaller dbu_um")
    W, H = int(round(die_w_um / dbu_um)), int(round(die_h_um / dbu_um))
    if max(W, H) >= 2 ** 31 - 1:
        raise ClipmillError(f"die {die_w_um} x {die_h_um} um does not fit 32-bit coordinates at "
                            f"dbu {dbu_um} um: use a larger dbu_um")
    leaf, route, top = _layer_roles(layers)
    if levels == 5 and not any(k == "via" for _, k in leaf):
        raise ClipmillError(f"levels=5 places via cells in the leaves: it needs layers >= 6 "
                            f"(got {layers})")
    R = max(int(0.04 * min(W, H)), 12 * p)
    c = max(6 * p, int(0.03 * min(W, H) / max(1, min(W, H) / (tile_pitches * p))))
    core_w, core_h = W - 2 * R, H - 2 * R
    tmax = tile_pitches * p
    nx = max(2, math.ceil((core_w - c) / (tmax + c)))
    ny = max(2, math.ceil((core_h - c) / (tmax + c)))
    px, py = (core_w - c) // nx, (core_h - c) // ny
    T = (min(px, py) - c) // p * p
    if T < MIN_TILE * p:
        raise ClipmillError(f"die {die_w_um} x {die_h_um} um is too small for density {density}/um2 "
                            f"(feature pitch {p * dbu_um:.4g} um): make it larger or denser")
    ntiles = nx * ny
    w = np.asarray(mix, float)
    w = w / w.sum()
    counts = np.floor(w * ntiles).astype(int)
    for i in np.argsort(-(w * ntiles - counts))[: ntiles - counts.sum()]:
        counts[i] += 1
    for i in range(3):  # every kind present when there is room
        if counts[i] == 0 and w[i] > 0 and ntiles >= 3:
            counts[int(np.argmax(counts))] -= 1
            counts[i] += 1
    types = np.repeat(np.arange(3), counts)
    np.random.default_rng([seed, 1]).shuffle(types)
    n_nontop = len(leaf) + len(route)
    return dict(p=p, W=W, H=H, R=R, c=c, nx=nx, ny=ny, px=px, py=py, T=T, types=types,
                leaf=leaf, route=route, top=top, d=density / n_nontop * dbu_um ** 2,
                levels=levels, dbu_um=dbu_um, density=density)


def _predict(pl):
    """Expected file bytes of a plan (shapes x mean record size + placements)."""
    T, d, p = pl["T"], pl["d"], pl["p"]
    line_b, via_b, sref_b = 67.0, 64.0, 52.0

    def layer_bytes(ls, area):
        return sum(d * area * (via_b if k == "via" else line_b) for _, k in ls)
    nt = np.bincount(pl["types"], minlength=3)
    dense = layer_bytes(pl["leaf"] + pl["route"], T * T)
    leaves_per_tile = (T * T) / (LEAF_H * p * 5.2 * p)
    nrows = T / (LEAF_H * p)
    logic = layer_bytes(pl["route"], T * T) + sref_b * (
        leaves_per_tile * 0.18 + (nrows if pl["levels"] >= 4 else leaves_per_tile * 0.82))
    mem = layer_bytes(pl["route"], T * T) if nt[2] else 0
    W, H, R, c, nx, ny = pl["W"], pl["H"], pl["R"], pl["c"], pl["nx"], pl["ny"]
    ntr = max(1, min(6, c // (3 * p)))
    top = (nt.sum() * 46 + 2 * (W + H) / R * 44 + (ny + 1) * (W - 2 * R) / (4 * c) * 46
           + ((ny + 1) * nx + (nx + 1) * ny) * ntr * 62 + (nx + 1) * (ny + 1) * 130)
    fixed = 11 * 60 * p * p * d * len(pl["leaf"]) * line_b + 8 * 0.82 * T / (5.2 * p) * sref_b
    return 0.978 * (nt[0] * dense + nt[1] * logic + mem + top + fixed) + 20000  # 0.978: measured


# ---------------------------------------------------------------- cells


def _leaf_cells(w, pl, feats, seed):
    """Standard cells (when a logic or memory tile uses them), bit cell and strap cell (when
    there is a memory tile), via cells (levels 5, when used). Returns {name: (width, height)}."""
    p, d, levels = pl["p"], pl["d"], pl["levels"]
    leaf = pl["leaf"]
    types = pl["types"]
    want_sc = bool((types == 1).any() or (types == 2).any())
    want = {nm: want_sc for nm, _ in LEAVES}
    want["BITCELL"] = bool((types == 2).any())
    want["STRAP"] = want["BITCELL"] and "aref" in feats
    via_cells = {lay: f"VIA{lay}" for lay, kind in leaf if kind == "via"} if levels >= 5 else {}
    lbl = next((lay for lay, k in leaf if k != "via"), leaf[0][0])
    defs = [(nm, ws * p, LEAF_H * p) for nm, ws in LEAVES]
    defs += [("BITCELL", 4 * p, 6 * p), ("STRAP", 4 * p, 3 * p)]
    sizes, bodies, used_vias = {}, [], set()
    for i, (name, cw, ch) in enumerate(defs):
        sizes[name] = (cw, ch)
        if not want[name]:
            continue
        rng = np.random.default_rng([seed, 2, i])
        out = []
        held = region_shapes(out, w.st, rng, leaf, 0, 0, cw, ch, p, d, feats, variety=True,
                             hold_vias=2 if via_cells else 0)
        if held is not None and held[0] in via_cells:
            lay, xs, ys, _ = held
            out.append(sref_block(via_cells[lay], xs, ys, np.zeros(len(xs), int)))
            w.st.c["sref"] += len(xs)
            used_vias.add(lay)
        if "text" in feats and name.startswith("SC_"):
            for j, pin in enumerate(("A", "Y")[: 1 + (cw > 2 * p)]):
                out.append(text_rec(lbl, (j + 0.5) * cw / 2, ch / 2, pin))
                w.st.c["text"] += 1
        bodies.append((name, out))
    for lay in sorted(used_vias):
        v = max(1, p // 2)
        lo = -(v // 2)
        w.cell(via_cells[lay], [rect_block(np.array([lo]), np.array([lo]), np.array([lo + v]),
                                           np.array([lo + v]), lay, 0)])
        w.st.c["boundary"] += 1
    for name, out in bodies:
        w.cell(name, out)
    return sizes


def _fill_row(rng, width_sites, widths, force_all=False):
    """Leaf types and x positions (sites) filling a row of width_sites exactly (``force_all``:
    starts with every leaf type once, so that no leaf cell is left unplaced)."""
    mean = float((LEAF_P * widths).sum())
    n = int(width_sites / mean * 1.3) + 8
    t = rng.choice(len(widths), n, p=LEAF_P)
    if force_all:
        t = np.concatenate((rng.permutation(len(widths)), t))
    x = np.concatenate(([0], np.cumsum(widths[t])))
    k = int(np.searchsorted(x, width_sites, side="right")) - 1  # cells fully inside
    t, x = t[:k], x[:k]
    end = int(x[-1] + widths[t[-1]]) if k else 0
    if end > width_sites:
        t, x = t[:-1], x[:-1]
        end = int(x[-1] + widths[t[-1]]) if len(t) else 0
    gap = width_sites - end
    t = np.concatenate((t, np.full(gap, FILL1)))
    x = np.concatenate((x, end + np.arange(gap)))
    return t, x


def _leaf_srefs(out, st, types, xs, ys, orients, sizes):
    """Vectorised SREF blocks of leaves (one block per leaf type) at footprint corners xs, ys."""
    for i, (name, _) in enumerate(LEAVES):
        m = types == i
        if not m.any():
            continue
        cw, ch = sizes[name]
        ox, oy = place_origin(orients[m], cw, ch, xs[m], ys[m])
        out.append(sref_block(name, ox, oy, orients[m]))
        st.c["sref"] += int(m.sum())


def _columns(rng, x0, y0, width, height, p, sizes):
    """Leaves rotated 90/270 (with and without reflection) stacked in columns."""
    widths = np.array([ws for _, ws in LEAVES])
    ncol = width // (LEAF_H * p)
    T, X, Y, O = [], [], [], []
    for j in range(ncol):
        t, ys = _fill_row(rng, height // p, widths, force_all=j == 0)
        T.append(t)
        Y.append(ys * p + y0)
        X.append(np.full(len(t), x0 + j * LEAF_H * p))
        O.append(rng.choice([1, 3, 5, 7], len(t)))
    if not T:
        return (np.zeros(0, int),) * 4
    return np.concatenate(T), np.concatenate(X), np.concatenate(Y), np.concatenate(O)


def _rows_pool(w, pl, sizes, seed):
    """Shared ROWn cells (levels >= 4): leaves in R0 / R180 / MX / MX180 filling a row."""
    p, T = pl["p"], pl["T"]
    wr = int(0.82 * T) // p
    widths = np.array([ws for _, ws in LEAVES])
    names = []
    for v in range(min(8, pl["T"] // (LEAF_H * p))):
        rng = np.random.default_rng([seed, 4, v])
        t, x = _fill_row(rng, wr, widths)
        o = rng.choice([0, 2, 4, 6], len(t), p=[0.4, 0.1, 0.1, 0.4])
        out = []
        _leaf_srefs(out, w.st, t, x * p, np.zeros(len(t), int), o, sizes)
        name = f"ROW{v}"
        w.cell(name, out)
        names.append(name)
        sizes[name] = (wr * p, LEAF_H * p)
    return names


def _logic_tile(st, pl, name, sizes, rows, seed, idx, feats):
    """Returns the cell's record blocks (counts go to ``st``)."""
    p, T = pl["p"], pl["T"]
    rng = np.random.default_rng([seed, 5, idx])
    out = []
    wr = int(0.82 * T) // p
    hl = LEAF_H * p
    nrows = T // hl
    if rows:
        v = rng.permutation(np.arange(nrows) % len(rows))
        o = rng.choice([0, 4, 2, 6], nrows, p=[0.45, 0.45, 0.05, 0.05])
        ys = np.arange(nrows) * hl
        for k, rn in enumerate(rows):
            m = v == k
            if m.any():
                ox, oy = place_origin(o[m], wr * p, hl, np.zeros(int(m.sum()), int), ys[m])
                out.append(sref_block(rn, ox, oy, o[m]))
                st.c["sref"] += int(m.sum())
    else:
        widths = np.array([ws for _, ws in LEAVES])
        TT, X, Y, O = [], [], [], []
        for r in range(nrows):
            t, x = _fill_row(rng, wr, widths)
            TT.append(t)
            X.append(x * p)
            Y.append(np.full(len(t), r * hl))
            O.append(rng.choice([0, 2, 4, 6], len(t), p=[0.4, 0.1, 0.1, 0.4]))
        _leaf_srefs(out, st, np.concatenate(TT), np.concatenate(X), np.concatenate(Y),
                    np.concatenate(O), sizes)
    cx = wr * p + p
    t, x, y, o = _columns(rng, cx, 0, T - cx, T, p, sizes)
    _leaf_srefs(out, st, t, x, y, o, sizes)
    region_shapes(out, st, rng, pl["route"], 0, 0, T, T, p, pl["d"], feats)
    if "text" in feats:
        out.append(text_rec(pl["route"][0][0], T // 2, T // 2, name))
        st.c["text"] += 1
    return out


def _dense_tile(st, pl, name, seed, idx, feats):
    """Returns the cell's record blocks (counts go to ``st``)."""
    p, T = pl["p"], pl["T"]
    rng = np.random.default_rng([seed, 6, idx])
    out = []
    region_shapes(out, st, rng, pl["leaf"] + pl["route"], 0, 0, T, T, p, pl["d"], feats)
    if "text" in feats:
        lay = pl["route"][0][0]
        xs = rng.integers(0, T, 8)
        ys = rng.integers(0, T, 8)
        for k in range(8):
            out.append(text_rec(lay, xs[k], ys[k], f"{name}_N{k}"))
        st.c["text"] += 8
    if "node" in feats:
        out.append(node_rec(pl["leaf"][0][0], [(0, 0), (T // 3, T // 5), (T // 2, 0)]))
        st.c["node"] += 1
    return out


def _mem(w, pl, sizes, seed, feats):
    p, T = pl["p"], pl["T"]
    rng = np.random.default_rng([seed, 7])
    st = w.st
    out = []
    bw, bh = sizes["BITCELL"]
    cols = int(0.8 * T) // bw
    pairs = int(0.8 * T) // (2 * bh)
    if "aref" in feats:
        out.append(ref_rec("BITCELL", 0, 0, colrow=(cols, pairs),
                           lattice=((cols * bw, 0), (0, pairs * 2 * bh))))
        out.append(ref_rec("BITCELL", 0, 2 * bh, reflect=True, colrow=(cols, pairs),
                           lattice=((cols * bw, 2 * bh), (0, 2 * bh + pairs * 2 * bh))))
        st.c["aref"] += 2
        sw, sh = sizes["STRAP"]
        y0 = int(0.83 * T)
        nr = max(1, int(0.14 * T) // sh)
        sc = max(1, (int(0.8 * T) - nr * (sw // 2)) // sw)
        # skewed lattice, cells placed MX180 (reflect + 180 degrees): footprint [-sw, 0] x [0, sh]
        out.append(ref_rec("STRAP", sw, y0, reflect=True, angle=180.0, colrow=(sc, nr),
                           lattice=((sw + sc * sw, y0), (sw + nr * (sw // 2), y0 + nr * sh))))
        st.c["aref"] += 1
    else:
        xs, ys = np.meshgrid(np.arange(cols) * bw, np.arange(2 * pairs) * bh)
        o = np.where((np.arange(2 * pairs) % 2 == 1)[:, None] & (xs >= 0), 4, 0).ravel()
        ox, oy = place_origin(o, bw, bh, xs.ravel(), ys.ravel())
        out.append(sref_block("BITCELL", ox, oy, o))
        st.c["sref"] += len(o)
    cx = int(0.83 * T)
    t, x, y, o = _columns(rng, cx, 0, T - cx, int(0.97 * T) // p * p, p, sizes)
    _leaf_srefs(out, st, t, x, y, o, sizes)
    region_shapes(out, st, rng, pl["route"], 0, 0, T, T, p, pl["d"], feats)
    if "text" in feats:
        out.append(text_rec(pl["route"][0][0], T // 2, T // 2, "MEM"))
        st.c["text"] += 1
    w.cell("MEM", out)


def _misc_cells(w, pl, feats):
    """PAD, LOGO (centred), TESTKEY (centred), FILLTOP."""
    p, R, c = pl["p"], pl["R"], pl["c"]
    st = w.st
    top1, top2 = pl["top"]
    l0, l1 = pl["leaf"][0][0], pl["route"][0][0]
    P = int(0.7 * R)
    a = lambda *v: np.array(v)  # noqa: E731
    out = [rect_block(a(0), a(0), a(P), a(P), top2, 0),
           rect_block(a(P // 8, P // 4), a(P // 8, P // 2), a(P - P // 8, P // 3),
                      a(P - P // 8, P // 2 + P // 8), top1, 0),
           rect_block(a(P // 4), a(P // 4), a(3 * P // 4), a(3 * P // 4), l1, 0)]
    st.c["boundary"] += 4
    if "text" in feats:
        out.append(text_rec(top2, P // 2, P // 2, "PAD"))
        st.c["text"] += 1
    w.cell("PAD", out)
    g = max(8, R // 8)  # LOGO spans [-g, g]
    q = g // 3
    oct_ = np.array([[[-g + q, -g], [g - q, -g], [g, -g + q], [g, g - q], [g - q, g], [-g + q, g],
                      [-g, g - q], [-g, -g + q]]])
    lsh = np.array([[[-g // 2, -g // 2], [g // 2, -g // 2], [g // 2, 0], [0, 0], [0, g // 2],
                     [-g // 2, g // 2]]])
    tri = np.array([[[-g // 2, g // 2 + q], [0, g // 2 + q], [-g // 2, g]]])
    out = [boundary_block(oct_, top1, 0), boundary_block(lsh, top2, 0), boundary_block(tri, l0, 0)]
    st.c["boundary"] += 3
    if "text" in feats:
        out.append(text_rec(top2, 0, 0, "clipmill"))
        st.c["text"] += 1
    w.cell("LOGO", out)
    k = max(8, R // 6)  # TESTKEY spans [-k, k]
    n = 9
    xs = -k + (2 * k) * np.arange(n) // n
    out = [rect_block(xs, np.full(n, -k), xs + k // n, np.full(n, k), l0, 0),
           rect_block(np.full(n, -k), xs, np.full(n, k), xs + k // (2 * n), l1, 0)]
    st.c["boundary"] += 2 * n
    if "path" in feats:
        out.append(path_block(np.array([[[-k, -k], [0, 0], [k, -k // 2]]]), top1, 0, 1,
                              np.array([max(2, k // 10)])))
        st.c["path"] += 1
    w.cell("TESTKEY", out)
    f = max(2, c // 3)
    out = [rect_block(a(0), a(0), a(f), a(f // 2), top1, 0)]
    st.c["boundary"] += 1
    w.cell("FILLTOP", out)
    return P, g, k, f


def _top(w, pl, tiles, misc, seed, feats):
    p, W, H, R, c = pl["p"], pl["W"], pl["H"], pl["R"], pl["c"]
    nx, ny, px, py, T = pl["nx"], pl["ny"], pl["px"], pl["py"], pl["T"]
    P, g, k, f = misc
    rng = np.random.default_rng([seed, 8])
    st = w.st
    out = []
    # tiles
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    tx = (R + c + i * px).ravel()
    ty = (R + c + j * py).ravel()
    names = np.array([n.encode() for n in tiles])
    uniq = names != b"MEM"
    if uniq.any():
        out.append(sref_block(names[uniq], tx[uniq], ty[uniq], np.zeros(int(uniq.sum()), int)))
        st.c["sref"] += int(uniq.sum())
    mm = ~uniq
    if mm.any():
        o = rng.integers(0, 8, int(mm.sum()))
        ox, oy = place_origin(o, T, T, tx[mm], ty[mm])
        out.append(sref_block("MEM", ox, oy, o))
        st.c["sref"] += int(mm.sum())
    # pads: bottom R0, right R90, top R180, left R270
    m0 = (R - P) // 2
    xs = np.arange(R, W - R - P, R)
    ys = np.arange(R, H - R - P, R)
    for o, px_, py_ in ((0, xs, np.full(len(xs), m0)), (1, np.full(len(ys), W - R + m0), ys),
                        (2, xs, np.full(len(xs), H - R + m0)), (3, np.full(len(ys), m0), ys)):
        ox, oy = place_origin(np.full(len(px_), o), P, P, px_, py_)
        out.append(sref_block("PAD", ox, oy, np.full(len(px_), o)))
        st.c["sref"] += len(px_)
    # corners: magnified and non-90 placements
    h = R // 2
    mag = "mag" in feats
    ang = "angle" in feats
    out.append(ref_rec("LOGO", h, h, mag=2.0 if mag else None))
    out.append(ref_rec("LOGO", W - h, h, mag=0.5 if mag else None, angle=90.0))
    out.append(ref_rec("TESTKEY", h, H - h, angle=30.0 if ang else None))
    out.append(ref_rec("TESTKEY", W - h, H - h, reflect=True, mag=1.5 if mag else None,
                       angle=45.0 if ang else 90.0))
    st.c["sref"] += 4
    # channels: fill cells, routing paths, crossing vias, power ring
    cyc = R + np.arange(ny + 1) * py  # horizontal channel bottoms
    cxc = R + np.arange(nx + 1) * px
    fx = np.arange(R + c, W - R - c, max(4 * c, 1))
    FX, FY = np.meshgrid(fx, cyc + c // 2 - f // 4)
    fo = rng.choice([0, 2, 4, 6], FX.size)
    ox, oy = place_origin(fo, f, f // 2, FX.ravel(), FY.ravel())
    out.append(sref_block("FILLTOP", ox, oy, fo))
    st.c["sref"] += FX.size
    if "route" in feats:
        top1, top2 = pl["top"]
        ntr = max(1, min(6, c // (3 * p)))
        tp = c // (ntr + 1)
        wt = max(2, (tp // 2) // 2 * 2)
        for lay, chan, span, horiz in ((top1, cyc, W, True), (top2, cxc, H, False)):
            pos = (chan[:, None] + tp * np.arange(1, ntr + 1)[None, :]).ravel()
            nseg = max(1, (nx if horiz else ny))
            cuts = np.sort(rng.integers(R, span - R, (len(pos), nseg - 1)), axis=1)
            b = np.concatenate((np.full((len(pos), 1), R), cuts, np.full((len(pos), 1), span - R)), 1)
            s0, s1 = b[:, :-1] + tp, b[:, 1:] - tp
            ok = (s1 - s0) > 2 * wt
            s0, s1 = s0[ok], s1[ok]
            pp = np.broadcast_to(pos[:, None], b[:, :-1].shape)[ok]
            ptype = np.array([0, 1, 2, 4])[rng.integers(0, 4, len(s0))] if "path" in feats else \
                np.zeros(len(s0), int)
            for t in (0, 1, 2, 4):
                m = ptype == t
                if not m.any():
                    continue
                pts = np.stack([np.stack((s0[m], pp[m]), -1), np.stack((s1[m], pp[m]), -1)], 1)
                if not horiz:
                    pts = pts[..., ::-1]
                ext = (np.full(int(m.sum()), wt // 2), np.full(int(m.sum()), wt // 4)) if t == 4 else None
                out.append(path_block(pts, lay, 0, t, np.full(int(m.sum()), wt), ext))
                st.c["path"] += int(m.sum())
        # 3-point jogs and via rectangles at the crossings
        CX, CY = np.meshgrid(cxc + c // 2, cyc + c // 2)
        CX, CY = CX.ravel(), CY.ravel()
        jog = np.stack([np.stack((CX - c, CY), -1), np.stack((CX, CY), -1),
                        np.stack((CX, CY + c), -1)], 1)
        out.append(path_block(jog, top1, 1, 0, np.full(len(CX), wt)))
        st.c["path"] += len(CX)
        out.append(rect_block(CX - wt, CY - wt, CX + wt, CY + wt, top2, 0))
        st.c["boundary"] += len(CX)
        # power ring: a frame polygon with a slit (non-rectangular, 10 vertices)
        a0, a1, b0, b1 = R // 4, R // 4 + max(2, R // 8), W - R // 4, H - R // 4
        e0, e1 = W - R // 4 - max(2, R // 8), H - R // 4 - max(2, R // 8)
        ring = np.array([[[a0, a0], [b0, a0], [b0, b1], [a0, b1], [a0, a1], [a1, a1], [a1, e1],
                          [e0, e1], [e0, a1], [a0, a1]]])
        out.append(boundary_block(ring, top2, 0))
        st.c["boundary"] += 1
    if "text" in feats:
        out.append(text_rec(pl["top"][1], W // 2, H // 2, "TOP"))
        st.c["text"] += 1
    w.cell("TOP", out)


# ---------------------------------------------------------------- entry points


def parse_size(s) -> int:
    """'1GB', '200MB', '1.5GiB', '500k', 1e9 -> bytes (kB/MB/GB decimal, KiB/MiB/GiB binary)."""
    if isinstance(s, (int, float)):
        return int(s)
    t = s.strip().upper().replace(" ", "")
    mult = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
            "T": 1e12, "TB": 1e12, "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40}
    i = len(t)
    while i and not (t[i - 1].isdigit() or t[i - 1] == "."):
        i -= 1
    try:
        return int(float(t[:i]) * mult[t[i:]])
    except (KeyError, ValueError):
        raise ClipmillError(f"size {s!r}: use e.g. 200MB, 1GB, 1.5GiB") from None


def _die_for_size(size_bytes, density, dbu_um, layers, levels, mix, tile_pitches, seed):
    lo, hi = 1.0, 2 ** 31 * dbu_um * 0.999
    p_um = math.sqrt(PITCH_K / density)
    lo = max(lo, 2 * (MIN_TILE * p_um + 12 * p_um) * 1.3)
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        try:
            b = _predict(_plan(mid, mid, density, dbu_um, layers, levels, mix, tile_pitches, seed))
        except ClipmillError:
            b = 0
        if b < size_bytes:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1.001:
            break
    return hi


def synthesize(path, *, die_um=None, density=100.0, seed=0, layers=10, levels=5, size_bytes=None,
               dbu_um=0.001, mix=(0.4, 0.4, 0.2), tile_pitches=512, features=None,
               workers=None) -> dict:
    """Write a synthetic layout to ``path`` (see the module docstring for the knobs) and return
    a summary dict: bytes, seconds, mb_per_s, cells, counts (records by kind), kinds (polygons by
    shape), die_um, pitch_um, tiles, dense_blocks_um (bboxes of the dense tiles in TOP)."""
    t0, c0 = time.perf_counter(), time.process_time()
    workers = min(8, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    feats = set(FEATURES if features is None else features)
    bad = feats - set(FEATURES)
    if bad:
        raise ClipmillError(f"unknown features {sorted(bad)}; known: {', '.join(FEATURES)}")
    if size_bytes is not None:
        size_bytes = parse_size(size_bytes)
        if die_um is not None:
            raise ClipmillError("give die_um or size_bytes, not both")
        d = _die_for_size(size_bytes, density, dbu_um, layers, levels, mix, tile_pitches, seed)
        dw = dh = d
    else:
        dw, dh = _parse_die(200.0 if die_um is None else die_um)
    pl = _plan(dw, dh, density, dbu_um, layers, levels, mix, tile_pitches, seed)
    need = _predict(pl)
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path)) or ".").free
    if need > 0.95 * free:
        raise ClipmillError(f"the layout would take about {need / 1e9:.1f} GB and only "
                            f"{free / 1e9:.1f} GB are free", file=str(path))
    st = _Stats()
    tmp = str(path) + ".part"
    try:
        with open(tmp, "wb", buffering=1 << 22) as f:
            w = _Writer(f)
            w.st = st
            w.put(rec_i16(HEADER, 600) + rec_i16(BGNLIB, *DATE, *DATE) + rec_str(LIBNAME, "CLIPMILL")
                  + rec_r8(UNITS, dbu_um, dbu_um * 1e-6))
            sizes = _leaf_cells(w, pl, feats, seed)
            logic = (pl["types"] == 1).any()
            rows = _rows_pool(w, pl, sizes, seed) if pl["levels"] >= 4 and logic else []
            misc = _misc_cells(w, pl, feats)
            if (pl["types"] == 2).any():
                _mem(w, pl, sizes, seed, feats)
            nd = max(5, len(str(len(pl["types"]))))  # equal-length names: one SREF block
            tiles = ["MEM" if k == 2 else f"T{'DL'[k]}{i:0{nd}d}" for i, k in enumerate(pl["types"])]

            def build(idx):
                tst = _Stats()
                if pl["types"][idx] == 0:
                    return _dense_tile(tst, pl, tiles[idx], seed, idx, feats), tst
                return _logic_tile(tst, pl, tiles[idx], sizes, rows, seed, idx, feats), tst
            todo = [i for i, k in enumerate(pl["types"]) if k != 2]
            for idx, (blocks, tst) in zip(todo, _in_order(build, todo, workers)):
                w.cell(tiles[idx], blocks)
                st.add(tst)
            _top(w, pl, tiles, misc, seed, feats)
            cells = w.cells
            w.put(rec(ENDLIB))
            nbytes = w.n
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    dbu = dbu_um
    R, c, px, py, T = pl["R"], pl["c"], pl["px"], pl["py"], pl["T"]
    blocks = []
    for idx, kind in enumerate(pl["types"]):
        i, j = divmod(idx, pl["ny"])
        x0, y0 = R + c + i * px, R + c + j * py
        blocks.append([("dense", "logic", "mem")[kind], x0 * dbu, y0 * dbu, (x0 + T) * dbu,
                       (y0 + T) * dbu])
    dense = [b[1:] for b in blocks if b[0] == "dense"]
    counts = {k: int(v) for k, v in st.c.items()}
    return dict(path=str(path), bytes=nbytes, seconds=secs, mb_per_s=nbytes / 1e6 / max(secs, 1e-9),
                cpu_seconds=cpu, mb_per_cpu_s=nbytes / 1e6 / max(cpu, 1e-9),
                cells=int(cells), top_cell="TOP", levels=pl["levels"], dbu_um=dbu_um,
                die_um=[pl["W"] * dbu, pl["H"] * dbu], density=density, pitch_um=pl["p"] * dbu,
                tile_um=T * dbu, tiles=dict(dense=int((pl["types"] == 0).sum()),
                                            logic=int((pl["types"] == 1).sum()),
                                            mem=int((pl["types"] == 2).sum())),
                counts=counts, polygons=counts["boundary"] + counts["path"] + counts["box"],
                kinds={k: int(v) for k, v in st.kinds.items()}, layers=[[lay, 0] for lay in range(1, layers + 1)],
                dense_blocks_um=dense, blocks_um=blocks, seed=seed, size_target=size_bytes)


# ---------------------------------------------------------------- bundled demo

DEMO_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "demo.gds")
DEMO = dict(die_um=200.0, density=6.0, mix=(0.15, 0.25, 0.6), tile_pitches=160, seed=0)


def make_demo(path=DEMO_PATH) -> dict:
    """(Re)make the bundled default layout engine/data/demo.gds (byte-identical every time)."""
    return synthesize(path, **DEMO)


# ---------------------------------------------------------------- CLI


def add_arguments(parser):
    parser.add_argument("out", help="output .gds file")
    parser.add_argument("--die-um", help="die size in um: W or W,H (default 200)")
    parser.add_argument("--size", help="target file size instead of --die-um, e.g. 200MB, 1GB")
    parser.add_argument("--density", type=float, default=100.0,
                        help="polygons per um2 in dense regions (default 100, up to ~2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=10, help="drawing layers, 4..64 (default 10)")
    parser.add_argument("--levels", type=int, default=5, help="hierarchy depth 3..5 (default 5)")
    parser.add_argument("--dbu-um", type=float, default=0.001, help="database unit in um (0.001)")
    parser.add_argument("--mix", default="0.4,0.4,0.2",
                        help="dense,logic,memory tile proportions (default 0.4,0.4,0.2)")
    parser.add_argument("--tile-pitches", type=int, default=512,
                        help="largest tile side in feature pitches (default 512)")
    parser.add_argument("--demo", action="store_true",
                        help="write the bundled demo layout's parameters (ignores the knobs)")
    parser.add_argument("--features", help=f"comma list, subset of {','.join(FEATURES)}")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads building tiles (default: cores, at most 8); same bytes")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    import json
    mix = tuple(float(v) for v in args.mix.split(","))
    if len(mix) != 3:
        raise ClipmillError("--mix needs three numbers: dense,logic,memory")
    feats = None if not args.features else [s.strip() for s in args.features.split(",") if s.strip()]
    if args.demo:
        s = make_demo(args.out)
    else:
        s = synthesize(args.out, die_um=args.die_um, density=args.density, seed=args.seed,
                       layers=args.layers, levels=args.levels, size_bytes=args.size,
                       dbu_um=args.dbu_um, mix=mix, tile_pitches=args.tile_pitches,
                       features=feats, workers=args.workers)
    if args.json:
        print(json.dumps(s, indent=1))
    else:
        print(f"{s['path']}: {s['bytes'] / 1e6:.1f} MB, {s['cells']} cells, {s['polygons']} polygons, "
              f"die {s['die_um'][0]:.1f} x {s['die_um'][1]:.1f} um, pitch {s['pitch_um'] * 1e3:.0f} nm, "
              f"{s['seconds']:.2f} s ({s['mb_per_s']:.0f} MB/s)")
    return 0
