"""Rasterize throughput, clipmill vs KLayout in the same run: 10 x 10 um windows at 10 nm
(1000 x 1000 pixels), one core.

Windows (all in um on a 1 nm grid):
* ``layout``: n polygons laid out like a layout (one rectangle per grid site, random size and
  offset so that neighbours touch or overlap a little, 10% 45-degree/slanted quads) in raster
  order, row of sites by row of sites. That order is the kindest: an explode returns polygons
  cell by cell (in the real windows of ../shared/data, 7-24% of consecutive polygons start
  more than 50 pixel rows above the one before), and ``--shuffle`` gives the worst;
* ``slanted``: the ``layout`` window with every polygon a slanted quad (no rectangle: the
  general path alone);
* ``random``: n rectangles 10-60 nm (10% slanted quads) at uniform random places in random order:
  heavy overlap, every pixel crossed by several polygons (the worst case for exact gray);
* ``real``: the flattened polygons (every layer) of a 10 x 10 um window of a real file from
  ../shared/data (among its centre and windows centred on a few random shapes, the one holding
  the most vertices), taken with KLayout's ``begin_shapes_rec_touching``; ``--shared N``: the
  same for each of the N largest files of ../shared/data (photonic windows hold few polygons
  of hundreds to thousands of vertices: rings, arcs, keyholes).

For each: clipmill ``rasterize`` binary and gray (one Scratch reused, as workers do; wall and
CPU seconds) and KLayout ``Region.merged().rasterize(...)`` (per-pixel covered area; KLayout has
no centre-sampled binary raster, so both modes are compared with it), each the best of
``--repeats`` calls (KLayout: ``--kl-repeats``, by default the same), the three interleaved (each
round calls ours binary, ours gray and KLayout in turn) so that a shared machine's slow drifts
hit all alike.
Printed: ms per window, Mpixels/s, polygon edges/s and the speed-up; the max gray difference to
KLayout (KLayout snaps crossings of its merge to the 1 nm grid, so slanted overlaps may differ by
a few levels there; tests/test_raster.py checks exactness with magnified references).

    python bench/raster_vs_klayout.py [--counts 2000,20000,200000] [--repeats 5] [--gds FILE]
        [--shuffle]   (every window's polygons in random order: names end in /shuf)
        [--shared N]  (the N largest shared files' windows too; --counts '' --gds '': only those)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WINDOW = (0.0, 0.0, 10.0, 10.0)
PIXEL = 0.01


def _quads_to_polygons(quads):
    from engine.polygons import Polygons
    n = len(quads)
    xy = np.round(np.asarray(quads, dtype=np.float64).reshape(-1, 2) * 1000) / 1000
    return Polygons(xy, np.arange(n + 1, dtype=np.int64) * 4, np.zeros((n, 2), np.int32))


def shuffled(polys, seed=1):
    """The same polygons in a random order (the synthetic windows come in raster order, which
    favours the per-row sorts; an exploded layout comes cell by cell)."""
    from engine.polygons import Polygons
    n = len(polys)
    perm = np.random.default_rng(seed).permutation(n)
    lo, hi = polys.offsets[:-1][perm], polys.offsets[1:][perm]
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if n else np.zeros(0, int)
    off = np.concatenate([[0], np.cumsum(hi - lo)]).astype(np.int64)
    return Polygons(np.ascontiguousarray(polys.xy[idx]), off, polys.layer[perm])


def synth_window(n, kind, seed=0, size=10.0):
    """n four-vertex polygons (um) in a size x size window; see the module doc."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        x = rng.uniform(-0.05, size, n)
        y = rng.uniform(-0.05, size, n)
        w = rng.uniform(0.01, 0.06, n)
        h = rng.uniform(0.01, 0.06, n)
    else:
        side = int(np.ceil(np.sqrt(n)))
        pitch = size / side
        k = np.arange(n)
        gy, gx = divmod(k, side)
        w = pitch * rng.uniform(0.4, 1.05, n)
        h = pitch * rng.uniform(0.4, 1.05, n)
        x = gx * pitch + rng.uniform(-0.05, 0.1, n) * pitch
        y = size - (gy + 1) * pitch + rng.uniform(-0.05, 0.1, n) * pitch
    q = np.stack([x, y, x + w, y, x + w, y + h, x, y + h], 1).reshape(n, 4, 2)
    slant = rng.random(n) < (1.0 if kind == "slanted" else 0.1)
    q[slant, 2, 0] -= 0.5 * w[slant]          # top edge shifted: slanted right side
    q[slant, 3, 0] += 0.3 * w[slant] * rng.uniform(-1, 1, slant.sum())
    return _quads_to_polygons(q)


def real_window(path, size=10.0, tries=8, seed=0):
    """Polygons (um) of every layer in the size x size window, among the top cell's centre and
    a few windows centred on random shapes, holding the most polygon vertices."""
    import klayout.db as kdb
    from engine.polygons import Polygons
    ly = kdb.Layout()
    ly.read(path)
    top = ly.top_cells()[0]
    rng = np.random.default_rng(seed)
    layers = [li for li in ly.layer_indexes() if not top.bbox_per_layer(li).empty()]
    centres = [top.dbbox().center()]
    for _ in range(tries):
        it = top.begin_shapes_rec(int(rng.choice(layers)))
        k = int(rng.integers(0, 500))
        while not it.at_end() and k > 0:
            it.next()
            k -= 1
        if not it.at_end():
            centres.append(it.shape().dbbox().transformed(it.dtrans()).center())
    best = None
    for c in centres:
        win = (c.x - size / 2, c.y - size / 2, c.x + size / 2, c.y + size / 2)
        box = kdb.DBox(*win)
        polys = []
        for li in layers:
            for p in kdb.Region(top.begin_shapes_rec_touching(li, box)).each():
                sp = p.to_simple_polygon() if p.holes() else p
                pts = sp.each_point() if p.holes() else sp.each_point_hull()
                polys.append(np.array([(q.x, q.y) for q in pts], dtype=np.float64) * ly.dbu)
        nv = sum(len(p) for p in polys)
        if best is None or nv > best[0]:
            best = (nv, polys, win)
    return Polygons.from_list(best[1]), best[2]


def largest_shared(n):
    """Paths of the n largest layout files listed in ../shared/data/manifest.json (none when
    it is absent)."""
    import json
    from tests.conftest import SHARED
    man = SHARED / "manifest.json"
    if n <= 0 or not man.exists():
        return []
    files = sorted(json.loads(man.read_text()), key=lambda f: -f["size_bytes"])
    return [SHARED / f["file"] for f in files[:n] if (SHARED / f["file"]).exists()]


def kl_region(polys):
    import klayout.db as kdb
    reg = kdb.Region()
    for i in range(len(polys)):
        p = np.round(polys[i] * 1000).astype(np.int64)
        reg.insert(kdb.SimplePolygon([kdb.Point(int(a), int(b)) for a, b in p], True))
    return reg


def kl_rasterize(reg, window, pixel):
    import klayout.db as kdb
    x0, y0, x1, y1 = (int(round(v * 1000)) for v in window)
    p = int(round(pixel * 1000))
    nx, ny = (x1 - x0 + p - 1) // p, (y1 - y0 + p - 1) // p
    return reg.merged().rasterize(kdb.Point(x0, y1 - ny * p), kdb.Vector(p, p), kdb.Vector(p, p),
                                  nx, ny)


def interleaved(fns, repeats):
    """Best wall and CPU seconds of each of fns (name -> callable) over repeats[name] calls, the
    calls interleaved (each round calls every one still due, in turn), so that the slow drifts
    of a shared machine hit all alike; returns name -> (wall, cpu, last result)."""
    walls = {k: [] for k in fns}
    cpus = {k: [] for k in fns}
    out = {}
    for i in range(max(repeats.values())):
        for k, fn in fns.items():
            if i >= repeats[k]:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            out[k] = fn()
            walls[k].append(time.perf_counter() - t0)
            cpus[k].append(time.process_time() - c0)
    return {k: (min(walls[k]), min(cpus[k]), out[k]) for k in fns}


def run_case(name, polys, window, repeats, kl_repeats):
    from engine.raster import Scratch, rasterize
    sc = Scratch()
    edges = int(polys.offsets[-1])
    for mode in ("binary", "gray"):
        rasterize(polys, window, PIXEL, mode=mode, scratch=sc)  # compile + grow scratch
    reg = kl_region(polys)
    res = interleaved({
        "binary": lambda: rasterize(polys, window, PIXEL, mode="binary", scratch=sc),
        "gray": lambda: rasterize(polys, window, PIXEL, mode="gray", scratch=sc),
        "klayout": lambda: kl_rasterize(reg, window, PIXEL)},
        {"binary": repeats, "gray": repeats, "klayout": kl_repeats})
    kl = res["klayout"]
    img = res["gray"][2]
    ref = np.floor(255 * np.array(kl[2])[::-1] / (1000 * PIXEL) ** 2 + 0.5)
    diff = np.abs(img.astype(int) - ref)
    npx = img.size
    for mode in ("binary", "gray"):
        wall, cpu, _ = res[mode]
        print(f"{name:<16} {len(polys):>7} {mode:<6} {wall * 1e3:>9.1f} {cpu * 1e3:>9.1f} "
              f"{npx / wall / 1e6:>8.1f} {edges / wall / 1e6:>9.2f} {kl[0] * 1e3:>9.1f} "
              f"{kl[0] / wall:>8.1f}x")
    print(f"{'':<16} gray vs KLayout: max |diff| {int(diff.max())} levels, "
          f"{(diff > 1).mean() * 100:.3f}% of pixels > 1")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="2000,20000,200000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kl-repeats", type=int, default=None, help="default: --repeats")
    ap.add_argument("--kinds", default="layout,random")
    ap.add_argument("--gds", default=None, help="real file for the 'real' window (default: "
                    "chameleon SRAM from ../shared/data when present)")
    ap.add_argument("--shuffle", action="store_true",
                    help="the polygons of every window in random order (see shuffled)")
    ap.add_argument("--shared", type=int, default=0,
                    help="also the densest window of each of the N largest files in ../shared/data")
    a = ap.parse_args(argv)
    klr = a.kl_repeats or a.repeats
    order, tag = (shuffled, "/shuf") if a.shuffle else (lambda p: p, "")
    print(f"{'window':<16} {'polys':>7} {'mode':<6} {'ours ms':>9} {'cpu ms':>9} {'Mpx/s':>8} "
          f"{'Medges/s':>9} {'KLay ms':>9} {'speedup':>9}")
    for kind in a.kinds.split(","):
        for n in (int(v) for v in a.counts.split(",") if v):
            run_case(kind + tag, order(synth_window(n, kind)), WINDOW, a.repeats, klr)
    gds = a.gds
    if gds is None:
        from tests.conftest import SHARED
        cand = SHARED / "chameleon" / "sram_1rw1r_32_256_8_sky130.gds"
        gds = str(cand) if cand.exists() else None
    if gds:
        polys, win = real_window(gds)
        run_case("real:" + os.path.basename(gds)[:11] + tag, order(polys), win, a.repeats, klr)
    for path in largest_shared(a.shared):
        polys, win = real_window(str(path))
        if len(polys):
            run_case(path.stem[:16] + tag, order(polys), win, a.repeats, klr)
    print("ours ms = best wall time of one rasterize (cpu ms: its CPU time; the machine may be "
          "shared); KLay ms = Region.merged().rasterize on the same polygons; speedup = KLay/ours")


if __name__ == "__main__":
    main()
