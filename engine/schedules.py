"""Schedules: IntervalSchedule, CronSchedule and RRuleSchedule with Prefect 3.1.0's
validation and date generation (server/schemas/schedules.py), and the parsing of
Prefect's JSON shapes for them.

Dates come out as aware datetimes in the schedule's timezone (zoneinfo), computed
step by step as Prefect's pendulum code computes them, DST included:

* an interval schedule jumps from its anchor to the start by whole intervals
  (counted in elapsed seconds), then steps: an interval under a day adds elapsed
  seconds; one of a day or more adds its days on the local calendar (then its
  remaining seconds, also on the wall clock), a repeated local time meaning its
  later occurrence and a skipped one moving forward by the gap;
* a cron schedule asks croniter for the next wall-clock times after the start's
  local time, and reads each in the timezone as its earlier occurrence (a
  skipped time moves back by the gap);
* an rrule schedule is expanded by dateutil.rrule with its DTSTART (2020-01-01 if
  none) localised to the timezone by dateutil.tz; each rule of it is first cut to
  the stretch around the start and end that can hold the dates asked for (_near),
  so a minutely rule does not walk every minute since 2020.

In all three, two datetimes of one timezone are compared by their wall-clock
readings (Python's rule for a shared tzinfo, which pendulum keeps), so a local time
repeated at a DST change counts as already seen. At most 1,000 candidates are
checked per call.
"""
from __future__ import annotations

import datetime as _dt
import functools
import math
import zoneinfo
from collections.abc import Mapping
from typing import Any, Iterator, Union

import attrs

from .errors import ValidationError, shown
from .timetext import TimeTextError, parse_time_text
from .validation import DURATION_TYPES, as_bool, as_int, as_str, as_timedelta

__all__ = [
    "IntervalSchedule", "CronSchedule", "RRuleSchedule", "Schedule", "SCHEDULE_TYPES", "as_schedule",
    "MAX_ITERATIONS", "MAX_RRULE_LENGTH", "valid_timezone", "local_time",
]

MAX_ITERATIONS = 1000  # candidates checked per date generation (Prefect's limit)
MAX_RRULE_LENGTH = 6500  # characters of an rrule string (Prefect's limit)
_DEFAULT_RRULE_START = _dt.date(2020, 1, 1)  # DTSTART of an rrule that gives none
_ZERO = _dt.timedelta(0)


@functools.lru_cache(maxsize=None)
def _valid_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_timezone(name: str) -> bool:
    """Whether `name` is an IANA zone of the installed tz database (the names
    schedules accept)."""
    return name in _valid_zones()


def _zone(name: str) -> zoneinfo.ZoneInfo:
    # ZoneInfo caches per key: every datetime of one zone shares one tzinfo object,
    # which is what makes their comparisons wall-clock ones (as in pendulum).
    return zoneinfo.ZoneInfo(name)


def _check_zone(value: Any, field: str, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or value not in _valid_zones():
        raise ValidationError(
            f"{field}: invalid timezone {shown(value)} (specify it in IANA tzdata format, for example America/New_York)"
        )
    return value


# pendulum's arithmetic, on zoneinfo datetimes -----------------------------------------------

def local_time(naive: _dt.datetime, tz: _dt.tzinfo, fold: int) -> _dt.datetime:
    """A wall-clock reading in `tz`, as pendulum's DateTime.create makes it: a
    skipped time moves by the gap (forward for fold=1, back for fold=0), a repeated
    one keeps `fold`."""
    before = tz.utcoffset(naive.replace(fold=0))
    after = tz.utcoffset(naive.replace(fold=1))
    if after > before:  # in a gap (a fixed offset has none)
        naive = naive + ((after - before) if fold else (before - after))
    return naive.replace(tzinfo=tz, fold=fold)


def _instance(value: _dt.datetime) -> _dt.datetime:
    """pendulum.instance: naive means UTC; a zoneinfo zone is re-read from the wall
    clock (keeping fold); a UTC tzinfo becomes the UTC zone; any other is a fixed offset."""
    tz = value.tzinfo
    naive = value.replace(tzinfo=None)
    if tz is None:
        return naive.replace(tzinfo=_zone("UTC"))
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return local_time(naive, _zone(key), value.fold)
    if tz.tzname(None) == "UTC":
        return naive.replace(tzinfo=_zone("UTC"))
    offset = tz.utcoffset(value) or _ZERO
    return naive.replace(tzinfo=_dt.timezone(offset))


def _in_tz(value: _dt.datetime, name: str) -> _dt.datetime:
    return value.astimezone(_zone(name))


def _add(value: _dt.datetime, days: float = 0, seconds: float = 0) -> _dt.datetime:
    """pendulum's DateTime.add(days=, seconds=): with days, on the wall clock (then
    read with fold=1); without, in UTC. (pendulum first spreads the seconds over
    minutes, hours and days; the sum is the same timedelta.)"""
    tz = value.tzinfo
    if days:
        return local_time(value.replace(tzinfo=None, fold=0) + _dt.timedelta(days=days, seconds=seconds), tz, 1)
    return (value.astimezone(_dt.timezone.utc) + _dt.timedelta(seconds=seconds)).astimezone(tz)


def _elapsed_seconds(later: _dt.datetime, earlier: _dt.datetime) -> float:
    # pendulum's difference of two datetimes: UTC instants, whatever their tzinfo (two
    # datetimes sharing one tzinfo would subtract by wall clock).
    utc = _dt.timezone.utc
    return (later.astimezone(utc) - earlier.astimezone(utc)).total_seconds()


def _bounds(start: _dt.datetime, end: _dt.datetime | None, tz: str) -> tuple[_dt.datetime, _dt.datetime | None]:
    start = _in_tz(_instance(start), tz)
    if end is not None:
        end = _in_tz(_instance(end), tz)
    return start, end


# parsing helpers ---------------------------------------------------------------------------

def _as_datetime(value: Any, field: str) -> _dt.datetime:
    if isinstance(value, str):
        try:
            value = parse_time_text(value)
        except TimeTextError as exc:
            raise ValidationError(f"{field}: not an ISO 8601 datetime: {shown(value)}{exc.hint}") from None
    if not isinstance(value, _dt.datetime):
        raise ValidationError(f"{field} must be a datetime or ISO 8601 text, got {type(value).__name__} {shown(value)}")
    return value


def _as_interval(value: Any) -> _dt.timedelta:
    if isinstance(value, bool) or not isinstance(value, DURATION_TYPES):
        raise ValidationError(f"interval must be a timedelta, a number of seconds or duration text, got "
                              f"{type(value).__name__} {shown(value)}")
    # (NaN, infinity, what a timedelta cannot hold and text pydantic would not read are refused)
    value = as_timedelta(value, "interval")
    if value <= _ZERO:
        raise ValidationError(f"interval must be greater than 0 seconds, got {value.total_seconds()}")
    return value


def _iso(value: _dt.datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# the schedule types --------------------------------------------------------------------------

def _anchor_zone(anchor: _dt.datetime | None) -> str:
    # A timezone inferred from the anchor: its zone's name when it has one, else UTC
    # (a fixed offset, such as one parsed from ISO text, names no zone).
    if anchor is None:
        return "UTC"
    key = getattr(anchor.tzinfo, "key", None)
    return key if isinstance(key, str) and key in _valid_zones() else "UTC"


class _Schedule:
    """What the three schedule types share: `get_dates` over their own `_dates`."""

    __slots__ = ()

    def get_dates(self, n: int | None = None, start: Any = None, end: Any = None) -> list[_dt.datetime]:
        """Up to `n` dates (1 by default; up to 1,000 with an `end`) at or after
        `start`, none after `end`, sorted. O(n) (at most 1,000 candidates)."""
        return sorted(_dates(self, n, start, end))

    def anchored(self, now: _dt.datetime) -> "_Schedule":
        """The schedule as stored at `now`: itself (an interval without an anchor
        takes `now`)."""
        return self


@attrs.frozen(slots=True, init=False)
class IntervalSchedule(_Schedule):
    """Every `interval` from `anchor_date`. An interval of a day or more keeps the
    local clock time across DST changes (in `timezone`); a shorter one steps in
    elapsed time. `anchor_date` None means "the engine's now when stored" (Prefect:
    now at construction); a naive anchor is UTC. Without a `timezone`, the anchor's
    zone name is used, else UTC."""

    interval: _dt.timedelta
    anchor_date: _dt.datetime | None
    timezone: str

    def __init__(self, interval: Any, anchor_date: Any = None, timezone: Any = None) -> None:
        interval = _as_interval(interval)
        if anchor_date is not None:
            anchor_date = _as_datetime(anchor_date, "anchor_date")
            anchor_date = _instance(anchor_date)  # naive: UTC; a skipped local time moves on
        timezone = _check_zone(timezone, "timezone", True) or _anchor_zone(anchor_date)
        self.__attrs_init__(interval, anchor_date, timezone)

    def anchored(self, now: _dt.datetime) -> "IntervalSchedule":
        """This schedule with `now` as its anchor when it has none."""
        if self.anchor_date is not None:
            return self
        return IntervalSchedule(self.interval, now, self.timezone)

    def to_json(self) -> dict:
        return {"interval": self.interval.total_seconds(),
                "anchor_date": None if self.anchor_date is None else _iso(self.anchor_date),
                "timezone": self.timezone}

    def _dates(self, n: int, start: _dt.datetime, end: _dt.datetime | None) -> Iterator[_dt.datetime]:
        if self.anchor_date is None:
            raise ValidationError("an IntervalSchedule without an anchor_date has no dates until it is stored")
        anchor = _in_tz(self.anchor_date, self.timezone)   # (__init__ made it an instance)
        start, end = _bounds(start, end, self.timezone)
        step = self.interval.total_seconds()
        jumps = int(_elapsed_seconds(start, anchor) / step)
        current = _add(anchor, seconds=step * jumps)
        days = self.interval.days
        seconds = step - days * 86400
        while current < start:  # (DST can leave the jump short)
            current = _add(current, days, seconds)
        return _first_distinct(_stepping(current, days, seconds), n, end)


def _check_cron(value: Any) -> str:
    from croniter import croniter

    value = as_str(value, "cron", False)
    if not croniter.is_valid(value):
        raise ValidationError(f"cron: invalid cron string {shown(value)}")
    if any(part.casefold() in ("r", "h") for part in value.split()):
        raise ValidationError(f"cron: random and hashed expressions are unsupported, got {shown(value)}")
    return value


@attrs.frozen(slots=True, init=False)
class CronSchedule(_Schedule):
    """The times a cron string names, read in `timezone` (UTC if None): each new
    local time that matches, so an hourly schedule skips the hour a DST change
    drops and fires once in the hour it repeats. `day_or` False ANDs the
    day-of-month and day-of-week fields (croniter's day_or)."""

    cron: str
    timezone: str | None
    day_or: bool

    def __init__(self, cron: Any, timezone: Any = None, day_or: Any = True) -> None:
        self.__attrs_init__(_check_cron(cron), _check_zone(timezone, "timezone", True), as_bool(day_or, "day_or"))

    def to_json(self) -> dict:
        return {"cron": self.cron, "timezone": self.timezone, "day_or": self.day_or}

    def _dates(self, n: int, start: _dt.datetime, end: _dt.datetime | None) -> Iterator[_dt.datetime]:
        from croniter import croniter

        zone = self.timezone or "UTC"
        start, end = _bounds(start, end, zone)
        start = _add(start, seconds=-1)  # so that a start on the schedule is a date
        if start.microsecond:
            start = _add(start, seconds=1.0)
        tz = _zone(zone)
        # croniter walks the naive local clock; each time it names is read in the
        # zone as its earlier occurrence (a skipped time moves back by the gap).
        times = croniter(self.cron, start.replace(tzinfo=None, fold=0), day_or=self.day_or)
        return _first_distinct((local_time(when, tz, 0) for when in _cron_times(times)), n, end)


def _cron_times(times: Any) -> Iterator[_dt.datetime]:
    """croniter's next times, until it finds no more (a date that never comes, `0 0
    30 2 *`). Prefect's get_dates raises croniter's CroniterBadDateError there; a
    schedule with no more dates simply ends here."""
    from croniter import CroniterBadDateError

    while True:
        try:
            yield times.get_next(_dt.datetime)
        except CroniterBadDateError:
            return


def _parse_rrule(text: str, dtstart: Any = None) -> Any:
    import dateutil.rrule

    if dtstart is None:
        return dateutil.rrule.rrulestr(text, cache=True)
    return dateutil.rrule.rrulestr(text, dtstart=dtstart, cache=True)


def _check_rrule(value: Any) -> str:
    value = as_str(value, "rrule", False)
    try:
        _parse_rrule(value)
    except (ValueError, TypeError) as exc:  # dateutil's own messages
        raise ValidationError(f"rrule: invalid RRule string {shown(value)}: {exc}") from None
    if len(value) > MAX_RRULE_LENGTH:
        raise ValidationError(f"rrule: at most {MAX_RRULE_LENGTH} characters, got {len(value)}")
    return value


def _rule_zone(name: str) -> Any:
    import dateutil.tz

    return dateutil.tz.gettz(name)


def _localised(rule: Any, tz: Any) -> Any:
    """An rrule with its DTSTART and UNTIL read in `tz`."""
    changes = {"dtstart": rule._dtstart.replace(tzinfo=tz)}
    if rule._until:
        changes["until"] = rule._until.replace(tzinfo=tz)
    return rule.replace(**changes)


@attrs.frozen(slots=True, init=False)
class RRuleSchedule(_Schedule):
    """An iCalendar recurrence rule (RRULE, or an RRULE/EXRULE/RDATE/EXDATE set),
    expanded by dateutil.rrule with its DTSTART (2020-01-01 when it has none)
    localised to `timezone`, so a daily 9am rule keeps 9am local across DST."""

    rrule: str
    timezone: str

    def __init__(self, rrule: Any, timezone: Any = "UTC") -> None:
        self.__attrs_init__(_check_rrule(rrule), _check_zone(timezone, "timezone", False))

    def to_json(self) -> dict:
        return {"rrule": self.rrule, "timezone": self.timezone}

    def to_rrule(self) -> Any:
        """The dateutil rrule (or rruleset), localised to the timezone."""
        import dateutil.rrule

        rule = _parse_rrule(self.rrule, _DEFAULT_RRULE_START)
        tz = _rule_zone(self.timezone)
        if isinstance(rule, dateutil.rrule.rrule):
            return _localised(rule, tz)
        rule._rrule = [_localised(r, tz) for r in rule._rrule]
        rule._exrule = [_localised(r, tz) for r in rule._exrule]
        rule._rdate = [d.replace(tzinfo=tz) for d in rule._rdate]
        rule._exdate = [d.replace(tzinfo=tz) for d in rule._exdate]
        return rule

    def _dates(self, n: int, start: _dt.datetime, end: _dt.datetime | None) -> Iterator[_dt.datetime]:
        # Prefect stores rules dateutil then fails to expand (or, with INTERVAL=0,
        # expands for ever); here expanding one is a ValidationError naming it.
        start, end = _bounds(start, end, self.timezone)
        try:
            rule = self.to_rrule()
        except ValueError as exc:
            raise self._unexpandable(exc) from None
        rules = getattr(rule, "_rrule", [rule]) + getattr(rule, "_exrule", [])
        if any(r._interval < 1 for r in rules):
            raise self._unexpandable("its INTERVAL must be a positive integer")
        near = _near(rule, start, end, self._zones())
        if near is None:  # (a rule no date of which ever comes)
            return iter(())
        return _first_distinct(self._occurrences(near, start), n, end)

    def _occurrences(self, rule: Any, start: _dt.datetime) -> Iterator[_dt.datetime]:
        try:
            for o in rule.xafter(start, count=None, inc=True):
                yield _in_tz(_instance(o), self.timezone)
        except ValueError as exc:
            if _past_the_last_year(exc):
                raise  # the dates end there (_before_year_10000)
            raise self._unexpandable(exc) from None

    def _zones(self) -> tuple:
        return (_rule_zone(self.timezone), _zone(self.timezone))

    def _unexpandable(self, why: Any) -> ValidationError:
        return ValidationError(f"rrule {shown(self.rrule)} has no dates dateutil can expand: {why}")


# Rules no date of which ever comes, which dateutil walks to year 9999 to find that out
# (with or without an UNTIL, which it checks only against dates it gives). A sub-daily
# grid whose INTERVAL is 7k units comes back to a time of day only every 7k days, so
# always on the same weekday, and BYDAY may name others (103 s for a secondly rule);
# BYMONTHDAY may name days none of the BYMONTH months has (30 February: 3 to 6 s).
_PERIOD_SECONDS = {2: 7 * 86400, 3: 86400, 4: 3600, 5: 60, 6: 1}  # dateutil's WEEKLY .. SECONDLY
_HOURLY = 4  # dateutil's HOURLY: it and the finer frequencies step within a day
_LONGEST_MONTHS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _never_fires(rule: Any) -> bool:
    """Whether `rule` never gives a date because its BYMONTHDAY days are in none of its
    BYMONTH months, or because it is a sub-daily rule whose grid reaches times its BY*
    parts allow but never on a weekday its BYDAY allows. (A sub-daily grid that
    reaches no allowed time on any day is left to dateutil, which refuses it.) The
    other BY* parts only remove dates, so such a rule is silent whatever they say.
    O(BYMONTH + BYMONTHDAY values), plus, for a sub-daily rule either test may find
    silent, O(min(w / g, g · v)): w units a week, g = gcd(INTERVAL, w), v values of
    its BY* parts."""
    unit = _PERIOD_SECONDS[rule._freq] if rule._freq >= _HOURLY else None
    days_missing = _no_month_has_its_days(rule)
    weekday_bound = unit is not None and rule._interval % 7 == 0 and bool(rule._byweekday)
    if not days_missing and not weekday_bound:
        return False
    if unit is None:
        return days_missing
    reached = _weekdays_reached(rule, unit)
    return bool(reached) and (days_missing or reached.isdisjoint(rule._byweekday))


def _no_month_has_its_days(rule: Any) -> bool:
    """Whether BYMONTHDAY (from the start or the end of a month) names only days that
    none of the BYMONTH months has, in any year (30 and 31 February, 31 April)."""
    months, from_start, from_end = rule._bymonth, rule._bymonthday, rule._bynmonthday
    if not months or not (from_start or from_end):
        return False
    longest = max(_LONGEST_MONTHS[month - 1] for month in months)
    return all(abs(day) > longest for day in (*from_start, *from_end))


def _weekdays_reached(rule: Any, unit: int) -> set[int]:
    """The weekdays (0 Monday) on which the grid of a sub-daily `rule` (`unit` seconds
    a step) reaches a time of day its BYHOUR/BYMINUTE/BYSECOND allow (those that
    filter at its frequency). Counting in units from Monday 00:00, the grid's places
    in a week are those congruent to its DTSTART's modulo g = gcd(INTERVAL, units a
    week): either walk them (w / g places) or find the residues the allowed times of
    day have and, for each weekday, whether the grid's is among them."""
    per_week = _PERIOD_SECONDS[2] // unit  # (2: WEEKLY)
    per_day = 86400 // unit
    g = math.gcd(rule._interval, per_week)
    begin = rule._dtstart  # (dateutil steps on the wall clock)
    here = (begin.weekday() * 86400 + begin.hour * 3600 + begin.minute * 60 + begin.second) // unit % g
    parts = [(rule._byhour, 3600 // unit, 24)]
    if unit <= 60:
        parts.append((rule._byminute, 60 // unit, 60))
    if unit == 1:
        parts.append((rule._bysecond, 1, 60))
    parts = [(range(size) if values is None else values, weight, size) for values, weight, size in parts]
    if per_week // g <= g * sum(len(values) for values, _, _ in parts):
        return {place // per_day for place in range(here, per_week, g)
                if all(place // weight % size in values for values, weight, size in parts)}
    residues = {0}
    for values, weight, _ in parts:
        residues = {(r + v * weight) % g for r in residues for v in values}
    return {day for day in range(7) if (here - day * per_day) % g in residues}


# dateutil expands a rule from its DTSTART on (2020 when it gives none), so a minutely
# rule walks millions of minutes to reach today, and a set whose exclusions remove
# every date walks to year 9999. Each rule is cut to the stretch that can matter.
_WINDOW_HOURS = 26  # more than any UTC offset a zone has had (Manila's LMT was -15:56, Sitka's +14:58)


def _near(rule: Any, start: _dt.datetime, end: _dt.datetime | None, zones: tuple) -> Any | None:
    """`rule` (an rrule or rruleset) with the same dates from `start` to `end`, but
    cheap to expand there; None for a rule that never gives a date (_never_fires),
    and a set leaves such rules out. A rule without COUNT whose frequency is weekly
    or finer starts one period before the last of its periods that can hold a date
    at or after `start` (whole periods keep its grid, and the BY* parts dateutil
    takes from DTSTART: weekday, hour, minute, second), and ends (UNTIL) at the last
    wall-clock reading a date not past `end` can have (an exclusion past there
    cannot matter: every date it could remove is past `end`).
    `zones` are the schedule's zone as dateutil and zoneinfo read it: dateutil's
    offsets decide what is at or after `start` (by instant), zoneinfo's what is past
    `end` (by wall clock), and the two differ: before 1901 and past 2037, and where
    dateutil reads a zone's winter time as a negative DST (Dublin)."""
    lowest = _wall_bound(start, zones, latest=False)
    highest = None if end is None else _wall_bound(end, zones, latest=True)
    if not hasattr(rule, "_rrule"):
        return None if _never_fires(rule) else _cut(rule, lowest, highest)
    rule._rrule = [_cut(r, lowest, highest) for r in rule._rrule if not _never_fires(r)]
    rule._exrule = [_cut(r, lowest, highest) for r in rule._exrule if not _never_fires(r)]
    return rule


def _wall_bound(instant: _dt.datetime, zones: tuple, latest: bool) -> _dt.datetime | None:
    """A naive wall-clock time at or below every dateutil reading of an instant at or
    after `instant` (latest=False), or at or above every dateutil wall whose
    zoneinfo reading is, by wall clock, at or before that of `instant` (latest=True:
    that is how `end` is compared, both readings sharing one tzinfo); None near the
    ends of datetime's range.

    A reading w of instant i has w = i + offset(w), so only the offsets of the
    readings within _WINDOW_HOURS of `instant` matter, and a zone keeps an offset for
    hours, so hourly samples of both folds of both zones find them. The earliest
    reading is i + the least offset. For the latest: end's own zoneinfo wall is at
    most i + the greatest offset, and a date's dateutil wall exceeds its zoneinfo
    wall by at most the greatest offset less the least (Dublin's 02:00 on the day
    its clocks go back is 01:00 UTC to dateutil, which is 01:00 to zoneinfo)."""
    try:
        utc = instant.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    except OverflowError:
        return None
    offsets = []
    for hours in range(-_WINDOW_HOURS, _WINDOW_HOURS + 1):
        try:
            wall = utc + _dt.timedelta(hours=hours)
        except OverflowError:
            continue  # (no reading lies past datetime's range)
        offsets += [wall.replace(tzinfo=tz, fold=fold).utcoffset() for tz in zones for fold in (0, 1)]
    least, greatest = min(offsets), max(offsets)
    try:
        return utc + (2 * greatest - least if latest else least)
    except OverflowError:
        return None


def _cut(rule: Any, lowest: _dt.datetime | None, highest: _dt.datetime | None) -> Any:
    if rule._count is not None:
        return rule
    changes = {}
    step = _PERIOD_SECONDS.get(rule._freq)
    if step is not None and lowest is not None:
        begin = rule._dtstart.replace(tzinfo=None)
        periods = int((lowest - begin).total_seconds() // (step * rule._interval)) - 1
        if periods > 0:
            moved = begin + _dt.timedelta(seconds=periods * step * rule._interval)
            changes["dtstart"] = moved.replace(tzinfo=rule._dtstart.tzinfo)
    if highest is not None and (rule._until is None or rule._until.replace(tzinfo=None) > highest):
        changes["until"] = highest.replace(tzinfo=rule._dtstart.tzinfo)
    return rule.replace(**changes) if changes else rule


def _stepping(current: _dt.datetime, days: int, seconds: float) -> Iterator[_dt.datetime]:
    while True:
        yield current
        current = _add(current, days, seconds)


def _first_distinct(candidates: Iterator[_dt.datetime], n: int, end: _dt.datetime | None) -> Iterator[_dt.datetime]:
    """The candidates in order, each once (a local time a DST change repeats counts
    once), until `n` were given, one lies after `end`, or MAX_ITERATIONS + 1
    candidates past the first were looked at (Prefect's bound)."""
    seen: set = set()
    for tries, current in enumerate(candidates):
        if end is not None and current > end:
            return
        if current not in seen:
            seen.add(current)
            yield current
        if len(seen) >= n or tries > MAX_ITERATIONS:
            return


Schedule = Union[IntervalSchedule, CronSchedule, RRuleSchedule]
SCHEDULE_TYPES = (IntervalSchedule, CronSchedule, RRuleSchedule)


def _dates(schedule: Any, n: Any, start: Any, end: Any) -> Iterator[_dt.datetime]:
    if start is None:
        raise ValidationError("get_dates needs a start (the engine passes its now)")
    start = _as_datetime(start, "start")
    if end is not None:
        end = _as_datetime(end, "end")
    if n is None:
        n = MAX_ITERATIONS if end is not None else 1
    else:
        n = as_int(n, "n")
    return _before_year_10000(schedule, n, start, end)


def _before_year_10000(schedule: Any, n: int, start: _dt.datetime, end: _dt.datetime | None) -> Iterator[_dt.datetime]:
    # A schedule's dates end where datetime's range does: stepping past year 9999
    # (an anchor or start near it, a huge interval) means no more dates, not an error.
    # Our arithmetic overflows there; croniter and dateutil build a datetime of year
    # 10000, which datetime refuses with a ValueError.
    try:
        yield from schedule._dates(n, start, end)
    except OverflowError:
        return
    except ValueError as exc:
        if not _past_the_last_year(exc):
            raise
        return


def _past_the_last_year(exc: ValueError) -> bool:
    # datetime's own message for a year past 9999: "year 10000 is out of range".
    return str(exc).startswith("year ") and str(exc).endswith(" is out of range")


_KEYS = {
    "interval": (IntervalSchedule, ("interval", "anchor_date", "timezone")),
    "cron": (CronSchedule, ("cron", "timezone", "day_or")),
    "rrule": (RRuleSchedule, ("rrule", "timezone")),
}


def as_schedule(value: Any, field: str = "schedule") -> Schedule:
    """A schedule object from itself or Prefect's JSON shape ({"interval": seconds,
    "anchor_date", "timezone"}, {"cron", "timezone", "day_or"}, {"rrule",
    "timezone"}). ValidationError names `field` and what is wrong. O(1), plus
    parsing the cron or rrule text."""
    if isinstance(value, SCHEDULE_TYPES):
        return value
    dump = getattr(value, "model_dump", None)  # a Prefect schedule object
    if callable(dump) and not isinstance(value, Mapping):
        value = dump()
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{field} must be an IntervalSchedule, CronSchedule, RRuleSchedule or its JSON object, "
            f"got {type(value).__name__} {shown(value)}"
        )
    kinds = [k for k in _KEYS if k in value]
    if len(kinds) != 1:
        raise ValidationError(
            f"{field} must have exactly one of the keys 'interval', 'cron', 'rrule', got {sorted(value)}"
        )
    cls, allowed = _KEYS[kinds[0]]
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ValidationError(f"{field}.{unknown[0]}: unknown key for {cls.__name__} (allowed: {', '.join(allowed)})")
    try:
        return cls(**value)
    except ValidationError as exc:
        raise ValidationError(f"{field}.{exc}") from None
