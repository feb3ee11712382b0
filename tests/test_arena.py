"""Shared-memory arenas: zero-copy sharing with a forked child, and no /dev/shm/clipmill_* block
left behind after normal exit, an exception, SIGTERM, Ctrl-C (SIGINT) or SIGKILL of the owner."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ClipmillError
from shm.arena import Arena

ROOT = Path(__file__).resolve().parent.parent
SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm on this system")


def blocks_of(pid: int) -> list[str]:
    return sorted(p.name for p in SHM.glob(f"clipmill_{pid}_*"))


def _child_write(name, q):
    try:
        a = Arena.attach(name)
        x = a["x"]
        q.put(("seen", float(x.sum()), int(x.__array_interface__["data"][0] != 0)))
        x[:] = 7.0  # written in the child ...
        a["meta_like"][0] = 42
        del x
        a.close()
        q.put(("ok",))
    except BaseException as e:  # report instead of hanging the parent
        q.put(("error", repr(e)))


def test_fork_child_sees_and_writes_same_bytes():
    arrays = {"x": np.arange(1000, dtype=np.float64), "meta_like": np.zeros(4, dtype=np.int64)}
    with Arena.from_arrays(arrays, {"k": 1}, tag="t") as a:
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child_write, args=(a.name, q))
        p.start()
        first = q.get(timeout=60)
        second = q.get(timeout=60)
        p.join(60)
        assert first[0] == "seen", first
        assert first[1] == float(np.arange(1000).sum())
        assert second == ("ok",), second
        assert p.exitcode == 0
        # ... seen in the parent through the same pages: zero copy
        assert np.all(a["x"] == 7.0)
        assert a["meta_like"][0] == 42
        assert a.meta == {"k": 1}
        name = a.name
        assert (SHM / name).exists()
    assert not (SHM / name).exists(), "owner's close() must unlink"


def test_attach_views_are_zero_copy_in_same_process():
    with Arena.from_arrays({"v": np.arange(10, dtype=np.int32)}) as a:
        b = Arena.attach(a.name)
        try:
            b["v"][3] = -5
            assert a["v"][3] == -5
            assert not b.owner
        finally:
            b.close()
        assert (SHM / a.name).exists(), "an attacher's close() must not unlink"


def test_attach_missing_block():
    with pytest.raises(ClipmillError):
        Arena.attach("clipmill_0_nothing_deadbeef")


def test_roundtrip_dtypes_and_shapes(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "u8": rng.integers(0, 255, 37, dtype=np.uint8),
        "i32": rng.integers(-2**31, 2**31 - 1, (11, 2), dtype=np.int32),
        "i64": rng.integers(-2**62, 2**62, (5, 4), dtype=np.int64),
        "f64": rng.normal(size=(3, 6)),
        "empty": np.zeros((0, 4), dtype=np.int64),
    }
    meta = {"a": [1, 2], "s": "x\u00e9"}
    with Arena.from_arrays(arrays, meta) as a:
        path = tmp_path / "a.arena"
        a.save(path)
    b = Arena.open_file(path)
    try:
        assert set(b.keys()) == set(arrays)
        for k, v in arrays.items():
            assert b[k].dtype == v.dtype and b[k].shape == v.shape and np.array_equal(b[k], v), k
            assert b[k].ctypes.data % 64 == 0 or b[k].size == 0
        assert b.meta == meta
        b["u8"][0] = arrays["u8"][0] + 1  # copy-on-write map: private to this process
    finally:
        b.close()
    with Arena.open_file(path) as c:  # ... the file itself never changes
        assert np.array_equal(c["u8"], arrays["u8"])


def test_layout_built_into_arena_attachers_see_final_meta_and_arrays():
    """open_layout builds the database straight into its arena; meta written after the arrays
    (index figures, timings) reaches a process attaching by name, and the arrays equal a plain
    numpy build of the same file."""
    from engine import index, open_layout, reader
    demo = ROOT / "engine" / "data" / "demo.gds"
    with open_layout(demo) as lay:
        other = Arena.attach(lay.arena.name)
        try:
            assert other.meta["index"] == lay.arena.meta["index"]
            assert other.meta["seconds"]["index"] > 0
            assert other.meta["schema"] == lay.arena.meta["schema"]
            arrays, meta = reader.load_gdsii(demo)
            plain = index.build_index(arrays, meta, leaf_size=other.meta["index"]["leaf_size"])
            assert sorted(plain) == sorted(other.keys())
            for k, v in plain.items():
                assert np.array_equal(other[k], v), k
        finally:
            other.close()


def test_open_file_rejects_garbage(tmp_path):
    p = tmp_path / "x.arena"
    p.write_bytes(b"NOTCLIPM" + b"\0" * 100)
    with pytest.raises(ClipmillError):
        Arena.open_file(p)
    p.write_bytes(b"CLIP")
    with pytest.raises(ClipmillError):
        Arena.open_file(p)


# -- cleanup in subprocesses ------------------------------------------------------------------

PRELUDE = f"""
import os, sys, time, signal
sys.path.insert(0, {str(ROOT)!r})
import numpy as np
from shm.arena import Arena
arenas = [Arena.from_arrays({{"x": np.ones(1000 + i)}}, tag="t") for i in range(3)]
print("READY", os.getpid(), " ".join(a.name for a in arenas), flush=True)
"""

SCRIPTS = {
    "normal_exit": PRELUDE + "sys.exit(0)\n",
    "exception": PRELUDE + "raise RuntimeError('boom')\n",
    "sigterm_self": PRELUDE + "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)\n",
    "sigint_self": PRELUDE + "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n",
    "sigterm": PRELUDE + "time.sleep(60)\n",
    "sigint": PRELUDE + "time.sleep(60)\n",
    "sigkill": PRELUDE + "time.sleep(60)\n",
    "fork_then_sigterm": PRELUDE + """
import multiprocessing as mp
ctx = mp.get_context("fork")
def work(name):
    b = Arena.attach(name); b["x"][0] = 3; b.close()
p = ctx.Process(target=work, args=(arenas[0].name,)); p.start(); p.join()
assert arenas[0]["x"][0] == 3
print("FORKED", flush=True)
time.sleep(60)
""",
    "sigkill_with_worker": PRELUDE + """
import multiprocessing as mp
ctx = mp.get_context("fork")
def work(name):
    b = Arena.attach(name); time.sleep(1.5); b["x"][0] = 3; b.close()
p = ctx.Process(target=work, args=(arenas[0].name,)); p.start()
print("FORKED", p.pid, flush=True)
time.sleep(60)
""",
}
SIGNALS = {"sigkill_with_worker": signal.SIGKILL, "sigterm": signal.SIGTERM, "sigint": signal.SIGINT, "sigkill": signal.SIGKILL,
           "fork_then_sigterm": signal.SIGTERM}


def _wait_gone(names, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not any((SHM / n).exists() for n in names):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", sorted(SCRIPTS))
def test_no_block_survives(how):
    # a shell's background job inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: give the child the default disposition, as a terminal would
    p = subprocess.Popen([sys.executable, "-c", SCRIPTS[how]], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = p.stdout.readline()
        assert line.startswith("READY"), (line, p.stderr.read() if p.poll() is not None else "")
        _, pid, names = line.split(" ", 2)
        names = names.split()
        assert len(names) == 3 and all(n.startswith(f"clipmill_{pid}_") for n in names)
        if how in ("fork_then_sigterm", "sigkill_with_worker"):
            assert p.stdout.readline().startswith("FORKED")
        if how in SIGNALS:
            assert all((SHM / n).exists() for n in names), "blocks should exist while it runs"
            os.kill(p.pid, SIGNALS[how])
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if how.startswith("sigkill"):
        # nothing in the process runs: Python's resource tracker unlinks once the owner (and a
        # forked worker that shares the tracker, which finishes 1.5 s later) is gone
        assert _wait_gone(names, 10.0), f"blocks left 10 s after SIGKILL: {blocks_of(int(pid))}"
        assert p.returncode == -signal.SIGKILL
    else:
        assert _wait_gone(names, 2.0), f"blocks left after {how}: {blocks_of(int(pid))}"
    if how == "normal_exit":
        assert p.returncode == 0
    elif how in ("sigterm", "sigterm_self", "fork_then_sigterm"):
        assert p.returncode != 0
    err = p.stderr.read()
    if not how.startswith("sigkill"):  # after SIGKILL the tracker's "leaked ... to clean up" is the cleanup
        assert "leaked shared_memory" not in err, err
