"""clipmill's layout engine: reader, database, index, explode, raster, API, CLI."""
from engine.errors import ClipmillError

__all__ = ["ClipmillError", "Layout", "open_layout", "rasterize", "run_windows"]
__version__ = "0.1.0"


def __getattr__(name):  # lazy: keep `import engine` cheap (numba kernels load on first use)
    if name in ("Layout", "open_layout"):  # lazy also so that `import shm.arena` first works
        from engine import layout              # (shm.arena -> engine.errors -> engine/__init__)
        return getattr(layout, name)
    if name == "rasterize":
        from engine.raster import rasterize
        return rasterize
    if name == "run_windows":
        from engine.api import run_windows
        return run_windows
    raise AttributeError(name)
