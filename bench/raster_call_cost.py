"""Per-call cost of rasterize on small windows (the fixed part: argument checks, scratch
buffers, kernel dispatch), beside KLayout's Region.merged().rasterize in the same run.

Windows: ``layout`` polygons (bench/raster_vs_klayout.py) in an s x s um window at 10 nm, for a few
sizes; one Scratch reused, as workers do; best of --repeats interleaved calls.

    python bench/raster_call_cost.py [--sizes 0.4,1,3] [--repeats 2000]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engine.raster as R  # noqa: E402
import raster_vs_klayout as B  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0.4,1,3", help="window sides in um")
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--kl-repeats", type=int, default=50)
    a = ap.parse_args(argv)
    try:
        import klayout.db  # noqa: F401
        have_kl = True
    except ImportError:
        have_kl = False
    print(f"{'window':>10} {'pixels':>9} {'polys':>6} {'binary us':>10} {'gray us':>9} "
          f"{'KLayout us':>11}")
    for side in (float(v) for v in a.sizes.split(",")):
        n = max(int(round(side * side * 250)), 1)      # 2.5 polygons per 100 pixels
        polys = B.synth_window(n, "layout", size=side)
        win = (0.0, 0.0, side, side)
        sc = R.Scratch()
        fns = {m: (lambda m=m: R.rasterize(polys, win, B.PIXEL, mode=m, scratch=sc))
               for m in ("binary", "gray")}
        reps = {m: a.repeats for m in fns}
        if have_kl:
            reg = B.kl_region(polys)
            fns["kl"] = lambda: B.kl_rasterize(reg, win, B.PIXEL)
            reps["kl"] = a.kl_repeats
        for f in fns.values():
            f()
        best = B.interleaved(fns, reps)
        rows, cols = R.image_shape(win, B.PIXEL)
        kl = f"{best['kl'][0] * 1e6:11.1f}" if have_kl else f"{'-':>11}"
        print(f"{side:>8g}um {rows * cols:>9} {n:>6} {best['binary'][0] * 1e6:>10.1f} "
              f"{best['gray'][0] * 1e6:>9.1f} {kl}")


if __name__ == "__main__":
    main()
