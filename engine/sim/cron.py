"""A small five-field cron ("minute hour day-of-month month day-of-week"), in UTC or
read on the wall clock of an IANA timezone.

Fields accept `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`,
month and weekday names (JAN, mon-fri), and the macros @hourly, @daily,
@midnight, @weekly, @monthly, @yearly, @annually; day-of-week 0 or 7 is Sunday.
As in classic cron, when both day fields are restricted a day matches if either
does. In a timezone, each matching local time is read as Prefect's CronSchedule
reads croniter's (engine/schedules.py): a local time a DST change repeats fires
once, at its first occurrence, and one it skips moves back by the gap.

These are walked here, far quicker than croniter (a date in 2-60 µs against
~120), since a simulation asks for one per scheduled run. Whatever else croniter
accepts (`L`, `#`: what a Prefect deployment may use) is handed to the
engine's CronSchedule, so a workload takes every cron a deployment takes.
"""
from __future__ import annotations

import datetime as _dt
import zoneinfo

from ..errors import ValidationError
from ..schedules import CronSchedule, local_time

__all__ = ["Cron"]

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")
# Days a month can have (February's leap day included): a day-of-month field that
# names none of them in any month of the month field never fires.
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# How far a search for the next date goes: the longest gap between two dates a cron
# can name is February 29th's across a century year that is not a leap year (8 years).
_SEARCH = _dt.timedelta(days=366 * 9)
_MINUTE = _dt.timedelta(minutes=1)
_UTC = _dt.timezone.utc
_TICK = _dt.timedelta(microseconds=1)
# A cron croniter reads finds a first date after this, or never fires.
_REFERENCE = _dt.datetime(2000, 1, 1, tzinfo=_UTC)
# croniter's names, by field index (month, day of week) and its macros.
_WORDS = {3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
          4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _number(token: str, index: int) -> int | None:
    """A field's value as a number (digits or croniter's name); None if neither."""
    if token.isdigit():
        return int(token)
    return _WORDS.get(index, {}).get(token.lower())


def _field(text: str, index: int) -> frozenset[int]:
    lo, hi = _BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"bad step {step_text!r} in the {_NAMES[index]} field")
            step = int(step_text)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            a_text, b_text = part.split("-", 1)
            a, b = _number(a_text, index), _number(b_text, index)  # type: ignore[assignment]
            if a is None or b is None:
                raise ValueError(f"bad range {part!r} in the {_NAMES[index]} field")
        elif (single := _number(part, index)) is not None:
            a = single
            b = a if step == 1 else hi
        else:
            raise ValueError(f"bad value {part!r} in the {_NAMES[index]} field")
        if not (lo <= a <= hi and lo <= b <= hi and a <= b):
            raise ValueError(f"{part!r} is outside {lo}-{hi} in the {_NAMES[index]} field")
        values.update(range(a, b + 1, step))
    if index == 4 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


class Cron:
    """A parsed cron expression; `next_after(t)` is the first match strictly after t.
    `timezone` (an IANA name the caller checked with `valid_timezone`; None: UTC) is
    the zone whose wall clock the fields are read on."""

    __slots__ = ("text", "minutes", "hours", "days", "months", "weekdays", "_dom_star", "_dow_star", "zone",
                 "_croniter")

    def __init__(self, text: str, timezone: str | None = None) -> None:
        self.text = text
        self.zone = None if timezone is None else zoneinfo.ZoneInfo(timezone)
        self._croniter: CronSchedule | None = None
        parts = _MACROS.get(text.strip().lower(), text).split()
        try:
            if len(parts) != 5:
                raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
            self.minutes, self.hours, self.days, self.months, self.weekdays = (
                _field(p, i) for i, p in enumerate(parts)
            )
        except ValueError as own_error:
            try:
                self._croniter = CronSchedule(text, timezone)
            except ValidationError:
                raise own_error from None  # names the field, where croniter's would not
            if not self._croniter.get_dates(1, start=_REFERENCE):
                raise ValueError("never fires: croniter finds no date for it") from None
            return
        self._dom_star = parts[2] == "*"
        self._dow_star = parts[4] == "*"
        if self._dow_star and not self._dom_star and not any(
                day <= _MONTH_DAYS[month - 1] for month in self.months for day in self.days):
            # Only the day of the month decides, and no month has such a day (Feb 30):
            # refused here rather than found out while simulating.
            raise ValueError("never fires: no month of the month field has a day of the day-of-month field")

    def _day_ok(self, day: _dt.datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self._dom_star or self._dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: _dt.datetime) -> _dt.datetime | None:
        """The first matching time strictly after `t` (aware), in UTC; None if there
        is none before the end of datetime's range. O(days scanned)."""
        if self._croniter is not None:
            try:
                dates = self._croniter.get_dates(1, start=t + _TICK)
            except (OverflowError, ValueError):  # past year 9999
                return None
            return dates[0].astimezone(_UTC) if dates else None
        zone = self.zone
        if zone is None:
            return self._next_wall(t)
        try:
            wall = t.astimezone(zone).replace(tzinfo=None)
            while True:
                wall = self._next_wall(wall)   # (each turn moves on: this ends)
                if wall is None:
                    return None
                when = local_time(wall, zone, 0)  # the earlier occurrence; in a gap, moved back
                # A match read back into a gap, or the first occurrence of a repeated
                # hour, may lie at or before `t`: a date already given, as Prefect's
                # scheduler finds it by its idempotency key.
                if when > t:
                    return when.astimezone(_UTC)
        except OverflowError:   # a local time, or its UTC reading, past year 9999
            return None

    def _next_wall(self, t: _dt.datetime) -> _dt.datetime | None:
        """The next matching minute after `t` on `t`'s own clock (naive or UTC); None
        past datetime's range. At most `_SEARCH` ahead: the static check in __init__
        leaves no cron without a date in that span."""
        try:
            t = t.replace(second=0, microsecond=0) + _MINUTE
        except OverflowError:
            return None
        try:
            limit = t + _SEARCH
        except OverflowError:
            limit = _dt.datetime.max.replace(tzinfo=t.tzinfo)
        try:
            while t < limit:
                if t.month not in self.months:
                    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                    t = t.replace(year=year, month=month, day=1, hour=0, minute=0)
                    continue
                if not self._day_ok(t):
                    t = t.replace(hour=0, minute=0) + _dt.timedelta(days=1)
                    continue
                if t.hour not in self.hours:
                    t = t.replace(minute=0) + _dt.timedelta(hours=1)
                    continue
                if t.minute not in self.minutes:
                    t += _MINUTE
                    continue
                return t
        except (OverflowError, ValueError):   # stepped past year 9999
            return None
        return None
