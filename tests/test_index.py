"""Spatial index: every query equals a brute-force scan; reordering keeps each cell's rows."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine.database import EMPTY_BBOX, offsets_to_blocks, placement_arrays, vertex_offsets
from engine.errors import ClipmillError
from engine.index import build_index, query


def random_db(rng, ncells, max_polys, max_refs, span):
    """Arrays of the schema with random boxes/triangles and random placement bboxes."""
    npoly = rng.integers(0, max_polys + 1, ncells)
    nref = rng.integers(0, max_refs + 1, ncells)
    P, R = int(npoly.sum()), int(nref.sum())
    vtx, vtx_off, pbox = [], [0], []
    for _ in range(P):
        k = int(rng.integers(3, 7))
        cx, cy = rng.integers(-span, span, 2)
        pts = np.stack([cx + rng.integers(0, span // 10 + 1, k),
                        cy + rng.integers(0, span // 10 + 1, k)], 1)
        pbox.append([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
        if k == 6:      # a rectangle: no vertices, the bbox is the polygon
            k, pts = 0, pts[:0]
        vtx.append(pts)
        vtx_off.append(vtx_off[-1] + k)
    rb = rng.integers(-span, span, (R, 2))
    rbbox = np.concatenate([rb, rb + rng.integers(0, span // 5 + 1, (R, 2))], 1)
    C = ncells
    blk, rel = offsets_to_blocks(vtx_off)
    arrays = {
        "cell_name_data": np.frombuffer(b"".join(b"c%d" % i for i in range(C)), np.uint8).copy(),
        "cell_name_off": np.concatenate([[0], np.cumsum([len(b"c%d" % i) for i in range(C)])]),
        "cell_poly_off": np.concatenate([[0], np.cumsum(npoly)]).astype(np.int64),
        "cell_ref_off": np.concatenate([[0], np.cumsum(nref)]).astype(np.int64),
        "cell_bbox": np.tile(EMPTY_BBOX, (C, 1)),
        "cell_own_bbox": np.tile(EMPTY_BBOX, (C, 1)),
        "cell_defined": np.ones(C, np.uint8),
        "cell_offset": np.full(C, -1, np.int64),
        "top_cells": np.zeros(1, np.int32),
        "poly_vtx_blk": blk,
        "poly_vtx_rel": rel,
        "vtx": (np.concatenate(vtx) if P else np.zeros((0, 2))).astype(np.int32),
        "poly_layer": rng.integers(0, 3, P).astype(np.uint16),
        "poly_bbox": np.array(pbox, np.int32).reshape(-1, 4),
        "poly_kind": rng.integers(0, 3, P).astype(np.uint8),
        "layer_ld": np.array([[1, 0], [2, 0], [3, 1]], np.int32),
        "ref_cell": rng.integers(0, C, R).astype(np.int32),
        **placement_arrays(rng.normal(size=(R, 6)) * 1000, rng.integers(1, 4, R),
                           rng.integers(1, 4, R), rng.normal(size=(R, 2)),
                           rng.normal(size=(R, 2))),
        "ref_bbox": rbbox.astype(np.int64),
        "ref_kind": rng.integers(0, 2, R).astype(np.uint8),
    }
    return arrays


def poly_rows(a, c):
    """Each polygon of cell c as a hashable tuple of everything attached to its row."""
    out = []
    for p in range(a["cell_poly_off"][c], a["cell_poly_off"][c + 1]):
        off = vertex_offsets(a)
        v = a["vtx"][off[p]:off[p + 1]]
        out.append((tuple(map(tuple, v.tolist())), int(a["poly_layer"][p]),
                    tuple(a["poly_bbox"][p].tolist()), int(a["poly_kind"][p])))
    return sorted(out)


def ref_rows(a, c):
    out = []
    for r in range(a["cell_ref_off"][c], a["cell_ref_off"][c + 1]):
        out.append(tuple(np.concatenate([[a["ref_cell"][r], a["ref_kind"][r], a["ref_xf"][r],
                                          a["ref_aref"][r]], a["ref_org"][r],
                                         a["ref_bbox"][r]]).tolist()))
    return sorted(out)


def brute(items, lo, hi, box):
    b = items[lo:hi]
    hit = (b[:, 0] <= box[2]) & (b[:, 2] >= box[0]) & (b[:, 1] <= box[3]) & (b[:, 3] >= box[1])
    return lo + np.nonzero(hit)[0]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), leaf=st.sampled_from([2, 3, 4, 16, 64]),
       ncells=st.integers(1, 4), maxp=st.sampled_from([0, 1, 5, 40, 300]),
       span=st.sampled_from([10, 1000, 10**6]))
def test_query_equals_brute_force(seed, leaf, ncells, maxp, span):
    rng = np.random.default_rng(seed)
    a = random_db(rng, ncells, maxp, maxp // 2, span)
    meta = {"dbu_um": 0.001}
    ix = build_index(a, meta, leaf_size=leaf)
    assert meta["index"]["leaf_size"] == leaf
    for c in range(ncells):
        assert poly_rows(ix, c) == poly_rows(a, c)
        assert ref_rows(ix, c) == ref_rows(a, c)
        for _ in range(8):
            x0, y0 = rng.integers(-span - 5, span + 5, 2)
            w, h = rng.integers(0, span // 2 + 2, 2) * rng.integers(0, 2, 2)  # some degenerate
            box = (x0, y0, x0 + w, y0 + h)
            for what, items, off in (("poly", "poly_bbox", "cell_poly_off"),
                                     ("ref", "ref_bbox", "cell_ref_off")):
                lo, hi = int(ix[off][c]), int(ix[off][c + 1])
                got = query(ix, c, box, what)
                assert np.array_equal(got, brute(ix[items], lo, hi, box))
        # a query covering everything returns every row; an empty-interior far one nothing
        lo, hi = int(ix["cell_poly_off"][c]), int(ix["cell_poly_off"][c + 1])
        big = (-10 * span, -10 * span, 10 * span, 10 * span)
        assert np.array_equal(query(ix, c, big, "poly"), np.arange(lo, hi))
        assert len(query(ix, c, (20 * span, 0, 21 * span, 1), "poly")) == 0


def test_nodes_contain_children():
    rng = np.random.default_rng(7)
    a = random_db(rng, 3, 500, 200, 10**5)
    ix = build_index(a, {}, leaf_size=4)
    nodes = ix["ix_pnode_bbox"]
    # every polygon lies inside some leaf of its cell, and every node is non-empty
    assert np.all(nodes[:, 0] <= nodes[:, 2]) and np.all(nodes[:, 1] <= nodes[:, 3])
    assert ix["ix_pnode_off"][-1] == len(nodes)


def test_bad_database_is_rejected():
    rng = np.random.default_rng(1)
    a = random_db(rng, 2, 5, 3, 100)
    a["ref_cell"] = a["ref_cell"].copy()
    if len(a["ref_cell"]):
        a["ref_cell"][0] = 99
        with pytest.raises(ClipmillError):
            build_index(a, {})
    with pytest.raises(ClipmillError):
        build_index(random_db(rng, 2, 5, 3, 100), {}, leaf_size=1)
