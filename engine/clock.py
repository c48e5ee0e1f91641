"""Injectable clocks: the engine reads "now" only through one of these.

`SystemClock` reads the wall clock; `ManualClock` is set and advanced by tests and
simulations, so the same inputs give the same timestamps, bit for bit.
"""
from __future__ import annotations

import datetime as _dt
from typing import Protocol, runtime_checkable

from .errors import ValidationError, shown
from .validation import as_datetime, as_timedelta

UTC = _dt.timezone.utc

__all__ = ["Clock", "SystemClock", "ManualClock", "UTC", "checked_clock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with a `now()` returning a timezone-aware UTC datetime."""

    def now(self) -> _dt.datetime: ...


class SystemClock:
    """The real time, in UTC."""

    __slots__ = ()

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


def _as_utc(value: _dt.datetime | str, what: str) -> _dt.datetime:
    # As everywhere else in the engine (validation.as_datetime): ISO 8601 text is
    # taken, and a time without a UTC offset is read as UTC (as Prefect reads one).
    # Not numbers: a clock set to 20241101 means a date, not 1970.
    when = as_datetime(value, what, unix_times=False)
    if when is None:
        raise ValidationError(f"{what} must be a datetime, got None")
    return when


class ManualClock:
    """A clock that moves only when told to.

    `start` is a datetime or ISO 8601 text (no offset: UTC). `tick` (a timedelta or
    seconds, default zero) is added after every reading; a tiny tick (e.g. one
    microsecond) keeps successive readings distinct, which a simulation needs because
    two states of one run may not share a timestamp.
    """

    __slots__ = ("_now", "_tick")

    def __init__(
        self,
        start: _dt.datetime | str | None = None,
        tick: _dt.timedelta | float = _dt.timedelta(0),
    ) -> None:
        self._now = _as_utc(start, "start") if start is not None else _dt.datetime(2024, 1, 1, tzinfo=UTC)
        given = tick
        tick = as_timedelta(tick, "tick")
        if tick < _dt.timedelta(0):
            # (as given: timedelta(seconds=-1) shows as days=-1, seconds=86399)
            raise ValidationError(f"tick must not be negative, got {shown(given)}")
        self._tick = tick

    @property
    def time(self) -> _dt.datetime:
        """The time the next `now()` reads, without reading it (no tick). O(1)."""
        return self._now

    @property
    def tick(self) -> _dt.timedelta:
        """What every `now()` adds after its reading (zero: the clock stands still). O(1)."""
        return self._tick

    def now(self) -> _dt.datetime:
        value = self._now
        if self._tick:
            self._now = value + self._tick
        return value

    def set(self, when: _dt.datetime | str) -> None:
        """Jump to `when` (may move backwards: tests sometimes need that). A time
        without an offset is UTC; ISO 8601 text is taken."""
        self._now = _as_utc(when, "when")

    def advance(self, seconds: float | _dt.timedelta = 0.0) -> _dt.datetime:
        """Move forward by `seconds` (a number or a timedelta); returns the new now."""
        delta = as_timedelta(seconds, "advance")
        if delta < _dt.timedelta(0):
            raise ValidationError(f"cannot advance by a negative amount: {shown(seconds)}")
        self._now = self._now + delta
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


class _CheckedClock:
    """A clock of the user's whose every reading is checked and made UTC (as any
    time the engine is given is): the engine stores what `now()` returns."""

    __slots__ = ("clock",)

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> _dt.datetime:
        value = self.clock.now()
        if value.__class__ is _dt.datetime and value.tzinfo is UTC:
            return value
        if not isinstance(value, _dt.datetime):
            raise ValidationError(
                f"the clock's now() must return a datetime, got {type(value).__name__} {shown(value)} from "
                f"{shown(self.clock)}"
            )
        return as_datetime(value, "the clock's now()")  # type: ignore[return-value]

    def __repr__(self) -> str:
        return repr(self.clock)


def checked_clock(clock: object) -> Clock:
    """`clock` as the engine reads it: runstate's own clocks as they are, anything
    else with a `now()` behind a check of each reading (a datetime; without an offset
    it is UTC; converted to UTC). ValidationError for an object without `now()`."""
    if isinstance(clock, (SystemClock, ManualClock)):
        return clock
    if not callable(getattr(clock, "now", None)):
        raise ValidationError(f"clock must have a now() method (see engine.Clock), got {type(clock).__name__} "
                              f"{shown(clock)}")
    return _CheckedClock(clock)  # type: ignore[arg-type]
