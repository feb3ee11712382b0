"""run_windows: byte-identical to Layout.rasterize of each window, every window exactly once, for
workers 0 (in process), 1, 2, 3 (forked) and ordered / unordered delivery; window forms, per-window
settings, zero-copy views, formatters, the overflow path, DBLoad input. Fault handling is in
tests/test_faults.py."""
from __future__ import annotations

import os

import numpy as np
import pytest

import engine
from engine import api
from engine.errors import ClipmillError
from engine.windowspec import WindowSpec, normalize_windows

POR = "caravel/simple_por.gds"
PS = 0.05
LAYERS = ["67/20", "68/20"]   # li1 and met1 of sky130: busy pictures (all layers are mostly full)


@pytest.fixture(scope="module")
def por(shared_dir):
    return str(shared_dir / POR)


@pytest.fixture(scope="module")
def layout(por):
    from _run_windows_child import open_for_test
    lay = open_for_test(por)
    yield lay
    lay.close()


def _bbox_um(layout):
    return [float(v) * layout.dbu_um for v in layout.db.cell_bbox[layout.resolve_cell(None)]]


@pytest.fixture(scope="module")
def windows(layout):
    """Windows of mixed sizes over the layout, some sticking out of it, some off the pixel grid."""
    x0, y0, x1, y1 = _bbox_um(layout)
    rng = np.random.default_rng(5)
    out = []
    for i in range(29):
        w, h = rng.uniform(1.0, 6.0, 2)
        cx, cy = rng.uniform(x0 - 1, x1 + 1), rng.uniform(y0 - 1, y1 + 1)
        out.append((f"r{i}", cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    out.append(("outside", x1 + 10, y1 + 10, x1 + 13, y1 + 12))     # no polygon at all
    return out


@pytest.fixture(scope="module")
def reference(layout, windows):
    ref = [layout.rasterize(w[1:], PS, layers=LAYERS, mode="binary") for w in windows]
    assert not ref[-1].any() and sum(a.any() for a in ref) > 20   # mostly busy pictures
    return ref


def _check(results, windows, reference, ordered):
    idx = [r.index for r in results]
    assert sorted(idx) == list(range(len(windows)))               # every window exactly once
    if ordered:
        assert idx == list(range(len(windows)))
    for r in results:
        assert r.error is None, r.error
        assert r.name == windows[r.index][0] and r.window == tuple(windows[r.index][1:])
        ref = reference[r.index]
        assert r.image.dtype == np.uint8 and r.image.shape == ref.shape
        assert r.image.tobytes() == ref.tobytes()
        assert r.seconds >= 0


@pytest.mark.parametrize("workers", [0, 1, 2, 3])
@pytest.mark.parametrize("ordered", [False, True])
def test_identical_to_layout_rasterize(layout, windows, reference, workers, ordered):
    res = list(engine.run_windows(layout, windows, pixel_size=PS, layers=LAYERS, workers=workers,
                                  ordered=ordered))
    _check(res, windows, reference, ordered)
    if workers:
        assert len({r.worker for r in res}) >= 1 and os.getpid() not in {r.worker for r in res}


def test_window_forms_agree(layout, windows, reference):
    arr = np.array([w[1:] for w in windows])
    for form in (arr, [w[1:] for w in windows], [WindowSpec(*w) for w in windows],
                 [dict(zip(("name", "x0", "y0", "x1", "y1"), w)) for w in windows]):
        res = list(engine.run_windows(layout, form, pixel_size=PS, layers=LAYERS, workers=2,
                                      ordered=True))
        assert [r.image.tobytes() for r in res] == [a.tobytes() for a in reference]


def test_path_and_dbload_inputs(por, layout, windows, reference, tmp_path):
    db = tmp_path / "por.dbload"
    layout.save(db)
    for src in (db, str(db)):
        res = list(engine.run_windows(src, windows[:8], pixel_size=PS, layers=LAYERS, workers=2,
                                      ordered=True))
        assert [r.image.tobytes() for r in res] == [a.tobytes() for a in reference[:8]]
    if True:
        res = list(engine.run_windows(por, windows[:8], pixel_size=PS, layers=LAYERS, workers=2,
                                      ordered=True))
        assert [r.image.tobytes() for r in res] == [a.tobytes() for a in reference[:8]]


def test_per_window_settings(layout, windows):
    """Each WindowSpec's own cell, layers, depth and pixel size override the run's."""
    db = layout.db
    top = layout.resolve_cell(None)
    sub = max((c for c in range(db.ncells) if c != top), key=lambda c: db.cell_poly_off[c + 1]
              - db.cell_poly_off[c])
    sub_name = db.cell_name(sub)
    sx0, sy0, sx1, sy1 = (float(v) * layout.dbu_um for v in db.cell_bbox[sub])
    specs = [WindowSpec("sub", sx0, sy0, sx1, sy1, cell=sub_name),
             WindowSpec("lay", *windows[0][1:], layers=LAYERS),
             WindowSpec("d1", *windows[1][1:], depth=1),
             WindowSpec("ps", *windows[2][1:], pixel_size=0.1),
             WindowSpec("plain", *windows[3][1:])]
    res = list(engine.run_windows(layout, specs, pixel_size=PS, workers=2, ordered=True))
    refs = [layout.rasterize(specs[0].window, PS, cell=sub_name, mode="binary"),
            layout.rasterize(specs[1].window, PS, layers=LAYERS, mode="binary"),
            layout.rasterize(specs[2].window, PS, depth=1, mode="binary"),
            layout.rasterize(specs[3].window, 0.1, mode="binary"),
            layout.rasterize(specs[4].window, PS, mode="binary")]
    for r, ref in zip(res, refs):
        assert r.error is None, r.error
        assert r.image.shape == ref.shape and r.image.tobytes() == ref.tobytes(), r.name
    assert res[3].image.shape != refs[4].shape or specs[2].window != specs[4].window
    assert r.polygons == len(layout.explode(specs[4].window))


def test_zero_copy_views_and_backpressure(layout, windows, reference):
    seen = set()
    run = engine.run_windows(layout, windows, pixel_size=PS, layers=LAYERS, workers=3, copy=False, ring_slots=4)
    for r in run:                   # ring of 4 slots, 3 workers, a caller holding one: must flow
        assert r.image.base is not None and not r.image.flags.owndata
        assert r.image.tobytes() == reference[r.index].tobytes()
        seen.add(r.index)
    assert seen == set(range(len(windows)))


def test_overflow_path(layout, windows, reference, monkeypatch):
    """Images bigger than a ring slot travel through the worker's pipe instead."""
    monkeypatch.setattr(api, "SLOT_CAP", 256)
    res = list(engine.run_windows(layout, windows, pixel_size=PS, layers=LAYERS, workers=2))
    _check(res, windows, reference, False)


def test_formatter_images_false_and_on_result(layout, windows, reference):
    def fmt(image, spec, info):
        return {"name": spec.name, "sum": int(image.sum()), "pid": os.getpid(),
                "ps": info["pixel_size"]}

    got = {}
    summary = engine.run_windows(layout, windows, pixel_size=PS, layers=LAYERS, workers=2, formatter=fmt,
                                 images=False, on_result=lambda r: got.setdefault(r.index, r))
    assert summary["windows"] == len(windows) and summary["errors"] == 0
    assert sorted(got) == list(range(len(windows)))
    for i, r in got.items():
        assert r.image is None and r.output["name"] == windows[i][0]
        assert r.output["sum"] == int(reference[i].sum()) and r.output["ps"] == PS
        assert r.output["pid"] != os.getpid()            # ran inside a worker


def test_normalize_windows_forms_and_errors():
    a = normalize_windows([(0, 0, 1, 2), ("b", 1, 1, 3, 3)])
    assert a[0] == WindowSpec("w0", 0.0, 0.0, 1.0, 2.0) and a[1].name == "b"
    assert normalize_windows(np.array([[0, 0, 1, 1.5]]))[0].window == (0.0, 0.0, 1.0, 1.5)
    s = WindowSpec("x", 0, 0, 1, 1, cell="C", depth=2)
    assert s.options(cell=None, depth=None, mode="binary") == {"cell": "C", "depth": 2,
                                                               "mode": "binary"}
    for bad in ([(0, 0, 1)], [(1, 0, 0, 1)], [(0, 0, float("nan"), 1)], [("a", 0, 0, 1, 1)] * 2,
                np.zeros((3, 3)), [{"name": "q", "x0": 0, "y0": 0, "x1": 1, "y1": 1, "bogus": 1}]):
        with pytest.raises(ClipmillError):
            normalize_windows(bad)


def test_bad_arguments(layout):
    with pytest.raises(ClipmillError):
        engine.run_windows(layout, [(0, 0, 1, 1)], pixel_size=0)
    with pytest.raises(ClipmillError):
        engine.run_windows(layout, [], pixel_size=0.1)
    with pytest.raises(ClipmillError):
        engine.run_windows(layout, [(0, 0, 1, 1)], pixel_size=0.1, workers=-1)


def test_hilbert_order_is_a_continuous_curve():
    """On a full 2^k grid, consecutive Hilbert keys are neighbouring cells (brute-force check)."""
    k = 4
    n = 1 << k
    x, y = np.meshgrid(np.arange(n), np.arange(n))
    keys = api.hilbert_keys(x.ravel(), y.ravel(), order=k)
    assert sorted(keys) == list(range(n * n))
    order = np.argsort(keys)
    px, py = x.ravel()[order], y.ravel()[order]
    assert np.all(np.abs(np.diff(px)) + np.abs(np.diff(py)) == 1)


def test_split_work_covers_every_window_once():
    specs = normalize_windows(np.tile(np.random.default_rng(1).uniform(0, 100, (101, 2)), (1, 2))
                              + np.array([0, 0, 1, 1]))
    for ordered in (False, True):
        shares = api.split_work(specs, 3, ordered)
        assert sorted(np.concatenate(shares).tolist()) == list(range(101))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_queues_own_then_orphans_then_steal_from_busiest():
    """Claim order of shm.pool.Queues: own head, orphan queue, then the tail of the busiest."""
    from shm.pool import Queues
    q = Queues([np.arange(0, 2), np.arange(2, 5), np.arange(5, 12)])
    try:
        assert [q.claim(0), q.claim(0)] == [0, 1]
        assert q.claimed[0] == 1
        q.requeue([3])                                   # e.g. redone after a worker died
        assert q.claim(0) == 3                           # orphans before stealing
        assert q.claim(0) == 11                          # then the busiest queue's tail
        assert q.claimed[0] == 11 and q.pending() == 3 + 6
        got = [q.claim(1) for _ in range(9)] + [q.claim(2)]
        assert sorted(got[:-1]) == [2, 3, 4, 5, 6, 7, 8, 9, 10] and got[-1] == -1
        assert q.claim(0) == -1 and q.pending() == 0
    finally:
        q.close()
