"""A tiny progress bar for terminals: simulated time and runs finished, redrawn at
most ten times a second on one line of stderr. Not a TTY → silent."""
from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from .durations import format_duration

__all__ = ["Progress"]


class Progress:
    """Call `update(sim)` often; it redraws only when 0.1 s of wall time passed."""

    def __init__(self, total_seconds: float | None, total_runs: int | None, stream: IO[str] | None = None,
                 enabled: bool | None = None, width: int = 30, columns: int | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total_seconds = total_seconds
        self.total_runs = total_runs
        self.width = width
        self.columns = columns  # None: the terminal's width, asked at each draw (it may be resized)
        self._shown = 0  # characters the line on screen holds
        self._last = 0.0
        self._start = time.perf_counter()
        self._drawn = False

    def update(self, sim: Any) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1:
            return
        self._last = now
        self.draw(sim.loop.now, sim.finished, len(sim.runs_by_id))

    def draw(self, sim_seconds: float, finished: int, created: int) -> None:
        if self.total_runs:
            frac = finished / self.total_runs
        elif self.total_seconds:
            frac = sim_seconds / self.total_seconds
        else:
            frac = 0.0
        frac = min(1.0, max(0.0, frac))
        total = f" / {format_duration(self.total_seconds)}" if self.total_seconds else ""
        of_total = f" (of {self.total_runs:,})" if self.total_runs else ""
        elapsed = time.perf_counter() - self._start
        rate = finished / elapsed if elapsed > 0 else 0.0
        figures = (f" {frac * 100:5.1f}%  sim {format_duration(sim_seconds)}{total}  "
                   f"runs {finished} done of {created} created{of_total}  {rate:,.0f} runs/s ")
        width, columns = self.width, self._columns()
        if columns is not None:
            # A line reaching the last column wraps, and "\r" then rewinds only the
            # wrapped part: each redraw would leave a stale line above. The bar
            # gives way first (down to 5), then the line's end.
            width = max(5, min(width, columns - 3 - len(figures)))
        filled = int(frac * width)
        line = f"[{'#' * filled}{'.' * (width - filled)}]{figures}"
        if columns is not None:
            line = line[:max(columns - 1, 0)]
        shown, self._shown = self._shown, len(line)
        self.stream.write("\r" + line.ljust(shown))  # blank what a longer line left
        self.stream.flush()
        self._drawn = True

    def _columns(self) -> int | None:
        """The width to keep within: `columns`, else the terminal's; None when the
        stream is no terminal (nothing wraps there)."""
        if self.columns is not None:
            return self.columns
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return None

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
