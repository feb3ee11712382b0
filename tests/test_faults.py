"""run_windows under faults: a worker SIGKILLed mid-run, a failing window, the caller leaving early,
SIGTERM / Ctrl-C / SIGKILL of the coordinator. After each: no worker process left and no
/dev/shm/clipmill_* block left. Signals are sent to a coordinator run as a subprocess
(tests/_run_windows_child.py)."""
from __future__ import annotations

import glob
import json
import multiprocessing.resource_tracker as rt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from engine.api import run_windows
from engine.windowspec import WindowSpec

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_run_windows_child.py"
POR = "caravel/simple_por.gds"


@pytest.fixture(scope="module")
def por(shared_dir):
    return str(shared_dir / POR)


@pytest.fixture(scope="module")
def layout(por):
    from _run_windows_child import open_for_test
    lay = open_for_test(por)
    yield lay
    lay.close()


def _alive(pid) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until(cond, timeout):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _blocks(pid):
    return glob.glob(f"/dev/shm/clipmill_{pid}_*")


def _my_children():
    tracker = getattr(rt._resource_tracker, "_pid", None)
    return [p for p in psutil.Process().children(recursive=True)
            if p.pid != tracker and p.status() != psutil.STATUS_ZOMBIE]


def _start(scenario, por, workers=2, **env):
    e = dict(os.environ, PYTHONPATH=str(HERE.parent), **env)
    p = subprocess.Popen([sys.executable, str(CHILD), scenario, por, str(workers)], cwd=HERE.parent,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                         start_new_session=True,  # SIGINT: default, also from a background job
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    pids = None
    results = 0
    for line in p.stdout:                     # wait for the worker pids and a few results
        if line.startswith("PIDS"):
            pids = json.loads(line[5:])
        elif line.startswith("R"):
            results += 1
            if results >= 5:
                break
    assert pids, p.stderr.read()
    return p, pids


def _assert_clean(p, pids, timeout=10.0):
    assert _wait_until(lambda: not any(_alive(x) for x in pids), timeout), \
        f"workers still alive: {[x for x in pids if _alive(x)]}"
    assert _wait_until(lambda: not _blocks(p.pid), timeout), f"blocks left: {_blocks(p.pid)}"


# -- signals and kills (subprocess coordinator) -------------------------------------------------
def test_worker_sigkill_midrun_every_window_once(por):
    p = subprocess.Popen([sys.executable, str(CHILD), "kill_worker", por, "2"], cwd=HERE.parent,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(HERE.parent)))
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr[-3000:]
    pids = json.loads(next(x for x in stdout.splitlines() if x.startswith("PIDS"))[5:])
    done = json.loads(next(x for x in stdout.splitlines() if x.startswith("DONE"))[5:])
    assert sorted(done["seen"]) == list(range(done["n"]))          # every window exactly once
    assert [d[1] for d in done["deaths"]] == [done["killed"]]     # the one we killed, noticed
    assert done["deaths"][0][2] == -signal.SIGKILL
    assert done["match"]                                           # images == Layout.rasterize
    _assert_clean(p, pids + [done["killed"]], timeout=2.0)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_coordinator_signal_leaves_nothing(por, how):
    p, pids = _start("wait", por, 2)
    try:
        assert all(_alive(x) for x in pids)
        if how == "SIGINT":        # Ctrl-C: the terminal signals the whole process group
            os.killpg(p.pid, signal.SIGINT)
        else:
            os.kill(p.pid, getattr(signal, how))
        rc = p.wait(timeout=30)
        assert rc != 0
        if how == "SIGTERM":
            assert rc == 128 + signal.SIGTERM                     # SystemExit via shm.cleanup
        if how == "SIGKILL":
            assert rc == -signal.SIGKILL                           # workers must notice alone
        _assert_clean(p, pids)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for x in pids:
            if _alive(x):
                os.kill(x, signal.SIGKILL)


# -- in this process ----------------------------------------------------------------------------
def _windows(layout, n=24, step=2.0):
    x0, y0, *_ = (float(v) * layout.dbu_um for v in layout.db.cell_bbox[layout.resolve_cell(None)])
    return [(f"f{i}", x0 + step * (i % 6), y0 + step * (i // 6), x0 + step * (i % 6 + 1),
             y0 + step * (i // 6 + 1)) for i in range(n)]


def test_failing_windows_carry_errors_and_run_goes_on(layout):
    wins = [WindowSpec(*w) for w in _windows(layout)]
    wins[3] = WindowSpec(*_windows(layout)[3], cell="no_such_cell")

    def fmt(image, spec, info):
        if spec.name == "f7":
            raise RuntimeError("formatter failed on purpose")
        return {"sum": int(image.sum())}

    before = set(_blocks(os.getpid()))
    got = {r.index: r for r in run_windows(layout, wins, pixel_size=0.05, workers=2, formatter=fmt)}
    assert sorted(got) == list(range(len(wins)))
    assert "no_such_cell" in got[3].error and "'f3'" in got[3].error and got[3].image is None
    assert "formatter failed on purpose" in got[7].error and "'f7'" in got[7].error
    for i, r in got.items():
        if i not in (3, 7):
            assert r.error is None
            ref = layout.rasterize(r.window, 0.05, mode="binary")
            assert r.output == {"sum": int(ref.sum())} and np.array_equal(r.image, ref)
    assert not _my_children() and set(_blocks(os.getpid())) == before


@pytest.mark.parametrize("leave", ["break", "close", "exception"])
def test_caller_leaving_early_stops_workers(layout, leave):
    before = set(_blocks(os.getpid()))
    wins = _windows(layout, 36, 1.0)
    run = run_windows(layout, wins, pixel_size=0.05, workers=2, copy=False, ring_slots=3)
    pids = run.pids
    assert len(pids) == 2 and all(_alive(x) for x in pids)
    assert len(set(_blocks(os.getpid())) - before) == 2             # queue block + ring
    if leave == "break":
        for _ in run:
            break
        del run                                                     # abandoned: GC stops it
    elif leave == "close":
        next(run)
        run.close()
        assert list(run) == []
    else:
        with pytest.raises(ZeroDivisionError):
            with run:
                for _ in run:
                    1 / 0
    assert _wait_until(lambda: not any(_alive(x) for x in pids), 5)
    assert not _my_children() and set(_blocks(os.getpid())) == before
