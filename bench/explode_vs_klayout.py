"""Explode throughput, clipmill vs KLayout in the same run, 10 x 10 um windows, one core.

For each file size (same density, spanning 100x by default) a synthetic layout is written with
engine.synth, opened by clipmill (``open_layout``: reader + index) and by KLayout; the same random
windows inside the die are exploded by

* clipmill, low level: ``engine.explode.explode_arrays`` (one scratch reused: what workers call)
* clipmill, API: ``Layout.explode`` (Polygons in um)
* KLayout (a): ``Region.insert(RecursiveShapeIterator(layout, top, all layers, box, touching))``,
  i.e. the flattened polygons of ``begin_shapes_rec_touching`` over every layer, materialised;
* KLayout (b): ``Region(top.begin_shapes_rec_touching(li, DBox)).count()`` for every layer (the
  form quoted in the issue; the Region may stay lazy, so this is KLayout's best case).

Printed per size: windows/s (from the thread's CPU time, which a machine shared with other jobs
does not distort; wall-clock figures in brackets), polygons/window, flattened polygons/s and the
speed-ups (of the low-level entry, and of the public call: "API vs KL(a)"); the polygon counts
of clipmill and KLayout (a) are checked equal window by window.

    python bench/explode_vs_klayout.py [--sizes 1MB,10MB,100MB] [--density 8.5] [--windows 2000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WINDOW_UM = 10.0


def bench_size(path, size, density, n, seed=0):
    """Synthesize, open both ways, explode the same windows; figures as a dict."""
    import klayout.db as kdb
    from engine.benchmark import pick_windows
    from engine.explode import explode_arrays, new_scratch
    from engine.layout import open_layout
    from engine.synth import synthesize

    t0 = time.perf_counter()
    summary = synthesize(path, density=density, seed=seed, size_bytes=size)
    t_synth = time.perf_counter() - t0
    t0 = time.perf_counter()
    L = open_layout(path)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    ly = kdb.Layout()
    ly.read(path)
    t_kl_read = time.perf_counter() - t0
    with L:
        rng = np.random.default_rng(seed)
        b = L.db.cell_bbox[L.resolve_cell(ly.top_cell().name)] * L.dbu_um
        ws = pick_windows([float(v) for v in b], n, WINDOW_UM, rng)
        top_name = ly.top_cell().name  # KLayout's top (the file has one)
        cell = L.resolve_cell(top_name)
        mask = L.layer_mask()
        wd = [L.window_dbu(w) for w in ws]
        s = new_scratch(L.db)
        explode_arrays(L.db, wd[0], cell, mask, -1, False, s)  # warm (compiled, cached)
        L.explode(ws[0], cell=top_name)
        ours_n = np.empty(n, dtype=np.int64)
        t0, c0 = time.perf_counter(), time.thread_time()
        for i, w in enumerate(wd):
            _, off, _ = explode_arrays(L.db, w, cell, mask, -1, False, s)
            ours_n[i] = len(off) - 1
        t_low, c_low = time.perf_counter() - t0, time.thread_time() - c0
        t0, c0 = time.perf_counter(), time.thread_time()
        for w in ws:
            L.explode(w, cell=top_name)
        t_api, c_api = time.perf_counter() - t0, time.thread_time() - c0
        index = dict(L.arena.meta.get("index", {}))
    # KLayout (a): flattened polygons of every layer materialised in a flat Region
    top = ly.top_cell()
    lis = ly.layer_indexes()
    dbu = ly.dbu
    flags = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes | kdb.Shapes.SPaths
    boxes = [kdb.DBox(*w).to_itype(dbu) for w in ws]
    kl_n = np.empty(n, dtype=np.int64)
    t0, c0 = time.perf_counter(), time.thread_time()
    for i, b in enumerate(boxes):
        it = kdb.RecursiveShapeIterator(ly, top, lis, b, False)
        it.shape_flags = flags
        r = kdb.Region()
        r.insert(it)
        kl_n[i] = r.count()
    t_kl, c_kl = time.perf_counter() - t0, time.thread_time() - c0
    # KLayout (b): the form, Region(begin_shapes_rec_touching(li, DBox)) per layer
    dboxes = [kdb.DBox(*w) for w in ws]
    t0, c0 = time.perf_counter(), time.thread_time()
    for db_ in dboxes:
        for li in lis:
            kdb.Region(top.begin_shapes_rec_touching(li, db_)).count()
    t_kl2, c_kl2 = time.perf_counter() - t0, time.thread_time() - c0
    same = bool(np.array_equal(ours_n, kl_n))
    polys = float(ours_n.mean())
    return {
        "size_mb": os.path.getsize(path) / 1e6, "die_um": summary.get("die_um"),
        "open_s": t_open, "kl_read_s": t_kl_read, "synth_s": t_synth,
        "windows": n, "polys_per_window": polys, "counts_equal": same,
        "ours_wps": n / t_low, "ours_api_wps": n / t_api, "kl_wps": n / t_kl,
        "kl2_wps": n / t_kl2,
        "ours_cpu_wps": n / c_low, "ours_api_cpu_wps": n / c_api, "kl_cpu_wps": n / c_kl,
        "kl2_cpu_wps": n / c_kl2,
        "ours_pps": ours_n.sum() / c_low, "kl_pps": kl_n.sum() / c_kl,
        "index": index,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1MB,10MB,100MB")
    ap.add_argument("--density", type=float, default=8.5,
                    help="engine.synth density (8.5/um2 gives ~750 polygons per 10x10 um window)")
    ap.add_argument("--windows", type=int, default=2000)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args(argv)
    from engine.synth import parse_size
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    d = args.dir or tempfile.mkdtemp(prefix="clipmill_bench_")
    rows = []
    print(f"explode, {WINDOW_UM:g} x {WINDOW_UM:g} um windows, {args.windows} windows, one core; "
          "windows/s from thread CPU time (wall-clock in brackets); KL(a) = Region.insert of the "
          "touching iterator over all layers, KL(b) = Region(begin_shapes_rec_touching) per layer")
    print(f"{'file MB':>8} {'open s':>7} {'index s':>7} {'poly/win':>9} {'ours win/s':>17} "
          f"{'API win/s':>8} {'KL(a) win/s':>17} {'KL(b) win/s':>11} {'vs KL(a)':>8} "
          f"{'vs KL(b)':>8} {'API vs KL(a)':>12} {'ours Mpoly/s':>12} {'KL(a) Mpoly/s':>13} "
          f"{'counts=':>7}")
    for size in sizes:
        path = os.path.join(d, f"explode_{size}.gds")
        r = bench_size(path, size, args.density, args.windows)
        rows.append(r)
        print(f"{r['size_mb']:8.1f} {r['open_s']:7.2f} {r['index'].get('seconds', 0):7.2f} "
              f"{r['polys_per_window']:9.1f} "
              f"{r['ours_cpu_wps']:8.0f} ({r['ours_wps']:6.0f}) {r['ours_api_cpu_wps']:8.0f} "
              f"{r['kl_cpu_wps']:8.0f} ({r['kl_wps']:6.0f}) {r['kl2_cpu_wps']:11.0f} "
              f"{r['ours_cpu_wps'] / r['kl_cpu_wps']:7.1f}x "
              f"{r['ours_cpu_wps'] / r['kl2_cpu_wps']:7.1f}x "
              f"{r['ours_api_cpu_wps'] / r['kl_cpu_wps']:11.1f}x "
              f"{r['ours_pps'] / 1e6:12.2f} {r['kl_pps'] / 1e6:13.2f} "
              f"{str(r['counts_equal']):>7}", flush=True)
        os.remove(path)
    return rows


if __name__ == "__main__":
    main()
