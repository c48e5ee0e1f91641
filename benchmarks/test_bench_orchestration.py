"""Orchestration throughput: full lifecycles through the Core policies.

Flow runs: Scheduled -> Pending -> Running -> Completed under CoreFlowPolicy
(3 transitions per run); task runs: Pending -> Running -> Completed under
CoreTaskPolicy (2 per run). States are built in the (untimed) setup, so the figure is
the engine's cost per transition: rules, global bookkeeping, storage, indexes and
one transaction per call. Tagged task runs: the same lifecycle, one run at a time,
under a tag limit whose slots other runs already hold (the slot list's cost).

    RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_orchestration.py --benchmark-only
"""
from __future__ import annotations

import gc

import pytest

from benchmarks.conftest import scaled
from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy
from engine.states import Completed, Pending, Running, Scheduled, StateType
from engine.testing.plugin import new_engine

SIZES = [scaled(10_000), scaled(100_000)]
# Slots other task runs hold on the tag limit of the tagged lifecycles.
HELD = scaled(5_000)


def _flow_setup(n: int):
    engine = new_engine()
    flow = engine.create_flow(name="bench")
    with engine.transaction():
        runs = [engine.create_flow_run(flow_id=flow.id, state=Scheduled()) for _ in range(n)]
    steps = [[(run.id, make()) for run in runs] for make in (Pending, Running, Completed)]
    return engine, runs, steps


def _task_setup(n: int, held: int = 0):
    # With `held`, the runs are tagged "db", whose limit has `held` slots taken by
    # other RUNNING task runs and one free.
    engine = new_engine()
    flow = engine.create_flow(name="bench")
    flow_run = engine.create_flow_run(flow_id=flow.id, state=Running())
    with engine.transaction():
        holders = [engine.create_task_run(flow_run_id=flow_run.id, task_key="h", dynamic_key=str(i), state=Running())
                   for i in range(held)]
        runs = [engine.create_task_run(flow_run_id=flow_run.id, task_key="t", dynamic_key=str(i),
                                       tags=["db"] if held else [], state=Pending()) for i in range(n)]
    if held:
        engine.create_concurrency_limit("db", held + 1, active_slots=[str(h.id) for h in holders])
    steps = [[(run.id, make()) for run in runs] for make in (Running, Completed)]
    return engine, runs, steps


def _tagged_task_setup(n: int):
    return _task_setup(n, HELD)


def _drive_flows(engine, steps) -> None:
    set_state = engine.set_flow_run_state
    for step in steps:
        for run_id, state in step:
            set_state(run_id, state, flow_policy=CoreFlowPolicy)


def _drive_tasks(engine, steps) -> None:
    set_state = engine.set_task_run_state
    for step in steps:
        for run_id, state in step:
            set_state(run_id, state, task_policy=CoreTaskPolicy)


def _drive_tagged_tasks(engine, steps) -> None:
    # One run at a time: each takes the one free slot and gives it back, so every
    # transition sees the HELD slots of the others (none waits).
    set_state = engine.set_task_run_state
    for (run_id, running), (_, completed) in zip(*steps):
        set_state(run_id, running, task_policy=CoreTaskPolicy)
        set_state(run_id, completed, task_policy=CoreTaskPolicy)


def _measure_lifecycles(benchmark, n: int, build, drive):
    """Time `drive` over the lifecycles `build(n)` prepared (untimed), then check every
    run completed; returns the engine."""
    box = {}

    def setup():
        box["engine"], box["runs"], box["steps"] = build(n)
        gc.collect()
        return (box["engine"], box["steps"]), {}

    benchmark.pedantic(drive, setup=setup, rounds=1, iterations=1)
    assert all(r.state_type is StateType.COMPLETED and r.run_count == 1 for r in box["runs"])
    if benchmark.stats is not None:
        transitions = n * len(box["steps"])
        benchmark.extra_info["transitions_per_second"] = round(transitions / benchmark.stats.stats.mean)
    return box["engine"]


@pytest.mark.parametrize("n", SIZES)
def test_flow_run_lifecycles(benchmark, n):
    _measure_lifecycles(benchmark, n, _flow_setup, _drive_flows)


@pytest.mark.parametrize("n", SIZES)
def test_task_run_lifecycles(benchmark, n):
    _measure_lifecycles(benchmark, n, _task_setup, _drive_tasks)


def test_tagged_task_run_lifecycles(benchmark):
    engine = _measure_lifecycles(benchmark, SIZES[0], _tagged_task_setup, _drive_tagged_tasks)
    slots = engine.read_concurrency_limit_by_tag("db").active_slots
    # The others' slots are left as they were, in their order.
    assert [engine.read_task_run(s).dynamic_key for s in slots] == [str(i) for i in range(HELD)]


def test_breakdown_script_reports_every_policy(capsys):
    # benchmarks/breakdown.py, the per-transition diagnostic quoted in notes
    from benchmarks import breakdown

    breakdown.main(["20"])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [row[0] for row in rows] == ["CoreTaskPolicy", "MinimalTaskPolicy"]
    assert all(float(row[3]) > 0 and float(row[6]) > 0 for row in rows)
    assert gc.isenabled()  # left as it found it
