"""`clipmill bench`: time every stage on layouts of growing size, fit the cost model, report.

Library entry: ``run_benchmark(out_dir, quick=False, ...) -> dict`` (never prints; an optional
``progress`` callable receives one-line messages). It

1. makes synthetic layouts of growing file size at one density (engine.synth; a small gdstk
   generator stands in when engine.synth is absent), the largest one held out of every fit;
2. times each stage separately: scan (engine.reader.load_gdsii), index (engine.index.build_index),
   explode per window, rasterize per window, format/write per image, and end-to-end
   ``run_windows`` at every worker count 1..cores, with database/index bytes and the peak RSS of
   the coordinator and of each worker (sampled with psutil on the child pids, and from inside the
   worker by the formatter wrapper);
3. measures KLayout on the same files and windows in the same run (Layout.read, Region of
   begin_shapes_rec_touching, Region.rasterize) for side-by-side ratios;
4. fits engine.model.CostModel on all but the held-out layout, predicts the held-out
   measurements (predicted vs measured, relative error), then extrapolates to the targets (by
   default the seed question: 50 GB and 500 GB at 2000 polygons/um2, 10 x 10 um windows, 20 CPUs,
   192 GB RAM);
5. writes ``results.json``, ``report.md`` and PNG plots into ``out_dir``.

A stage whose module is missing or fails is recorded under ``results["errors"]`` and left out
of the fit; the rest of the benchmark goes on.
"""
from __future__ import annotations

import json
import math
import os
import platform
import resource
import time
import traceback

import numpy as np

from engine import model as cm

MB = 1e6
GB = 1e9


# ---------------------------------------------------------------------------------------------
# plans
def plan(quick: bool) -> dict:
    """Sizes, windows and repeats of a run (quick: under 3 minutes on 2 cores)."""
    # variants: extra layouts (MB, density, hierarchy levels) fitted with the others, so the
    # laws see other densities and depths than the main series' (levels 5).
    # window_sizes x pixel_um vary polygons, pixels and edges per window for the per-window laws;
    # run_windows and KLayout's end to end use window_um x pixel_um[0].
    if quick:
        return dict(sizes_mb=[3.0, 6.0, 12.0, 24.0], heldout_mb=60.0, density=300.0,
                    windows=12, heldout_windows=12, window_um=10.0, e2e_pixel_um=0.01,
                    window_sizes=[10.0, 5.0, 2.5], pixel_um=[0.02, 0.01, 0.04],
                    repeats=3, e2e_windows=24, kl_raster_windows=2, write_windows=6,
                    variants=[(6.0, 100.0, 3)])
    return dict(sizes_mb=[10.0, 25.0, 60.0, 150.0], heldout_mb=400.0, density=2000.0,
                windows=24, heldout_windows=24, window_um=10.0, e2e_pixel_um=0.01,
                window_sizes=[10.0, 5.0, 2.5], pixel_um=[0.01, 0.02, 0.04],
                repeats=3, e2e_windows=150, kl_raster_windows=3, write_windows=12,
                variants=[(25.0, 300.0, 3), (25.0, 1000.0, 4)])


# ---------------------------------------------------------------------------------------------
# layouts
def make_layout(path: str, size_mb: float, density: float, seed: int = 0,
                levels: int | None = None) -> dict:
    """Write a synthetic layout of about ``size_mb`` MB; return the generator's summary."""
    t0 = time.perf_counter()
    try:
        from engine import synth
    except ImportError:
        synth = None
    if synth is not None:
        kw = {} if levels is None else {"levels": int(levels)}
        summary = dict(synth.synthesize(path, density=density, seed=seed,
                                        size_bytes=int(size_mb * MB), **kw) or {})
        summary.setdefault("generator", "engine.synth")
    else:
        summary = _fallback_synth(path, size_mb, density, seed)
    summary["file_bytes"] = os.path.getsize(path)
    summary["synth_seconds"] = time.perf_counter() - t0
    return summary


def _fallback_synth(path: str, size_mb: float, density: float, seed: int) -> dict:
    """Stand-in generator (gdstk): distinct 2x2 um leaf cells of rectangles on 3 layers, rows
    of them in 8 orientations, blocks of rows placed by the top cell; file size grows with the
    number of distinct leaves (like a real design), density is that of the leaves."""
    import gdstk
    rng = np.random.default_rng(seed)
    lib = gdstk.Library(unit=1e-6, precision=1e-9)
    leaf_um = 2.0
    per_leaf = max(4, int(density * leaf_um * leaf_um / 2))   # half the area is dense
    leaf_bytes = per_leaf * 64 + 60
    nleaf = max(4, int(size_mb * MB / leaf_bytes))
    leaves = []
    for i in range(nleaf):
        c = lib.new_cell(f"LEAF{i}")
        xy = rng.uniform(0, leaf_um, size=(per_leaf, 2))
        wh = rng.uniform(0.005, 0.06, size=(per_leaf, 2))
        lay = rng.integers(1, 4, size=per_leaf)
        for (x, y), (w, h), ly in zip(xy, wh, lay):
            c.add(gdstk.rectangle((x, y), (min(x + w, leaf_um), min(y + h, leaf_um)),
                                  layer=int(ly)))
        leaves.append(c)
    rows = []
    row_len = 16
    for r in range(0, nleaf, row_len):
        rc = lib.new_cell(f"ROW{r // row_len}")
        for k, leaf in enumerate(leaves[r:r + row_len]):
            o = k % 8
            ref = gdstk.Reference(leaf, (0, 0), rotation=(o % 4) * math.pi / 2,
                                  x_reflection=o >= 4)
            (bx, by), _ = ref.bounding_box()
            ref.origin = (k * leaf_um - bx, -by)
            rc.add(ref)
        rows.append(rc)
    top = lib.new_cell("TOP")
    ncols = max(1, int(math.ceil(math.sqrt(len(rows) / row_len))))
    for i, rc in enumerate(rows):
        top.add(gdstk.Reference(rc, ((i % ncols) * row_len * leaf_um, (i // ncols) * leaf_um)))
    lib.write_gds(path)
    return {"generator": "gdstk fallback", "cells": len(lib.cells), "density": density,
            "levels": 3}


# ---------------------------------------------------------------------------------------------
# our stages
def _nbytes(arrays, prefix=None) -> int:
    return int(sum(a.nbytes for k, a in arrays.items()
                   if (prefix is None or k.startswith(prefix))))


class Timer:
    """Best-of-N timings on two clocks. ``seconds`` is the clock the figures use: CPU seconds of
    this process by default (stable on a shared machine: time spent descheduled does not count;
    every timed stage runs in this process on one core, so on an idle machine CPU = wall), wall
    seconds with ``CLOCK = "wall"``. Both are kept."""
    CLOCK = "cpu"

    def __init__(self):
        self.wall = math.inf
        self.cpu = math.inf

    def __enter__(self):
        self._t = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc):
        self.wall = min(self.wall, time.perf_counter() - self._t[0])
        self.cpu = min(self.cpu, time.process_time() - self._t[1])

    @property
    def seconds(self) -> float:
        return self.wall if self.CLOCK == "wall" else self.cpu


def time_load(path: str, repeats: int) -> dict:
    """Scan and index, each timed separately; the best of ``repeats``."""
    from engine import index, reader
    ts, ti, row = Timer(), Timer(), None
    for _ in range(max(1, repeats)):
        with ts:
            arrays, meta = reader.load_gdsii(path)
        with ti:
            arrays = index.build_index(arrays, meta)
        row = {"db_bytes": _nbytes({k: v for k, v in arrays.items() if not k.startswith("ix_")}),
               "index_bytes": _nbytes(arrays, "ix_"),
               "polygons_db": int(len(arrays["poly_layer"])),
               "vertices_db": int(len(arrays["vtx"])),
               "placements_db": int(len(arrays["ref_cell"])),
               "cells": int(len(arrays["cell_name_off"]) - 1),
               "scan_workers": int(meta.get("scan_workers", meta.get("workers", 1)) or 1)}
        del arrays
    row.update(scan_seconds=ts.seconds, index_seconds=ti.seconds, scan_wall_seconds=ts.wall,
               index_wall_seconds=ti.wall)
    return row


def pick_windows(bbox, n: int, size_um, rng, dense=None) -> list:
    """``n`` square windows inside ``bbox`` (um); ``size_um`` a side or a list cycled through;
    every other window inside one of the ``dense`` boxes when given (synth's dense blocks)."""
    sizes = list(size_um) if isinstance(size_um, (list, tuple)) else [size_um]
    out = []
    for i in range(n):
        s = float(sizes[i % len(sizes)])
        box = dense[(i // 2) % len(dense)] if dense and i % 2 == 1 else bbox
        x0, y0, x1, y1 = (float(v) for v in box)
        wx = rng.uniform(x0, max(x0, x1 - s))
        wy = rng.uniform(y0, max(y0, y1 - s))
        out.append((wx, wy, wx + s, wy + s))
    return out


def _pixel_for(i, pixels_um, nsizes):
    """Pixel size of window i: cycles independently of the window size (decorrelated)."""
    return pixels_um[(i // max(nsizes, 1)) % len(pixels_um)]


def time_windows(layout, windows, pixels_um, repeats, out_dir, write_n, nsizes=1,
                 mode="binary") -> dict:
    """Explode, rasterize and write each window, each timed separately (best of repeats)."""
    from engine import rasterize
    explode_rows, raster_rows, write_rows = [], [], []
    fmt, fmt_name = _formatter(out_dir)
    for i, w in enumerate(windows):
        px = _pixel_for(i, pixels_um, nsizes)
        te, tr, tw = Timer(), Timer(), Timer()
        for _ in range(max(1, repeats)):
            with te:
                polys = layout.explode(w)
            with tr:
                img = rasterize(polys, w, px, mode=mode)
        npoly, nedge = len(polys), int(len(polys.xy))
        explode_rows.append({"window": list(w), "polygons": npoly, "vertices": nedge,
                             "seconds": te.seconds, "wall_seconds": te.wall})
        raster_rows.append({"window": list(w), "pixel_um": px, "pixels": int(img.size),
                            "edges": nedge, "polygons": npoly, "seconds": tr.seconds,
                            "wall_seconds": tr.wall})
        if i < write_n and fmt is not None:
            out = {}
            for _ in range(max(1, repeats)):
                with tw:
                    out = fmt(img, _spec(i, w, px, mode), {"pixel_size": px, "mode": mode}) or {}
            nbytes = out.get("bytes") or (os.path.getsize(out["path"]) if out.get("path") else 0)
            write_rows.append({"pixels": int(img.size), "bytes": int(nbytes),
                               "seconds": tw.seconds, "wall_seconds": tw.wall,
                               "format": fmt_name})
    return {"explode": explode_rows, "raster": raster_rows, "write": write_rows}


def _spec(i, w, px, mode="binary"):
    try:
        from engine.windowspec import WindowSpec
        return WindowSpec(f"bench{i}", *w, pixel_size=px, mode=mode)
    except ImportError:
        return {"name": f"bench{i}", "window": w}


def _formatter(out_dir):
    """engine.formats' TIFF formatter; tifffile directly when engine.formats is absent."""
    d = os.path.join(out_dir, "clips")
    os.makedirs(d, exist_ok=True)
    try:
        from engine.formats import make_formatter
        return make_formatter("tiff", d, overwrite=True), "engine.formats tiff"
    except ImportError:
        return _TiffWriter(d), "tifffile (engine.formats absent)"


class _TiffWriter:
    def __init__(self, out_dir):
        self.out_dir = out_dir

    def __call__(self, image, spec, info):
        import tifffile
        name = getattr(spec, "name", None) or spec["name"]
        path = os.path.join(self.out_dir, f"{name}.tif")
        tifffile.imwrite(path, image, compression="deflate")
        return {"path": path, "bytes": os.path.getsize(path)}


class RssFormatter:
    """Wraps a formatter; adds the worker's pid, current and peak RSS to each output dict."""

    def __init__(self, inner=None):
        self.inner = inner

    def __call__(self, image, spec, info):
        import psutil
        out = dict(self.inner(image, spec, info) or {}) if self.inner is not None else {}
        out["pid"] = os.getpid()
        out["cpu"] = time.process_time()
        out["rss"] = psutil.Process().memory_info().rss
        out["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return out


def time_end_to_end(layout, windows, pixel_um, workers_list, out_dir, mode="binary") -> list:
    """run_windows at each worker count: wall, first result, windows/s, CPU and RSS figures."""
    import psutil
    from engine import run_windows
    me = psutil.Process()
    rows = []
    for nw in workers_list:
        fmt, fmt_name = _formatter(os.path.join(out_dir, f"e2e_w{nw}"))
        rss_peak, child_peak, child_uss, errors, n = me.memory_info().rss, {}, {}, 0, 0
        inside, wcpu, per_window = {}, {}, []
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        first, next_sample, sample_cpu = None, 0.0, 0.0
        load0 = os.getloadavg()[0]
        for res in run_windows(layout, windows, pixel_size=pixel_um, mode=mode, workers=nw,
                               formatter=RssFormatter(fmt)):
            n += 1
            if first is None:
                first = time.perf_counter() - t0
                cpu_first = time.process_time()
            if getattr(res, "error", None) is not None:
                errors += 1
            out = getattr(res, "output", None) or {}
            if "pid" in out:
                inside[out["pid"]] = max(inside.get(out["pid"], 0), out.get("maxrss", 0))
                wcpu.setdefault(out["pid"], []).append(out["cpu"])
            if getattr(res, "image", None) is not None:
                per_window.append({"polygons": int(res.polygons or 0),
                                   "pixels": int(res.image.size),
                                   "bytes": int(out.get("bytes", 0))})
            now = time.perf_counter()
            if now >= next_sample:          # psutil on /proc costs CPU: sample every 50 ms
                next_sample = now + 0.05
                c0 = time.process_time()
                rss_peak = max(rss_peak, me.memory_info().rss)
                for ch in me.children(recursive=True):
                    try:
                        mi = ch.memory_full_info()      # rss, and uss: pages only it holds
                    except psutil.Error:
                        continue
                    child_peak[ch.pid] = max(child_peak.get(ch.pid, 0), mi.rss)
                    child_uss[ch.pid] = max(child_uss.get(ch.pid, 0), mi.uss)
                sample_cpu += time.process_time() - c0   # all after the first result
        wall = time.perf_counter() - t0
        cpu1 = time.process_time()
        # the coordinator's CPU (all its threads) without this benchmark's own psutil sampling
        coord_cpu = cpu1 - cpu0 - sample_cpu
        steady = max(cpu1 - cpu_first - sample_cpu, 0.0) / (n - 1) if n > 1 else None
        rows.append({"workers": nw, "windows": n, "errors": errors, "seconds": wall,
                     "first_result_seconds": first, "windows_per_second": n / wall if wall else 0,
                     "coordinator_cpu_seconds": coord_cpu,
                     "coordinator_cpu_share": coord_cpu / wall if wall else 0,
                     "coordinator_cpu_per_window_steady": steady,
                     "coordinator_rss_peak": int(rss_peak),
                     "worker_rss_peak_sampled": [int(v) for v in child_peak.values()],
                     "worker_uss_peak_sampled": [int(v) for v in child_uss.values()],
                     "worker_maxrss_inside": [int(v) for v in inside.values()],
                     "load_before": load0, "format": fmt_name,
                     "worker_cpu_per_window": _worker_cpu(wcpu), "per_window": per_window})
    return rows


def _worker_cpu(wcpu: dict):
    """Worker CPU seconds per window: CPU clock between a worker's first and last window over
    the windows in between (None with fewer than two windows in every worker)."""
    secs = sum(v[-1] - v[0] for v in wcpu.values() if len(v) > 1)
    n = sum(len(v) - 1 for v in wcpu.values() if len(v) > 1)
    return secs / n if n else None


# ---------------------------------------------------------------------------------------------
# KLayout, same files and windows
def klayout_available() -> bool:
    try:
        import klayout.db  # noqa: F401
        return True
    except ImportError:
        return False


def kl_load(path: str, repeats: int):
    import klayout.db as kdb
    t, ly = Timer(), None
    for _ in range(max(1, repeats)):
        ly = kdb.Layout()
        with t:
            ly.read(path)
    return ly, t


def kl_explode(ly, window):
    """Polygons of every layer touching the window, as KLayout Regions; (regions, count)."""
    import klayout.db as kdb
    top = ly.top_cell()
    box = kdb.DBox(*window)
    regs, n = [], 0
    flags = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes | kdb.Shapes.SPaths   # no texts
    for li in ly.layer_indexes():
        it = top.begin_shapes_rec_touching(li, box)
        it.shape_flags = flags
        r = kdb.Region(it)
        n += r.count()
        regs.append(r)
    return regs, n


def kl_raster(ly, regs, window, px):
    import klayout.db as kdb
    merged = kdb.Region()
    for r in regs:
        merged += r
    dbu = ly.dbu
    nx = int(round((window[2] - window[0]) / px))
    ny = int(round((window[3] - window[1]) / px))
    step = int(round(px / dbu))
    origin = kdb.Point(int(round(window[0] / dbu)), int(round(window[1] / dbu)))
    return merged.rasterize(origin, kdb.Vector(step, step), nx, ny)


def kl_time_windows(ly, windows, pixels_um, raster_n, repeats, nsizes=1) -> dict:
    ex, ra = [], []
    for i, w in enumerate(windows):
        px = _pixel_for(i, pixels_um, nsizes)
        te, tr = Timer(), Timer()
        for _ in range(max(1, repeats)):
            with te:
                regs, n = kl_explode(ly, w)
        ex.append({"window": list(w), "polygons": n, "seconds": te.seconds,
                   "wall_seconds": te.wall})
        if i < raster_n:
            with tr:
                kl_raster(ly, regs, w, px)
            ra.append({"window": list(w), "pixel_um": px,
                       "pixels": int(round((w[2] - w[0]) / px) * round((w[3] - w[1]) / px)),
                       "seconds": tr.seconds, "wall_seconds": tr.wall})
    return {"explode": ex, "raster": ra}


# ---------------------------------------------------------------------------------------------
# the run
class _Errors:
    def __init__(self, results, progress):
        self.results, self.progress = results, progress

    def guard(self, what, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # a missing or failing stage is reported, the rest goes on
            msg = f"{what}: {type(e).__name__}: {e}"
            self.results["errors"].append({"stage": what, "error": msg,
                                           "traceback": traceback.format_exc(limit=4)})
            self.progress(f"  ! {msg}")
            return None


def run_benchmark(out_dir, *, quick: bool = False, sizes_mb=None, heldout_mb=None, density=None,
                  workers=None, use_klayout: bool = True, targets=None, layouts=None,
                  keep_files: bool = False, seed: int = 0, plots: bool = True,
                  clock: str = "cpu", mode: str = "binary", progress=None) -> dict:
    """Run the benchmark, write results.json, report.md and plots to ``out_dir``; return results.

    sizes_mb / heldout_mb / density override the plan (quick or full); ``layouts`` adds existing
    GDSII files (measured, not fitted); ``workers`` the worker counts for end-to-end runs
    (default 1..usable cores); ``targets`` the extrapolation targets (default the seed's);
    ``clock`` "cpu" (CPU seconds of this process, default: robust on a shared machine) or
    "wall" for the stage figures (both are recorded; end to end is always wall time)."""
    import psutil
    progress = progress or (lambda msg: None)
    os.makedirs(out_dir, exist_ok=True)
    p = plan(quick)
    if sizes_mb:
        p["sizes_mb"] = list(sizes_mb)
    if heldout_mb:
        p["heldout_mb"] = heldout_mb
    if density:
        p["density"] = density
    if mode not in ("binary", "gray"):
        raise ValueError(f"mode must be 'binary' or 'gray', not {mode!r}")
    p["mode"] = mode
    ncpu = len(psutil.Process().cpu_affinity()) if hasattr(psutil.Process(), "cpu_affinity") \
        else (os.cpu_count() or 1)
    workers = list(workers or range(1, ncpu + 1))
    kl = use_klayout and klayout_available()
    if clock not in ("cpu", "wall"):
        raise ValueError(f"clock must be 'cpu' or 'wall', not {clock!r}")
    Timer.CLOCK = clock
    results = {"plan": p, "quick": quick, "machine": machine_info(), "klayout": kl, "clock": clock,
               "layouts": [], "errors": [], "started": time.time(),
               "load_at_start": os.getloadavg()}
    err = _Errors(results, progress)
    rng = np.random.default_rng(seed)
    t_start = time.perf_counter()
    data_dir = os.path.join(out_dir, "layouts")
    os.makedirs(data_dir, exist_ok=True)

    specs = [(f"synth_{s:g}MB", s, False, p["density"], None) for s in p["sizes_mb"]]
    specs += [(f"synth_{s:g}MB_d{d:g}_L{lv}", s, False, d, lv)
              for s, d, lv in p.get("variants", [])]
    specs.append((f"synth_{p['heldout_mb']:g}MB", p["heldout_mb"], True, p["density"], None))
    files = []
    for name, size, held, dens, levels in specs:
        path = os.path.join(data_dir, name + ".gds")
        progress(f"synth {name} ...")
        summ = err.guard(f"synth {name}", make_layout, path, size, dens, seed, levels)
        if summ is not None:
            files.append((name, path, held, summ))
    for extra in layouts or []:
        files.append((os.path.basename(extra), extra, None, {"file_bytes": os.path.getsize(extra)}))

    # numba compile / page cache warm-up on the smallest file (excluded from the figures)
    if files:
        progress("warm-up (numba compile) ...")
        t0 = time.perf_counter()
        err.guard("warm-up", _warm_up, files[0][1], p)
        results["warmup_seconds"] = time.perf_counter() - t0

    for name, path, held, summ in files:
        progress(f"measure {name} ({summ['file_bytes'] / MB:.1f} MB) ...")
        rec = {"name": name, "path": path, "heldout": held, "synth": _jsonable(summ),
               "file_bytes": summ["file_bytes"]}
        results["layouts"].append(rec)
        load = err.guard(f"scan/index {name}", time_load, path, p["repeats"])
        if load:
            rec.update(load)
        nwin = p["heldout_windows"] if held else p["windows"]
        lay = err.guard(f"open {name}", _open, path)
        if lay is not None:
            try:
                rec["bbox_um"] = bbox_um(lay)
                rec["open_seconds"] = _jsonable(lay.arena.meta.get("seconds", {}))
                dense = summ.get("dense_blocks_um")
                wins = pick_windows(rec["bbox_um"], nwin, p["window_sizes"], rng, dense)
                rec["windows"] = wins
                tw = err.guard(f"windows {name}", time_windows, lay, wins, p["pixel_um"],
                               p["repeats"], out_dir, p["write_windows"], len(p["window_sizes"]),
                               p["mode"])
                if tw:
                    rec.update(tw)
                if held:
                    e2e_w = pick_windows(rec["bbox_um"], p["e2e_windows"], p["window_um"], rng,
                                         dense)
                    results["load_before_e2e"] = os.getloadavg()
                    rec["e2e_window_list"] = e2e_w
                    rows = err.guard("run_windows", time_end_to_end, lay, e2e_w,
                                     p["e2e_pixel_um"], workers, out_dir, p["mode"])
                    if rows:
                        rec["e2e"] = rows
            finally:
                lay.close()
        if kl:
            kly, t_read = (err.guard(f"klayout read {name}", kl_load, path, p["repeats"])
                           or (None, None))
            if kly is not None:
                rec["klayout"] = {"read_seconds": t_read.seconds, "read_wall_seconds": t_read.wall}
                wins = rec.get("windows") or pick_windows(_kl_bbox(kly), nwin, p["window_sizes"],
                                                          rng, summ.get("dense_blocks_um"))
                rec.setdefault("windows", wins)
                kw = err.guard(f"klayout windows {name}", kl_time_windows, kly, wins,
                               p["pixel_um"], p["kl_raster_windows"], 1, len(p["window_sizes"]))
                if kw:
                    rec["klayout"].update(kw)
                if held and rec.get("e2e_window_list"):
                    with Timer() as t:
                        for w in rec["e2e_window_list"]:
                            regs, _ = kl_explode(kly, w)
                    t_ex = t.seconds
                    # rasterizing all e2e windows in KLayout is slow: measure a few, scale
                    kr = rec["klayout"].get("raster") or []
                    per_px = (sum(r["seconds"] for r in kr) / sum(r["pixels"] for r in kr)
                              if kr else 0.0)
                    px = p["e2e_pixel_um"]
                    pix = (p["window_um"] / px) ** 2
                    n = len(rec["e2e_window_list"])
                    rec["klayout"]["e2e"] = {
                        "windows": n, "explode_seconds": t_ex,
                        "raster_seconds_estimated": per_px * pix * n,
                        "windows_per_second": n / (t_ex + per_px * pix * n)}
                del kly
    results["bench_seconds"] = time.perf_counter() - t_start
    analyse(results, targets or cm.SEED_TARGETS)
    results["total_seconds"] = time.perf_counter() - t_start
    write_report(results, out_dir, plots=plots)
    if not keep_files:
        for name, path, held, summ in files:
            if path.startswith(data_dir) and os.path.exists(path):
                os.remove(path)
    return results


def _kl_bbox(ly):
    b = ly.top_cell().dbbox()
    return [b.left, b.bottom, b.right, b.top]


def bbox_um(lay) -> list:
    """[x0, y0, x1, y1] um of the layout's top cell (from the database, not ``info``)."""
    b = lay.db.cell_bbox[lay.resolve_cell()]
    return [float(v) * lay.dbu_um for v in b]


def _open(path):
    from engine import open_layout
    return open_layout(path)


def _warm_up(path, p):
    from engine import index, open_layout, rasterize, reader
    arrays, meta = reader.load_gdsii(path)
    index.build_index(arrays, meta)
    with open_layout(path) as lay:
        w = pick_windows(bbox_um(lay), 1, p["window_um"], np.random.default_rng(1))[0]
        rasterize(lay.explode(w), w, p["pixel_um"][0], mode=p.get("mode", "binary"))


def machine_info() -> dict:
    import psutil
    return {"cpus": os.cpu_count(), "ram_bytes": psutil.virtual_memory().total,
            "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


# ---------------------------------------------------------------------------------------------
# analysis: fit, held-out check, extrapolation
def stage_rows(layouts, heldout: bool | None) -> dict:
    """Measurement rows per stage from layouts whose ``heldout`` flag equals ``heldout``."""
    rows = {k: [] for k in cm.STAGE_FEATURES}
    for rec in layouts:
        if rec.get("heldout") is not heldout:
            continue
        depth = rec.get("synth", {}).get("levels")
        if "scan_seconds" in rec:
            rows["scan"].append({"file_bytes": rec["file_bytes"], "seconds": rec["scan_seconds"]})
            rows["index"].append({"db_bytes": rec["db_bytes"], "seconds": rec["index_seconds"],
                                  "db_nlogn": cm.nlogn(rec["db_bytes"])})
        for r in rec.get("explode", []):
            rows["explode"].append({"polygons": r["polygons"], "depth": depth,
                                    "seconds": r["seconds"]})
        for r in rec.get("raster", []):
            rows["raster"].append({"pixels": r["pixels"], "edges": r["edges"],
                                   "seconds": r["seconds"]})
        for r in rec.get("write", []):
            rows["write"].append({"bytes": r["bytes"], "seconds": r["seconds"]})
    return rows


def ratios_from(layouts) -> dict:
    fitted = [r for r in layouts if "db_bytes" in r]
    out = {}
    if fitted:
        big = max(fitted, key=lambda r: r["file_bytes"])
        out["db_ratio"] = big["db_bytes"] / big["file_bytes"]
        out["index_ratio"] = big["index_bytes"] / big["file_bytes"]
        out["db_bytes_per_polygon"] = (big["db_bytes"] + big["index_bytes"]) / max(
            big["polygons_db"], 1)
        out["scan_workers"] = big.get("scan_workers", 1)
    ex = [r for rec in layouts for r in rec.get("explode", [])]
    if ex:
        out["edges_per_polygon"] = sum(r["vertices"] for r in ex) / max(
            sum(r["polygons"] for r in ex), 1)
    wr = [r for rec in layouts for r in rec.get("write", [])]
    if wr:
        out["write_bytes_per_pixel"] = sum(r["bytes"] for r in wr) / sum(r["pixels"] for r in wr)
    depths = [rec.get("synth", {}).get("levels") for rec in layouts]
    depths = [d for d in depths if d]
    if depths:
        out["depth"] = max(depths)
    e2e = [row for rec in layouts for row in rec.get("e2e", []) if row["windows"]]
    if e2e:
        thr = {row["workers"]: row["windows_per_second"] for row in e2e}
        p_meas = cm.parallel_fraction(thr)
        out["parallel_fraction_measured"] = p_meas
        out["workers_measured"] = sorted(thr)
        # On a machine whose other load leaves fewer free cores than the workers measured, the
        # multi-worker runs share cores with strangers and say nothing about scaling: the model
        # then assumes workers scale (p = 1); the coordinator's own CPU cost per window, measured
        # directly, still caps the rate.
        ncpu = os.cpu_count() or 1
        load = max(r.get("load_before", 0.0) for r in e2e)
        busy = load > ncpu - max(thr) + 0.5
        out["load_during_e2e"] = load
        out["parallel_fraction"] = 1.0 if busy else p_meas
        out["parallel_fraction_source"] = (
            f"assumed 1.0: machine busy (load {load:.1f} on {ncpu} CPUs) during the "
            f"{max(thr)}-worker run; measured {p_meas:.2f}" if busy else
            f"measured (load {load:.1f} on {ncpu} CPUs)")
        one = min(e2e, key=lambda r: r["workers"])
        # after the first result: start-up (fork, attach) is in time to first window instead
        steady = [r["coordinator_cpu_per_window_steady"] for r in e2e
                  if r.get("coordinator_cpu_per_window_steady") is not None]
        out["coordinator_s_per_window"] = (min(steady) if steady else
                                           one["coordinator_cpu_seconds"] / one["windows"])
        # private memory per worker (USS): the database pages are shared, not per worker
        uss = [v for row in e2e for v in row.get("worker_uss_peak_sampled", [])]
        rss = [v for row in e2e for v in (row["worker_maxrss_inside"] or
                                          row["worker_rss_peak_sampled"])]
        if uss or rss:
            out["worker_rss_bytes"] = max(uss or rss)
            out["worker_memory_measure"] = "USS (private)" if uss else "RSS"
        out["fork_seconds"] = max(0.0, one["first_result_seconds"] - _per_window_mean(layouts))
    return out


def _per_window_mean(layouts) -> float:
    ex = [r["seconds"] for rec in layouts for r in rec.get("explode", [])]
    ra = [r["seconds"] for rec in layouts for r in rec.get("raster", [])]
    return (float(np.mean(ex)) if ex else 0.0) + (float(np.mean(ra)) if ra else 0.0)


def heldout_check(model: cm.CostModel, rows: dict) -> dict:
    """Predicted vs measured on the held-out layout: per stage, summed over its rows."""
    out = {}
    for stage, rs in rows.items():
        if not rs or stage not in model.fits:
            continue
        pred = sum(model.fits[stage].predict(r) for r in rs)
        meas = sum(r["seconds"] for r in rs)
        out[stage] = {"predicted_seconds": pred, "measured_seconds": meas,
                      "rel_error": cm.rel_error(pred, meas), "n": len(rs)}
    errs = [abs(v["rel_error"]) for v in out.values() if math.isfinite(v["rel_error"])]
    return {"stages": out, "max_abs_rel_error": max(errs) if errs else float("nan"),
            "scan_rel_error": out.get("scan", {}).get("rel_error", float("nan")),
            "within_25pct": bool(errs) and max(errs) <= 0.25}


def e2e_check(model: cm.CostModel, layouts) -> list:
    """run_windows vs the stage laws on its own windows: worker CPU seconds per window (from
    inside the workers) and windows/s (wall) against the model's prediction. Informational: on
    a shared machine the wall figure carries other processes' load."""
    out = []
    epp = model.ratios.get("edges_per_polygon", 4.0)
    coord = model.ratios.get("coordinator_s_per_window", 0.0)
    for rec in layouts:
        for row in rec.get("e2e", []):
            pw = row.get("per_window") or []
            if not pw:
                continue
            pred = sum(model.stage("explode", {"polygons": w["polygons"],
                                               "depth": model.ratios.get("depth", 0)})
                       + model.stage("raster", {"pixels": w["pixels"],
                                                "edges": w["polygons"] * epp})
                       + model.stage("write", {"bytes": w["bytes"]}) for w in pw) / len(pw)
            rate = row["workers"] / pred if pred > 0 else math.inf
            if coord > 0:
                rate = min(rate, 1.0 / coord)
            cpu = row.get("worker_cpu_per_window")
            out.append({"layout": rec["name"], "workers": row["workers"],
                        "predicted_worker_seconds_per_window": pred,
                        "measured_worker_cpu_per_window": cpu,
                        "cpu_rel_error": cm.rel_error(pred, cpu) if cpu else None,
                        "predicted_windows_per_second": rate,
                        "measured_windows_per_second": row["windows_per_second"],
                        "load_before": row.get("load_before")})
    return out


def analyse(results: dict, targets) -> None:
    layouts = results["layouts"]
    fit_rows = stage_rows(layouts, False)
    model = cm.CostModel.fit(fit_rows, ratios_from(layouts))
    results["model"] = model.to_dict()
    results["heldout"] = heldout_check(model, stage_rows(layouts, True))
    results["predictions"] = [_jsonable(model.predict(t)) for t in targets]
    results["klayout_ratios"] = klayout_ratios(layouts)
    results["e2e_check"] = e2e_check(model, layouts)
    # the model refitted with the held-out layout included, for the targets
    full = cm.CostModel.fit({k: fit_rows[k] + v for k, v in stage_rows(layouts, True).items()},
                            ratios_from(layouts))
    results["model_all"] = full.to_dict()
    results["predictions_all"] = [_jsonable(full.predict(t)) for t in targets]


def klayout_ratios(layouts) -> list:
    """Per layout: KLayout seconds / ours for read, explode and raster (same windows)."""
    out = []
    for rec in layouts:
        k = rec.get("klayout")
        if not k:
            continue
        row = {"layout": rec["name"], "file_bytes": rec["file_bytes"]}
        ours_load = rec.get("scan_seconds", 0) + rec.get("index_seconds", 0)
        if ours_load and k.get("read_seconds"):
            row["read_klayout_s"] = k["read_seconds"]
            row["load_ours_s"] = ours_load
            row["load_speedup"] = k["read_seconds"] / ours_load
        ex_ours = {tuple(r["window"]): r for r in rec.get("explode", [])}
        pairs = [(r, ex_ours[tuple(r["window"])]) for r in k.get("explode", [])
                 if tuple(r["window"]) in ex_ours]
        if pairs:
            row["explode_klayout_s"] = sum(a["seconds"] for a, _ in pairs)
            row["explode_ours_s"] = sum(b["seconds"] for _, b in pairs)
            row["explode_speedup"] = row["explode_klayout_s"] / max(row["explode_ours_s"], 1e-12)
            row["polygons_klayout"] = sum(a["polygons"] for a, _ in pairs)
            row["polygons_ours"] = sum(b["polygons"] for _, b in pairs)
        ra_ours = {tuple(r["window"]): r for r in rec.get("raster", [])}
        pairs = [(r, ra_ours[tuple(r["window"])]) for r in k.get("raster", [])
                 if tuple(r["window"]) in ra_ours]
        if pairs:
            row["raster_klayout_s"] = sum(a["seconds"] for a, _ in pairs)
            row["raster_ours_s"] = sum(b["seconds"] for _, b in pairs)
            row["raster_speedup"] = row["raster_klayout_s"] / max(row["raster_ours_s"], 1e-12)
        if k.get("e2e") and rec.get("e2e"):
            row["e2e_klayout_wps"] = k["e2e"]["windows_per_second"]
            row["e2e_ours_wps"] = {r["workers"]: r["windows_per_second"] for r in rec["e2e"]}
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# report
def write_report(results: dict, out_dir: str, plots: bool = True) -> None:
    from engine import benchreport
    os.makedirs(out_dir, exist_ok=True)
    pngs = benchreport.plots(results, out_dir) if plots else []
    results["plots"] = pngs
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(_jsonable(results), f, indent=1, allow_nan=True)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(benchreport.markdown(results))


# ---------------------------------------------------------------------------------------------
# CLI
def add_arguments(parser) -> None:
    parser.description = ("Time every stage (scan, index, explode, rasterize, write, run_windows "
                          "at 1..N workers) on synthetic layouts of growing size, beside KLayout, "
                          "fit the cost model, check it on a held-out larger file, and predict "
                          "the seed targets. Writes report.md, PNG plots and results.json.")
    parser.add_argument("--out", default="bench_report", help="report folder (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="small files, few windows (< 3 min)")
    parser.add_argument("--sizes", type=float, nargs="+", metavar="MB",
                        help="file sizes to fit on, MB")
    parser.add_argument("--heldout", type=float, metavar="MB", help="held-out file size, MB")
    parser.add_argument("--density", type=float, help="synthetic density, polygons/um2")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts for run_windows")
    parser.add_argument("--layouts", nargs="+", default=[], help="extra GDSII files to measure")
    parser.add_argument("--no-klayout", action="store_true", help="skip the KLayout reference")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic layouts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=["binary", "gray"], default="binary",
                        help="raster mode of every measurement (default %(default)s)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="stage figures in CPU seconds of the process (default; robust on a "
                             "shared machine) or wall seconds")
    g = parser.add_argument_group("target (default: the seed question, 50 GB and 500 GB)")
    g.add_argument("--target-gb", type=float, nargs="+", help="file sizes, GB")
    g.add_argument("--target-density", type=float, default=2000.0, help="polygons/um2")
    g.add_argument("--target-window", type=float, default=10.0, help="window side, um")
    g.add_argument("--target-pixel", type=float, default=0.01, help="pixel size, um")
    g.add_argument("--target-windows", type=int, default=100_000, help="number of windows")
    g.add_argument("--target-cores", type=int, default=20)
    g.add_argument("--target-ram-gb", type=float, default=192.0)
    g.add_argument("--target-disk-gbps", type=float, default=2.0, help="disk read GB/s")


def targets_from_args(args) -> list:
    sizes = args.target_gb or [50.0, 500.0]
    return [dict(name=f"{s:g}GB", file_bytes=s * GB, density=args.target_density,
                 window_um=args.target_window, pixel_um=args.target_pixel,
                 n_windows=args.target_windows, cores=args.target_cores,
                 ram_bytes=args.target_ram_gb * GB, disk_bw=args.target_disk_gbps * GB)
            for s in sizes]


def run(args) -> int:
    t0 = time.perf_counter()

    def progress(msg):
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)

    res = run_benchmark(args.out, quick=args.quick, sizes_mb=args.sizes, heldout_mb=args.heldout,
                        density=args.density, workers=args.workers,
                        use_klayout=not args.no_klayout, targets=targets_from_args(args),
                        layouts=args.layouts, keep_files=args.keep, seed=args.seed,
                        clock=args.clock, mode=args.mode, progress=progress)
    from engine import benchreport
    print(benchreport.summary(res))
    print(f"report: {os.path.join(args.out, 'report.md')}")
    return 1 if not res.get("model", {}).get("fits") else 0


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="clipmill bench")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
