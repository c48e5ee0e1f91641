"""Orchestration throughput: full lifecycles through the Core policies.

Flow runs: Scheduled -> Pending -> Running -> Completed under CoreFlowPolicy
(3 transitions per run); task runs: Pending -> Running -> Completed under
CoreTaskPolicy (2 per run). States are built in the (untimed) setup, so the figure is
the engine's cost per transition: rules, global bookkeeping, storage, indexes and
one transaction per call.

    RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_orchestration.py --benchmark-only
"""
from __future__ import annotations

import datetime as dt
import gc

import pytest

from benchmarks.conftest import scaled
from engine import Engine, ManualClock
from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy
from engine.states import Completed, Pending, Running, Scheduled, StateType

SIZES = [scaled(10_000), scaled(100_000)]


def _clock() -> ManualClock:
    # A microsecond per reading keeps every state of a run at its own instant.
    return ManualClock(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), tick=dt.timedelta(microseconds=1))


def _flow_setup(n: int):
    engine = Engine(_clock())
    flow = engine.create_flow(name="bench")
    with engine.transaction():
        runs = [engine.create_flow_run(flow_id=flow.id, state=Scheduled()) for _ in range(n)]
    steps = [[(run.id, make()) for run in runs] for make in (Pending, Running, Completed)]
    gc.collect()
    return (engine, runs, steps), {}


def _task_setup(n: int):
    engine = Engine(_clock())
    flow = engine.create_flow(name="bench")
    flow_run = engine.create_flow_run(flow_id=flow.id, state=Running())
    with engine.transaction():
        runs = [engine.create_task_run(flow_run_id=flow_run.id, task_key="t", dynamic_key=str(i), state=Pending())
                for i in range(n)]
    steps = [[(run.id, make()) for run in runs] for make in (Running, Completed)]
    gc.collect()
    return (engine, runs, steps), {}


def _drive_flows(engine, runs, steps) -> None:
    set_state = engine.set_flow_run_state
    for step in steps:
        for run_id, state in step:
            set_state(run_id, state, flow_policy=CoreFlowPolicy)


def _drive_tasks(engine, runs, steps) -> None:
    set_state = engine.set_task_run_state
    for step in steps:
        for run_id, state in step:
            set_state(run_id, state, task_policy=CoreTaskPolicy)


@pytest.mark.parametrize("n", SIZES)
def test_flow_run_lifecycles(benchmark, n):
    box = {}

    def setup():
        args, kwargs = _flow_setup(n)
        box["args"] = args
        return args, kwargs

    benchmark.pedantic(_drive_flows, setup=setup, rounds=1, iterations=1)
    engine, runs, _ = box["args"]
    assert all(r.state_type is StateType.COMPLETED and r.run_count == 1 for r in runs)
    if benchmark.stats is not None:
        benchmark.extra_info["transitions_per_second"] = round(3 * n / benchmark.stats.stats.mean)


@pytest.mark.parametrize("n", SIZES)
def test_task_run_lifecycles(benchmark, n):
    box = {}

    def setup():
        args, kwargs = _task_setup(n)
        box["args"] = args
        return args, kwargs

    benchmark.pedantic(_drive_tasks, setup=setup, rounds=1, iterations=1)
    engine, runs, _ = box["args"]
    assert all(r.state_type is StateType.COMPLETED and r.run_count == 1 for r in runs)
    if benchmark.stats is not None:
        benchmark.extra_info["transitions_per_second"] = round(2 * n / benchmark.stats.stats.mean)
