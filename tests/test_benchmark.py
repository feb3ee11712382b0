"""`clipmill bench --quick` end to end: report files, stage times, model, held-out check.

No speed is asserted (speed belongs in bench/); the run's results are checked for completeness and
the exploded polygon counts against KLayout's on the same windows (an independent reference).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from engine.model import STAGE_FEATURES


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_quick")
    # `clipmill bench --quick --out DIR`, through the CLI's dispatch
    cmd = [sys.executable, "-m", "engine.cli", "bench", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_quick_writes_report_plots_and_json(quick_report):
    out, stdout = quick_report
    for name in ("report.md", "results.json", "stage_time_vs_size.png", "per_window_stages.png",
                 "windows_per_second_vs_workers.png", "predicted_totals.png"):
        p = out / name
        assert p.exists() and p.stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    for heading in ("Cost model", "Held-out check", "Predictions", "KLayout", "run_windows"):
        assert heading in md
    assert "held-out scan" in stdout


def test_quick_results_have_stage_times_model_and_predictions(quick_report):
    out, _ = quick_report
    res = json.loads((out / "results.json").read_text())
    assert res["errors"] == [], res["errors"]
    lays = res["layouts"]
    assert sum(1 for r in lays if r["heldout"]) == 1 and len(lays) >= 4
    sizes = [r["file_bytes"] for r in lays]
    held = next(r for r in lays if r["heldout"])
    assert held["file_bytes"] == max(sizes)          # the held-out file is the largest
    for r in lays:
        assert r["scan_seconds"] > 0 and r["index_seconds"] > 0
        assert r["db_bytes"] > 0 and r["index_bytes"] > 0
        assert r["explode"] and all(x["seconds"] > 0 for x in r["explode"])
        assert r["raster"] and all(x["pixels"] > 0 for x in r["raster"])
    assert any(r.get("write") for r in lays)
    # every stage of the model fitted, with its fit quality
    fits = res["model"]["fits"]
    assert set(fits) == set(STAGE_FEATURES)
    for f in fits.values():
        assert math.isfinite(f["r2"]) and math.isfinite(f["max_rel_resid"]) and f["n"] >= 2
    # held-out: predicted vs measured per stage, error finite
    h = res["heldout"]
    assert math.isfinite(h["max_abs_rel_error"])
    for stage in ("scan", "index", "explode", "raster"):
        v = h["stages"][stage]
        assert v["measured_seconds"] > 0 and v["predicted_seconds"] > 0
        assert math.isfinite(v["rel_error"])
    # predictions for the seed targets
    preds = res["predictions_all"]
    assert [p["target"]["file_bytes"] for p in preds] == [50e9, 500e9]
    for p in preds:
        assert p["windows_per_second"] > 0 and math.isfinite(p["total_seconds"])
        assert p["bottleneck_stage"] in ("explode", "raster", "write")
        assert isinstance(p["fits_in_ram"], bool)
        assert p["polygons_per_window"] == pytest.approx(2000 * 100)
    # end to end at every worker count, every window back
    e2e = held["e2e"]
    assert [r["workers"] for r in e2e] == list(range(1, len(e2e) + 1))
    for r in e2e:
        assert r["windows"] == res["plan"]["e2e_windows"] and r["errors"] == 0
        assert r["worker_maxrss_inside"] and r["coordinator_rss_peak"] > 0


def test_quick_explode_counts_match_klayout(quick_report):
    out, _ = quick_report
    res = json.loads((out / "results.json").read_text())
    if not res["klayout"]:
        pytest.skip("klayout not installed")
    rows = res["klayout_ratios"]
    assert len(rows) == len(res["layouts"])
    for r in rows:
        # same windows: polygons touching each window, KLayout's Region vs our exploder
        assert r["polygons_ours"] == r["polygons_klayout"] > 0
        assert r["read_klayout_s"] > 0 and r["explode_klayout_s"] > 0
    assert os.path.exists(out / "results.json")


def _synthetic_results(noise=0.02, seed=0):
    """A results dict as run_benchmark makes it, its times drawn from known laws (no timing)."""
    import numpy as np
    from engine.benchmark import machine_info, plan
    rng = np.random.default_rng(seed)

    def jitter(t):
        return t * (1 + noise * rng.standard_normal())
    lays = []
    for i, mb in enumerate([2, 4, 8, 32]):
        fb = mb * 1e6
        db = 0.3 * fb
        rec = {"name": f"s{mb}", "file_bytes": fb, "heldout": i == 3, "synth": {"levels": 4},
               "scan_seconds": jitter(1e-3 + fb / 500e6), "index_seconds": jitter(db / 1e9),
               "db_bytes": db, "index_bytes": 0.02 * fb, "polygons_db": int(fb / 50),
               "explode": [], "raster": [], "write": []}
        for _ in range(10):
            n = int(rng.integers(100, 20000))
            px = float(rng.choice([250_000, 1_000_000]))
            rec["explode"].append({"window": [0, 0, 10, 10], "polygons": n, "vertices": 4 * n,
                                   "seconds": jitter(2e-5 + 1e-7 * n)})
            rec["raster"].append({"window": [0, 0, 10, 10], "pixels": px, "edges": 4 * n,
                                  "polygons": n,
                                  "seconds": jitter(1e-4 + 2e-9 * px + 5e-9 * 4 * n)})
            rec["write"].append({"pixels": px, "bytes": px / 8,
                                 "seconds": jitter(1e-4 + px / 8 / 1e9),
                                 "format": "tiff"})
        lays.append(rec)
    lays[-1]["e2e"] = [{"workers": w, "windows": 50, "errors": 0, "seconds": 50 / (100 * w ** 0.9),
                        "first_result_seconds": 0.2, "windows_per_second": 100 * w ** 0.9,
                        "coordinator_cpu_seconds": 0.01, "coordinator_cpu_share": 0.05,
                        "coordinator_rss_peak": 1e8, "worker_rss_peak_sampled": [5e7] * w,
                        "worker_maxrss_inside": [6e7] * w, "format": "tiff"} for w in (1, 2)]
    return {"plan": plan(True), "quick": True, "machine": machine_info(), "klayout": False,
            "layouts": lays, "errors": []}


def test_analysis_and_report_on_known_laws(tmp_path):
    from engine.benchmark import analyse, write_report
    from engine.model import SEED_TARGETS
    res = _synthetic_results()
    analyse(res, SEED_TARGETS)
    fits = res["model"]["fits"]
    scan = dict(zip(fits["scan"]["features"], fits["scan"]["coef"]))
    assert scan["file_bytes"] == pytest.approx(1 / 500e6, rel=0.1)
    ex = dict(zip(fits["explode"]["features"], fits["explode"]["coef"]))
    assert ex["polygons"] == pytest.approx(1e-7, rel=0.05)
    assert fits["explode"]["dropped"] == ["depth"]      # depth is constant in these layouts
    # held-out (4x larger file) predicted within a few percent of the law's value
    h = res["heldout"]
    assert h["max_abs_rel_error"] < 0.1 and h["within_25pct"]
    assert res["model"]["ratios"]["db_ratio"] == pytest.approx(0.3)
    assert res["model"]["ratios"]["parallel_fraction"] == pytest.approx(
        (1 - 2 ** -0.9) / 0.5, rel=1e-6)              # Amdahl p from speedup 2**0.9
    p = res["predictions_all"][0]
    assert p["explode_seconds"] == pytest.approx(2e-5 + 1e-7 * 2e5, rel=0.05)
    write_report(res, str(tmp_path))
    assert (tmp_path / "report.md").read_text().count("|") > 20
    assert {f.name for f in tmp_path.glob("*.png")} == {
        "stage_time_vs_size.png", "per_window_stages.png", "windows_per_second_vs_workers.png",
        "predicted_totals.png"}
    assert json.loads((tmp_path / "results.json").read_text())["heldout"]["stages"]["scan"]
