"""Window lists (read from files) and tiling: both give ``list[engine.windowspec.WindowSpec]``.

Window-list files
-----------------
Plain text, comma separated (CSV, quoting allowed) or whitespace separated (per line: a line with a
comma is read as CSV). Blank lines and lines starting with ``#`` are comments,
except a directive line that names the form (it may come anywhere before the first data line)::

    # clipmill windows LLUR            name x0 y0 x1 y1      lower-left and upper-right corners
    # clipmill windows LLWH            name x0 y0 w h        lower-left corner, width, height
    # clipmill windows CWH             name cx cy w h        centre, width, height
    # clipmill windows FIXED           first data line "w h", then "cx cy" (or "name cx cy")
    # clipmill windows LLUR units=dbu  coordinates in database units (needs dbu_um), or units=nm

Instead of the directive, the first data line may be a column-name header; the columns then say
the form and may come in any order::

    name,x0,y0,x1,y1        (LLUR)        name,x0,y0,w,h   (LLWH)        name,cx,cy,w,h   (CWH)

With a directive but no header, the columns are in the order shown above. The ``name`` column is
optional in every form: missing or empty names are generated as ``w{line number}``. Extra columns
(header form only) set per-window options: ``cell``, ``depth``, ``layers`` (``5/0;7``: use ``;``
or quotes inside a CSV), ``pixel_size``, ``mode``. A file whose first data line is two numbers and
which has no directive is read as FIXED. Coordinates are micrometres unless ``units`` says
otherwise (argument or ``units=`` in the directive; the argument wins when it is not None).

Names must be unique; widths and heights must be positive; every number must be finite. Any
problem raises ClipmillError naming the file and the line number.

Tiling
------
``tile_region(region, tiles=(nx, ny))`` splits ``region`` (x0, y0, x1, y1 um) into nx x ny
equal tiles; ``tile_size=(w, h)`` makes tiles of that size starting at the lower-left corner, the
last column/row being clipped to the region (``clip=True``, the default: the tiles cover the region
exactly once) or kept full size (``clip=False``: they may reach past x1/y1). Tile edges are computed
once and shared by neighbours, so tiles never overlap nor leave gaps. Names are
``tile_r{row}_c{col}`` with row 0 at the bottom (lowest y) and column 0 at the left, zero-padded to
the same width; ``only=[names]`` keeps just those tiles (an unknown name is an error).
"""
from __future__ import annotations

import csv
import io
import math
import os
import re

from engine.errors import ClipmillError

FORMS = {
    "LLUR": ("x0", "y0", "x1", "y1"),
    "LLWH": ("x0", "y0", "w", "h"),
    "CWH": ("cx", "cy", "w", "h"),
    "FIXED": ("cx", "cy"),
}
EXTRA = ("cell", "depth", "layers", "pixel_size", "mode")
UNITS = ("um", "nm", "dbu")
_DIRECTIVE = re.compile(r"^#\s*clipmill\s+windows\b(.*)$", re.IGNORECASE)
_ALIASES = {"width": "w", "height": "h", "xmin": "x0", "ymin": "y0", "xmax": "x1", "ymax": "y1",
            "left": "x0", "bottom": "y0", "right": "x1", "top": "y1", "x": "cx", "y": "cy"}


def _spec_cls():
    from engine.windowspec import WindowSpec
    return WindowSpec


# -- reading --------------------------------------------------------------------------------------
def read_windows(path, *, units=None, dbu_um=None, form=None) -> list:
    """Read a window-list file (see the module docstring) into WindowSpecs in micrometres."""
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as e:
        raise ClipmillError(f"cannot read window list: {e.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise ClipmillError("window list is not UTF-8 text", file=path) from None
    return parse_windows(text, source=path, units=units, dbu_um=dbu_um, form=form)


def parse_windows(text: str, *, source="<windows>", units=None, dbu_um=None, form=None) -> list:
    """Parse window-list text; ``source`` names it in errors."""
    def err(lineno, msg):
        return ClipmillError(f"line {lineno}: {msg}" if lineno else msg, file=source)

    lines = text.splitlines()
    dir_form, dir_units = None, None
    data = []  # (lineno, fields)
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = _DIRECTIVE.match(line)
            if m and not data:
                dir_form, dir_units = _parse_directive(m.group(1),
                                                       lambda msg, n=lineno: err(n, msg))
            continue
        fields = _split(line, "," if "," in line else None)
        data.append((lineno, fields))
    form = (form or dir_form)
    form = form.upper() if form else None
    if form is not None and form not in FORMS:
        raise err(0, f"unknown window form {form!r} (use {', '.join(FORMS)})")
    units = units or dir_units or "um"
    if units not in UNITS:
        raise err(0, f"unknown units {units!r} (use {', '.join(UNITS)})")
    if units == "dbu":
        if dbu_um is None or not dbu_um > 0:
            raise err(0, "units=dbu needs the layout's database unit (dbu_um)")
        scale = float(dbu_um)
    else:
        scale = 1e-3 if units == "nm" else 1.0
    if not data:
        raise err(0, "window list has no windows")

    # header row?
    first_no, first = data[0]
    columns = None
    if _is_header(first) and form != "FIXED":
        columns = _columns(first)
        data = data[1:]
        form = _form_of(columns, form, lambda msg: err(first_no, msg))
    elif form is None:
        numeric = [_is_number(f) for f in first]
        if len(first) == 2 and all(numeric):
            form = "FIXED"
        else:
            raise err(first_no, "cannot tell the window form: start the file with a directive "
                                "'# clipmill windows LLUR|LLWH|CWH|FIXED' or a header row such as "
                                "'name,x0,y0,x1,y1'")
    fixed_wh = None
    if form == "FIXED":
        if not data:
            raise err(first_no, "FIXED window list has no 'w,h' line")
        n0, f0 = data[0]
        if len(f0) != 2:
            raise err(n0, f"FIXED window list must start with 'w,h' (two numbers), got {len(f0)} "
                          "fields")
        fixed_wh = (_num(f0[0], "w", lambda m: err(n0, m)), _num(f0[1], "h", lambda m: err(n0, m)))
        for v, nm in zip(fixed_wh, "wh"):
            if not v > 0:
                raise err(n0, f"{nm} must be positive, got {v:g}")
        data = data[1:]
        if data and _is_header(data[0][1]):  # optional header after w,h: cx,cy or name,cx,cy
            columns = _columns(data[0][1])
            _form_of(columns, "FIXED", lambda msg, n=data[0][0]: err(n, msg))
            data = data[1:]
    need = FORMS[form]
    WindowSpec = _spec_cls()
    out, seen = [], {}
    for lineno, fields in data:
        e = (lambda msg, n=lineno: err(n, msg))
        row = _row(fields, columns, need, e)
        vals = {k: _num(row[k], k, e) for k in need}
        if form == "LLUR":
            x0, y0, x1, y1 = vals["x0"], vals["y0"], vals["x1"], vals["y1"]
            if x1 <= x0 or y1 <= y0:
                raise e(f"window must have x1 > x0 and y1 > y0, got ({x0:g}, {y0:g}, {x1:g}, "
                        f"{y1:g})")
        else:
            w, h = fixed_wh if form == "FIXED" else (vals["w"], vals["h"])
            if not (w > 0 and h > 0):
                raise e(f"width and height must be positive, got w={w:g} h={h:g}")
            if form == "LLWH":
                x0, y0 = vals["x0"], vals["y0"]
            else:
                x0, y0 = vals["cx"] - w / 2, vals["cy"] - h / 2
            x1, y1 = x0 + w, y0 + h
        name = (row.get("name") or "").strip() or f"w{lineno}"
        if name in seen:
            raise e(f"duplicate window name {name!r} (first on line {seen[name]})")
        seen[name] = lineno
        kw = _extras(row, e)
        out.append(WindowSpec(name, x0 * scale, y0 * scale, x1 * scale, y1 * scale, **kw))
    if not out:
        raise err(0, "window list has no windows")
    return out


def _parse_directive(rest, err):
    form, units = None, None
    for tok in rest.replace(",", " ").split():
        t = tok.strip()
        if "=" in t:
            k, v = t.split("=", 1)
            if k.lower() != "units":
                raise err(f"unknown directive option {k!r} (only units=um|nm|dbu)")
            units = v.lower()
            if units not in UNITS:
                raise err(f"unknown units {v!r} (use {', '.join(UNITS)})")
        elif t.upper() in FORMS:
            form = t.upper()
        else:
            raise err(f"unknown window form {t!r} in directive (use {', '.join(FORMS)})")
    if form is None:
        raise err("directive names no form (use '# clipmill windows LLUR|LLWH|CWH|FIXED')")
    return form, units


def _split(line, delim):
    if delim == ",":
        return [f.strip() for f in next(csv.reader(io.StringIO(line), skipinitialspace=True))]
    return next(csv.reader(io.StringIO(line), delimiter=" ", skipinitialspace=True)) \
        if '"' in line else line.split()


_KNOWN = {"name", *EXTRA, "x0", "y0", "x1", "y1", "w", "h", "cx", "cy"}


def _columns(fields):
    return [_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in fields]


def _is_header(fields) -> bool:
    """A header row: no numbers, and (nearly) all fields known column names."""
    if any(_is_number(f) for f in fields):
        return False
    cols = _columns(fields)
    return sum(c in _KNOWN for c in cols) >= max(2, len(cols) - 1)


def _is_number(s) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _num(s, what, err) -> float:
    try:
        v = float(s)
    except (TypeError, ValueError):
        raise err(f"{what} is not a number: {s!r}") from None
    if not math.isfinite(v):
        raise err(f"{what} is not finite: {s!r}")
    return v


def _form_of(columns, form, err):
    for c in columns:
        if c not in _KNOWN:
            raise err(f"unknown column {c!r} in header (known: {', '.join(sorted(_KNOWN))})")
    if len(set(columns)) != len(columns):
        raise err("a column name appears twice in the header")
    cols = set(columns)
    if form is not None:
        missing = [c for c in FORMS[form] if c not in cols]
        if missing:
            raise err(f"{form} header lacks column(s) {', '.join(missing)}")
        return form
    for f in ("LLUR", "LLWH", "CWH"):
        if set(FORMS[f]) <= cols:
            return f
    raise err("header names no complete form: need x0,y0,x1,y1 (LLUR), x0,y0,w,h (LLWH) or "
              "cx,cy,w,h (CWH)")


def _row(fields, columns, need, err) -> dict:
    if columns is not None:
        if len(fields) != len(columns):
            raise err(f"expected {len(columns)} columns ({', '.join(columns)}), got {len(fields)}")
        row = dict(zip(columns, fields))
        missing = [c for c in need if c not in row]
        if missing:
            raise err(f"missing column(s) {', '.join(missing)}")
        return row
    n = len(need)
    if len(fields) == n and not _is_number(fields[0]) and all(_is_number(f) for f in fields[1:]):
        raise err(f"expected {n} numbers ({', '.join(need)}) after the name {fields[0]!r}, got "
                  f"{n - 1}")
    if len(fields) == n:
        return dict(zip(need, fields))
    if len(fields) == n + 1:
        return dict(zip(("name",) + need, fields))
    raise err(f"expected {n} numbers ({', '.join(need)}) optionally preceded by a name, got "
              f"{len(fields)} fields")


def _extras(row, err) -> dict:
    kw = {}
    for k in EXTRA:
        v = row.get(k)
        if v is None or str(v).strip() == "":
            continue
        v = str(v).strip()
        if k == "depth":
            try:
                kw[k] = int(v)
            except ValueError:
                raise err(f"depth is not an integer: {v!r}") from None
        elif k == "pixel_size":
            kw[k] = _num(v, k, err)
            if not kw[k] > 0:
                raise err(f"pixel_size must be positive, got {v}")
        elif k == "layers":
            from engine.layers import parse_layers
            try:
                kw[k] = parse_layers(v.replace(" ", ","))
            except ClipmillError as ex:
                raise err(ex.message) from None
        elif k == "mode":
            if v not in ("binary", "gray"):
                raise err(f"mode must be binary or gray, got {v!r}")
            kw[k] = v
        else:
            kw[k] = v
    return kw


# -- tiling ---------------------------------------------------------------------------------------
def _edges(lo, hi, n=None, size=None, clip=True):
    if n is not None:
        return [lo + (hi - lo) * i / n for i in range(n)] + [hi]
    q = (hi - lo) / size
    near = round(q)
    # a region that is a whole number of tiles up to rounding gets no sliver tile at the end
    count = max(1, near if abs(q - near) <= 1e-9 * max(1.0, q) else math.ceil(q))
    e = [lo + size * i for i in range(count)]
    e.append(hi if clip else lo + size * count)
    return e


def tile_region(region, *, tiles=None, tile_size=None, clip=True, only=None, prefix="tile",
                **options) -> list:
    """Split ``region`` (x0, y0, x1, y1 um) into tiles; see the module docstring.

    ``tiles=(nx, ny)`` or ``tile_size=(w, h)``; ``options`` (cell, depth, layers, pixel_size, mode)
    are set on every WindowSpec.
    """
    try:
        x0, y0, x1, y1 = (float(v) for v in region)
    except (TypeError, ValueError):
        raise ClipmillError(f"tile region {region!r} must be four numbers x0,y0,x1,y1") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ClipmillError(f"tile region {region!r} has a non-finite coordinate")
    if not (x1 > x0 and y1 > y0):
        raise ClipmillError(f"tile region {region!r} must have x1 > x0 and y1 > y0")
    if (tiles is None) == (tile_size is None):
        raise ClipmillError("give either tiles=(nx, ny) or tile_size=(w, h)")
    if tiles is not None:
        nx, ny = (int(v) for v in tiles)
        if nx < 1 or ny < 1:
            raise ClipmillError(f"tile counts must be at least 1, got {nx}x{ny}")
        xe, ye = _edges(x0, x1, n=nx), _edges(y0, y1, n=ny)
    else:
        w, h = (float(v) for v in tile_size)
        if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
            raise ClipmillError(f"tile size must be positive, got {w:g},{h:g}")
        xe, ye = _edges(x0, x1, size=w, clip=clip), _edges(y0, y1, size=h, clip=clip)
    nx, ny = len(xe) - 1, len(ye) - 1
    if nx * ny > 50_000_000:
        raise ClipmillError(f"{nx}x{ny} tiles is too many")
    wr, wc = len(str(ny - 1)), len(str(nx - 1))
    WindowSpec = _spec_cls()
    want = None
    if only is not None:
        items = only.split(",") if isinstance(only, str) else only
        want = {s.strip() for s in items if s.strip()}
    out = []
    for r in range(ny):
        for c in range(nx):
            name = f"{prefix}_r{r:0{wr}d}_c{c:0{wc}d}"
            if want is not None and name not in want:
                continue
            out.append(WindowSpec(name, xe[c], ye[r], xe[c + 1], ye[r + 1], **options))
    if want is not None:
        missing = want - {w.name for w in out}
        if missing:
            ex = sorted(missing)[:5]
            first, last = f"{prefix}_r{0:0{wr}d}_c{0:0{wc}d}", f"{prefix}_r{ny - 1}_c{nx - 1}"
            raise ClipmillError(f"--only names unknown tile(s) {', '.join(ex)}"
                                f"{' ...' if len(missing) > 5 else ''} (tiles are named like "
                                f"{first} .. {last})")
    return out


def parse_pair(text, what, sep_chars="x,") -> tuple[float, float]:
    """'10x20' or '10,20' -> (10.0, 20.0) (CLI helper)."""
    parts = re.split(r"[x,X ]+", str(text).strip())
    if len(parts) != 2:
        raise ClipmillError(f"{what} must be two numbers like 10,20 or 10x20, got {text!r}")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ClipmillError(f"{what} must be two numbers like 10,20 or 10x20, got {text!r}") \
            from None


def parse_box(text, what="region") -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' -> four floats (CLI helper)."""
    parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4:
        raise ClipmillError(f"{what} must be four numbers x0,y0,x1,y1, got {text!r}")
    return vals
