"""Explode vs KLayout: touching count and clipped area per layer, on real and synthetic layouts.

Reference: KLayout's RecursiveShapeIterator in touching mode (``begin_shapes_rec_touching``) over
the selected layers, ``max_depth`` for depth, the other cell for ``cell``; clipped area per shape
as KLayout's ``Region(polygon) & box`` when the polygon is rectilinear and the transform keeps
integer coordinates, else the
float-transformed polygon clipped by gdstk (precision 1e-9 dbu) otherwise (KLayout's integer
boolean snaps the cut points of slanted edges to the grid). Our side: ``Layout.explode``.
Databases come from tests/kl_db.py (KLayout -> schema) for small files and from engine.reader
(``open_layout``) for big ones; ``test_reader_and_kl_db_agree`` checks the two agree.
"""
from __future__ import annotations

import collections
import math
import os
import zlib

import gdstk
import klayout.db as kdb
import numpy as np
import pytest

from conftest import gds_params
from engine.errors import ClipmillError
from engine.explode import explode_arrays, new_scratch
from kl_db import SHAPES, kl_layout, read, strip_texts

BIG = 2_000_000  # files above this many bytes are loaded with engine.reader when it exists
REL = 1e-9


# -- reference ---------------------------------------------------------------------------------

def _clipped_area(poly, t, box) -> float:
    """area(poly transformed by t & box) in dbu^2."""
    bx0, by0, bx1, by1 = box
    if bx0 == bx1 or by0 == by1:
        return 0.0
    if t.is_ortho() and t.mag == int(t.mag) and poly.is_rectilinear():
        # exact in integers: KLayout's own boolean
        p = poly.transformed(t)
        b = p.bbox()
        if b.left >= bx0 and b.right <= bx1 and b.bottom >= by0 and b.top <= by1:
            return float(p.area())
        return float((kdb.Region(p) & kdb.Region(kdb.Box(*box))).area())
    # KLayout would snap cut points to the integer grid: clip in floats with gdstk instead
    dp = kdb.DPolygon(poly).transformed(kdb.DCplxTrans(t))
    b = dp.bbox()
    if b.left >= bx0 and b.right <= bx1 and b.bottom >= by0 and b.top <= by1:
        return float(dp.area())
    pts = [(q.x, q.y) for q in dp.each_point_hull()]
    res = gdstk.boolean(gdstk.Polygon(pts), gdstk.rectangle((bx0, by0), (bx1, by1)), "and",
                        precision=1e-9)
    return float(sum(abs(r.area()) for r in res))


def kl_reference(ly, cell, box, layers=None, depth=None, area=True):
    """{(layer, datatype): count}, {(layer, datatype): clipped area dbu^2} from KLayout."""
    lis = [li for li in ly.layer_indexes()
           if layers is None or (ly.get_info(li).layer, ly.get_info(li).datatype) in layers]
    counts, areas = collections.Counter(), collections.defaultdict(float)
    if not lis:
        return counts, areas
    it = kdb.RecursiveShapeIterator(ly, cell, lis, kdb.Box(*box), False)
    it.shape_flags = SHAPES
    if depth is not None:
        it.max_depth = depth
    while not it.at_end():
        info = ly.get_info(it.layer())
        key = (info.layer, info.datatype)
        counts[key] += 1
        if area:
            areas[key] += _clipped_area(it.shape().polygon, it.trans(), box)
        it.next()
    return counts, areas


def local_areas(P, origin) -> np.ndarray:
    """Shoelace areas with coordinates taken relative to ``origin`` (no cancellation far from
    the layout origin)."""
    xy = P.xy - np.asarray(origin, dtype=np.float64)
    out = np.empty(len(P))
    for i in range(len(P)):
        p = xy[P.offsets[i]:P.offsets[i + 1]]
        x, y = p[:, 0], p[:, 1]
        out[i] = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return out


def ours(L, box, dbu, *, cell=None, layers=None, depth=None, area=True):
    w = tuple(v * dbu for v in box)
    P = L.explode(w, cell=cell, layers=layers, depth=depth)
    counts = collections.Counter(map(tuple, P.layer.tolist()))
    areas = collections.defaultdict(float)
    if area:
        C = L.explode(w, cell=cell, layers=layers, depth=depth, clip=True)
        assert len(C) <= len(P)
        if len(C):
            lo = np.array(w[:2]) - 1e-9
            hi = np.array(w[2:]) + 1e-9
            assert np.all(C.xy >= lo) and np.all(C.xy <= hi)
        a = np.abs(local_areas(C, w[:2])) / (dbu * dbu)
        for key, v in zip(map(tuple, C.layer.tolist()), a):
            areas[key] += v
    return counts, areas


def compare(L, ly, cell_name, box, *, layers=None, depth=None, area=True, what=""):
    kc = ly.cell(cell_name)
    rc, ra = kl_reference(ly, kc, box, layers, depth, area)
    oc, oa = ours(L, box, ly.dbu, cell=cell_name, layers=layers, depth=depth, area=area)
    assert oc == rc, f"{what} window {box} cell {cell_name} depth {depth}: counts differ"
    for key in set(ra) | set(oa):
        r, o = ra.get(key, 0.0), oa.get(key, 0.0)
        assert abs(r - o) <= REL * max(abs(r), 1.0), \
            f"{what} window {box} layer {key}: area {o} != KLayout {r}"
    return sum(rc.values())


def windows(rng, bbox, n, sizes, anchors=()):
    """n windows (dbu ints): random positions over the bbox (and a margin), sizes from ``sizes``
    (0 = degenerate), a share centred on ``anchors`` (cell edges/corners), some far outside."""
    x0, y0, x1, y1 = bbox
    mx, my = max((x1 - x0) // 10, 10), max((y1 - y0) // 10, 10)
    out = []
    for k in range(n):
        w, h = int(rng.choice(sizes)), int(rng.choice(sizes))
        if anchors and k % 3 == 0:
            ax, ay = anchors[int(rng.integers(len(anchors)))]
            cx, cy = ax - w // 2, ay - h // 2
        elif k % 17 == 5:
            cx, cy = x1 + 2 * mx + int(rng.integers(0, 1000)), y0 - 3 * my
        else:
            cx = int(rng.integers(x0 - mx, x1 + mx))
            cy = int(rng.integers(y0 - my, y1 + my))
        out.append((cx, cy, cx + w, cy + h))
    return out


def anchors_of(ly, cell, limit=400):
    """Corners of the placed bboxes of the cell's instances (windows straddling cell edges)."""
    pts = []
    for inst in cell.each_inst():
        b = inst.bbox()
        pts += [(b.left, b.bottom), (b.right, b.top), (b.left, b.top), (b.right, b.bottom)]
        if len(pts) >= limit:
            break
    return pts


# -- synthetic layouts built with KLayout --------------------------------------------------------

def synthetic_layout() -> kdb.Layout:
    """Three levels; every orientation, magnifications, non-90 angles, plain and skewed AREFs
    (also rotated / magnified ones), boxes, polygons (incl. a 64-gon), paths on three layers."""
    ly = kdb.Layout()
    ly.dbu = 0.001
    V, CT, Arr = kdb.Vector, kdb.ICplxTrans, kdb.CellInstArray
    l1, l2, l3 = ly.layer(1, 0), ly.layer(2, 0), ly.layer(3, 5)
    A, B, C, TOP = (ly.create_cell(n) for n in ("A", "B", "C", "TOP"))
    A.shapes(l1).insert(kdb.Box(0, 0, 400, 200))
    A.shapes(l2).insert(kdb.Polygon([kdb.Point(0, 0), kdb.Point(300, 50), kdb.Point(100, 350)]))
    A.shapes(l1).insert(kdb.Polygon([kdb.Point(x, y) for x, y in
                                     [(500, 0), (700, 0), (700, 300), (600, 300), (600, 100),
                                      (500, 100)]]))
    circ = [kdb.Point(int(900 + 150 * math.cos(2 * math.pi * k / 64)),
                      int(150 + 150 * math.sin(2 * math.pi * k / 64))) for k in range(64)]
    A.shapes(l3).insert(kdb.Polygon(circ))
    B.shapes(l3).insert(kdb.Path([kdb.Point(0, 0), kdb.Point(800, 0), kdb.Point(800, 600)], 60))
    B.shapes(l1).insert(kdb.Box(-100, -100, 50, 900))
    B.insert(kdb.CellInstArray(A.cell_index(), kdb.Trans(1, False, 200, 300)))
    B.insert(Arr(A.cell_index(), CT(1.0, 30, False, V(1000, 100))))
    B.insert(kdb.CellInstArray(A.cell_index(), kdb.Trans(2, True, 0, 2000), kdb.Vector(0, 450),
                               kdb.Vector(1200, 0), 3, 2))
    C.shapes(l2).insert(kdb.Box(0, 0, 3000, 50))
    for k in range(8):
        C.insert(kdb.CellInstArray(B.cell_index(), kdb.Trans(k % 4, k >= 4, 3500 * k, 0)))
    C.insert(Arr(A.cell_index(), CT(1.25, 135, True, V(0, -3000)), V(900, 200), V(-300, 800), 4, 3))
    x = 0
    for rot in range(4):
        for m in (False, True):
            TOP.insert(kdb.CellInstArray(A.cell_index(), kdb.Trans(rot, m, x, 0)))
            TOP.insert(kdb.CellInstArray(B.cell_index(), kdb.Trans(rot, m, x, 3000)))
            x += 2000
    TOP.insert(Arr(B.cell_index(), CT(2.0, 45, True, V(0, -4000))))
    TOP.insert(Arr(A.cell_index(), CT(0.5, 0, False, V(-3000, 0))))
    TOP.insert(kdb.CellInstArray(A.cell_index(), kdb.Trans(0, False, 0, 8000), kdb.Vector(900, 0),
                                 kdb.Vector(0, 500), 5, 3))
    TOP.insert(kdb.CellInstArray(B.cell_index(), kdb.Trans(1, True, 6000, 8000),
                                 kdb.Vector(1100, 300), kdb.Vector(-400, 1300), 4, 6))
    TOP.insert(Arr(A.cell_index(), CT(1.5, 17, False, V(-5000, 8000)), V(1200, 100), V(300, 900),
                   3, 4))
    TOP.insert(kdb.CellInstArray(C.cell_index(), kdb.Trans(3, True, 20000, -9000)))
    TOP.insert(Arr(C.cell_index(), CT(0.75, 200, False, V(-20000, -15000))))
    TOP.insert(Arr(C.cell_index(), kdb.Trans(0, False, 0, 20000), V(30000, 0), V(5000, 9000), 2, 2))
    TOP.shapes(l2).insert(kdb.Box(-6000, -6000, 20000, -5900))
    strip_texts(ly)
    return ly


@pytest.fixture(scope="module")
def synth():
    ly = synthetic_layout()
    with kl_layout(ly, leaf_size=4) as L:
        yield ly, L


def test_synthetic_random_windows(synth):
    ly, L = synth
    rng = np.random.default_rng(1)
    top = ly.cell("TOP")
    b = top.bbox()
    ws = windows(rng, (b.left, b.bottom, b.right, b.top), 700,
                 [0, 40, 300, 1000, 3000, 12000], anchors_of(ly, top))
    total = sum(compare(L, ly, "TOP", w, what="synthetic") for w in ws)
    assert total > 5000  # the windows do hit geometry


def test_synthetic_depth_cell_layers(synth):
    ly, L = synth
    rng = np.random.default_rng(2)
    for name in ("TOP", "C", "B", "A"):
        b = ly.cell(name).bbox()
        for w in windows(rng, (b.left, b.bottom, b.right, b.top), 40, [0, 500, 4000]):
            for depth in (0, 1, 2):
                compare(L, ly, name, w, depth=depth, what="depth")
            compare(L, ly, name, w, layers=[(1, 0), (3, 5)], what="layers")
    # depth 0 is the cell's own shapes only: exactly its polygons touching the window
    P = L.explode((-100, -100, 100, 100), cell="TOP", depth=0)
    assert len(P) == 1 and tuple(P.layer[0]) == (2, 0)


def test_leaf_sizes_agree(synth):
    """The index granularity changes nothing in the result."""
    ly, L = synth
    rng = np.random.default_rng(3)
    b = ly.cell("TOP").bbox()
    ws = windows(rng, (b.left, b.bottom, b.right, b.top), 60, [0, 700, 5000])
    with kl_layout(ly, leaf_size=64) as L2:
        for w in ws:
            w_um = tuple(v * ly.dbu for v in w)
            P1, P2 = L.explode(w_um), L2.explode(w_um)
            k1 = sorted(zip(map(tuple, P1.layer.tolist()), np.round(np.abs(P1.areas()), 9)))
            k2 = sorted(zip(map(tuple, P2.layer.tolist()), np.round(np.abs(P2.areas()), 9)))
            assert k1 == k2


def test_engine_synth_layout(tmp_path):
    """A layout from engine.synth (if present) read by KLayout, converted by kl_db."""
    synth_mod = pytest.importorskip("engine.synth")
    path = tmp_path / "s.gds"
    synth_mod.synthesize(path, die_um=20, density=150, seed=3, layers=6, levels=5)
    ly = read(path)
    rng = np.random.default_rng(4)
    top = ly.top_cell()
    b = top.bbox()
    with kl_layout(ly) as L:
        ws = windows(rng, (b.left, b.bottom, b.right, b.top), 200,
                     [0, 100, 500, 2000], anchors_of(ly, top))
        for w in ws:
            compare(L, ly, top.name, w, what="engine.synth")


# -- real layouts ---------------------------------------------------------------------------------

def load_pair(entry):
    """(KLayout layout, our Layout) for a shared file."""
    ly = read(entry["path"])
    if os.path.getsize(entry["path"]) > BIG:
        try:
            from engine.layout import open_layout
            import engine.reader  # noqa: F401
            return ly, open_layout(entry["path"])
        except ImportError:
            pass
    return ly, kl_layout(ly)


@pytest.mark.parametrize("entry", [p for p in gds_params(include_gz=False)])
def test_real_layout_windows(entry):
    ly, L = load_pair(entry)
    with L:
        big = os.path.getsize(entry["path"]) > BIG
        rng = np.random.default_rng(zlib.crc32(entry["file"].encode()))
        for top in ly.top_cells()[:3]:
            b = top.bbox()
            if b.empty():
                continue
            um = int(round(1 / ly.dbu))
            sizes = [0, um // 2, 2 * um, 10 * um] if big else [0, um // 4, um, 5 * um, 30 * um]
            ws = windows(rng, (b.left, b.bottom, b.right, b.top), 40 if big else 50, sizes,
                         anchors_of(ly, top))
            for w in ws:
                compare(L, ly, top.name, w, what=entry["file"])
            # depth and a sub-cell
            for w in ws[:6]:
                compare(L, ly, top.name, w, depth=1, area=False, what=entry["file"])
            child = next((i.cell for i in top.each_inst()), None)
            if child is not None and not child.bbox().empty():
                cb = child.bbox()
                for w in windows(rng, (cb.left, cb.bottom, cb.right, cb.top), 6, sizes):
                    compare(L, ly, child.name, w, area=False, what=entry["file"])


def test_reader_and_kl_db_agree():
    """engine.reader (open_layout) and the KLayout-based loader give the same explode."""
    pytest.importorskip("engine.reader")
    from conftest import shared_gds
    from engine.layout import open_layout
    picks = [e for e in shared_gds(include_gz=False)
             if e["file"] in ("klayout/gds/arefs_skew.gds", "caravel/simple_por.gds",
                              "siepic_ebeam_pdk/MiniChip_1mm.gds", "klayout/gds/t11.gds")]
    if not picks:
        pytest.skip("shared layouts not present")
    rng = np.random.default_rng(5)
    for e in picks:
        ly = read(e["path"])
        with kl_layout(ly) as A, open_layout(e["path"]) as B:
            b = ly.top_cell().bbox()
            for w in windows(rng, (b.left, b.bottom, b.right, b.top), 30, [0, 1000, 20000]):
                w_um = tuple(v * ly.dbu for v in w)
                name = ly.top_cell().name
                P = A.explode(w_um, cell=name, clip=True)
                Q = B.explode(w_um, cell=name, clip=True)
                assert len(P) == len(Q)
                ka = sorted(zip(map(tuple, P.layer.tolist()), np.round(np.abs(P.areas()), 6)))
                kb = sorted(zip(map(tuple, Q.layer.tolist()), np.round(np.abs(Q.areas()), 6)))
                assert ka == kb


# -- low-level entry, bad input -------------------------------------------------------------------

def test_explode_arrays_matches_explode(synth):
    ly, L = synth
    s = new_scratch(L.db)
    s.out_xy = np.empty((1, 2))  # force the grow-and-retry path
    s.out_off = np.empty(1, dtype=np.int64)
    s.out_lay = np.empty(1, dtype=np.int32)
    w = (-10.0, -10.0, 30.0, 30.0)
    xy, off, lay = explode_arrays(L.db, L.window_dbu(w), L.resolve_cell(None),
                                  L.layer_mask(None), -1, False, s)
    P = L.explode(w)
    assert np.allclose(xy * L.dbu_um, P.xy) and np.array_equal(off, P.offsets)
    assert np.array_equal(L.db.layer_ld[lay], P.layer)
    assert len(s.out_off) > 1 and s.retries >= 1  # grew


@pytest.mark.parametrize("kwargs, window", [
    ({}, (0, 0, float("nan"), 1)),
    ({}, (5, 0, 1, 1)),
    ({}, (0, 5, 1, 1)),
    ({}, (0, 0, 1)),
    ({"cell": "NOPE"}, (0, 0, 1, 1)),
    ({"cell": 999}, (0, 0, 1, 1)),
    ({"layers": [(77, 0)]}, (0, 0, 1, 1)),
    ({"depth": -1}, (0, 0, 1, 1)),
    ({"depth": 1.5}, (0, 0, 1, 1)),
])
def test_bad_input(synth, kwargs, window):
    ly, L = synth
    with pytest.raises(ClipmillError):
        L.explode(window, **kwargs)


def test_several_top_cells_need_a_cell():
    ly = kdb.Layout()
    l1 = ly.layer(1, 0)
    for n in ("X", "Y"):
        ly.create_cell(n).shapes(l1).insert(kdb.Box(0, 0, 10, 10))
    with kl_layout(ly) as L:
        with pytest.raises(ClipmillError, match="top cells"):
            L.explode((0, 0, 1, 1))
        assert len(L.explode((0, 0, 1, 1), cell="Y")) == 1


# -- sharing, robustness --------------------------------------------------------------------------

def _worker_explode(handle, wins, q):
    from engine.layout import Layout
    with Layout.attach(handle) as L:
        q.put([(L.explode(w).xy.tolist(), L.explode(w).layer.tolist()) for w in wins])


def test_forked_workers_share_the_arena(synth):
    """Two forked processes attached to the same arena explode concurrently; results equal the
    parent's and the arena's bytes are unchanged (the query writes nothing)."""
    import hashlib
    import multiprocessing as mp
    ly, L = synth
    digest = lambda: hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes()  # noqa: E731
                                           for a in L.arena.arrays.values())).hexdigest()
    before = digest()
    rng = np.random.default_rng(9)
    b = ly.cell("TOP").bbox()
    wins = [tuple(v * ly.dbu for v in w)
            for w in windows(rng, (b.left, b.bottom, b.right, b.top), 20, [500, 5000])]
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker_explode, args=(L.handle, wins, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    mine = [(L.explode(w).xy.tolist(), L.explode(w).layer.tolist()) for w in wins]
    assert results[0] == mine and results[1] == mine
    assert digest() == before


def test_recursive_hierarchy_is_an_error():
    """A database whose cell places itself (a broken file) gives ClipmillError, not a hang."""
    from engine.index import build_index
    from engine.layout import Layout
    from kl_db import from_klayout
    from shm.arena import Arena
    ly = kdb.Layout()
    l1 = ly.layer(1, 0)
    top, sub = ly.create_cell("TOP"), ly.create_cell("SUB")
    sub.shapes(l1).insert(kdb.Box(0, 0, 100, 100))
    top.insert(kdb.CellInstArray(sub.cell_index(), kdb.Trans(0, False, 0, 0)))
    sub_row = [c.name for c in ly.each_cell()].index("SUB")
    arrays, meta = from_klayout(ly)
    # make SUB place itself: move TOP's placement row under SUB (offsets edited accordingly)
    arrays["ref_cell"][:] = sub_row
    off = np.zeros_like(arrays["cell_ref_off"])
    off[sub_row + 1:] = 1
    arrays["cell_ref_off"] = off
    with Layout(Arena.from_arrays(build_index(arrays, meta), meta)) as L:
        with pytest.raises(ClipmillError, match="recursive"):
            L.explode((0, 0, 0.05, 0.05), cell="SUB")


def test_saved_dbload_read_only_arena(synth, tmp_path):
    """The same explode from a saved DBLoad reopened from disk (index saved with the database)."""
    from engine.layout import open_layout
    ly, L = synth
    path = tmp_path / "s.dbload"
    L.save(path)
    with open_layout(path) as R:
        for w in [(-3, -3, 12, 9), (0, 0, 0, 30), (5.5, -20, 40, 40)]:
            for clip in (False, True):
                P, Q = L.explode(w, clip=clip), R.explode(w, clip=clip)
                assert np.array_equal(P.xy, Q.xy) and np.array_equal(P.layer, Q.layer)


def test_threads_explode_concurrently(synth):
    """The kernel releases the GIL; each thread gets its own scratch, results stay exact."""
    import threading
    ly, L = synth
    ws = [(x, -20, x + 15, 30) for x in np.linspace(-30, 60, 30)]
    ref = [L.explode(w).xy.copy() for w in ws]
    out = {}

    def run(k):
        out[k] = [L.explode(w).xy.copy() for w in ws]
    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert all(np.array_equal(a, b) for a, b in zip(ref, out[k]))


# -- paths: KLayout selects by the path's own bbox ----------------------------------------------

# (pathtype, width, points, bgnextn, endextn): slanted segments, every pathtype, negative widths
PATHS = [
    (1, 200, [(0, 0), (1000, 400)], None, None),
    (1, 300, [(2000, 0), (3000, 400), (3500, 1800)], None, None),
    (1, 100, [(5000, 0), (5700, 700)], None, None),
    (1, 200, [(7000, 0), (8000, 400)], -30, 80),           # custom ends on a round path
    (1, -160, [(9000, 0), (9900, -350)], None, None),       # negative width
    (1, 250, [(11000, 0), (11000, 900), (11600, 1300)], None, None),
    (0, 200, [(0, 3000), (1000, 3400)], None, None),
    (2, 200, [(2000, 3000), (3000, 3400), (3300, 4400)], None, None),
    (2, -180, [(5000, 3000), (5800, 3350)], None, None),
    (4, 150, [(7000, 3000), (7900, 3500)], 60, -20),
    (4, -150, [(9000, 3000), (9600, 2500)], 40, 70),
    (0, -120, [(11000, 3000), (11700, 3300)], None, None),
]


def _paths_gds(path):
    from gdsbytes import GDS
    g = GDS()
    g.begin()
    g.bgnstr("P")
    for k, (pt, w, pts, b, e) in enumerate(PATHS):
        g.path(1 + k % 3, 0, pts, w, pathtype=pt, bgnextn=b, endextn=e)
    g.endstr()
    g.bgnstr("TOP")
    g.sref("P", 0, 0)
    g.sref("P", 0, 20000, angle=90.0, reflect=True)
    g.sref("P", 30000, 0, angle=17.0, mag=1.5)
    g.endstr()
    g.endlib()
    path.write_bytes(g.bytes())


def _near_box_windows(b, rng):
    """Small windows just inside / on / just outside each side and corner of box b."""
    x0, y0, x1, y1 = b
    out = []
    for d in (-2, 0, 1, 4, 25):
        for s in (0, 10):
            out += [(x0 - d - s, y0 - d - s, x0 - d, y0 - d),
                    (x1 + d, y1 + d, x1 + d + s, y1 + d + s),
                    (x0 - d - s, y1 + d, x0 - d, y1 + d + s),
                    (x1 + d, y0 - d - s, x1 + d + s, y0 - d)]
            cx = int(rng.integers(x0, x1 + 1))
            cy = int(rng.integers(y0, y1 + 1))
            out += [(x0 - d - s, cy, x0 - d, cy + s), (x1 + d, cy, x1 + d + s, cy + s),
                    (cx, y0 - d - s, cx + s, y0 - d), (cx, y1 + d, cx + s, y1 + d + s)]
    return out


def test_paths_touch_by_klayout_box(tmp_path):
    """Round-ended paths: KLayout's bbox is that of the square-ended hull (not of the rounded
    polygon); windows near the ends of slanted paths of every pathtype give KLayout's touching
    count and clipped area, loaded by engine.reader."""
    from engine.layout import open_layout
    p = tmp_path / "paths.gds"
    _paths_gds(p)
    ly = read(p)
    rng = np.random.default_rng(11)
    boxes = []
    for inst in ly.cell("TOP").each_inst():
        t = inst.cplx_trans
        for li in ly.layer_indexes():
            for sh in ly.cell("P").shapes(li).each(SHAPES):
                boxes.append(sh.bbox().transformed(t))
                boxes.append(sh.polygon.bbox().transformed(t))
    with open_layout(p) as L:
        for b in boxes:
            for w in _near_box_windows((b.left, b.bottom, b.right, b.top), rng):
                compare(L, ly, "TOP", w, what="paths")
        # the own cell, untransformed: the stored boxes are KLayout's
        P = ly.cell("P")
        for li in ly.layer_indexes():
            for sh in P.shapes(li).each(SHAPES):
                b = sh.bbox()
                for w in _near_box_windows((b.left, b.bottom, b.right, b.top), rng):
                    compare(L, ly, "P", w, what="paths P")


# -- the public call's fast paths give the general path's results ----------------------------------

def _slow_window(window, dbu):
    w = np.asarray(window, dtype=np.float64).reshape(-1)
    assert w.shape == (4,) and np.all(np.isfinite(w)) and w[2] >= w[0] and w[3] >= w[1]
    return w / dbu


@pytest.mark.parametrize("window", [
    (0, 0, 1, 1), (0.1, -0.3, 0.7, 2.9), [1e-9, 2, 3, 4], (np.float32(0.1), 0, 1, 1),
    (np.int64(3), np.int32(-2), 7, 7.5), np.array([0.3, 0.1, 0.7, 0.9]), np.array([1, 2, 3, 4]),
    np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32), (2 ** 60 + 1, 0, 2 ** 61, 1),
    (-1e300, -1e300, 1e300, 1e300), ((0, 0), (1, 1)), (True, 0, 1, 1),
])
def test_window_fast_path_same_result(window):
    from engine.layout import check_window
    for dbu in (0.001, 0.0005, 1e-5):
        got = check_window(window, dbu)
        assert got.dtype == np.float64 and np.array_equal(got, _slow_window(window, dbu))


@pytest.mark.parametrize("window", [
    (0, 0, float("inf"), 1), (float("-inf"), 0, 1, 1), (0, float("nan"), 1, 1), (2, 0, 1, 1),
    (0, 2, 1, 1), (0, 0, 10 ** 400, 1), (0, 0, 1), (0, 0, 1, 1, 1), ("a", 0, 1, 1), None,
])
def test_window_bad(window):
    from engine.layout import check_window
    with pytest.raises(ClipmillError):
        check_window(window, 0.001)


def test_cached_state_follows_arguments_and_close(synth):
    """Layer masks and the top cell are cached per layout: other arguments in any order give
    what a fresh layout gives; after close() nothing cached is used (clear error)."""
    ly, L = synth
    calls = [dict(), dict(layers=[(1, 0)]), dict(layers=[(3, 5), (1, 0)]), dict(layers=[2]),
             dict(layers=((1, 0), "3/5")), dict(layers="2"),
             dict(layers=[[2, 0]]),
             dict(cell="B"), dict(layers=[(1, 0)], cell="C", depth=1), dict(clip=True), dict()]
    w = (-5.0, -5.0, 25.0, 12.0)
    first = [L.explode(w, **kw) for kw in calls]
    with kl_layout(ly, leaf_size=4) as fresh:
        for kw, P in zip(calls[::-1], first[::-1]):
            Q = fresh.explode(w, **kw)
            assert np.array_equal(P.xy, Q.xy) and np.array_equal(P.offsets, Q.offsets)
            assert np.array_equal(P.layer, Q.layer) and P.layer.dtype == np.int32
    with pytest.raises(ClipmillError, match="unknown layer"):
        L.explode(w, layers=[(99, 0)])
    P, Q = L.explode(w, layers=iter([(1, 0), (2, 0)])), L.explode(w, layers=[(1, 0), (2, 0)])
    assert len(P) > 0 and np.array_equal(P.xy, Q.xy) and np.array_equal(P.layer, Q.layer)
    assert len(L.explode(w, layers=(3, 5))) > 0       # the layer 3/5
    with pytest.raises(ClipmillError, match="unknown layer"):
        L.explode(w, layers=[3, 5])                   # layers 3 and 5: no layer 5
    other = kl_layout(ly)
    assert len(other.explode(w)) == len(first[0])
    other.close()
    with pytest.raises(ClipmillError):
        other.explode(w)
