"""A tiny progress bar for the CLI (stderr): done/total, windows/s, failures and ETA.

Draws only when enabled (the CLI enables it when stderr is a terminal and --quiet is not given),
at most ~10 times per second, and erases itself on close.
"""
from __future__ import annotations

import sys
import time


def fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int, *, enabled: bool = True, stream=None, unit: str = "windows",
                 width: int = 28, interval: float = 0.1):
        self.total, self.unit, self.width, self.interval = int(total), unit, width, interval
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = self.failed = 0
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._drawn = 0

    def update(self, n: int = 1, failed: int = 0) -> None:
        self.done += n
        self.failed += failed
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.interval or self.done >= self.total):
            self._last = now
            self._draw(now)

    def line(self, now=None) -> str:
        now = time.perf_counter() if now is None else now
        el = max(now - self.t0, 1e-9)
        rate = self.done / el
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(self.width * min(frac, 1.0)))
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        fail = f" {self.failed} failed" if self.failed else ""
        return (f"[{'#' * fill}{'.' * (self.width - fill)}] {self.done}/{self.total} "
                f"{100 * frac:3.0f}% {rate:.1f} {self.unit}/s{fail} "
                f"elapsed {fmt_seconds(el)} ETA {fmt_seconds(eta)}")

    def _draw(self, now) -> None:
        text = self.line(now)
        pad = max(0, self._drawn - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._drawn = len(text)

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
