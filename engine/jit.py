"""The single numba jit alias used by every kernel (datashader style).

``nopython=True, nogil=True, cache=True``: kernels are module-level functions with explicit
arguments so that numba's on-disk cache keeps CLI start-up fast.
"""
from __future__ import annotations

import functools
import hashlib
import os

import numba
from numba.core import caching

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OURS = tuple(os.path.join(_ROOT, d) + os.sep for d in ("engine", "shm", "tests", "bench"))
_SIMD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "simd.py")


@functools.lru_cache(maxsize=None)
def _simd_hash(mtime, size):
    """sha256 of simd.py (mtime and size: the cache key, as in numba's own stamp)."""
    with open(_SIMD, "rb") as f:
        return hashlib.sha256(f.read()).digest()


def _stamp_with_simd(get_source_stamp):
    """numba keys a kernel's on-disk cache on the hash of its own source file only, but the
    vector code of engine.simd's intrinsics is compiled into kernels of other files
    (engine.raster, tests): after a change to engine/simd.py alone they would load their old
    machine code from the cache. Files of this project (engine, shm, tests, bench) get simd.py's
    hash added to their stamp (measured stale: an A/B of a new gray_block ran the old one)."""
    def stamp(self):
        own = get_source_stamp(self)
        path = os.path.abspath(getattr(self, "_py_file", ""))
        if not path.startswith(_OURS):
            return own
        st = os.stat(_SIMD)
        return own, _simd_hash(st.st_mtime, st.st_size)
    stamp.clipmill = True
    return stamp


_MIXIN = getattr(caching, "_SourceFileBackedLocatorMixin", None)   # numba's private API:
if _MIXIN is not None and not getattr(_MIXIN.get_source_stamp, "clipmill", False):  # else as is
    _MIXIN.get_source_stamp = _stamp_with_simd(_MIXIN.get_source_stamp)

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
