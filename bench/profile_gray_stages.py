"""Per-stage CPU split of rasterize(mode="gray") on the raster_vs_klayout windows (10 x 10 um at
10 nm: 1000 x 1000 pixels): each kernel that _raster_into calls (and Scratch.get, i.e. the fill
passes) is wrapped with a process_time timer; the split of the best of --repeats runs is printed
(_finish_gray includes the rectangles' union sweep and the walk of the other polygons, both run
row by row inside it).

    PYTHONPATH=$PWD python bench/profile_gray_stages.py [--counts 2000,20000] [--repeats 15]
        [--kinds layout,random,slanted] [--shuffle] [--gds FILE] (--counts '': no synthetic)
        (--shuffle: the synthetic polygons in random order; --gds: default the chameleon SRAM
        in ../shared/data when present, '' for none)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engine.raster as R  # noqa: E402
import raster_vs_klayout as B  # noqa: E402

STAGES = ["_classify", "_winding_complex", "_walk_rows", "_rect_rows",
          "_finish_gray", "_tiles_needed", "_tile_index", "_exact", "_finish_listed"]
T = {}


def _wrap(name):
    f = getattr(R, name, None)
    if f is None:
        return

    def w(*a, **k):
        t = time.process_time()
        r = f(*a, **k)
        T[name] = T.get(name, 0.0) + time.process_time() - t
        return r
    setattr(R, name, w)


def _wrap_get():
    get = R.Scratch.get

    def w(self, *a, **k):
        t = time.process_time()
        r = get(self, *a, **k)
        T["fills(get)"] = T.get("fills(get)", 0.0) + time.process_time() - t
        return r
    R.Scratch.get = w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="2000,20000")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--kinds", default="layout",
                    help="synthetic kinds, comma-separated: layout, random, slanted")
    ap.add_argument("--shuffle", action="store_true", help="the synthetic polygons in random order")
    ap.add_argument("--gds", default=None)
    a = ap.parse_args()
    cases = [(f"{kind} {n}" + (" shuffled" if a.shuffle else ""),
              B.shuffled(B.synth_window(n, kind)) if a.shuffle else B.synth_window(n, kind),
              B.WINDOW) for kind in a.kinds.split(",") for n in map(int, filter(None, a.counts.split(",")))]
    gds = a.gds
    if gds is None:
        from tests.conftest import SHARED
        cand = SHARED / "chameleon" / "sram_1rw1r_32_256_8_sky130.gds"
        gds = str(cand) if cand.exists() else None
    if gds:
        p, win = B.real_window(gds)
        cases.append(("real " + os.path.basename(gds)[:11], p, win))
    for nm in STAGES:
        _wrap(nm)
    _wrap_get()
    for name, p, win in cases:
        sc = R.Scratch()
        best = None
        for _ in range(a.repeats):
            T.clear()
            t = time.process_time()
            R.rasterize(p, win, B.PIXEL, mode="gray", scratch=sc)
            tot = time.process_time() - t
            if best is None or tot < best[0]:
                best = (tot, dict(T))
        tot, d = best
        parts = "  ".join(f"{k.lstrip('_')} {v * 1e3:.2f}"
                          for k, v in sorted(d.items(), key=lambda kv: -kv[1]))
        print(f"{name}: {tot * 1e3:.2f} ms = {parts}  rest {(tot - sum(d.values())) * 1e3:.2f}")


if __name__ == "__main__":
    main()
