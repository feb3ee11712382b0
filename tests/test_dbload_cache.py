"""On-disk DBLoad: arena -> file -> reopen gives identical arrays and meta; ``open_layout(...,
cache=X)`` writes X once and reuses it; a cache that no longer matches its source file (content,
size or mtime), the layer filter or the index settings is refused with a ClipmillError."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from conftest import SKIP_SHARED, shared_gds
from gdsbytes import simple_library

from engine import open_layout
from engine.errors import ClipmillError
from shm.arena import Arena


def _real(suffix):
    for e in shared_gds():
        if e["file"].endswith(suffix):
            return e["path"]
    pytest.skip(SKIP_SHARED)


@pytest.fixture
def small_gds(tmp_path):
    p = tmp_path / "simple.gds"
    p.write_bytes(simple_library().bytes())
    return p


def _same_arrays(a, b):
    assert sorted(a.keys()) == sorted(b.keys())
    for k in a.keys():
        x, y = a[k], b[k]
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert np.array_equal(x, y), k


@pytest.mark.parametrize("which", ["simple", "caravel/caravel_clocking.gds",
                                   "klayout/designs/blend_crash_au.gds"])
def test_arena_file_roundtrip_from_reader(which, small_gds, tmp_path):
    from engine.reader import load_gdsii
    path = small_gds if which == "simple" else _real(which)
    arrays, meta = load_gdsii(str(path))
    with Arena.from_arrays(arrays, meta) as a:
        _same_arrays(a.arrays, arrays)  # the copy into shared memory is exact
        out = tmp_path / "db.dbload"
        a.save(out)
        b = Arena.open_file(out)
        try:
            _same_arrays(b.arrays, a.arrays)
            assert b.meta == a.meta
            assert b.name is None and b.path == str(out)
        finally:
            b.close()


def test_layout_save_and_reopen(tmp_path):
    src = _real("caravel/simple_por.gds")
    out = tmp_path / "por.dbload"
    with open_layout(src) as lay:
        lay.save(out)
        arrays = {k: np.array(v) for k, v in lay.arena.arrays.items()}
        info = lay.info
        meta = dict(lay.arena.meta)
    assert any(k.startswith("ix_") for k in arrays), "the index travels with the DBLoad"
    with open_layout(out) as again:  # a DBLoad given directly
        _same_arrays(again.arena.arrays, arrays)
        assert again.arena.meta["counts"] == meta["counts"]
        assert again.arena.meta["source"] == meta["source"]
        i2 = again.info
        for k in ("dbu_um", "cells", "top_cells", "undefined_cells", "counts", "layers", "bbox_um"):
            assert i2[k] == info[k], k
        assert again.handle == ("file", str(out))


def test_cache_written_then_reused(tmp_path):
    src = tmp_path / "clk.gds"
    shutil.copyfile(_real("caravel/caravel_clocking.gds"), src)
    cache = tmp_path / "clk.dbload"
    with open_layout(src, cache=cache) as first:
        assert cache.exists()
        assert "reopen" not in first.arena.meta.get("seconds", {})
        arrays = {k: np.array(v) for k, v in first.arena.arrays.items()}
        info1 = first.info
    mtime = cache.stat().st_mtime_ns
    with open_layout(src, cache=cache) as second:
        assert "reopen" in second.arena.meta["seconds"]
        assert second.arena.name is None and second.arena.path == str(cache)  # mapped file
        _same_arrays(second.arena.arrays, arrays)
        info2 = second.info
    assert cache.stat().st_mtime_ns == mtime, "a matching cache must not be rewritten"
    for k in ("cells", "top_cells", "counts", "layers", "bbox_um"):
        assert info2[k] == info1[k], k


def _made_cache(tmp_path, layers=None):
    src = tmp_path / "por.gds"
    shutil.copyfile(_real("caravel/simple_por.gds"), src)
    cache = tmp_path / "por.dbload"
    open_layout(src, cache=cache, layers=layers).close()
    return src, cache


def test_cache_refused_when_source_modified(tmp_path):
    src, cache = _made_cache(tmp_path)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, content differs
    st = src.stat()
    src.write_bytes(bytes(data))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime
    with pytest.raises(ClipmillError) as ei:
        open_layout(src, cache=cache)
    assert str(cache) in str(ei.value)


def test_cache_refused_when_source_grew(tmp_path):
    src, cache = _made_cache(tmp_path)
    with open(src, "ab") as f:
        f.write(b"\0" * 512)
    with pytest.raises(ClipmillError):
        open_layout(src, cache=cache)


def test_cache_refused_when_source_touched(tmp_path):
    src, cache = _made_cache(tmp_path)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    with pytest.raises(ClipmillError):
        open_layout(src, cache=cache)


def test_cache_refused_for_other_layers(tmp_path):
    src, cache = _made_cache(tmp_path, layers=[68])
    with pytest.raises(ClipmillError):
        open_layout(src, cache=cache)               # all layers asked, cache has 68/*
    with pytest.raises(ClipmillError):
        open_layout(src, cache=cache, layers=[67])
    with open_layout(src, cache=cache, layers=[68]) as lay:  # same filter: reused
        assert "reopen" in lay.arena.meta["seconds"]
        assert all(int(l) == 68 for l, _ in lay.db.layer_ld)


def test_cache_refused_for_other_leaf_size(tmp_path):
    src, cache = _made_cache(tmp_path)
    with pytest.raises(ClipmillError):
        open_layout(src, cache=cache, leaf_size=5)


def test_rebuild_replaces_stale_cache(tmp_path):
    src, cache = _made_cache(tmp_path)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    with open_layout(src, cache=cache, rebuild=True) as lay:
        assert "reopen" not in lay.arena.meta["seconds"]
    with open_layout(src, cache=cache) as lay:  # now it matches again
        assert "reopen" in lay.arena.meta["seconds"]


def test_corrupt_cache_refused(tmp_path):
    src, cache = _made_cache(tmp_path)
    data = bytearray(cache.read_bytes())
    data[0:8] = b"GARBAGE!"
    cache.write_bytes(bytes(data))
    with pytest.raises(ClipmillError):
        open_layout(src, cache=cache)
    cache.write_bytes(b"CLIPMILL" + b"\xff" * 10)
    with pytest.raises(ClipmillError):
        open_layout(src, cache=cache)


def test_cache_of_other_schema_refused(tmp_path):
    src, cache = _made_cache(tmp_path)
    a = Arena.open_file(cache)
    try:
        meta = dict(a.meta, schema=a.meta["schema"] + 100)
        other = tmp_path / "other.dbload"
        a.save(other, meta=meta)
    finally:
        a.close()
    with pytest.raises(ClipmillError):
        open_layout(src, cache=other)
    with pytest.raises(ClipmillError):
        open_layout(other)


def test_shm_layout_handle_attach(tmp_path, small_gds):
    from engine.layout import Layout
    with open_layout(small_gds) as lay:
        kind, name = lay.handle
        assert kind == "shm"
        other = Layout.attach(lay.handle)
        try:
            _same_arrays(other.arena.arrays, lay.arena.arrays)
        finally:
            other.close()
        assert os.path.exists(f"/dev/shm/{name}")
    time.sleep(0.05)
    assert not os.path.exists(f"/dev/shm/{name}"), "closing the Layout frees its block"
