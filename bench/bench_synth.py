"""Write throughput of engine.synth (MB/s), files deleted afterwards.

    python bench/bench_synth.py                      # 200 MB and 1 GB at 2000 polygons/um2
    python bench/bench_synth.py --sizes 200MB --density 100 --klayout
    python -m pytest bench/bench_synth.py --benchmark-only   # pytest-benchmark, 50 MB

``--klayout`` also times KLayout writing the same layout (read first, then Layout.write) so the
figures stand side by side. The page cache absorbs the writes (no fsync): this is the generator's
speed, as seen by a following reader of the file.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def one(path, size, density, seed=0):
    from engine.synth import synthesize
    s = synthesize(path, size_bytes=size, density=density, seed=seed)
    return s


def main(argv=None):
    from engine.synth import parse_size
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200MB,1GB")
    ap.add_argument("--density", type=float, default=2000.0)
    ap.add_argument("--dir", default=None, help="folder for the files (default: a temp folder)")
    ap.add_argument("--klayout", action="store_true", help="also time KLayout writing the layout")
    a = ap.parse_args(argv)
    d = a.dir or tempfile.mkdtemp(prefix="clipmill-synth-")
    try:
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    except OSError:
        pass
    print(f"{'target':>8} {'bytes':>14} {'die um':>9} {'polygons':>12} {'seconds':>8} {'MB/s':>7} {'MB/CPU-s':>9}"
          + ("  KLayout write s, MB/s" if a.klayout else ""))
    for tok in a.sizes.split(","):
        size = parse_size(tok)
        path = os.path.join(d, f"synth_{tok.strip()}.gds")
        try:
            s = one(path, size, a.density)
            line = (f"{tok:>8} {s['bytes']:>14,} {s['die_um'][0]:>9.1f} {s['polygons']:>12,} "
                    f"{s['seconds']:>8.2f} {s['mb_per_s']:>7.0f} {s['mb_per_cpu_s']:>9.0f}")
            if a.klayout:
                import klayout.db as kdb
                ly = kdb.Layout()
                ly.read(path)
                out = path + ".kl.gds"
                t0 = time.perf_counter()
                ly.write(out)
                t = time.perf_counter() - t0
                kb = os.path.getsize(out)
                os.unlink(out)
                line += f"  {t:8.2f} s {kb / 1e6 / t:7.0f}"
            print(line, flush=True)
        finally:
            if os.path.exists(path):
                os.unlink(path)
    if not a.dir:
        os.rmdir(d)


def test_synth_write_50mb(benchmark, tmp_path):
    """pytest-benchmark: 50 MB at 2000 polygons/um2."""
    path = tmp_path / "b.gds"
    s = benchmark.pedantic(one, args=(path, 50_000_000, 2000.0), rounds=3)
    benchmark.extra_info["mb_per_s"] = s["mb_per_s"]
    benchmark.extra_info["bytes"] = s["bytes"]
    os.unlink(path)


if __name__ == "__main__":
    main()
