"""A small five-field cron ("minute hour day-of-month month day-of-week"), in UTC or
read on the wall clock of an IANA timezone, with the dates of the engine's (Prefect's)
CronSchedule for the same cron, timezone and `day_or`.

A cron is taken iff Prefect's CronSchedule takes it (croniter 4): numbers, ranges
`a-b`, lists `a,b`, steps `*/n`, `a-b/n`, `a/n`, month and weekday names (JAN,
mon-fri), the macros @hourly, @daily, @midnight, @weekly, @monthly, @yearly,
@annually, and whatever else croniter reads (`L`, `#`, `?`); day-of-week runs 0-6
(Sunday 0: croniter 4 refuses 7). The values each field names are croniter's own
expansion of it, quirks included (`a/n` runs to the field's end, a day-of-week
range `a-a` is the whole week). The day fields combine as croniter combines them:
with `day_or` (Prefect's default) a day matches if its day of the month or its day
of the week does, unless either field is `*` (croniter also reads as `*` a field
naming every value when the other one's text holds a `*`), when the other alone
decides; without `day_or` a day must match both. The next date is found as croniter
finds it, field by field, so a listed day of the month past the end of February is
looked for in March, passing over its first days. In a timezone, each matching local
time is read as Prefect's CronSchedule reads croniter's (engine/schedules.py): a
local time a DST change repeats fires once, at its first occurrence, and one it
skips moves back by the gap.

These are walked here, far quicker than croniter (a date in 2-60 µs against
~120), since a simulation asks for one per scheduled run. What croniter alone walks
(`L`, `#`, a seconds or years field) is handed to the engine's CronSchedule.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import zoneinfo

from ..errors import ValidationError, shown
from ..schedules import CronSchedule, local_time

__all__ = ["Cron"]

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")
# Days a month can have (February's leap day included): a day-of-month field that
# names none of them in any month of the month field never fires.
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# How many years past a search's start croniter looks for a date (its default
# max_years_between_matches): the longest gap a cron it walks can have is February
# 29th's on one day of the week (without day_or), 40 years across a century year
# that is not a leap year.
_SEARCH_YEARS = 50
_MINUTE = _dt.timedelta(minutes=1)
_UTC = _dt.timezone.utc
_TICK = _dt.timedelta(microseconds=1)
# A cron croniter reads finds a first date after this, or never fires.
_REFERENCE = _dt.datetime(2000, 1, 1, tzinfo=_UTC)
# croniter's names, by field index (month, day of week) and its macros (which the
# messages naming a refused cron's field read).
_WORDS = {3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
          4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _number(token: str, index: int) -> int | None:
    """A field's value as a number (digits or croniter's name); None if neither."""
    if token.isdigit():
        return int(token)
    return _WORDS.get(index, {}).get(token.lower())


def _check_field(text: str, index: int) -> None:
    """Raise a ValueError naming the field if `text` is no field of the forms this
    module documents (croniter's own refusals name no field)."""
    lo, hi = _BOUNDS[index]
    for part in text.split(","):
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"bad step {shown(step_text)} in the {_NAMES[index]} field")
        if part == "*":
            continue
        if "-" in part:
            a_text, b_text = part.split("-", 1)
            a, b = _number(a_text, index), _number(b_text, index)
            if a is None or b is None:
                raise ValueError(f"bad range {shown(part)} in the {_NAMES[index]} field")
        elif (single := _number(part, index)) is not None:
            a = b = single
        else:
            raise ValueError(f"bad value {shown(part)} in the {_NAMES[index]} field")
        if not (lo <= a <= hi and lo <= b <= hi):
            raise ValueError(f"{shown(part)} is outside {lo}-{hi} in the {_NAMES[index]} field")
        if a > b and not (index == 4 and b == 0):   # (croniter reads `fri-sun` as fri-sat and sun)
            raise ValueError(f"range {shown(part)} runs backwards in the {_NAMES[index]} field")


def _refusal(text: str) -> str:
    """Why Prefect's CronSchedule refuses `text`: the field at fault where this
    module's reading finds it, else croniter's verdict."""
    parts = _MACROS.get(text.strip().lower(), text).split()
    if len(parts) != 5:
        return f"expected 5 fields (minute hour day month weekday), got {len(parts)}"
    for index, part in enumerate(parts):
        try:
            _check_field(part, index)
        except ValueError as exc:
            return str(exc)
    return "not a cron Prefect's CronSchedule takes (croniter refuses it)"


def _expand(text: str) -> tuple[list, ...] | None:
    """croniter's values for the five fields (a list, or ["*"]), as its walk uses
    them; None for what only croniter walks (L, #, a seconds or years field)."""
    from croniter import croniter

    fields, nth_weekdays = croniter.expand(text)
    if len(fields) != 5 or nth_weekdays or "l" in fields[2]:
        return None
    return tuple(fields)


class Cron:
    """A parsed cron expression; `next_after(t)` is the first match strictly after t.
    `timezone` (an IANA name the caller checked with `valid_timezone`; None: UTC) is
    the zone whose wall clock the fields are read on; `day_or` False ANDs the day
    fields. `schedule` is the engine's CronSchedule of the same three: the
    deployment schedule Prefect would store, whose dates are the ones walked here."""

    __slots__ = ("text", "minutes", "hours", "days", "months", "weekdays", "_next_day", "_first_day", "_dow_gap",
                 "_walks", "zone", "schedule", "_by_croniter")

    def __init__(self, text: str, timezone: str | None = None, day_or: bool = True) -> None:
        self.text = text
        self.zone = None if timezone is None else zoneinfo.ZoneInfo(timezone)
        try:
            self.schedule = CronSchedule(text, timezone, day_or)
        except ValidationError:
            # (A cron it refuses no deployment could hold: the simulation stores it.)
            raise ValueError(_refusal(text)) from None
        fields = _expand(text)
        # What only croniter walks is asked of the schedule itself (see next_after).
        self._by_croniter = fields is None
        if fields is None:
            if not self.schedule.get_dates(1, start=_REFERENCE):
                raise ValueError("never fires: croniter finds no date for it")
            return
        self.minutes, self.hours, self.days, self.months, self.weekdays = (
            frozenset(range(lo, hi + 1) if values == ["*"] else values) for values, (lo, hi) in zip(fields, _BOUNDS)
        )
        # The day of the month's own jump: to the first listed day at or after each day
        # (None: to the first listed day of the next month); the day of the week's.
        self._next_day = [min((d for d in self.days if d >= day), default=None) for day in range(32)]
        self._first_day = min(self.days)
        self._dow_gap = [min((w - wd) % 7 for w in self.weekdays) for wd in range(7)]
        # croniter's walks: (day of month looked at, day of week looked at). A day
        # field it reads as "*" is not looked at; with day_or and both restricted it
        # walks each alone and takes the earlier date (a union).
        dom, dow = fields[2] != ["*"], fields[4] != ["*"]
        self._walks = ((True, False), (False, True)) if day_or and dom and dow else ((dom, dow),)
        if dom and not any(day <= _MONTH_DAYS[month - 1] for month in self.months for day in self.days):
            # No month of the month field has such a day (Feb 30): croniter finds no
            # date, even where the day of the week would do (its walk of the day of
            # the month alone fails). Refused here rather than found out while simulating.
            raise ValueError("never fires: no month of the month field has a day of the day-of-month field")

    @property
    def day_or(self) -> bool:
        return self.schedule.day_or

    def next_after(self, t: _dt.datetime) -> _dt.datetime | None:
        """The first matching time strictly after `t` (aware), in UTC; None if there
        is none before the end of datetime's range. O(days scanned)."""
        if self._by_croniter:
            try:
                dates = self.schedule.get_dates(1, start=t + _TICK)
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
        """The next matching minute after `t` on `t`'s own clock (naive or UTC), the
        earlier of croniter's walks; None past datetime's range or croniter's search."""
        try:
            t = t.replace(second=0, microsecond=0) + _MINUTE
        except OverflowError:
            return None
        walks = self._walks
        if len(walks) == 1:
            return self._walk(t, *walks[0])
        found = [when for dom, dow in walks if (when := self._walk(t, dom, dow)) is not None]
        return min(found, default=None)

    def _walk(self, t: _dt.datetime, dom: bool, dow: bool) -> _dt.datetime | None:
        """The first matching minute at or after `t`, found as croniter finds it: each
        field in turn, from the month down, moves `t` on to its next value and the
        checks start over. So a day of the month past the end of a short month moves
        into the next one by the difference (from February 28th, the 31st is March
        3rd), passing over its first days: croniter's answer, which Prefect gives.
        O(days moved over); none past the 50 years croniter searches."""
        try:
            limit = t.replace(year=t.year + _SEARCH_YEARS + 1, month=1, day=1, hour=0, minute=0)
        except ValueError:   # past year 9999
            limit = _dt.datetime.max.replace(tzinfo=t.tzinfo)
        try:
            while t < limit:
                if t.month not in self.months:
                    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                    t = t.replace(year=year, month=month, day=1, hour=0, minute=0)
                    continue
                if dom and t.day not in self.days:
                    ahead = self._next_day[t.day]
                    if ahead is None:
                        ahead = self._first_day + calendar.monthrange(t.year, t.month)[1]
                    t = t.replace(hour=0, minute=0) + _dt.timedelta(days=ahead - t.day)
                    continue
                if dow and (gap := self._dow_gap[t.isoweekday() % 7]):
                    t = t.replace(hour=0, minute=0) + _dt.timedelta(days=gap)
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
