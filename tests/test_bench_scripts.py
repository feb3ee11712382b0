"""The rasterizer's benchmark scripts still run (speed itself is never asserted in tests): the
pytest-benchmark file as a smoke run, and the KLayout comparison on small windows."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SKIP_SHARED

ROOT = Path(__file__).resolve().parent.parent


def _run(args):
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    return p.stdout


def test_bench_raster_smoke():
    pytest.importorskip("pytest_benchmark")
    out = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "bench/bench_raster.py",
                "--benchmark-disable"])
    assert "9 passed" in out, out[-2000:]


def test_raster_vs_klayout_small():
    pytest.importorskip("klayout.db")
    out = _run(["bench/raster_vs_klayout.py", "--counts", "300", "--kinds", "layout,random",
                "--repeats", "1"])
    rows = [ln.split() for ln in out.splitlines() if ln.startswith(("layout", "random"))]
    assert {(r[0], r[2]) for r in rows} >= {("layout", "binary"), ("layout", "gray"),
                                            ("random", "binary"), ("random", "gray")}, out
    assert all(float(r[3]) > 0 and r[8].endswith("x") for r in rows), out


def test_shuffled_windows_small():
    """--shuffle: the same polygons in another order (B.shuffled keeps each polygon whole), in
    the KLayout comparison and the stage split."""
    pytest.importorskip("klayout.db")
    sys.path.insert(0, str(ROOT / "bench"))
    import raster_vs_klayout as B
    p = B.synth_window(50, "random")
    q = B.shuffled(p)
    assert sorted(map(lambda a: a.tobytes(), (p[i] for i in range(len(p))))) == sorted(
        map(lambda a: a.tobytes(), (q[i] for i in range(len(q)))))
    assert (q.xy != p.xy).any()
    out = _run(["bench/raster_vs_klayout.py", "--counts", "300", "--kinds", "layout",
                "--repeats", "1", "--shuffle", "--gds", ""])
    assert "layout/shuf" in out and "gray" in out, out
    out = _run(["bench/profile_gray_stages.py", "--counts", "300", "--repeats", "1", "--shuffle",
                "--gds", ""])
    assert out.startswith("layout 300 shuffled:") and "finish_gray" in out, out


def test_raster_vs_klayout_shared():
    """--shared 1: the largest shared file's densest window, alone (no synthetic, no SRAM)."""
    pytest.importorskip("klayout.db")
    sys.path.insert(0, str(ROOT / "bench"))
    import raster_vs_klayout as B
    paths = B.largest_shared(1)
    if not paths:
        pytest.skip(SKIP_SHARED)
    out = _run(["bench/raster_vs_klayout.py", "--counts", "", "--gds", "", "--shared", "1",
                "--repeats", "1"])
    rows = [ln.split() for ln in out.splitlines() if ln.startswith(paths[0].stem[:16])]
    assert [r[2] for r in rows] == ["binary", "gray"] and rows[1][8].endswith("x"), out


def test_manhattan_cut_small():
    out = _run(["bench/manhattan_cut.py", "--count", "500", "--shares", "0,0.3", "--repeats", "1"])
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["0.0", "0.3"], out
    assert all(int(r[-1]) <= 1 for r in rows), out     # the cut changes no pixel by more than 1


def test_raster_call_cost_small():
    out = _run(["bench/raster_call_cost.py", "--sizes", "0.4,1", "--repeats", "3",
                "--kl-repeats", "1"])
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("0.4um", "1600"), ("1um", "10000")], out
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in rows), out
