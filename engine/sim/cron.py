"""A small five-field cron ("minute hour day-of-month month day-of-week") in UTC.

Fields accept `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`;
day-of-week 0 or 7 is Sunday. As in classic cron, when both day fields are
restricted a day matches if either does.
"""
from __future__ import annotations

import datetime as _dt

__all__ = ["Cron"]

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


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
            if not (a_text.isdigit() and b_text.isdigit()):
                raise ValueError(f"bad range {part!r} in the {_NAMES[index]} field")
            a, b = int(a_text), int(b_text)
        elif part.isdigit():
            a = int(part)
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
    """A parsed cron expression; `next_after(t)` is the first match strictly after t."""

    __slots__ = ("text", "minutes", "hours", "days", "months", "weekdays", "_dom_star", "_dow_star")

    def __init__(self, text: str) -> None:
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
        self.text = text
        self.minutes, self.hours, self.days, self.months, self.weekdays = (
            _field(p, i) for i, p in enumerate(parts)
        )
        self._dom_star = parts[2] == "*"
        self._dow_star = parts[4] == "*"

    def _day_ok(self, day: _dt.datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self._dom_star or self._dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: _dt.datetime) -> _dt.datetime:
        """Next matching minute after `t`. O(days scanned); at most ~5 years."""
        t = t.replace(second=0, microsecond=0) + _dt.timedelta(minutes=1)
        limit = t + _dt.timedelta(days=366 * 5)
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
                t += _dt.timedelta(minutes=1)
                continue
            return t
        raise ValueError(f"cron {self.text!r} never fires")
