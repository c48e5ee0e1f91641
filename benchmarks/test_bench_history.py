"""Run history and lateness at 100,000 flow runs spread over a month (scaled in CI).

Measure:  RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_history.py --benchmark-only

As in test_bench_queries.py, states follow time (old runs finished, recent ones
running or pending, future ones scheduled), so a day's history by state type must not
cost a pass over the month: it walks the expected-start-time index over that day only.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest

from benchmarks.conftest import PAST, load_with_state, scaled
from engine import Engine, ManualClock
from engine.records import FlowRun, FlowRunStateRow
from engine.states import StateType, TERMINAL_STATES

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
MONTH = dt.timedelta(days=30)
N_FLOW_RUNS = scaled(100_000)
N_DEPLOYMENTS = 20
NOW = T0 + MONTH * 0.9  # most of the month is past

_BY_TYPE = {"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}}


def _state_at(expected: dt.datetime, rnd: random.Random) -> StateType:
    if expected > NOW:
        return StateType.SCHEDULED
    if expected > NOW - dt.timedelta(hours=2):
        return rnd.choice([StateType.RUNNING, StateType.PENDING])
    return rnd.choice(PAST)


@pytest.fixture(scope="module")
def month():
    rnd = random.Random(2024)
    engine = Engine(clock=ManualClock(NOW))
    flow = engine.create_flow("bench")
    deployments = [engine.create_deployment(flow.id, f"dep-{i}") for i in range(N_DEPLOYMENTS)]
    store = engine._store
    step = MONTH / N_FLOW_RUNS
    runs = []
    for i in range(N_FLOW_RUNS):
        expected = T0 + step * i
        kind = _state_at(expected, rnd)
        started = None if kind in (StateType.SCHEDULED, StateType.PENDING) else \
            expected + dt.timedelta(seconds=rnd.choice([0, 1, 5, 30, 600]))
        when = expected + dt.timedelta(minutes=5) if kind in TERMINAL_STATES else started or expected
        run = FlowRun(flow_id=flow.id, name=f"run-{i:06d}", id=uuid.UUID(int=rnd.getrandbits(128), version=4),
                      deployment_id=deployments[i % N_DEPLOYMENTS].id, expected_start_time=expected,
                      start_time=started, total_run_time=dt.timedelta(minutes=5) if kind in TERMINAL_STATES
                      else dt.timedelta(0))
        load_with_state(store, run, "flow_run", FlowRunStateRow, "flow_run_id", kind, when)
        runs.append(run)
    # Build the expected-start-time index before timing (sorted indexes start cold).
    engine.flow_run_history(T0, T0 + dt.timedelta(hours=1), 3600)
    return engine, runs, deployments


def test_flow_run_history_of_a_day_hourly_by_state_type(benchmark, month):
    engine, runs, _ = month
    day = T0 + dt.timedelta(days=20)
    history = benchmark(engine.flow_run_history, day, day + dt.timedelta(days=1), 3600, flow_run_filter=_BY_TYPE)
    assert len(history) == 24
    per_hour = [0] * 24
    for run in runs:
        if day <= run.expected_start_time < day + dt.timedelta(days=1) and \
                run.state_type in (StateType.COMPLETED, StateType.FAILED):
            per_hour[(run.expected_start_time - day) // dt.timedelta(hours=1)] += 1
    assert [sum(s.count_runs for s in h.states) for h in history] == per_hour


def test_average_flow_run_lateness_of_one_deployment(benchmark, month):
    engine, runs, deployments = month
    target = deployments[3]
    lateness = benchmark(engine.average_flow_run_lateness, deployment_filter={"id": {"any_": [str(target.id)]}})
    now_s = int(NOW.timestamp())
    late = []
    for run in runs:
        if run.deployment_id != target.id:
            continue
        if run.start_time is not None:
            late.append(max(0, int(run.start_time.timestamp()) - int(run.expected_start_time.timestamp())))
        elif run.state_type not in TERMINAL_STATES and run.expected_start_time < NOW:
            late.append(now_s - int(run.expected_start_time.timestamp()))
        else:
            late.append(0)
    assert lateness == sum(late) / len(late)
