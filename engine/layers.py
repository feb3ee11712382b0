"""Layer specifications: ``[(1, 0), 5, "7/2", "8"]``; a bare number means every datatype."""
from __future__ import annotations

import numpy as np

from engine.errors import ClipmillError

ANY = -1  # datatype wildcard


def parse_layers(spec) -> list[tuple[int, int]]:
    """Normalise a layer spec to [(layer, datatype or ANY)]. Accepts a list or a string
    like ``"5/0,7"`` (the CLI form)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = [s for s in spec.replace(";", ",").split(",") if s.strip()]
    elif isinstance(spec, (int, np.integer)) or (isinstance(spec, tuple) and len(spec) == 2
                                                 and all(isinstance(v, (int, np.integer)) for v in spec)):
        spec = [spec]
    out = []
    for item in spec:
        try:
            if isinstance(item, str):
                parts = item.strip().split("/")
                if len(parts) == 1:
                    out.append((int(parts[0]), ANY))
                elif len(parts) == 2:
                    out.append((int(parts[0]), int(parts[1])))
                else:
                    raise ValueError
            elif isinstance(item, (int, np.integer)):
                out.append((int(item), ANY))
            else:
                lay, dt = item
                out.append((int(lay), int(dt)))
        except (TypeError, ValueError):
            raise ClipmillError(f"bad layer {item!r}: use a number, 'layer/datatype' or "
                                "(layer, datatype)") from None
    for lay, dt in out:
        if not (0 <= lay <= 65535) or not (dt == ANY or 0 <= dt <= 65535):
            raise ClipmillError(f"layer {lay}/{dt} out of range 0..65535")
    return out


def matches(spec_list, layer: int, datatype: int) -> bool:
    return any(l == layer and (d == ANY or d == datatype) for l, d in spec_list)


def layer_mask(layer_ld: np.ndarray, spec, source=None, strict=True) -> np.ndarray:
    """uint8 mask over rows of ``layer_ld``. ``strict``: a listed layer absent from the layout
    is an error (so a typo never yields a silently empty picture)."""
    n = len(layer_ld)
    if spec is None:
        return np.ones(n, dtype=np.uint8)
    specs = parse_layers(spec)
    mask = np.zeros(n, dtype=np.uint8)
    for lay, dt in specs:
        hit = layer_ld[:, 0] == lay
        if dt != ANY:
            hit &= layer_ld[:, 1] == dt
        if strict and not hit.any():
            have = ", ".join(f"{a}/{b}" for a, b in layer_ld[:20])
            raise ClipmillError(f"unknown layer {lay}{'' if dt == ANY else f'/{dt}'} "
                                f"(layout has {have}{' ...' if n > 20 else ''})", file=source)
        mask |= hit.astype(np.uint8)
    return mask
