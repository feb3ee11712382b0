"""pytest-benchmark: run_windows over the bench suite's 32 windows (bench/conftest.py: synthetic
layout, 10 x 10 um windows, pixel PIXEL_UM), in process and with 1 and 2 forked workers.

    python -m pytest bench/bench_run_windows.py --benchmark-only
KLayout side by side, time to first result and coordinator CPU share:
bench/run_windows_vs_klayout.py."""
from __future__ import annotations

import pytest
from conftest import PIXEL_UM

import engine


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_run_windows(benchmark, layout, windows, workers):
    wins = [tuple(w) for w in windows]
    list(engine.run_windows(layout, wins[:1], pixel_size=PIXEL_UM, workers=0))  # compile once

    def run():
        return sum(1 for r in engine.run_windows(layout, wins, pixel_size=PIXEL_UM,
                                                 workers=workers) if r.error is None)

    n = benchmark.pedantic(run, rounds=1, iterations=1)
    assert n == len(wins)
    benchmark.extra_info["windows"] = len(wins)
    if benchmark.stats:     # None under --benchmark-disable (a smoke run)
        benchmark.extra_info["windows_per_s"] = len(wins) / benchmark.stats.stats.mean
