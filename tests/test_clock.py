import datetime as dt

import pytest

from engine import Engine, ManualClock, SystemClock
from engine.errors import ValidationError

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)


def test_manual_clock_set_and_advance():
    c = ManualClock(T)
    assert c.now() == T and c.now() == T
    assert c.advance(1.5) == T + dt.timedelta(seconds=1.5)
    c.set(T)
    assert c.now() == T
    with pytest.raises(ValidationError, match="negative"):
        c.advance(-1)
    with pytest.raises(ValidationError, match="seconds or a timedelta"):
        c.advance("1")
    with pytest.raises(ValidationError, match="when is not an ISO-8601 datetime: 'soon'"):
        c.set("soon")
    with pytest.raises(ValidationError, match="when must be a datetime, got int 20241101"):
        c.set(20241101)
    with pytest.raises(ValidationError, match="tick must not be negative"):
        ManualClock(T, tick=-1)
    with pytest.raises(ValidationError, match="tick must be seconds or a timedelta"):
        ManualClock(T, tick="1")
    assert c.now() == T  # refused calls moved nothing


@pytest.mark.parametrize("start", [
    T, T.replace(tzinfo=None), "2024-11-01T00:00:00Z", "2024-11-01T00:00:00", "2024-11-01T01:00:00+01:00", "2024-11-01",
])
def test_a_clock_reads_times_as_the_engine_does(start):
    # ISO text is taken and a time without an offset is UTC, as in filters and inputs.
    assert ManualClock(start).now() == T
    clock = ManualClock()
    clock.set(start)
    assert clock.now() == T and clock.now().tzinfo is dt.timezone.utc


def test_a_tick_may_be_seconds():
    clock = ManualClock(T, tick=0.5)
    assert (clock.now(), clock.now()) == (T, T + dt.timedelta(seconds=0.5))
    assert ManualClock(T, tick=0).now() == T


def test_manual_clock_tick_keeps_readings_distinct():
    c = ManualClock(T, tick=dt.timedelta(microseconds=1))
    assert c.now() < c.now()


def test_system_clock_is_utc():
    assert SystemClock().now().tzinfo is dt.timezone.utc


def test_engine_stamps_records_from_its_clock():
    clock = ManualClock(T)
    e = Engine(clock=clock)
    flow = e.create_flow("f")
    clock.advance(10)
    run = e.create_flow_run(flow_id=flow.id)
    assert flow.created == T and run.created == T + dt.timedelta(seconds=10)
    assert e.now() == T + dt.timedelta(seconds=10)
