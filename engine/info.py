"""Layout.info: a JSON-serialisable summary of a loaded layout (what ``clipmill info`` prints)."""
from __future__ import annotations

import numpy as np

from engine.database import vertex_offsets

COUNT_KEYS = ("boundary", "path", "box", "text", "node", "sref", "aref")


def _bbox_um(cell_bbox: np.ndarray, rows, dbu: float):
    """Union of the bboxes of ``rows`` in um, or None when all are empty."""
    if len(rows) == 0:
        return None
    b = cell_bbox[np.asarray(rows, dtype=np.int64)]
    b = b[b[:, 0] <= b[:, 2]]
    if len(b) == 0:
        return None
    return [float(b[:, 0].min()) * dbu, float(b[:, 1].min()) * dbu,
            float(b[:, 2].max()) * dbu, float(b[:, 3].max()) * dbu]


def layout_info(layout) -> dict:
    db = layout.db
    meta = layout.arena.meta
    dbu = float(meta["dbu_um"])
    tops = [int(c) for c in db.top_cells]
    names = db.cell_names()
    arena_bytes = getattr(layout.arena, "nbytes", None)
    if arena_bytes is None:
        arena_bytes = sum(int(a.nbytes) for a in layout.arena.arrays.values())
    counts = dict(meta.get("counts", {}))
    rects = int(np.count_nonzero(np.diff(vertex_offsets(db.arena.arrays)) == 0))
    return {
        "dbu_um": dbu,
        "user_unit": meta.get("user_unit"),
        "libname": meta.get("libname"),
        "cells": len(names),
        "top_cells": [names[c] for c in tops],
        "undefined_cells": list(meta.get("undefined_cells", [])),
        "counts": {k: int(counts.get(k, 0)) for k in COUNT_KEYS},
        "layers": sorted([int(l), int(d)] for l, d in db.layer_ld),
        # the default top cell's extent, or the union of all top cells when there are several
        "bbox_um": _bbox_um(db.cell_bbox, tops, dbu),
        "file_bytes": int(meta.get("file_bytes", meta.get("source", {}).get("size", 0))),
        "db_bytes": int(arena_bytes),
        "polygons": int(len(db.poly_layer)),
        "rectangles": rects,
        "vertices": int(len(db.vtx)) + 4 * rects,     # of every polygon, rectangles included
        "vertices_stored": int(len(db.vtx)),
        "placements": int(len(db.ref_cell)),
        "seconds": {k: float(v) for k, v in meta.get("seconds", {}).items()},
        "index": meta.get("index"),
        "warnings": list(meta.get("warnings", [])),
    }
