"""pytest-benchmark: rasterize a 10 x 10 um window at 10 nm (1000 x 1000 pixels) holding 2000,
20000 and 200000 polygons (layout-like synthetic windows of bench/raster_vs_klayout.py), binary
and gray, beside KLayout's ``Region.merged().rasterize`` on the same polygons (same group).

    python -m pytest bench/bench_raster.py --benchmark-only --benchmark-group-by=group

extra_info carries Mpixels/s and polygon edges/s. For a side-by-side printout (and the
worst-case random-overlap windows and a real file) run ``python bench/raster_vs_klayout.py``.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from raster_vs_klayout import PIXEL, WINDOW, kl_rasterize, kl_region, synth_window  # noqa: E402

COUNTS = [2000, 20000, 200000]
_cache = {}


def _window(n):
    if n not in _cache:
        _cache[n] = synth_window(n, "layout")
    return _cache[n]


@pytest.mark.parametrize("mode", ["binary", "gray"])
@pytest.mark.parametrize("n", COUNTS)
def test_raster_clipmill(benchmark, n, mode):
    from engine.raster import Scratch, rasterize
    polys = _window(n)
    sc = Scratch()
    rasterize(polys, WINDOW, PIXEL, mode=mode, scratch=sc)  # compile, grow the scratch
    benchmark.group = f"rasterize 1000x1000, {n} polygons"
    img = benchmark.pedantic(rasterize, args=(polys, WINDOW, PIXEL),
                             kwargs={"mode": mode, "scratch": sc}, rounds=10, warmup_rounds=1)
    if benchmark.stats:     # None under --benchmark-disable (a smoke run)
        t = benchmark.stats.stats.min
        benchmark.extra_info.update(mpixels_per_s=img.size / t / 1e6,
                                    medges_per_s=int(polys.offsets[-1]) / t / 1e6)


@pytest.mark.parametrize("n", COUNTS)
def test_raster_klayout(benchmark, n):
    pytest.importorskip("klayout.db")
    polys = _window(n)
    reg = kl_region(polys)
    benchmark.group = f"rasterize 1000x1000, {n} polygons"
    benchmark.pedantic(kl_rasterize, args=(reg, WINDOW, PIXEL), rounds=2)
    if benchmark.stats:
        t = benchmark.stats.stats.min
        benchmark.extra_info.update(mpixels_per_s=1e6 / t / 1e6,
                                    medges_per_s=int(polys.offsets[-1]) / t / 1e6)
