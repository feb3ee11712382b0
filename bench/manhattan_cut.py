"""Gray rasterize with and without the Manhattan cut (engine/manhattan.py), interleaved in one
process: the raster_vs_klayout layout window with a share of its rectangles turned into L shapes
(same box, the top-right quarter removed), for each share CPU ms best / median of the cut
(CUT_MIN_SHARE = 0) and of the general path (CUT_MIN_SHARE = inf); images compared.

    python bench/manhattan_cut.py [--count 200000] [--shares 0,0.01,0.05,0.2] [--repeats 11]
    python bench/manhattan_cut.py --real 12    (instead: real 10 x 10 um windows, every layer,
        of the 12 files of ../shared/data with the most flat shapes; cut by default rule vs none)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engine.raster as R  # noqa: E402
import raster_vs_klayout as B  # noqa: E402
from engine.polygons import Polygons  # noqa: E402


def with_ells(base, share, seed=0):
    """base (four-vertex polygons) with about share of its axis-parallel rectangles made L's."""
    xy, off = base.xy, base.offsets
    polys = [xy[off[i]:off[i + 1]] for i in range(len(off) - 1)]
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(polys), int(share * len(polys)), replace=False):
        p = polys[i]
        if not (p[0, 1] == p[1, 1] and p[1, 0] == p[2, 0]):
            continue        # slanted quads stay
        x0, x1, y0, y1 = p[:, 0].min(), p[:, 0].max(), p[:, 1].min(), p[:, 1].max()
        xm, ym = np.round((x0 + x1) / 2, 3), np.round((y0 + y1) / 2, 3)
        polys[i] = np.array([(x0, y0), (x1, y0), (x1, ym), (xm, ym), (xm, y1), (x0, y1)])
    return Polygons.from_list(polys)


def _ab(polys, window, repeats, settings):
    """CPU ms (best, median) of gray rasterize of polygons under each CUT_MIN_SHARE in
    settings, interleaved, and the largest difference between their images."""
    sc = R.Scratch()
    times = {s: [] for s in settings}
    imgs = {}
    for k in range(repeats + 1):
        for s in settings:
            R.CUT_MIN_SHARE = s
            t = time.process_time()
            imgs[s] = R.rasterize(polys, window, B.PIXEL, mode="gray", scratch=sc)
            if k:       # the first round compiles and grows the scratch
                times[s].append(time.process_time() - t)
    first = imgs[settings[0]].astype(int)
    diff = max(int(np.abs(first - im).max()) for im in imgs.values())
    return [(min(v) * 1e3, statistics.median(v) * 1e3) for v in times.values()], diff


def real_files(count, repeats, share):
    import json
    from tests.conftest import SHARED
    from engine.manhattan import NMAX_CUT, _plan
    man = json.loads((SHARED / "manifest.json").read_text())
    man = [e for e in man if e.get("klayout_ok")]
    man.sort(key=lambda e: -sum(e.get("flat_shapes", {}).values()))
    print(f"{'file':<44} {'polys':>6} {'Manh.':>6} {'cut ms (best/med)':>18} "
          f"{'none ms (best/med)':>19} {'none/cut':>9} {'diff':>5}")
    for e in man[:count]:
        polys, win = B.real_window(str(SHARED / e["file"]))
        cand = np.zeros(len(polys), np.uint8)
        ncand = _plan(polys.xy, polys.offsets, NMAX_CUT, cand)
        (c, n), diff = _ab(polys, win, repeats, (share, float("inf")))
        print(f"{e['file'][-44:]:<44} {len(polys):>6} {ncand / max(len(polys), 1):>6.1%} "
              f"{c[0]:>8.2f} / {c[1]:<7.2f} {n[0]:>8.2f} / {n[1]:<8.2f} {n[1] / c[1]:>8.2f}x "
              f"{diff:>5}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--shares", default="0,0.01,0.05,0.2")
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--real", type=int, default=0)
    a = ap.parse_args(argv)
    saved = R.CUT_MIN_SHARE
    if a.real:
        try:
            real_files(a.real, a.repeats, saved)
        finally:
            R.CUT_MIN_SHARE = saved
        return
    base = B.synth_window(a.count, "layout")
    print(f"{'L share':>8} {'cut best/median ms':>20} {'no cut best/median ms':>23} "
          f"{'no cut / cut':>12} {'max diff':>9}")
    try:
        for share in (float(v) for v in a.shares.split(",")):
            (c, n), diff = _ab(with_ells(base, share), B.WINDOW, a.repeats, (0.0, float("inf")))
            print(f"{share:>8} {c[0]:>9.2f} / {c[1]:<8.2f} {n[0]:>11.2f} / {n[1]:<9.2f} "
                  f"{n[1] / c[1]:>11.2f}x {diff:>9}")
    finally:
        R.CUT_MIN_SHARE = saved


if __name__ == "__main__":
    main()
