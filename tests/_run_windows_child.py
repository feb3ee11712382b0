"""A coordinator process for tests/test_faults.py (run as a subprocess; not a test module).

usage: python tests/_run_windows_child.py SCENARIO GDS WORKERS

Opens GDS, tiles it into small windows and runs run_windows with a formatter that sleeps a little
(so there is time to act mid-run). Prints ``PIDS [..]`` (worker pids) and ``R index`` per result,
then a final ``DONE {json}``. Scenarios:
  run          plain run
  kill_worker  SIGKILL one worker after a few results; the run must still complete
  wait         print PIDS and results slowly, until the test signals or kills this process
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time

import engine  # noqa: F401  (engine before shm: import order of the package)
from engine.api import run_windows
from engine.layout import open_layout

STEP = 2.0


def windows_for(layout):
    db = layout.db
    top = layout.resolve_cell(None)
    x0, y0, x1, y1 = (float(v) * layout.dbu_um for v in db.cell_bbox[top])
    out = []
    y = y0
    while y < y1:
        x = x0
        while x < x1:
            out.append((f"t{len(out)}", x, y, x + STEP, y + STEP))
            x += STEP
        y += STEP
    return out


def slow(image, spec, info):
    time.sleep(float(os.environ.get("CHILD_SLEEP", "0.004")))
    return {"sha": hashlib.sha1(image.tobytes()).hexdigest()}


def open_for_test(path):
    return open_layout(path)


def main():
    scenario, path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    layout = open_for_test(path)
    wins = windows_for(layout)
    run = run_windows(layout, wins, pixel_size=0.05, workers=workers, formatter=slow)
    print("PIDS", json.dumps(run.pids), flush=True)
    seen, shas, killed = [], {}, None
    for r in run:
        seen.append(r.index)
        if r.error is None:
            shas[r.index] = hashlib.sha1(r.image.tobytes()).hexdigest()
            assert r.output["sha"] == shas[r.index]
        print("R", r.index, flush=True)
        if scenario == "kill_worker" and len(seen) == 20:
            killed = run.pids[0]
            os.kill(killed, signal.SIGKILL)
        if scenario == "wait":
            time.sleep(0.05)
    deaths = run.pool.deaths
    # reference: the same windows in this process, one by one
    ref = {}
    for i, (_, *w) in enumerate(wins):
        img = layout.rasterize(tuple(w), 0.05, mode="binary")
        ref[i] = hashlib.sha1(img.tobytes()).hexdigest()
    print("DONE", json.dumps({"n": len(wins), "seen": seen, "killed": killed,
                              "deaths": [list(d) for d in deaths], "match": shas == ref}),
          flush=True)
    layout.close()


if __name__ == "__main__":
    main()
