"""The benchmark's report: matplotlib PNG plots (Agg) and report.md from the results dict."""
from __future__ import annotations

import math
import os

MB, GB = 1e6, 1e9


def _fmt_s(s) -> str:
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    if s < 120:
        return f"{s:.2f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def _fmt_b(b) -> str:
    if b is None:
        return "-"
    for unit, k in (("GB", GB), ("MB", MB), ("kB", 1e3)):
        if b >= k:
            return f"{b / k:.2f} {unit}"
    return f"{b:.0f} B"


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.1f}x"


# ---------------------------------------------------------------------------------------------
def plots(results: dict, out_dir: str) -> list:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = []
    for fn in (_plot_sizes, _plot_windows, _plot_workers, _plot_predictions):
        try:
            name = fn(results, plt)
        except Exception as e:  # a plot that cannot be drawn is noted, never fatal
            results.setdefault("errors", []).append({"stage": f"plot {fn.__name__}",
                                                     "error": f"{type(e).__name__}: {e}"})
            plt.close("all")
            continue
        if name:
            plt.savefig(os.path.join(out_dir, name), dpi=110, bbox_inches="tight")
            plt.close("all")
            out.append(name)
    return out


def _model_fit(results, stage):
    return results.get("model", {}).get("fits", {}).get(stage)


def _predict(fit, row):
    return sum(c * (1.0 if f == "1" else row[f]) for f, c in zip(fit["features"], fit["coef"]))


def _plot_sizes(results, plt):
    lays = [r for r in results["layouts"] if "scan_seconds" in r]
    if not lays:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for held, mk in ((False, "o"), (True, "*")):
        sel = [r for r in lays if r.get("heldout") is held]
        if not sel:
            continue
        x = [r["file_bytes"] / MB for r in sel]
        lab = " (held out)" if held else ""
        ax.plot(x, [r["scan_seconds"] for r in sel], mk, color="C0", ms=9 if held else 6,
                label="clipmill scan" + lab)
        ax.plot(x, [r["index_seconds"] for r in sel], mk, color="C1", ms=9 if held else 6,
                label="clipmill index" + lab)
        kx = [(r["file_bytes"] / MB, r["klayout"]["read_seconds"]) for r in sel
              if r.get("klayout", {}).get("read_seconds")]
        if kx:
            ax.plot(*zip(*kx), mk, color="C3", ms=9 if held else 6, label="KLayout read" + lab)
    xs = [min(r["file_bytes"] for r in lays), max(r["file_bytes"] for r in lays)]
    grid = [xs[0] * (xs[1] / xs[0]) ** (i / 30) for i in range(31)]
    from engine.model import nlogn
    for stage, color, key in (("scan", "C0", "file_bytes"), ("index", "C1", "db_bytes")):
        fit = _model_fit(results, stage)
        if fit:
            ratio = results["model"]["ratios"].get("db_ratio", 1.0) if key == "db_bytes" else 1.0
            ax.plot([g / MB for g in grid],
                    [_predict(fit, {key: g * ratio, "db_nlogn": nlogn(g * ratio)}) for g in grid],
                    "-", color=color, alpha=0.5, label=f"model {stage}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GDSII file size (MB)")
    ax.set_ylabel("seconds")
    ax.set_title("Stage time vs file size (warm page cache, one process)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return "stage_time_vs_size.png"


def _plot_windows(results, plt):
    lays = results["layouts"]
    ex = [r for rec in lays for r in rec.get("explode", [])]
    ra = [r for rec in lays for r in rec.get("raster", [])]
    if not ex and not ra:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    if ex:
        a1.loglog([max(r["polygons"], 1) for r in ex], [r["seconds"] for r in ex], "o",
                  ms=4, label="clipmill explode")
    kex = [r for rec in lays for r in rec.get("klayout", {}).get("explode", [])]
    if kex:
        a1.loglog([max(r["polygons"], 1) for r in kex], [r["seconds"] for r in kex], "s",
                  ms=4, color="C3", label="KLayout Region(begin_shapes_rec_touching)")
    fit = _model_fit(results, "explode")
    if fit and ex:
        lo, hi = max(min(r["polygons"] for r in ex), 1), max(r["polygons"] for r in ex)
        g = [lo * (hi / lo) ** (i / 20) for i in range(21)] if hi > lo else [lo]
        a1.loglog(g, [_predict(fit, {"polygons": v, "depth": 0}) for v in g], "-", alpha=0.5,
                  label="model")
    a1.set_xlabel("polygons in window")
    a1.set_ylabel("seconds per window")
    sizes = results.get("plan", {}).get("window_sizes") or [results["plan"]["window_um"]]
    a1.set_title(f"Explode, windows of {', '.join(f'{v:g}' for v in sizes)} um")
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3, which="both")
    if ra:
        a2.loglog([r["pixels"] for r in ra], [r["seconds"] for r in ra], "o", ms=4,
                  label=f"clipmill rasterize ({results['plan'].get('mode', 'binary')})")
    kra = [r for rec in lays for r in rec.get("klayout", {}).get("raster", [])]
    if kra:
        a2.loglog([r["pixels"] for r in kra], [r["seconds"] for r in kra], "s", ms=5,
                  color="C3", label="KLayout Region.rasterize")
    a2.set_xlabel("pixels per window")
    a2.set_ylabel("seconds per window")
    a2.set_title("Rasterize (time also grows with edges)")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3, which="both")
    return "per_window_stages.png"


def _plot_workers(results, plt):
    rows = [(rec, r) for rec in results["layouts"] for r in rec.get("e2e", [])]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    w = [r["workers"] for _, r in rows]
    ax.plot(w, [r["windows_per_second"] for _, r in rows], "o-",
            label="clipmill run_windows, measured (wall)")
    cpu = [(r["workers"], r["workers"] / r["worker_cpu_per_window"]) for _, r in rows
           if r.get("worker_cpu_per_window")]
    if cpu:
        ax.plot(*zip(*cpu), "s--", color="C2",
                label="workers / worker CPU per window (idle machine)")
    kl = [rec.get("klayout", {}).get("e2e") for rec, _ in rows]
    kl = [k for k in kl if k]
    if kl:
        ax.axhline(kl[0]["windows_per_second"], color="C3", ls="--",
                   label=f"KLayout, one process ({results.get('clock', 'cpu')} clock)")
    ax.set_xlabel("workers")
    ax.set_ylabel("windows per second")
    ax.set_xticks(sorted(set(w)))
    load = max((r.get("load_before") or 0) for _, r in rows)
    ax.set_title(f"End to end (explode + raster + TIFF write)\nload average {load:.1f} on "
                 f"{results['machine']['cpus']} CPUs during the runs", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return "windows_per_second_vs_workers.png"


def _plot_predictions(results, plt):
    preds = results.get("predictions_all") or results.get("predictions") or []
    if not preds:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = [p["target"].get("name", f"t{i}") for i, p in enumerate(preds)]
    scan = [p["scan_seconds"] / 3600 for p in preds]
    index = [p["index_seconds"] / 3600 for p in preds]
    wins = [(p["total_seconds"] - p["scan_seconds"] - p["index_seconds"]) / 3600 for p in preds]
    ax.bar(names, scan, label="scan")
    ax.bar(names, index, bottom=scan, label="index")
    ax.bar(names, wins, bottom=[a + b for a, b in zip(scan, index)],
           label=f"{preds[0]['target']['n_windows']} windows")
    for i, p in enumerate(preds):
        ax.text(i, p["total_seconds"] / 3600, f"{p['windows_per_second']:.0f} w/s\n"
                f"{'in RAM' if p['fits_in_ram'] else 'mapped'}", ha="center", va="bottom",
                fontsize=8)
    ax.set_ylabel("hours")
    ax.set_title("Predicted totals")
    ax.legend(fontsize=8)
    return "predicted_totals.png"


# ---------------------------------------------------------------------------------------------
def summary(results: dict) -> str:
    lines = []
    h = results.get("heldout", {})
    for stage, v in h.get("stages", {}).items():
        lines.append(f"held-out {stage:8s} predicted {_fmt_s(v['predicted_seconds']):>10s} "
                     f"measured {_fmt_s(v['measured_seconds']):>10s} "
                     f"error {100 * v['rel_error']:+.1f}%")
    for p in results.get("predictions_all") or results.get("predictions") or []:
        t = p["target"]
        lines.append(f"{t.get('name', '')}: first window "
                     f"{_fmt_s(p['time_to_first_window_seconds'])}"
                     f", {p['windows_per_second']:.0f} windows/s on {p['workers']} workers, "
                     f"{t['n_windows']} windows in {_fmt_s(p['total_seconds'])}; "
                     f"bottleneck {p['bottleneck_stage']} (limited by {p['limited_by']}); "
                     f"database {_fmt_b(p['db_bytes'])} {p['database']}")
    if results.get("errors"):
        lines.append(f"{len(results['errors'])} stage error(s): see results.json 'errors'")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    m = results["machine"]
    p = results["plan"]
    L = [f"# clipmill benchmark{' (quick)' if results.get('quick') else ''}", "",
         f"Machine: {m['cpus']} CPUs, {_fmt_b(m['ram_bytes'])} RAM, {m['processor']}, "
         f"Python {m['python']}. Benchmark time {_fmt_s(results.get('total_seconds'))} "
         f"(numba warm-up {_fmt_s(results.get('warmup_seconds'))}, not in the figures). "
         f"KLayout reference: {'yes' if results.get('klayout') else 'not installed'}.", "",
         f"Synthetic layouts at {p['density']:g} polygons/um2 (generator: "
         f"{_generator(results)}), plus variants (MB, polygons/um2, hierarchy levels) "
         f"{', '.join(str(tuple(v)) for v in p.get('variants', [])) or 'none'}; windows of "
         f"{', '.join(f'{v:g}' for v in p.get('window_sizes', [p['window_um']]))} um "
         f"(half of them inside dense blocks), end to end {p['window_um']:g} x "
         f"{p['window_um']:g} um"
         f" at {p.get('e2e_pixel_um', p['pixel_um'][0]):g} um pixels; raster mode "
         f"{p.get('mode', 'binary')}; pixel sizes "
         f"{', '.join(f'{x:g}' for x in p['pixel_um'])} um; each figure the best of "
         f"{p['repeats']} runs, in {_clock(results)}. The largest layout is held out of the fit.",
         "", f"Load average at start: {_load(results.get('load_at_start'))} on {m['cpus']} CPUs.",
         ""]
    L += _layout_table(results)
    L += _klayout_table(results)
    L += _model_section(results)
    L += _heldout_section(results)
    L += _e2e_section(results)
    L += _prediction_section(results)
    for name in results.get("plots", []):
        L += [f"![{name}]({name})", ""]
    if results.get("errors"):
        L += ["## Stage errors", ""]
        L += [f"- {e['error']}" for e in results["errors"]]
        L.append("")
    return "\n".join(L)


def _clock(results):
    if results.get("clock", "cpu") == "cpu":
        return ("CPU seconds of the measuring process (every stage runs in it on one core; "
                "time spent descheduled by other load does not count; wall seconds are in "
                "results.json; end to end figures are wall time)")
    return "wall seconds"


def _load(x):
    return "-" if not x else ", ".join(f"{v:.1f}" for v in x)


def _generator(results):
    gens = {r.get("synth", {}).get("generator") for r in results["layouts"]}
    return ", ".join(sorted(g for g in gens if g)) or "-"


def _layout_table(results):
    L = ["## Stages per layout", "",
         "| layout | file | DB | index | DB+index / file | scan | scan MB/s | index | "
         "explode / window | polygons / window | raster / window |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["layouts"]:
        ex, ra = r.get("explode", []), r.get("raster", [])
        db, ix = r.get("db_bytes"), r.get("index_bytes")
        share = f"{100 * (db + ix) / r['file_bytes']:.0f}%" if db is not None else "-"
        mbs = f"{r['file_bytes'] / MB / r['scan_seconds']:.0f}" if r.get("scan_seconds") else "-"
        L.append(f"| {r['name']}{' (held out)' if r.get('heldout') else ''} | "
                 f"{_fmt_b(r['file_bytes'])} | {_fmt_b(db)} | {_fmt_b(ix)} | {share} | "
                 f"{_fmt_s(r.get('scan_seconds'))} | {mbs} | {_fmt_s(r.get('index_seconds'))} | "
                 f"{_fmt_s(_mean([x['seconds'] for x in ex]))} | "
                 f"{_mean([x['polygons'] for x in ex]) or 0:.0f} | "
                 f"{_fmt_s(_mean([x['seconds'] for x in ra]))} |")
    wr = [x for r in results["layouts"] for x in r.get("write", [])]
    L.append("")
    if wr:
        L += [f"Write ({wr[0]['format']}): {len(wr)} images, mean "
              f"{_fmt_s(_mean([x['seconds'] for x in wr]))}"
              f" for {_fmt_b(_mean([x['bytes'] for x in wr]))}.", ""]
    return L


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def _klayout_table(results):
    rows = results.get("klayout_ratios") or []
    if not rows:
        return []
    L = ["## Side by side with KLayout (same files, same windows, same run)", "",
         "| layout | KLayout read | clipmill scan+index | ratio | KLayout explode | clipmill "
         "explode | ratio | polygons KLayout / ours | KLayout raster | clipmill raster | ratio |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['layout']} | {_fmt_s(r.get('read_klayout_s'))} | "
                 f"{_fmt_s(r.get('load_ours_s'))} | {_ratio(r.get('load_speedup'))} | "
                 f"{_fmt_s(r.get('explode_klayout_s'))} | {_fmt_s(r.get('explode_ours_s'))} | "
                 f"{_ratio(r.get('explode_speedup'))} | "
                 f"{r.get('polygons_klayout', '-')} / {r.get('polygons_ours', '-')} | "
                 f"{_fmt_s(r.get('raster_klayout_s'))} | {_fmt_s(r.get('raster_ours_s'))} | "
                 f"{_ratio(r.get('raster_speedup'))} |")
    L += ["", "Ratio = KLayout time / clipmill time (higher is better for clipmill). Explode and "
          "raster are sums over the same windows; KLayout rasterizes only the first few windows "
          "(it is slow), compared with ours on those same windows.", ""]
    return L


def _model_section(results):
    fits = results.get("model", {}).get("fits", {})
    if not fits:
        return ["## Cost model", "", "No stage could be fitted (see errors).", ""]
    L = ["## Cost model (fitted on all but the held-out layout)", "",
         "| stage | law | R^2 | max relative residual | points |", "|---|---|---|---|---|"]
    for s, f in fits.items():
        drop = f" (constant, folded: {', '.join(f['dropped'])})" if f.get("dropped") else ""
        L.append(f"| {s} | {f['law']}{drop} | {f['r2']:.3f} | {100 * f['max_rel_resid']:.0f}% | "
                 f"{f['n']} |")
    r = results["model"]["ratios"]
    L += ["", "Measured ratios: " + ", ".join(f"{k} = {_num(v)}" for k, v in r.items()), ""]
    return L


def _num(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _heldout_section(results):
    h = results.get("heldout", {})
    if not h.get("stages"):
        return []
    L = ["## Held-out check (largest layout, not in the fit)", "",
         "| stage | predicted | measured | error | points |", "|---|---|---|---|---|"]
    for s, v in h["stages"].items():
        L.append(f"| {s} | {_fmt_s(v['predicted_seconds'])} | {_fmt_s(v['measured_seconds'])} | "
                 f"{100 * v['rel_error']:+.1f}% | {v['n']} |")
    L += ["", f"Largest error {100 * h['max_abs_rel_error']:.1f}%: "
          f"{'within' if h.get('within_25pct') else 'NOT within'} 25%.", ""]
    return L


def _e2e_section(results):
    rows = [(rec, r) for rec in results["layouts"] for r in rec.get("e2e", [])]
    if not rows:
        return []
    L = ["## End to end: run_windows", "",
         "| workers | windows | windows/s | first result | coordinator CPU share | "
         "coordinator peak RSS | worker peak RSS | worker peak USS (private) |",
         "|---|---|---|---|---|---|---|---|"]
    for rec, r in rows:
        wr = r["worker_maxrss_inside"] or r["worker_rss_peak_sampled"]
        L.append(f"| {r['workers']} | {r['windows']} ({r['errors']} failed) | "
                 f"{r['windows_per_second']:.1f} | {_fmt_s(r['first_result_seconds'])} | "
                 f"{100 * r['coordinator_cpu_share']:.0f}% | {_fmt_b(r['coordinator_rss_peak'])} | "
                 f"{', '.join(_fmt_b(x) for x in wr) or '-'} | "
                 f"{', '.join(_fmt_b(x) for x in r.get('worker_uss_peak_sampled', [])) or '-'} |")
    chk = results.get("e2e_check") or []
    if chk:
        L += ["", "Stage laws vs run_windows on the same windows (worker CPU per window measured "
              "inside the workers; windows/s is wall time and carries the machine's other load):",
              "", "| workers | worker CPU / window: predicted | measured | error | windows/s: "
              "predicted (idle machine) | measured | load |", "|---|---|---|---|---|---|---|"]
        for c in chk:
            err = c.get("cpu_rel_error")
            L.append(f"| {c['workers']} | {_fmt_s(c['predicted_worker_seconds_per_window'])} | "
                     f"{_fmt_s(c['measured_worker_cpu_per_window'])} | "
                     f"{'-' if err is None else f'{100 * err:+.0f}%'} | "
                     f"{c['predicted_windows_per_second']:.1f} | "
                     f"{c['measured_windows_per_second']:.1f} | {c.get('load_before') or 0:.1f} |")
    k = rows[0][0].get("klayout", {}).get("e2e")
    if k:
        ours = [r.get("worker_cpu_per_window") for _, r in rows if r.get("worker_cpu_per_window")]
        per_core = (f"; clipmill per core, from the workers' CPU per window: "
                    f"{1 / min(ours):.1f} windows/s ({min(ours) * k['windows_per_second']:.3f} "
                    f"of KLayout's time, i.e. {1 / (min(ours) * k['windows_per_second']):.1f}x)"
                    if ours else "")
        L += ["", f"KLayout, one process, same windows: {k['windows_per_second']:.1f} windows/s "
              f"per core ({results.get('clock', 'cpu')} clock; explode measured, raster estimated "
              f"from its measured seconds per pixel){per_core}."]
    L += ["", "Worker RSS counts the shared-memory pages of the database a worker touched; USS "
          "(sampled every 50 ms from the coordinator) is what the worker alone holds, the figure "
          "the RAM verdict uses per worker. The sampled lists may include the pool's helper "
          "processes.", ""]
    return L


def _prediction_section(results):
    preds = results.get("predictions_all") or []
    if not preds:
        return []
    L = ["## Predictions (model refitted on every layout)", "",
         "| target | DB | where | scan | index | explode / raster / write per window | "
         "windows/s (linear scaling) | first window | total | bottleneck |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for p in preds:
        t = p["target"]
        L.append(f"| {t.get('name', '')}: {_fmt_b(t['file_bytes'])}, {t['density']:g}/um2, "
                 f"{t['window_um']:g} um @ {t['pixel_um'] * 1e3:g} nm, {t['n_windows']} windows, "
                 f"{t['cores']} CPUs, {_fmt_b(t['ram_bytes'])} RAM | {_fmt_b(p['db_bytes'])} | "
                 f"{p['database']} | {_fmt_s(p['scan_seconds'])} | {_fmt_s(p['index_seconds'])} | "
                 f"{_fmt_s(p['explode_seconds'])} / {_fmt_s(p['raster_seconds'])} / "
                 f"{_fmt_s(p['write_seconds'])} | {p['windows_per_second']:.0f} "
                 f"({p.get('windows_per_second_linear', float('nan')):.0f}) | "
                 f"{_fmt_s(p['time_to_first_window_seconds'])} | {_fmt_s(p['total_seconds'])} | "
                 f"{p['bottleneck_stage']} (rate limited by {p['limited_by']}) |")
    L += ["", "Assumptions:", ""] + [f"- {a}" for a in preds[0]["assumptions"]] + [""]
    return L
