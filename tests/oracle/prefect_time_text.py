"""Answer time-text cases (time_text_cases.py) with Prefect 3.1.0's own DateTime type,
the one its filters, states and run fields validate times with
(pydantic_extra_types' pendulum DateTime, as `prefect.server.schemas.filters` imports
it; checked here through a real filter model too).

    $PREFECT_VENV/bin/python tests/oracle/prefect_time_text.py [--durations] IN.jsonl OUT.jsonl

With --durations, the cases are read as pydantic's timedelta reads them (the type of
Prefect's IntervalSchedule.interval): "prefect" is {"us": total microseconds} or
{"refused": true}.

Each line gains "prefect": {"utc_us": microseconds since 1970 in UTC}, {"refused":
true}, or {"wall_clock": true} where pendulum read "now" or a time without a date (on
today's date); "broken_offset" marks a value whose offset is a day or more (its
utcoffset() raises).
"""
from __future__ import annotations

import datetime as dt
import json
import sys

import pendulum.parsing
import pydantic
from prefect.server.schemas.filters import FlowRunFilterStartTime
from pydantic_extra_types.pendulum_dt import DateTime

_ADAPTER = pydantic.TypeAdapter(DateTime)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _utc_us(value: dt.datetime) -> tuple[int, bool]:
    """Microseconds since the epoch in UTC, computed from the fields (a value past
    year 9999 in UTC has no datetime), and whether the offset is unusable."""
    try:
        offset = value.utcoffset()
        broken = False
    except ValueError:  # pendulum's FixedTimezone of 24 hours or more
        offset, broken = dt.timedelta(seconds=value.tzinfo.offset), True
    days = dt.date(value.year, value.month, value.day).toordinal() - dt.date(1970, 1, 1).toordinal()
    us = (days * 86_400 + value.hour * 3600 + value.minute * 60 + value.second) * 10**6 + value.microsecond
    return us - (offset // dt.timedelta(microseconds=1) if offset else 0), broken


def _wall_clock(text: str) -> bool:
    if text == "now":
        return True
    try:
        return isinstance(pendulum.parsing.parse(text, exact=True), dt.time)
    except Exception:  # noqa: BLE001 - not pendulum's, so not read on today's date
        return False


def answer(text: str) -> dict:
    try:
        value = _ADAPTER.validate_python(text)
    except Exception:  # noqa: BLE001 - refused
        value = None
    try:
        model = FlowRunFilterStartTime(after_=text).after_
    except Exception:  # noqa: BLE001
        model = None
    if (value is None) != (model is None):
        raise SystemExit(f"the type and the filter model disagree on {text!r}")
    if value is None:
        return {"refused": True}
    if _wall_clock(text):
        return {"wall_clock": True}  # (its time is today's: not recorded)
    us, broken = _utc_us(value)
    return {"utc_us": us, "broken_offset": True} if broken else {"utc_us": us}


_DURATION = pydantic.TypeAdapter(dt.timedelta)


def answer_duration(text: str) -> dict:
    try:
        value = _DURATION.validate_python(text)
    except Exception:  # noqa: BLE001 - refused (beyond -999,999,999 days pydantic raises OverflowError)
        return {"refused": True}
    return {"us": value // dt.timedelta(microseconds=1)}


def main(argv: list[str]) -> None:
    read = answer
    if argv[:1] == ["--durations"]:
        read, argv = answer_duration, argv[1:]
    with open(argv[0], encoding="utf-8") as cases, open(argv[1], "w", encoding="utf-8") as out:
        for line in cases:
            case = json.loads(line)
            case["prefect"] = read(case["s"])
            out.write(json.dumps(case) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
