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
    with pytest.raises(ValidationError, match=r"advance is not a duration: '1' \(give seconds, a timedelta, or text"):
        c.advance("1")
    assert c.advance("PT1M") == T + dt.timedelta(minutes=1)  # duration text as Prefect reads it
    c.set(T)
    with pytest.raises(ValidationError, match="when is not an ISO-8601 datetime: 'soon'"):
        c.set("soon")
    with pytest.raises(ValidationError, match="when must be a datetime, got int 20241101"):
        c.set(20241101)
    with pytest.raises(ValidationError, match="^tick must not be negative, got -1$"):  # as given
        ManualClock(T, tick=-1)
    with pytest.raises(ValidationError, match="tick is not a duration: '1'"):
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


def test_a_manual_clock_shows_its_time_and_tick_without_a_reading():
    clock = ManualClock(T, tick=dt.timedelta(seconds=2))
    assert (clock.time, clock.tick) == (T, dt.timedelta(seconds=2))
    assert clock.time == T  # looking moved nothing
    assert clock.now() == T and clock.time == T + dt.timedelta(seconds=2)
    clock.advance(1)
    assert clock.time == T + dt.timedelta(seconds=3)
    assert ManualClock(T, tick=0.25).tick == dt.timedelta(seconds=0.25)
    with pytest.raises(AttributeError):
        clock.time = T  # set() and advance() move it, with their checks


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


class _Fixed:
    """A user's own clock (not runstate's), returning whatever it was given."""

    def __init__(self, value):
        self.value = value

    def now(self):
        return self.value


def test_a_users_clock_is_read_as_any_time_the_engine_is_given():
    # Without an offset: UTC (as the engine reads every time); another offset: made UTC.
    naive = Engine(_Fixed(dt.datetime(2024, 1, 1, 12)))
    assert naive.create_flow("f").created == dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    shifted = Engine(_Fixed(dt.datetime(2024, 1, 1, 12, tzinfo=plus_two)))
    created = shifted.create_flow("f").created
    assert created == dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone.utc) and created.tzinfo is dt.timezone.utc
    # ... so its times compare with the filters' (a naive one used to raise TypeError there)
    assert naive.count_flow_runs(flow_run_filter={"start_time": {"after_": "2023-01-01T00:00:00Z"}}) == 0
    clock = _Fixed(dt.datetime(2024, 1, 1))
    assert Engine(clock).clock is clock and repr(clock) in repr(Engine(clock))


@pytest.mark.parametrize("clock", ["system", 5, object()])
def test_a_clock_without_now_is_refused_when_the_engine_is_built(clock):
    with pytest.raises(ValidationError, match="clock must have a now"):
        Engine(clock)


@pytest.mark.parametrize("reading", ["2024", 1700000000, None])
def test_a_clock_reading_that_is_not_a_datetime_fails_the_call_and_stores_nothing(reading):
    clock = _Fixed(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    engine = Engine(clock)
    engine.create_flow("kept")
    clock.value = reading
    with pytest.raises(ValidationError, match="now\\(\\) must return a datetime"):
        engine.create_flow("lost")
    assert [f.name for f in engine.read_flows()] == ["kept"]
