"""ISO 8601 text to a datetime, read as Python 3.11's `datetime.fromisoformat` reads it.

Stores read the times they wrote with `parse_isoformat` (text a user or a client wrote
is read as Prefect reads it, by timetext.parse_time_text). On Python 3.11 and later that is
`datetime.fromisoformat` itself. Python 3.10's reads little beyond what `isoformat()`
writes (fractions of exactly 3 or 6 digits; no "Z", basic format or week dates), so
there a string it refuses is read again by `read_isoformat`, this module's reading of
the grammar 3.11 documents:

    date   YYYY-MM-DD | YYYYMMDD | YYYY-Www | YYYY-Www-D | YYYYWww | YYYYWwwD
    time   HH[:MM[:SS[(.|,)F…]]] | HH[MM[SS[(.|,)F…]]]    (F…: digits, the first 6 kept)
    offset Z | (+|-)HH[:MM[:SS[(.|,)F…]]] | (+|-)HH[MM[SS[(.|,)F…]]]

with any one character between date and time. A few malformed strings that 3.11's
parser lets through (a stray character before the offset, a fraction after the hour)
are refused here; tests/test_isoformat.py checks both directions against the
interpreter's own parser on random strings.
"""
from __future__ import annotations

import datetime as _dt
import re
import sys
from typing import Callable

__all__ = ["parse_isoformat", "read_isoformat"]

_DATE = re.compile(r"(\d{4})(?:-(\d\d)-(\d\d)|(\d\d)(\d\d)|-W(\d\d)(?:-(\d))?|W(\d\d)(\d)?)", re.ASCII)
# hour; then minute, second, fraction in extended (:) or basic form
_CLOCK = r"(\d\d)(?::(\d\d)(?::(\d\d)(?:[.,](\d+))?)?|(\d\d)(?:(\d\d)(?:[.,](\d+))?)?)?"
_TIME = re.compile(rf"{_CLOCK}(?:(Z)|([+-]){_CLOCK})?", re.ASCII)
_UTC = _dt.timezone.utc


def _invalid(text: str) -> ValueError:
    return ValueError(f"Invalid isoformat string: {text!r}")


def _date_size(text: str) -> int:
    """Where the date part of `text` ends (3.11's rule: digits after a week date may
    be its weekday or already the time, decided by how many there are)."""
    size = len(text)
    if size <= 7:
        return size
    if text[4] == "-":
        if text[5] != "W":
            return 10  # YYYY-MM-DD
        if size == 8 or text[8] != "-":
            return 8  # YYYY-Www
        if size > 10 and "0" <= text[10] <= "9":
            return 8  # YYYY-Www, then "-" as the separator
        return 10  # YYYY-Www-D
    if text[4] == "W":
        end = 7
        while end < size and "0" <= text[end] <= "9":
            end += 1
        if end < 9:
            return end  # YYYYWww | YYYYWwwD
        # A digit as the separator, then HH[MM[SS]]: the time's digits are even in
        # number, so the run's parity says whether a weekday came before them.
        return 7 if end % 2 == 0 else 8
    return 8  # YYYYMMDD


def _date(part: str, text: str) -> _dt.date:
    match = _DATE.fullmatch(part)
    if match is None:
        raise _invalid(text)
    year, month, day, basic_month, basic_day, week, weekday, basic_week, basic_weekday = match.groups()
    if month is not None:
        return _dt.date(int(year), int(month), int(day))
    if basic_month is not None:
        return _dt.date(int(year), int(basic_month), int(basic_day))
    if week is None:
        week, weekday = basic_week, basic_weekday
    return _dt.date.fromisocalendar(int(year), int(week), 1 if weekday is None else int(weekday))


def _clock(groups: tuple) -> tuple[int, int, int, int]:
    """(hours, minutes, seconds, microseconds) from one _CLOCK's seven groups."""
    hour, minute, second, fraction, basic_minute, basic_second, basic_fraction = groups
    if minute is None:
        minute, second, fraction = basic_minute, basic_second, basic_fraction
    micro = 0 if fraction is None else int(fraction[:6].ljust(6, "0"))
    return int(hour), int(minute or 0), int(second or 0), micro


def read_isoformat(text: str) -> _dt.datetime:
    """`text` read by the grammar above; ValueError if it does not follow it or names
    a date or time that does not exist. O(len(text))."""
    if not isinstance(text, str):
        raise TypeError(f"fromisoformat: argument must be str, not {type(text).__name__}")
    size = _date_size(text)
    day = _date(text[:size], text)
    if size == len(text):
        return _dt.datetime(day.year, day.month, day.day)
    match = _TIME.fullmatch(text, size + 1)
    if match is None:
        raise _invalid(text)
    groups = match.groups()
    hour, minute, second, micro = _clock(groups[:7])
    zone = None
    if groups[7] is not None:
        zone = _UTC
    elif groups[8] is not None:
        hours, minutes, seconds, micros = _clock(groups[9:])
        whole = hours * 3600 + minutes * 60 + seconds
        if whole:  # (3.11 reads an offset under a second as UTC)
            offset = _dt.timedelta(seconds=whole, microseconds=micros)
            zone = _dt.timezone(-offset if groups[8] == "-" else offset)
        else:
            zone = _UTC
    return _dt.datetime(day.year, day.month, day.day, hour, minute, second, micro, zone)


def _native_then_grammar(text: str) -> _dt.datetime:
    # Python 3.10: its own parser for what isoformat() writes (stores, most payloads),
    # this module's reading for the rest.
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        return read_isoformat(text)


parse_isoformat: Callable[[str], _dt.datetime] = (
    _dt.datetime.fromisoformat if sys.version_info >= (3, 11) else _native_then_grammar
)
