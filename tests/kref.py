"""KLayout reference figures for tests (independent of clipmill's reader).

Everything here reads the file with KLayout (``klayout.db``) and returns plain Python data in
database units, so tests compare clipmill's DBLoad arrays against it:

    kl = kload(path)                 # kdb.Layout, cached per path
    kcell_names(kl), ktop_cells(kl), kundefined_cells(kl)
    klayers_all(kl)                  # every layer KLayout lists (texts included)
    klayers_geometry(kl)             # layers that carry polygons, boxes or paths somewhere
    kbbox_dbu(kl, top)               # [x0, y0, x1, y1] integer dbu of a cell (or union of tops)
    kareas2(kl)                      # {cell: {(layer, datatype): twice the area, exact int}}
    kshape_bboxes(kl)                # {cell: {(layer, datatype): sorted shape bboxes [n, 4]}}
    kplacements(kl)                  # columns: parent, child, mag, angle, mirror, tx, ty, na,
                                     #   nb, ax, ay, bx, by (dbu); kplacement_matrices(p) -> [n,6]

Zero-width paths are left out of the geometry (they cover no area; the reader makes no polygon
of them and warns).
"""
from __future__ import annotations

import functools
import os

import klayout.db as kdb
import numpy as np

GEOM = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes | kdb.Shapes.SPaths


def geom_shapes(shapes):
    """Boundaries, boxes and paths of a Shapes container, leaving out zero-width paths (they
    cover no area; clipmill's reader makes no polygon of them and says so in a warning)."""
    for sh in shapes.each(GEOM):
        if sh.is_path() and sh.path_width == 0:
            continue
        yield sh


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int):
    ly = kdb.Layout()
    ly.read(path)
    return ly


def kload(path) -> kdb.Layout:
    path = os.fspath(path)
    return _load(path, os.stat(path).st_mtime_ns)


def kcell_names(kl) -> list[str]:
    return sorted(c.name for c in kl.each_cell())


def ktop_cells(kl) -> list[str]:
    return sorted(c.name for c in kl.top_cells())


def kundefined_cells(kl) -> list[str]:
    """Cells referenced but never defined (KLayout keeps them as 'ghost cells')."""
    return sorted(c.name for c in kl.each_cell() if c.is_ghost_cell())


def klayers_all(kl) -> list[tuple[int, int]]:
    return sorted((kl.get_info(li).layer, kl.get_info(li).datatype) for li in kl.layer_indexes())


def klayers_geometry(kl) -> list[tuple[int, int]]:
    out = set()
    for li in kl.layer_indexes():
        info = kl.get_info(li)
        if any(_has_geom(c.shapes(li)) for c in kl.each_cell()):
            out.add((info.layer, info.datatype))
    return sorted(out)


def _has_geom(shapes) -> bool:
    for _ in geom_shapes(shapes):
        return True
    return False


def kbbox_dbu(kl, cells=None) -> list[int]:
    """Bounding box in dbu of a cell name, a list of names (union) or the top cells (None)."""
    if cells is None:
        cells = ktop_cells(kl)
    if isinstance(cells, str):
        cells = [cells]
    box = kdb.Box()
    for name in cells:
        box += kl.cell(name).bbox()
    if box.empty():
        return None
    return [box.left, box.bottom, box.right, box.top]


def kbboxes_geometry(kl) -> dict[str, list[int] | None]:
    """Per cell: bbox in dbu of its geometry and everything below it, texts excluded, computed
    bottom-up: own shapes' boxes, plus each instance's child box transformed by KLayout (an exact
    box for 90-degree orientations, the box of the transformed corners otherwise), for arrays the
    union of the four corner copies. None for an empty cell."""
    boxes = {}
    for ci in kl.each_cell_bottom_up():
        c = kl.cell(ci)
        box = kdb.Box()
        for li in kl.layer_indexes():
            for sh in geom_shapes(c.shapes(li)):
                box += sh.bbox()
        for inst in c.each_inst():
            cb = boxes[inst.cell_index]
            if cb.empty():
                continue
            t = inst.cplx_trans
            tb = cb.transformed(t)
            if inst.is_regular_array():
                for i in (0, inst.na - 1):
                    for j in (0, inst.nb - 1):
                        box += tb.moved(inst.a * i + inst.b * j)
            else:
                box += tb
        boxes[ci] = box
    return {kl.cell(ci).name: (None if b.empty() else [b.left, b.bottom, b.right, b.top])
            for ci, b in boxes.items()}


def kbbox_flat(kl, cell: str) -> list[int] | None:
    """Exact bbox of the flattened geometry (texts and zero-width paths excluded) of one cell:
    boundaries and boxes flattened by KLayout (Region), paths one by one as polygons."""
    box = kdb.Box()
    c = kl.cell(cell)
    for li in kl.layer_indexes():
        it = c.begin_shapes_rec(li)
        it.shape_flags = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes
        box += kdb.Region(it).bbox()
        it = c.begin_shapes_rec(li)
        it.shape_flags = kdb.Shapes.SPaths
        while not it.at_end():
            sh = it.shape()
            if sh.path_width != 0:
                box += sh.polygon.transformed(it.trans()).bbox()
            it.next()
    return None if box.empty() else [box.left, box.bottom, box.right, box.top]


def k_all_orthogonal(kl) -> bool:
    """True when every placement is a 90-degree orientation with magnification 1 or an integer."""
    for c in kl.each_cell():
        for inst in c.each_inst():
            t = inst.cplx_trans
            if abs(t.angle - round(t.angle / 90) * 90) > 1e-9 or t.mag != round(t.mag):
                return False
    return True


def kareas2(kl) -> dict[str, dict[tuple[int, int], int]]:
    """Per cell (own shapes only) and layer: the sum of twice the polygon areas of its
    boundaries, boxes and paths (paths as KLayout's ``Shape.polygon``), as exact integers."""
    layers = [(li, (kl.get_info(li).layer, kl.get_info(li).datatype)) for li in kl.layer_indexes()]
    out = {}
    for c in kl.each_cell():
        per = {}
        for li, ld in layers:
            tot = 0
            n = 0
            for sh in geom_shapes(c.shapes(li)):
                p = sh.polygon
                if p is None:
                    continue
                tot += p.area2()
                n += 1
            if n:
                per[ld] = tot
        out[c.name] = per
    return out


def kshape_counts(kl) -> dict[str, dict[tuple[int, int], int]]:
    """Per cell and layer: how many geometry shapes (boundaries, boxes, paths) KLayout holds."""
    out = {}
    for c in kl.each_cell():
        per = {}
        for li in kl.layer_indexes():
            n = sum(1 for _ in geom_shapes(c.shapes(li)))
            if n:
                info = kl.get_info(li)
                per[(info.layer, info.datatype)] = n
        out[c.name] = per
    return out


def kshape_bboxes(kl) -> dict[str, dict[tuple[int, int], np.ndarray]]:
    """Per cell and layer: KLayout's ``Shape.bbox`` of every geometry shape, int64 [n, 4] rows
    (x0, y0, x1, y1) sorted lexicographically (a round-ended path's box is its square-ended
    hull's, not its polygon's)."""
    out = {}
    for c in kl.each_cell():
        per = {}
        for li in kl.layer_indexes():
            rows = [(b.left, b.bottom, b.right, b.top)
                    for b in (sh.bbox() for sh in geom_shapes(c.shapes(li)))]
            if rows:
                info = kl.get_info(li)
                per[(info.layer, info.datatype)] = _sorted_rows(np.array(rows, dtype=np.int64))
        out[c.name] = per
    return out


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])] if len(a) else a


def kplacements(kl) -> dict:
    """Every SREF/AREF as KLayout sees it, as columns (numpy arrays; names as lists):
    parent, child, mag, angle (degrees), mirror, tx, ty (dbu), na, nb, a, b (int [n,2] dbu).
    Copy (i, j) of an array adds i*a + j*b; SREF: na = nb = 1, a = b = (0, 0)."""
    cols = {k: [] for k in ("parent", "child", "mag", "angle", "mirror", "tx", "ty", "na", "nb",
                            "ax", "ay", "bx", "by")}
    names = {c.cell_index(): c.name for c in kl.each_cell()}
    for c in kl.each_cell():
        pname = c.name
        for inst in c.each_inst():
            t = inst.cplx_trans
            d = t.disp
            cols["parent"].append(pname)
            cols["child"].append(names[inst.cell_index])
            cols["mag"].append(t.mag)
            cols["angle"].append(t.angle)
            cols["mirror"].append(t.is_mirror())
            cols["tx"].append(d.x)
            cols["ty"].append(d.y)
            if inst.is_regular_array():
                a, b = inst.a, inst.b
                cols["na"].append(inst.na)
                cols["nb"].append(inst.nb)
                cols["ax"].append(a.x)
                cols["ay"].append(a.y)
                cols["bx"].append(b.x)
                cols["by"].append(b.y)
            else:
                for k in ("na", "nb"):
                    cols[k].append(1)
                for k in ("ax", "ay", "bx", "by"):
                    cols[k].append(0)
    out = {k: (v if k in ("parent", "child") else np.asarray(v, dtype=np.float64))
           for k, v in cols.items()}
    return out


def kplacement_matrices(p: dict) -> np.ndarray:
    """float64[n, 6] (m00, m01, m10, m11, tx, ty) from KLayout's decomposition: mirror about x
    first, then rotate counter-clockwise by ``angle``, magnify, displace. Angles that are
    multiples of 90 degrees get exact sines and cosines."""
    ang = p["angle"]
    rad = np.radians(ang)
    c, s = np.cos(rad), np.sin(rad)
    q = np.isclose(ang / 90.0, np.round(ang / 90.0), rtol=0, atol=1e-12)
    k = np.mod(np.round(ang / 90.0).astype(np.int64), 4)
    c = np.where(q, np.array([1.0, 0.0, -1.0, 0.0])[k], c)
    s = np.where(q, np.array([0.0, 1.0, 0.0, -1.0])[k], s)
    f = np.where(p["mirror"] > 0, -1.0, 1.0)
    m = p["mag"]
    return np.stack([m * c, -m * s * f, m * s, m * c * f, p["tx"], p["ty"]], axis=1)
