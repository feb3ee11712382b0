"""Per-cell spatial index: a packed R-tree in flat arrays (no pointers), built at open.

For every cell, its polygons (rows ``cell_poly_off[c]:cell_poly_off[c+1]``) and its placements
(rows ``cell_ref_off[c]:cell_ref_off[c+1]``) are sorted by the Morton key of their bbox centre and
the rows are REORDERED in place of the database (``poly_vtx_*``/``vtx``/``poly_*`` and every
``ref_*`` array move together; ``cell_poly_off``/``cell_ref_off`` are unchanged), so that leaf ``k``
of a cell holds items ``k*F .. min((k+1)*F, n)`` of that cell (``F`` = ``leaf_size``).

Above the leaves, level ``l`` has ``ceil(count[l-1] / F)`` nodes, node ``k`` covering children
``k*F .. (k+1)*F`` of level ``l-1``, up to a single root. Arrays added (``ix_`` prefix):

  ix_pnode_off   int64 [C+1]  nodes of cell c's polygon tree: ix_pnode_bbox[off[c]:off[c+1]],
                              stored level by level from the leaves (level 0) up to the root
  ix_pnode_bbox  int32 [Np,4] x0,y0,x1,y1 of each node (closed intervals)
  ix_rnode_off   int64 [C+1]  the same over the placements' ``ref_bbox`` (AREFs are one item each,
  ix_rnode_bbox  int64 [Nr,4] with the bbox of the whole array)
  ix_leaf        int64 [1]    leaf_size (also the fan-out of inner levels)

Level sizes follow from ``n`` and ``F`` alone, so nothing else is stored; ``tree_levels`` computes
them (a query walks them with a small explicit stack). ``meta["index"]`` gets leaf_size, bytes,
seconds and node counts.
"""
from __future__ import annotations

import time

import numpy as np

from engine.database import VTX_BLOCK_SHIFT, vertex_offsets, vtx_start
from engine.errors import ClipmillError
from engine.jit import jit

MAX_LEVELS = 32


@jit
def tree_levels(n, F, starts):
    """Fill starts[0..L] with the offsets (relative to the cell's first node) of each level;
    return the number of levels L (0 when n == 0). starts[L] is the node count."""
    L = 0
    starts[0] = 0
    cnt = n
    if n <= 0:
        return 0
    while True:
        cnt = (cnt + F - 1) // F
        starts[L + 1] = starts[L] + cnt
        L += 1
        if cnt <= 1:
            break
    return L


@jit
def _node_counts(item_off, F):
    C = len(item_off) - 1
    node_off = np.zeros(C + 1, dtype=np.int64)
    starts = np.zeros(MAX_LEVELS + 1, dtype=np.int64)
    for c in range(C):
        n = item_off[c + 1] - item_off[c]
        L = tree_levels(n, F, starts)
        node_off[c + 1] = node_off[c] + (starts[L] if L > 0 else 0)
    return node_off


@jit
def _part1by1(v):
    v &= 0xFFFF
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    v = (v | (v << 1)) & 0x55555555
    return v


@jit
def _morton_keys(item_off, bbox):
    """Sort key of every item: cell row in the high 32 bits, the Morton code of its bbox centre
    (16+16 bits over the cell's extent of centres) in the low 32 bits. Cells with a single item
    keep key cell << 32."""
    N = bbox.shape[0]
    keys = np.empty(N, dtype=np.int64)
    C = len(item_off) - 1
    for c in range(C):
        a, b = item_off[c], item_off[c + 1]
        x0 = np.inf
        y0 = np.inf
        x1 = -np.inf
        y1 = -np.inf
        for i in range(a, b):
            cx = 0.5 * (float(bbox[i, 0]) + float(bbox[i, 2]))
            cy = 0.5 * (float(bbox[i, 1]) + float(bbox[i, 3]))
            x0 = min(x0, cx)
            x1 = max(x1, cx)
            y0 = min(y0, cy)
            y1 = max(y1, cy)
        sx = 65535.0 / (x1 - x0) if x1 > x0 else 0.0
        sy = 65535.0 / (y1 - y0) if y1 > y0 else 0.0
        hi = np.int64(c) << 32
        for i in range(a, b):
            cx = 0.5 * (float(bbox[i, 0]) + float(bbox[i, 2]))
            cy = 0.5 * (float(bbox[i, 1]) + float(bbox[i, 3]))
            qx = np.int64((cx - x0) * sx)
            qy = np.int64((cy - y0) * sy)
            keys[i] = hi | _part1by1(qx) | (_part1by1(qy) << 1)
    return keys


def _morton_perm(item_off, bbox) -> np.ndarray:
    """Permutation (new row -> old row) sorting each cell's items by the Morton key of their
    bbox centre; rows never leave their cell (the cell row leads the key)."""
    if len(bbox) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.argsort(_morton_keys(item_off, bbox), kind="stable").astype(np.int64, copy=False)


@jit
def _build_nodes(item_off, bbox, F, node_off, nodes):
    """Node bboxes into ``nodes`` (node_off[C] x 4), level by level, for every cell (items
    already in leaf order)."""
    C = len(item_off) - 1
    starts = np.zeros(MAX_LEVELS + 1, dtype=np.int64)
    for c in range(C):
        a, b = item_off[c], item_off[c + 1]
        n = b - a
        L = tree_levels(n, F, starts)
        base = node_off[c]
        for lev in range(L):
            cnt = starts[lev + 1] - starts[lev]
            for k in range(cnt):
                x0 = np.iinfo(np.int64).max
                y0 = np.iinfo(np.int64).max
                x1 = np.iinfo(np.int64).min
                y1 = np.iinfo(np.int64).min
                if lev == 0:
                    lo = a + k * F
                    hi = min(a + (k + 1) * F, b)
                    for i in range(lo, hi):
                        x0 = min(x0, np.int64(bbox[i, 0]))
                        y0 = min(y0, np.int64(bbox[i, 1]))
                        x1 = max(x1, np.int64(bbox[i, 2]))
                        y1 = max(y1, np.int64(bbox[i, 3]))
                else:
                    pc = starts[lev] - starts[lev - 1]
                    lo = base + starts[lev - 1] + k * F
                    hi = base + starts[lev - 1] + min((k + 1) * F, pc)
                    for i in range(lo, hi):
                        x0 = min(x0, nodes[i, 0])
                        y0 = min(y0, nodes[i, 1])
                        x1 = max(x1, nodes[i, 2])
                        y1 = max(y1, nodes[i, 3])
                j = base + starts[lev] + k
                nodes[j, 0] = x0
                nodes[j, 1] = y0
                nodes[j, 2] = x1
                nodes[j, 3] = y1


@jit
def _gather_polygons(blk, rel, vtx, layer, bbox, kind, perm, new_blk, new_rel, new_vtx,
                     new_layer, new_bbox, new_kind):
    """The polygons in the order ``perm`` (new row -> old row), in one pass: vertices into the
    two-level offsets new_blk/new_rel and new_vtx (as long as vtx), layer, bbox and kind rows."""
    P = len(perm)
    d = 0
    for i in range(P):
        p = perm[i]
        new_layer[i] = layer[p]
        new_kind[i] = kind[p]
        for q in range(4):
            new_bbox[i, q] = bbox[p, q]
        s = vtx_start(blk, rel, p)
        e = vtx_start(blk, rel, p + 1)
        b = i >> VTX_BLOCK_SHIFT
        if (i & ((1 << VTX_BLOCK_SHIFT) - 1)) == 0:
            new_blk[b] = d
        new_rel[i] = d - new_blk[b]
        for k in range(e - s):
            new_vtx[d + k, 0] = vtx[s + k, 0]
            new_vtx[d + k, 1] = vtx[s + k, 1]
        d += e - s
    b = P >> VTX_BLOCK_SHIFT
    if (P & ((1 << VTX_BLOCK_SHIFT) - 1)) == 0:
        new_blk[b] = d
    new_rel[P] = d - new_blk[b]


def _validate(arrays) -> None:
    """Check every index the query kernels will follow (numba does no bounds checks)."""
    C = len(arrays["cell_poly_off"]) - 1
    P = len(arrays["poly_layer"])
    R = len(arrays["ref_cell"])
    for name, total in (("cell_poly_off", P), ("cell_ref_off", R)):
        off = arrays[name]
        if len(off) != C + 1 or off[0] != 0 or off[-1] != total or np.any(np.diff(off) < 0):
            raise ClipmillError(f"database array {name} is not a valid offset table")
    blk, rel = arrays["poly_vtx_blk"], arrays["poly_vtx_rel"]
    if len(rel) != P + 1 or len(blk) != (P >> VTX_BLOCK_SHIFT) + 1:
        raise ClipmillError("database arrays poly_vtx_blk/poly_vtx_rel have the wrong length")
    off = vertex_offsets(arrays)
    n = np.diff(off)
    if (off[0] != 0 or off[-1] != len(arrays["vtx"]) or np.any(n < 0)
            or np.any((n > 0) & (n < 3))):
        raise ClipmillError("database arrays poly_vtx_blk/poly_vtx_rel are not a valid offset "
                            "table (0 vertices = rectangle, else at least 3)")
    if R and (arrays["ref_cell"].min() < 0 or arrays["ref_cell"].max() >= C):
        raise ClipmillError("database placement references a cell row out of range")
    L = len(arrays["layer_ld"])
    if P and (arrays["poly_layer"].min() < 0 or arrays["poly_layer"].max() >= L):
        raise ClipmillError("database polygon layer row out of range")
    X, A = len(arrays["xf_mat"]), len(arrays["aref_cols"])
    if R and (arrays["ref_xf"].min() < 0 or arrays["ref_xf"].max() >= X):
        raise ClipmillError("database placement transform row out of range")
    if R and (arrays["ref_aref"].min() < -1 or arrays["ref_aref"].max() >= A):
        raise ClipmillError("database placement array row out of range")
    if A and (arrays["aref_cols"].min() < 1 or arrays["aref_rows"].min() < 1
              or len(arrays["aref_rows"]) != A or len(arrays["aref_colvec"]) != A
              or len(arrays["aref_rowvec"]) != A):
        raise ClipmillError("database array with fewer than one column or row")


def _specs(arrays, pnode_off, rnode_off, pbox_dtype, rbox_dtype):
    """(name, dtype, shape) of every array build_index returns."""
    specs = [(k, v.dtype, v.shape) for k, v in arrays.items()]
    return specs + [("ix_pnode_off", np.int64, pnode_off.shape),
                    ("ix_pnode_bbox", pbox_dtype, (int(pnode_off[-1]), 4)),
                    ("ix_rnode_off", np.int64, rnode_off.shape),
                    ("ix_rnode_bbox", rbox_dtype, (int(rnode_off[-1]), 4)),
                    ("ix_leaf", np.int64, (1,))]


def _alloc_numpy(specs) -> dict:
    return {name: np.empty(shape, dtype=dtype) for name, dtype, shape in specs}


def build_index(arrays: dict, meta: dict, leaf_size: int = 16, alloc=None) -> dict:
    """Reorder each cell's polygons and placements spatially and add the ``ix_*`` node arrays.

    Returns a new dict (input arrays are not modified); records ``meta["index"]``. ``alloc``
    (``specs -> {name: array}``, specs a list of (name, dtype, shape)) supplies the output arrays:
    the coordinator passes an arena's allocator, so the database is written straight into shared
    memory (one pass: the spatial reordering is the copy); default: new numpy arrays."""
    leaf_size = int(leaf_size)
    if leaf_size < 2:
        raise ClipmillError(f"leaf_size must be at least 2 (got {leaf_size})")
    t0 = time.perf_counter()
    _validate(arrays)
    perm = _morton_perm(arrays["cell_poly_off"], arrays["poly_bbox"])
    rperm = _morton_perm(arrays["cell_ref_off"], arrays["ref_bbox"])
    pnode_off = _node_counts(arrays["cell_poly_off"], leaf_size)
    rnode_off = _node_counts(arrays["cell_ref_off"], leaf_size)
    out = (alloc or _alloc_numpy)(_specs(arrays, pnode_off, rnode_off, arrays["poly_bbox"].dtype,
                                         arrays["ref_bbox"].dtype))
    P, R = len(perm), len(rperm)
    polys = ("poly_vtx_blk", "poly_vtx_rel", "vtx", "poly_layer", "poly_bbox", "poly_kind")
    for k, v in arrays.items():
        if k in polys:
            continue
        if k.startswith("poly_") and len(v) == P:
            np.take(v, perm, axis=0, out=out[k])
        elif k.startswith("ref_") and len(v) == R:
            np.take(v, rperm, axis=0, out=out[k])
        else:
            out[k][...] = v
    _gather_polygons(*(arrays[k] for k in polys), perm, *(out[k] for k in polys))
    out["ix_pnode_off"][...] = pnode_off
    _build_nodes(arrays["cell_poly_off"], out["poly_bbox"], leaf_size, pnode_off,
                 out["ix_pnode_bbox"])
    out["ix_rnode_off"][...] = rnode_off
    _build_nodes(arrays["cell_ref_off"], out["ref_bbox"], leaf_size, rnode_off,
                 out["ix_rnode_bbox"])
    out["ix_leaf"][0] = leaf_size
    nbytes = sum(out[k].nbytes for k in ("ix_pnode_off", "ix_pnode_bbox", "ix_rnode_off",
                                         "ix_rnode_bbox", "ix_leaf"))
    meta["index"] = {"leaf_size": leaf_size, "bytes": int(nbytes),
                     "seconds": time.perf_counter() - t0,
                     "poly_nodes": int(pnode_off[-1]), "ref_nodes": int(rnode_off[-1]),
                     "kind": "packed R-tree, Morton order"}
    return out


# -- queries (also used by the exploder) -----------------------------------------------------

@jit
def tree_start(n, F, starts, tstack):
    """Begin a traversal of a tree over n items: fill ``starts`` (level offsets), push the root
    on ``tstack`` (pairs level, node). Returns the stack depth (0 for an empty tree)."""
    if n <= 0:
        return 0
    L = tree_levels(n, F, starts)
    tstack[0] = L - 1
    tstack[1] = 0
    return 1


@jit
def tree_next(node_off, node_bbox, starts, F, qx0, qy0, qx1, qy1, tstack, tsp):
    """Next leaf (index k within the cell's level 0) whose node bbox touches the closed box
    [qx0,qx1]x[qy0,qy1], and the new stack depth; (-1, 0) when done. Leaf k holds items
    k*F .. (k+1)*F of the cell. tstack: int64 scratch of 2*MAX_LEVELS*F."""
    while tsp > 0:
        tsp -= 1
        lev = tstack[2 * tsp]
        k = tstack[2 * tsp + 1]
        j = node_off + starts[lev] + k
        if (node_bbox[j, 0] > qx1 or node_bbox[j, 2] < qx0 or node_bbox[j, 1] > qy1
                or node_bbox[j, 3] < qy0):
            continue
        if lev == 0:
            return k, tsp
        cnt = starts[lev] - starts[lev - 1]
        hi = min((k + 1) * F, cnt)
        for ch in range(hi - 1, k * F - 1, -1):
            tstack[2 * tsp] = lev - 1
            tstack[2 * tsp + 1] = ch
            tsp += 1
    return -1, 0


@jit
def query_tree(node_off, node_bbox, item_bbox, item0, n, F, qx0, qy0, qx1, qy1, hits, tstack,
               starts):
    """Rows (absolute) of items item0..item0+n whose bbox touches [qx0,qx1]x[qy0,qy1] (closed),
    written to ``hits`` (at least n long). Returns the count."""
    nh = 0
    tsp = tree_start(n, F, starts, tstack)
    while True:
        k, tsp = tree_next(node_off, node_bbox, starts, F, qx0, qy0, qx1, qy1, tstack, tsp)
        if k < 0:
            break
        for i in range(item0 + k * F, min(item0 + (k + 1) * F, item0 + n)):
            if (item_bbox[i, 0] <= qx1 and item_bbox[i, 2] >= qx0 and item_bbox[i, 1] <= qy1
                    and item_bbox[i, 3] >= qy0):
                hits[nh] = i
                nh += 1
    return nh


def query(arrays, cell: int, box, what: str = "poly") -> np.ndarray:
    """Python-level query (tests, tools): absolute rows of cell ``cell``'s polygons
    (``what="poly"``) or placements (``"ref"``) whose bbox touches ``box`` (x0,y0,x1,y1 dbu)."""
    F = int(arrays["ix_leaf"][0])
    if what == "poly":
        node_off, nodes, items, item_off = (arrays["ix_pnode_off"], arrays["ix_pnode_bbox"],
                                            arrays["poly_bbox"], arrays["cell_poly_off"])
    else:
        node_off, nodes, items, item_off = (arrays["ix_rnode_off"], arrays["ix_rnode_bbox"],
                                            arrays["ref_bbox"], arrays["cell_ref_off"])
    a, b = int(item_off[cell]), int(item_off[cell + 1])
    tstack = np.empty(2 * MAX_LEVELS * F + 16, dtype=np.int64)
    hits = np.empty(b - a, dtype=np.int64)
    nh = query_tree(int(node_off[cell]), nodes, items, a, b - a, F,
                    float(box[0]), float(box[1]), float(box[2]), float(box[3]),
                    hits, tstack, np.empty(MAX_LEVELS + 1, dtype=np.int64))
    return np.sort(hits[:nh])
