"""pytest-benchmark: explode of 10 x 10 um windows at ~750 polygons per window, beside KLayout.

    python -m pytest bench/bench_explode.py --benchmark-only --benchmark-group-by=group

The layout is engine.synth at density 8.5/um2 (about 750 polygons in a 10 x 10 um window) and
CLIPMILL_BENCH_EXPLODE_MB megabytes (default 10). Each round explodes the next of 64 windows.
For the flat-with-file-size check across sizes run bench/explode_vs_klayout.py.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

DENSITY = 8.5
WINDOW_UM = 10.0


@pytest.fixture(scope="module")
def ex_gds(tmp_path_factory):
    from engine.synth import synthesize
    path = str(tmp_path_factory.mktemp("explode") / "explode.gds")
    synthesize(path, density=DENSITY, seed=0,
               size_bytes=int(float(os.environ.get("CLIPMILL_BENCH_EXPLODE_MB", 10)) * 1e6))
    return path


@pytest.fixture(scope="module")
def ex_layout(ex_gds):
    from engine import open_layout
    with open_layout(ex_gds) as lay:
        yield lay


@pytest.fixture(scope="module")
def ex_windows(ex_layout):
    from engine.benchmark import bbox_um, pick_windows
    return pick_windows(bbox_um(ex_layout), 64, WINDOW_UM, np.random.default_rng(11))


@pytest.fixture(scope="module")
def ex_kl(ex_gds):
    kdb = pytest.importorskip("klayout.db")
    ly = kdb.Layout()
    ly.read(ex_gds)
    return ly


def _info(benchmark, counts):
    benchmark.extra_info["polygons_per_window"] = float(np.mean(counts))


@pytest.mark.benchmark(group="explode 10x10 um, ~750 polygons")
def test_explode_arrays(benchmark, ex_layout, ex_windows, cycle):
    """The low-level entry the rasterizer and workers call (scratch reused)."""
    from engine.explode import explode_arrays, new_scratch
    s = new_scratch(ex_layout.db)
    cell, mask = ex_layout.resolve_cell(), ex_layout.layer_mask()
    wd = [ex_layout.window_dbu(w) for w in ex_windows]
    counts = [len(explode_arrays(ex_layout.db, w, cell, mask, -1, False, s)[1]) - 1 for w in wd]
    nxt = cycle(wd)
    benchmark(lambda: explode_arrays(ex_layout.db, nxt(), cell, mask, -1, False, s))
    _info(benchmark, counts)


@pytest.mark.benchmark(group="explode 10x10 um, ~750 polygons")
def test_explode_api(benchmark, ex_layout, ex_windows, cycle):
    counts = [len(ex_layout.explode(w)) for w in ex_windows]
    nxt = cycle(ex_windows)
    benchmark(lambda: ex_layout.explode(nxt()))
    _info(benchmark, counts)


@pytest.mark.benchmark(group="explode 10x10 um, ~750 polygons")
def test_explode_api_clip(benchmark, ex_layout, ex_windows, cycle):
    counts = [len(ex_layout.explode(w, clip=True)) for w in ex_windows]
    nxt = cycle(ex_windows)
    benchmark(lambda: ex_layout.explode(nxt(), clip=True))
    _info(benchmark, counts)


@pytest.mark.benchmark(group="explode 10x10 um, ~750 polygons")
def test_explode_klayout_region(benchmark, ex_kl, ex_windows, cycle):
    """KLayout: flattened polygons of every layer touching the window, materialised."""
    import klayout.db as kdb
    top, lis = ex_kl.top_cell(), ex_kl.layer_indexes()
    flags = kdb.Shapes.SPolygons | kdb.Shapes.SBoxes | kdb.Shapes.SPaths
    boxes = [kdb.DBox(*w).to_itype(ex_kl.dbu) for w in ex_windows]

    def run(b):
        it = kdb.RecursiveShapeIterator(ex_kl, top, lis, b, False)
        it.shape_flags = flags
        r = kdb.Region()
        r.insert(it)
        return r.count()
    counts = [run(b) for b in boxes]
    nxt = cycle(boxes)
    benchmark(lambda: run(nxt()))
    _info(benchmark, counts)
