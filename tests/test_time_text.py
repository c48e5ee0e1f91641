"""Times written as text (and numbers) are read as Prefect 3.1.0's DateTime fields read
them: engine/timetext.py's grammar and validation.as_datetime's unix times, checked
against answers recorded from Prefect itself (tests/oracle/prefect_time_text.py), with
the deliberate differences listed in README's "Differences from Prefect". Seconds given
as a duration are read as its timedelta fields read them."""
from __future__ import annotations

import datetime as dt
import decimal
import json
import pathlib
import re

import pytest

from engine import Engine, ManualClock
from engine.errors import ValidationError
from engine.timetext import TimeTextError, parse_time_text
from engine.schedules import IntervalSchedule
from engine.validation import as_datetime, as_timedelta

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
ORACLE = pathlib.Path(__file__).parent / "data" / "time_text_prefect_oracle.jsonl"
CASES = [json.loads(line) for line in ORACLE.read_text(encoding="utf-8").splitlines()]
FIRST_US = (dt.datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // dt.timedelta(microseconds=1)
LAST_US = (dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // dt.timedelta(microseconds=1)
WEEK_OR_ORDINAL = re.compile(r"\d{4}(-?W\d\d|-\d{3}(?!\d)|\d{3}(?![\d]))")


def us(value: dt.datetime) -> int:
    return (value - EPOCH) // dt.timedelta(microseconds=1)


def answer(text: str) -> tuple[str, object]:
    try:
        return "time", us(as_datetime(text, "t"))
    except ValidationError as exc:
        return "refused", str(exc)


def allowed_difference(text: str, prefect: dict, mine: tuple[str, object]) -> str | None:
    """The README's reason runstate answers `text` otherwise than Prefect, or None."""
    kind, value = mine
    if "utc_us" in prefect and kind == "refused":
        if prefect.get("broken_offset"):
            return "an offset of a day or more"
        if not FIRST_US <= prefect["utc_us"] <= LAST_US:
            return "a time outside years 1 to 9999 once in UTC"
        if re.fullmatch(r"[+-]?\d+\.\d*", text) and abs(float(text)) > 2e13:
            return "a decimal number beyond 2e13, which pydantic misreads"
    if "utc_us" in prefect and kind == "time" and re.fullmatch(r"[+-]?\d+\.\d*", text) and abs(float(text)) > 2e13:
        # pydantic's reading is not a time anyone meant; runstate's is the milliseconds.
        assert abs(value - float(text) * 1000) <= abs(float(text)) * 1e-12 + 1
        return "a decimal number beyond 2e13, which pydantic misreads"
    if prefect.get("refused") and kind == "time" and WEEK_OR_ORDINAL.match(text):
        local = parse_time_text(text)
        if (local.date() + dt.timedelta(days=1)).day == 1:
            return "pendulum 3.0 refuses a week or ordinal date on a month's last day"
    return None


def test_times_are_read_as_prefect_reads_them():
    kinds = {"same": 0}
    mismatches = []
    for case in CASES:
        text, prefect = case["s"], case["prefect"]
        mine = answer(text)
        if prefect.get("wall_clock"):
            # "now" and a time without a date: Prefect reads the server's wall clock.
            assert mine[0] == "refused", (text, mine)
            if "'now'" not in mine[1] and "no date" not in mine[1]:
                # (no hint only where the offset is refused anyway)
                assert re.search(r"[+-](2[4-9]|[3-9]\d)", text), (text, mine)
            kinds["wall clock"] = kinds.get("wall clock", 0) + 1
            continue
        same = (mine[0] == "refused") if prefect.get("refused") else (mine == ("time", prefect["utc_us"]))
        if same:
            kinds["same"] += 1
            continue
        reason = allowed_difference(text, prefect, mine)
        if reason is None:
            mismatches.append((text, prefect, mine))
        else:
            kinds[reason] = kinds.get(reason, 0) + 1
    assert not mismatches, mismatches[:20]
    # The file exercises every kind of answer, deliberate differences included.
    assert kinds["same"] > 7000 and len(kinds) >= 5, kinds


@pytest.mark.parametrize("text, expected", [
    ("2024-11-05T10:10:10.123456789+01:00", "2024-11-05T09:10:10.123456"),   # pydantic: fraction cut at 6
    ("2024-11-05_10:10z", "2024-11-05T10:10:00"),                             # pydantic: _ and z
    ("2024-11-05 10:10\u221201:00", "2024-11-05T11:10:00"),                   # pydantic: U+2212 minus
    ("2024-308", "2024-11-03T00:00:00"),                                     # ISO ordinal date
    ("2024308T1010", "2024-11-03T10:10:00"),
    ("2024-11", "2024-11-01T00:00:00"),                                      # year and month
    ("2024-11T10:10", "2024-11-01T10:10:00"),
    ("2024-W45-1", "2024-11-04T00:00:00"),
    ("2024-W00-1", "2023-12-25T00:00:00"),                                   # week 0 counts back
    ("2024-W45-0", "2024-11-03T00:00:00"),                                   # so does weekday 0
    ("2024-W05-3", "2024-01-31T00:00:00"),                                   # (pendulum 3.0 refuses these
    ("2024-366T10", "2024-12-31T10:00:00"),                                  # two: a month's last day)
    ("2024-11-05T10+01:", "2024-11-05T09:00:00"),                            # an offset's bare colon
    ("2024-11-05T10:10+01:70", "2024-11-05T08:00:00"),                       # minutes past 59
    ("20241105T10:10", "2024-11-05T10:10:00"),                               # basic date, HH:MM
    ("2024/11/05", "2024-11-05T00:00:00"),                                   # pendulum's common form
    ("2024 1:2", "2024-01-01T01:02:00"),
    ("2024/11/05 10:10:10|5", "2024-11-05T10:10:10.500000"),
    ("20241105\n", "2024-11-05T00:00:00"),                                   # (not a unix time: the newline)
    ("\u0662\u0660\u0662\u0664/\u0661\u0661/\u0660\u0665", "2024-11-05T00:00:00"),   # Arabic-Indic digits
])
def test_forms_prefect_reads(text, expected):
    assert as_datetime(text, "t") == dt.datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "2024-11-05+01:00",          # Python's fromisoformat: "+" as the separator, 01:00 the time
    "2024-11-05T159Z",           # fromisoformat drops the 9
    "2024-11-05Z",
    "2024-11-05x10:10",
    "2024-11-05T1010",           # an extended date with a basic time
    "20241105T10:10:10",         # a basic date with an extended time
    "2024-11-05T10.5",           # a fraction of an hour
    "2024-11-05T10:10+01:00:30", # an offset with seconds
    "2024-11-05T10:10 Z",
    "2024-11-05t10",             # t and _ only in pydantic's form, which needs minutes
    "2024-W45z",                 # z only in pydantic's form
    "2024-11-05T10:10+24:00",    # Prefect: a value whose offset fails when used
    "2024-11-05T10:10-25:00",
    "2023-366T10",               # 2023 has no day 366
    ".5",
    "1e9",
    "Now",
    "",
])
def test_forms_prefect_refuses(text):
    with pytest.raises(ValidationError, match="is not an ISO-8601 datetime"):
        as_datetime(text, "t")


def test_a_time_without_a_date_or_now_is_refused_with_a_hint():
    with pytest.raises(ValidationError, match=r"'now' as the server's wall clock: give a time .*engine.now\(\)"):
        as_datetime("now", "flow_runs.start_time.before_")
    for text in ("10:10", "T1010", "10:10:10.5+01:00", "1:2"):
        with pytest.raises(ValidationError, match="has no date .*give the date too"):
            as_datetime(text, "t")
    with pytest.raises(TimeTextError) as caught:
        parse_time_text("tomorrow")
    assert caught.value.hint == ""
    engine = Engine(clock=ManualClock("2024-11-05"))
    with pytest.raises(ValidationError, match="flow_runs.start_time.before_ is not an ISO-8601 datetime: 'now'"):
        engine.read_flow_runs(flow_run_filter={"start_time": {"before_": "now"}})


@pytest.mark.parametrize("value, expected", [
    ("0.0000025", "1970-01-01T00:00:00.000003"),      # half a microsecond: away from zero
    ("0.0000005", "1970-01-01T00:00:00.000001"),
    ("-0.0000015", "1969-12-31T23:59:59.999999"),     # (pydantic's sum of digits is a hair under 1.5)
    ("9042392974.2423", "2256-07-17T07:49:34.242302"),  # its sum of decimals, not float(text)
    ("253402300799999", "9999-12-31T23:59:59.999000"),  # whole milliseconds exactly
    ("20000000000.5", "1970-08-20T11:33:20.000500"),  # a decimal number of milliseconds
    (1730801410, "2024-11-05T10:10:10"),
    (0.0000025, "1970-01-01T00:00:00.000003"),
    (decimal.Decimal("1730801410.5"), "2024-11-05T10:10:10.500000"),
    (decimal.Decimal("1730801410"), "2024-11-05T10:10:10"),
    (dt.date(2024, 11, 5), "2024-11-05T00:00:00"),     # a date: its midnight in UTC
])
def test_numbers_and_dates_are_read_as_pydantic_reads_them(value, expected):
    assert as_datetime(value, "t") == dt.datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("value", ["-11676096001", -11_676_096_001, "253402300800000", 10**20, float("nan"),
                                   decimal.Decimal("NaN"), decimal.Decimal("Infinity")])
def test_unix_times_outside_1600_to_9999_are_refused(value):
    with pytest.raises(ValidationError, match="out of range as a unix time"):
        as_datetime(value, "t")


def test_a_date_subclass_is_a_date_too():
    class Day(dt.date):  # as pendulum's Date is
        pass

    assert as_datetime(Day(2024, 11, 5), "t") == dt.datetime(2024, 11, 5, tzinfo=UTC)
    assert ManualClock(Day(2024, 11, 5)).now() == dt.datetime(2024, 11, 5, tzinfo=UTC)


def test_a_manual_clock_reads_digits_as_a_date_not_a_unix_time():
    assert ManualClock("20241105").now() == dt.datetime(2024, 11, 5, tzinfo=UTC)
    assert ManualClock("2024-308").now() == dt.datetime(2024, 11, 3, tzinfo=UTC)
    with pytest.raises(ValidationError, match="start must be a datetime, got int"):
        ManualClock(20241105)


@pytest.mark.parametrize("seconds, micros", [
    (2.5e-6, 3), (-5e-7, -1), (1.9883785, 1_988_379),   # ties: pydantic rounds half away from zero
    (1.5, 1_500_000), (3600, 3_600_000_000), (-0.25, -250_000),
])
def test_seconds_become_a_duration_as_pydantic_reads_them(seconds, micros):
    assert as_timedelta(seconds, "t") == dt.timedelta(microseconds=micros)
    if micros > 0:  # (an interval must be positive)
        assert IntervalSchedule(interval=seconds).interval == dt.timedelta(microseconds=micros)


DURATIONS = [json.loads(line) for line in (ORACLE.parent / "duration_text_prefect_oracle.jsonl")
             .read_text(encoding="utf-8").splitlines()]


def test_duration_text_is_read_as_pydantic_reads_it():
    # Answers recorded from pydantic's timedelta, the type of Prefect's interval
    # (tests/oracle/prefect_time_text.py --durations): no difference at all.
    accepted = 0
    for case in DURATIONS:
        text, prefect = case["s"], case["prefect"]
        if prefect.get("refused"):
            with pytest.raises(ValidationError, match="is not a duration"):
                as_timedelta(text, "t")
        else:
            assert as_timedelta(text, "t") == dt.timedelta(microseconds=prefect["us"]), text
            accepted += 1
    assert accepted > 1000


@pytest.mark.parametrize("text, expected", [
    ("PT1H30M", dt.timedelta(hours=1, minutes=30)),
    ("P1Y2M3W4DT5H6M7.5S", dt.timedelta(days=365 + 60 + 21 + 4, hours=5, minutes=6, seconds=7.5)),  # Y 365, M 30 days
    ("-PT1S", dt.timedelta(seconds=-1)),
    ("1 day, 01:00:00", dt.timedelta(days=1, hours=1)),
    ("-1 day, 23:59:59", -dt.timedelta(days=1, hours=23, minutes=59, seconds=59)),   # the sign negates the whole
    ("01:30:00", dt.timedelta(hours=1, minutes=30)),
    ("100:00", dt.timedelta(hours=100)),
])
def test_interval_text_as_prefect_reads_it(text, expected):
    assert as_timedelta(text, "t") == expected
    if expected > dt.timedelta(0):
        assert IntervalSchedule(interval=text).interval == expected


def test_overlong_numbers_are_refused_or_read_not_crashed_on():
    # Numeric text past 64 bits is out of range (pydantic refuses it); leading zeros
    # do not count; an overlong duration fraction is read as pydantic reads it.
    for text in ("1" * 400 + ".5", "1" * 5000, "-" + "9" * 30 + ".1"):
        with pytest.raises(ValidationError, match="out of range as a unix time"):
            as_datetime(text, "t")
    assert as_datetime("0" * 30 + "5.25", "t") == EPOCH + dt.timedelta(seconds=5.25)
    assert as_timedelta("PT1." + "1" * 400 + "S", "t") == dt.timedelta(seconds=1)   # (its fraction is NaN there)
    assert as_timedelta("PT1." + "9" * 30 + "S", "t") == dt.timedelta(seconds=2)
    for text in ("1:" + "0" * 5000 + ":00", "9" * 5000 + "d", "P" + "9" * 5000 + "D"):
        with pytest.raises(ValidationError, match="is not a duration"):
            as_timedelta(text, "t")


def test_a_decimal_is_a_number_of_seconds_as_pydantic_reads_it():
    assert as_timedelta(decimal.Decimal("5.5"), "t") == dt.timedelta(seconds=5.5)
    assert IntervalSchedule(interval=decimal.Decimal("60")).interval == dt.timedelta(minutes=1)
    for value in (decimal.Decimal("NaN"), decimal.Decimal("sNaN"), decimal.Decimal("-Infinity")):
        with pytest.raises(ValidationError, match="finite number of seconds"):
            as_timedelta(value, "t")
        with pytest.raises(ValidationError, match="out of range as a unix time"):
            as_datetime(value, "t")
