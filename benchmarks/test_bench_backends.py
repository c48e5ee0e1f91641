"""Durability backends: transition throughput with SQLite (write-through, FULL sync,
batched) against memory only, and whole-engine save/open at 100,000 flow runs with
4 states each.

Full measurement:
    RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_backends.py --benchmark-only -p no:randomly -s
"""
from __future__ import annotations

import datetime as _dt
import os
import time
import uuid

import pytest

from backends.base import rebuild
from backends.json_snapshot import JsonSnapshotBackend
from backends.sqlite import SqliteBackend
from benchmarks.conftest import scaled
from engine import Completed, Engine, Pending, Running, Scheduled
from engine.records import FlowRun, FlowRunStateRow
from engine.states import StateDetails, StateType
from engine.testing.plugin import DEFAULT_START, new_clock, new_engine

START = DEFAULT_START  # where new_clock() starts
TRANSITION_RUNS = scaled(5_000)  # x3 transitions each
BIG = scaled(100_000)  # flow runs, 4 states each


def _policy():
    from engine.orchestration import CoreFlowPolicy

    return CoreFlowPolicy


def _transitions(engine: Engine, runs: list) -> int:
    policy = _policy()
    set_state = engine.set_flow_run_state
    n = 0
    for run_id in runs:
        for state in (Pending(), Running(), Completed()):
            set_state(run_id, state, flow_policy=policy)
            n += 1
    return n


def _measure_transitions(benchmark, make_engine, label: str) -> None:
    made = []

    def setup():
        engine = make_engine(len(made))
        flow = engine.create_flow(name="bench")
        with engine.transaction():  # setup cost is not what we measure
            runs = [engine.create_flow_run(flow_id=flow.id, state=Scheduled()).id for _ in range(TRANSITION_RUNS)]
        engine.flush()  # batched mode: the setup's own batch is not part of the round
        made.append(engine)
        in_backend.append(0.0)
        listeners = engine._store.listeners
        for i, listener in enumerate(listeners):
            listeners[i] = _timed_listener(listener, in_backend)
        return (engine, runs), {}

    cpu: list[float] = []
    in_backend: list[float] = []  # CPU seconds spent in the backend, per round

    def run(engine, runs):
        # CPU time (user + system) beside wall time: on a shared machine the wall-clock
        # rate mostly measures how often we got a core.
        start = time.process_time()
        n = _transitions(engine, runs)
        flushed = time.process_time()
        engine.flush()  # batched mode: the last batch counts too
        end = time.process_time()
        in_backend[-1] += end - flushed
        cpu.append(end - start)
        return n

    n = benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    for engine in made:
        engine.close()
    if benchmark.stats:
        rate = n / benchmark.stats.stats.min
        cpu_rate = n / min(cpu)
        benchmark.extra_info["transitions_per_second"] = round(rate)
        benchmark.extra_info["transitions_per_cpu_second"] = round(cpu_rate)
        backend_us = min(in_backend) / n * 1e6
        benchmark.extra_info["backend_cpu_us_per_transition"] = round(backend_us, 1)
        print(f"\n{label}: {rate:,.0f} flow-run transitions/s wall, {cpu_rate:,.0f} per CPU-second; "
              f"backend's own share {backend_us:.1f} us CPU per transition (best of 3, {n} transitions)")


def _timed_listener(listener, acc: list[float]):
    def timed(changes):
        start = time.process_time()
        try:
            listener(changes)
        finally:
            acc[-1] += time.process_time() - start

    return timed


def test_transitions_memory_only(benchmark):
    _measure_transitions(benchmark, lambda i: new_engine(), "memory only")


def test_transitions_sqlite_write_through(benchmark, tmp_path):
    _measure_transitions(
        benchmark, lambda i: Engine.open(f"sqlite:///{tmp_path}/wt{i}.db", clock=new_clock()),
        "sqlite write-through (WAL, synchronous=NORMAL)",
    )


def test_transitions_sqlite_write_through_full_sync(benchmark, tmp_path):
    global TRANSITION_RUNS
    saved, TRANSITION_RUNS = TRANSITION_RUNS, max(10, TRANSITION_RUNS // 20)  # an fsync per commit is slow
    try:
        _measure_transitions(
            benchmark,
            lambda i: Engine.open(f"sqlite:///{tmp_path}/full{i}.db", clock=new_clock(), synchronous="FULL"),
            "sqlite write-through (WAL, synchronous=FULL)",
        )
    finally:
        TRANSITION_RUNS = saved


def test_transitions_sqlite_batched(benchmark, tmp_path):
    _measure_transitions(
        benchmark, lambda i: Engine.open(f"sqlite:///{tmp_path}/b{i}.db", clock=new_clock(), batch=1000),
        "sqlite batched (1000 commits per SQLite transaction)",
    )


# 100,000 runs x 4 states ------------------------------------------------------------------------

def _big_records(n: int) -> dict[str, list]:
    """n flow runs of one flow, each with SCHEDULED, PENDING, RUNNING, COMPLETED states."""
    engine = new_engine()
    flow = engine.create_flow(name="big", tags=["bench"])
    runs, states = [], []
    types = (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.COMPLETED)
    for i in range(n):
        run_id = uuid.uuid4()
        t0 = START + _dt.timedelta(seconds=i)
        rows = []
        for k, st in enumerate(types):
            ts = t0 + _dt.timedelta(seconds=k)
            details = StateDetails(flow_run_id=run_id, scheduled_time=t0 if k == 0 else None)
            row = FlowRunStateRow(type=st, timestamp=ts, name=st.value.capitalize(), state_details=details,
                                  flow_run_id=run_id)
            row.created = row.updated = ts
            rows.append(row)
        states.extend(rows)
        last = rows[-1]
        run = FlowRun(
            flow_id=flow.id, id=run_id, name=f"run-{i}", tags=["bench", f"t{i % 10}"], parameters={"i": i},
            state_id=last.id, state_type=last.type, state_name=last.name, state_timestamp=last.timestamp,
            run_count=1, expected_start_time=t0, start_time=rows[2].timestamp, end_time=last.timestamp,
            total_run_time=_dt.timedelta(seconds=1),
        )
        run.created, run.updated = t0, last.timestamp
        runs.append(run)
    return {"flow": [flow], "flow_run": runs, "flow_run_state": states}


@pytest.fixture(scope="module")
def big_engine() -> Engine:
    engine = new_engine()
    rebuild(engine, _big_records(BIG))
    return engine


@pytest.fixture(scope="module")
def big_files(big_engine, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("big")
    json_path = str(folder / "big.json")
    backend = JsonSnapshotBackend(json_path)
    backend.open()
    backend.attach(big_engine)
    backend.flush()
    big_engine._store.listeners.remove(backend._on_commit)  # (bound methods compare equal)
    backend.abort()
    db_path = str(folder / "big.db")
    sqlite_backend = SqliteBackend(db_path)
    sqlite_backend.open()
    tables = big_engine._store.tables
    sqlite_backend._write([(k, r.id, r, False)  # (kind, id, record, renewed)
                           for k in ("flow", "flow_run", "flow_run_state") for r in tables[k].rows.values()])
    sqlite_backend.abort()
    return {"json": json_path, "sqlite": db_path}


def _report(benchmark, label: str, cpu: list[float]) -> None:
    if benchmark.stats:
        benchmark.extra_info["cpu_seconds"] = round(min(cpu), 2)
        print(f"\n{label}: best {benchmark.stats.stats.min:.2f} s wall, {min(cpu):.2f} s CPU "
              f"for {BIG:,} flow runs x 4 states")


def _cpu_timed(fn, cpu: list[float]):
    def timed(*args):
        start = time.process_time()
        result = fn(*args)
        cpu.append(time.process_time() - start)
        return result

    return timed


def test_json_snapshot_save(benchmark, big_engine, tmp_path):
    backend = JsonSnapshotBackend(str(tmp_path / "save.json"))
    backend.open()
    backend.attach(big_engine)
    cpu: list[float] = []
    try:
        benchmark.pedantic(_cpu_timed(backend.flush, cpu), rounds=3, iterations=1)
    finally:
        big_engine._store.listeners.remove(backend._on_commit)  # (bound methods compare equal)
        backend.abort()
    benchmark.extra_info["bytes"] = os.path.getsize(tmp_path / "save.json")
    _report(benchmark, f"json snapshot save ({benchmark.extra_info['bytes'] / 1e6:.0f} MB)", cpu)


def _open_and_close(url: str) -> int:
    engine = Engine.open(url, clock=new_clock())
    n = len(engine._store.tables["flow_run_state"].rows)
    engine.close()  # unchanged: nothing is written
    return n


def test_json_snapshot_load(benchmark, big_files):
    cpu: list[float] = []
    n = benchmark.pedantic(_cpu_timed(_open_and_close, cpu), args=(f"json:///{big_files['json']}",), rounds=3, iterations=1)
    assert n == 4 * BIG
    _report(benchmark, "json snapshot open (load + rebuild)", cpu)


def test_sqlite_open(benchmark, big_files):
    cpu: list[float] = []
    n = benchmark.pedantic(_cpu_timed(_open_and_close, cpu), args=(f"sqlite:///{big_files['sqlite']}",), rounds=3, iterations=1)
    assert n == 4 * BIG
    _report(benchmark, "sqlite open (bulk load + rebuild)", cpu)
