"""A second, independent loader: a ``klayout.db.Layout`` -> the DBLoad schema's arrays.

KLayout reads the file (or the test builds the layout in memory); this module only copies what
KLayout reports (polygons via ``shape.polygon`` for boxes, paths and polygons; placements with
``cell_inst.cplx_trans``; AREF vectors; bboxes computed by KLayout) into the schema. Texts are
ignored (use ``strip_texts`` first so KLayout's own bboxes ignore them too).
"""
from __future__ import annotations

import math

import klayout.db as kdb
import numpy as np

from engine.database import (EMPTY_BBOX, KIND_AREF, KIND_BOUNDARY, KIND_BOX, KIND_PATH, KIND_SREF,
                             SCHEMA_VERSION, offsets_to_blocks, placement_arrays)

SHAPES = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes | kdb.Shapes.SPaths


def strip_texts(ly: kdb.Layout) -> None:
    """Delete every text so that KLayout's cell bboxes cover polygons, boxes and paths only."""
    for c in ly.each_cell():
        for li in ly.layer_indexes():
            sh = c.shapes(li)
            texts = list(sh.each(kdb.Shapes.STexts))
            for t in texts:
                sh.erase(t)


def _box(b) -> list[int]:
    return list(EMPTY_BBOX) if b.empty() else [b.left, b.bottom, b.right, b.top]


def trans_matrix(t) -> list[float]:
    """m00, m01, m10, m11 of a KLayout complex transform (mirror about x, mag, rotate)."""
    a = t.angle
    if abs(a / 90.0 - round(a / 90.0)) < 1e-12:
        q = int(round(a / 90.0)) % 4
        c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][q]
    else:
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
    m = t.mag
    f = -1.0 if t.is_mirror() else 1.0
    # R(a) * diag(1, f) * mag
    return [m * c, -m * s * f, m * s, m * c * f]


def from_klayout(ly: kdb.Layout):
    """(arrays, meta) for ``ly`` in the DBLoad schema (before indexing)."""
    cells = list(ly.each_cell())
    crow = {c.cell_index(): i for i, c in enumerate(cells)}
    lis = ly.layer_indexes()
    infos = sorted((ly.get_info(li).layer, ly.get_info(li).datatype, li) for li in lis)
    lrow = {li: r for r, (_, _, li) in enumerate(infos)}
    names = [c.name.encode("latin-1") for c in cells]
    cell_name_off = np.zeros(len(cells) + 1, dtype=np.int64)
    cell_name_off[1:] = np.cumsum([len(n) for n in names])
    vtx, vtx_off, play, pbox, pkind = [], [0], [], [], []
    cell_poly_off, cell_ref_off = [0], [0]
    own_bbox = []
    rcell, rmat, rstrans, rcols, rrows, rcv, rrv, rbbox, rkind = ([] for _ in range(9))
    referenced = set()
    for c in cells:
        own = kdb.Box()
        for li in lis:
            lr = lrow[li]
            shapes = c.shapes(li)
            for b in (sh.box for sh in shapes.each(kdb.Shapes.SBoxes)):
                x0, y0, x1, y1 = b.left, b.bottom, b.right, b.top
                vtx.extend(((x0, y0), (x0, y1), (x1, y1), (x1, y0)))
                vtx_off.append(len(vtx))
                play.append(lr)
                own += b
                pbox.append([x0, y0, x1, y1])
                pkind.append(KIND_BOX)
            for sh in shapes.each(kdb.Shapes.SPolygons | kdb.Shapes.SPaths):
                p = sh.polygon
                if p.holes():
                    p = p.resolved_holes()
                pts = [(q.x, q.y) for q in p.each_point_hull()]
                if len(pts) < 3:
                    continue
                vtx.extend(pts)
                vtx_off.append(len(vtx))
                play.append(lr)
                b = sh.bbox()  # KLayout's (a round-ended path's: its square-ended hull's)
                own += b
                pbox.append(_box(b))
                pkind.append(KIND_PATH if sh.is_path() else KIND_BOUNDARY)
        cell_poly_off.append(len(play))
        own_bbox.append(_box(own))
        for inst in c.each_inst():
            ca = inst.cell_inst
            t = ca.cplx_trans
            referenced.add(ca.cell_index)
            rcell.append(crow[ca.cell_index])
            rmat.append(trans_matrix(t) + [float(t.disp.x), float(t.disp.y)])
            rstrans.append([t.mag, t.angle, 1.0 if t.is_mirror() else 0.0])
            if ca.is_regular_array():
                rcols.append(ca.na)
                rrows.append(ca.nb)
                rcv.append([ca.a.x, ca.a.y])
                rrv.append([ca.b.x, ca.b.y])
                rkind.append(KIND_AREF)
            else:
                rcols.append(1)
                rrows.append(1)
                rcv.append([0.0, 0.0])
                rrv.append([0.0, 0.0])
                rkind.append(KIND_SREF)
            rbbox.append(_box(ca.bbox(ly)))
        cell_ref_off.append(len(rcell))
    tops = sorted((c for c in cells if c.cell_index() not in referenced), key=lambda c: c.name)
    arrays = {
        "cell_name_data": np.frombuffer(b"".join(names), dtype=np.uint8).copy(),
        "cell_name_off": cell_name_off,
        "cell_poly_off": np.array(cell_poly_off, dtype=np.int64),
        "cell_ref_off": np.array(cell_ref_off, dtype=np.int64),
        "cell_bbox": np.array([_box(c.bbox()) for c in cells], dtype=np.int64).reshape(-1, 4),
        "cell_own_bbox": np.array(own_bbox, dtype=np.int64).reshape(-1, 4),
        "cell_defined": np.ones(len(cells), dtype=np.uint8),
        "cell_offset": np.full(len(cells), -1, dtype=np.int64),
        "top_cells": np.array([crow[c.cell_index()] for c in tops], dtype=np.int32),
        # every polygon with explicit vertices (rectangles too: the schema allows both)
        "poly_vtx_blk": offsets_to_blocks(vtx_off)[0],
        "poly_vtx_rel": offsets_to_blocks(vtx_off)[1],
        "vtx": np.array(vtx, dtype=np.int32).reshape(-1, 2),
        "poly_layer": np.array(play, dtype=np.uint16),
        "poly_bbox": np.array(pbox, dtype=np.int32).reshape(-1, 4),
        "poly_kind": np.array(pkind, dtype=np.uint8),
        "layer_ld": np.array([(l, d) for l, d, _ in infos], dtype=np.int32).reshape(-1, 2),
        "ref_cell": np.array(rcell, dtype=np.int32),
        **placement_arrays(rmat, rcols, rrows, rcv, rrv, np.array(rkind) == KIND_AREF),
        "ref_bbox": np.array(rbbox, dtype=np.int64).reshape(-1, 4),
        "ref_kind": np.array(rkind, dtype=np.uint8),
    }
    return arrays, {"dbu_um": ly.dbu, "schema": SCHEMA_VERSION}


def kl_layout(ly: kdb.Layout, leaf_size: int = 16):
    """An engine Layout (shared-memory arena) built from a KLayout layout via this loader."""
    from engine.index import build_index
    from engine.layout import Layout
    from shm.arena import Arena
    arrays, meta = from_klayout(ly)
    return Layout(Arena.from_arrays(build_index(arrays, meta, leaf_size=leaf_size), meta))


def read(path: str) -> kdb.Layout:
    """Read a layout with KLayout, texts off (so its bboxes cover polygons, boxes, paths)."""
    ly = kdb.Layout()
    opt = kdb.LoadLayoutOptions()
    opt.text_enabled = False
    ly.read(str(path), opt)
    return ly
