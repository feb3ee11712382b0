"""pytest-benchmark suites of the kernels, each beside KLayout doing the same work (same group).

    python -m pytest bench/bench_kernels.py --benchmark-only
    python -m pytest bench/bench_kernels.py --benchmark-only --benchmark-group-by=group

Layout size and density: CLIPMILL_BENCH_MB (default 20), CLIPMILL_BENCH_DENSITY (default 1000), or
an existing file with CLIPMILL_BENCH_GDS. Windows are 10 x 10 um, pixels 10 nm (1000 x 1000).
"""
from __future__ import annotations

import numpy as np
import pytest

PIXEL_UM = 0.01  # as in bench/conftest.py


# -- scan ----------------------------------------------------------------------------------------
@pytest.mark.benchmark(group="scan+load (whole file)")
def test_scan_clipmill(benchmark, bench_gds):
    from engine import reader
    reader.load_gdsii(bench_gds)  # compile / page cache
    arrays, meta = benchmark.pedantic(reader.load_gdsii, args=(bench_gds,), rounds=3)
    benchmark.extra_info["polygons"] = int(len(arrays["poly_layer"]))


@pytest.mark.benchmark(group="scan+load (whole file)")
def test_scan_klayout(benchmark, bench_gds):
    kdb = pytest.importorskip("klayout.db")

    def read():
        ly = kdb.Layout()
        ly.read(bench_gds)
        return ly
    read()
    benchmark.pedantic(read, rounds=3)


@pytest.mark.benchmark(group="index build")
def test_index_build_clipmill(benchmark, bench_gds):
    from engine import index, reader
    arrays, meta = reader.load_gdsii(bench_gds)
    index.build_index(arrays, dict(meta))
    benchmark.pedantic(index.build_index, args=(arrays, dict(meta)), rounds=3)


# -- index query ----------------------------------------------------------------------------------
@pytest.mark.benchmark(group="index query (10x10 um box, biggest cell)")
def test_index_query_clipmill(benchmark, layout, windows, cycle):
    from engine import index
    arrays = layout.arena.arrays
    cpo = arrays["cell_poly_off"]
    cro = arrays["cell_ref_off"]
    # the cell with the most placements (else polygons), queried with boxes in its extent
    what = "ref" if (np.diff(cro).max(initial=0) > 0) else "poly"
    off = cro if what == "ref" else cpo
    cell = int(np.argmax(np.diff(off)))
    bb = arrays["cell_bbox"][cell]
    rng = np.random.default_rng(3)
    side = 10.0 / layout.dbu_um
    xs = rng.uniform(bb[0], max(bb[0], bb[2] - side), 64)
    ys = rng.uniform(bb[1], max(bb[1], bb[3] - side), 64)
    boxes = [(x, y, x + side, y + side) for x, y in zip(xs, ys)]
    nxt = cycle(boxes)
    index.query(arrays, cell, boxes[0], what)
    hits = benchmark(lambda: index.query(arrays, cell, nxt(), what))
    benchmark.extra_info.update(what=what, cell=cell, items=int(off[cell + 1] - off[cell]),
                                hits_last=int(len(hits)))


# -- explode ---------------------------------------------------------------------------------------
@pytest.mark.benchmark(group="explode (10x10 um window)")
def test_explode_clipmill(benchmark, layout, windows, cycle):
    nxt = cycle(windows)
    layout.explode(windows[0])
    benchmark(lambda: layout.explode(nxt()))
    benchmark.extra_info["polygons_per_window"] = float(np.mean([len(layout.explode(w))
                                                                 for w in windows]))


@pytest.mark.benchmark(group="explode (10x10 um window)")
def test_explode_klayout(benchmark, kl_layout, windows, cycle):
    from engine.benchmark import kl_explode
    nxt = cycle(windows)
    benchmark(lambda: kl_explode(kl_layout, nxt()))
    benchmark.extra_info["polygons_per_window"] = float(np.mean([kl_explode(kl_layout, w)[1]
                                                                 for w in windows]))


# -- raster ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def densest(layout, windows):
    """The window with most polygons, exploded once."""
    polys = [layout.explode(w) for w in windows]
    i = int(np.argmax([len(p) for p in polys]))
    return windows[i], polys[i]


@pytest.mark.parametrize("mode", ["binary", "gray"])
@pytest.mark.benchmark(group="rasterize (densest window, 1000x1000 px)")
def test_raster_clipmill(benchmark, densest, mode):
    from engine import rasterize
    w, polys = densest
    rasterize(polys, w, PIXEL_UM, mode=mode)
    img = benchmark(rasterize, polys, w, PIXEL_UM, mode=mode)
    benchmark.extra_info.update(polygons=len(polys), pixels=int(img.size),
                                edges=int(len(polys.xy)))


@pytest.mark.benchmark(group="rasterize (densest window, 1000x1000 px)")
def test_raster_klayout(benchmark, kl_layout, densest):
    from engine.benchmark import kl_explode, kl_raster
    w, _ = densest
    regs, n = kl_explode(kl_layout, w)
    benchmark.pedantic(kl_raster, args=(kl_layout, regs, w, PIXEL_UM), rounds=2)
    benchmark.extra_info["polygons"] = n
