"""Scan + load throughput of engine.reader beside KLayout's Layout.read, on one file, same run.

    python bench/bench_scan.py [FILE.gds] [--size-mb 200] [--repeat 3] [--no-klayout]

Without FILE, a ~200 MB file is made in /tmp by concatenating renamed copies of every structure
of a real layout (../shared/data/as2650/sid_top.gds by default; not committed). Prints MB/s
(warm page cache, one core: numba kernels are single-threaded), peak RSS, and the database size as
a share of the file.
"""
from __future__ import annotations

import argparse
import os
import resource
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "as2650" / "sid_top.gds"


def _records(data: bytes):
    pos = 0
    while pos + 4 <= len(data):
        ln, rt = struct.unpack_from(">HB", data, pos)
        yield pos, ln, rt
        if ln < 4:
            return
        pos += ln


def _name_record(rt: int, name: bytes) -> bytes:
    if len(name) % 2:
        name += b"\0"
    return struct.pack(">HBB", 4 + len(name), rt, 6) + name


def make_big_file(out: str, size_mb: float, source=DEFAULT_SOURCE) -> str:
    """Concatenate renamed copies of ``source``'s structures until ``size_mb`` is reached."""
    data = Path(source).read_bytes()
    head, tail, parts = None, None, []   # parts: list of (bytes | (rt, name)) per structure
    cur, start = None, 0
    for pos, ln, rt in _records(data):
        if rt == 0x05 and head is None:        # first BGNSTR
            head = data[:pos]
        if rt == 0x05:
            cur, start = [], pos
        elif rt in (0x06, 0x12) and cur is not None:   # STRNAME / SNAME
            cur.append(data[start:pos])
            cur.append((rt, data[pos + 4:pos + ln].rstrip(b"\0")))
            start = pos + ln
        elif rt == 0x07 and cur is not None:
            cur.append(data[start:pos + ln])
            parts.append(cur)
            cur = None
        elif rt == 0x04:
            tail = data[pos:pos + ln]
    target = int(size_mb * 1e6)
    written = 0
    with open(out, "wb") as f:
        f.write(head)
        k = 0
        while written < target:
            suffix = b"_c%d" % k
            chunks = []
            for st in parts:
                for c in st:
                    chunks.append(c if isinstance(c, bytes) else _name_record(c[0], c[1] + suffix))
            blob = b"".join(chunks)
            f.write(blob)
            written += len(blob)
            k += 1
        f.write(tail)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--size-mb", type=float, default=200.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-klayout", action="store_true")
    args = ap.parse_args(argv)
    path = args.file
    if path is None:
        path = f"/tmp/clipmill_bench_{int(args.size_mb)}mb.gds"
        if not os.path.exists(path):
            t = time.perf_counter()
            make_big_file(path, args.size_mb)
            print(f"made {path} in {time.perf_counter() - t:.1f} s")
    size = os.path.getsize(path)
    with open(path, "rb") as f:          # warm the page cache
        while f.read(1 << 24):
            pass

    from engine.reader import load_gdsii
    load_gdsii(path)   # compile / load the numba cache outside the timing
    best = None
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        arrays, meta = load_gdsii(path)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if best is None or dt < best[0]:
            best = (dt, dc, meta["seconds"])
        db_bytes = sum(a.nbytes for a in arrays.values())
        if _ < args.repeat - 1:
            del arrays
    rss = peak_rss_mb()
    dt, dc, sec = best
    mb = size / 1e6
    print(f"file: {path}  {mb:.1f} MB, {meta['records']:,} records, counts {meta['counts']}")
    print(f"clipmill scan+load: wall {dt:.3f} s = {mb / dt:.0f} MB/s, cpu {dc:.3f} s = "
          f"{mb / dc:.0f} MB/s  (scan {sec['scan']:.3f} s, load {sec['load']:.3f} s, "
          f"hierarchy {sec['hierarchy']:.3f} s)")
    print(f"clipmill database: {db_bytes / 1e6:.1f} MB = {100 * db_bytes / size:.1f}% of the file; "
          f"peak RSS so far {rss:.0f} MB")
    try:
        from engine.index import build_index
        t = time.perf_counter()
        full = build_index(arrays, meta)
        it = time.perf_counter() - t
        ix = sum(a.nbytes for k, a in full.items() if k.startswith("ix_"))
        tot = sum(a.nbytes for a in full.values())
        print(f"index: {it:.3f} s, {ix / 1e6:.1f} MB; database + index {tot / 1e6:.1f} MB = "
              f"{100 * tot / size:.1f}% of the file")
        del full
    except ImportError:
        pass
    del arrays
    if not args.no_klayout:
        import klayout.db as kdb
        t, c = time.perf_counter(), time.process_time()
        ly = kdb.Layout()
        ly.read(path)
        kt, kc = time.perf_counter() - t, time.process_time() - c
        print(f"KLayout Layout.read: wall {kt:.3f} s = {mb / kt:.0f} MB/s, cpu {kc:.3f} s = "
              f"{mb / kc:.0f} MB/s  -> clipmill is {kt / dt:.1f}x KLayout (wall), "
              f"{kc / dc:.1f}x (cpu); peak RSS now {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
