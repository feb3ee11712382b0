"""GDSII stream -> DBLoad arrays (engine.database.FIELDS), with numba kernels over the mapped file.

Passes (no Python per record):
  1. ``_scan``: walks every record header (length even, >= 4, inside the file, known type), checks
     the record grammar (structures, elements, ENDEL/ENDSTR/ENDLIB), counts elements per kind and
     upper bounds of polygons / vertices / placements, and notes each structure's byte offsets.
     Runs of the common BOUNDARY shape (BOUNDARY LAYER DATATYPE XY ENDEL) are checked a header
     word at a time by ``_plain_boundaries`` (same verdict and counts as the state machine).
  2. ``_names``: hashes the structure names (FNV-1a, open addressing over spans of the file).
  3. ``_load``: decodes the elements into preallocated output arrays: boundaries, boxes and paths
     (via engine.paths) as int32 polygons, SREF/AREF as placements; SNAMEs resolved through the
     hash (names never defined become empty cells); layer filter applied before storing anything.
     Runs of the common BOUNDARY shape go through one call-free loop (``_boundary_run``);
     two-point axis-parallel paths are stored as their box from scalars, other two-point paths
     through a memo of their hull (``_path2_hull``). Hot helpers stay small enough to be inlined:
     a call passing arrays costs reference counting per array.
  4. ``_bboxes``: cell and placement bounding boxes bottom-up in topological order (post-order
     DFS), which also detects reference cycles; placements with integer matrices are boxed in
     integers (``_int_box``, exact), others by rounding the 4 transformed corners.
Every kernel reports problems as (code, byte offset, record type); ``ClipmillError`` is raised here.

Reading rules (KLayout's where the format leaves room):
* BOUNDARY: the closing point is dropped when it repeats the first; fewer than 3 points left ->
  skipped with a warning (still counted). BOX: the bounding box of its points, 4 vertices.
* PATH: engine.paths (KLayout's hull); zero-width paths make no polygon (counted, warned); a
  round-ended path's poly_bbox is KLayout's box (the square-ended hull's), see _square_box;
  two-point paths off the segment shortcut go through a memo of their hull (_path2_hull).
* SREF/AREF: GDSII order (reflect about x, magnify, rotate CCW, translate); an ANGLE within 1e-9
  of a multiple of 90 degrees gives exact 0/+-mag matrix entries. COLROW 0 is read as 1, and an
  AREF axis whose lattice vector is zero gets 1 copy (as KLayout). Absolute MAG/ANGLE flags in
  STRANS are ignored with a warning (as KLayout). Non-finite MAG/ANGLE -> error.
* KLayout's ``$$$CONTEXT_INFO$$$`` meta-data structure is not a cell (its records are counted).
* Names referenced by SNAME but never defined become empty cells (cell_defined 0) + a warning.
* Bytes after ENDLIB: zeros are padding; anything else is ignored with a warning.
* Structure names must be unique and non-empty; an XY record per element at most (no multi-XY).
"""
from __future__ import annotations

import gzip
import math
import os
import time
import zlib

import numpy as np

from engine import records as R
from engine.codec import real8_at
from engine.database import (KIND_AREF, KIND_BOUNDARY, KIND_BOX, KIND_PATH, KIND_SREF,
                             VTX_BLOCK_SHIFT)
from engine.errors import ClipmillError
from engine.jit import jit, njit
from engine.layers import ANY, parse_layers
from engine.paths import SEMI_CIRCLE_POINTS, path_hull, segment_box, segment_hull

BIG = np.iinfo(np.int64).max // 4
I32MIN, I32MAX = -(1 << 31), (1 << 31) - 1
CONTEXT_CELL = b"$$$CONTEXT_INFO$$$"   # KLayout's meta-data structure, skipped
MAX_XY = 8191          # points in one XY record (65535-byte record)
PC_SLOTS = 4096        # two-point path hull memo (_path2_hull): slots, points per slot
PC_POINTS = 4 * SEMI_CIRCLE_POINTS

# error codes of the kernels
(E_OK, E_TRUNC, E_SHORTLEN, E_ODDLEN, E_PASTEOF, E_UNKNOWN, E_NOHEADER, E_GRAMMAR, E_NOENDEL,
 E_NOENDSTR, E_NOENDLIB, E_XYODD, E_SHORTREC, E_NOSTRNAME, E_DUPNAME, E_EMPTYNAME, E_NOSNAME,
 E_XYCOUNT, E_COORD, E_NOXY, E_CYCLE, E_TWOXY, E_LAYERS, E_RETRY, E_NOSTRUCT, E_BADREAL) = range(26)

MESSAGES = {
    E_TRUNC: "file truncated inside a record header",
    E_SHORTLEN: "record length below 4 (zero or corrupt length)",
    E_ODDLEN: "odd record length",
    E_PASTEOF: "record length runs past the end of the file (truncated file?)",
    E_UNKNOWN: "unknown record type",
    E_NOHEADER: "not a GDSII stream: the first record is not HEADER",
    E_GRAMMAR: "record out of place",
    E_NOENDEL: "element not closed by ENDEL",
    E_NOENDSTR: "structure not closed by ENDSTR",
    E_NOENDLIB: "end of file before ENDLIB (truncated file?)",
    E_XYODD: "XY record with an odd number of coordinates",
    E_SHORTREC: "record too short for its data",
    E_NOSTRNAME: "structure without STRNAME",
    E_DUPNAME: "structure name defined twice",
    E_EMPTYNAME: "empty structure name",
    E_NOSNAME: "SREF/AREF without SNAME",
    E_XYCOUNT: "wrong number of points in XY (SREF needs 1, AREF 3, BOUNDARY 1+, BOX 1+)",
    E_COORD: "coordinate beyond the int32 range",
    E_NOXY: "element without XY",
    E_CYCLE: "reference cycle: a structure contains itself",
    E_TWOXY: "more than one XY record in an element",
    E_LAYERS: "more than 1,000,000 distinct layer/datatype pairs",
    E_NOSTRUCT: "empty library: no structures",
    E_BADREAL: "MAG or ANGLE is not a finite number (or MAG is beyond 1e9)",
}

# element kinds (scan state)
K_NONE, K_BOUNDARY, K_PATH, K_SREF, K_AREF, K_TEXT, K_NODE, K_BOX, K_TEXTNODE = range(9)
COUNT_KEYS = ("boundary", "path", "box", "text", "node", "sref", "aref")
# stats slots
(S_NSTRUCT, S_NBOUNDARY, S_NPATH, S_NBOX, S_NTEXT, S_NNODE, S_NSREF, S_NAREF, S_VTX, S_END,
 S_UNITS, S_LIBNAME, S_LIBNAMELEN, S_ERRCODE, S_ERROFF, S_ERRREC, S_TEXTNODE, S_NREC) = range(18)
NSTATS = 20


@jit
def _u16(buf, p):
    q = np.uint64(p)   # unsigned index: no negative-index wraparound code
    return np.int64((np.uint32(buf[q]) << np.uint32(8)) | np.uint32(buf[q + np.uint64(1)]))


@jit
def _i16(buf, p):
    q = np.uint64(p)
    v = (np.uint16(buf[q]) << np.uint16(8)) | np.uint16(buf[q + np.uint64(1)])
    return np.int64(np.int16(v))


@jit
def _i32(buf, p):
    q = np.uint64(p)
    v = ((np.uint32(buf[q]) << np.uint32(24)) | (np.uint32(buf[q + np.uint64(1)]) << np.uint32(16))
         | (np.uint32(buf[q + np.uint64(2)]) << np.uint32(8)) | np.uint32(buf[q + np.uint64(3)]))
    return np.int64(np.int32(v))


@jit
def _byte(buf, p):
    return np.int64(buf[np.uint64(p)])


def _tables():
    kind = np.zeros(256, dtype=np.int64)
    for rt, k in ((R.BOUNDARY, K_BOUNDARY), (R.PATH, K_PATH), (R.SREF, K_SREF), (R.AREF, K_AREF),
                  (R.TEXT, K_TEXT), (R.NODE, K_NODE), (R.BOX, K_BOX), (0x14, K_TEXTNODE)):
        kind[rt] = k
    minlen = np.full(256, 4, dtype=np.int64)
    for rt in (R.LAYER, R.DATATYPE, R.BOXTYPE, R.PATHTYPE, R.STRANS):
        minlen[rt] = 6
    for rt in (R.WIDTH, R.BGNEXTN, R.ENDEXTN, R.COLROW):
        minlen[rt] = 8
    minlen[R.MAG] = minlen[R.ANGLE] = 12
    minlen[R.UNITS] = 20
    return kind, minlen


# record type -> element kind (K_NONE for non-element records); smallest length of the records
# whose data the loader reads. Module-level arrays are compile-time constants in the kernels.
ELEM_KIND, MIN_LEN = _tables()


@jit
def _elem_kind(rt):
    return ELEM_KIND[np.uint64(rt) & np.uint64(255)]


@jit
def _min_len(rt):
    return MIN_LEN[np.uint64(rt) & np.uint64(255)]


@jit
def _fail(stats, code, off, rt):
    stats[S_ERRCODE] = code
    stats[S_ERROFF] = off
    stats[S_ERRREC] = rt
    return code


@jit
def _u32u(buf, p):
    """Big-endian uint32 at unsigned offset p (a record header as one word)."""
    return ((np.uint32(buf[p]) << np.uint32(24))
            | (np.uint32(buf[p + np.uint64(1)]) << np.uint32(16))
            | (np.uint32(buf[p + np.uint64(2)]) << np.uint32(8)) | np.uint32(buf[p + np.uint64(3)]))


# record header words (length, type) with the data-type byte masked off: the common BOUNDARY shape
W_MASK = np.uint32(0xFFFFFF00)
W_BOUNDARY = np.uint32(0x00040800)
W_LAYER = np.uint32(0x00060D00)
W_DATATYPE = np.uint32(0x00060E00)
W_ENDEL = np.uint32(0x00041100)


@jit
def _plain_boundaries(buf, pos, stats, s_npoly, s_nvtx, ns):
    """Scan fast path: validates and counts consecutive BOUNDARY elements of the common shape
    (BOUNDARY LAYER DATATYPE XY ENDEL, compared as header words; XY length 4 + 8k, k >= 1, the
    whole element inside the file) from pos, as the general state machine would (same counts,
    same verdict: anything else is left to it). Returns the position after the last one taken."""
    n = buf.shape[0]
    cap = s_npoly.shape[0]
    nb = 0
    nv = 0
    while pos + 24 <= n:
        p = np.uint64(pos)
        if (_u32u(buf, p) & W_MASK) != W_BOUNDARY or \
                (_u32u(buf, p + np.uint64(4)) & W_MASK) != W_LAYER or \
                (_u32u(buf, p + np.uint64(10)) & W_MASK) != W_DATATYPE or \
                buf[p + np.uint64(18)] != R.XY:
            break
        lx = (np.int64(buf[p + np.uint64(16)]) << 8) | np.int64(buf[p + np.uint64(17)])
        e = pos + 16 + lx
        if lx < 12 or (lx & 7) != 4 or e + 4 > n or (_u32u(buf, np.uint64(e)) & W_MASK) != W_ENDEL:
            break
        nb += 1
        nv += (lx - 4) >> 3
        pos = e + 4
    stats[S_NBOUNDARY] += nb
    stats[S_VTX] += nv
    if ns < cap:
        s_npoly[ns] += nb
        s_nvtx[ns] += nv
    return pos



@jit
def _scan(buf, known, stats, s_bgn, s_name, s_namelen, s_end, s_npoly, s_nvtx, s_nref):
    """Pass 1: validate headers and grammar, count. Per structure i (while i < capacity):
    s_bgn (BGNSTR offset), s_name/s_namelen (STRNAME data span), s_end (ENDSTR offset),
    s_npoly / s_nvtx / s_nref (upper bounds). Returns an error code (0 = ok)."""
    n = buf.shape[0]
    cap = s_bgn.shape[0]
    pos = 0
    state = 0          # 0 library header, 1 library, 2 structure, 3 element, 4 after ENDLIB
    kind = K_NONE
    ns = -1
    pathtype = 0
    nxy = 0
    have_name = False
    nrec = 0
    while pos < n:
        if pos + 4 > n:
            return _fail(stats, E_TRUNC, pos, -1)
        ln = _u16(buf, pos)
        rt = _byte(buf, pos + 2)
        if nrec == 0 and (rt != R.HEADER or ln < 6):
            return _fail(stats, E_NOHEADER, pos, rt)
        if ln < 4:
            return _fail(stats, E_SHORTLEN, pos, rt)
        if ln & 1:
            return _fail(stats, E_ODDLEN, pos, rt)
        if pos + ln > n:
            return _fail(stats, E_PASTEOF, pos, rt)
        if known[rt] == 0:
            return _fail(stats, E_UNKNOWN, pos, rt)
        if ln < _min_len(rt):
            return _fail(stats, E_SHORTREC, pos, rt)
        if nrec == 0 and rt != R.HEADER:
            return _fail(stats, E_NOHEADER, pos, rt)
        nrec += 1
        if state == 3:
            if rt == R.ENDEL:
                if nxy == 0 and kind != K_NONE:
                    return _fail(stats, E_NOXY, pos, rt)
                state = 2
            elif rt == R.XY:
                if (ln - 4) % 8 != 0:
                    return _fail(stats, E_XYODD, pos, rt)
                if nxy != 0:
                    return _fail(stats, E_TWOXY, pos, rt)
                npt = (ln - 4) // 8
                nxy = npt + 1
                if kind == K_BOUNDARY:
                    if npt < 1:
                        return _fail(stats, E_XYCOUNT, pos, rt)
                    if ns < cap:
                        s_nvtx[ns] += npt
                    stats[S_VTX] += npt
                elif kind == K_BOX:
                    if npt < 1:
                        return _fail(stats, E_XYCOUNT, pos, rt)
                    if ns < cap:
                        s_nvtx[ns] += 4
                    stats[S_VTX] += 4
                elif kind == K_PATH:
                    if npt < 1:
                        return _fail(stats, E_XYCOUNT, pos, rt)
                    b = 6 * npt + (2 * SEMI_CIRCLE_POINTS if pathtype == 1 else 4)
                    if ns < cap:
                        s_nvtx[ns] += b
                    stats[S_VTX] += b
                elif kind == K_SREF:
                    if npt < 1:
                        return _fail(stats, E_XYCOUNT, pos, rt)
                elif kind == K_AREF:
                    if npt < 3:
                        return _fail(stats, E_XYCOUNT, pos, rt)
            elif rt == R.PATHTYPE:
                pathtype = _i16(buf, pos + 4)
            elif rt == R.ENDSTR or rt == R.ENDLIB or rt == R.BGNSTR or _elem_kind(rt) != K_NONE:
                return _fail(stats, E_NOENDEL, pos, rt)
        elif state == 2:
            if rt == R.BOUNDARY and ln == 4 and have_name:
                k0 = stats[S_NBOUNDARY]
                q = _plain_boundaries(buf, pos, stats, s_npoly, s_nvtx, ns)
                if q != pos:
                    nrec += 5 * (stats[S_NBOUNDARY] - k0) - 1   # this BOUNDARY counted above
                    pos = q
                    continue
            k = _elem_kind(rt)
            if k != K_NONE:
                if not have_name:
                    return _fail(stats, E_NOSTRNAME, pos, rt)
                state = 3
                kind = k
                nxy = 0
                pathtype = 0
                if k == K_BOUNDARY:
                    stats[S_NBOUNDARY] += 1
                elif k == K_PATH:
                    stats[S_NPATH] += 1
                elif k == K_BOX:
                    stats[S_NBOX] += 1
                elif k == K_TEXT:
                    stats[S_NTEXT] += 1
                elif k == K_NODE:
                    stats[S_NNODE] += 1
                elif k == K_SREF:
                    stats[S_NSREF] += 1
                elif k == K_AREF:
                    stats[S_NAREF] += 1
                else:
                    stats[S_TEXTNODE] += 1
                if ns < cap:
                    if k == K_BOUNDARY or k == K_PATH or k == K_BOX:
                        s_npoly[ns] += 1
                    elif k == K_SREF or k == K_AREF:
                        s_nref[ns] += 1
            elif rt == R.STRNAME:
                if have_name:
                    return _fail(stats, E_GRAMMAR, pos, rt)
                have_name = True
                e = pos + ln
                while e > pos + 4 and buf[e - 1] == 0:
                    e -= 1
                if e == pos + 4:
                    return _fail(stats, E_EMPTYNAME, pos, rt)
                if ns < cap:
                    s_name[ns] = pos + 4
                    s_namelen[ns] = e - pos - 4
            elif rt == R.ENDSTR:
                if not have_name:
                    return _fail(stats, E_NOSTRNAME, pos, rt)
                if ns < cap:
                    s_end[ns] = pos
                state = 1
            elif rt == R.BGNSTR or rt == R.ENDLIB:
                return _fail(stats, E_NOENDSTR, pos, rt)
            elif rt == R.ENDEL or rt == R.XY:
                return _fail(stats, E_GRAMMAR, pos, rt)
        elif state == 1 or state == 0:
            if rt == R.BGNSTR:
                ns += 1
                state = 2
                have_name = False
                if ns < cap:
                    s_bgn[ns] = pos
                    s_npoly[ns] = 0
                    s_nvtx[ns] = 0
                    s_nref[ns] = 0
            elif rt == R.ENDLIB:
                state = 4
                stats[S_END] = pos + ln
                pos += ln
                break
            elif rt == R.UNITS:
                stats[S_UNITS] = pos + 4
            elif rt == R.LIBNAME:
                stats[S_LIBNAME] = pos + 4
                e = pos + ln
                while e > pos + 4 and buf[e - 1] == 0:
                    e -= 1
                stats[S_LIBNAMELEN] = e - pos - 4
            elif _elem_kind(rt) != K_NONE or rt == R.ENDSTR or rt == R.ENDEL or rt == R.XY:
                return _fail(stats, E_GRAMMAR, pos, rt)
        pos += ln
    stats[S_NSTRUCT] = ns + 1
    stats[S_NREC] = nrec
    if state != 4:
        if state == 3:
            return _fail(stats, E_NOENDLIB, n, -1)
        if state == 2:
            return _fail(stats, E_NOENDLIB, n, -1)
        return _fail(stats, E_NOENDLIB, n, -1)
    if ns < 0:
        return _fail(stats, E_NOSTRUCT, stats[S_END] - 4, R.ENDLIB)
    return E_OK


@jit
def _word(buf, p):
    """The 8 bytes at unsigned offset p as one uint64 (big endian)."""
    w = np.uint64(0)
    for j in range(8):
        w = (w << np.uint64(8)) | np.uint64(buf[p + np.uint64(j)])
    return w


@jit
def _equal(a, p, b, q, ln):
    """a[p:p+ln] == b[q:q+ln], 8 bytes per compare (unsigned indices: no wraparound code;
    byte by byte it cost twice the name hash)."""
    pu = np.uint64(p)
    qu = np.uint64(q)
    n = np.uint64(ln)
    i = np.uint64(0)
    while i + np.uint64(8) <= n:
        if _word(a, pu + i) != _word(b, qu + i):
            return False
        i += np.uint64(8)
    while i < n:
        if a[pu + i] != b[qu + i]:
            return False
        i += np.uint64(1)
    return True


@jit
def _hash(buf, p, ln):
    """64-bit hash of buf[p:p+ln], 8 bytes per multiply."""
    h = np.uint64(1469598103934665603) ^ np.uint64(ln)
    i = 0
    while i + 8 <= ln:
        w = np.uint64(0)
        for j in range(8):
            w = (w << np.uint64(8)) | np.uint64(buf[p + i + j])
        h = (h ^ w) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
        i += 8
    w = np.uint64(0)
    while i < ln:
        w = (w << np.uint64(8)) | np.uint64(buf[p + i])
        i += 1
    h = (h ^ w) * np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(32)
    return h


@jit
def _lookup(buf, p, ln, table, name_pos, name_len, name_hash, nbuf, ncells, insert):
    """Cell id of the name buf[p:p+ln]. Names live compactly in nbuf (cell c at
    nbuf[name_pos[c]:+name_len[c]]). Inserts an absent name as cell ``ncells[0]`` when insert.
    Returns -1 when absent (no insert) and -2 when a capacity is exhausted. Small, so that the
    compiler inlines it (a call passing 7 arrays costs more than the lookup: reference counts);
    the insertion is a call on the rare path."""
    hv = _hash(buf, p, ln)
    h = _find(buf, p, ln, hv, table, name_pos, name_len, name_hash, nbuf)
    if h >= 0:
        return table[h]
    if not insert:
        return -1
    return _insert(buf, p, ln, hv, -h - 1, table, name_pos, name_len, name_hash, nbuf, ncells)


@jit
def _find(buf, p, ln, hv, table, name_pos, name_len, name_hash, nbuf):
    """Slot of table holding the name buf[p:p+ln] (hash hv), or -1 - the free slot where it
    would go. Small enough for the compiler to inline (no per-call reference counting)."""
    mask = table.shape[0] - 1
    h = np.int64(hv & np.uint64(mask))
    while True:
        c = table[h]
        if c < 0:
            return -1 - h
        if name_hash[c] == hv and name_len[c] == ln and _equal(nbuf, name_pos[c], buf, p, ln):
            return h
        h = (h + 1) & mask


@jit
def _insert(buf, p, ln, hv, h, table, name_pos, name_len, name_hash, nbuf, ncells):
    """Add the name buf[p:p+ln] (hash hv, free slot h) as cell ncells[0]; -2 when full."""
    c = ncells[0]
    q = ncells[1]
    if c >= name_pos.shape[0] or q + ln > nbuf.shape[0]:
        return -2
    for i in range(ln):
        nbuf[q + i] = buf[p + i]
    table[h] = c
    name_pos[c] = q
    name_len[c] = ln
    name_hash[c] = hv
    ncells[0] = c + 1
    ncells[1] = q + ln
    return c


@jit
def _names(buf, s_name, s_namelen, s_bgn, table, name_pos, name_len, name_hash, nbuf, ncells,
           err):
    """Insert structure names in file order (cells 0..S-1). Duplicate -> err = (code, off)."""
    for i in range(s_name.shape[0]):
        before = ncells[0]
        c = _lookup(buf, s_name[i], s_namelen[i], table, name_pos, name_len, name_hash, nbuf,
                    ncells, True)
        if c == -2:
            err[0] = E_RETRY
            return c
        if ncells[0] == before:
            err[0] = E_DUPNAME
            err[1] = s_name[i] - 4
            return c
    return 0


@jit
def _layer_id(key, lay, dt, ltab, lkeys, lacc, nlay, f_all, f_keys, use_filter):
    """Temporary id of (layer, datatype) from an open-addressing table; -1 if filtered out,
    -2 when the table is full."""
    mask = ltab.shape[0] - 1
    h = np.int64((np.uint64(key) * np.uint64(11400714819323198485)) >> np.uint64(40)) & mask
    while True:
        c = ltab[h]
        if c < 0:
            c = nlay[0]
            if c >= lkeys.shape[0]:
                return -2
            ok = 1
            if use_filter:
                ok = 0
                if f_all[lay]:
                    ok = 1
                else:
                    for j in range(f_keys.shape[0]):
                        if f_keys[j] == key:
                            ok = 1
            ltab[h] = c
            lkeys[c] = key
            lacc[c] = ok
            nlay[0] = c + 1
        if lkeys[c] == key:
            return c if lacc[c] else -1
        h = (h + 1) & mask


@jit
def _poly_bbox(vtx, a, b, pb, ip):
    x0 = vtx[a, 0]
    y0 = vtx[a, 1]
    x1 = x0
    y1 = y0
    for v in range(a + 1, b):
        x = vtx[v, 0]
        y = vtx[v, 1]
        if x < x0:
            x0 = x
        if x > x1:
            x1 = x
        if y < y0:
            y0 = y
        if y > y1:
            y1 = y
    pb[ip, 0] = x0
    pb[ip, 1] = y0
    pb[ip, 2] = x1
    pb[ip, 3] = y1


@jit
def _square_box(xs, ys, n, w, b_ext, e_ext, rx, ry, hull):
    """KLayout's bbox of a round-ended path (``db::path::box``): the bbox of the hull built with
    square ends of the same extensions, not of the rounded polygon. Selection ("touching") uses
    this box, so for round-ended paths the stored vertices may lie outside poly_bbox (slanted
    ends: the box is larger; custom negative extensions: a few vertices beyond it). Uses hull
    as scratch. Returns (x0, y0, x1, y1), not clamped."""
    k = segment_hull(xs[0], ys[0], xs[1], ys[1], w, b_ext, e_ext, hull) if n == 2 else 0
    if k == 0:
        k = path_hull(xs, ys, n, w, b_ext, e_ext, False, rx, ry, hull, 0)
    x0 = hull[0, 0]
    y0 = hull[0, 1]
    x1 = x0
    y1 = y0
    for j in range(1, k):
        x0 = min(x0, hull[j, 0])
        y0 = min(y0, hull[j, 1])
        x1 = max(x1, hull[j, 0])
        y1 = max(y1, hull[j, 1])
    return x0, y0, x1, y1


@jit
def _clamped_box(x0, y0, x1, y1, pb, ip):
    pb[ip, 0] = max(x0, I32MIN)
    pb[ip, 1] = max(y0, I32MIN)
    pb[ip, 2] = min(x1, I32MAX)
    pb[ip, 3] = min(y1, I32MAX)


@jit
def _path2_hull(xs, ys, w, b_ext, e_ext, round_ends, rx, ry, hull, pc_key, pc_pts, pc_n):
    """Hull (into hull[0:k], returns k) of a two-point path that the segment shortcut does not
    take (round ends, slanted), through a direct-mapped memo keyed by (dx, dy, width,
    extensions, round): the construction only ever adds rounded offsets to the path's own
    vertices, so the hull of a translated path is the translated hull, to the bit. The memo
    holds the hull of the path moved to the origin, and for round ends its square-ended box
    (pc_key[slot, 6:10]). Returns k * PC_SLOTS + slot."""
    x0 = xs[0]
    y0 = ys[0]
    dx = xs[1] - x0
    dy = ys[1] - y0
    r = 1 if round_ends else 0
    hv = (np.uint64(dx) * np.uint64(0x9E3779B97F4A7C15)
          ^ np.uint64(dy) * np.uint64(0xC2B2AE3D27D4EB4F)
          ^ np.uint64(w) * np.uint64(0x165667B19E3779F9)
          ^ np.uint64(b_ext) * np.uint64(0x27D4EB2F165667C5)
          ^ np.uint64(e_ext) * np.uint64(0x94D049BB133111EB) ^ np.uint64(r))
    slot = np.int64((hv >> np.uint64(29)) & np.uint64(PC_SLOTS - 1))
    k = pc_n[slot]
    if not (k > 0 and pc_key[slot, 0] == dx and pc_key[slot, 1] == dy and pc_key[slot, 2] == w
            and pc_key[slot, 3] == b_ext and pc_key[slot, 4] == e_ext and pc_key[slot, 5] == r):
        xs[0] = 0
        ys[0] = 0
        xs[1] = dx
        ys[1] = dy
        if round_ends:
            q0, q1, q2, q3 = _square_box(xs, ys, 2, w, b_ext, e_ext, rx, ry, hull)
            pc_key[slot, 6] = q0
            pc_key[slot, 7] = q1
            pc_key[slot, 8] = q2
            pc_key[slot, 9] = q3
        k = path_hull(xs, ys, 2, w, b_ext, e_ext, round_ends, rx, ry, hull, 0)
        xs[0] = x0
        ys[0] = y0
        xs[1] = x0 + dx
        ys[1] = y0 + dy
        if k > pc_pts.shape[1]:       # never for two points; no memo then
            pc_n[slot] = 0
            for j in range(k):
                hull[j, 0] += x0
                hull[j, 1] += y0
            return k * PC_SLOTS + slot
        for j in range(k):
            pc_pts[slot, j, 0] = hull[j, 0]
            pc_pts[slot, j, 1] = hull[j, 1]
        pc_key[slot, 0] = dx
        pc_key[slot, 1] = dy
        pc_key[slot, 2] = w
        pc_key[slot, 3] = b_ext
        pc_key[slot, 4] = e_ext
        pc_key[slot, 5] = r
        pc_n[slot] = k
    for j in range(k):
        hull[j, 0] = pc_pts[slot, j, 0] + x0
        hull[j, 1] = pc_pts[slot, j, 1] + y0
    return k * PC_SLOTS + slot


@jit
def _i32u(buf, p):
    """Big-endian int32 at unsigned offset p (unsigned indexing: no negative-index wraparound
    code in the hot loops)."""
    v = ((np.uint32(buf[p]) << np.uint32(24)) | (np.uint32(buf[p + np.uint64(1)]) << np.uint32(16))
         | (np.uint32(buf[p + np.uint64(2)]) << np.uint32(8)) | np.uint32(buf[p + np.uint64(3)]))
    return np.int32(v)


@njit(inline="always")
def _copy_points(buf, q, m, vtx, iv):
    """Copy m big-endian int32 (x, y) points at buf[q:] into vtx[iv:iv + m]; returns their
    bbox (x0, y0, x1, y1)."""
    x0 = _i32u(buf, q)
    y0 = _i32u(buf, q + np.uint64(4))
    x1 = x0
    y1 = y0
    b = np.uint64(iv)
    for j in range(np.uint64(m)):
        qj = q + np.uint64(8) * j
        x = _i32u(buf, qj)
        y = _i32u(buf, qj + np.uint64(4))
        vtx[b + j, 0] = x
        vtx[b + j, 1] = y
        x0 = min(x0, x)
        x1 = max(x1, x)
        y0 = min(y0, y)
        y1 = max(y1, y)
    return x0, y0, x1, y1


@jit
def _boundary_run(buf, pos, end, st, ltab, lkeys, lacc, nlay, f_all, f_keys, use_filter, vtx,
                  poly_bbox, poly_vtx_blk, poly_vtx_rel, poly_layer, poly_kind):
    """Fast path of _load: consecutive BOUNDARY elements of the common shape (BOUNDARY LAYER
    DATATYPE XY ENDEL, one header word each; the scan validated this record chain and counted
    the points), from pos until another element or ``end``, in one loop without calls. A
    4-point polygon (closing point dropped) is checked for an axis-parallel rectangle from the
    coordinates read, and then stored as its bbox alone. st = [ip, iv, last layer key, its id,
    n skipped (< 3 points), error]: read and updated; error 1 = layer table full at the
    returned position. Returns the position of the first record not taken."""
    ip = st[0]
    iv = st[1]
    last_key = st[2]
    last_lid = st[3]
    skipped = st[4]
    blk_mask = (1 << VTX_BLOCK_SHIFT) - 1
    while True:
        p1 = np.uint64(pos + 4)
        p2 = p1 + np.uint64(6)
        p3 = p2 + np.uint64(6)
        if pos + 20 > end:
            break
        if (_u32u(buf, np.uint64(pos)) & W_MASK) != W_BOUNDARY or \
                (_u32u(buf, p1) & W_MASK) != W_LAYER or (_u32u(buf, p2) & W_MASK) != W_DATATYPE \
                or buf[p3 + np.uint64(2)] != R.XY:
            break
        lx = (np.int64(buf[p3]) << 8) | np.int64(buf[p3 + np.uint64(1)])
        p4 = np.int64(p3) + lx
        if p4 + 4 > end or (_u32u(buf, np.uint64(p4)) & W_MASK) != W_ENDEL:
            break
        lay = (np.int64(buf[p1 + np.uint64(4)]) << 8) | np.int64(buf[p1 + np.uint64(5)])
        dt = (np.int64(buf[p2 + np.uint64(4)]) << 8) | np.int64(buf[p2 + np.uint64(5)])
        key = lay * 65536 + dt
        if key != last_key:
            lid = _layer_id(key, lay, dt, ltab, lkeys, lacc, nlay, f_all, f_keys, use_filter)
            if lid == -2:
                st[5] = 1
                break
            last_key = key
            last_lid = lid
        pos = p4 + 4
        if last_lid < 0:
            continue
        q = p3 + np.uint64(4)
        m = (lx - 4) >> 3
        last = q + np.uint64(8 * (m - 1))
        x0 = _i32u(buf, q)
        y0 = _i32u(buf, q + np.uint64(4))
        if m > 1 and x0 == _i32u(buf, last) and y0 == _i32u(buf, last + np.uint64(4)):
            m -= 1
        if m < 3:
            skipped += 1
            continue
        if m == 4:
            x1 = _i32u(buf, q + np.uint64(8))
            y1 = _i32u(buf, q + np.uint64(12))
            x2 = _i32u(buf, q + np.uint64(16))
            y2 = _i32u(buf, q + np.uint64(20))
            x3 = _i32u(buf, q + np.uint64(24))
            y3 = _i32u(buf, q + np.uint64(28))
            rect = (x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0) or \
                (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0)
            if not rect:
                b = np.uint64(iv)
                vtx[b, 0] = x0
                vtx[b, 1] = y0
                vtx[b + np.uint64(1), 0] = x1
                vtx[b + np.uint64(1), 1] = y1
                vtx[b + np.uint64(2), 0] = x2
                vtx[b + np.uint64(2), 1] = y2
                vtx[b + np.uint64(3), 0] = x3
                vtx[b + np.uint64(3), 1] = y3
                iv += 4
            bx0 = min(min(x0, x1), min(x2, x3))
            bx1 = max(max(x0, x1), max(x2, x3))
            by0 = min(min(y0, y1), min(y2, y3))
            by1 = max(max(y0, y1), max(y2, y3))
        else:
            bx0, by0, bx1, by1 = _copy_points(buf, q, m, vtx, iv)
            iv += m
        u = np.uint64(ip)
        poly_bbox[u, 0] = bx0
        poly_bbox[u, 1] = by0
        poly_bbox[u, 2] = bx1
        poly_bbox[u, 3] = by1
        poly_layer[u] = last_lid
        poly_kind[u] = KIND_BOUNDARY
        ip += 1
        bi = np.uint64(ip >> VTX_BLOCK_SHIFT)
        if (ip & blk_mask) == 0:
            poly_vtx_blk[bi] = iv
        poly_vtx_rel[np.uint64(ip)] = np.uint32(iv - poly_vtx_blk[bi])
    st[0] = ip
    st[1] = iv
    st[2] = last_key
    st[3] = last_lid
    st[4] = skipped
    return pos



@jit
def _store_boundary(buf, xy, nxy, vtx, iv, poly_bbox, ip):
    """BOUNDARY points (closing point dropped) into vtx[iv:], bbox into poly_bbox[ip].
    Returns the new vertex count (unchanged for an axis-parallel rectangle, which is stored as
    its bbox alone), or -1 when fewer than 3 points remain (nothing stored)."""
    m = nxy
    p0 = np.uint64(xy)
    last = np.uint64(xy + 8 * (m - 1))
    if m > 1 and _i32u(buf, p0) == _i32u(buf, last) and \
            _i32u(buf, p0 + np.uint64(4)) == _i32u(buf, last + np.uint64(4)):
        m -= 1
    if m < 3:
        return -1
    x0, y0, x1, y1 = _copy_points(buf, p0, m, vtx, iv)
    ipu = np.uint64(ip)
    poly_bbox[ipu, 0] = x0
    poly_bbox[ipu, 1] = y0
    poly_bbox[ipu, 2] = x1
    poly_bbox[ipu, 3] = y1
    if m == 4 and _is_rect(vtx, iv):
        return iv
    return iv + m


@jit
def _is_rect(vtx, a):
    """Are the 4 vertices vtx[a:a+4] an axis-parallel rectangle (edges alternate vertical and
    horizontal)?"""
    b = np.uint64(a)
    b1 = b + np.uint64(1)
    b2 = b + np.uint64(2)
    b3 = b + np.uint64(3)
    if vtx[b, 0] == vtx[b1, 0] and vtx[b1, 1] == vtx[b2, 1] and vtx[b2, 0] == vtx[b3, 0] \
            and vtx[b3, 1] == vtx[b, 1]:
        return True
    return vtx[b, 1] == vtx[b1, 1] and vtx[b1, 0] == vtx[b2, 0] and vtx[b2, 1] == vtx[b3, 1] \
        and vtx[b3, 0] == vtx[b, 0]


@jit
def _set_off(blk, rel, q, iv):
    """Offset of polygon q's first vertex (two-level, see engine.database)."""
    b = q >> VTX_BLOCK_SHIFT
    if (q & ((1 << VTX_BLOCK_SHIFT) - 1)) == 0:
        blk[b] = iv
    rel[q] = np.uint32(iv - blk[b])


@jit
def _xf_row(mag, angle, reflect, xf_mat, xf_strans, xf_tab, out):
    """Row of the transform (mag, angle, reflect) in xf_mat/xf_strans, added when new (out[9]
    counts rows); an open-addressing hash table xf_tab (-1 = free) finds it. Returns -1 when
    the table is half full (the caller retries with a bigger one)."""
    mask = xf_tab.shape[0] - 1
    rf = 1.0 if reflect else 0.0
    a = angle % 360.0
    h = (np.int64(a * 1000.0) * np.int64(1000003) + np.int64(mag * 1e6) * np.int64(7919)
         + np.int64(rf)) & mask
    while True:
        k = xf_tab[h]
        if k < 0:
            break
        if xf_strans[k, 0] == mag and xf_strans[k, 1] == angle and xf_strans[k, 2] == rf:
            return k
        h = (h + 1) & mask
    k = out[9]
    if 2 * (k + 1) > xf_tab.shape[0] or k >= xf_mat.shape[0]:
        return -1
    out[9] = k + 1
    xf_tab[h] = k
    q = angle / 90.0
    qi = math.floor(q + 0.5)
    if abs(q - qi) <= 1e-9:          # multiples of 90 degrees exactly
        r = int(qi) % 4
        co = 1.0 if r == 0 else (-1.0 if r == 2 else 0.0)
        si = 1.0 if r == 1 else (-1.0 if r == 3 else 0.0)
    else:
        a_r = angle * math.pi / 180.0
        co = math.cos(a_r)
        si = math.sin(a_r)
    f = -1.0 if reflect else 1.0
    xf_mat[k, 0] = mag * co
    xf_mat[k, 1] = -mag * si * f + 0.0
    xf_mat[k, 2] = mag * si
    xf_mat[k, 3] = mag * co * f
    xf_strans[k, 0] = mag
    xf_strans[k, 1] = angle
    xf_strans[k, 2] = rf
    return k


@jit
def _load(buf, s_bgn, s_end, table, name_pos, name_len, name_hash, nbuf, ncells,
          ltab, lkeys, lacc, nlay, f_all, f_keys, use_filter,
          cell_poly_off, cell_ref_off, poly_vtx_blk, poly_vtx_rel, vtx, poly_layer, poly_bbox,
          poly_kind, ref_cell, ref_xf, ref_org, ref_aref, ref_kind, xf_mat, xf_strans, xf_tab,
          aref_cols, aref_rows, aref_colvec, aref_rowvec, xs, ys, rx, ry, hull, pc_key, pc_pts,
          pc_n, out):
    """Pass 3. out: int64[12] = (n polygons, n vertices, n refs, err code, err offset, err record,
    n skipped degenerate boundaries, n zero-width paths, absolute-transform flags seen,
    n transforms (xf rows), n AREFs, 1 when E_RETRY is for a full transform table)."""
    ip = 0
    iv = 0
    ir = 0
    last_key = -1
    last_lid = -1
    last_sname = 0
    last_snamelen = -1
    last_cell = -1
    last_mag = np.nan
    last_angle = np.nan
    last_refl = False
    last_xf = -1
    poly_vtx_blk[0] = 0
    poly_vtx_rel[0] = 0
    st = np.zeros(6, dtype=np.int64)
    for s in range(s_bgn.shape[0]):
        cell_poly_off[s] = ip
        cell_ref_off[s] = ir
        pos = s_bgn[s]
        end = s_end[s]
        kind = K_NONE
        lay = 0
        dt = 0
        pathtype = 0
        width = 0
        bgnx = 0
        endx = 0
        has_bgn = False
        has_end = False
        xy = -1
        nxy = 0
        sname = -1
        snamelen = 0
        strans = 0
        mag = 1.0
        angle = 0.0
        cols = 1
        rows = 1
        while pos < end:
            ln = _u16(buf, pos)
            rt = _byte(buf, pos + 2)
            if kind == K_NONE:
                if rt == R.BOUNDARY and ln == 4:
                    st[0] = ip
                    st[1] = iv
                    st[2] = last_key
                    st[3] = last_lid
                    st[4] = out[6]
                    q = _boundary_run(buf, pos, end, st, ltab, lkeys, lacc, nlay, f_all, f_keys,
                                      use_filter, vtx, poly_bbox, poly_vtx_blk, poly_vtx_rel,
                                      poly_layer, poly_kind)
                    ip = st[0]
                    iv = st[1]
                    last_key = st[2]
                    last_lid = st[3]
                    out[6] = st[4]
                    if st[5]:
                        out[3] = E_LAYERS
                        out[4] = q
                        out[5] = R.BOUNDARY
                        return
                    if q != pos:
                        pos = q
                        continue
                k = _elem_kind(rt)
                if k != K_NONE:
                    kind = k
                    pathtype = 0
                    width = 0
                    has_bgn = False
                    has_end = False
                    xy = -1
                    sname = -1
                    strans = 0
                    mag = 1.0
                    angle = 0.0
                    cols = 1
                    rows = 1
            elif rt == R.XY:
                xy = pos + 4
                nxy = (ln - 4) // 8
            elif rt == R.LAYER:
                lay = _u16(buf, pos + 4)
            elif rt == R.DATATYPE or rt == R.BOXTYPE:
                dt = _u16(buf, pos + 4)
            elif rt == R.PATHTYPE:
                pathtype = _i16(buf, pos + 4)
            elif rt == R.WIDTH:
                width = _i32(buf, pos + 4)
            elif rt == R.BGNEXTN:
                bgnx = _i32(buf, pos + 4)
                has_bgn = True
            elif rt == R.ENDEXTN:
                endx = _i32(buf, pos + 4)
                has_end = True
            elif rt == R.SNAME:
                e = pos + ln
                while e > pos + 4 and buf[e - 1] == 0:
                    e -= 1
                sname = pos + 4
                snamelen = e - pos - 4
            elif rt == R.STRANS:
                strans = _u16(buf, pos + 4)
                if strans & 6:
                    out[8] += 1
            elif rt == R.MAG:
                mag = real8_at(buf, pos + 4)
            elif rt == R.ANGLE:
                angle = real8_at(buf, pos + 4)
            elif rt == R.COLROW:
                cols = _u16(buf, pos + 4)
                rows = _u16(buf, pos + 6)
            elif rt == R.ENDEL:
                if kind == K_BOUNDARY or kind == K_BOX or kind == K_PATH:
                    key = lay * 65536 + dt
                    if key == last_key:
                        lid = last_lid
                    else:
                        lid = _layer_id(key, lay, dt, ltab, lkeys, lacc, nlay, f_all, f_keys,
                                        use_filter)
                        last_key = key
                        last_lid = lid
                    if lid == -2:
                        out[3] = E_LAYERS
                        out[4] = pos
                        out[5] = rt
                        return
                    if lid >= 0:
                        a = iv
                        stored = True
                        if kind == K_BOUNDARY:
                            e = _store_boundary(buf, xy, nxy, vtx, iv, poly_bbox, ip)
                            if e < 0:
                                out[6] += 1
                                stored = False
                            else:
                                iv = e
                        elif kind == K_BOX:
                            x0 = _i32(buf, xy)
                            y0 = _i32(buf, xy + 4)
                            x1 = x0
                            y1 = y0
                            for j in range(1, nxy):
                                x = _i32(buf, xy + 8 * j)
                                y = _i32(buf, xy + 8 * j + 4)
                                x0 = min(x0, x)
                                x1 = max(x1, x)
                                y0 = min(y0, y)
                                y1 = max(y1, y)
                            poly_bbox[ip, 0] = x0      # a rectangle: no vertices
                            poly_bbox[ip, 1] = y0
                            poly_bbox[ip, 2] = x1
                            poly_bbox[ip, 3] = y1
                        else:
                            if pathtype != 0 and pathtype != 1 and pathtype != 2 and pathtype != 4:
                                pathtype = 0
                            w = abs(width)
                            half = width // 2 if width >= 0 else -((-width) // 2)
                            sq = pathtype == 1 or pathtype == 2
                            b_ext = bgnx if has_bgn else (half if sq else 0)
                            e_ext = endx if has_end else (half if sq else 0)
                            if w == 0:
                                out[7] += 1
                                stored = False
                            else:
                                for j in range(nxy):
                                    xs[j] = _i32(buf, xy + 8 * j)
                                    ys[j] = _i32(buf, xy + 8 * j + 4)
                                k = 0
                                slot = -1
                                if nxy == 2 and pathtype != 1 and \
                                        (xs[0] == xs[1]) != (ys[0] == ys[1]):
                                    # segment_hull's rectangle: its box alone, from scalars
                                    q0, q1, q2, q3 = segment_box(xs[0], ys[0], xs[1], ys[1], w,
                                                                 b_ext, e_ext)
                                    if q0 < I32MIN or q2 > I32MAX or q1 < I32MIN or q3 > I32MAX:
                                        out[3] = E_COORD
                                        out[4] = xy - 4
                                        out[5] = R.XY
                                        return
                                    poly_bbox[ip, 0] = q0
                                    poly_bbox[ip, 1] = q1
                                    poly_bbox[ip, 2] = q2
                                    poly_bbox[ip, 3] = q3
                                else:
                                    if nxy == 2:
                                        ks = _path2_hull(xs, ys, w, b_ext, e_ext, pathtype == 1, rx,
                                                         ry, hull, pc_key, pc_pts, pc_n)
                                        k = ks // PC_SLOTS
                                        slot = ks % PC_SLOTS
                                    else:
                                        k = path_hull(xs, ys, nxy, w, b_ext, e_ext, pathtype == 1,
                                                      rx, ry, hull, 0)
                                    if iv + k > vtx.shape[0]:      # cannot happen: scan's bound
                                        out[3] = E_GRAMMAR
                                        out[4] = pos
                                        out[5] = rt
                                        return
                                    for j in range(k):
                                        x = hull[j, 0]
                                        y = hull[j, 1]
                                        if x < I32MIN or x > I32MAX or y < I32MIN or y > I32MAX:
                                            out[3] = E_COORD
                                            out[4] = xy - 4
                                            out[5] = R.XY
                                            return
                                        vtx[iv, 0] = x
                                        vtx[iv, 1] = y
                                        iv += 1
                                    if pathtype == 1 and slot >= 0:   # the memo's box, moved
                                        ox = xs[0]
                                        oy = ys[0]
                                        _clamped_box(pc_key[slot, 6] + ox, pc_key[slot, 7] + oy,
                                                     pc_key[slot, 8] + ox, pc_key[slot, 9] + oy,
                                                     poly_bbox, ip)
                                    elif pathtype == 1:
                                        q0, q1, q2, q3 = _square_box(xs, ys, nxy, w, b_ext, e_ext,
                                                                     rx, ry, hull)
                                        _clamped_box(q0, q1, q2, q3, poly_bbox, ip)
                                    else:
                                        _poly_bbox(vtx, a, iv, poly_bbox, ip)
                                        if k == 4 and _is_rect(vtx, a):
                                            iv = a                 # a rectangle: its bbox
                        if stored:
                            _set_off(poly_vtx_blk, poly_vtx_rel, ip + 1, iv)
                            poly_layer[ip] = lid
                            poly_kind[ip] = KIND_BOUNDARY if kind == K_BOUNDARY else (
                                KIND_BOX if kind == K_BOX else KIND_PATH)
                            ip += 1
                elif kind == K_SREF or kind == K_AREF:
                    if sname < 0:
                        out[3] = E_NOSNAME
                        out[4] = pos
                        out[5] = rt
                        return
                    if snamelen == 0:
                        out[3] = E_EMPTYNAME
                        out[4] = sname - 4
                        out[5] = R.SNAME
                        return
                    if snamelen == last_snamelen and _equal(buf, sname, buf, last_sname, snamelen):
                        c = last_cell
                    else:
                        hv = _hash(buf, sname, snamelen)     # _lookup, with _find inlined
                        h = _find(buf, sname, snamelen, hv, table, name_pos, name_len, name_hash,
                                  nbuf)
                        if h >= 0:
                            c = table[h]
                        else:
                            c = _insert(buf, sname, snamelen, hv, -1 - h, table, name_pos,
                                        name_len, name_hash, nbuf, ncells)
                        last_sname = sname
                        last_snamelen = snamelen
                        last_cell = c
                    if c == -2:
                        out[3] = E_RETRY
                        return
                    if not (np.isfinite(mag) and np.isfinite(angle) and abs(mag) < 1e9):
                        out[3] = E_BADREAL
                        out[4] = pos
                        out[5] = rt
                        return
                    reflect = (strans & 0x8000) != 0
                    if mag == last_mag and angle == last_angle and reflect == last_refl:
                        xf = last_xf
                    else:
                        xf = _xf_row(mag, angle, reflect, xf_mat, xf_strans, xf_tab, out)
                        if xf < 0:
                            out[3] = E_RETRY
                            out[11] = 1
                            return
                        last_mag = mag
                        last_angle = angle
                        last_refl = reflect
                        last_xf = xf
                    tx = _i32(buf, xy)
                    ty = _i32(buf, xy + 4)
                    ref_cell[ir] = c
                    ref_xf[ir] = xf
                    ref_org[ir, 0] = tx
                    ref_org[ir, 1] = ty
                    if kind == K_AREF:
                        cx = float(_i32(buf, xy + 8)) - tx
                        cy = float(_i32(buf, xy + 12)) - ty
                        rx_ = float(_i32(buf, xy + 16)) - tx
                        ry_ = float(_i32(buf, xy + 20)) - ty
                        nc = max(cols, 1)
                        nr = max(rows, 1)
                        if cx == 0.0 and cy == 0.0:
                            nc = 1
                        if rx_ == 0.0 and ry_ == 0.0:
                            nr = 1
                        ia = out[10]
                        out[10] = ia + 1
                        aref_cols[ia] = nc
                        aref_rows[ia] = nr
                        aref_colvec[ia, 0] = cx / max(cols, 1)
                        aref_colvec[ia, 1] = cy / max(cols, 1)
                        aref_rowvec[ia, 0] = rx_ / max(rows, 1)
                        aref_rowvec[ia, 1] = ry_ / max(rows, 1)
                        ref_aref[ir] = ia
                        ref_kind[ir] = KIND_AREF
                    else:
                        ref_aref[ir] = -1
                        ref_kind[ir] = KIND_SREF
                    ir += 1
                kind = K_NONE
            pos += ln
    cell_poly_off[s_bgn.shape[0]] = ip
    cell_ref_off[s_bgn.shape[0]] = ir
    out[0] = ip
    out[1] = iv
    out[2] = ir


@jit
def _rnd(v):
    """KLayout's rounding to the grid: half away from zero."""
    if v > 0:
        return math.floor(v + 0.5)
    return math.ceil(v - 0.5)


@jit
def _corner_box(m0, m1, m2, m3, tx, ty, b0, b1, b2, b3):
    """Box of the 4 corners of (b0, b1, b2, b3) under the matrix (m0 m1; m2 m3) and the shift
    (tx, ty), each corner rounded to the grid. Scalars only (inlined: no per-call array
    arguments). Returns (x0, y0, x1, y1) as floats."""
    x0 = np.inf
    y0 = np.inf
    x1 = -np.inf
    y1 = -np.inf
    for ci in range(4):
        px = float(b0) if (ci & 1) == 0 else float(b2)
        py = float(b1) if (ci & 2) == 0 else float(b3)
        qx = _rnd(m0 * px + m1 * py + tx)
        qy = _rnd(m2 * px + m3 * py + ty)
        x0 = min(x0, qx)
        y0 = min(y0, qy)
        x1 = max(x1, qx)
        y1 = max(y1, qy)
    return x0, y0, x1, y1


@jit
def _small_ints(m0, m1, m2, m3):
    """Are the matrix entries integers of magnitude <= 1024 (90-degree multiples, integer
    magnification)? Then _corner_box's arithmetic is exact and _int_box gives its result."""
    return (m0 == math.floor(m0) and m1 == math.floor(m1) and m2 == math.floor(m2)
            and m3 == math.floor(m3) and max(abs(m0), abs(m1), abs(m2), abs(m3)) <= 1024.0)


@jit
def _int_box(m0, m1, m2, m3, tx, ty, b0, b1, b2, b3):
    """_corner_box for an integer matrix, in integers: x' = m0 x + m1 y + tx is separable over
    the box's corners, so its range is tx + [min, max](m0 b0, m0 b2) + [min, max](m1 b1, m1 b3)
    (and y' alike); every value is exact (the products stay far below 2**53)."""
    xa = min(m0 * b0, m0 * b2) + min(m1 * b1, m1 * b3)
    xb = max(m0 * b0, m0 * b2) + max(m1 * b1, m1 * b3)
    ya = min(m2 * b0, m2 * b2) + min(m3 * b1, m3 * b3)
    yb = max(m2 * b0, m2 * b2) + max(m3 * b1, m3 * b3)
    return float(tx + xa), float(ty + ya), float(tx + xb), float(ty + yb)


@jit
def _lattice_shift(aref_cols, aref_rows, aref_colvec, aref_rowvec, ia):
    """Smallest and largest displacement (dx0, dy0, dx1, dy1) over the 4 corner copies of AREF
    ia's lattice, each rounded to the grid (KLayout's array bbox)."""
    cols = aref_cols[ia]
    rows = aref_rows[ia]
    dx0 = 0.0
    dy0 = 0.0
    dx1 = 0.0
    dy1 = 0.0
    for li in range(1, 4):
        i = 0 if (li & 1) == 0 else cols - 1
        j = 0 if (li & 2) == 0 else rows - 1
        dx = _rnd(i * aref_colvec[ia, 0] + j * aref_rowvec[ia, 0])
        dy = _rnd(i * aref_colvec[ia, 1] + j * aref_rowvec[ia, 1])
        dx0 = min(dx0, dx)
        dy0 = min(dy0, dy)
        dx1 = max(dx1, dx)
        dy1 = max(dy1, dy)
    return dx0, dy0, dx1, dy1


@jit
def _bboxes(ncell, cell_poly_off, cell_ref_off, poly_bbox, ref_cell, xf_mat, ref_xf, ref_org,
            ref_aref, aref_cols, aref_rows, aref_colvec, aref_rowvec, cell_bbox, cell_own_bbox,
            ref_bbox, color, stack, order):
    """Bottom-up bboxes. A post-order DFS (iterative, explicit stack) gives children before
    parents; then each cell's placements (contiguous rows) are boxed from the children's final
    bboxes. Returns the number of cells ordered, or -1 on a reference cycle."""
    big = BIG
    for c in range(ncell):
        x0 = big
        y0 = big
        x1 = -big
        y1 = -big
        for p in range(np.uint64(cell_poly_off[c]), np.uint64(cell_poly_off[c + 1])):
            x0 = min(x0, np.int64(poly_bbox[p, 0]))
            y0 = min(y0, np.int64(poly_bbox[p, 1]))
            x1 = max(x1, np.int64(poly_bbox[p, 2]))
            y1 = max(y1, np.int64(poly_bbox[p, 3]))
        cell_own_bbox[c, 0] = x0
        cell_own_bbox[c, 1] = y0
        cell_own_bbox[c, 2] = x1
        cell_own_bbox[c, 3] = y1
        color[c] = 0
    # post-order DFS: stack holds (cell, next ref row) pairs
    n = 0
    for root in range(ncell):
        if color[root] != 0:
            continue
        sp = 0
        stack[0, 0] = root
        stack[0, 1] = cell_ref_off[root]
        color[root] = 1
        while sp >= 0:
            c = stack[sp, 0]
            r = stack[sp, 1]
            if r >= cell_ref_off[c + 1]:
                color[c] = 2
                order[n] = c
                n += 1
                sp -= 1
                continue
            stack[sp, 1] = r + 1
            ch = ref_cell[r]
            if color[ch] == 1:
                return -1
            if color[ch] == 0:
                color[ch] = 1
                sp += 1
                stack[sp, 0] = ch
                stack[sp, 1] = cell_ref_off[ch]
    for k in range(n):
        c = order[k]
        x0 = cell_own_bbox[c, 0]
        y0 = cell_own_bbox[c, 1]
        x1 = cell_own_bbox[c, 2]
        y1 = cell_own_bbox[c, 3]
        for r in range(np.uint64(cell_ref_off[c]), np.uint64(cell_ref_off[c + 1])):
            ch = ref_cell[r]
            b0 = cell_bbox[ch, 0]
            b1 = cell_bbox[ch, 1]
            b2 = cell_bbox[ch, 2]
            b3 = cell_bbox[ch, 3]
            if b0 > b2:
                ref_bbox[r, 0] = big
                ref_bbox[r, 1] = big
                ref_bbox[r, 2] = -big
                ref_bbox[r, 3] = -big
            else:
                # enclosing box of placement r (all lattice copies): the child's 4 corners
                # transformed and rounded, moved by the 4 rounded lattice corner displacements
                x = np.uint64(ref_xf[r])
                m0 = xf_mat[x, 0]
                m1 = xf_mat[x, 1]
                m2 = xf_mat[x, 2]
                m3 = xf_mat[x, 3]
                small = max(abs(b0), abs(b1), abs(b2), abs(b3)) < 1 << 40
                if small and _small_ints(m0, m1, m2, m3):
                    q0, q1, q2, q3 = _int_box(np.int64(m0), np.int64(m1), np.int64(m2),
                                              np.int64(m3), np.int64(ref_org[r, 0]),
                                              np.int64(ref_org[r, 1]), b0, b1, b2, b3)
                else:
                    q0, q1, q2, q3 = _corner_box(m0, m1, m2, m3, float(ref_org[r, 0]),
                                                 float(ref_org[r, 1]), b0, b1, b2, b3)
                ia = ref_aref[r]
                if ia >= 0 and (aref_cols[ia] > 1 or aref_rows[ia] > 1):
                    d0, d1, d2, d3 = _lattice_shift(aref_cols, aref_rows, aref_colvec,
                                                    aref_rowvec, ia)
                    q0 += d0
                    q1 += d1
                    q2 += d2
                    q3 += d3
                i0 = np.int64(q0)
                i1 = np.int64(q1)
                i2 = np.int64(q2)
                i3 = np.int64(q3)
                ref_bbox[r, 0] = i0
                ref_bbox[r, 1] = i1
                ref_bbox[r, 2] = i2
                ref_bbox[r, 3] = i3
                x0 = min(x0, i0)
                y0 = min(y0, i1)
                x1 = max(x1, i2)
                y1 = max(y1, i3)
        cell_bbox[c, 0] = x0
        cell_bbox[c, 1] = y0
        cell_bbox[c, 2] = x1
        cell_bbox[c, 3] = y1
    return n


@jit
def _count_rows(rows, counts):
    for i in range(rows.shape[0]):
        counts[rows[i]] += 1


@jit
def _remap_rows(rows, remap, out):
    for i in range(rows.shape[0]):
        out[i] = remap[rows[i]]


# --------------------------------------------------------------------------------------------
def _open_bytes(path: str):
    """uint8 view of the GDSII stream: the mapped file, or the decompressed gzip in memory."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                data = f.read()
        except (OSError, EOFError, zlib.error) as e:
            raise ClipmillError(f"bad gzip stream: {e}", file=path) from None
        return np.frombuffer(data, dtype=np.uint8)
    if os.path.getsize(path) == 0:
        raise ClipmillError("empty file", file=path, offset=0)
    return np.memmap(path, dtype=np.uint8, mode="r")


def _raise(code, off, rt, path, extra=""):
    rec = None if rt is None or rt < 0 else R.name(rt)
    msg = MESSAGES.get(int(code), f"error {code}") + extra
    raise ClipmillError(msg, file=path, offset=None if off is None else int(off), record=rec)


def _filter_tables(layers):
    f_all = np.zeros(65536, dtype=np.uint8)
    keys = []
    if layers is not None:
        for lay, dt in parse_layers(layers):
            if dt == ANY:
                f_all[lay] = 1
            else:
                keys.append(lay * 65536 + dt)
    return f_all, np.array(sorted(keys) or [-1], dtype=np.int64)


def _pow2(n: int) -> int:
    return 1 << max(4, int(n - 1).bit_length())


def load_gdsii(path, layers=None):
    """Read a GDSII file (``.gds`` or gzip) into DBLoad arrays. Returns (arrays, meta)."""
    path = os.fspath(path)
    t0 = time.perf_counter()
    if not os.path.exists(path):
        raise ClipmillError("no such file", file=path)
    try:
        file_bytes = os.path.getsize(path)
        buf = _open_bytes(path)
    except OSError as e:
        raise ClipmillError(f"cannot read: {e.strerror or e}", file=path) from None
    n = buf.shape[0]
    warnings = []

    # pass 1: scan
    cap = max(1 << 12, n // 4096)   # structures; rescanned with the exact count if more
    while True:
        stats = np.zeros(NSTATS, dtype=np.int64)
        s = [np.zeros(cap, dtype=np.int64) for _ in range(7)]
        code = _scan(buf, R.KNOWN, stats, *s)
        if code != E_OK:
            _raise(code, stats[S_ERROFF], stats[S_ERRREC], path)
        ns = int(stats[S_NSTRUCT])
        if ns <= cap:
            break
        cap = ns
    s_bgn, s_name, s_namelen, s_end, s_npoly, s_nvtx, s_nref = (a[:ns] for a in s)
    # KLayout's own meta-data structure is not a cell (KLayout hides it too)
    ctx = [i for i in np.flatnonzero(s_namelen == len(CONTEXT_CELL))
           if bytes(buf[s_name[i]:s_name[i] + len(CONTEXT_CELL)]) == CONTEXT_CELL]
    if ctx:
        keep = np.ones(ns, dtype=bool)
        keep[ctx] = False
        s_bgn, s_name, s_namelen, s_end, s_npoly, s_nvtx, s_nref = (
            a[keep] for a in (s_bgn, s_name, s_namelen, s_end, s_npoly, s_nvtx, s_nref))
        ns = int(keep.sum())
        if ns == 0:
            _raise(E_NOSTRUCT, int(stats[S_END]) - 4, R.ENDLIB, path)
    end = int(stats[S_END])
    if end < n:
        tail = buf[end:]
        if tail.any():
            warnings.append(f"{n - end} bytes after ENDLIB that are not zero padding were ignored")
    t1 = time.perf_counter()

    # units, library name
    if stats[S_UNITS] == 0:
        raise ClipmillError("library without UNITS", file=path)
    u = int(stats[S_UNITS])
    user_unit = float(real8_at(buf, u))
    dbu_m = float(real8_at(buf, u + 8))
    if not (dbu_m > 0 and math.isfinite(dbu_m)):
        raise ClipmillError(f"bad database unit {dbu_m} m in UNITS", file=path, offset=u - 4,
                            record="UNITS")
    ln = int(stats[S_LIBNAMELEN])
    libname = bytes(buf[int(stats[S_LIBNAME]):int(stats[S_LIBNAME]) + ln]).decode("latin-1")

    # pass 2: names
    nref = int(s_nref.sum())
    npoly = int(s_npoly.sum())
    nvtx = int(s_nvtx.sum())
    extra = min(nref, 1 << 16)
    xcap = 1 << 10                  # transform hash table slots (grown when half full)
    while True:
        ccap = ns + extra
        table = np.full(_pow2(2 * ccap + 1), -1, dtype=np.int32)
        name_pos = np.zeros(ccap, dtype=np.int64)
        name_len = np.zeros(ccap, dtype=np.int64)
        name_hash = np.zeros(ccap, dtype=np.uint64)
        nbuf = np.empty(int(s_namelen.sum()) + 64 * extra + 4096, dtype=np.uint8)
        ncells = np.zeros(2, dtype=np.int64)
        err = np.zeros(2, dtype=np.int64)
        _names(buf, s_name, s_namelen, s_bgn, table, name_pos, name_len, name_hash, nbuf,
               ncells, err)
        if err[0] == E_RETRY:
            extra = max(2 * extra, 1024)
            continue
        if err[0]:
            dup = bytes(buf[int(err[1]) + 4:int(err[1]) + 4 + 64]).split(b"\0")[0]
            _raise(err[0], err[1], R.STRNAME, path, f": {dup.decode('latin-1')!r}")

        # pass 3: load
        ltab = np.full(1 << 21, -1, dtype=np.int32)
        lkeys = np.zeros(1_000_000, dtype=np.int64)
        lacc = np.zeros(1_000_000, dtype=np.uint8)
        nlay = np.zeros(1, dtype=np.int64)
        f_all, f_keys = _filter_tables(layers)
        cell_poly_off = np.zeros(ns + 1, dtype=np.int64)
        cell_ref_off = np.zeros(ns + 1, dtype=np.int64)
        poly_vtx_blk = np.empty((npoly >> VTX_BLOCK_SHIFT) + 1, dtype=np.int64)
        poly_vtx_rel = np.empty(npoly + 1, dtype=np.uint32)
        vtx = np.empty((nvtx, 2), dtype=np.int32)
        poly_layer = np.empty(npoly, dtype=np.int32)
        poly_bbox = np.empty((npoly, 4), dtype=np.int32)
        poly_kind = np.empty(npoly, dtype=np.uint8)
        ref_cell = np.empty(nref, dtype=np.int32)
        ref_xf = np.empty(nref, dtype=np.int32)
        ref_org = np.empty((nref, 2), dtype=np.int32)
        ref_aref = np.empty(nref, dtype=np.int32)
        ref_kind = np.empty(nref, dtype=np.uint8)
        # distinct transforms: rows only written when new (untouched pages cost nothing)
        xf_mat = np.empty((nref, 4), dtype=np.float64)
        xf_strans = np.empty((nref, 3), dtype=np.float64)
        xf_tab = np.full(_pow2(xcap), -1, dtype=np.int32)
        narefs = int(stats[S_NAREF])
        aref_cols = np.empty(narefs, dtype=np.int32)
        aref_rows = np.empty(narefs, dtype=np.int32)
        aref_colvec = np.empty((narefs, 2), dtype=np.float64)
        aref_rowvec = np.empty((narefs, 2), dtype=np.float64)
        xs = np.empty(MAX_XY + 1, dtype=np.int64)
        ys = np.empty(MAX_XY + 1, dtype=np.int64)
        rx = np.empty(MAX_XY + 1, dtype=np.int64)
        ry = np.empty(MAX_XY + 1, dtype=np.int64)
        hull = np.empty((6 * (MAX_XY + 1) + 2 * SEMI_CIRCLE_POINTS + 8, 2), dtype=np.int64)
        pc_key = np.empty((PC_SLOTS, 10), dtype=np.int64)
        pc_pts = np.empty((PC_SLOTS, PC_POINTS, 2), dtype=np.int64)
        pc_n = np.zeros(PC_SLOTS, dtype=np.int64)
        out = np.zeros(12, dtype=np.int64)
        ta = time.perf_counter()
        _load(buf, s_bgn, s_end, table, name_pos, name_len, name_hash, nbuf, ncells,
              ltab, lkeys, lacc, nlay, f_all, f_keys, layers is not None,
              cell_poly_off, cell_ref_off, poly_vtx_blk, poly_vtx_rel, vtx, poly_layer, poly_bbox,
              poly_kind, ref_cell, ref_xf, ref_org, ref_aref, ref_kind, xf_mat, xf_strans, xf_tab,
              aref_cols, aref_rows, aref_colvec, aref_rowvec, xs, ys, rx, ry, hull, pc_key, pc_pts,
              pc_n, out)
        if out[3] == E_RETRY and out[11] == 1:      # transform table full
            xcap *= 8
            continue
        if out[3] == E_RETRY:
            extra = max(2 * extra, min(nref, 1 << 20), 1024)
            continue
        if out[3]:
            _raise(out[3], out[4], out[5], path)
        break
    t2 = time.perf_counter()
    t_decode = t2 - ta
    P, V = int(out[0]), int(out[1])
    C = int(ncells[0])
    if out[6]:
        warnings.append(f"{int(out[6])} BOUNDARY elements with fewer than 3 points ignored")
    if out[7]:
        warnings.append(f"{int(out[7])} zero-width PATH elements produce no polygon")
    if out[8]:
        warnings.append("absolute magnification/angle flags in STRANS are ignored (as KLayout)")

    # cells: names, undefined ones
    name_off = np.zeros(C + 1, dtype=np.int64)
    np.cumsum(name_len[:C], out=name_off[1:])
    cell_name_data = nbuf[:int(ncells[1])].copy()   # names were appended in cell order
    cell_poly_off = np.concatenate([cell_poly_off, np.full(C - ns, P, dtype=np.int64)])
    cell_ref_off = np.concatenate([cell_ref_off, np.full(C - ns, nref, dtype=np.int64)])
    cell_defined = np.zeros(C, dtype=np.uint8)
    cell_defined[:ns] = 1
    cell_offset = np.full(C, -1, dtype=np.int64)
    cell_offset[:ns] = s_bgn
    names = [bytes(cell_name_data[name_off[i]:name_off[i + 1]]).decode("latin-1")
             for i in range(C)]
    undefined = names[ns:]
    if undefined:
        shown = ", ".join(undefined[:10]) + (" ..." if len(undefined) > 10 else "")
        warnings.append(f"{len(undefined)} referenced cells are not defined and are kept empty: "
                        f"{shown}")

    # layers: sort the (layer, datatype) table, renumber polygons
    L = int(nlay[0])
    keys = lkeys[:L]
    poly_layer = poly_layer[:P]
    used = np.zeros(L, dtype=np.int64)
    _count_rows(poly_layer, used)
    used = used > 0
    order = np.argsort(keys[used], kind="stable")
    remap = np.full(L, -1, dtype=np.int32)
    remap[np.flatnonzero(used)[order]] = np.arange(int(used.sum()), dtype=np.int32)
    if used.sum() > np.iinfo(np.uint16).max:
        raise ClipmillError(f"{int(used.sum())} distinct layer/datatype pairs with geometry: more "
                            "than the 65535 the database holds (select layers with layers=)",
                            file=path)
    poly_layer16 = np.empty(P, dtype=np.uint16)
    _remap_rows(poly_layer, remap, poly_layer16)
    poly_layer = poly_layer16
    sk = keys[used][order]
    layer_ld = np.stack([sk // 65536, sk % 65536], axis=1).astype(np.int32).reshape(-1, 2)

    # bboxes
    nr = nref
    cell_bbox = np.empty((C, 4), dtype=np.int64)
    cell_own_bbox = np.empty((C, 4), dtype=np.int64)
    ref_bbox = np.empty((nr, 4), dtype=np.int64)
    X, A = int(out[9]), int(out[10])
    xf_mat, xf_strans = xf_mat[:X].copy(), xf_strans[:X].copy()
    done = _bboxes(C, cell_poly_off, cell_ref_off, poly_bbox[:P], ref_cell, xf_mat, ref_xf,
                   ref_org, ref_aref, aref_cols, aref_rows, aref_colvec, aref_rowvec, cell_bbox,
                   cell_own_bbox, ref_bbox,
                   np.empty(C, np.int8), np.empty((C + 1, 2), np.int64), np.empty(C, np.int64))
    if done < C:
        _raise_cycle(cell_ref_off, ref_cell, names, s_bgn, path)
    referenced = np.zeros(C, dtype=bool)
    referenced[ref_cell] = True
    tops = np.flatnonzero(~referenced)
    tops = np.array(sorted(tops.tolist(), key=lambda c: names[c]), dtype=np.int32)
    t3 = time.perf_counter()

    arrays = {
        "cell_name_data": cell_name_data, "cell_name_off": name_off,
        "cell_poly_off": cell_poly_off, "cell_ref_off": cell_ref_off,
        "cell_bbox": cell_bbox, "cell_own_bbox": cell_own_bbox, "cell_defined": cell_defined,
        "cell_offset": cell_offset, "top_cells": tops,
        "poly_vtx_blk": poly_vtx_blk[:(P >> VTX_BLOCK_SHIFT) + 1],
        "poly_vtx_rel": poly_vtx_rel[:P + 1],
        "vtx": vtx[:V], "poly_layer": poly_layer,
        "poly_bbox": poly_bbox[:P], "poly_kind": poly_kind[:P], "layer_ld": layer_ld,
        "ref_cell": ref_cell, "ref_xf": ref_xf, "ref_org": ref_org, "ref_aref": ref_aref,
        "ref_bbox": ref_bbox, "ref_kind": ref_kind, "xf_mat": xf_mat, "xf_strans": xf_strans,
        "aref_cols": aref_cols[:A], "aref_rows": aref_rows[:A], "aref_colvec": aref_colvec[:A],
        "aref_rowvec": aref_rowvec[:A],
    }
    counts = {k: int(stats[i]) for k, i in zip(COUNT_KEYS, (S_NBOUNDARY, S_NPATH, S_NBOX, S_NTEXT,
                                                            S_NNODE, S_NSREF, S_NAREF))}
    meta = {
        "dbu_um": dbu_m * 1e6, "user_unit": user_unit, "dbu_m": dbu_m, "libname": libname,
        "file_bytes": int(file_bytes), "stream_bytes": int(n), "records": int(stats[S_NREC]),
        "counts": counts, "undefined_cells": undefined, "warnings": warnings,
        "seconds": {"scan": t1 - t0, "load": t2 - t1, "hierarchy": t3 - t2,
                    "decode": t_decode},
    }
    return arrays, meta


def _raise_cycle(cell_ref_off, ref_cell, names, s_bgn, path):
    """Find one cycle (iterative DFS) and name it."""
    C = len(names)
    color = np.zeros(C, dtype=np.int8)
    for root in range(C):
        if color[root]:
            continue
        stack = [(root, int(cell_ref_off[root]))]
        color[root] = 1
        while stack:
            c, r = stack[-1]
            if r >= cell_ref_off[c + 1]:
                color[c] = 2
                stack.pop()
                continue
            stack[-1] = (c, r + 1)
            ch = int(ref_cell[r])
            if color[ch] == 1:
                chain = [names[x] for x, _ in stack]
                chain = chain[chain.index(names[ch]):] + [names[ch]]
                raise ClipmillError(MESSAGES[E_CYCLE] + ": " + " -> ".join(chain), file=path,
                                    offset=int(s_bgn[ch]) if ch < len(s_bgn) else None,
                                    record="BGNSTR")
            if color[ch] == 0:
                color[ch] = 1
                stack.append((ch, int(cell_ref_off[ch])))
    raise ClipmillError(MESSAGES[E_CYCLE], file=path)
