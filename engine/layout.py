"""open_layout() and Layout: the object every stage hangs off.

Stages live in their own modules (gdstk style, one file per concept):
  engine.reader.load_gdsii(path, layers=None) -> (arrays, meta)   scan + DBLoad arrays
  engine.index.build_index(arrays, meta, leaf_size=...) -> arrays  adds ``ix_*`` arrays
  engine.explode.explode(layout, window, ...) -> Polygons
  engine.raster.rasterize_layout(layout, window, pixel_size, ...) -> ndarray
Layout only wires them together and owns the arena (shared memory, or a mapped DBLoad file).
"""
from __future__ import annotations

import hashlib
import math
import os
import time

import numpy as np

from engine.database import SCHEMA_VERSION, Database
from engine.errors import ClipmillError
from engine.layers import layer_mask
from shm.arena import Arena

DEFAULT_LEAF_SIZE = 16
META_RESERVE = 1 << 16   # header room for meta added after the arena is made


def source_stamp(path: str) -> dict:
    """size + mtime + sha1 of the first and last MiB: identifies the source of a DBLoad."""
    st = os.stat(path)
    h = hashlib.sha1()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > (1 << 20):
            f.seek(max(st.st_size - (1 << 20), 1 << 20))
            h.update(f.read(1 << 20))
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "hash": h.hexdigest()}


def _norm_layers(layers):
    return None if layers is None else sorted(str(x) for x in layers)


def _check_cache(arena: Arena, path: str | None, layers, leaf_size) -> None:
    meta = arena.meta
    where = arena.path
    if meta.get("schema") != SCHEMA_VERSION:
        raise ClipmillError(f"DBLoad schema {meta.get('schema')} != {SCHEMA_VERSION}", file=where)
    if path is not None:
        want, have = source_stamp(path), meta.get("source", {})
        for k in ("size", "mtime_ns", "hash"):
            if want[k] != have.get(k):
                raise ClipmillError(f"DBLoad was made from a different source file ({k} differs: "
                                    f"{have.get(k)} in the DBLoad, {want[k]} for {path}); "
                                    "delete it or pass another cache path", file=where)
    if path is not None and meta.get("layers_filter") != _norm_layers(layers):
        raise ClipmillError(f"DBLoad was loaded with layers {meta.get('layers_filter')}, "
                            f"asked for {_norm_layers(layers)}", file=where)
    if leaf_size is not None and meta.get("index", {}).get("leaf_size") not in (None, leaf_size):
        raise ClipmillError(f"DBLoad index has leaf size {meta['index']['leaf_size']}, asked for "
                            f"{leaf_size}", file=where)


def _build(path: str, layers, leaf_size: int) -> Arena:
    """Scan + load, then build the index straight into a new shared-memory arena (the spatial
    reordering writes every array into its final place; nothing is copied afterwards)."""
    from engine import index, reader
    t0 = time.perf_counter()
    arrays, meta = reader.load_gdsii(path, layers=layers)
    t1 = time.perf_counter()
    meta["schema"] = SCHEMA_VERSION
    meta["source"] = source_stamp(path)
    meta["layers_filter"] = _norm_layers(layers)
    made = []

    def alloc(specs):
        made.append(Arena.create(specs, meta, tag="db", reserve=META_RESERVE))
        return made[0].arrays

    try:
        index.build_index(arrays, meta, leaf_size=leaf_size, alloc=alloc)
        del arrays
        arena = made[0]
        seconds = meta.setdefault("seconds", {})
        seconds.setdefault("load", t1 - t0)
        seconds["index"] = time.perf_counter() - t1
        arena.write_meta(meta)
    except BaseException:
        for a in made:
            a.close()
        raise
    return arena


def open_layout(path, *, layers=None, cache=None, leaf_size=None, rebuild=False) -> "Layout":
    """Open a GDSII file (or a saved DBLoad ``*.dbload``) as a Layout.

    layers: keep only these layers at load (``[(1, 0), 5, "7/2"]``; a bare number means every
        datatype of that layer).
    cache: path of an on-disk DBLoad: reused when it matches the source file (size, mtime, hash of
        first and last MiB), layers and index settings; written otherwise.
    leaf_size: spatial index granularity (items per leaf), default 16.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ClipmillError("no such file", file=path)
    with open(path, "rb") as f:
        is_arena = f.read(8) == b"CLIPMILL"
    if is_arena:
        arena = Arena.open_file(path)
        _check_cache(arena, None, layers, leaf_size)
        return Layout(arena, source=arena.meta.get("source", {}).get("path", path))
    leaf = leaf_size or DEFAULT_LEAF_SIZE
    if cache is not None and os.path.exists(cache) and not rebuild:
        t0 = time.perf_counter()
        arena = Arena.open_file(cache)
        _check_cache(arena, path, layers, leaf)
        arena.meta.setdefault("seconds", {})["reopen"] = time.perf_counter() - t0
        return Layout(arena, source=path)
    arena = _build(path, layers, leaf)
    if cache is not None:
        t0 = time.perf_counter()
        arena.save(cache)
        arena.meta["seconds"]["save"] = time.perf_counter() - t0
    return Layout(arena, source=path)


class Layout:
    """A loaded layout: database + index in an arena. Context manager; ``close()`` frees it."""

    def __init__(self, arena: Arena, source: str | None = None):
        self.arena = arena
        self.db = Database(arena)
        self.source = source
        self.dbu_um = float(arena.meta["dbu_um"])

    # -- sharing with workers ---------------------------------------------------------------
    @property
    def handle(self) -> tuple[str, str]:
        """What a worker needs to attach: ("shm", block name) or ("file", DBLoad path)."""
        return ("shm", self.arena.name) if self.arena.name else ("file", self.arena.path)

    @classmethod
    def attach(cls, handle) -> "Layout":
        kind, name = handle
        arena = Arena.attach(name) if kind == "shm" else Arena.open_file(name)
        return cls(arena, source=arena.meta.get("source", {}).get("path"))

    def save(self, path) -> None:
        """Write the on-disk DBLoad (database + index) for fast reopening."""
        self.arena.save(path)

    def close(self) -> None:
        if "_explode_state" in self.__dict__:
            from engine.explode import drop_state
            drop_state(self)   # cached views of the arena go first
        self.arena.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- lookups ----------------------------------------------------------------------------
    @property
    def info(self) -> dict:
        from engine.info import layout_info
        return layout_info(self)

    def cell_names(self) -> list[str]:
        return self.db.cell_names()

    def top_cells(self) -> list[str]:
        return [self.db.cell_name(int(c)) for c in self.db.top_cells]

    def resolve_cell(self, cell=None) -> int:
        """Cell row for a name (or row); None means the only top cell."""
        if cell is None:
            tops = self.db.top_cells
            if len(tops) == 1:
                return int(tops[0])
            names = ", ".join(self.top_cells()[:10])
            raise ClipmillError(f"the layout has {len(tops)} top cells ({names}); name one with cell=",
                                file=self.source)
        if isinstance(cell, (int, np.integer)):
            if not 0 <= cell < self.db.ncells:
                raise ClipmillError(f"cell index {cell} out of range 0..{self.db.ncells - 1}")
            return int(cell)
        try:
            return self.db.cell_index(str(cell))
        except KeyError:
            raise ClipmillError(f"unknown cell {cell!r}", file=self.source) from None

    def layer_mask(self, layers=None) -> np.ndarray:
        """uint8[L] selecting rows of layer_ld (all when None); unknown layers are an error."""
        return layer_mask(self.db.layer_ld, layers, source=self.source)

    def window_dbu(self, window) -> np.ndarray:
        """Validate a window (x0, y0, x1, y1) in um and return it in dbu as float64[4]."""
        return check_window(window, self.dbu_um)

    # -- stages -----------------------------------------------------------------------------
    def explode(self, window, *, cell=None, layers=None, depth=None, clip=False):
        global _explode
        if _explode is None:  # imported on first use (keeps `import engine` free of numba)
            from engine.explode import explode as _explode
        return _explode(self, window, cell=cell, layers=layers, depth=depth, clip=clip)

    def rasterize(self, window, pixel_size, *, cell=None, layers=None, depth=None, **kwargs):
        from engine.raster import rasterize_layout
        return rasterize_layout(self, window, pixel_size, cell=cell, layers=layers, depth=depth,
                                **kwargs)


_explode = None
_PLAIN = (float, int, np.float64, np.int64, np.int32, np.float32)


def check_window(window, dbu_um: float) -> np.ndarray:
    """Validate a window (x0, y0, x1, y1) in um; float64[4] in dbu (each coordinate / dbu_um).
    Four plain finite numbers in order take a fast path (same result); anything else goes
    through the general conversion and its error messages."""
    v = window
    if type(v) is np.ndarray and v.shape == (4,) and v.dtype.kind in "fi":
        v = v.tolist()
    if type(v) in (tuple, list) and len(v) == 4:
        x0, y0, x1, y1 = v
        if (type(x0) in _PLAIN and type(y0) in _PLAIN and type(x1) in _PLAIN
                and type(y1) in _PLAIN):
            try:
                x0, y0, x1, y1 = float(x0), float(y0), float(x1), float(y1)
            except OverflowError:
                pass
            else:  # NaN fails every comparison; infinities fail the bounds
                if -math.inf < x0 <= x1 < math.inf and -math.inf < y0 <= y1 < math.inf:
                    return np.array((x0 / dbu_um, y0 / dbu_um, x1 / dbu_um, y1 / dbu_um))
    try:
        w = np.asarray(window, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise ClipmillError(f"window {window!r} is not four numbers (x0, y0, x1, y1)") from None
    if w.shape != (4,):
        raise ClipmillError(f"window {window!r} must have four numbers (x0, y0, x1, y1)")
    if not all(math.isfinite(v) for v in w):
        raise ClipmillError(f"window {tuple(window)} has a non-finite coordinate")
    if w[2] < w[0] or w[3] < w[1]:
        raise ClipmillError(f"window {tuple(window)} has x1 < x0 or y1 < y0")
    return w / dbu_um
