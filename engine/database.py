"""DBLoad: the struct-of-arrays layout database, as it lives in an arena.

This module is the contract between the reader (which fills it), the index and exploder (which
read it) and the workers (which attach to it). All coordinates are integer database units (dbu);
``meta["dbu_um"]`` converts to micrometres. Arrays (C cells, P polygons, V vertices, R placements,
L layers, T top cells):

cells
  cell_name_data   uint8  [sum of name lengths]  names, concatenated (ASCII / latin-1 bytes)
  cell_name_off    int64  [C+1]   name of cell c = cell_name_data[off[c]:off[c+1]]
  cell_poly_off    int64  [C+1]   polygons of cell c are rows poly_off[c]:poly_off[c+1]
  cell_ref_off     int64  [C+1]   placements of cell c are rows ref_off[c]:ref_off[c+1]
  cell_bbox        int64  [C,4]   x0,y0,x1,y1 of the cell with everything below it (all layers
                                  loaded); an empty cell has x0 > x1 (EMPTY_BBOX)
  cell_own_bbox    int64  [C,4]   bbox of the cell's own polygons only (EMPTY_BBOX if none)
  cell_defined     uint8  [C]     0 for a cell referenced but never defined (kept empty)
  cell_offset      int64  [C]     byte offset of its BGNSTR in the file (-1 if undefined)
  top_cells        int32  [T]     cells that no placement references, sorted by name

polygons (grouped by cell; within a cell the index builder may reorder them spatially)
  poly_vtx_blk     int64  [P//256+1]  vertex offsets, two levels: the first vertex of polygon p
  poly_vtx_rel     uint32 [P+1]   is vtx[blk[p >> 8] + rel[p]] (``vtx_start``); polygon p has
                                  start(p+1) - start(p) vertices (no repeated closing vertex)
  vtx              int32  [V,2]   x, y
  poly_layer       uint16 [P]     row of layer_ld
  poly_bbox        int32  [P,4]   x0,y0,x1,y1: KLayout's shape bbox, the one selection
                                  ("touching") uses: the vertices' bbox, except for round-ended
                                  paths (PATHTYPE 1), whose box is that of the square-ended hull
                                  (as ``db::path::box``); their vertices may lie outside it
  poly_kind        uint8  [P]     KIND_BOUNDARY, KIND_PATH or KIND_BOX (what the file said)

  A polygon with NO vertices is the axis-parallel rectangle poly_bbox (BOX records, and
  BOUNDARY / PATH elements that are such rectangles: most of a layout), read counter-clockwise
  from (x0, y0); every other polygon has at least 3 vertices. So a rectangle costs 23 bytes
  (bbox 16, rel 4, layer 2, kind 1) where the file spends 64 on it, and the offsets 4 bytes per
  polygon instead of 8 (within a block of 256 polygons the vertex span fits 32 bits: at most
  256 x ~50 000 vertices).

layers
  layer_ld         int32  [L,2]   (layer, datatype), sorted

placements (grouped by parent cell; SREF is an AREF with 1 column and 1 row)
  ref_cell         int32  [R]     child cell
  ref_xf           int32  [R]     row of xf_* (the placement's linear part: most layouts use a
                                  handful of the 8 orientations, so they are shared)
  ref_org          int32  [R,2]   translation (the file's XY; copy (0, 0) is at ref_org)
  ref_aref         int32  [R]     row of aref_* for an AREF, -1 for an SREF
  ref_bbox         int64  [R,4]   bbox in the parent of all copies (EMPTY_BBOX if child empty)
  ref_kind         uint8  [R]     KIND_SREF or KIND_AREF
  The transform child (x, y) -> parent is (m00*x + m01*y + tx, m10*x + m11*y + ty) with
  m = xf_mat[ref_xf], t = ref_org (``ref_matrices`` gives all six numbers per placement).

transforms (X distinct ones, shared by placements)
  xf_mat           float64[X,4]   m00, m01, m10, m11. GDSII order: reflect about x first, then
                                  magnify, rotate counter-clockwise (then translate)
  xf_strans        float64[X,3]   mag, angle in degrees, reflect (0/1), as in the file

arrays (A AREFs)
  aref_cols        int32  [A]     columns
  aref_rows        int32  [A]     rows
  aref_colvec      float64[A,2]   displacement between columns, parent coordinates
                                  ((XY[1]-XY[0]) / cols); copy (i, j) is translated by
                                  i*colvec + j*rowvec on top of the placement's transform
  aref_rowvec      float64[A,2]   displacement between rows ((XY[2]-XY[0]) / rows)

A placement thus costs 53 bytes (an SREF record in the file about 30-40).

meta (JSON in the arena header): dbu_um, user_unit, libname, source {path, size, mtime, hash},
counts {boundary, path, box, text, node, sref, aref}, undefined_cells [names], warnings [str],
layers_filter, seconds {stage: s}, schema SCHEMA_VERSION, and whatever the index adds (index {...}).

Index arrays (written by engine.index into the same arena) start with ``ix_``.
"""
from __future__ import annotations

import numpy as np

from engine.jit import njit

SCHEMA_VERSION = 4
VTX_BLOCK_SHIFT = 8     # 256 polygons per block of poly_vtx_blk
KIND_BOUNDARY, KIND_PATH, KIND_BOX = 0, 1, 2
KIND_SREF, KIND_AREF = 0, 1
EMPTY = np.array([np.iinfo(np.int64).max // 4, np.iinfo(np.int64).max // 4,
                  -(np.iinfo(np.int64).max // 4), -(np.iinfo(np.int64).max // 4)], dtype=np.int64)
EMPTY_BBOX = EMPTY  # x0 > x1 means empty

# name -> (dtype, trailing shape) for every array of the schema (leading dimension varies)
FIELDS = {
    "cell_name_data": (np.uint8, ()),
    "cell_name_off": (np.int64, ()),
    "cell_poly_off": (np.int64, ()),
    "cell_ref_off": (np.int64, ()),
    "cell_bbox": (np.int64, (4,)),
    "cell_own_bbox": (np.int64, (4,)),
    "cell_defined": (np.uint8, ()),
    "cell_offset": (np.int64, ()),
    "top_cells": (np.int32, ()),
    "poly_vtx_blk": (np.int64, ()),
    "poly_vtx_rel": (np.uint32, ()),
    "vtx": (np.int32, (2,)),
    "poly_layer": (np.uint16, ()),
    "poly_bbox": (np.int32, (4,)),
    "poly_kind": (np.uint8, ()),
    "layer_ld": (np.int32, (2,)),
    "ref_cell": (np.int32, ()),
    "ref_xf": (np.int32, ()),
    "ref_org": (np.int32, (2,)),
    "ref_aref": (np.int32, ()),
    "ref_bbox": (np.int64, (4,)),
    "ref_kind": (np.uint8, ()),
    "xf_mat": (np.float64, (4,)),
    "xf_strans": (np.float64, (3,)),
    "aref_cols": (np.int32, ()),
    "aref_rows": (np.int32, ()),
    "aref_colvec": (np.float64, (2,)),
    "aref_rowvec": (np.float64, (2,)),
}


@njit(inline="always")
def vtx_start(blk, rel, p):
    """First vertex row of polygon p (p may be P: the end of the last polygon)."""
    return blk[p >> VTX_BLOCK_SHIFT] + np.int64(rel[p])


def vertex_offsets(arrays) -> np.ndarray:
    """The flat CSR offsets int64[P+1] (vertices of p: vtx[off[p]:off[p+1]]), for tools/tests."""
    rel = arrays["poly_vtx_rel"]
    blk = arrays["poly_vtx_blk"]
    return blk[np.arange(len(rel)) >> VTX_BLOCK_SHIFT] + rel.astype(np.int64)


def offsets_to_blocks(off) -> tuple[np.ndarray, np.ndarray]:
    """(poly_vtx_blk, poly_vtx_rel) from flat offsets int64[P+1]."""
    off = np.asarray(off, dtype=np.int64)
    blk = off[::1 << VTX_BLOCK_SHIFT].copy()
    rel = off - blk[np.arange(len(off)) >> VTX_BLOCK_SHIFT]
    if len(rel) and rel.max(initial=0) > np.iinfo(np.uint32).max:
        raise ValueError("more than 2**32 vertices in one block of polygons")
    return blk, rel.astype(np.uint32)


def polygon_arrays(arrays) -> tuple[np.ndarray, np.ndarray]:
    """Every polygon with explicit vertices, rectangles expanded (counter-clockwise from
    (x0, y0)): (offsets int64[P+1], xy int64[N,2]). For tools and tests, not for hot paths."""
    off = vertex_offsets(arrays)
    vtx = arrays["vtx"]
    bb = arrays["poly_bbox"].astype(np.int64)
    n = np.diff(off)
    rect = n == 0
    cnt = np.where(rect, 4, n)
    new_off = np.zeros(len(off), dtype=np.int64)
    np.cumsum(cnt, out=new_off[1:])
    xy = np.empty((int(new_off[-1]), 2), dtype=np.int64)
    # explicit vertices: position of each stored vertex in the expanded array
    poly_of = np.repeat(np.arange(len(n)), n)
    dst = new_off[:-1][poly_of] + (np.arange(len(vtx)) - off[:-1][poly_of])
    xy[dst] = vtx
    r = np.flatnonzero(rect)
    s = new_off[r]
    for k, (ix, iy) in enumerate(((0, 1), (2, 1), (2, 3), (0, 3))):
        xy[s + k, 0] = bb[r, ix]
        xy[s + k, 1] = bb[r, iy]
    return new_off, xy


def ref_matrices(arrays) -> np.ndarray:
    """float64[R,6] m00, m01, m10, m11, tx, ty of every placement (tools and tests)."""
    m = arrays["xf_mat"][arrays["ref_xf"]]
    return np.concatenate([m.reshape(-1, 4), arrays["ref_org"].astype(np.float64).reshape(-1, 2)],
                          axis=1)


def ref_lattices(arrays):
    """(cols, rows, colvec [R,2], rowvec [R,2]) of every placement; an SREF is 1 x 1 with zero
    vectors (tools and tests)."""
    ra = arrays["ref_aref"]
    R = len(ra)
    cols, rows = np.ones(R, dtype=np.int64), np.ones(R, dtype=np.int64)
    colvec, rowvec = np.zeros((R, 2)), np.zeros((R, 2))
    k = ra >= 0
    cols[k] = arrays["aref_cols"][ra[k]]
    rows[k] = arrays["aref_rows"][ra[k]]
    colvec[k] = arrays["aref_colvec"][ra[k]]
    rowvec[k] = arrays["aref_rowvec"][ra[k]]
    return cols, rows, colvec, rowvec


def placement_arrays(mats, cols, rows, colvec, rowvec, is_aref=None) -> dict:
    """Schema placement arrays from per-placement (R,6) matrices and lattices (one transform row
    per placement, no sharing; for builders outside the reader, e.g. tests from KLayout).
    ``is_aref``: which placements are arrays (default: those with more than one copy)."""
    mats = np.asarray(mats, dtype=np.float64).reshape(-1, 6)
    cols = np.asarray(cols, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    R = len(mats)
    is_a = (cols > 1) | (rows > 1) if is_aref is None else np.asarray(is_aref, dtype=bool)
    aref = np.full(R, -1, dtype=np.int32)
    aref[is_a] = np.arange(int(is_a.sum()), dtype=np.int32)
    mag = np.hypot(mats[:, 0], mats[:, 2])
    refl = (mats[:, 0] * mats[:, 3] - mats[:, 1] * mats[:, 2]) < 0
    return {"ref_xf": np.arange(R, dtype=np.int32),
            "ref_org": np.round(mats[:, 4:6]).astype(np.int32).reshape(-1, 2),
            "ref_aref": aref,
            "xf_mat": np.ascontiguousarray(mats[:, :4]).reshape(-1, 4),
            "xf_strans": np.column_stack([mag, np.degrees(np.arctan2(mats[:, 2], mats[:, 0])),
                                          refl.astype(np.float64)]).reshape(-1, 3),
            "aref_cols": cols[is_a].astype(np.int32), "aref_rows": rows[is_a].astype(np.int32),
            "aref_colvec": np.asarray(colvec, np.float64).reshape(-1, 2)[is_a].reshape(-1, 2),
            "aref_rowvec": np.asarray(rowvec, np.float64).reshape(-1, 2)[is_a].reshape(-1, 2)}


def check_schema(arrays) -> None:
    """Raise ValueError if ``arrays`` (name -> ndarray) does not follow FIELDS."""
    for name, (dtype, tail) in FIELDS.items():
        if name not in arrays:
            raise ValueError(f"database lacks array {name!r}")
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or tuple(a.shape[1:]) != tail:
            raise ValueError(f"array {name!r} is {a.dtype}{a.shape}, schema wants {np.dtype(dtype)}"
                             f"[n{''.join(',' + str(t) for t in tail)}]")


class Database:
    """Attribute access to the schema's arrays of an arena (``db.vtx``, ``db.ref_xf`` ...)."""

    def __init__(self, arena):
        self.arena = arena
        self.meta = arena.meta

    def __getattr__(self, name):
        try:
            return self.__dict__["arena"].arrays[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def ncells(self) -> int:
        return len(self.arena["cell_name_off"]) - 1

    def cell_name(self, c: int) -> str:
        off = self.arena["cell_name_off"]
        return bytes(self.arena["cell_name_data"][off[c]:off[c + 1]]).decode("latin-1")

    def cell_names(self) -> list[str]:
        data = bytes(self.arena["cell_name_data"])
        off = self.arena["cell_name_off"]
        return [data[off[i]:off[i + 1]].decode("latin-1") for i in range(len(off) - 1)]

    def cell_index(self, name: str) -> int:
        """Row of cell ``name`` (dict built once, cached)."""
        cache = self.__dict__.get("_name_index")
        if cache is None:
            cache = {n: i for i, n in enumerate(self.cell_names())}
            self.__dict__["_name_index"] = cache
        return cache[name]
