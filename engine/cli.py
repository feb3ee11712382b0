"""The ``clipmill`` command line: info, index, run, demo, synth, bench.

Every subcommand imports its engine modules lazily, so ``clipmill --help`` is fast. Errors are one
line ``clipmill: error: ...`` on stderr (the traceback only with ``--debug``). Exit codes:
0 success, 1 error, 2 bad command line, 3 some windows failed, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FAILED_WINDOWS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
FORMAT_CHOICES = ("tiff", "png", "bmp", "raw", "npy", "npz", "gds", "polynpz")

MAIN_EPILOG = """\
examples:
  clipmill demo                                   # the Quick start: tiles of the bundled layout
  clipmill info chip.gds                          # summary: cells, layers, counts, bbox
  clipmill info chip.gds --json                   # the same as JSON
  clipmill index chip.gds -o chip.dbload          # scan once, reopen in milliseconds
  clipmill run chip.gds --windows clips.csv --pixel-size 0.01 --out clips/
  clipmill run chip.dbload --tile-region 0,0,100,100 --tiles 10x10 --pixel-size 0.02 \\
      --layers 5/0,7 --format tiff --compression deflate --workers 8 --out tiles/
  clipmill synth --help                           # synthetic layouts
  clipmill bench --quick                          # measure every stage beside KLayout

Run 'clipmill COMMAND --help' for a command's options. --debug shows tracebacks."""

RUN_EPILOG = """\
window lists (--windows FILE; CSV or whitespace text, coordinates in um):
  name,x0,y0,x1,y1          header row naming the columns (LLUR), or
  name,x0,y0,w,h            (LLWH), or
  name,cx,cy,w,h            (CWH); optional extra columns: cell, depth, layers, pixel_size, mode
  # clipmill windows LLUR   a directive line instead of a header (also LLWH, CWH, FIXED;
                            add units=nm or units=dbu)
  2,2 then cx,cy lines      FIXED: one size, many centres (first data line is w,h)

examples:
  clipmill run chip.gds --windows clips.csv --pixel-size 0.01 --out clips/
  clipmill run chip.gds --tile-region 0,0,50,50 --tiles 5x5 --pixel-size 0.02 --out tiles/
  clipmill run chip.gds --tile-region 0,0,50,50 --tile-size 10,10 --only tile_r0_c0,tile_r4_c4 \\
      --pixel-size 0.02 --mode gray --format tiff --compression packbits --out tiles/
  clipmill run chip.gds --windows clips.csv --format gds --clip --out gds_clips/

exit status: 0 all windows written, 3 some windows failed (listed on stderr), 1 error, 2 usage."""


# ---------------------------------------------------------------------------------------------
# parser
def build_parser(command=None) -> argparse.ArgumentParser:
    """The parser; ``command`` names the subcommand about to run, so that only its module is
    imported for its options (synth and bench bring their own)."""
    p = argparse.ArgumentParser(
        prog="clipmill", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fast parallel clip extraction (window -> polygons -> bitmap) from GDSII "
                    "layouts.", epilog=MAIN_EPILOG)
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help, epilog=None, **kw):
        sp = sub.add_parser(name, help=help, description=help, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
        return sp

    sp = add("info", "Summarise a layout: cells, top cells, layers, record counts, bbox, timings.",
             "examples:\n  clipmill info chip.gds\n  clipmill info chip.gds --json --layers 5/0,7")
    sp.add_argument("file", help="GDSII file (.gds, .gds.gz) or a saved .dbload")
    sp.add_argument("--json", action="store_true", help="print Layout.info as JSON")
    sp.add_argument("--layers", help="load only these layers, e.g. 5/0,7 (7 = every datatype)")
    sp.add_argument("--cache", metavar="DBLOAD", help="on-disk DBLoad to reuse or write")
    sp.set_defaults(func=cmd_info)

    sp = add("index", "Scan a layout once and save its on-disk DBLoad (database + spatial index).",
             "examples:\n  clipmill index chip.gds                # writes chip.gds.dbload\n"
             "  clipmill index chip.gds -o /fast/chip.dbload --leaf-size 32 --layers 1,5/0")
    sp.add_argument("file", help="GDSII file (.gds, .gds.gz)")
    sp.add_argument("-o", "--output", metavar="OUT.dbload", help="default: FILE.dbload")
    sp.add_argument("--leaf-size", type=int, metavar="N", help="spatial index leaf size")
    sp.add_argument("--layers", help="keep only these layers, e.g. 5/0,7")
    sp.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    sp.set_defaults(func=cmd_index)

    sp = add("run", "Extract clips: rasterize (or cut polygons from) each window and write files.",
             RUN_EPILOG)
    add_run_arguments(sp, require_file=True)
    sp.set_defaults(func=cmd_run)

    sp = add("demo", "The Quick start job on the bundled layout: tile a region into 10 x 10 um "
                     "windows at 20 nm pixels and write PNGs (overwrites its own output folder).",
             "examples:\n  clipmill demo\n  clipmill demo --out /tmp/demo --format tiff "
             "--workers 2")
    sp.add_argument("--out", default="clipmill-demo", help="output folder (default %(default)s)")
    sp.add_argument("--format", default="png", choices=FORMAT_CHOICES)
    sp.add_argument("--tiles", default="6x6", help="tiles NXxNY of 10 um (default %(default)s)")
    sp.add_argument("--pixel-size", type=float, default=0.02, help="um (default %(default)s)")
    sp.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_demo)

    for name, module, help in (("synth", "engine.synth", "Write a synthetic hierarchical GDSII "
                                "layout (seeded)."),
                               ("bench", "engine.benchmark", "Benchmark every stage beside "
                                "KLayout and fit the cost model.")):
        sp = add(name, help)
        sp.set_defaults(func=_delegate(module), module=module)
        if command != name:
            continue
        try:
            mod = __import__(module, fromlist=["add_arguments"])
            mod.add_arguments(sp)
        except ImportError as e:  # module missing or broken: say so when the command is used
            sp.set_defaults(import_error=str(e))
            sp.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def add_run_arguments(sp, require_file=True):
    sp.add_argument("file", help="GDSII file (.gds, .gds.gz) or a saved .dbload")
    g = sp.add_argument_group("windows (a list or a tiling)")
    g.add_argument("--windows", metavar="FILE", help="window list (see below)")
    g.add_argument("--units", choices=("um", "nm", "dbu"), help="coordinates of the window "
                   "list (default um, or the file's directive)")
    g.add_argument("--tile-region", metavar="X0,Y0,X1,Y1", help="region to tile, um (default: "
                   "the cell's bounding box)")
    g.add_argument("--tiles", metavar="NXxNY", help="split the region into NX x NY equal tiles")
    g.add_argument("--tile-size", metavar="W,H", help="tiles of W x H um from the lower-left "
                   "corner; the last column/row is clipped to the region")
    g.add_argument("--no-clip-tiles", action="store_true", help="with --tile-size: keep the last "
                   "tiles full size (they may reach past the region)")
    g.add_argument("--only", metavar="NAMES", help="keep only these tiles (comma separated, e.g. "
                   "tile_r0_c0,tile_r2_c3; rows count from the bottom)")
    g = sp.add_argument_group("rendering")
    g.add_argument("--pixel-size", type=float, metavar="UM", help="pixel size in um (needed for "
                   "image formats unless every listed window has one)")
    g.add_argument("--mode", choices=("binary", "gray"), default="binary",
                   help="binary (1 bit) or gray (area coverage, 8 bit); default %(default)s")
    g.add_argument("--layers", help="layers to draw, e.g. 5/0,7 (7 = every datatype); default all")
    g.add_argument("--cell", help="cell to clip from (default: the only top cell)")
    g.add_argument("--depth", type=int, help="hierarchy depth to expand (default: all)")
    g.add_argument("--clip", dest="clip", action="store_true", default=True,
                   help="gds/polynpz: cut polygons at the window edge (default)")
    g.add_argument("--no-clip", dest="clip", action="store_false",
                   help="gds/polynpz: keep whole polygons that touch the window")
    g = sp.add_argument_group("output")
    g.add_argument("--format", "-f", default="png", choices=FORMAT_CHOICES,
                   help="default %(default)s")
    g.add_argument("--single-file", metavar="NAME.gds", help="gds: one file in DIR with a cell "
                   "per window, instead of a file per window")
    g.add_argument("--compression", choices=("none", "packbits", "deflate"),
                   help="tiff: none, packbits or deflate; npz/polynpz: none or deflate")
    g.add_argument("--out", "-o", default="clips", metavar="DIR",
                   help="output folder (default %(default)s)")
    g.add_argument("--overwrite", action="store_true", help="replace existing files")
    g = sp.add_argument_group("execution")
    g.add_argument("--workers", "-j", type=int,
                   help="worker processes (default: all cores; 0 runs in this process)")
    g.add_argument("--cache", metavar="DBLOAD", help="on-disk DBLoad to reuse or write")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")


# ---------------------------------------------------------------------------------------------
# helpers
def _err(msg):
    from engine.errors import ClipmillError
    return ClipmillError(msg)


def _open(path, layers=None, cache=None, leaf_size=None):
    from engine import open_layout
    return open_layout(path, layers=layers, cache=cache, leaf_size=leaf_size)


def _mb(n) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def _jsonable(x):
    import numpy as np
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


# ---------------------------------------------------------------------------------------------
# info / index
def cmd_info(args) -> int:
    t0 = time.perf_counter()
    with _open(args.file, layers=args.layers, cache=args.cache) as lay:
        info = _jsonable(lay.info)
        per_layer = _layer_polygons(lay)
    wall = time.perf_counter() - t0
    if args.json:
        print(json.dumps(info, indent=1, sort_keys=True))
        return EXIT_OK
    print(format_info(args.file, info, per_layer, wall))
    return EXIT_OK


def _layer_polygons(lay):
    """Polygons stored per layer row (hierarchical, not flattened); None if unavailable."""
    try:
        import numpy as np
        return np.bincount(lay.db.poly_layer, minlength=len(lay.db.layer_ld)).tolist()
    except Exception:  # noqa: BLE001 - only decoration for the table
        return None


def format_info(path, info, per_layer=None, wall=None) -> str:
    g = info.get
    rows = []

    def row(k, v):
        rows.append(f"{k:<16}{v}")

    fb, db = g("file_bytes"), g("db_bytes")
    row("file", f"{path}  ({_mb(fb)})" if fb is not None else path)
    if db is not None:
        share = f", {100 * db / fb:.0f}% of the file" if fb else ""
        row("database", f"{_mb(db)}{share}")
    row("dbu", f"{g('dbu_um')} um")
    tops = g("top_cells") or []
    cells = g("cells")
    row("cells", f"{cells}" if not isinstance(cells, list) else f"{len(cells)}")
    more = " ..." if len(tops) > 8 else ""
    row("top cells", f"{len(tops)}: {', '.join(map(str, tops[:8]))}{more}")
    und = g("undefined_cells") or []
    if und:
        row("undefined", f"{len(und)} referenced but never defined (kept empty): "
                         f"{', '.join(map(str, und[:5]))}{' ...' if len(und) > 5 else ''}")
    bb = g("bbox_um")
    if bb:
        row("bbox", f"({bb[0]:g}, {bb[1]:g}) - ({bb[2]:g}, {bb[3]:g}) um   "
                    f"{bb[2] - bb[0]:g} x {bb[3] - bb[1]:g} um")
    counts = g("counts") or {}
    if counts:
        row("records", ", ".join(f"{k} {v}" for k, v in counts.items()))
    loaded = [f"{k} {g(k)}" for k in ("polygons", "vertices", "placements") if g(k) is not None]
    if loaded:
        row("loaded", ", ".join(loaded))
    ix = g("index")
    if isinstance(ix, dict) and ix:
        row("index", ", ".join(f"{k} {ix[k]}" for k in ("kind", "leaf_size") if k in ix)
            + (f", {_mb(ix['bytes'])}" if "bytes" in ix else ""))
    secs = g("seconds") or {}
    if secs:
        row("seconds", ", ".join(f"{k} {v:.3f}" for k, v in secs.items()
                                 if isinstance(v, (int, float))))
    if wall is not None:
        row("wall", f"{wall:.3f} s (open + summary)")
    layers = g("layers") or []
    rows.append(f"layers ({len(layers)}):")
    rows.append(f"  {'layer/datatype':>15}  {'polygons':>10}")
    for i, ld in enumerate(layers):
        n = per_layer[i] if per_layer is not None and i < len(per_layer) else ""
        rows.append(f"  {f'{ld[0]}/{ld[1]}':>15}  {n:>10}")
    return "\n".join(rows)


def cmd_index(args) -> int:
    out = args.output or (args.file + ".dbload")
    if os.path.exists(out) and not args.overwrite:
        raise _err(f"{out} exists (pass --overwrite to replace it)")
    t0 = time.perf_counter()
    with _open(args.file, layers=args.layers, leaf_size=args.leaf_size) as lay:
        t1 = time.perf_counter()
        tmp = out + ".tmp"
        lay.save(tmp)
        os.replace(tmp, out)
        t2 = time.perf_counter()
        fb = lay.info.get("file_bytes") or os.path.getsize(args.file)
    size = os.path.getsize(out)
    print(f"wrote {out}: {_mb(size)} ({100 * size / max(fb, 1):.0f}% of {_mb(fb)}), "
          f"scan+index {t1 - t0:.2f} s, save {t2 - t1:.2f} s")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# run / demo
def make_windows(args, lay, early=None) -> list:
    from engine import windows as W
    if early is not None:
        return early
    tiling = args.tiles or args.tile_size
    if args.windows and (tiling or args.tile_region):
        raise _err("give either --windows or a tiling (--tile-region with --tiles/--tile-size)")
    if args.windows:
        if args.only:
            raise _err("--only goes with a tiling, not with --windows")
        return W.read_windows(args.windows, units=args.units, dbu_um=lay.dbu_um)
    if not tiling:
        raise _err("no windows: give --windows FILE, or --tiles NXxNY / --tile-size W,H "
                   "(with --tile-region X0,Y0,X1,Y1)")
    if args.tiles and args.tile_size:
        raise _err("give --tiles or --tile-size, not both")
    if args.tile_region:
        region = W.parse_box(args.tile_region, "--tile-region")
    else:
        region = _cell_bbox(lay, args.cell)
    if args.tiles:
        nx, ny = W.parse_pair(args.tiles, "--tiles")
        if nx != int(nx) or ny != int(ny):
            raise _err(f"--tiles must be whole numbers like 4x3, got {args.tiles!r}")
        return W.tile_region(region, tiles=(int(nx), int(ny)), only=args.only)
    return W.tile_region(region, tile_size=W.parse_pair(args.tile_size, "--tile-size"),
                         clip=not args.no_clip_tiles, only=args.only)


def _cell_bbox(lay, cell):
    c = lay.resolve_cell(cell)
    bb = lay.db.cell_bbox[c]
    if bb[0] > bb[2]:
        raise _err(f"cell {lay.db.cell_name(c)!r} is empty: give --tile-region")
    return tuple(float(v) * lay.dbu_um for v in bb)


def execute(lay, specs, args, *, out_dir, fmt, compression=None, overwrite=False, quiet=False,
            progress=None):
    """run_windows with a formatter; returns the summary dict (errors listed)."""
    from engine.api import run_windows
    from engine.formats import POLYGON_FORMATS, make_formatter
    from engine.progress import Progress

    polygons = fmt in POLYGON_FORMATS
    if args.layers:
        lay.layer_mask(args.layers)  # unknown layers: one error now, not one per window
    if any(s.cell is None for s in specs):
        lay.resolve_cell(args.cell)  # unknown cell or several top cells: say so once
    if not polygons and args.pixel_size is None and any(s.pixel_size is None for s in specs):
        raise _err("--pixel-size is required for image formats")
    if args.pixel_size is not None and not args.pixel_size > 0:
        raise _err(f"--pixel-size must be positive, got {args.pixel_size}")
    meta = {"source": os.path.abspath(lay.source) if lay.source else None,
            "pixel_size": args.pixel_size, "mode": args.mode, "layers": args.layers,
            "cell": args.cell, "depth": args.depth, "dbu_um": lay.dbu_um}
    if polygons:
        meta["clip"] = bool(args.clip)
        for k in ("pixel_size", "mode"):
            meta.pop(k)
    meta = {k: v for k, v in meta.items() if v is not None}
    from engine.formats import safe_name
    seen = {}
    for sp in specs:  # two names that sanitise alike would write the same file
        f = safe_name(sp.name)
        if f in seen:
            raise _err(f"windows {seen[f]!r} and {sp.name!r} would both write {f!r}: rename one")
        seen[f] = sp.name
    single = getattr(args, "single_file", None)
    if single is not None:
        if fmt != "gds":
            raise _err("--single-file goes with --format gds")
        if os.path.exists(os.path.join(out_dir, single)) and not overwrite:
            raise _err(f"{os.path.join(out_dir, single)} exists (pass --overwrite to replace it)")
    formatter = make_formatter(fmt, out_dir, compression=compression, overwrite=overwrite,
                               meta=meta, dbu_um=min(lay.dbu_um, 0.001) if polygons else 0.001,
                               single=single)
    kw = dict(pixel_size=args.pixel_size or specs[0].pixel_size, mode=args.mode,
              layers=args.layers, cell=args.cell, depth=args.depth, workers=args.workers,
              formatter=formatter, images=False)
    if polygons:  # workers explode instead of rasterizing; pixel_size is then unused
        from engine.formats import ExplodeCompute
        kw.update(pixel_size=args.pixel_size or 1.0, stage=ExplodeCompute(args.clip))
    show = progress if progress is not None else (not quiet and sys.stderr.isatty())
    bar = Progress(len(specs), enabled=show)
    done = failed = nbytes = 0
    write_s = 0.0
    errors = []
    parts = {}
    t0 = time.perf_counter()
    try:
        with run_windows(lay, specs, **kw) as run:  # closed (workers stopped) on any exit
            for r in run:
                done += 1
                if r.error is not None:
                    failed += 1
                    errors.append((r.name, str(r.error)))
                else:
                    out = r.output or {}
                    nbytes += int(out.get("bytes") or 0)
                    if single is not None:
                        parts[r.index] = out
                    write_s += float(out.get("write_seconds") or 0.0)
                bar.update(1, failed=int(r.error is not None))
    finally:
        bar.close()
    if single is not None and parts:
        from engine.formats import merge_gds_parts
        _, nbytes = merge_gds_parts(formatter, [parts[i] for i in sorted(parts)],
                                    overwrite=overwrite)
    wall = time.perf_counter() - t0
    return {"windows": len(specs), "done": done, "failed": failed, "seconds": wall,
            "windows_per_s": done / wall if wall > 0 else 0.0, "bytes": nbytes,
            "write_seconds": write_s, "out": out_dir, "format": fmt, "errors": errors}


def print_summary(s, stream=None):
    stream = stream or sys.stdout
    ok = s["done"] - s["failed"]
    print(f"clipmill: {s['windows']} windows, {ok} written, {s['failed']} failed, "
          f"{s['seconds']:.2f} s, {s['windows_per_s']:.1f} windows/s, {_mb(s['bytes'])} "
          f"({s['format']}) in {s['out']}", file=stream)


def report_errors(s):
    for name, msg in s["errors"][:20]:
        msg = msg if msg.startswith("window ") else f"window {name!r}: {msg}"
        print(f"clipmill: {' '.join(msg.split())}", file=sys.stderr)
    if len(s["errors"]) > 20:
        print(f"clipmill: ... and {len(s['errors']) - 20} more failed windows", file=sys.stderr)


def cmd_run(args) -> int:
    from engine.formats import Formatter
    if args.compression:
        Formatter(args.format, args.out, compression=args.compression)  # validate early
    if args.workers is not None and args.workers < 0:
        raise _err(f"--workers must be at least 0 (0: in this process), got {args.workers}")
    early = None
    if args.windows and args.units != "dbu" and not (args.tiles or args.tile_size
                                                     or args.tile_region or args.only):
        from engine.errors import ClipmillError
        from engine.windows import read_windows  # check the list before scanning the layout
        try:
            early = read_windows(args.windows, units=args.units)
        except ClipmillError as e:
            if "dbu_um" not in e.message:  # units=dbu in the file: read once the layout is open
                raise
    with _open(args.file, cache=args.cache) as lay:
        specs = make_windows(args, lay, early)
        s = execute(lay, specs, args, out_dir=args.out, fmt=args.format,
                    compression=args.compression, overwrite=args.overwrite, quiet=args.quiet)
    report_errors(s)
    if not args.quiet:
        print_summary(s)
    return EXIT_FAILED_WINDOWS if s["failed"] else EXIT_OK


def demo_layout() -> str:
    from importlib import resources
    path = str(resources.files("engine") / "data" / "demo.gds")
    if not os.path.exists(path):
        raise _err(f"the bundled demo layout is missing ({path}); make one with "
                   "'clipmill synth' and use 'clipmill run'")
    return path


def _main_cell(lay):
    """The only top cell (None), else the top cell with the largest bounding box."""
    tops = [int(c) for c in lay.db.top_cells]
    if len(tops) <= 1:
        return None
    bb = lay.db.cell_bbox

    def area(c):
        b = bb[c]
        return 0 if b[0] > b[2] else float(b[2] - b[0]) * float(b[3] - b[1])
    return lay.db.cell_name(max(tops, key=area))


def cmd_demo(args) -> int:
    from engine import windows as W
    path = demo_layout()
    nx, ny = W.parse_pair(args.tiles, "--tiles")
    nx, ny = int(nx), int(ny)
    size = 10.0
    with _open(path) as lay:
        cell = _main_cell(lay)
        x0, y0, x1, y1 = _cell_bbox(lay, cell)
        w, h = nx * size, ny * size
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        rx0 = max(x0, min(cx - w / 2, x1 - w)) if x1 - x0 >= w else x0
        ry0 = max(y0, min(cy - h / 2, y1 - h)) if y1 - y0 >= h else y0
        region = (rx0, ry0, rx0 + w, ry0 + h)
        specs = W.tile_region(region, tiles=(nx, ny))
        if not args.quiet:
            print(f"clipmill demo: {path}\n  {len(specs)} windows of {size:g} x {size:g} um "
                  f"({nx}x{ny} tiles of ({region[0]:g}, {region[1]:g}) - ({region[2]:g}, "
                  f"{region[3]:g}) um) at {args.pixel_size * 1000:g} nm pixels -> "
                  f"{args.out}/*.{'tif' if args.format == 'tiff' else args.format}")
        ns = argparse.Namespace(pixel_size=args.pixel_size, mode="binary", layers=None, cell=cell,
                                depth=None, workers=args.workers, clip=True)
        s = execute(lay, specs, ns, out_dir=args.out, fmt=args.format, overwrite=True,
                    quiet=args.quiet)
    report_errors(s)
    print_summary(s)
    return EXIT_FAILED_WINDOWS if s["failed"] else EXIT_OK


def _delegate(module):
    def run(args) -> int:
        if getattr(args, "import_error", None):
            raise _err(f"'clipmill {args.command}' is unavailable: {args.import_error}")
        mod = __import__(module, fromlist=["run"])
        return int(mod.run(args) or 0)
    return run


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or usage error (2, message already printed)
        return int(e.code or 0) if isinstance(e.code, int) else EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    if args.version:
        from engine import __version__
        print(f"clipmill {__version__}")
        return EXIT_OK
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    from engine.errors import ClipmillError
    try:
        return int(args.func(args) or 0)
    except ClipmillError as e:
        if debug:
            raise
        print(f"clipmill: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. 'clipmill info x.gds --json | head': stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 141
    except KeyboardInterrupt:
        if debug:
            raise
        print("clipmill: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:
        if debug:
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"clipmill: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - one line for users, traceback with --debug
        if debug:
            raise
        print(f"clipmill: error: internal error {type(e).__name__}: {e} (run with --debug for "
              "the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
