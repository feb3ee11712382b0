"""run_windows(): many windows -> bitmaps, in parallel over forked workers sharing the layout.

The coordinator (the caller's process) opens the layout (or takes an open Layout or a DBLoad path),
whose database and index live in a shared-memory arena or a mapped DBLoad file. It forks N workers
(shm/pool.py) pinned one per core; each attaches to the arena zero-copy with
``Layout.attach(layout.handle)``, takes windows from its own queue (its share of the windows along a
Hilbert curve over their centres; steals from the busiest queue when its own is empty), rasterizes
them with ``Layout.rasterize`` and writes each image into a slot of a shared-memory ring
(shm/ring.py). The coordinator hands slots to the caller and recycles them. See shm/pool.py
(SHUTDOWN) for what happens on errors, signals and dead processes.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from engine.errors import ClipmillError
from engine.layout import Layout, open_layout
from engine.windowspec import WindowSpec, normalize_windows
from shm.pool import Pool, usable_cpus
from shm.ring import Ring

SLOT_CAP = 64 << 20      # a slot never exceeds this; bigger images take the pipe (overflow path)
RING_CAP = 512 << 20     # the ring as a whole


class Result:
    """One window's outcome. ``image`` is None when ``error`` is set (or with ``images=False``)."""
    __slots__ = ("index", "name", "window", "spec", "image", "polygons", "seconds", "error",
                 "output", "worker")

    def __init__(self, index, spec, image=None, polygons=None, seconds=0.0, error=None,
                 output=None, worker=None):
        self.index, self.spec, self.name, self.window = index, spec, spec.name, spec.window
        self.image, self.polygons, self.seconds = image, polygons, seconds
        self.error, self.output, self.worker = error, output, worker

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self):
        what = (f"error={self.error!r}" if self.error else
                f"image={None if self.image is None else self.image.shape}")
        return f"<Result #{self.index} {self.name!r} {what} polygons={self.polygons}>"


# -- locality ----------------------------------------------------------------------------------
def hilbert_keys(x, y, order: int = 16) -> np.ndarray:
    """Distance along a Hilbert curve of the points (x, y) scaled onto a 2**order grid."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = 1 << order
    def scale(v):
        lo, hi = (v.min(), v.max()) if len(v) else (0.0, 1.0)
        return np.clip(((v - lo) / (hi - lo if hi > lo else 1.0) * (n - 1)).astype(np.int64), 0, n - 1)
    x, y = scale(x), scale(y)
    d = np.zeros(len(x), np.int64)
    s = n >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= 1
    return d


def split_work(specs, nworkers: int, ordered: bool) -> list[np.ndarray]:
    """Item indexes for each worker's queue. Unordered: contiguous stretches of the Hilbert order
    (neighbouring windows share cache). Ordered: dealt round robin in input order, so windows
    complete roughly in the order they are delivered."""
    n = len(specs)
    idx = np.arange(n, dtype=np.int64)
    if ordered:
        return [idx[w::nworkers] for w in range(nworkers)]
    c = np.array([s.centre for s in specs], np.float64).reshape(-1, 2)
    order = np.argsort(hilbert_keys(c[:, 0], c[:, 1]), kind="stable")
    return [a.astype(np.int64) for a in np.array_split(order, nworkers)]


# -- the per-window work ------------------------------------------------------------------------
_SCRATCH = {}


def _rasterize(layout, window, o):
    """What Layout.rasterize does (explode, then rasterize), with one reusable raster scratch per
    process, returning (image, polygon count)."""
    from engine.raster import Scratch, rasterize
    sc = _SCRATCH.get(os.getpid())
    if sc is None:
        _SCRATCH.clear()
        sc = _SCRATCH[os.getpid()] = Scratch()
    polys = layout.explode(window, cell=o.get("cell"), layers=o.get("layers"), depth=o.get("depth"))
    kw = {} if o.get("mode") is None else {"mode": o["mode"]}
    return rasterize(polys, window, o["pixel_size"], scratch=sc, **kw), len(polys)


def _make_task(layout, specs, defaults, formatter, images, compute):
    def run_one(i, lay):
        spec = specs[i]
        o = spec.options(**defaults)
        t0 = time.perf_counter()
        image = npoly = output = err = None
        try:
            image, npoly = compute(lay, spec.window, o)
            if formatter is not None:
                info = {"index": i, "name": spec.name, "window": spec.window, "polygons": npoly,
                        "seconds": time.perf_counter() - t0, **o}
                output = formatter(image, spec, info)
        except Exception as e:  # noqa: BLE001 - one bad window must not stop the run
            kind = "" if isinstance(e, ClipmillError) else f"{type(e).__name__}: "
            err = f"window {spec.name!r} (#{i}, {spec.window}): {kind}{e}"
            image = None
        secs = time.perf_counter() - t0
        return (image if images else None), (secs, npoly, err, output)

    def factory():  # runs in the forked worker: attach to the arena zero-copy
        lay = Layout.attach(layout.handle)
        return lambda i: run_one(i, lay)

    return run_one, factory


def _slot_bytes(specs, pixel_size) -> int:
    """Bytes of the largest image (uint8, rows x cols as engine.raster.image_shape says)."""
    from engine.raster import image_shape
    big = 0
    for s in specs:
        rows, cols = image_shape(s.window, s.pixel_size or pixel_size)
        big = max(big, rows * cols)
    return min(big, SLOT_CAP)


# -- the iterator -------------------------------------------------------------------------------
class WindowRun:
    """Iterator of Results (see run_windows). ``close()`` (or ``with``, or dropping it) stops the
    workers and unlinks the shared blocks; ``pids`` lists the live workers."""

    def __init__(self, layout, specs, defaults, *, workers, ordered, copy, formatter, images,
                 ring_slots, pin, compute, own_layout):
        self.specs, self.ordered, self.copy = specs, ordered, copy
        self.layout, self._own_layout = layout, own_layout
        self.n = len(specs)
        self.pool = self.ring = None
        self._held = None        # slot handed out with copy=False, released on the next item
        self._buffer = {}        # ordered mode: results that came early
        self._next = 0
        self._count = 0
        self.closed = False
        self.t_start = time.perf_counter()
        run_one, factory = _make_task(layout, specs, defaults, formatter, images, compute)
        self.workers = workers
        if workers == 0:
            self._gen = self._inprocess(run_one)
            return
        try:
            if images:
                nslots = ring_slots or 2 * workers + 2
                nslots = max(nslots, workers + 1)
                slot = _slot_bytes(specs, defaults["pixel_size"])
                if slot * nslots > RING_CAP:
                    slot = max(RING_CAP // nslots, 1)
                self.ring = Ring(nslots, slot)
            # warm up the kernels here so forked workers inherit them compiled
            s0 = specs[0]
            ps = s0.pixel_size or defaults["pixel_size"]
            try:
                compute(layout, (s0.x0, s0.y0, s0.x0 + 2 * ps, s0.y0 + 2 * ps), s0.options(**defaults))
            except Exception:  # noqa: BLE001 - the real run reports it
                pass
            shares = split_work(specs, workers, ordered)
            self.pool = Pool(self.n, shares, factory, self.ring, pin=pin)
            self._gen = self.pool.results()
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return self.pool.pids() if self.pool is not None else []

    def _inprocess(self, run_one):
        lay = self.layout
        for i in range(self.n):
            image, (secs, npoly, err, output) = run_one(i, lay)
            yield Result(i, self.specs[i], image, npoly, secs, err, output, os.getpid())

    def _to_result(self, msg, keep_slot):
        """A pool message -> Result; frees the slot unless it is handed out (keep_slot)."""
        if msg[0] == "dead":
            _, i, text = msg
            spec = self.specs[i]
            return Result(i, spec, error=f"window {spec.name!r} (#{i}, {spec.window}): {text}"), None
        _, w, i, slot, shape, dtype, (secs, npoly, err, output), overflow = msg
        image = None
        if overflow is not None:
            image = overflow
        elif shape is not None:
            image = self.ring.view(slot, shape, dtype)
            if keep_slot:
                self.ring.hold(slot)
            else:
                image = image.copy()
        pid = self.pool.workers[w].pid if w < len(self.pool.workers) else None
        res = Result(i, self.specs[i], image, npoly, secs, err, output, pid)
        if keep_slot and overflow is None and shape is not None:
            return res, slot
        self.pool.release(slot)
        return res, None

    def __iter__(self):
        return self

    def __next__(self) -> Result:
        if self.closed:
            raise StopIteration
        if self._held is not None:
            held, self._held = self._held, None
            self.pool.release(held)
        try:
            res = self._next_result()
        except StopIteration:
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        self._count += 1
        return res

    def _next_result(self) -> Result:
        if self.pool is None:
            return next(self._gen)
        zero_copy = not self.copy
        if not self.ordered:
            res, self._held = self._to_result(next(self._gen), zero_copy)
            return res
        while self._next not in self._buffer:
            msg = next(self._gen)
            i = msg[2] if msg[0] == "r" else msg[1]
            if i == self._next:
                res, self._held = self._to_result(msg, zero_copy)
                self._next += 1
                return res
            self._buffer[i] = self._to_result(msg, False)[0]   # copied out: frees its slot
        res = self._buffer.pop(self._next)
        self._next += 1
        return res

    def close(self) -> None:
        """Stop the workers, unlink every shared block, close the layout if we opened it."""
        if self.closed:
            return
        self.closed = True
        self._held = None
        try:
            if self.pool is not None:
                self.pool.close()
        finally:
            if self.ring is not None:
                self.ring.close()
            if self._own_layout:
                self.layout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def run_windows(layout, windows, *, pixel_size, mode="binary", layers=None, cell=None, depth=None,
                workers=None, ordered=False, on_result=None, copy=True, formatter=None,
                images=True, ring_slots=None, pin=True, stage=None):
    """Rasterize many windows of a layout in parallel.

    layout: a GDSII path, a saved DBLoad path (``*.dbload``) or an open Layout (not closed here).
    windows: (x0, y0, x1, y1) tuples in um, (name, x0, y0, x1, y1) tuples, an (N, 4) array or
        WindowSpecs (whose own cell/depth/layers/pixel_size/mode override the arguments).
    workers: forked worker processes (default: the usable cores); 0 runs in this process.
    ordered: deliver results in window order (default: completion order).
    copy: False hands out a zero-copy view into the shared ring, valid until the next result.
    formatter: ``formatter(image, spec, info) -> dict`` run in the worker; its dict is
        ``result.output``. With ``images=False`` no image comes back (only outputs).
    on_result: called with each Result instead of iterating; returns a summary dict.
    ring_slots: image slots in the shared ring (memory bound; default 2 * workers + 2).
    pin: pin worker w to the w-th usable core.
    stage: the per-window work, default explode + rasterize. ``stage(layout, window, options) ->
        (image, polygon count)``; ``engine.formats.ExplodeCompute(clip)`` returns the window's
        Polygons instead (polygon clips: GDSII / NPZ). What it returns as image goes to the
        formatter and, unless it is a uint8 array that fits the ring, is pickled back.

    Returns an iterator (WindowRun) of Results with name, index, window, image, polygons,
    seconds, error (None when the window succeeded) and output. Closing or dropping it stops
    the workers and removes every shared-memory block.
    """
    specs = normalize_windows(windows)
    if not specs:
        raise ClipmillError("no windows given")
    try:
        pixel_size = float(pixel_size)
    except (TypeError, ValueError):
        raise ClipmillError(f"pixel_size {pixel_size!r} is not a number") from None
    if not (pixel_size > 0 and math.isfinite(pixel_size)):
        raise ClipmillError(f"pixel_size must be positive, got {pixel_size}")
    for s in specs:
        if s.pixel_size is not None and not (float(s.pixel_size) > 0):
            raise ClipmillError(f"window {s.name!r}: pixel_size must be positive")
    if workers is None:
        workers = len(usable_cpus())
    workers = int(workers)
    if workers < 0:
        raise ClipmillError(f"workers must be >= 0, got {workers}")
    workers = min(workers, len(specs))
    if formatter is not None and not callable(formatter):
        raise ClipmillError("formatter must be callable: formatter(image, spec, info) -> dict")
    own = not isinstance(layout, Layout)
    lay = open_layout(layout) if own else layout
    defaults = {"cell": cell, "depth": depth, "layers": layers, "pixel_size": pixel_size,
                "mode": mode}
    try:
        run = WindowRun(lay, specs, defaults, workers=workers, ordered=ordered, copy=copy,
                        formatter=formatter, images=images, ring_slots=ring_slots, pin=pin,
                        compute=stage or _rasterize, own_layout=own)
    except BaseException:
        if own:
            lay.close()
        raise
    if on_result is None:
        return run
    t0 = time.perf_counter()
    errors = count = 0
    with run:
        for r in run:
            count += 1
            errors += r.error is not None
            on_result(r)
        deaths = len(run.pool.deaths) if run.pool is not None else 0
    return {"windows": count, "errors": errors, "seconds": time.perf_counter() - t0,
            "workers": workers, "worker_deaths": deaths}


__all__ = ["Result", "WindowRun", "WindowSpec", "run_windows", "hilbert_keys", "split_work"]
