"""Index-backed queries at 100,000 flow runs and 1,000,000 task runs (scaled in CI).

Measure:  RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_queries.py --benchmark-only

The dataset is realistic in the way that hurts naive plans: expected start times
grow with the run index, and state types follow time (old runs finished, recent
ones running, future ones scheduled), so "SCHEDULED by expected start" cannot be
answered by walking the global time order from the start.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import random
import uuid

import pytest

from benchmarks.conftest import PAST, load_with_state, scaled
from engine import Engine, ManualClock
from engine.records import FlowRun, FlowRunStateRow, TaskRun, TaskRunStateRow
from engine.states import StateType

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
N_FLOW_RUNS = scaled(100_000)
N_TASK_RUNS = scaled(1_000_000)
N_OLDEST = scaled(1_000)  # tagged "oldest": a small set that sorts last in a newest-first read

_TASK_MIX = [StateType.COMPLETED] * 6 + [StateType.RUNNING, StateType.FAILED, StateType.PENDING, StateType.SCHEDULED]


def _flow_state(i: int, n: int, rnd: random.Random) -> StateType:
    if i > n * 0.9:
        return StateType.SCHEDULED
    if i > n * 0.88:
        return rnd.choice([StateType.RUNNING, StateType.PENDING])
    return rnd.choice(PAST)


@pytest.fixture(scope="module")
def big():
    rnd = random.Random(2024)
    engine = Engine(clock=ManualClock(T0 + dt.timedelta(days=400)))
    flow = engine.create_flow("bench")
    store = engine._store
    runs = []
    for i in range(N_FLOW_RUNS):
        expected = T0 + dt.timedelta(seconds=300 * i)
        st = _flow_state(i, N_FLOW_RUNS, rnd)
        run = FlowRun(flow_id=flow.id, name=f"run-{i:06d}", id=uuid.UUID(int=rnd.getrandbits(128), version=4),
                      tags=["oldest"] if i < N_OLDEST else [],
                      expected_start_time=expected,
                      next_scheduled_start_time=expected if st is StateType.SCHEDULED else None,
                      start_time=None if st in (StateType.SCHEDULED, StateType.PENDING) else expected)
        load_with_state(store, run, "flow_run", FlowRunStateRow, "flow_run_id", st, expected)
        runs.append(run)
    per_run = max(1, N_TASK_RUNS // N_FLOW_RUNS)
    for run in runs:
        for j in range(per_run):
            st = rnd.choice(_TASK_MIX)
            at = run.expected_start_time + dt.timedelta(seconds=j)
            task = TaskRun(flow_run_id=run.id, task_key=f"t{j}", dynamic_key="0", name=f"t{j}",
                           id=uuid.UUID(int=rnd.getrandbits(128), version=4),
                           expected_start_time=run.expected_start_time,
                           start_time=None if st in (StateType.SCHEDULED, StateType.PENDING) else at)
            load_with_state(store, task, "task_run", TaskRunStateRow, "task_run_id", st, at)
    # Build the sort indexes the reads use before timing (they start cold).
    engine.read_flow_runs(flow_run_filter={"state": {"type": {"any_": ["SCHEDULED"]}}},
                          sort="EXPECTED_START_TIME_ASC", limit=1)
    return engine, runs


def test_count_task_runs_by_state_unfiltered(benchmark, big):
    engine, _ = big
    counts = benchmark(engine.count_task_runs_by_state)
    assert sum(counts.as_dict().values()) == len(engine._store.tables["task_run"].rows)


def test_count_task_runs_by_state_of_one_flow_run(benchmark, big):
    engine, runs = big
    target = runs[len(runs) // 2]
    flt = {"id": {"any_": [str(target.id)]}}
    counts = benchmark(engine.count_task_runs_by_state, flow_run_filter=flt)
    bucket = engine._store.tables["task_run"].by_name["flow_run_id"].get(target.id)
    assert sum(counts.as_dict().values()) == len(bucket)


def test_count_flow_runs_by_state_type(benchmark, big):
    engine, runs = big
    flt = {"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}}
    n = benchmark(engine.count_flow_runs, flow_run_filter=flt)
    assert n == sum(1 for r in runs if r.state_type in (StateType.COMPLETED, StateType.FAILED))


def test_read_scheduled_flow_runs_by_expected_start(benchmark, big):
    engine, runs = big
    flt = {"state": {"type": {"any_": ["SCHEDULED"]}}}
    got = benchmark(engine.read_flow_runs, flow_run_filter=flt, sort="EXPECTED_START_TIME_ASC", limit=100)
    expected = sorted((r for r in runs if r.state_type is StateType.SCHEDULED),
                      key=lambda r: (r.expected_start_time, r.id.int))[:100]
    assert [r.id for r in got] == [r.id for r in expected]


def test_read_flow_runs_page_by_name_with_offset(benchmark, big):
    engine, runs = big
    flt = {"state": {"type": {"not_any_": ["SCHEDULED"]}}}
    got = benchmark(engine.read_flow_runs, flow_run_filter=flt, sort="NAME_DESC", offset=200, limit=100)
    assert len(got) == min(100, max(0, sum(r.state_type is not StateType.SCHEDULED for r in runs) - 200))
    assert [r.name for r in got] == sorted((r.name for r in got), reverse=True)


def test_dashboard_task_run_counts_of_one_hour(benchmark, big):
    # The UI's task-run chart over one hour of the dataset (its middle task run's):
    # it walks the task runs' start-time index over that hour (about 120 flow runs'
    # worth at full size).
    engine, _ = big
    task_runs = engine._store.tables["task_run"].rows.values()
    starts = sorted(t.start_time for t in task_runs if t.start_time is not None)
    hour = starts[len(starts) // 2].replace(minute=0, second=0, microsecond=0)
    # before_ in the hour's last minute: the chart's window ends with that minute.
    flt = {"start_time": {"after_": hour, "before_": hour + dt.timedelta(minutes=59)}}
    engine.read_dashboard_task_run_counts(flt)  # the start-time index starts cold
    bars = benchmark(engine.read_dashboard_task_run_counts, flt)
    finished = [t for t in task_runs if t.start_time is not None
                and hour <= t.start_time < hour + dt.timedelta(hours=1) and t.state_type in
                (StateType.COMPLETED, StateType.FAILED)]
    assert finished  # the hour holds finished task runs at any scale
    assert sum(b.completed for b in bars) == sum(t.state_type is StateType.COMPLETED for t in finished)
    assert sum(b.failed for b in bars) == sum(t.state_type is StateType.FAILED for t in finished)


def test_count_flow_runs_by_name_like_with_many_wildcards(benchmark, big):
    # A `like_` with several `%`s over every run's name (each a scan: no index
    # answers a substring). It was a backtracking regex, exponential in the `%`s.
    engine, runs = big
    flt = {"name": {"like_": "r%u%n%-%0%0%1"}}
    got = benchmark(engine.count_flow_runs, flow_run_filter=flt)
    assert got == sum(fnmatch.fnmatchcase(r.name.lower(), "*r*u*n*-*0*0*1*") for r in runs) > 0


def test_read_newest_of_a_small_set_that_sorts_last(benchmark, big):
    # The newest of the 1,000 oldest runs (a tag): walking the newest-first order
    # would pass every other run before the first match; the walk gives up after
    # about twice the tag's size and sorts the tagged runs instead.
    engine, runs = big
    flt = {"tags": {"all_": ["oldest"]}}
    got = benchmark(engine.read_flow_runs, flow_run_filter=flt, sort="EXPECTED_START_TIME_DESC", limit=1)
    assert [r.id for r in got] == [runs[N_OLDEST - 1].id]
