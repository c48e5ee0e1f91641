"""Injectable clocks: the engine reads "now" only through one of these.

`SystemClock` reads the wall clock; `ManualClock` is set and advanced by tests and
simulations, so the same inputs give the same timestamps, bit for bit.
"""
from __future__ import annotations

import datetime as _dt
from typing import Protocol, runtime_checkable

from .errors import ValidationError

UTC = _dt.timezone.utc

__all__ = ["Clock", "SystemClock", "ManualClock", "UTC"]


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


def _as_utc(value: _dt.datetime) -> _dt.datetime:
    if not isinstance(value, _dt.datetime):
        raise ValidationError(f"expected a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None:
        raise ValidationError(f"naive datetime {value!r}: give a timezone-aware (UTC) datetime")
    return value.astimezone(UTC)


class ManualClock:
    """A clock that moves only when told to.

    `tick` (default zero) is added after every reading; a tiny tick (e.g. one
    microsecond) keeps successive readings distinct, which a simulation needs because
    two states of one run may not share a timestamp.
    """

    __slots__ = ("_now", "_tick")

    def __init__(
        self,
        start: _dt.datetime | None = None,
        tick: _dt.timedelta = _dt.timedelta(0),
    ) -> None:
        self._now = _as_utc(start) if start is not None else _dt.datetime(2024, 1, 1, tzinfo=UTC)
        if not isinstance(tick, _dt.timedelta) or tick < _dt.timedelta(0):
            raise ValidationError(f"tick must be a non-negative timedelta, got {tick!r}")
        self._tick = tick

    def now(self) -> _dt.datetime:
        value = self._now
        if self._tick:
            self._now = value + self._tick
        return value

    def set(self, when: _dt.datetime) -> None:
        """Jump to `when` (may move backwards: tests sometimes need that)."""
        self._now = _as_utc(when)

    def advance(self, seconds: float | _dt.timedelta = 0.0) -> _dt.datetime:
        """Move forward by `seconds` (a number or a timedelta); returns the new now."""
        if isinstance(seconds, _dt.timedelta):
            delta = seconds
        elif isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            delta = _dt.timedelta(seconds=seconds)
        else:
            raise ValidationError(f"advance takes seconds or a timedelta, got {type(seconds).__name__} {seconds!r}")
        if delta < _dt.timedelta(0):
            raise ValidationError(f"cannot advance by a negative amount: {seconds!r}")
        self._now = self._now + delta
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"
