"""The cost model's fitting code against data generated from known laws (no timing involved)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.model import (SEED_TARGETS, CostModel, StageFit, fit_stage, nnls, parallel_fraction,
                          rel_error, speedup)


def test_nnls_matches_unconstrained_when_solution_positive():
    rng = np.random.default_rng(1)
    A = rng.uniform(0.1, 1, size=(40, 3))
    x_true = np.array([0.5, 2.0, 3.0])
    b = A @ x_true
    np.testing.assert_allclose(nnls(A, b), x_true, rtol=1e-9)


def test_nnls_clamps_negative_and_is_optimal():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(30, 4))
    b = A @ np.array([1.0, -2.0, 0.5, -0.1]) + 0.01 * rng.normal(size=30)
    x = nnls(A, b)
    assert (x >= 0).all()
    # KKT conditions: gradient w = A^T(b - Ax) <= 0 on the zero set, ~0 on the positive set
    w = A.T @ (b - A @ x)
    assert (w[x == 0] <= 1e-8).all()
    np.testing.assert_allclose(w[x > 0], 0, atol=1e-8)
    # brute force over the 16 active sets
    best = math.inf
    for mask in range(16):
        cols = [i for i in range(4) if mask >> i & 1]
        z = np.zeros(4)
        if cols:
            z[cols] = np.linalg.lstsq(A[:, cols], b, rcond=None)[0]
        if (z >= 0).all():
            best = min(best, float(np.sum((A @ z - b) ** 2)))
    assert float(np.sum((A @ x - b) ** 2)) == pytest.approx(best, rel=1e-9)


def test_fit_recovers_known_scan_law_and_extrapolates():
    # seconds = 2 ms + 1 s/GB, 3% multiplicative noise, sizes 10 MB .. 1 GB; predict 10 GB
    rng = np.random.default_rng(3)
    sizes = np.geomspace(1e7, 1e9, 12)
    rows = [{"file_bytes": s, "seconds": (2e-3 + s * 1e-9) * (1 + 0.03 * rng.standard_normal())}
            for s in sizes]
    fit = fit_stage("scan", rows)
    assert fit.features == ["1", "file_bytes"]
    assert fit.coef[1] == pytest.approx(1e-9, rel=0.05)
    assert fit.coef[0] == pytest.approx(2e-3, rel=0.5)
    assert fit.r2 > 0.99
    assert 0 < fit.max_rel_resid < 0.15
    assert rel_error(fit.predict({"file_bytes": 1e10}), 2e-3 + 10.0) == pytest.approx(0, abs=0.06)


def test_fit_two_features_and_drops_constant_feature():
    rng = np.random.default_rng(4)
    rows = []
    for _ in range(50):
        px, ed = rng.uniform(1e4, 1e6), rng.uniform(1e3, 1e6)
        t = 1e-4 + 3e-9 * px + 2e-8 * ed
        rows.append({"pixels": px, "edges": ed, "seconds": t})
    fit = fit_stage("raster", rows)
    np.testing.assert_allclose(fit.coef, [1e-4, 3e-9, 2e-8], rtol=1e-6)
    assert fit.r2 == pytest.approx(1.0)
    # depth constant across rows: cannot be told from the fixed cost, dropped
    rows = [{"polygons": p, "depth": 4, "seconds": 1e-5 + 1e-7 * p} for p in range(10, 1000, 50)]
    fit = fit_stage("explode", rows)
    assert fit.dropped == ["depth"]
    assert fit.predict({"polygons": 200000}) == pytest.approx(1e-5 + 2e-2, rel=1e-6)
    with pytest.raises(ValueError):
        fit_stage("write", [])


def test_stagefit_roundtrip_dict():
    fit = StageFit("write", ["1", "bytes"], [1e-4, 1e-9], 0.99, 0.1, 5)
    d = fit.to_dict()
    assert "ms" in d["law"]
    assert StageFit.from_dict(d).predict({"bytes": 1e6}) == pytest.approx(1e-4 + 1e-3)


def test_amdahl_parallel_fraction():
    for p in (0.5, 0.9, 1.0):
        thr = {w: 100.0 * speedup(w, p) for w in (1, 2, 4, 8)}
        assert parallel_fraction(thr) == pytest.approx(p, abs=1e-9)
    assert parallel_fraction({1: 10.0}) == 1.0
    assert speedup(20, 1.0) == pytest.approx(20)
    assert speedup(20, 0.0) == pytest.approx(1)


def _model(db_ratio=0.3):
    fits = {
        "scan": StageFit("scan", ["1", "file_bytes"], [0.0, 1e-9], 1, 0, 3),      # 1 GB/s
        "index": StageFit("index", ["1", "db_bytes"], [0.0, 1e-10], 1, 0, 3),
        "explode": StageFit("explode", ["1", "polygons"], [1e-4, 1e-7], 1, 0, 3),
        "raster": StageFit("raster", ["1", "pixels", "edges"], [0.0, 1e-9, 1e-8], 1, 0, 3),
        "write": StageFit("write", ["1", "bytes"], [1e-4, 1e-9], 1, 0, 3),
    }
    ratios = {"db_ratio": db_ratio, "index_ratio": 0.02, "edges_per_polygon": 4.0,
              "write_bytes_per_pixel": 0.125, "parallel_fraction": 1.0,
              "coordinator_s_per_window": 1e-5, "worker_rss_bytes": 1e8}
    return CostModel(fits, ratios)


def test_predict_by_hand():
    t = dict(SEED_TARGETS[0])
    t["disk_bw"] = 1e12  # CPU bound scan
    out = _model().predict(t)
    # 2000 polygons/um2 x 100 um2 = 200000 polygons, 1e6 pixels, 8e5 edges
    assert out["polygons_per_window"] == pytest.approx(2e5)
    assert out["explode_seconds"] == pytest.approx(1e-4 + 2e-2)
    assert out["raster_seconds"] == pytest.approx(1e-3 + 8e-3)
    assert out["write_seconds"] == pytest.approx(1e-4 + 1.25e5 * 1e-9)
    assert out["scan_seconds"] == pytest.approx(50.0)
    assert out["bottleneck_stage"] == "explode"
    assert out["workers"] == 19
    assert out["windows_per_second"] == pytest.approx(19 / out["per_window_seconds"])
    assert out["fits_in_ram"] is True
    assert out["total_seconds"] == pytest.approx(50 + 1.5 + 1e5 / out["windows_per_second"])


def test_predict_big_file_needs_mapping():
    out = _model(db_ratio=0.5).predict(SEED_TARGETS[1])   # 250 GB database > 192 GB RAM
    assert out["fits_in_ram"] is False
    assert "mapped" in out["database"]
    assert out["scan_seconds"] == pytest.approx(max(500.0, 500e9 / 2e9))
    d = _model().to_dict()
    assert CostModel.from_dict(d).predict(SEED_TARGETS[0])["windows_per_second"] == \
        pytest.approx(_model().predict(SEED_TARGETS[0])["windows_per_second"])
