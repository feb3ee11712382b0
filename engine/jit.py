"""The single numba jit alias used by every kernel (datashader style).

``nopython=True, nogil=True, cache=True``: kernels are module-level functions with explicit
arguments so that numba's on-disk cache keeps CLI start-up fast.
"""
from __future__ import annotations

import numba

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
