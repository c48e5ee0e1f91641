"""A time or a duration a user or client wrote as text, read as Prefect 3.1.0 reads it.

(Durations: `parse_duration_text`, pydantic's timedelta grammar, at the end of the module.)

Prefect validates such a field with pydantic's datetime first and, for text pydantic
refuses, with pendulum 3.0's parser: its ISO 8601 reader, then its "common" form.
`parse_time_text` reads the union of the three grammars (numbers, which pydantic reads
as unix times, are validation.as_datetime's business):

    pydantic  YYYY-MM-DD [(T|t|_|space) HH:MM[:SS[(.|,)F…]] [Z | z | (+|-|U+2212)HH[:]MM]]
    ISO       date: YYYY-MM | YYYY-MM-DD | YYYY-DDD | YYYY-Www[-D]     (extended)
                  | YYYYMMDD | YYYYDDD | YYYYWww[D]                    (basic)
              then (T|space) HH, with :MM[:SS[(.|,)F…]] after an extended date or
              MM[SS[(.|,)F…]] after a basic one (HH:MM after either), then
              Z | (+|-)HH[[:]MM] | (+|-)HH:
    common    YYYY[[/|:]MM[/|:]DD] [[space] H[H]:M[M][:S[S]][(.|,||)F…]], digits of any
              script, one final newline allowed

Fractions keep their first six digits. Pendulum reads week 00 and weekday 0 by
counting back from ISO week 1 (2024-W00-1 is 2023-12-25), and so does this.

Where Prefect's reading is an accident, this one is not (README, "Differences from
Prefect"): a time without a date, which Prefect puts on the server's current local
date dropping any offset, and "now", the server's wall clock, are refused with a hint;
so is an offset of a whole day or more, which Prefect accepts into a value that fails
when used. Pendulum 3.0 refuses an ordinal or week date that falls on a month's last
day (2024-W05-3, 2024-366); this reads them.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import re

__all__ = ["TimeTextError", "parse_duration_text", "parse_time_text", "round_half_up"]

_DAY = _dt.timedelta(days=1)


class TimeTextError(ValueError):
    """Text that is not a time Prefect reads; `hint` (possibly empty) says why when
    the text looks like one."""

    def __init__(self, text: str, hint: str = "") -> None:
        super().__init__(f"not a datetime: {text!r}{hint}")
        self.hint = hint


_PYDANTIC = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)"
    r"(?:[Tt_ ](?P<h>\d\d):(?P<mi>\d\d)(?::(?P<s>\d\d)(?:[.,](?P<f>\d+))?)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+\-\u2212])(?P<oh>\d\d):?(?P<om>\d\d))?)?\Z",
    re.ASCII,
)
_ISO = re.compile(
    r"(?P<y>\d{4})(?:"
    r"(?P<ext>-)(?:W(?P<w>\d\d)(?:-(?P<wd>\d))?|(?P<m>\d\d)(?:-(?P<d>\d\d)|(?P<o1>\d))?)"
    r"|W(?P<bw>\d\d)(?P<bwd>\d)?|(?P<bm>\d\d)(?P<bd>\d\d)|(?P<o3>\d{3}))"
    r"(?:[T ](?P<h>\d\d)(?:"
    r":(?P<xmi>\d\d)(?::(?P<xs>\d\d)(?:[.,](?P<xf>\d+))?)?"
    r"|(?P<bmi>\d\d)(?:(?P<bs>\d\d)(?:[.,](?P<bf>\d+))?)?)?"
    r"(?:(?P<z>Z)|(?P<sign>[+-])(?P<oh>\d\d)(?::?(?P<om>\d\d)|:)?)?)?\Z",
    re.ASCII,
)
# (no re.ASCII: pendulum's "common" pattern takes digits of any script)
_COMMON = re.compile(
    r"(?P<y>\d{4})(?:[/:]?(?P<m>\d{2})[/:]?(?P<d>\d{2}))?"
    r"(?: ?(?P<h>\d{1,2}):(?P<mi>\d{1,2})(?::(?P<s>\d{1,2}))?(?:[.|,](?P<f>\d{1,9}))?)?\n?\Z"
)


def _micro(fraction: str | None) -> int:
    return 0 if fraction is None else int(fraction[:6].ljust(6, "0"))


def _week_date(year: int, week: int, weekday: int) -> _dt.date:
    # Pendulum's arithmetic: from the Monday of ISO week 1, so week 0 and weekday 0
    # count back; a week past the year's last (53 only in long years) is refused.
    if week > 52 and _dt.date(year, 12, 28).isocalendar()[1] < week:
        raise ValueError(f"week {week} out of range for {year}")
    if weekday > 7:
        raise ValueError(f"weekday {weekday} out of range")
    try:
        return _dt.date.fromisocalendar(year, 1, 1) + _dt.timedelta(weeks=week - 1, days=weekday - 1)
    except (OverflowError, ValueError):  # before year 1 or past 9999
        raise ValueError("week date out of range") from None


def _ordinal_date(year: int, day: int) -> _dt.date:
    if not 1 <= day <= 365 + calendar.isleap(year):
        raise ValueError(f"day {day} out of range for {year}")
    return _dt.date(year, 1, 1) + _dt.timedelta(days=day - 1)


def _offset(sign: str | None, hours: str | None, minutes: str | None, zulu: bool,
            minutes_past_59: bool = False) -> _dt.tzinfo | None:
    if zulu:
        return _dt.timezone.utc
    if sign is None:
        return None
    # (pendulum adds minutes past 59 to the hours: +01:70 is 2h10m; pydantic refuses them)
    whole = _dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
    if whole >= _DAY or (int(minutes or 0) > 59 and not minutes_past_59):
        raise ValueError("offset out of range")
    return _dt.timezone(whole if sign == "+" else -whole)


def _from_pydantic(m: re.Match) -> _dt.datetime:
    g = m.group
    day = _dt.date(int(g("y")), int(g("m")), int(g("d")))
    if g("h") is None:
        return _dt.datetime(day.year, day.month, day.day)
    zone = _offset(g("sign"), g("oh"), g("om"), g("z") is not None)
    return _dt.datetime(day.year, day.month, day.day, int(g("h")), int(g("mi")), int(g("s") or 0),
                        _micro(g("f")), zone)


def _from_iso(m: re.Match) -> _dt.datetime:
    g = m.group
    year = int(g("y"))
    extended = g("ext") is not None
    if g("w") is not None or g("bw") is not None:
        week, weekday = (g("w"), g("wd")) if extended else (g("bw"), g("bwd"))
        day = _week_date(year, int(week), 1 if weekday is None else int(weekday))
    elif g("o1") is not None or g("o3") is not None:
        day = _ordinal_date(year, int(g("m") + g("o1")) if extended else int(g("o3")))
    elif extended:
        day = _dt.date(year, int(g("m")), int(g("d") or 1))
    else:
        day = _dt.date(year, int(g("bm")), int(g("bd")))
    if g("h") is None:
        return _dt.datetime(day.year, day.month, day.day)
    if (extended and g("bmi") is not None) or (not extended and g("xs") is not None):
        raise ValueError("extended and basic formats mixed")  # (basic date + HH:MM is fine)
    if g("xmi") is not None:
        minute, second, fraction = g("xmi"), g("xs"), g("xf")
    else:
        minute, second, fraction = g("bmi"), g("bs"), g("bf")
    zone = _offset(g("sign"), g("oh"), g("om"), g("z") is not None, minutes_past_59=True)
    return _dt.datetime(day.year, day.month, day.day, int(g("h")), int(minute or 0), int(second or 0),
                        _micro(fraction), zone)


def _from_common(m: re.Match) -> _dt.datetime:
    g = m.group
    if g("m") is None:
        day = _dt.date(int(g("y")), 1, 1)
    else:
        day = _dt.date(int(g("y")), int(g("m")), int(g("d")))
    if g("h") is None:
        return _dt.datetime(day.year, day.month, day.day)
    return _dt.datetime(day.year, day.month, day.day, int(g("h")), int(g("mi")), int(g("s") or 0), _micro(g("f")))


_READERS = ((_PYDANTIC, _from_pydantic), (_ISO, _from_iso), (_COMMON, _from_common))


def _read(text: str) -> _dt.datetime | None:
    for pattern, build in _READERS:
        match = pattern.match(text)
        if match is not None:
            try:
                return build(match)
            except ValueError:
                continue  # (a later grammar may still read it, as Prefect tries them in turn)
    return None


def _hint(text: str) -> str:
    if text == "now":
        return ("; Prefect 3.1.0 reads 'now' as the server's wall clock: give a time (the engine's is "
                "engine.now())")
    # A time of day alone (10:10, T1010): what a date in front (extended or basic, as
    # the time's format needs) would make readable.
    separator = "" if text[:1] == "T" else " "
    if any(_read(day + separator + text) is not None for day in ("2000-01-01", "20000101")):
        return ("; it has no date (Prefect 3.1.0 puts such a time on the server's current local date, "
                "dropping any offset): give the date too")
    return ""


# What isoformat() writes, which every grammar above reads alike: read natively
# (about 40 times faster), anything else by the grammars.
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?(?:[+-]\d\d:\d\d)?\Z", re.ASCII)


def parse_time_text(text: str) -> _dt.datetime:
    """`text` read as Prefect's DateTime fields read text (the module's grammar):
    aware where it gives an offset, naive otherwise. TimeTextError (a ValueError) if
    it is not a time. O(len(text))."""
    if _CANONICAL.match(text):
        try:
            return _dt.datetime.fromisoformat(text)
        except ValueError:
            pass  # (hour 24, second 60, an offset of a day or more: the grammars decide)
    value = _read(text)
    if value is None:
        raise TimeTextError(text, _hint(text))
    return value


# Durations, as pydantic's timedelta reads text --------------------------------------------
#
#   [+|-] P (T | N[(.|,)F…]U)…     ISO 8601: Y = 365 days, M = 30 days, W, D; after T: H, M, S;
#                                  units in any order, repeated; a fraction only on the last
#   [+|-] N[ ]d[ay[s]][,][ ][HH:MM[:SS[(.|,)F{1,6}]][Z | (+|-)HH[:]MM]]   (any d or D in the
#                                  text, or fewer than 5 bytes, chooses this form; the zone
#                                  is read and ignored)
#   [+|-] [H…]:MM[:SS[(.|,)F…]]    hours without limit (to 2.4 billion), fraction cut at 6
#
# The sign negates the whole. Each quantity, and the days and the seconds after T, must
# fit 32 bits unsigned; the total at most 999,999,999 days.

_U32 = 2**32 - 1
_ISO_ITEM = re.compile(r"T|(\d+)(?:[.,](\d*))?([A-Z])", re.ASCII)
_DATE_UNITS = {"Y": 365, "M": 30, "W": 7, "D": 1}
_TIME_UNITS = {"H": 3600, "M": 60, "S": 1}
_ZONE = r"(?:[Zz]|[+-](?P<zh>\d\d):?(?P<zm>\d\d))?"
_DAYS = re.compile(
    r"(?P<days>\d+) ?[dD](?:[aA][yY][sS]?)?,? ?"
    r"(?:(?P<h>\d\d):(?P<m>\d\d)(?::(?P<s>\d\d)(?:[.,](?P<f>\d{1,6}))?)?" + _ZONE + r")?\Z",
    re.ASCII,
)
_CLOCK = re.compile(r"(?P<h>\d*):(?P<m>\d\d)(?::(?P<s>\d\d)(?:[.,](?P<f>\d+))?)?", re.ASCII)


def _whole(x: float) -> int:
    # A float cut to an integer as pydantic's Rust casts it: NaN (an overlong
    # fraction's digits over its power of ten, both infinite) is 0.
    return 0 if x != x else int(x)


def round_half_up(x: float) -> int:
    """A non-negative float rounded to an integer as pydantic's Rust rounds it: half
    away from zero (Python's round() goes half to even); NaN is 0."""
    whole = _whole(x)
    return whole + (x - whole >= 0.5)


def _u32(value: int) -> int:
    if value > _U32:
        raise ValueError("a quantity past 2**32")
    return value


def _iso_duration(body: str) -> tuple[int, int, int]:
    days = seconds = micros = 0
    after_t = fraction_seen = False
    at = 0
    while at < len(body):
        item = _ISO_ITEM.match(body, at)
        if item is None:
            raise ValueError("not an ISO 8601 duration item")
        at = item.end()
        if item.group(0) == "T":
            if after_t:
                raise ValueError("T twice")
            after_t = True
            continue
        if fraction_seen:
            raise ValueError("a fraction before the last quantity")
        digits, decimals, unit = item.groups()
        number = _u32(int(digits))
        fraction = None
        if decimals is not None:
            fraction_seen = True
            value, power = 0.0, 1.0
            for digit in decimals:  # (in floating point, digit by digit, as pydantic does)
                value, power = value * 10.0 + int(digit), power * 10.0
            fraction = value / power
        scale = (_TIME_UNITS if after_t else _DATE_UNITS).get(unit)
        if scale is None:
            raise ValueError(f"unit {unit!r}")
        if after_t:
            seconds = _u32(seconds + _u32(number * scale))
            if fraction is not None:
                extra = fraction * scale
                seconds = _u32(seconds + _whole(extra))
                micros = _u32(micros + round_half_up((extra - _whole(extra)) * 1e6))
        else:
            days = _u32(days + _u32(number * scale))
            if fraction is not None:
                extra = fraction * scale
                days = _u32(days + _whole(extra))
                rest = (extra - _whole(extra)) * 86400.0
                seconds = _u32(seconds + _whole(rest))
                micros += round_half_up((rest - _whole(rest)) * 1e6)
    return days, seconds, micros


def parse_duration_text(text: str) -> _dt.timedelta:
    """`text` read as pydantic's timedelta reads text (the grammar above). ValueError
    if it is not a duration it reads. O(len(text))."""
    negative = text[:1] == "-"
    body = text[1:] if text[:1] in ("+", "-") else text
    size = len(text.encode())
    if body[:1] == "P":
        if size < 3:
            raise ValueError("too short")
        days, seconds, micros = _iso_duration(body[1:])
    elif "d" in text or "D" in text or size < 5:
        match = _DAYS.match(body)
        if match is None:
            raise ValueError("not a duration")
        g = match.group
        days, seconds, micros = int(g("days")), 0, 0
        if g("h") is not None:
            hours, minutes, secs = int(g("h")), int(g("m")), int(g("s") or 0)
            if hours > 23 or minutes > 59 or secs > 59:
                raise ValueError("a time of day out of range")
            if g("zh") is not None and int(g("zh")) * 60 + int(g("zm")) >= 1440:
                raise ValueError("a zone of a day or more")
            seconds = hours * 3600 + minutes * 60 + secs
            micros = int((g("f") or "0").ljust(6, "0"))
    else:
        match = _CLOCK.match(body)
        if match is None or size - (len(text) - len(body)) < 5:
            raise ValueError("not a duration")
        g = match.group
        fraction = g("f")
        # (pydantic stops looking after six digits of a fraction: what follows is ignored)
        if match.end() != len(body) and not (fraction is not None and len(fraction) >= 6):
            raise ValueError("not a duration")
        hours, minutes, secs = int(g("h") or 0), int(g("m")), int(g("s") or 0)
        if hours > 2_400_000_000 or minutes > 59 or secs > 59:
            raise ValueError("a time out of range")
        days, seconds = 0, hours * 3600 + minutes * 60 + secs
        micros = int((fraction or "0")[:6].ljust(6, "0"))
    seconds, micros = seconds + micros // 1_000_000, micros % 1_000_000
    days, seconds = days + seconds // 86_400, seconds % 86_400
    if days > 999_999_999:
        raise ValueError("more than 999,999,999 days")
    value = _dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    try:
        return -value if negative else value
    except OverflowError:  # (-999,999,999 days and more: pydantic fails there too)
        raise ValueError("more than 999,999,999 days") from None
