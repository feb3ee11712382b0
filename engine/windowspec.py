"""WindowSpec: one window to extract, and normalize_windows() for every form a caller may pass.

A window is ``(x0, y0, x1, y1)`` in micrometres plus a name and optional per-window settings that
override run_windows' arguments: ``cell``, ``depth``, ``layers``, ``pixel_size``, ``mode``
(None means "use the run's value").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import ClipmillError

OPTIONS = ("cell", "depth", "layers", "pixel_size", "mode")


@dataclass(frozen=True)
class WindowSpec:
    name: str
    x0: float
    y0: float
    x1: float
    y1: float
    cell: object = None
    depth: int | None = None
    layers: object = None
    pixel_size: float | None = None
    mode: str | None = None

    @property
    def window(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def centre(self) -> tuple[float, float]:
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))

    def options(self, **defaults) -> dict:
        """The run's ``defaults`` (cell=, depth=, ...) overridden by this window's own settings."""
        out = dict(defaults)
        for k in OPTIONS:
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out


def _check(i, name, coords) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in coords)
    except (TypeError, ValueError):
        raise ClipmillError(f"window #{i} ({name!r}): {tuple(coords)!r} is not four numbers "
                            "(x0, y0, x1, y1)") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ClipmillError(f"window #{i} ({name!r}) has a non-finite coordinate")
    if x1 < x0 or y1 < y0:
        raise ClipmillError(f"window #{i} ({name!r}) has x1 < x0 or y1 < y0: "
                            f"{(x0, y0, x1, y1)}")
    return x0, y0, x1, y1


def normalize_windows(windows) -> list[WindowSpec]:
    """WindowSpecs from: a list of WindowSpec; an (N, 4) array; a sequence of (x0, y0, x1, y1);
    a sequence of (name, x0, y0, x1, y1); or dicts with keys name, x0, y0, x1, y1 and options.
    Unnamed windows are called ``w{index}``. Bad coordinates raise ClipmillError naming the window.
    """
    if isinstance(windows, WindowSpec):
        windows = [windows]
    if isinstance(windows, np.ndarray):
        a = windows
        if a.ndim == 1 and a.shape == (4,):
            a = a.reshape(1, 4)
        if a.ndim != 2 or a.shape[1] != 4:
            raise ClipmillError(f"a window array must be (N, 4), got {a.shape}")
        return [WindowSpec(f"w{i}", *_check(i, f"w{i}", row)) for i, row in enumerate(a)]
    if windows is None:
        raise ClipmillError("no windows given")
    out, seen = [], set()
    for i, w in enumerate(windows):
        if isinstance(w, WindowSpec):
            spec = WindowSpec(str(w.name), *_check(i, w.name, w.window),
                              **{k: getattr(w, k) for k in OPTIONS})
        elif isinstance(w, dict):
            name = str(w.get("name", f"w{i}"))
            unknown = set(w) - {"name", "x0", "y0", "x1", "y1", *OPTIONS}
            if unknown:
                raise ClipmillError(f"window #{i} ({name!r}) has unknown keys {sorted(unknown)}")
            coords = [w.get(k) for k in ("x0", "y0", "x1", "y1")]
            spec = WindowSpec(name, *_check(i, name, coords), **{k: w.get(k) for k in OPTIONS})
        else:
            try:
                w = tuple(w)
            except TypeError:
                raise ClipmillError(f"window #{i}: {w!r} is not a window") from None
            if len(w) == 5 and isinstance(w[0], str):
                spec = WindowSpec(w[0], *_check(i, w[0], w[1:]))
            elif len(w) == 4:
                spec = WindowSpec(f"w{i}", *_check(i, f"w{i}", w))
            else:
                raise ClipmillError(f"window #{i}: {w!r} is neither (x0, y0, x1, y1) nor "
                                    "(name, x0, y0, x1, y1)")
        if spec.name in seen:
            raise ClipmillError(f"window #{i}: name {spec.name!r} is used twice")
        seen.add(spec.name)
        out.append(spec)
    return out
