"""run_windows throughput vs KLayout, in the same run (prints a table; no assertions).

    python bench/run_windows_vs_klayout.py [--gds FILE] [--windows 60] [--pixel 0.05]
                                           [--workers 0,1,2] [--density 100]

10 x 10 um windows over the dense blocks of a synthetic layout (engine.synth; or --gds FILE, any
layout: then the windows tile its top cell's bbox). For each worker count: windows/s over the whole
call (fork, warm-up, all results), steady windows/s (the windows after the first one over the time
after it: start-up excluded), time to first result, and the coordinator's CPU share (psutil
cpu_times of this process / wall). KLayout does the same windows in one process:
``Region(top.begin_shapes_rec_touching(layer, box))`` over every layer, merged, then
``Region.rasterize`` (per-pixel covered area, i.e. what our gray mode computes).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import engine  # noqa: E402
from engine.api import run_windows  # noqa: E402
from shm.pool import usable_cpus  # noqa: E402


def dense_layout(tmp, density):
    from engine import synth
    path = os.path.join(tmp, "dense.gds")
    info = synth.synthesize(path, die_um=120, density=density, seed=7, mix=(0.6, 0.3, 0.1))
    return path, [tuple(b) for b in info["dense_blocks_um"]], info


def windows_in(boxes, n, size=10.0, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x0, y0, x1, y1 = boxes[i % len(boxes)]
        x = rng.uniform(x0, max(x0, x1 - size))
        y = rng.uniform(y0, max(y0, y1 - size))
        out.append((f"w{i}", x, y, x + size, y + size))
    return out


def ours(layout, wins, pixel, workers, mode):
    me = psutil.Process()
    c0 = me.cpu_times()
    t0 = time.perf_counter()
    first = None
    n = polys = 0
    for r in run_windows(layout, wins, pixel_size=pixel, workers=workers, mode=mode):
        if first is None:
            first = time.perf_counter() - t0
        assert r.error is None, r.error
        n += 1
        polys += r.polygons or 0
    wall = time.perf_counter() - t0
    c1 = me.cpu_times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    wcpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    if workers == 0:
        wcpu = cpu
    return {"windows/s": n / wall, "first_s": first, "wall_s": wall, "coord_cpu": cpu / wall,
            "steady/s": (n - 1) / (wall - first) if n > 1 and wall > first else float("nan"),
            "polygons": polys, "w_per_cpu_s": n / wcpu if wcpu > 0 else float("nan")}


def klayout(path, wins, pixel):
    import klayout.db as kdb
    t0 = time.perf_counter()
    ly = kdb.Layout()
    ly.read(path)
    top = ly.top_cell()
    load = time.perf_counter() - t0
    dbu = ly.dbu
    layers = list(ly.layer_indexes())
    t0 = time.perf_counter()
    c0 = time.process_time()
    first = None
    polys = 0
    for _, x0, y0, x1, y1 in wins:
        box = kdb.DBox(x0, y0, x1, y1).to_itype(dbu)
        reg = kdb.Region()
        for li in layers:
            reg.insert(top.begin_shapes_rec_touching(li, box))
        polys += reg.count()
        reg.merge()
        nx = int(np.ceil((x1 - x0) / pixel - 1e-9))
        ny = int(np.ceil((y1 - y0) / pixel - 1e-9))
        step = int(round(pixel / dbu))
        reg.rasterize(kdb.Point(box.left, box.bottom), kdb.Vector(step, step), nx, ny)
        if first is None:
            first = time.perf_counter() - t0
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    n = len(wins)
    return {"windows/s": n / wall, "first_s": first, "wall_s": wall, "coord_cpu": cpu / wall,
            "steady/s": (n - 1) / (wall - first) if n > 1 and wall > first else float("nan"),
            "polygons": polys, "load_s": load, "w_per_cpu_s": len(wins) / cpu}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gds", help="layout to use instead of a synthetic one")
    ap.add_argument("--windows", type=int, default=60)
    ap.add_argument("--pixel", type=float, default=0.05)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--density", type=float, default=100.0)
    ap.add_argument("--mode", default="gray", choices=["binary", "gray"])
    ap.add_argument("--klayout-windows", type=int, default=0,
                    help="KLayout does only the first N windows (it is slow); 0 = all")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if a.gds:
            path = a.gds
            lay = engine.open_layout(path)
            bb = lay.db.cell_bbox[lay.resolve_cell(None)] * lay.dbu_um
            boxes = [tuple(float(v) for v in bb)]
            what = path
        else:
            path, boxes, info = dense_layout(tmp, a.density)
            what = (f"engine.synth die 120 um, density {a.density:g}/um2, "
                    f"{info['bytes'] / 1e6:.1f} MB, {len(boxes)} dense blocks")
        t0 = time.perf_counter()
        lay = engine.open_layout(path)
        load = time.perf_counter() - t0
        wins = windows_in(boxes, a.windows)
        # compile / load the kernels once, outside the timings (workers inherit them)
        list(run_windows(lay, wins[:2], pixel_size=a.pixel, workers=0, mode=a.mode))
        print(f"layout: {what}; load {load:.2f} s (clipmill), usable cores {len(usable_cpus())}, "
              f"load average {os.getloadavg()[0]:.1f} before the runs")
        print(f"{len(wins)} windows of 10 x 10 um, pixel {a.pixel} um "
              f"({int(np.ceil(10 / a.pixel - 1e-9))}^2 px), mode {a.mode}")
        rows = []
        for w in (int(x) for x in a.workers.split(",")):
            rows.append((f"clipmill workers={w}", ours(lay, wins, a.pixel, w, a.mode)))
        kw = wins[:a.klayout_windows] if a.klayout_windows else wins
        rows.append((f"klayout 1 process ({len(kw)})", klayout(path, kw, a.pixel)))
        base = next((r for n, r in rows if n == "clipmill workers=1"), None)
        print(f"{'':26s} {'windows/s':>10s} {'steady/s':>9s} {'first(s)':>9s} {'wall(s)':>8s} "
              f"{'coordCPU':>9s} {'polygons':>10s} {'win/cpu-s':>9s} {'vs w=1':>7s} {'steady':>7s}")
        for name, r in rows:
            sp = f"{r['windows/s'] / base['windows/s']:.2f}x" if base else ""
            ss = f"{r['steady/s'] / base['steady/s']:.2f}x" if base else ""
            print(f"{name:26s} {r['windows/s']:10.1f} {r['steady/s']:9.1f} {r['first_s']:9.3f} "
                  f"{r['wall_s']:8.2f} {r['coord_cpu']:9.1%} {r['polygons']:10d} "
                  f"{r['w_per_cpu_s']:9.2f} {sp:>7s} {ss:>7s}")
        lay.close()


if __name__ == "__main__":
    main()
