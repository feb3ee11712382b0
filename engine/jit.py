"""The single numba jit alias used by every kernel (datashader style).

``nopython=True, nogil=True, cache=True``: kernels are module-level functions with explicit
arguments so that numba's on-disk cache keeps CLI start-up fast.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re

import numba
from numba.core import caching

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OURS = tuple(os.path.join(_ROOT, d) + os.sep for d in ("engine", "shm", "tests", "bench"))
_ENGINE = os.path.dirname(os.path.abspath(__file__))
_IMPORT = re.compile(r"^\s*(?:from\s+engine(?:\.(\w+))?\s+import\s+([\w, ()]+)|"
                     r"import\s+engine\.(\w+))", re.M)


@functools.lru_cache(maxsize=None)
def _file_info(path, mtime, size):
    """(sha256 of the file, the engine modules it imports: their paths). mtime and size: the
    cache key, as in numba's own stamp."""
    with open(path, "rb") as f:
        data = f.read()
    deps = set()
    for m in _IMPORT.finditer(data.decode("utf-8", "replace")):
        if m.group(3):
            names = [m.group(3)]
        elif m.group(1):
            names = [m.group(1)]
        else:   # from engine import a, b: modules among the names
            names = [n.strip() for n in m.group(2).strip("()").split(",")]
        for name in names:
            dep = os.path.join(_ENGINE, name + ".py")
            if name and os.path.isfile(dep):
                deps.add(dep)
    return hashlib.sha256(data).digest(), tuple(sorted(deps))


def _info(path):
    st = os.stat(path)
    return _file_info(path, st.st_mtime, st.st_size)


@functools.lru_cache(maxsize=None)
def _dep_hashes(path):
    """sha256 of every engine module that path imports, directly or through others (sorted by
    path; path itself left out). Once per file and process (a hundred kernels share a few
    files): the modules are imported once, so their code does not change under it."""
    seen = {path}
    todo = list(_info(path)[1])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(_info(dep)[1])
    return tuple(_info(dep)[0] for dep in sorted(seen - {path}))


def _stamp_with_deps(get_source_stamp):
    """numba keys a kernel's on-disk cache on the hash of its own source file only, but kernels
    of other modules are compiled into it (engine.simd's vector intrinsics, engine.simple's
    test in engine.raster's _classify, engine.database's helpers in the reader and the
    exploder): after a change to one of those alone, the kernels calling it would load their
    old machine code from the cache (measured stale twice: an A/B of a new gray_block ran the
    old one; _classify kept an old _is_simple). Files of this project (engine, shm, tests,
    bench) get the hashes of the engine modules they import (transitively) added to their
    stamp."""
    def stamp(self):
        own = get_source_stamp(self)
        path = os.path.abspath(getattr(self, "_py_file", ""))
        if not path.startswith(_OURS) or not os.path.isfile(path):
            return own
        return own, _dep_hashes(path)
    stamp.clipmill = True
    return stamp


_MIXIN = getattr(caching, "_SourceFileBackedLocatorMixin", None)   # numba's private API:
if _MIXIN is not None and not getattr(_MIXIN.get_source_stamp, "clipmill", False):  # else as is
    _MIXIN.get_source_stamp = _stamp_with_deps(_MIXIN.get_source_stamp)

jit = numba.jit(nopython=True, nogil=True, cache=True)


def njit(*args, **kwargs):
    """Same options as ``jit`` with extra ones (e.g. ``boundscheck``) when a kernel needs them."""
    opts = dict(nopython=True, nogil=True, cache=True)
    opts.update(kwargs)
    if args and callable(args[0]):
        return numba.jit(**opts)(args[0])
    return numba.jit(*args, **opts)


# Kernels that allocate nothing run without numba's reference counting (NRT): with it, every call
# of a helper (inlined or not) increfs and decrefs each array argument with atomic operations,
# which cost a quarter of the gray rasterizer's finishing pass and ~10% of a dense window
# (measured with perf). Used by engine.raster and engine.manhattan.
kernel = njit(_nrt=False)
