"""The pytest plugin, exercised through pytest itself (pytester)."""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(source)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


README_EXAMPLE = '''
from datetime import timedelta

from engine import Completed, Pending, Running, Scheduled, StateType
from engine.orchestration import CoreFlowPolicy


def test_a_flow_run_completes(runstate_engine, runstate_clock):
    flow = runstate_engine.create_flow(name="etl")
    run = runstate_engine.create_flow_run(flow_id=flow.id, state=Scheduled(runstate_clock.now()))
    for state in (Pending(), Running()):
        result = runstate_engine.set_flow_run_state(run.id, state, flow_policy=CoreFlowPolicy)
        assert result.status == "ACCEPT"
    runstate_clock.advance(timedelta(minutes=5))
    runstate_engine.set_flow_run_state(run.id, Completed(), flow_policy=CoreFlowPolicy)
    assert run.state_type is StateType.COMPLETED
    assert run.run_count == 1
    assert run.total_run_time >= timedelta(minutes=5)
'''


def test_readme_example_passes(pytester: pytest.Pytester) -> None:
    try:
        from engine.orchestration import CoreFlowPolicy  # noqa: F401
    except ImportError:
        pytest.skip("engine.orchestration has no CoreFlowPolicy yet")
    _run(pytester, README_EXAMPLE).assert_outcomes(passed=1)


def test_fixtures_are_registered_through_the_entry_point(pytester: pytest.Pytester) -> None:
    # No conftest and no -p option: the fixtures can only come from the pytest11 entry point.
    result = pytester.runpytest_subprocess("--fixtures")
    out = result.stdout.str()
    for name in ("runstate_engine", "runstate_clock", "runstate_session", "runstate_sqlite_engine"):
        assert f"{name} -- " in out, name


def test_each_test_gets_a_fresh_engine_and_clock(pytester: pytest.Pytester) -> None:
    source = '''
import pytest
from datetime import datetime, timedelta, timezone

@pytest.mark.parametrize("i", range(3))
def test_isolated(runstate_engine, runstate_clock, i):
    assert runstate_engine.read_flows() == []
    assert runstate_engine.clock is runstate_clock
    assert runstate_clock.now() < datetime(2024, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
    runstate_engine.create_flow(name=f"flow-{i}")
    runstate_clock.advance(timedelta(days=1))
    assert runstate_engine.now() >= datetime(2024, 1, 2, tzinfo=timezone.utc)
'''
    _run(pytester, source).assert_outcomes(passed=3)


def test_clock_ticks_so_successive_readings_differ(pytester: pytest.Pytester) -> None:
    source = '''
def test_tick(runstate_clock):
    a, b = runstate_clock.now(), runstate_clock.now()
    assert b > a
'''
    _run(pytester, source).assert_outcomes(passed=1)


def test_marker_configures_clock(pytester: pytest.Pytester) -> None:
    source = '''
import pytest
from datetime import datetime, timedelta, timezone
from engine.clock import SystemClock

START = datetime(2030, 5, 6, tzinfo=timezone.utc)

@pytest.mark.runstate(start=START, tick=timedelta(0))
def test_start(runstate_engine):
    assert runstate_engine.now() == START
    assert runstate_engine.now() == START

@pytest.mark.runstate(system_clock=True)
def test_system(runstate_engine):
    assert isinstance(runstate_engine.clock, SystemClock)
'''
    _run(pytester, source).assert_outcomes(passed=2)


def test_marker_takes_times_and_ticks_as_the_clock_does(pytester: pytest.Pytester) -> None:
    source = '''
import pytest
from datetime import datetime, timezone

@pytest.mark.runstate(start="2030-01-01T00:00:00Z", tick=0)
def test_text(runstate_engine):
    assert runstate_engine.now() == runstate_engine.now() == datetime(2030, 1, 1, tzinfo=timezone.utc)

@pytest.mark.runstate(start=datetime(2030, 1, 1), tick=2)
def test_naive(runstate_engine, runstate_clock):
    assert runstate_engine.now() == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert runstate_clock.now() == datetime(2030, 1, 1, 0, 0, 2, tzinfo=timezone.utc)

@pytest.mark.runstate(start="someday")
def test_bad_start(runstate_engine):
    pass
'''
    result = _run(pytester, source)
    result.assert_outcomes(passed=2, errors=1)
    assert "@pytest.mark.runstate: start is not an ISO-8601 datetime: 'someday'" in result.stdout.str()


def test_the_manual_clock_fixture_is_refused_with_the_system_clock(pytester: pytest.Pytester) -> None:
    # Advancing it would move nothing the engine reads.
    source = '''
import pytest

@pytest.mark.runstate(system_clock=True)
def test_both(runstate_engine, runstate_clock):
    pass
'''
    result = _run(pytester, source)
    result.assert_outcomes(errors=1)
    assert "gives the engines the real clock: drop one of the two" in result.stdout.str()


def test_markers_at_several_levels_combine_the_closest_winning(pytester: pytest.Pytester) -> None:
    source = '''
import pytest
from datetime import datetime, timezone
from engine.clock import SystemClock

pytestmark = pytest.mark.runstate(start="2031-01-01T00:00:00Z")

@pytest.mark.runstate(tick=0)
class TestManual:
    def test_module_start_class_tick(self, runstate_engine):
        assert runstate_engine.now() == runstate_engine.now() == datetime(2031, 1, 1, tzinfo=timezone.utc)

    @pytest.mark.runstate(start="2032-01-01T00:00:00Z")
    def test_own_start_class_tick(self, runstate_engine):
        assert runstate_engine.now() == runstate_engine.now() == datetime(2032, 1, 1, tzinfo=timezone.utc)


@pytest.mark.runstate(system_clock=True, start=None)
class TestSystem:
    def test_real_clock(self, runstate_engine):
        assert isinstance(runstate_engine.clock, SystemClock)

    @pytest.mark.runstate(tick=0)
    def test_contradiction(self, runstate_engine):
        pass

    @pytest.mark.runstate(system_clock=False, tick=0)
    def test_manual_again(self, runstate_engine):
        assert runstate_engine.now() == runstate_engine.now()
'''
    result = _run(pytester, source)
    result.assert_outcomes(passed=4, errors=1)
    assert "system_clock=True and tick= together" in result.stdout.str()


def test_marker_with_unknown_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    source = '''
import pytest

@pytest.mark.runstate(speed=3)
def test_bad(runstate_engine):
    pass
'''
    result = _run(pytester, source)
    result.assert_outcomes(errors=1)
    assert "unknown option(s) ['speed']" in result.stdout.str()


def test_session_fixture_is_closed_after_the_test(pytester: pytest.Pytester) -> None:
    source = '''
import asyncio
from engine import models

SEEN = []

def test_use(runstate_session):
    flow = asyncio.run(models.flows.create_flow(runstate_session, flow={"name": "f"}))
    assert flow.name == "f"
    SEEN.append(runstate_session)

def test_closed_afterwards():
    assert SEEN[0].closed
'''
    _run(pytester, source).assert_outcomes(passed=2)


def test_sqlite_fixture_is_durable_or_skipped_cleanly(pytester: pytest.Pytester) -> None:
    source = '''
from engine import Engine

def test_durable(runstate_sqlite_engine, runstate_sqlite_url):
    flow = runstate_sqlite_engine.create_flow(name="kept")
    runstate_sqlite_engine.close()
    with Engine.open(runstate_sqlite_url) as again:
        assert again.read_flow(flow.id).name == "kept"
'''
    result = _run(pytester, source, "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == 1, result.stdout.str()
    if outcomes.get("skipped"):
        result.stdout.fnmatch_lines(["*SQLite backend is not available*"])
