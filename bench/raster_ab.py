"""Interleaved A/B of the rasterizer: engine/raster.py at a git revision against the working tree,
both loaded in ONE process (with the base's own engine/simd.py and engine/simple.py when it has
them) and called alternately on the same windows (the raster_vs_klayout ones), so that the slow
drifts of a shared machine hit both alike. Prints the best and median CPU ms per window of each
and the largest gray/binary difference between their images.

    python bench/raster_ab.py --base REV [--mode gray] [--repeats 21] [--cases L2000,L200000]
        [--set NAME=VALUE ...]   (module settings of the working tree's copy read at run time,
                                  such as ISOLATE=False; the base keeps its own)

Cases: L2000, L20000, L200000 (layout), R200k (random), S20k, S200k (slanted), sram (the real
window, when ../shared/data is present); a trailing s (L200000s) takes the same polygons in
random order. The base copy is compiled into a temporary folder on first use
(about a minute).
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engine.raster as now  # noqa: E402
import raster_vs_klayout as B  # noqa: E402


def _write(path, text):
    if not os.path.exists(path) or open(path).read() != text:   # keeps numba's cache valid
        with open(path, "w") as f:
            f.write(text)


def load_base(rev):
    src = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:engine/raster.py"], check=True,
                         capture_output=True, text=True).stdout
    sha = subprocess.run(["git", "-C", ROOT, "rev-parse", rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    # one folder per commit: numba's cache there is keyed on raster_base.py alone, and a name
    # like HEAD would keep the machine code of another commit's simd_base.py
    d = os.path.join(tempfile.gettempdir(), f"clipmill_raster_{sha}")
    os.makedirs(d, exist_ok=True)
    for dep in ("simd", "simple"):
        # the base's own vector kernels and simplicity test, not the working tree's
        got = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:engine/{dep}.py"],
                             capture_output=True, text=True)
        if got.returncode == 0:
            _write(os.path.join(d, f"{dep}_base.py"), got.stdout)
            spec = importlib.util.spec_from_file_location(f"{dep}_base",
                                                          os.path.join(d, f"{dep}_base.py"))
            sys.modules[f"{dep}_base"] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[f"{dep}_base"])
            src = src.replace(f"from engine.{dep} import", f"from {dep}_base import")
    path = os.path.join(d, "raster_base.py")
    _write(path, src)
    spec = importlib.util.spec_from_file_location("raster_base", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["raster_base"] = mod   # numba's on-disk cache finds the module by name
    spec.loader.exec_module(mod)
    return mod


def cases(names):
    out = []
    for n in (2000, 20000, 200000):
        out.append((f"L{n}", lambda n=n: (B.synth_window(n, "layout"), B.WINDOW)))
    out.append(("R200k", lambda: (B.synth_window(200000, "random"), B.WINDOW)))
    out += [(f"S{n // 1000}k", lambda n=n: (B.synth_window(n, "slanted"), B.WINDOW))
            for n in (20000, 200000)]

    def sram():
        from tests.conftest import SHARED
        f = SHARED / "chameleon" / "sram_1rw1r_32_256_8_sky130.gds"
        return B.real_window(str(f)) if f.exists() else None
    out.append(("sram", sram))
    out += [(nm + "s", lambda mk=mk: (lambda w: w and (B.shuffled(w[0]), w[1]))(mk()))
            for nm, mk in out]
    return [(nm, mk) for nm, mk in out if nm in names]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="git revision of the base engine/raster.py")
    ap.add_argument("--mode", default="gray", choices=("gray", "binary"))
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--cases", default="L2000,L20000,L200000,R200k,sram")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    a = ap.parse_args(argv)
    for kv in a.set:
        name, value = kv.split("=", 1)
        if not hasattr(now, name):
            raise SystemExit(f"engine.raster has no setting {name}")
        setattr(now, name, ast.literal_eval(value))
    base = load_base(a.base)
    print(f"{'window':<8} {'base best/median ms':>20} {'now best/median ms':>20} "
          f"{'median now/base':>16} {'max diff':>8}")
    for name, make in cases(a.cases.split(",")):
        made = make()
        if made is None:
            print(f"{name:<8} skipped: ../shared/data absent")
            continue
        polys, win = made
        mods = (base, now)
        scs = [m.Scratch() for m in mods]
        imgs = [m.rasterize(polys, win, B.PIXEL, mode=a.mode, scratch=s) for m, s in zip(mods, scs)]
        times = [[], []]
        for _ in range(a.repeats):
            for k, (m, s) in enumerate(zip(mods, scs)):
                t = time.process_time()
                m.rasterize(polys, win, B.PIXEL, mode=a.mode, scratch=s)
                times[k].append(time.process_time() - t)
        tb, tn = (sorted(t) for t in times)
        med = a.repeats // 2
        diff = int(np.abs(imgs[0].astype(int) - imgs[1]).max())
        print(f"{name:<8} {tb[0] * 1e3:>9.2f}/{tb[med] * 1e3:<10.2f} {tn[0] * 1e3:>9.2f}/"
              f"{tn[med] * 1e3:<10.2f} {tn[med] / tb[med]:>16.3f} {diff:>8}")


if __name__ == "__main__":
    main()
