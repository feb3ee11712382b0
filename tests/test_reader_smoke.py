"""Smoke test of engine.reader on a few real layouts: figures against the manifest (KLayout's)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED, SKIP_SHARED, shared_gds

from engine.database import check_schema, vertex_offsets
from engine.reader import load_gdsii

PICK = ["klayout/gds/arefs_skew.gds", "klayout/designs/blend_crash_au.gds",
        "gdstk/proof_lib.gds", "caravel/caravel_clocking.gds", "ihp/S540_S565.gds",
        "siepic_ebeam_pdk/MiniChip_1mm.gds"]
RECORDS = {"boundary": "BOUNDARY", "path": "PATH", "box": "BOX", "text": "TEXT", "node": "NODE",
           "sref": "SREF", "aref": "AREF"}


def entries():
    have = {e["file"]: e for e in shared_gds()}
    return [pytest.param(have[f], id=f) for f in PICK if f in have] or [
        pytest.param(None, marks=pytest.mark.skip(reason=SKIP_SHARED))]


def names_of(a):
    off, data = a["cell_name_off"], bytes(a["cell_name_data"])
    return [data[off[i]:off[i + 1]].decode("latin-1") for i in range(len(off) - 1)]


@pytest.mark.parametrize("e", entries())
def test_against_manifest(e):
    a, meta = load_gdsii(e["path"])
    check_schema(a)
    names = names_of(a)
    assert meta["dbu_um"] == e["dbu_um"]
    assert len(names) == e["num_cells"]
    tops = sorted(names[c] for c in a["top_cells"])
    if len(e["top_cells"]) == len(tops):
        assert tops == sorted(e["top_cells"])
    assert {k: meta["counts"][k] for k in RECORDS} == {k: e["records"].get(v, 0)
                                                       for k, v in RECORDS.items()}
    # every (layer, datatype) we hold geometry on is one KLayout lists
    assert {f"{l}/{d}" for l, d in a["layer_ld"]} <= set(e["layers"])
    b = a["cell_bbox"][a["top_cells"]]
    b = b[b[:, 0] <= b[:, 2]]
    box_um = np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]) * meta["dbu_um"]
    # the manifest rounds to 4 decimals in places; texts may widen KLayout's box
    assert np.all(box_um[:2] >= np.array(e["bbox_um"][:2]) - 1e-4)
    assert np.all(box_um[2:] <= np.array(e["bbox_um"][2:]) + 1e-4)
    # structure of the arrays
    off = vertex_offsets(a)
    n = np.diff(off)
    assert off[0] == 0 and off[-1] == len(a["vtx"]) and np.all((n == 0) | (n >= 3))
    assert np.all(np.diff(a["cell_poly_off"]) >= 0)
    assert a["cell_poly_off"][-1] == len(a["poly_kind"])
    assert np.all(a["ref_cell"] < len(names))
    if e["file"].endswith("blend_crash_au.gds"):
        assert len(meta["undefined_cells"]) == 215
        assert int((a["cell_defined"] == 0).sum()) == 215
        assert any("not defined" in w for w in meta["warnings"])


def test_layer_filter_and_gzip():
    have = {e["file"]: e for e in shared_gds()}
    if "caravel/simple_por.gds" not in have:
        pytest.skip(SKIP_SHARED)
    plain, meta = load_gdsii(have["caravel/simple_por.gds"]["path"])
    gzpath = SHARED / "caravel" / "simple_por.gds.gz"     # gzip copy (not in the manifest)
    if not gzpath.exists():
        pytest.skip(f"{gzpath} absent")
    gz, gmeta = load_gdsii(gzpath)
    for k in plain:
        assert np.array_equal(plain[k], gz[k]), k
    assert meta["counts"] == gmeta["counts"]
    lay = int(plain["layer_ld"][0, 0])
    part, pmeta = load_gdsii(have["caravel/simple_por.gds"]["path"], layers=[lay])
    assert pmeta["counts"] == meta["counts"]          # record counts ignore the filter
    assert set(part["layer_ld"][:, 0].tolist()) == {lay}
    keep = plain["layer_ld"][plain["poly_layer"], 0] == lay
    assert len(part["poly_kind"]) == int(keep.sum())
    assert np.array_equal(np.sort(part["poly_bbox"], axis=0),
                          np.sort(plain["poly_bbox"][keep], axis=0))
