"""The discrete-event loop: a heap of (time, sequence, handler, argument) in virtual
seconds since the simulation start, driving the engine's ManualClock.

Ties at one instant run in scheduling order (the sequence number), so a run is
reproducible. The engine clock only moves forward: it is set to an event's time
unless the engine's 1 µs ticks already carried it past that time.
"""
from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import math
from typing import Any, Callable

from ..clock import ManualClock

__all__ = ["EventLoop", "SimClock", "service_pass_at"]


def service_pass_at(t: float, every: float) -> float:
    """The first pass at or after `t` of a service looping every `every` seconds from
    the start (as Prefect's services do from the server's). O(1)."""
    at = math.ceil(t / every) * every
    return at if at >= t else at + every   # (float rounding)


class SimClock(ManualClock):
    """A ManualClock the event loop moves forward cheaply (never backwards).

    The loop only notes each event's virtual time in `due` (seconds since `origin`);
    the clock moves to it when next read. Most events (idle worker polls, service
    ticks) never reach the engine, so they skip the datetime arithmetic. Moving
    forward is a max(), so applying it late gives the same readings.
    """

    __slots__ = ("origin", "due")

    def __init__(self, start: _dt.datetime | None = None, tick: _dt.timedelta = _dt.timedelta(0)) -> None:
        super().__init__(start, tick)
        self.origin = self._now            # the event loop sets its own start here
        self.due: float | None = None

    def forward_to(self, when: _dt.datetime) -> None:
        """Set the time to `when` unless the clock's ticks already passed it. O(1)."""
        if when > self._now:
            self._now = when

    def _catch_up(self) -> None:
        due = self.due
        if due is not None:
            self.due = None
            when = self.origin + _dt.timedelta(0, due)   # timedelta(seconds=due), positionally
            if when > self._now:
                self._now = when

    def now(self) -> _dt.datetime:
        if self.due is not None:
            self._catch_up()
        # ManualClock.now without its `if self._tick` test: a zero tick adds nothing.
        value = self._now
        self._now = value + self._tick
        return value

    def set(self, when: _dt.datetime) -> None:
        self.due = None   # a jump overrides any pending move
        super().set(when)

    def advance(self, seconds: float | _dt.timedelta = 0.0) -> _dt.datetime:
        self._catch_up()
        return super().advance(seconds)

    def __repr__(self) -> str:
        self._catch_up()
        return super().__repr__()

Handler = Callable[[Any], None]
_heappush = heapq.heappush


class EventLoop:
    """Virtual time for one simulation. `now` is the current event's time (seconds)."""

    __slots__ = ("clock", "start", "now", "_heap", "_seq", "events", "stopped")

    def __init__(self, clock: SimClock, start: _dt.datetime) -> None:
        self.clock = clock
        self.start = start
        clock.origin = start   # the clock's pending `due` times count from here
        self.now = 0.0
        self._heap: list[tuple[float, int, Handler, Any]] = []
        self._seq = itertools.count(1)   # tie-breaker: next() is cheaper than an attribute += 1
        self.events = 0
        self.stopped = False

    def at(self, t: float, handler: Handler, arg: Any = None) -> None:
        """Run `handler(arg)` at virtual time `t` (not before now). O(log n)."""
        if t < self.now:
            t = self.now
        _heappush(self._heap, (t, next(self._seq), handler, arg))

    def after(self, delay: float, handler: Handler, arg: Any = None) -> None:
        """Run `handler(arg)` `delay` seconds from now. O(log n)."""
        _heappush(self._heap, (self.now + delay, next(self._seq), handler, arg))

    def to_datetime(self, t: float) -> _dt.datetime:
        # timedelta(0, t) is timedelta(seconds=t) without keyword parsing (~30% cheaper)
        return self.start + _dt.timedelta(0, t)

    def to_seconds(self, when: _dt.datetime) -> float:
        return (when - self.start).total_seconds()

    def run(self, until: float, on_tick: Callable[[], None] | None = None, tick_mask: int = 2047) -> None:
        """Process events in time order until the heap is empty, `stop()` is called, or
        the next event lies beyond `until`; virtual time then rests at `until` (or the
        stop time). `on_tick` is called every `tick_mask + 1` events (progress bars)."""
        heap = self._heap
        pop = heapq.heappop
        clock = self.clock
        now = self.now   # == self.now: only this loop moves it
        count = 0
        try:
            while heap and not self.stopped:
                t, _, handler, arg = entry = pop(heap)
                if t > until:
                    _heappush(heap, entry)   # not due: put it back (once, at the end)
                    break
                if t > now:
                    # the clock catches up to `t` when the engine next reads it
                    self.now = now = clock.due = t
                handler(arg)
                count += 1
                if on_tick is not None and not count & tick_mask:
                    on_tick()
        finally:
            self.events += count
            clock._catch_up()   # leave no pending move behind
        if not self.stopped and self.now < until and until != float("inf"):
            self.now = until
            clock.forward_to(self.to_datetime(until))

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        """Drop the events not run (the loop is done): their handlers are bound
        methods of the simulation's services, which hold this loop, so a finished
        simulation would otherwise be a reference cycle, holding its engine until
        the garbage collector's next full pass. O(pending events)."""
        self._heap.clear()
        self.stopped = True
