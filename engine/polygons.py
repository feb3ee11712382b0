"""Polygons: the flat result of an explode, and the input of the rasterizer.

Plain data (gdstk style): ``xy`` float64 [N,2] vertices in um (no repeated closing vertex),
``offsets`` int64 [M+1] (polygon i is ``xy[offsets[i]:offsets[i+1]]``), ``layer`` int32 [M,2]
(layer, datatype) of each polygon.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Polygons:
    xy: np.ndarray
    offsets: np.ndarray
    layer: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.xy[self.offsets[i]:self.offsets[i + 1]]

    @classmethod
    def empty(cls) -> "Polygons":
        return cls(np.zeros((0, 2)), np.zeros(1, dtype=np.int64), np.zeros((0, 2), dtype=np.int32))

    @classmethod
    def from_list(cls, polys, layers=None) -> "Polygons":
        """From a list of (k,2) arrays (tests, hand-made cases); layers default to (0, 0)."""
        polys = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys]
        offs = np.zeros(len(polys) + 1, dtype=np.int64)
        offs[1:] = np.cumsum([len(p) for p in polys])
        xy = np.concatenate(polys) if polys else np.zeros((0, 2))
        lay = (np.zeros((len(polys), 2), dtype=np.int32) if layers is None
               else np.asarray(layers, dtype=np.int32).reshape(-1, 2))
        return cls(xy, offs, lay)

    def select(self, layer, datatype=None) -> "Polygons":
        keep = self.layer[:, 0] == layer
        if datatype is not None:
            keep &= self.layer[:, 1] == datatype
        idx = np.nonzero(keep)[0]
        return Polygons.from_list([self[i] for i in idx], self.layer[idx])

    def areas(self) -> np.ndarray:
        """Signed shoelace area of each polygon (um^2)."""
        out = np.empty(len(self))
        for i in range(len(self)):
            p = self[i]
            x, y = p[:, 0], p[:, 1]
            out[i] = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        return out
