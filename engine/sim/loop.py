"""The discrete-event loop: a heap of (time, sequence, handler, argument) in virtual
seconds since the simulation start, driving the engine's ManualClock.

Ties at one instant run in scheduling order (the sequence number), so a run is
reproducible. The engine clock only moves forward: it is set to an event's time
unless the engine's 1 µs ticks already carried it past that time.
"""
from __future__ import annotations

import datetime as _dt
import heapq
from typing import Any, Callable

from ..clock import ManualClock

__all__ = ["EventLoop", "SimClock"]


class SimClock(ManualClock):
    """A ManualClock the event loop moves forward cheaply (never backwards)."""

    __slots__ = ()

    def forward_to(self, when: _dt.datetime) -> None:
        """Set the time to `when` unless the clock's ticks already passed it. O(1)."""
        if when > self._now:
            self._now = when

    def now(self) -> _dt.datetime:
        # ManualClock.now without its `if self._tick` test (a timedelta truth test on
        # every engine reading): adding a zero tick gives the same value anyway.
        value = self._now
        self._now = value + self._tick
        return value

Handler = Callable[[Any], None]
_heappush = heapq.heappush


class EventLoop:
    """Virtual time for one simulation. `now` is the current event's time (seconds)."""

    __slots__ = ("clock", "start", "now", "_heap", "_seq", "events", "stopped")

    def __init__(self, clock: SimClock, start: _dt.datetime) -> None:
        self.clock = clock
        self.start = start
        self.now = 0.0
        self._heap: list[tuple[float, int, Handler, Any]] = []
        self._seq = 0
        self.events = 0
        self.stopped = False

    def at(self, t: float, handler: Handler, arg: Any = None) -> None:
        """Run `handler(arg)` at virtual time `t` (not before now). O(log n)."""
        if t < self.now:
            t = self.now
        seq = self._seq = self._seq + 1
        _heappush(self._heap, (t, seq, handler, arg))

    def after(self, delay: float, handler: Handler, arg: Any = None) -> None:
        """Run `handler(arg)` `delay` seconds from now. O(log n)."""
        seq = self._seq = self._seq + 1
        _heappush(self._heap, (self.now + delay, seq, handler, arg))

    def to_datetime(self, t: float) -> _dt.datetime:
        return self.start + _dt.timedelta(seconds=t)

    def to_seconds(self, when: _dt.datetime) -> float:
        return (when - self.start).total_seconds()

    def pending(self) -> int:
        return len(self._heap)

    def run(self, until: float, on_tick: Callable[[], None] | None = None, tick_mask: int = 2047) -> None:
        """Process events in time order until the heap is empty, `stop()` is called, or
        the next event lies beyond `until`; virtual time then rests at `until` (or the
        stop time). `on_tick` is called every `tick_mask + 1` events (progress bars)."""
        heap = self._heap
        pop = heapq.heappop
        clock = self.clock
        forward_to = clock.forward_to
        start = self.start
        timedelta = _dt.timedelta
        now = self.now   # == self.now: only this loop moves it
        count = 0
        try:
            while heap and not self.stopped:
                t, _, handler, arg = entry = pop(heap)
                if t > until:
                    _heappush(heap, entry)   # not due: put it back (once, at the end)
                    break
                if t > now:
                    self.now = now = t
                    # SimClock.forward_to, inlined (the hottest line of the loop)
                    when = start + timedelta(seconds=t)
                    if when > clock._now:
                        clock._now = when
                handler(arg)
                count += 1
                if on_tick is not None and not count & tick_mask:
                    on_tick()
        finally:
            self.events += count
        if not self.stopped and self.now < until and until != float("inf"):
            self.now = until
            forward_to(start + timedelta(seconds=until))

    def stop(self) -> None:
        self.stopped = True
