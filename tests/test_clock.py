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
    with pytest.raises(ValidationError, match="naive"):
        c.set(dt.datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="expected a datetime"):
        c.set("2024-01-01")
    with pytest.raises(ValidationError, match="tick"):
        ManualClock(T, tick=-1)
    assert c.now() == T  # refused calls moved nothing


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
