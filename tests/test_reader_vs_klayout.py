"""The GDSII reader against KLayout, on every real GDSII file in ../shared/data (gzip copies too).

Per file: cells (undefined ones included), top cells, per-kind record counts (vs the manifest's raw
record census), layers, bounding boxes of every cell, the total polygon area per layer of every
cell (own shapes: boundaries, boxes and paths as polygons; texts excluded) and every placement
(SREF/AREF transform, lattice) against KLayout 0.30's reading of the same file.

Layers: KLayout lists every layer that holds any shape, texts included (so does the manifest).
clipmill stores no texts (they are counted, not geometry) and makes no polygon of a zero-width path
(it covers nothing; the reader warns), so its layer table is the set of layers that carry geometry.
The test asserts exactly that, and that every layer it leaves out holds, in KLayout, only texts or
zero-width paths (drcSimpleTests_56, drcSimpleTests_au143d, deep_region_au42 have such layers).
"""
from __future__ import annotations

import importlib.util
import os
from collections import defaultdict

import numpy as np
import pytest

import kref
from conftest import SHARED, SKIP_SHARED, shared_gds

from engine.database import (check_schema, polygon_arrays, ref_lattices, ref_matrices,
                             vertex_offsets)

KINDS = ["boundary", "path", "box", "text", "node", "sref", "aref"]


def _have_index() -> bool:
    return importlib.util.find_spec("engine.index") is not None


class Ours:
    """What clipmill loaded: arrays (copies), meta and info, the Layout closed afterwards."""

    def __init__(self, path, layers=None, direct=False):
        from engine.layout import Layout
        if _have_index() and not direct:
            from engine import open_layout
            lay = open_layout(path, layers=layers)
        else:  # the index stage is not there yet: reader + arena directly
            from engine.reader import load_gdsii
            from shm.arena import Arena
            arrays, meta = load_gdsii(path, layers=layers)
            lay = Layout(Arena.from_arrays(arrays, meta), source=path)
        try:
            self.arrays = {k: np.array(v) for k, v in lay.arena.arrays.items()}
            self.meta = dict(lay.arena.meta)
            try:
                self._info, self._info_error = lay.info, None
            except Exception as e:  # noqa: BLE001 - reported by the tests that use info
                self._info, self._info_error = None, e
            self.names = lay.cell_names()
        finally:
            lay.close()
        self.path = path

    @property
    def info(self) -> dict:
        if self._info_error is not None:
            raise self._info_error
        return self._info

    def cell_rows(self):
        return {n: i for i, n in enumerate(self.names)}

    def layer_list(self):
        return [tuple(int(v) for v in r) for r in self.arrays["layer_ld"]]

    def areas2(self) -> dict[str, dict[tuple[int, int], int]]:
        """{cell: {(layer, datatype): sum of |2 * signed area|}} by the shoelace formula, exact
        int64 arithmetic, polygons closed implicitly (last vertex -> first)."""
        a = self.arrays
        off, v = polygon_arrays(a)          # rectangles expanded from their bbox
        npoly = len(off) - 1
        out = {n: {} for n in self.names}
        if npoly == 0:
            return out
        x, y = v[:, 0], v[:, 1]
        nxt = np.arange(1, len(v) + 1, dtype=np.int64)
        nxt[off[1:] - 1] = off[:-1]
        cross = x * y[nxt] - x[nxt] * y
        per_poly = np.abs(np.add.reduceat(cross, off[:-1]))
        cell_of = np.repeat(np.arange(len(self.names)), np.diff(a["cell_poly_off"]))
        layers = self.layer_list()
        acc = defaultdict(int)
        for c, l, ar in zip(cell_of.tolist(), a["poly_layer"].tolist(), per_poly.tolist()):
            acc[(c, l)] += ar
        for (c, l), ar in acc.items():
            out[self.names[c]][layers[l]] = ar
        return out

    def poly_counts(self) -> dict[str, dict[tuple[int, int], int]]:
        a = self.arrays
        cell_of = np.repeat(np.arange(len(self.names)), np.diff(a["cell_poly_off"]))
        layers = self.layer_list()
        out = {n: {} for n in self.names}
        keys, counts = np.unique(np.stack([cell_of, a["poly_layer"]], axis=1), axis=0,
                                 return_counts=True) if len(cell_of) else ([], [])
        for (c, l), n in zip(keys, counts):
            out[self.names[int(c)]][layers[int(l)]] = int(n)
        return out

    def bbox(self, cell_row):
        b = [int(v) for v in self.arrays["cell_bbox"][cell_row]]
        return None if b[0] > b[2] else b


def _params():
    entries = shared_gds()
    if not entries:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_SHARED), id="no-shared-data")]
    out = [pytest.param(e, id=e["file"]) for e in entries]
    for e in entries:  # gzip copies are read as the file beside them
        if e.get("gz_copy"):
            out.append(pytest.param(dict(e, path=str(SHARED / e["gz_copy"])), id=e["gz_copy"]))
    return out + [pytest.param({"synth": kw}, id=f"synth-{i}") for i, kw in enumerate(SYNTH)]


# synthetic layouts (engine.synth): every path type incl. round ends, AREFs (one skewed), 8
# orientations, MAG 0.5/1.5/2, 30- and 45-degree placements; reference figures from KLayout and an
# independent record census (tests/gdsbytes.census)
SYNTH = [dict(die_um=40, density=50, seed=1),
         dict(die_um=30, density=200, seed=2, levels=3, dbu_um=0.0005, layers=6)]


def _synth_entry(kw, tmpdir):
    from engine.synth import synthesize
    from gdsbytes import census
    path = str(tmpdir / f"synth_{kw['seed']}.gds")
    synthesize(path, **kw)
    kl = kref.kload(path)
    with open(path, "rb") as f:
        records = census(f.read())
    return {"file": f"synth_{kw['seed']}.gds", "path": path, "records": records,
            "num_cells": len(kref.kcell_names(kl)), "top_cells": kref.ktop_cells(kl),
            "dbu_um": kl.dbu, "layers": [f"{l}/{d}" for l, d in kref.klayers_all(kl)]}


@pytest.fixture(scope="module", params=_params())
def pair(request, tmp_path_factory):
    e = request.param
    if "synth" in e:
        e = _synth_entry(e["synth"], tmp_path_factory.mktemp("synth"))
    ours = Ours(e["path"])
    kl = kref.kload(e["path"])
    return e, ours, kl


def test_schema_and_cells(pair):
    e, ours, kl = pair
    check_schema(ours.arrays)
    assert sorted(ours.names) == kref.kcell_names(kl)
    assert len(set(ours.names)) == len(ours.names), "duplicate cell names"
    tops = [ours.names[int(t)] for t in ours.arrays["top_cells"]]
    assert tops == sorted(tops) == kref.ktop_cells(kl)
    assert ours.info["cells"] == e["num_cells"] == len(kref.kcell_names(kl))
    assert sorted(ours.info["top_cells"]) == kref.ktop_cells(kl)
    a = ours.arrays
    assert ours.info["file_bytes"] == os.path.getsize(e["path"])
    assert ours.info["polygons"] == len(a["poly_vtx_rel"]) - 1 == len(a["poly_layer"])
    n = np.diff(vertex_offsets(a))
    assert ours.info["rectangles"] == np.count_nonzero(n == 0)
    assert ours.info["vertices"] == len(a["vtx"]) + 4 * ours.info["rectangles"]
    assert ours.info["placements"] == len(a["ref_cell"])
    assert ours.info["db_bytes"] >= sum(v.nbytes for v in a.values())
    assert isinstance(ours.info["seconds"], dict) and "index" in ours.info
    listed = [t for t in e["top_cells"] if not t.startswith("...")]  # the manifest abbreviates
    assert set(listed) <= set(ours.info["top_cells"])                # long lists "...(N total)"


def test_undefined_cells(pair):
    e, ours, kl = pair
    undefined = kref.kundefined_cells(kl)
    assert sorted(ours.meta["undefined_cells"]) == undefined
    rows = ours.cell_rows()
    defined = ours.arrays["cell_defined"]
    assert sorted(n for n in ours.names if not defined[rows[n]]) == undefined
    for n in undefined:  # kept as empty cells
        r = rows[n]
        assert ours.arrays["cell_poly_off"][r] == ours.arrays["cell_poly_off"][r + 1]
        assert ours.arrays["cell_ref_off"][r] == ours.arrays["cell_ref_off"][r + 1]
        assert ours.arrays["cell_offset"][r] == -1
    if undefined:
        text = " ".join(ours.meta.get("warnings", []))
        assert ours.meta["warnings"], "undefined cells must be reported as a warning"
        assert undefined[0] in text or str(len(undefined)) in text
    if e["file"].endswith("blend_crash_au.gds"):
        assert len(undefined) == 215 and len(ours.meta["undefined_cells"]) == 215
    assert sorted(ours.info["undefined_cells"]) == undefined


def test_record_counts(pair):
    e, ours, kl = pair
    want = {k: e["records"].get(k.upper(), 0) for k in KINDS}
    assert {k: ours.meta["counts"].get(k) for k in KINDS} == want
    assert {k: ours.info["counts"].get(k) for k in KINDS} == want


def test_dbu(pair):
    e, ours, kl = pair
    assert ours.meta["dbu_um"] == kl.dbu == e["dbu_um"]
    assert ours.info["dbu_um"] == kl.dbu


def test_layers(pair):
    e, ours, kl = pair
    geometry = kref.klayers_geometry(kl)
    assert ours.layer_list() == geometry
    # every layer row is used by at least one polygon (no layers made up from texts)
    assert sorted(set(ours.arrays["poly_layer"].tolist())) == list(range(len(geometry)))
    manifest = sorted(tuple(int(v) for v in s.split("/")) for s in e["layers"])
    assert manifest == kref.klayers_all(kl)
    left_out = set(manifest) - set(geometry)
    for ld in left_out:  # what we leave out: layers with only texts (or zero-width paths)
        li = kl.find_layer(*ld)
        for c in kl.each_cell():
            for sh in c.shapes(li).each():
                assert sh.is_text() or (sh.is_path() and sh.path_width == 0), (ld, c.name, sh)
    assert [tuple(x) for x in ours.info["layers"]] == geometry


def test_bboxes(pair):
    """Every cell's bbox against KLayout's, computed bottom-up over the geometry (texts excluded);
    exact where all placements are 90-degree; otherwise ours must enclose the exact flattened
    geometry and be no larger than KLayout's own enclosing box (1 dbu slack for rounding)."""
    e, ours, kl = pair
    ref = kref.kbboxes_geometry(kl)
    rows = ours.cell_rows()
    tops = kref.ktop_cells(kl)
    dbu = ours.meta["dbu_um"]
    if kref.k_all_orthogonal(kl):
        bad = [(n, ours.bbox(rows[n]), ref[n]) for n in ref if ours.bbox(rows[n]) != ref[n]]
        assert not bad, f"{len(bad)} cells differ (ours, KLayout): {bad[:5]}"
        union = kref.kdb.Box()
        for t in tops:
            if ref[t]:
                union += kref.kdb.Box(*ref[t])
        want_um = [union.left * dbu, union.bottom * dbu, union.right * dbu, union.top * dbu]
        bbox_um = want_um
    else:
        bbox_um = None
        for t in tops:
            flat, k = kref.kbbox_flat(kl, t), ref[t]
            b = ours.bbox(rows[t])
            assert b is not None
            assert b[0] <= flat[0] + 1 and b[1] <= flat[1] + 1
            assert b[2] >= flat[2] - 1 and b[3] >= flat[3] - 1
            assert b[0] >= k[0] - 1 and b[1] >= k[1] - 1 and b[2] <= k[2] + 1 and b[3] <= k[3] + 1
    own = ours.arrays["cell_own_bbox"]
    for n, r in rows.items():  # own bbox = bbox of the cell's own polygons
        p0, p1 = ours.arrays["cell_poly_off"][r], ours.arrays["cell_poly_off"][r + 1]
        if p0 == p1:
            assert own[r][0] > own[r][2]
        else:
            pb = ours.arrays["poly_bbox"][p0:p1]
            assert list(own[r]) == [pb[:, 0].min(), pb[:, 1].min(), pb[:, 2].max(), pb[:, 3].max()]
    if bbox_um is not None:
        assert ours.info["bbox_um"] == pytest.approx(bbox_um, rel=1e-12, abs=1e-12)


def test_poly_bbox_and_kind(pair):
    e, ours, kl = pair
    a = ours.arrays
    n = np.diff(vertex_offsets(a))
    assert np.all((n == 0) | (n >= 3))         # 0 vertices: the rectangle poly_bbox
    # every axis-parallel 4-vertex polygon is stored as its bbox alone (the compact form)
    so = vertex_offsets(a)[:-1][n == 4]
    q = [a["vtx"][so + i].astype(np.int64) for i in range(4)]
    rect_a = (q[0][:, 0] == q[1][:, 0]) & (q[1][:, 1] == q[2][:, 1]) & (q[2][:, 0] == q[3][:, 0]) \
        & (q[3][:, 1] == q[0][:, 1])
    rect_b = (q[0][:, 1] == q[1][:, 1]) & (q[1][:, 0] == q[2][:, 0]) & (q[2][:, 1] == q[3][:, 1]) \
        & (q[3][:, 0] == q[0][:, 0])
    assert not np.any(rect_a | rect_b)
    off, v = polygon_arrays(a)
    if len(off) > 1:
        mn = np.stack([np.minimum.reduceat(v[:, 0], off[:-1]), np.minimum.reduceat(v[:, 1], off[:-1])], 1)
        mx = np.stack([np.maximum.reduceat(v[:, 0], off[:-1]), np.maximum.reduceat(v[:, 1], off[:-1])], 1)
        vb = np.concatenate([mn, mx], axis=1)
        # poly_bbox is the vertices' bbox, except for round-ended paths (KLayout's box, below)
        plain = a["poly_kind"] != 1
        assert np.array_equal(a["poly_bbox"][plain], vb[plain])
    # every shape's box is KLayout's (Shape.bbox), per cell and layer as sorted rows
    cell_of = np.repeat(np.arange(len(ours.names)), np.diff(a["cell_poly_off"]))
    layers = ours.layer_list()
    kb = kref.kshape_bboxes(kl)
    for c, name in enumerate(ours.names):
        sel = cell_of == c
        for l in np.unique(a["poly_layer"][sel]).tolist():
            mine = kref._sorted_rows(a["poly_bbox"][sel & (a["poly_layer"] == l)].astype(np.int64))
            ref = kb.get(name, {}).get(layers[l])
            assert ref is not None and np.array_equal(mine, ref), (name, layers[l])
    kinds = np.bincount(a["poly_kind"], minlength=3)
    zero_width = sum(1 for c in kl.each_cell() for li in kl.layer_indexes()
                     for sh in c.shapes(li).each(kref.kdb.Shapes.SPaths) if sh.path_width == 0)
    assert kinds[1] == e["records"].get("PATH", 0) - zero_width
    assert kinds[2] == e["records"].get("BOX", 0)
    assert kinds[0] == e["records"].get("BOUNDARY", 0)


def test_shape_counts_per_cell_layer(pair):
    e, ours, kl = pair
    mine, ref = ours.poly_counts(), kref.kshape_counts(kl)
    bad = [(c, mine.get(c), ref[c]) for c in ref if mine.get(c, {}) != ref[c]]
    assert not bad, f"{len(bad)} cells differ (ours, KLayout): {bad[:3]}"


def test_areas_per_cell_layer(pair):
    e, ours, kl = pair
    mine, ref = ours.areas2(), kref.kareas2(kl)
    assert set(mine) == set(ref)
    bad = []
    for cell, per in ref.items():
        for ld in set(per) | set(mine[cell]):
            a, b = mine[cell].get(ld, 0), per.get(ld, 0)
            if abs(a - b) > 1e-9 * max(abs(a), abs(b)):
                bad.append((cell, ld, a / 2, b / 2, (a - b) / max(abs(b), 1)))
    assert not bad, (f"{len(bad)} (cell, layer) areas differ [cell, layer, ours, KLayout, rel]: "
                     f"{bad[:8]}")


def _lattice(n1, v1, n2, v2):
    """float64[n, 6]: the two (count, vx, vy) lattice entries of each placement in a canonical
    order (an entry with count 1 is (1, 0, 0): its vector moves nothing)."""
    e1 = np.column_stack([n1, v1]).astype(np.float64)
    e2 = np.column_stack([n2, v2]).astype(np.float64)
    e1[e1[:, 0] <= 1] = (1, 0, 0)
    e2[e2[:, 0] <= 1] = (1, 0, 0)
    k1, k2 = np.round(e1, 6), np.round(e2, 6)
    swap = (k1[:, 0] > k2[:, 0]) | ((k1[:, 0] == k2[:, 0]) & (
        (k1[:, 1] > k2[:, 1]) | ((k1[:, 1] == k2[:, 1]) & (k1[:, 2] > k2[:, 2]))))
    first = np.where(swap[:, None], e2, e1)
    second = np.where(swap[:, None], e1, e2)
    return np.concatenate([first, second], axis=1)


def _our_lattice(a):
    cols, rows, colvec, rowvec = ref_lattices(a)
    return _lattice(cols, colvec, rows, rowvec)


def _placement_table(parents, children, mats, lattice, ids):
    """Rows sorted canonically: [parent id, child id, m00, m01, m10, m11, tx, ty, lattice x6]."""
    t = np.column_stack([np.array([ids[p] for p in parents], dtype=np.float64),
                         np.array([ids[c] for c in children], dtype=np.float64),
                         mats, lattice]) if len(parents) else np.zeros((0, 14))
    key = np.round(t, 4)
    order = np.lexsort(key.T[::-1])
    return t[order]


def test_placements(pair):
    """Every SREF/AREF: parent, child, transform matrix (to 1e-9) and array lattice, as a multiset,
    against KLayout's instances (KLayout may list an AREF's two lattice vectors either way)."""
    e, ours, kl = pair
    a = ours.arrays
    ids = {n: i for i, n in enumerate(sorted(ours.names))}
    counts = np.diff(a["cell_ref_off"])
    parents = [n for n, k in zip(ours.names, counts.tolist()) for _ in range(k)]
    children = [ours.names[i] for i in a["ref_cell"].tolist()]
    mine = _placement_table(parents, children, ref_matrices(a), _our_lattice(a), ids)
    p = kref.kplacements(kl)
    ref = _placement_table(p["parent"], p["child"], kref.kplacement_matrices(p),
                           _lattice(p["na"], np.column_stack([p["ax"], p["ay"]]),
                                    p["nb"], np.column_stack([p["bx"], p["by"]])), ids)
    assert mine.shape == ref.shape, f"{len(mine)} placements, KLayout has {len(ref)}"
    if not len(ref):
        return
    names = sorted(ours.names)

    def show(i):
        return (names[int(ref[i, 0])], names[int(ref[i, 1])], mine[i].tolist(), ref[i].tolist())

    bad = np.flatnonzero((mine[:, :2] != ref[:, :2]).any(axis=1))
    assert not len(bad), f"{len(bad)} parent/child pairs differ, first {show(bad[0])}"
    bad = np.flatnonzero((np.abs(mine[:, 2:6] - ref[:, 2:6]) > 1e-9).any(axis=1))
    assert not len(bad), f"{len(bad)} matrices differ, first {show(bad[0])}"
    tol = 1e-9 * np.maximum(1.0, np.abs(ref[:, 6:8]))
    bad = np.flatnonzero((np.abs(mine[:, 6:8] - ref[:, 6:8]) > tol).any(axis=1))
    assert not len(bad), f"{len(bad)} translations differ, first {show(bad[0])}"
    tol = 1e-9 * np.maximum(1.0, np.abs(ref[:, 8:]))
    bad = np.flatnonzero((np.abs(mine[:, 8:] - ref[:, 8:]) > tol).any(axis=1))
    assert not len(bad), f"{len(bad)} array lattices differ, first {show(bad[0])}"


# -- files read twice must give the same database ------------------------------------------

@pytest.mark.parametrize("e", [e for e in shared_gds() if e.get("gz_copy")] or
                         [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_SHARED))],
                         ids=lambda e: e["gz_copy"] if e else "none")
def test_gzip_same_as_plain(e):
    plain, gz = Ours(e["path"]), Ours(str(SHARED / e["gz_copy"]))
    assert plain.arrays.keys() == gz.arrays.keys()
    for k in plain.arrays:
        assert np.array_equal(plain.arrays[k], gz.arrays[k]), k
    assert plain.meta["counts"] == gz.meta["counts"]


# -- layer filter ---------------------------------------------------------------------------

def _entry(suffix):
    for e in shared_gds():
        if e["file"].endswith(suffix):
            return e
    pytest.skip(SKIP_SHARED)


@pytest.mark.parametrize("suffix,spec", [
    ("sky130_fd_sc_hd__dfxtp_1.gds", [67]),                   # 67/20, 67/44, 67/16 (67/5 text)
    ("sky130_fd_sc_hd__dfxtp_1.gds", [(68, 20), 64]),          # one exact, one bare
    ("caravel/caravel_clocking.gds", [(68, 20), 66, "69/20"]),
    ("gds2para/nand2.gds", [49, (3, 0)]),
])
def test_layer_filter(suffix, spec):
    from engine.layers import matches, parse_layers
    e = _entry(suffix)
    full = Ours(e["path"])
    part = Ours(e["path"], layers=spec)
    specs = parse_layers(spec)
    want_layers = [ld for ld in full.layer_list() if matches(specs, *ld)]
    assert want_layers, "test spec selects nothing"
    assert part.layer_list() == want_layers
    fa, pa = full.areas2(), part.areas2()
    for cell in fa:
        assert pa[cell] == {ld: v for ld, v in fa[cell].items() if ld in want_layers}, cell
    fc, pc = full.poly_counts(), part.poly_counts()
    for cell in fc:
        assert pc[cell] == {ld: v for ld, v in fc[cell].items() if ld in want_layers}, cell
    # hierarchy unchanged by the filter
    assert part.names == full.names
    for k in ("ref_cell", "ref_xf", "ref_org", "ref_aref", "xf_mat", "aref_cols", "aref_rows",
              "cell_ref_off"):
        assert np.array_equal(part.arrays[k], full.arrays[k]), k
    assert [tuple(x) for x in part.info["layers"]] == want_layers


@pytest.mark.parametrize("suffix", ["gds2para/nand2.gds", "caravel/caravel_clocking.gds",
                                    "ihp/S540_S565.gds"])
def test_reader_direct_equals_open_layout(suffix):
    """engine.reader.load_gdsii straight into an arena holds the same geometry and hierarchy as
    open_layout (whose index may reorder polygons and placements within a cell)."""
    e = _entry(suffix)
    direct, full = Ours(e["path"], direct=True), Ours(e["path"])
    assert direct.names == full.names
    assert direct.areas2() == full.areas2()
    assert direct.poly_counts() == full.poly_counts()
    for k in ("cell_name_off", "cell_poly_off", "cell_ref_off", "cell_bbox", "cell_own_bbox",
              "cell_defined", "top_cells", "layer_ld"):
        assert np.array_equal(direct.arrays[k], full.arrays[k]), k
    assert direct.meta["counts"] == full.meta["counts"]
    ids = {n: i for i, n in enumerate(sorted(direct.names))}

    def table(o):
        a = o.arrays
        parents = [n for n, k in zip(o.names, np.diff(a["cell_ref_off"]).tolist()) for _ in range(k)]
        children = [o.names[i] for i in a["ref_cell"].tolist()]
        return _placement_table(parents, children, ref_matrices(a), _our_lattice(a), ids)

    assert np.array_equal(table(direct), table(full))
