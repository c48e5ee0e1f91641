"""Deployment schedules and schedule_runs (engine/schedules.py, engine/deployments.py):
the schedule types, the record, the operations, errors, rollback, the facade, and 150
scenarios answered by Prefect 3.1.0 itself (tests/oracle/prefect_schedules.py)."""
from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import json
import math
import os
import pathlib
import sys
import types
import uuid

import dateutil.rrule
import pytest
from hypothesis import HealthCheck, example, given, reject, settings, strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from schedules_replay import T0, answer  # noqa: E402

from engine import (  # noqa: E402
    CronSchedule, DeploymentScheduleFilter, Engine, IntervalSchedule, ManualClock, ObjectNotFoundError,
    AwaitingRetry, Completed, Late, Pending, RRuleSchedule, Running, Scheduled, StateType, ValidationError, models,
)
from engine import schedules  # noqa: E402
from engine.deployments import MAX_SCHEDULED_RUNS_LIMIT  # noqa: E402

UTC = dt.timezone.utc
DATA = pathlib.Path(__file__).parent / "data" / "schedules_prefect_oracle.jsonl"


def setup(clock_at=T0):
    clock = ManualClock(clock_at)
    engine = Engine(clock)
    flow = engine.create_flow("f")
    dep = engine.create_deployment(flow.id, "d", tags=["t"], parameters={"x": 1}, version="v1")
    return engine, clock, flow, dep


# the schedule types ----------------------------------------------------------------------------

def test_interval_dates_keep_elapsed_time_under_a_day_and_wall_time_from_a_day():
    start = dt.datetime(2024, 11, 3, 4, 0, tzinfo=UTC)  # 00:00 EDT, the night clocks go back
    hourly = IntervalSchedule(3600, "2024-01-01T00:00:00-05:00", "America/New_York")
    assert [str(d) for d in hourly.get_dates(4, start)] == [
        "2024-11-03 00:00:00-04:00", "2024-11-03 01:00:00-04:00",
        "2024-11-03 02:00:00-05:00", "2024-11-03 03:00:00-05:00"]  # 01:00 EST repeats 01:00 EDT: skipped
    daily = IntervalSchedule(dt.timedelta(days=1), dt.datetime(2024, 11, 1, 9, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("America/New_York")))
    assert daily.timezone == "America/New_York"  # inferred from the anchor's zone
    assert [str(d) for d in daily.get_dates(3, start)] == [
        "2024-11-03 05:00:00-05:00", "2024-11-04 05:00:00-05:00", "2024-11-05 05:00:00-05:00"]


def test_cron_reads_local_times_and_rrule_localises_its_start():
    start = dt.datetime(2024, 3, 9, 12, tzinfo=UTC)
    cron = CronSchedule("30 2 * * *", "America/New_York")
    # 02:30 does not exist on 10 March: read as its earlier occurrence, 01:30 EST
    assert [str(d) for d in cron.get_dates(3, start)] == [
        "2024-03-10 01:30:00-05:00", "2024-03-11 02:30:00-04:00", "2024-03-12 02:30:00-04:00"]
    assert CronSchedule("0 0 * * *").timezone is None
    rrule = RRuleSchedule("FREQ=DAILY;BYHOUR=9", "Europe/London")
    assert [str(d) for d in rrule.get_dates(2, dt.datetime(2024, 3, 30, tzinfo=UTC))] == [
        "2024-03-30 09:00:00+00:00", "2024-03-31 09:00:00+01:00"]
    assert rrule.get_dates(start=start, end=start) == []


def test_a_cron_that_never_fires_has_no_dates_and_schedules_no_runs():
    # 30 February: croniter finds no date (Prefect's get_dates raises its
    # CroniterBadDateError); the deployment's other schedule still makes its runs.
    assert CronSchedule("0 0 30 2 *").get_dates(3, T0) == []
    engine, _, _, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"schedule": {"cron": "0 0 30 2 *"}},
                                                {"schedule": {"cron": "0 0 * * *"}}])
    made = engine.schedule_runs(dep.id)
    assert made and len(made) == engine.count_flow_runs()
    assert all(r.expected_start_time.hour == 0 and r.expected_start_time.minute == 0
               for r in engine.read_flow_runs())


@pytest.mark.parametrize("schedule", [{"interval": 3600}, {"interval": 86400 * 999_999_999}, {"cron": "0 0 * * *"},
                                      {"rrule": "FREQ=DAILY"}])
def test_dates_end_at_year_9999(schedule):
    """Dates past the last datetime do not exist: a schedule near it (or a huge
    interval, or a limit past it) has fewer dates, not an OverflowError."""
    engine, _, _, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"schedule": {**schedule, **(
        {"anchor_date": "9999-12-29T00:00:00Z"} if "interval" in schedule else {})}}])
    made = engine.schedule_runs(dep.id, start_time=dt.datetime(9999, 12, 30, tzinfo=UTC))
    huge = schedule.get("interval", 0) > 86400 * 1000  # its next date after the anchor is past 9999
    assert len(made) == (0 if huge else 2 if "interval" not in schedule else 3)
    assert all(r.expected_start_time.year == 9999 for r in engine.read_flow_runs())
    assert engine.schedule_runs(dep.id, start_time=dt.datetime.max) == []
    assert engine.schedule_runs(dep.id, min_time=dt.timedelta(days=999_999_999)) is not None


@pytest.mark.parametrize("schedule", [CronSchedule("0 0 * * *"), RRuleSchedule("FREQ=DAILY")])
def test_dates_reaching_year_10000_from_an_earlier_year_end_there(schedule):
    # 1 June 9998 to 31 December 9999, then croniter and dateutil would build year 10000.
    dates = schedule.get_dates(1000, dt.datetime(9998, 6, 1, tzinfo=UTC))
    assert len(dates) == 579 and dates[-1] == dt.datetime(9999, 12, 31, tzinfo=UTC)


# An rrule is expanded from near the start, not from its DTSTART (2020 when it has
# none): the dates must be the ones expanding the whole rule gives.

_FREQS = {"WEEKLY": 7 * 86400, "DAILY": 86400, "HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1, "MONTHLY": 31 * 86400}
# instants next to clock changes: New York, Berlin, Lord Howe (30 min), Chatham, Kiritimati (+14),
# Samoa skipping 30 December 2011; and before 1901 and past 2037, where dateutil's and
# zoneinfo's offsets differ
_NEAR_CHANGES = [dt.datetime(2026, 3, 8, 7), dt.datetime(2026, 11, 1, 6), dt.datetime(2026, 3, 29, 1),
                 dt.datetime(2026, 10, 25, 1), dt.datetime(2026, 4, 4, 15), dt.datetime(2026, 9, 26, 14),
                 dt.datetime(2026, 6, 15, 12), dt.datetime(2011, 12, 30, 10), dt.datetime(1900, 1, 1, 0, 10),
                 dt.datetime(2050, 3, 27, 1), dt.datetime(2025, 2, 23, 2), dt.datetime(2045, 7, 9, 2)]
# Dublin: dateutil reads its winter time as a negative DST; Casablanca and El Aaiun
# change clocks around Ramadan, and past 2037 dateutil and zoneinfo disagree when.
_ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati",
          "Pacific/Apia", "Asia/Kathmandu", "Europe/Dublin", "Africa/Casablanca", "Africa/El_Aaiun"]


@st.composite
def _rrules_near_a_start(draw):
    freq = draw(st.sampled_from(sorted(_FREQS)))
    interval = draw(st.integers(1, 400 if freq == "SECONDLY" else 5))
    parts = [f"FREQ={freq}", f"INTERVAL={interval}"]
    for key, values in (("BYHOUR", range(24)), ("BYMINUTE", range(0, 60, 7)), ("BYSECOND", range(0, 60, 13)),
                        ("BYDAY", ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), ("BYSETPOS", [1, -1])):
        # (a grid of 7k seconds comes back to a time of day only every 7k days, on the same
        # weekday: BYDAY may never meet it; get_dates then gives nothing at once (tested
        # below), but dateutil walks this test's reference, the whole rule, to year 9999)
        if key == "BYDAY" and freq == "SECONDLY" and interval % 7 == 0:
            continue
        if draw(st.booleans()):
            parts.append(f"{key}=" + ",".join(map(str, draw(st.lists(st.sampled_from(list(values)), min_size=1,
                                                                         max_size=3, unique=True)))))
    start = draw(st.sampled_from(_NEAR_CHANGES)) + dt.timedelta(minutes=draw(st.integers(-600, 600)))
    # DTSTART a few thousand periods before the start, at any second
    before = dt.timedelta(seconds=_FREQS[freq] * interval * draw(st.integers(0, 3000) if freq != "MONTHLY"
                                                                 else st.integers(0, 40)))
    dtstart = start - before - dt.timedelta(seconds=draw(st.integers(0, 86400)))
    text = f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:" + ";".join(parts)
    if draw(st.booleans()):  # with an exclusion rule
        text += f"\nEXRULE:FREQ={freq};INTERVAL={draw(st.integers(1, 3))};BYHOUR={draw(st.integers(0, 23))}"
    if draw(st.booleans()):
        text += f"\nRDATE:{start + dt.timedelta(minutes=draw(st.integers(-90, 90))):%Y%m%dT%H%M%S}"
    # (a rule whose sets or exclusions leave no date walks to year 9999 unless it has an end)
    endless = "BYSETPOS" not in text and "EXRULE" not in text and draw(st.booleans())
    end = None if endless else start + dt.timedelta(minutes=draw(st.integers(0, 3000)))
    try:
        schedule = RRuleSchedule(text, draw(st.sampled_from(_ZONES)))
    except ValidationError:  # dateutil refuses an interval whose grid never meets BYHOUR etc.
        reject()
    return schedule, draw(st.integers(1, 40)), start, end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rrules_near_a_start())
@example((RRuleSchedule("DTSTART:19011213T100000\nRRULE:FREQ=HOURLY", "Pacific/Apia"), 1,
          dt.datetime(1901, 12, 13, 20), dt.datetime(1901, 12, 13, 21, 27)))  # (dateutil: -11:26:56 or +12:33:04)
@example((RRuleSchedule("DTSTART:20111230T100000\nRRULE:FREQ=HOURLY", "Pacific/Apia"), 14,
          dt.datetime(2011, 12, 30, 10), None))  # (walls of the skipped 30 December come back as 31 December)
@example((RRuleSchedule("DTSTART:20151025T013000\nRRULE:FREQ=MINUTELY;INTERVAL=15\nEXRULE:FREQ=MINUTELY;INTERVAL=2",
                        "Europe/Dublin"), 24, dt.datetime(2015, 10, 24, 23, 52, 51), dt.datetime(2015, 10, 25, 0, 48, 48)))
@example((RRuleSchedule("DTSTART:20450709T014500\nRRULE:FREQ=SECONDLY;INTERVAL=15;BYMINUTE=12,33,44,49",
                        "Africa/El_Aaiun"), 24, dt.datetime(2045, 7, 9, 1, 40, 50), dt.datetime(2045, 7, 9, 1, 52, 6)))
def test_rrule_dates_are_those_of_the_whole_rule(case):
    schedule, n, start, end = case
    start, end = start.replace(tzinfo=UTC), end and end.replace(tzinfo=UTC)
    bounded_start, bounded_end = schedules._bounds(start, end, schedule.timezone)
    rule = schedule.to_rrule()
    if end is not None:  # expanding the whole rule to year 9999 is too slow here; 3 days past the end is safe
        until = (end + dt.timedelta(days=3)).replace(tzinfo=None)

        def cut(r):
            return r.replace(until=until.replace(tzinfo=r._dtstart.tzinfo))

        if hasattr(rule, "_rrule"):
            rule._rrule, rule._exrule = [cut(r) for r in rule._rrule], [cut(r) for r in rule._exrule]
        else:
            rule = cut(rule)
    try:
        # (sorted, as get_dates sorts: Samoa's skipped day gives dateutil's walls out of order)
        whole = sorted(schedules._first_distinct(schedule._occurrences(rule, bounded_start), n, bounded_end))
    except ValidationError as exc:  # a grid dateutil finds never meets the BY* parts
        with pytest.raises(ValidationError, match="no dates dateutil can expand") as raised:
            schedule.get_dates(n, start, end)
        assert str(raised.value) == str(exc)
    else:
        assert schedule.get_dates(n, start, end) == whole


# Prefect 3.1.0's own RRuleSchedule.get_dates answered these (a differential run of
# thousands of rules): end is compared on the zone's wall clock, so a date dateutil
# places just past the end (by its reading of the zone) can still be given.
@pytest.mark.parametrize("rrule, zone, n, start, end, expected", [
    ("FREQ=DAILY;BYHOUR=2", "Europe/Dublin", 1, "2025-10-26T00:00:00+00:00", "2025-10-26T00:59:59+00:00",
     ["2025-10-26T01:00:00+00:00"]),
    ("FREQ=DAILY;BYHOUR=2", "Europe/Dublin", None, "2025-10-25T00:00:00+00:00", "2025-10-26T00:30:00+00:00",
     ["2025-10-25T02:00:00+01:00", "2025-10-26T01:00:00+00:00"]),
    ("FREQ=MONTHLY;BYMONTHDAY=26;BYHOUR=2", "Europe/Dublin", 1, "2025-10-26T00:00:00+00:00",
     "2025-10-26T00:59:59+00:00", ["2025-10-26T01:00:00+00:00"]),
    ("FREQ=DAILY;BYHOUR=3", "Africa/Casablanca", 1, "2025-02-23T00:00:00+00:00", "2025-02-23T01:59:59+00:00",
     ["2025-02-23T02:00:00+00:00"]),
    ("DTSTART:20151025T013000\nRRULE:FREQ=MINUTELY;INTERVAL=15\nEXRULE:FREQ=MINUTELY;INTERVAL=2", "Europe/Dublin", 24,
     "2015-10-24T23:52:51.207915+00:00", "2015-10-25T00:48:48+00:00",
     ["2015-10-25T01:15:00+00:00", "2015-10-25T01:45:00+01:00"]),
])
def test_dates_next_to_the_end_are_prefects(rrule, zone, n, start, end, expected):
    dates = RRuleSchedule(rrule, zone).get_dates(n, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
    assert [d.isoformat() for d in dates] == expected


@pytest.fixture
def walks(monkeypatch) -> types.SimpleNamespace:
    """dateutil's walks while the test runs: `yielded` holds every date its rules give
    (how far they walked); a test may set `before` to a check each rule must pass
    before its walk begins."""
    walks = types.SimpleNamespace(yielded=[], before=None)
    whole = dateutil.rrule.rrule._iter

    def counting(rule):  # (a generator: dateutil makes one when it builds a rule)
        if walks.before is not None:
            walks.before(rule)
        for date in whole(rule):
            walks.yielded.append(date)
            yield date

    monkeypatch.setattr(dateutil.rrule.rrule, "_iter", counting)
    return walks


def test_an_exclusion_rule_is_not_walked_past_the_end_towards_a_far_date(walks):
    # Once the hourly rule is cut at the end, the next candidate is the RDATE years
    # later: an exclusion rule left unbounded was expanded minute by minute up to it.
    schedule = RRuleSchedule("DTSTART:20240601T000000\nRRULE:FREQ=HOURLY\nEXRULE:FREQ=MINUTELY;BYSECOND=30\n"
                             "RDATE:20290601T000000")
    at = dt.datetime(2024, 6, 1, 0, 30, tzinfo=UTC)
    assert schedule.get_dates(1, at, at) == []  # (what Prefect 3.1.0 answers)
    assert len(walks.yielded) < 10_000


@pytest.mark.parametrize("rrule", ["FREQ=SECONDLY", "RRULE:FREQ=MINUTELY\nEXRULE:FREQ=MINUTELY"])
def test_rrules_from_2020_expand_only_near_the_start(rrule, walks):
    # A secondly rule walked about 220 million seconds from 2020-01-01 to reach the start; a
    # minutely set whose exclusion removes every date walked to the end of the horizon only
    # after walking from 2020. Count what dateutil yields.
    start = dt.datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
    dates = RRuleSchedule(rrule).get_dates(3, start, start + dt.timedelta(days=1))
    assert dates == ([start, start + dt.timedelta(seconds=1), start + dt.timedelta(seconds=2)]
                     if "SECONDLY" in rrule else [])
    assert 0 < len(walks.yielded) < 3 * 86400


# A sub-daily grid of 7k units reaches a time of day on one weekday only: if BYDAY names
# others, no date ever comes, and dateutil walks the rule to year 9999 to find that out.
@st.composite
def _sub_daily_rules_with_weekdays(draw):
    freq = draw(st.sampled_from(["HOURLY", "MINUTELY", "SECONDLY"]))
    interval = draw(st.integers(1, 400 if freq == "SECONDLY" else 60))
    interval = interval * 7 if draw(st.integers(0, 4)) else interval  # mostly locked to weekdays
    parts = [f"FREQ={freq}", f"INTERVAL={interval}",
             "BYDAY=" + ",".join(draw(st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
                                               min_size=1, max_size=6, unique=True)))]
    # (BYHOUR always below hourly, or expanding the rule's dates for the reference takes too long)
    for key, size in (("BYHOUR", 24), ("BYMINUTE", 60), ("BYSECOND", 60)):
        if (key == "BYHOUR" and freq != "HOURLY") or draw(st.booleans()):
            parts.append(f"{key}=" + ",".join(map(str, draw(st.lists(st.integers(0, size - 1), min_size=1,
                                                                          max_size=3, unique=True)))))
    dtstart = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=draw(st.integers(0, 14 * 86400)))
    try:
        return schedules._parse_rrule(f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:" + ";".join(parts))
    except ValueError:  # dateutil refuses BY* parts that leave no time in a period
        reject()


@settings(max_examples=150, deadline=None)
@given(_sub_daily_rules_with_weekdays())
@example(schedules._parse_rrule("DTSTART:20260404T143234\nRRULE:FREQ=SECONDLY;INTERVAL=238;BYHOUR=11;BYMINUTE=0;"
                                "BYSECOND=0;BYDAY=MO"))
@example(schedules._parse_rrule("DTSTART:20260110T040541\nRRULE:FREQ=SECONDLY;INTERVAL=1071;BYDAY=MO;BYHOUR=20;"
                                "BYMINUTE=36,33;BYSECOND=59,38,24"))  # (no allowed time at all: dateutil refuses it)
def test_a_grid_that_never_meets_its_weekdays_is_found(rule):
    # dateutil's answer: the dates of the rule without BYDAY over two turns of its grid
    # round the week (after which its places repeat), on the weekdays BYDAY names
    turn = math.lcm(rule._interval * _FREQS[dateutil.rrule.FREQNAMES[rule._freq]], 7 * 86400)
    any_day = rule.replace(byweekday=None, until=rule._dtstart + dt.timedelta(seconds=2 * turn))
    try:
        fires = any(date.weekday() in rule._byweekday for date in any_day)
    except ValueError:  # dateutil refuses a grid that never meets BYHOUR etc.: left to it
        fires = True
    assert schedules._never_fires(rule) is not fires


@st.composite
def _rules_with_month_days(draw):
    freq = draw(st.sampled_from(["DAILY", "HOURLY"]))
    short = draw(st.booleans())  # (then often silent: days past the end of short months)
    months = draw(st.lists(st.sampled_from([2, 4, 6, 9, 11] if short else range(1, 13)), min_size=1, max_size=3,
                           unique=True))
    days = draw(st.lists(st.sampled_from([29, 30, 31, -29, -30, -31] if short else [1, 15, 28, 29, 30, 31, -1, -28,
                                                                                     -29, -30, -31]),
                         min_size=1, max_size=3, unique=True))
    parts = [f"FREQ={freq}", "BYMONTH=" + ",".join(map(str, months)), "BYMONTHDAY=" + ",".join(map(str, days))]
    if freq == "HOURLY":
        parts.append(f"BYHOUR={draw(st.integers(0, 23))}")
    dtstart = dt.datetime(2026, 1, 1) + dt.timedelta(days=draw(st.integers(0, 1500)))
    return schedules._parse_rrule(f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:" + ";".join(parts))


@settings(max_examples=100, deadline=None)
@given(_rules_with_month_days())
def test_month_days_none_of_the_months_has_are_found(rule):
    # dateutil's answer: the dates of the rule without BYMONTHDAY over five years (a
    # leap year among them), on the days BYMONTHDAY names (-1 the last)
    any_day = rule.replace(bymonthday=None, until=rule._dtstart + dt.timedelta(days=5 * 366))
    fires = any(date.day in rule._bymonthday
                or date.day - calendar.monthrange(date.year, date.month)[1] - 1 in rule._bynmonthday
                for date in any_day)
    assert schedules._never_fires(rule) is not fires


@pytest.mark.parametrize("rrule, without", [
    ("DTSTART:20260105T000000\nRRULE:FREQ=HOURLY;INTERVAL=7;BYDAY=MO;BYHOUR=9", None),
    ("DTSTART:20260404T143234\nRRULE:FREQ=SECONDLY;INTERVAL=238;BYHOUR=11;BYMINUTE=0;BYSECOND=0;BYDAY=MO;COUNT=5",
     None),
    ("DTSTART:20260105T000000\nRRULE:FREQ=MINUTELY;INTERVAL=70;BYDAY=SU;BYHOUR=9\nRRULE:FREQ=DAILY;BYHOUR=12",
     "DTSTART:20260105T000000\nRRULE:FREQ=DAILY;BYHOUR=12"),
    ("DTSTART:20260105T000000\nRRULE:FREQ=HOURLY;INTERVAL=7;BYDAY=MO;BYHOUR=9\nRDATE:20261124T100000",
     "DTSTART:20260105T000000\nRDATE:20261124T100000"),
    ("DTSTART:20260105T000000\nRRULE:FREQ=HOURLY\nEXRULE:FREQ=HOURLY;INTERVAL=7;BYDAY=MO;BYHOUR=9",
     "DTSTART:20260105T000000\nRRULE:FREQ=HOURLY"),
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", None),
    ("FREQ=MINUTELY;BYMONTH=4,11;BYMONTHDAY=31,-31", None),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-30", None),
    ("RRULE:FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30\nRDATE:20261124T100000", "RDATE:20261124T100000"),
])
def test_a_rule_that_never_fires_is_not_expanded(rrule, without, walks):
    # Not one date of the silent rule comes; dateutil took 1.8 s (hourly) to 103 s
    # (secondly) to walk it to year 9999 and find that out, 0.4 s to 6 s for 30 February.
    zone, start = "America/New_York", dt.datetime(2026, 11, 23, tzinfo=UTC)
    expected = [] if without is None else RRuleSchedule(without, zone).get_dates(10, start, start + dt.timedelta(days=3))

    def refusing(rule):
        assert rule._interval % 7 or not rule._byweekday, f"dateutil expands {rule}"
        assert not rule._bymonthday and not rule._bynmonthday, f"dateutil expands {rule}"

    walks.before = refusing
    assert RRuleSchedule(rrule, zone).get_dates(10, start, start + dt.timedelta(days=3)) == expected
    assert len(expected) == (0 if without is None else 3 if "DAILY" in without else 1 if "RDATE" in without else 10)


def test_a_rule_whose_grid_meets_its_weekday_is_expanded():
    # the same grid of 7 hours from a Monday midnight reaches Monday 07:00
    rule = "DTSTART:20260105T000000\nRRULE:FREQ=HOURLY;INTERVAL=7;BYDAY=MO;BYHOUR=7"
    start = dt.datetime(2026, 11, 23, tzinfo=UTC)
    assert RRuleSchedule(rule).get_dates(3, start) == [start + dt.timedelta(days=7 * k, hours=7) for k in range(3)]


@pytest.mark.parametrize("rrule, why", [
    ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a positive integer"),  # (dateutil would loop for ever)
    ("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be a positive integer"),
    ("FREQ=DAILY;UNTIL=20240101T000000Z", "UNTIL values must be specified in UTC"),
])
def test_an_rrule_dateutil_cannot_expand_is_stored_as_prefect_does_and_named_when_expanded(rrule, why):
    engine, _, _, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"schedule": {"rrule": rrule}}])
    with pytest.raises(ValidationError, match=f"rrule '{rrule}' has no dates dateutil can expand: .*{why}"):
        engine.schedule_runs(dep.id)
    assert engine.count_flow_runs() == 0
    with pytest.raises(ValidationError, match="has no dates"):
        RRuleSchedule(rrule).get_dates(3, T0)


@pytest.mark.parametrize("json_shape, match", [
    ({"interval": 0}, "interval must be greater than 0"),
    ({"interval": True}, "interval must be a timedelta"),
    ({"interval": 10**400}, "interval must be a finite number of seconds"),  # (math.isfinite raised OverflowError)
    ({"interval": 60, "timezone": "Mars/Base"}, "timezone: invalid timezone"),
    ({"interval": 60, "anchor_date": "yesterday"}, "anchor_date: not an ISO 8601"),
    ({"cron": "H * * * *"}, "cron: invalid cron string"),  # (croniter 4 refuses it before the hash check)
    ({"cron": "61 * * * *"}, "cron: invalid cron string"),
    ({"cron": "0 * * * *", "day_or": "yes"}, "day_or must be a boolean"),
    ({"rrule": "FREQ=SOMETIMES"}, "rrule: invalid RRule string"),
    ({"rrule": "FREQ=DAILY", "timezone": None}, "timezone: invalid timezone"),
    ({"rrule": "FREQ=DAILY", "colour": "red"}, "schedule.colour: unknown key"),
    ({"cron": "0 * * * *", "rrule": "FREQ=DAILY"}, "exactly one of the keys"),
    ("hourly", "must be an IntervalSchedule"),
])
def test_bad_schedules_name_the_field(json_shape, match):
    engine, _, _, dep = setup()
    with pytest.raises(ValidationError, match=match):
        engine.create_deployment_schedules(dep.id, [{"schedule": json_shape}])
    assert engine.read_deployment_schedules(dep.id) == []


def test_json_shapes_round_trip():
    for shape in ({"interval": 90.5, "anchor_date": "2024-01-01T00:00:00Z", "timezone": "Europe/Berlin"},
                  {"cron": "*/5 * * * *", "timezone": None, "day_or": False},
                  {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Asia/Kolkata"}):
        engine, _, _, dep = setup()
        (rec,) = engine.create_deployment_schedules(dep.id, [shape])
        assert rec.schedule.to_json() == shape


# the operations ---------------------------------------------------------------------------------

def test_create_read_update_delete():
    engine, clock, _, dep = setup()
    a, b = engine.create_deployment_schedules(dep.id, [
        {"interval": 60},  # no anchor: the engine's now
        {"schedule": CronSchedule("0 * * * *"), "active": False, "max_scheduled_runs": 5}])
    assert a.schedule.anchor_date == T0 and (a.active, a.max_scheduled_runs) == (True, None)
    assert (b.active, b.max_scheduled_runs, b.created, b.updated) == (False, 5, T0, T0)
    assert engine.read_deployment_schedules(dep.id) == [a, b]  # equal times: creation order
    clock.advance(10)
    assert engine.update_deployment_schedule(dep.id, a.id, {"active": False, "schedule": None}) is True
    assert (a.active, a.updated) == (False, T0 + dt.timedelta(seconds=10))
    assert engine.read_deployment_schedules(dep.id) == [a, b]  # latest updated first
    clock.advance(10)
    assert engine.update_deployment_schedule(dep.id, b.id, active=True) is True
    assert engine.read_deployment_schedules(dep.id) == [b, a]
    active = DeploymentScheduleFilter(active={"eq_": True})
    assert engine.read_deployment_schedules(dep.id, active) == [b]
    assert engine.read_deployment_schedules(dep.id, {"active": {"eq_": False}}) == [a]
    assert engine.update_deployment_schedule(uuid.uuid4(), b.id, {"active": False}) is False
    assert engine.delete_deployment_schedule(uuid.uuid4(), b.id) is False
    assert engine.delete_deployment_schedule(dep.id, b.id) is True
    assert engine.delete_schedules_for_deployment(dep.id) is True
    assert engine.delete_schedules_for_deployment(dep.id) is False
    with pytest.raises(ObjectNotFoundError):
        engine.create_deployment_schedules(uuid.uuid4(), [{"interval": 60}])


def test_schedule_runs_makes_scheduled_runs_once():
    engine, clock, flow, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"interval": 3600, "anchor_date": "2024-03-09T12:30:00Z"},
                                                {"schedule": {"cron": "* * * * *"}, "active": False}])
    ids = engine.schedule_runs(dep.id)
    runs = [engine.read_flow_run(i) for i in ids]
    # min_runs 3, then on until start + 1 hour is reached: 12:30, 13:30, 14:30
    assert [r.expected_start_time for r in runs] == [T0 + dt.timedelta(minutes=30 + 60 * k) for k in range(3)]
    run = runs[0]
    assert run.idempotency_key == f"scheduled {dep.id} 2024-03-09 12:30:00+00:00"
    assert (run.tags, run.auto_scheduled, run.parameters, run.deployment_version) == (
        ["auto-scheduled", "t"], True, {"x": 1}, "v1")
    assert (run.state_type, run.state_name, run.state.message, run.state_timestamp) == (
        StateType.SCHEDULED, "Scheduled", "Flow run scheduled", None)
    assert run.state.state_details.scheduled_time == run.next_scheduled_start_time == run.expected_start_time
    assert engine.schedule_runs(dep.id) == []  # the same keys: nothing new
    manual = engine.schedule_runs(dep.id, start_time=T0 + dt.timedelta(days=1), max_runs=1, auto_scheduled=False)
    assert [engine.read_flow_run(i).tags for i in manual] == [["t"]]
    assert engine.schedule_runs(uuid.uuid4()) == []
    # an update of the deployment drops its never-run auto-scheduled runs (not the manual one)
    engine.update_deployment(dep.id, tags=["u"])
    assert [r.id for r in engine.read_flow_runs()] == manual


@pytest.mark.parametrize("min_time", [dt.timedelta(hours=3), 3 * 3600, 3 * 3600.0])
def test_schedule_runs_min_time_may_be_seconds_as_prefects_route_reads_them(min_time):
    # Prefect's /deployments/{id}/schedule takes min_time as a float of seconds.
    engine, _, _, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"interval": 3600, "anchor_date": "2024-03-09T12:00:00Z"}])
    runs = [engine.read_flow_run(i) for i in engine.schedule_runs(dep.id, min_time=min_time)]
    # past min_runs (3) until one is at or after start + 3 hours: 12:00 to 15:00
    assert [r.expected_start_time for r in runs] == [T0 + dt.timedelta(hours=k) for k in range(4)]


def test_schedule_runs_stamps_its_runs_and_state_rows_with_one_instant():
    # One insert, as Prefect's bulk insert: every run and state row gets the same
    # `created`, however the clock ticks between readings.
    engine = Engine(ManualClock(T0, tick=dt.timedelta(microseconds=1)))
    dep = engine.create_deployment(engine.create_flow("f").id, "d")
    engine.create_deployment_schedules(dep.id, [{"interval": 3600, "anchor_date": "2024-03-09T12:30:00Z"}])
    runs = [engine.read_flow_run(i) for i in engine.schedule_runs(dep.id)]
    rows = engine._store.tables["flow_run_state"].rows
    assert len(runs) == 3
    assert {r.created for r in runs} | {rows[r.state_id].created for r in runs} == {runs[0].created}


def test_pause_deployment_deletes_never_run_auto_scheduled_runs_and_resume_deletes_nothing():
    engine, clock, flow, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"interval": 3600}])
    auto = [engine.read_flow_run(i) for i in engine.schedule_runs(dep.id, max_runs=4, min_runs=4)]
    [manual] = engine.schedule_runs(dep.id, start_time=T0 + dt.timedelta(days=1), max_runs=1, auto_scheduled=False)
    clock.advance(dt.timedelta(seconds=1))
    engine.set_flow_run_state(auto[0].id, Late(), force=True)          # still SCHEDULED: goes
    engine.set_flow_run_state(auto[1].id, Pending(), force=True)       # left SCHEDULED: stays
    for state in (Running(), AwaitingRetry()):                         # SCHEDULED, but it ran: stays
        clock.advance(dt.timedelta(seconds=1))
        engine.set_flow_run_state(auto[3].id, state, force=True)
    assert auto[3].state_type is StateType.SCHEDULED and auto[3].run_count == 1
    other = engine.create_deployment(flow.id, "other", schedules=[{"schedule": {"interval": 3600}}])
    [elsewhere] = engine.schedule_runs(other.id, start_time=T0, max_runs=1)
    before = engine.read_deployment(dep.id).updated
    clock.advance(dt.timedelta(seconds=5))
    assert engine.pause_deployment(dep.id) is True
    assert engine.read_deployment(dep.id).paused is True and engine.read_deployment(dep.id).updated > before
    assert {r.id for r in engine.read_flow_runs()} == {auto[1].id, auto[3].id, manual, elsewhere}
    # Paused again: nothing to write (no new `updated`), but the deletion runs again.
    stamped = engine.read_deployment(dep.id).updated
    engine.schedule_runs(dep.id, start_time=T0 + dt.timedelta(days=2), max_runs=1)
    clock.advance(dt.timedelta(seconds=5))
    assert engine.pause_deployment(dep.id) is True
    assert engine.read_deployment(dep.id).updated == stamped
    assert engine.count_flow_runs(deployment_filter={"id": {"any_": [dep.id]}}) == 3
    # Resumed: unpaused (stamped), and its auto-scheduled runs made meanwhile are kept.
    [kept] = engine.schedule_runs(dep.id, start_time=T0 + dt.timedelta(days=3), max_runs=1)
    assert engine.resume_deployment(dep.id) is True
    assert engine.read_deployment(dep.id).paused is False and engine.read_flow_run(kept) is not None
    assert engine.read_deployment(dep.id).updated == clock.now() > stamped
    clock.advance(dt.timedelta(seconds=5))
    assert engine.resume_deployment(dep.id) is True and engine.read_deployment(dep.id).updated < clock.now()
    assert engine.pause_deployment(uuid.uuid4()) is False and engine.resume_deployment(uuid.uuid4()) is False
    with pytest.raises(ValidationError, match="deployment_id"):
        engine.pause_deployment("not-an-id")
    # Atomic: undone with the transaction it is in.
    with pytest.raises(RuntimeError):
        with engine.transaction():
            engine.pause_deployment(dep.id)
            raise RuntimeError("undo")
    assert engine.read_deployment(dep.id).paused is False and engine.read_flow_run(kept) is not None


@pytest.mark.parametrize("joined", [False, True], ids=["cold", "joined-index-live"])
@pytest.mark.parametrize("padding", ["finished runs of the deployment", "scheduled runs of another"])
def test_pause_finds_the_runs_to_delete_from_the_smaller_side(padding, joined):
    # Whichever is smaller is walked, the deployment's runs or every SCHEDULED run:
    # padding one side makes each route answer. With the (deployment, state type)
    # index a query built, its bucket answers instead.
    engine, clock, flow, dep = setup()
    if joined:
        engine._store.tables["flow_run"].by_name["deployment_id+state_type"].warm()
    other = engine.create_deployment(flow.id, "other")
    engine.create_deployment_schedules(dep.id, [{"interval": 3600}])
    auto = engine.schedule_runs(dep.id, max_runs=3, min_runs=3)
    [manual] = engine.schedule_runs(dep.id, start_time=T0 + dt.timedelta(days=1), max_runs=1, auto_scheduled=False)
    finished = padding.startswith("finished")
    # never-run auto-scheduled runs of the other deployment: kept by either route
    others = [engine.create_flow_run(flow_id=flow.id, deployment_id=other.id, state=Scheduled(),
                                     auto_scheduled=True).id for _ in range(2 if finished else 14)]
    pad = [engine.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Completed()).id
           for _ in range(12 if finished else 0)]
    engine.pause_deployment(dep.id)
    assert {r.id for r in engine.read_flow_runs()} == {manual, *others, *pad}
    assert not set(auto) & {r.id for r in engine.read_flow_runs()}


def test_deployment_create_update_and_delete_replace_and_remove_schedules():
    engine, _, flow, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"interval": 60}])
    engine.create_deployment(flow.id, "d")  # an upsert without schedules drops them (as Prefect)
    assert engine.read_deployment_schedules(dep.id) == []
    engine.create_deployment(flow.id, "d", schedules=[
        {"schedule": {"cron": "0 * * * *"}, "active": False, "max_scheduled_runs": 3}])
    (rec,) = engine.read_deployment_schedules(dep.id)
    assert (rec.active, rec.max_scheduled_runs) == (False, None)  # Prefect keeps only schedule and active
    assert engine.update_deployment(dep.id, description="x") is True  # no schedules given: kept
    assert engine.read_deployment_schedules(dep.id) == [rec]
    engine.update_deployment(dep.id, schedules=[{"schedule": {"interval": 60}}, {"rrule": "FREQ=DAILY"}])
    assert [type(s.schedule).__name__ for s in engine.read_deployment_schedules(dep.id)] == [
        "IntervalSchedule", "RRuleSchedule"]
    engine.update_deployment(dep.id, schedules=[])
    assert engine.read_deployment_schedules(dep.id) == []
    engine.create_deployment_schedules(dep.id, [{"interval": 60}])
    other = engine.create_deployment(flow.id, "other", schedules=[{"schedule": {"interval": 60}}])
    assert engine.delete_deployment(dep.id) is True
    assert engine.read_deployment_schedules(dep.id) == []
    assert engine.delete_flow(flow.id) is True
    assert engine.read_deployment_schedules(other.id) == [] and not engine._table("deployment_schedule")


def test_check_work_queues_for_deployment():
    engine, _, _, dep = setup()
    pool = engine.create_work_pool("p")
    engine.create_work_queue(pool.id, "tagged", filter={"tags": ["t"]})
    engine.create_work_queue(pool.id, "other-tag", filter={"tags": ["t", "z"]})
    engine.create_work_queue(pool.id, "mine", filter={"deployment_ids": [str(dep.id)]})
    engine.create_work_queue(pool.id, "theirs", filter={"deployment_ids": [str(uuid.uuid4())]})
    assert [q.name for q in engine.check_work_queues_for_deployment(dep.id)] == ["default", "tagged", "mine"]
    with pytest.raises(ObjectNotFoundError):
        engine.check_work_queues_for_deployment(uuid.uuid4())


@pytest.mark.parametrize("call, match", [
    (lambda e, d: e.schedule_runs(d.id, min_runs="3"), "min_runs must be an integer"),
    (lambda e, d: e.schedule_runs(d.id, max_runs=True), "max_runs must be an integer"),
    (lambda e, d: e.schedule_runs(d.id, min_time="60"), "min_time must be a timedelta or a number of seconds"),
    (lambda e, d: e.schedule_runs(d.id, min_time=True), "min_time must be a timedelta or a number of seconds"),
    (lambda e, d: e.schedule_runs(d.id, min_time=float("nan")), "min_time must be a finite number of seconds"),
    (lambda e, d: e.schedule_runs(d.id, min_time=1e300), "min_time is too large"),
    (lambda e, d: e.schedule_runs(d.id, start_time="now"), "start_time must be a datetime"),
    (lambda e, d: e.schedule_runs(d.id, auto_scheduled=None), "auto_scheduled must be a boolean"),
    (lambda e, d: e.schedule_runs("nope"), "deployment_id"),
    (lambda e, d: e.create_deployment_schedules(d.id, {"interval": 60}), "schedules must be a list"),
    (lambda e, d: e.create_deployment_schedules(d.id, [{"schedule": {"interval": 60}, "max_scheduled_runs": 0}]),
     "max_scheduled_runs must be a positive integer"),
    (lambda e, d: e.create_deployment_schedules(
        d.id, [{"schedule": {"interval": 60}, "max_scheduled_runs": MAX_SCHEDULED_RUNS_LIMIT + 1}]),
     "less than or equal to 50"),
    (lambda e, d: e.create_deployment_schedules(d.id, [{"schedule": {"interval": 60}, "active": 1}]),
     r"schedules\[0\].active must be a boolean"),
    (lambda e, d: e.create_deployment_schedules(d.id, [{"schedule": {"interval": 60}, "paused": True}]),
     r"schedules\[0\].paused: unknown key"),
    (lambda e, d: e.create_deployment_schedules(d.id, [{"active": True}]), r"schedules\[0\].schedule is required"),
    (lambda e, d: e.create_deployment_schedules(d.id, [{"schedule": {"interval": 60}, "active": None}]),
     r"schedules\[0\].active must be a boolean, got None"),
    (lambda e, d: e.update_deployment_schedule(d.id, uuid.uuid4(), {"colour": 1}), "schedule.colour: unknown key"),
    (lambda e, d: e.read_deployment_schedules(d.id, {"active": {"eq_": "yes"}}),
     "deployment_schedule_filter.active.eq_"),
    (lambda e, d: e.update_deployment(d.id, schedules=[{"interval": 0}]), "deployment.schedules"),
    (lambda e, d: e.create_deployment(d.flow_id, "d", schedules=[{"cron": "H * * * *"}]), "deployment.schedules"),
])
def test_bad_input_changes_nothing(call, match):
    engine, _, _, dep = setup()
    engine.create_deployment_schedules(dep.id, [{"interval": 60}])
    before = [(s.id, s.schedule, s.active, s.updated) for s in engine.read_deployment_schedules(dep.id)]
    with pytest.raises(ValidationError, match=match):
        call(engine, dep)
    assert [(s.id, s.schedule, s.active, s.updated) for s in engine.read_deployment_schedules(dep.id)] == before
    assert engine.count_flow_runs() == 0


def test_a_schedule_entry_may_be_a_stored_record_or_a_pydantic_style_object():
    engine, _, _, dep = setup()
    (stored,) = engine.create_deployment_schedules(dep.id, [{"schedule": {"interval": 60}, "active": False,
                                                             "max_scheduled_runs": 7}])

    class Create:  # (what Prefect's DeploymentScheduleCreate gives: only the fields set)
        def model_dump(self, exclude_unset=False):
            assert exclude_unset
            return {"schedule": {"cron": "0 9 * * *"}, "max_scheduled_runs": 3}

    copied, created = engine.create_deployment_schedules(dep.id, [stored, Create()])
    assert (copied.schedule, copied.active, copied.max_scheduled_runs) == (stored.schedule, False, 7)
    assert copied.id != stored.id
    assert (created.schedule.cron, created.active, created.max_scheduled_runs) == ("0 9 * * *", True, 3)


def test_transactions_undo_schedules_and_scheduled_runs():
    engine, clock, flow, dep = setup()
    (rec,) = engine.create_deployment_schedules(dep.id, [{"interval": 600}])
    with pytest.raises(RuntimeError):
        with engine.transaction():
            engine.create_deployment_schedules(dep.id, [{"cron": "* * * * *"}])
            engine.update_deployment_schedule(dep.id, rec.id, active=False)
            assert engine.schedule_runs(dep.id)
            engine.delete_schedules_for_deployment(dep.id)
            raise RuntimeError("undo")
    assert engine.read_deployment_schedules(dep.id) == [rec] and rec.active is True
    assert engine.count_flow_runs() == 0
    with pytest.raises(RuntimeError):
        with engine.transaction():
            engine.delete_deployment(dep.id)
            raise RuntimeError("undo")
    assert engine.read_deployment_schedules(dep.id) == [rec]


def test_the_facade_offers_prefects_functions():
    engine, clock, flow, dep = setup()

    async def main():
        async with engine.session() as s:
            made = await models.deployments.create_deployment_schedules(
                session=s, deployment_id=dep.id, schedules=[{"schedule": {"cron": "0 * * * *"}}])
            assert await models.deployments.read_deployment_schedules(s, dep.id) == made
            assert await models.deployments.update_deployment_schedule(s, dep.id, made[0].id, {"active": True})
            ids = await models.deployments.schedule_runs(s, dep.id, max_runs=2, min_runs=1)
            assert len(ids) == 2
            assert [q.name for q in await models.deployments.check_work_queues_for_deployment(s, dep.id)] == []
            assert await models.deployments.delete_deployment_schedule(s, dep.id, made[0].id)
            assert not await models.deployments.delete_schedules_for_deployment(s, dep.id)

    asyncio.run(main())


# Prefect's own answers ------------------------------------------------------------------------------

def _oracle_lines():
    return [json.loads(line) for line in DATA.read_text().splitlines()]


@pytest.mark.parametrize("line", _oracle_lines(), ids=lambda line: f"scenario-{line['scenario']['id']}")
def test_prefect_answers(line):
    assert answer(line["scenario"]) == line["answer"]
