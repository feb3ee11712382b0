"""Output formats: image and polygon writers, and the formatters run inside workers.

Images (``uint8`` [rows, cols], row 0 at the top of the window, column 0 at its left):

=========  ==================================================  ====================================
format     pixels                                              metadata
=========  ==================================================  ====================================
tiff       1-bit (mode binary) or 8-bit; compression none,     ImageDescription = metadata JSON,
           packbits or deflate (default none)                  X/YResolution = pixels per cm
png        1-bit (binary) or 8-bit gray                        tEXt chunk ``clipmill`` = JSON
bmp        1-bit (binary) or 8-bit gray                        sidecar ``NAME.EXT.json``
raw        one byte per pixel, rows top to bottom              sidecar ``NAME.EXT.json``
npy        the uint8 array                                     sidecar ``NAME.EXT.json``
npz        ``image`` array + ``meta`` (JSON string)            inside; deflate unless compression
                                                               is ``none``
=========  ==================================================  ====================================

Binary images are written as 1 bit per pixel: a pixel is set where the image is non-zero. Polygon
clips: ``gds`` (one GDSII file per window, one cell named after the window, boundaries per
layer/datatype, database unit 1 nm unless ``dbu_um`` says otherwise, metadata in a sidecar; or,
with ``single="NAME.gds"``, one file with a cell per window: workers write each cell's records to
a part file and ``merge_gds_parts`` joins them in window order) and
``polynpz`` (``xy`` um, ``offsets``, ``layer`` arrays of :class:`engine.polygons.Polygons` plus
``meta``). Whether polygons are clipped to the window is decided upstream (explode's ``clip``).

``encode_image()`` gives the same bytes in memory (no file). The metadata (``metadata()``) records
the window in um, pixel size, shape, mode, layers, cell, depth and source file, so that any clip
can be traced back to the layout.

``make_formatter(fmt, out_dir, ...)`` returns a picklable callable ``formatter(image, spec, info)
-> {"path", "bytes", ...}`` that run_windows runs inside each worker. File names come from window
names (sanitised to ``[A-Za-z0-9._-]``); an existing file is an error unless ``overwrite=True``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time

import numpy as np

from engine.errors import ClipmillError

IMAGE_FORMATS = ("tiff", "png", "bmp", "raw", "npy", "npz")
POLYGON_FORMATS = ("gds", "polynpz")
FORMATS = IMAGE_FORMATS + POLYGON_FORMATS
EXTENSIONS = {"tiff": ".tif", "png": ".png", "bmp": ".bmp", "raw": ".raw", "npy": ".npy",
              "npz": ".npz", "gds": ".gds", "polynpz": ".npz"}
SIDECAR = {"bmp", "raw", "npy", "gds"}
COMPRESSIONS = {"tiff": ("none", "packbits", "deflate"), "npz": ("none", "deflate"),
                "polynpz": ("none", "deflate")}
_PIL_TIFF = {"none": "raw", "packbits": "packbits", "deflate": "tiff_deflate"}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


# -- metadata -------------------------------------------------------------------------------------
def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def metadata(spec, info=None, meta=None, image=None) -> dict:
    """The metadata of one clip: ``meta`` (run-wide) < ``info`` (from the worker) < ``spec``."""
    out = {"clipmill": _version()}
    for src in (meta, info):
        if src:
            for k, v in dict(src).items():
                if k == "image" or (k == "polygons" and not isinstance(v, (int, np.integer))):
                    continue  # (a polygon count from the worker is kept)
                out[k] = _plain(v)
    if spec is not None:
        out["window"] = spec.name
        out["window_um"] = [float(spec.x0), float(spec.y0), float(spec.x1), float(spec.y1)]
        for k in ("cell", "depth", "layers", "pixel_size", "mode"):
            v = getattr(spec, k, None)
            if v is not None:
                out[k] = _plain(v)
    if image is not None and hasattr(image, "shape"):
        out["shape"] = [int(s) for s in image.shape]
        out["orientation"] = "row 0 = top (y1), column 0 = left (x0)"
    return out


def _version():
    try:
        from engine import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "?"


def _dumps(meta) -> str:
    return json.dumps(meta, sort_keys=True, separators=(",", ":"))


def read_metadata(path) -> dict:
    """Read back the metadata of a clip written by this module (any format)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    side = sidecar_path(path)
    if ext in (".tif", ".tiff"):
        from PIL import Image
        with Image.open(path) as im:
            return json.loads(im.tag_v2[270])
    if ext == ".png":
        from PIL import Image
        with Image.open(path) as im:
            return json.loads(im.text["clipmill"])
    if ext == ".npz":
        with np.load(path) as z:
            return json.loads(str(z["meta"]))
    with open(side) as f:
        return json.load(f)


def sidecar_path(path) -> str:
    return os.fspath(path) + ".json"


# -- file handling --------------------------------------------------------------------------------
def safe_name(name) -> str:
    """A window name made safe as a file name (``[A-Za-z0-9._-]``, no leading dot)."""
    s = _SAFE.sub("_", str(name)).strip("._") or "window"
    return s[:200]


def _open(path, overwrite):
    try:
        return open(path, "wb" if overwrite else "xb")
    except FileExistsError:
        raise ClipmillError("output exists (pass overwrite=True / --overwrite to replace it)",
                            file=path) from None
    except OSError as e:
        raise ClipmillError(f"cannot write: {e.strerror}", file=path) from None


def _write_sidecar(path, meta, overwrite) -> int:
    data = (json.dumps(meta, sort_keys=True, indent=1) + "\n").encode()
    with _open(sidecar_path(path), overwrite) as f:
        f.write(data)
    return len(data)


def _check_compression(fmt, compression):
    c = (compression or "none").lower()
    c = {"zlib": "deflate", "zip": "deflate", "raw": "none", "off": "none"}.get(c, c)
    allowed = COMPRESSIONS.get(fmt, ("none",))
    if c not in allowed:
        raise ClipmillError(f"format {fmt} takes compression {', '.join(allowed)}, not "
                            f"{compression!r}")
    return c


def _image_array(image, binary):
    a = np.asarray(image)
    if a.ndim != 2:
        raise ClipmillError(f"image must be 2-D, got shape {a.shape}")
    if binary:
        return a != 0
    if a.dtype != np.uint8:
        raise ClipmillError(f"gray image must be uint8, got {a.dtype}")
    return np.ascontiguousarray(a)


# -- image writers --------------------------------------------------------------------------------
def _prepare(image, fmt, meta, compression, binary):
    fmt = fmt.lower()
    if fmt not in IMAGE_FORMATS:
        raise ClipmillError(f"unknown image format {fmt!r} (use {', '.join(IMAGE_FORMATS)})")
    comp = _check_compression(fmt, compression)
    meta = dict(meta or {})
    a = _image_array(image, binary)
    meta.setdefault("shape", list(a.shape))
    meta["bits_per_pixel"] = 1 if binary and fmt in ("tiff", "png", "bmp") else 8
    meta["format"] = fmt
    if fmt in ("raw", "npy", "npz"):
        a = a.astype(np.uint8) if binary else a
        meta["dtype"] = "uint8"
        meta["values"] = "0/1" if binary else "0..255"
    return fmt, comp, meta, a


def _encode(f, a, fmt, comp, meta) -> None:
    """Write the encoded image to the binary file object ``f``."""
    if fmt in ("tiff", "png", "bmp"):
        from PIL import Image, TiffImagePlugin
        im = Image.fromarray(a)  # bool -> mode "1", uint8 -> "L"
        if fmt == "tiff":
            ifd = TiffImagePlugin.ImageFileDirectory_v2()
            ifd[270] = _dumps(meta)
            kw = {}
            ps = meta.get("pixel_size")
            if ps:
                ppcm = 1e4 / float(ps)  # pixels per centimetre
                kw = dict(resolution_unit=3, x_resolution=ppcm, y_resolution=ppcm)
            im.save(f, format="TIFF", compression=_PIL_TIFF[comp], tiffinfo=ifd, **kw)
        elif fmt == "png":
            from PIL.PngImagePlugin import PngInfo
            info = PngInfo()
            info.add_text("clipmill", _dumps(meta))
            im.save(f, format="PNG", pnginfo=info)
        else:
            im.save(f, format="BMP")
    elif fmt == "raw":
        f.write(a.tobytes(order="C"))
    elif fmt == "npy":
        np.save(f, a)
    else:
        (np.savez_compressed if comp == "deflate" else np.savez)(f, image=a,
                                                                  meta=np.array(_dumps(meta)))


def encode_image(image, fmt, *, meta=None, compression=None, binary=False) -> tuple[bytes, dict]:
    """In memory: the encoded file bytes and the metadata dict (embedded for tiff, png, npz;
    what a sidecar would hold for bmp, raw, npy)."""
    import io
    fmt, comp, meta, a = _prepare(image, fmt, meta, compression, binary)
    buf = io.BytesIO()
    _encode(buf, a, fmt, comp, meta)
    return buf.getvalue(), meta


def write_image(path, image, fmt, *, meta=None, compression=None, binary=False,
                overwrite=False) -> int:
    """Write one image with its metadata; returns the bytes written (sidecar included)."""
    fmt, comp, meta, a = _prepare(image, fmt, meta, compression, binary)
    with _open(path, overwrite) as f:
        _encode(f, a, fmt, comp, meta)
    total = os.path.getsize(path)  # (libtiff may write through its own handle: ask the disk)
    if fmt in SIDECAR:
        total += _write_sidecar(path, meta, overwrite)
    return total


# -- polygon writers ------------------------------------------------------------------------------
def _real8(x: float) -> bytes:
    """GDSII 8-byte excess-64 base-16 real."""
    try:
        from engine.codec import encode_real8  # the reader's codec, when present
        return encode_real8(x)
    except ImportError:
        pass
    if x == 0:
        return b"\0" * 8
    sign = 0x80 if x < 0 else 0
    x = abs(x)
    e = 64
    while x >= 1:
        x /= 16
        e += 1
    while x < 1 / 16:
        x *= 16
        e -= 1
    m = int(round(x * (1 << 56)))
    if m >= (1 << 56):
        m >>= 4
        e += 1
    return bytes([sign | e]) + m.to_bytes(7, "big")


def _rec(rtype, dtype, payload=b"") -> bytes:
    if len(payload) % 2:
        payload += b"\0"
    if len(payload) + 4 > 0xFFFF:
        raise ClipmillError("GDSII record too long")
    return struct.pack(">HBB", len(payload) + 4, rtype, dtype) + payload


def _str(rtype, s) -> bytes:
    return _rec(rtype, 6, s.encode("ascii", "replace"))


MAX_GDS_VERTICES = 8190  # XY record of 8191 points (closing point included) fits 65535 bytes


def _date_rec(rtype) -> bytes:
    t = time.gmtime()
    date = struct.pack(">6h", t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    return _rec(rtype, 2, date * 2)


def gds_header(*, dbu_um=0.001, libname="CLIPMILL") -> bytes:
    """HEADER, BGNLIB, LIBNAME, UNITS (user unit = 1 um)."""
    return b"".join([_rec(0x00, 2, struct.pack(">h", 600)), _date_rec(0x01), _str(0x02, libname),
                     _rec(0x03, 5, _real8(dbu_um) + _real8(dbu_um * 1e-6))])


GDS_TRAILER = struct.pack(">HBB", 4, 0x04, 0)  # ENDLIB


def gds_cell_name(name) -> str:
    return _SAFE.sub("_", str(name)) or "window"


def gds_cell_bytes(name, polys, *, dbu_um=0.001) -> bytes:
    """BGNSTR .. ENDSTR of one cell holding ``polys`` (Polygons in um) as BOUNDARY elements.

    Vectorised: every element is built in one big-endian uint16 buffer (all GDSII fields are
    2-byte aligned): BOUNDARY, LAYER, DATATYPE, XY (closed ring), ENDEL.
    """
    cname = gds_cell_name(name)
    head = _date_rec(0x05) + _str(0x06, cname)
    tail = struct.pack(">HBB", 4, 0x07, 0)
    m = len(polys)
    if m == 0:
        return head + tail
    offs = np.asarray(polys.offsets, dtype=np.int64)
    nv = np.diff(offs)
    keep = nv >= 3
    big = nv > MAX_GDS_VERTICES
    if big.any():
        i = int(np.argmax(big))
        raise ClipmillError(f"cell {cname}: polygon {i} has {int(nv[i])} vertices, more than a "
                            f"GDSII BOUNDARY holds ({MAX_GDS_VERTICES})")
    q = np.rint(np.asarray(polys.xy, dtype=np.float64) / dbu_um)
    if q.size and np.abs(q).max() > 2**31 - 1:
        raise ClipmillError(f"cell {cname}: coordinates overflow 32-bit database units")
    q = q.astype(np.int32)
    lay = np.asarray(polys.layer, dtype=np.int64)
    idx = np.nonzero(keep)[0]
    n = nv[idx]
    # closed rings: each polygon's vertices then its first vertex again
    ring_len = n + 1
    ring_off = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(ring_len, out=ring_off[1:])
    src = np.arange(ring_off[-1], dtype=np.int64) - np.repeat(ring_off[:-1], ring_len)
    src = np.where(src == np.repeat(n, ring_len), 0, src) + np.repeat(offs[idx], ring_len)
    ring = q[src].astype(">i4").view(">u2").reshape(-1)          # 4 uint16 per point
    el_len = 12 + 4 * ring_len                                     # uint16 words per element
    el_off = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(el_len, out=el_off[1:])
    buf = np.zeros(el_off[-1], dtype=">u2")
    e = el_off[:-1]
    buf[e + 0], buf[e + 1] = 4, 0x0800                              # BOUNDARY
    buf[e + 2], buf[e + 3], buf[e + 4] = 6, 0x0D02, lay[idx, 0] & 0xFFFF   # LAYER
    buf[e + 5], buf[e + 6], buf[e + 7] = 6, 0x0E02, lay[idx, 1] & 0xFFFF   # DATATYPE
    buf[e + 8], buf[e + 9] = 4 + 8 * ring_len, 0x1003               # XY
    xy_pos = (np.arange(4 * ring_off[-1], dtype=np.int64)
              - np.repeat(4 * ring_off[:-1], 4 * ring_len) + np.repeat(e + 10, 4 * ring_len))
    buf[xy_pos] = ring
    end = e + 10 + 4 * ring_len
    buf[end], buf[end + 1] = 4, 0x1100                              # ENDEL
    return head + buf.tobytes() + tail


def gds_bytes(cells, *, dbu_um=0.001, libname="CLIPMILL") -> bytes:
    """GDSII stream of ``cells``: a list of (cell name, Polygons in um)."""
    out = [gds_header(dbu_um=dbu_um, libname=libname)]
    seen = set()
    for name, polys in cells:
        cname = gds_cell_name(name)
        if cname in seen:
            raise ClipmillError(f"two cells named {cname!r} in one GDSII file")
        seen.add(cname)
        out.append(gds_cell_bytes(name, polys, dbu_um=dbu_um))
    out.append(GDS_TRAILER)
    return b"".join(out)


def write_gds(path, cells, *, dbu_um=0.001, meta=None, overwrite=False) -> int:
    """One GDSII file holding a cell per (name, Polygons); ``meta`` goes to a sidecar."""
    data = gds_bytes(cells, dbu_um=dbu_um)
    with _open(path, overwrite) as f:
        f.write(data)
    total = len(data)
    if meta is not None:
        total += _write_sidecar(path, meta, overwrite)
    return total


def write_polynpz(path, polys, *, meta=None, compression=None, overwrite=False) -> int:
    comp = _check_compression("polynpz", compression)
    with _open(path, overwrite) as f:
        (np.savez_compressed if comp == "deflate" else np.savez)(
            f, xy=np.asarray(polys.xy, dtype=np.float64),
            offsets=np.asarray(polys.offsets, dtype=np.int64),
            layer=np.asarray(polys.layer, dtype=np.int32), meta=np.array(_dumps(meta or {})))
        return f.tell()


def read_polynpz(path):
    from engine.polygons import Polygons
    with np.load(path) as z:
        return Polygons(z["xy"], z["offsets"], z["layer"]), json.loads(str(z["meta"]))


# -- formatters -----------------------------------------------------------------------------------
class Formatter:
    """Picklable ``formatter(image, spec, info) -> dict`` for run_windows (runs in workers).

    For polygon formats the polygons come as ``image`` (a Polygons, see ``ExplodeCompute``) or
    as ``info["polygons"]``.
    """

    def __init__(self, fmt, out_dir, *, compression=None, overwrite=False, meta=None,
                 dbu_um=0.001, mode=None, single=None):
        fmt = str(fmt).lower()
        fmt = {"tif": "tiff", "gdsii": "gds"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise ClipmillError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
        self.fmt = fmt
        self.compression = _check_compression(fmt, compression)
        self.out_dir = os.fspath(out_dir)
        self.overwrite = bool(overwrite)
        self.meta = dict(meta or {})
        self.dbu_um = float(dbu_um)
        self.mode = mode
        self.single = single  # gds: name of the one merged file (workers write cell parts)
        if single is not None and fmt != "gds":
            raise ClipmillError("a single output file with a cell per window is for format gds")

    @property
    def parts_dir(self) -> str:
        return os.path.join(self.out_dir, PARTS_DIR)

    def path_for(self, spec) -> str:
        return os.path.join(self.out_dir, safe_name(spec.name) + EXTENSIONS[self.fmt])

    def __call__(self, image, spec, info=None) -> dict:
        info = dict(info) if isinstance(info, dict) else {}
        path = self.path_for(spec)
        t0 = time.perf_counter()
        if self.fmt in POLYGON_FORMATS:
            polys = image if hasattr(image, "offsets") else info.get("polygons")
            if not hasattr(polys, "offsets"):
                raise ClipmillError(f"format {self.fmt} needs the window's polygons")
            meta = metadata(spec, info, self.meta)
            for k in ("pixel_size", "mode"):  # not rendered: no pixels
                if getattr(spec, k, None) is None:
                    meta.pop(k, None)
            meta["polygons"] = len(polys)
            meta["format"] = self.fmt
            if self.fmt == "gds" and self.single is not None:
                path = os.path.join(self.parts_dir, safe_name(spec.name) + ".gdscell")
                data = gds_cell_bytes(spec.name, polys, dbu_um=self.dbu_um)
                with _open(path, True) as f:
                    f.write(data)
                return {"path": path, "bytes": 0, "part_bytes": len(data), "meta": meta,
                        "write_seconds": time.perf_counter() - t0}
            if self.fmt == "gds":
                meta["dbu_um"] = self.dbu_um
                n = write_gds(path, [(spec.name, polys)], dbu_um=self.dbu_um, meta=meta,
                              overwrite=self.overwrite)
            else:
                n = write_polynpz(path, polys, meta=meta, compression=self.compression,
                                  overwrite=self.overwrite)
        else:
            if image is None:
                raise ClipmillError(f"format {self.fmt} needs the window's image")
            meta = metadata(spec, info, self.meta, image=image)
            mode = getattr(spec, "mode", None) or info.get("mode") or self.meta.get("mode") \
                or self.mode
            n = write_image(path, image, self.fmt, meta=meta, compression=self.compression,
                            binary=(mode == "binary"), overwrite=self.overwrite)
        return {"path": path, "bytes": n, "write_seconds": time.perf_counter() - t0}


class ExplodeCompute:
    """run_windows' per-window stage for polygon formats: ``(layout, window, options) ->
    (Polygons, count)`` using Layout.explode (``clip``: cut at the window edge)."""

    def __init__(self, clip=True):
        self.clip = bool(clip)

    def __call__(self, layout, window, o):
        polys = layout.explode(window, cell=o.get("cell"), layers=o.get("layers"),
                               depth=o.get("depth"), clip=self.clip)
        return polys, len(polys)


PARTS_DIR = ".clipmill-parts"


def merge_gds_parts(formatter, outputs, *, overwrite=False) -> tuple[str, int]:
    """Join the cell parts written by a ``single=`` gds formatter (``outputs``: the formatter
    dicts in window order) into ``out_dir/single``; the parts are removed. Returns (path, bytes).
    The sidecar lists every window's metadata."""
    path = os.path.join(formatter.out_dir, formatter.single)
    names = {}
    with _open(path, overwrite) as f:
        f.write(gds_header(dbu_um=formatter.dbu_um))
        for out in outputs:
            cname = gds_cell_name(out["meta"].get("window", ""))
            if cname in names:
                raise ClipmillError(f"two windows give the cell name {cname!r}", file=path)
            names[cname] = out["meta"]
            with open(out["path"], "rb") as part:
                shutil.copyfileobj(part, f)
        f.write(GDS_TRAILER)
    for out in outputs:
        try:
            os.remove(out["path"])
        except OSError:
            pass
    try:
        os.rmdir(formatter.parts_dir)
    except OSError:
        pass
    total = os.path.getsize(path)
    total += _write_sidecar(path, {"clipmill": _version(), "format": "gds", "dbu_um":
                                   formatter.dbu_um, "cells": names}, overwrite)
    return path, total


def make_formatter(fmt, out_dir, *, compression=None, overwrite=False, meta=None, **kw):
    """A formatter writing ``fmt`` files into ``out_dir`` (created if missing)."""
    f = Formatter(fmt, out_dir, compression=compression, overwrite=overwrite, meta=meta, **kw)
    try:
        os.makedirs(f.parts_dir if f.single is not None else f.out_dir, exist_ok=True)
    except OSError as e:
        raise ClipmillError(f"cannot create output folder: {e.strerror}", file=f.out_dir) from None
    return f
