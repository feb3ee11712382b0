"""The performance model: per-stage linear cost laws fitted to measurements, then extrapolated.

Pure numpy. Each stage's time is a sum of non-negative terms (a fixed cost plus a cost per byte,
per polygon, per pixel ...), so it is fitted with non-negative least squares (Lawson-Hanson) on
*relative* residuals (each row weighted by 1 / measured time): small and large measurements count
alike, which is what an extrapolation to much larger inputs needs.

Stages and their features (names of keys in the measurement rows):
  scan     seconds ~ 1, file_bytes                      (one pass over the file, one core)
  index    seconds ~ 1, db_bytes, db_nlogn              (spatial index build: a sort)
  explode  seconds ~ 1, polygons [, depth]              (one window, flattened polygons out)
  raster   seconds ~ 1, pixels, edges                   (one window)
  write    seconds ~ 1, bytes                           (one image file)

``CostModel.predict(target)`` combines them with measured ratios (database bytes per file byte,
edges per polygon, written bytes per pixel, parallel efficiency, coordinator cost per window) into
the answer for a target machine and file: time to first window, windows per second, total time,
bottleneck stage, and whether the database fits in RAM.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

GB = 1e9

STAGE_FEATURES = {
    "scan": ["1", "file_bytes"],
    "index": ["1", "db_bytes", "db_nlogn"],
    "explode": ["1", "polygons", "depth"],
    "raster": ["1", "pixels", "edges"],
    "write": ["1", "bytes"],
}

# The seed question: 50 GB and 500 GB files, up to 2000 polygons/um2, 10 x 10 um windows, 20 CPUs,
# 192 GB RAM. Pixel size, window count and disk bandwidth are not in the question: stated here.
SEED_TARGETS = [
    dict(name="seed-50GB", file_bytes=50 * GB, density=2000.0, window_um=10.0, pixel_um=0.01,
         n_windows=100_000, cores=20, ram_bytes=192 * GB, disk_bw=2 * GB),
    dict(name="seed-500GB", file_bytes=500 * GB, density=2000.0, window_um=10.0, pixel_um=0.01,
         n_windows=100_000, cores=20, ram_bytes=192 * GB, disk_bw=2 * GB),
]


def nlogn(x: float) -> float:
    """x * log2(x / 1 MB), floored at 0: the n log n feature of sorts (x in bytes)."""
    return float(x) * max(math.log2(max(float(x), 1.0) / 1e6), 0.0)


def nnls(A: np.ndarray, b: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """min ||A x - b|| subject to x >= 0 (Lawson and Hanson's active-set method)."""
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    m, n = A.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = A.T @ (b - A @ x)
    tol = 10 * np.finfo(float).eps * max(1.0, np.abs(A).max(initial=0.0)) * max(m, n)
    it, max_iter = 0, max_iter or 3 * n + 10
    while (~passive).any() and w[~passive].max(initial=-np.inf) > tol and it < max_iter:
        it += 1
        j = np.argmax(np.where(passive, -np.inf, w))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = A.T @ (b - A @ x)
    return x


@dataclass
class StageFit:
    """A fitted law ``seconds = sum(coef[i] * row[features[i]])`` ("1" is the constant term)."""
    stage: str
    features: list
    coef: list
    r2: float
    max_rel_resid: float
    n: int
    dropped: list = field(default_factory=list)  # features constant in the data (folded into "1")

    def predict(self, row: dict) -> float:
        return float(sum(c * (1.0 if f == "1" else float(row[f]))
                         for f, c in zip(self.features, self.coef)))

    def law(self) -> str:
        unit = {"file_bytes": "GB", "db_bytes": "GB", "db_nlogn": "GB log2(MB)", "bytes": "MB",
                "pixels": "Mpx",
                "edges": "M edges", "polygons": "k polygons", "depth": "level"}
        scale = {"GB": 1e9, "GB log2(MB)": 1e9, "MB": 1e6, "Mpx": 1e6, "M edges": 1e6,
                 "k polygons": 1e3, "level": 1}
        parts = []
        for f, c in zip(self.features, self.coef):
            if f == "1":
                parts.append(f"{c * 1e3:.3g} ms")
            else:
                u = unit.get(f, f)
                parts.append(f"{c * scale.get(u, 1) * 1e3:.3g} ms/{u}")
        return " + ".join(parts)

    def to_dict(self) -> dict:
        return {"stage": self.stage, "features": list(self.features),
                "coef": [float(c) for c in self.coef], "r2": self.r2,
                "max_rel_resid": self.max_rel_resid, "n": self.n, "dropped": list(self.dropped),
                "law": self.law()}

    @classmethod
    def from_dict(cls, d: dict) -> "StageFit":
        return cls(d["stage"], list(d["features"]), list(d["coef"]), d["r2"],
                   d["max_rel_resid"], d["n"], list(d.get("dropped", [])))


def fit_stage(stage: str, rows: list, features: list | None = None,
              target: str = "seconds") -> StageFit:
    """Fit ``target`` of ``rows`` (dicts) against ``features`` (default STAGE_FEATURES[stage]).

    Features missing from the rows or constant across them are dropped (a constant one cannot be
    told from the fixed cost). Raises ValueError without rows.
    """
    features = list(features or STAGE_FEATURES[stage])
    rows = [r for r in rows if r.get(target) is not None and r[target] > 0]
    if not rows:
        raise ValueError(f"no measurements to fit stage {stage!r}")
    keep, dropped = [], []
    for f in features:
        if f == "1":
            keep.append(f)
            continue
        vals = [r.get(f) for r in rows]
        if any(v is None for v in vals) or np.ptp(np.asarray(vals, dtype=float)) == 0:
            dropped.append(f)
        else:
            keep.append(f)
    if "1" not in keep:
        keep.insert(0, "1")
    y = np.array([float(r[target]) for r in rows])
    X = np.array([[1.0 if f == "1" else float(r[f]) for f in keep] for r in rows])
    # Columns scaled to unit max so that bytes and seconds live on one numeric scale.
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    Wx = X / scale / y[:, None]
    coef = nnls(Wx, np.ones(len(y))) / scale
    pred = X @ coef
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    max_rel = float(np.max(np.abs(pred - y) / y))
    return StageFit(stage, keep, [float(c) for c in coef], r2, max_rel, len(rows), dropped)


def rel_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured."""
    return (predicted - measured) / measured if measured else math.inf


def speedup(workers: float, parallel_fraction: float) -> float:
    """Amdahl: speedup of ``workers`` cores when ``parallel_fraction`` of the work parallelises."""
    p = min(max(parallel_fraction, 0.0), 1.0)
    return 1.0 / ((1.0 - p) + p / max(workers, 1.0))


def parallel_fraction(throughput: dict) -> float:
    """Amdahl parallel fraction from windows/s at several worker counts ({workers: w/s}).

    Least squares on 1/speedup = (1 - p) + p / w; 1.0 when only one worker count was measured
    (the assumption is then stated by the caller)."""
    ws = sorted(int(k) for k in throughput)
    if len(ws) < 2 or ws[0] != 1:
        return 1.0
    t1 = throughput[ws[0]] if ws[0] in throughput else throughput[str(ws[0])]
    xs, ys = [], []
    for w in ws[1:]:
        tw = throughput[w] if w in throughput else throughput[str(w)]
        xs.append(1.0 / w - 1.0)        # 1/S - 1 = p (1/w - 1)
        ys.append(t1 / tw - 1.0)
    xs, ys = np.array(xs), np.array(ys)
    p = float((xs * ys).sum() / (xs * xs).sum())
    return min(max(p, 0.0), 1.0)


@dataclass
class CostModel:
    """Fitted stage laws plus the measured ratios the extrapolation needs."""
    fits: dict                      # stage -> StageFit
    ratios: dict                    # db_ratio, index_ratio, edges_per_polygon,
                                    # write_bytes_per_pixel, coordinator_s_per_window,
                                    # parallel_fraction, worker_rss_bytes, depth, scan_workers
    notes: list = field(default_factory=list)

    @classmethod
    def fit(cls, measurements: dict, ratios: dict) -> "CostModel":
        """measurements: stage -> list of rows (dicts with 'seconds' and the stage's features)."""
        fits, notes = {}, []
        for stage, rows in measurements.items():
            try:
                fits[stage] = fit_stage(stage, rows)
            except ValueError as e:
                notes.append(str(e))
        return cls(fits, dict(ratios), notes)

    def to_dict(self) -> dict:
        return {"fits": {k: v.to_dict() for k, v in self.fits.items()}, "ratios": self.ratios,
                "notes": self.notes}

    @classmethod
    def from_dict(cls, d: dict) -> "CostModel":
        return cls({k: StageFit.from_dict(v) for k, v in d["fits"].items()}, d["ratios"],
                   d.get("notes", []))

    def stage(self, name: str, row: dict) -> float:
        f = self.fits.get(name)
        return f.predict(row) if f is not None else 0.0

    def predict(self, target: dict) -> dict:
        """Extrapolate to ``target`` (keys as in SEED_TARGETS; mode/format optional).

        Returns the per-window stage times, the one-time costs, windows per second, time to first
        window, total time for n_windows, the bottleneck, and the memory verdict, with the
        assumptions spelled out in ``assumptions``."""
        r = self.ratios
        F = float(target["file_bytes"])
        cores = int(target["cores"])
        ram = float(target["ram_bytes"])
        bw = float(target.get("disk_bw", 2 * GB))
        win = float(target["window_um"])
        px = float(target["pixel_um"])
        n = int(target["n_windows"])
        polys = float(target.get("polygons_per_window") or target["density"] * win * win)
        pixels = (win / px) ** 2
        edges = polys * r.get("edges_per_polygon", 4.0)
        depth = target.get("depth", r.get("depth", 4))
        db_bytes = F * r.get("db_ratio", 0.5)
        ix_bytes = F * r.get("index_ratio", 0.05)

        # one-time costs
        scan_cpu = self.stage("scan", {"file_bytes": F}) / max(r.get("scan_workers", 1), 1)
        scan_io = F / bw
        scan = max(scan_cpu, scan_io)
        index = self.stage("index", {"db_bytes": db_bytes, "db_nlogn": nlogn(db_bytes)})
        # per window (one worker)
        explode = self.stage("explode", {"polygons": polys, "depth": depth})
        raster = self.stage("raster", {"pixels": pixels, "edges": edges})
        out_bytes = pixels * r.get("write_bytes_per_pixel", 0.125)
        write = self.stage("write", {"bytes": out_bytes})
        per_window = explode + raster + write
        workers = max(cores - 1, 1) if cores > 2 else cores  # one core left to the coordinator
        p = r.get("parallel_fraction", 1.0)
        worker_rate = speedup(workers, p) / per_window if per_window > 0 else math.inf
        coord = r.get("coordinator_s_per_window", 0.0)
        coord_rate = 1.0 / coord if coord > 0 else math.inf

        worker_rss = r.get("worker_rss_bytes", 200e6)
        need = db_bytes + ix_bytes + workers * worker_rss + 4 * GB   # 4 GB for OS + coordinator
        fits_ram = need <= 0.9 * ram
        mapped_io_rate = math.inf
        miss = 0.0
        if not fits_ram:
            # mapped DBLoad: the page cache holds what RAM leaves free; a window's polygons come
            # from disk with the probability that their pages are not cached. Upper bound on the
            # bytes a window touches: its flattened polygons at the database's bytes per polygon
            # (hierarchy makes it less: shared cells are read once).
            cache = max(0.9 * ram - workers * worker_rss - 4 * GB, 0.0)
            miss = 1.0 - min(cache / (db_bytes + ix_bytes), 1.0)
            bytes_per_window = polys * r.get("db_bytes_per_polygon", 40.0) * miss
            mapped_io_rate = bw / bytes_per_window if bytes_per_window > 0 else math.inf
        rates = {"workers": worker_rate, "coordinator": coord_rate,
                 "disk (mapped DB)": mapped_io_rate}
        limiter = min(rates, key=rates.get)
        wps = rates[limiter]
        shares = {"explode": explode, "raster": raster, "write": write}
        bottleneck_stage = max(shares, key=shares.get) if per_window > 0 else None
        first = scan + index + r.get("fork_seconds", 0.5) + per_window
        total = scan + index + n / wps if wps > 0 else math.inf
        one_time = {"scan": scan, "index": index}
        return {
            "target": dict(target),
            "polygons_per_window": polys, "pixels_per_window": pixels, "edges_per_window": edges,
            "scan_seconds": scan, "scan_cpu_seconds": scan_cpu, "scan_io_seconds": scan_io,
            "index_seconds": index,
            "explode_seconds": explode, "raster_seconds": raster, "write_seconds": write,
            "per_window_seconds": per_window, "workers": workers, "speedup": speedup(workers, p),
            "windows_per_second": wps,
            "windows_per_second_linear": min(workers / per_window if per_window > 0 else math.inf,
                                             coord_rate, mapped_io_rate),
            "rate_limits": rates, "limited_by": limiter,
            "bottleneck_stage": bottleneck_stage,
            "bottleneck_overall": ("scan/index (one-time)"
                                   if scan + index > n / wps else f"per-window {bottleneck_stage}"),
            "time_to_first_window_seconds": first, "total_seconds": total,
            "one_time_seconds": one_time,
            "db_bytes": db_bytes, "index_bytes": ix_bytes, "ram_needed_bytes": need,
            "fits_in_ram": fits_ram, "page_miss_fraction": miss,
            "database": "in RAM (shared memory)" if fits_ram
            else "mapped from disk (on-disk DBLoad)",
            "assumptions": [
                f"scan time = max(CPU law on {max(r.get('scan_workers', 1), 1)} core(s), file/disk "
                f"bandwidth {bw / GB:.1f} GB/s)",
                f"database = {r.get('db_ratio', 0.5):.3f} x file bytes, index = "
                f"{r.get('index_ratio', 0.05):.3f} x file bytes (measured ratios)",
                f"{polys:.0f} polygons per window (density x window area), "
                f"{r.get('edges_per_polygon', 4.0):.2f} edges per polygon (measured)",
                f"{workers} workers (one core left to the coordinator); Amdahl parallel fraction "
                f"{p:.3f} ({r.get('parallel_fraction_source', 'measured')}; run_windows "
                f"measured at {r.get('workers_measured', [1])} workers)",
                f"written bytes per pixel {r.get('write_bytes_per_pixel', 0.125):.3f} (measured)",
                f"coordinator cost {coord * 1e6:.0f} us CPU per window (measured after the "
                f"first result, caps the rate at {coord_rate:.0f} windows/s)",
                f"worker private memory {worker_rss / 1e6:.0f} MB each "
                f"({r.get('worker_memory_measure', 'measured')})",
                "per-window cost does not grow with file size (hierarchical index; measured flat)",
                "database mapped from disk when database + index + workers' RSS + 4 GB exceed 90%"
                " of RAM; then a window's flattened polygons x bytes/polygon x the uncached share "
                "of the database is read at disk bandwidth (random-read worst case)",
            ],
        }
