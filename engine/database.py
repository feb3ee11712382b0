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
  poly_vtx_off     int64  [P+1]   vertices of polygon p are vtx[off[p]:off[p+1]] (no repeated
                                  closing vertex; at least 3 vertices)
  vtx              int32  [V,2]   x, y
  poly_layer       int32  [P]     row of layer_ld
  poly_bbox        int32  [P,4]   x0,y0,x1,y1: KLayout's shape bbox, the one selection
                                  ("touching") uses: the vertices' bbox, except for round-ended
                                  paths (PATHTYPE 1), whose box is that of the square-ended hull
                                  (as ``db::path::box``); their vertices may lie outside it
  poly_kind        uint8  [P]     KIND_BOUNDARY, KIND_PATH or KIND_BOX (what the file said)

layers
  layer_ld         int32  [L,2]   (layer, datatype), sorted

placements (grouped by parent cell; SREF is an AREF with 1 column and 1 row)
  ref_cell         int32  [R]     child cell
  ref_mat          float64[R,6]   m00, m01, m10, m11, tx, ty: child (x, y) -> parent
                                  (m00*x + m01*y + tx, m10*x + m11*y + ty). GDSII order: reflect
                                  about x first, then magnify, rotate counter-clockwise, translate.
  ref_strans       float64[R,3]   mag, angle in degrees, reflect (0/1), as in the file
  ref_cols         int32  [R]     columns (1 for SREF)
  ref_rows         int32  [R]     rows (1 for SREF)
  ref_colvec       float64[R,2]   displacement between columns, parent coordinates
                                  ((XY[1]-XY[0]) / cols); copy (i, j) is translated by
                                  i*colvec + j*rowvec on top of ref_mat
  ref_rowvec       float64[R,2]   displacement between rows ((XY[2]-XY[0]) / rows)
  ref_bbox         int64  [R,4]   bbox in the parent of all copies (EMPTY_BBOX if child empty)
  ref_kind         uint8  [R]     KIND_SREF or KIND_AREF

meta (JSON in the arena header): dbu_um, user_unit, libname, source {path, size, mtime, hash},
counts {boundary, path, box, text, node, sref, aref}, undefined_cells [names], warnings [str],
layers_filter, seconds {stage: s}, schema SCHEMA_VERSION, and whatever the index adds (index {...}).

Index arrays (written by engine.index into the same arena) start with ``ix_``.
"""
from __future__ import annotations

import numpy as np

SCHEMA_VERSION = 2
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
    "poly_vtx_off": (np.int64, ()),
    "vtx": (np.int32, (2,)),
    "poly_layer": (np.int32, ()),
    "poly_bbox": (np.int32, (4,)),
    "poly_kind": (np.uint8, ()),
    "layer_ld": (np.int32, (2,)),
    "ref_cell": (np.int32, ()),
    "ref_mat": (np.float64, (6,)),
    "ref_strans": (np.float64, (3,)),
    "ref_cols": (np.int32, ()),
    "ref_rows": (np.int32, ()),
    "ref_colvec": (np.float64, (2,)),
    "ref_rowvec": (np.float64, (2,)),
    "ref_bbox": (np.int64, (4,)),
    "ref_kind": (np.uint8, ()),
}


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
    """Attribute access to the schema's arrays of an arena (``db.vtx``, ``db.ref_mat`` ...)."""

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
