"""clipmill's layout engine: reader, database, index, explode, raster, API, CLI."""
from engine.errors import ClipmillError
from engine.layout import Layout, open_layout

__all__ = ["ClipmillError", "Layout", "open_layout", "rasterize", "run_windows"]
__version__ = "0.1.0"


def __getattr__(name):  # lazy: keep `import engine` cheap (numba kernels load on first use)
    if name == "rasterize":
        from engine.raster import rasterize
        return rasterize
    if name == "run_windows":
        from engine.api import run_windows
        return run_windows
    raise AttributeError(name)
