"""A worker's poll (get_scheduled_flow_runs) at 100,000 flow runs (scaled in CI).

Measure:  RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_workers.py --benchmark-only

One pool (limit 50) with four queues (limit 20 each but the default), runs spread
over a week around "now": most of the past ones finished, a few still running,
the rest scheduled. The poll asks for what is due in the next 10 seconds, as a
worker with a prefetch does every few seconds.
"""
from __future__ import annotations

import datetime as dt
import random

import pytest

from benchmarks.conftest import scaled
from engine import Completed, Engine, ManualClock, Running, Scheduled, StateType

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
N_FLOW_RUNS = scaled(100_000)


@pytest.fixture(scope="module")
def polled_pool():
    rnd = random.Random(7)
    engine = Engine(ManualClock(NOW, tick=dt.timedelta(microseconds=1)))
    flow = engine.create_flow("bench")
    pool = engine.create_work_pool("pool", concurrency_limit=50)
    queues = [engine.read_work_queue(pool.default_queue_id)]
    queues += [engine.create_work_queue(pool.id, f"q{i}", concurrency_limit=20) for i in range(3)]
    week = 7 * 86400
    for _ in range(N_FLOW_RUNS):
        offset = rnd.randrange(-week, week)
        if offset > 0 or rnd.random() < 0.02:
            state = Scheduled(scheduled_time=NOW + dt.timedelta(seconds=offset))
        else:
            state = Running() if rnd.random() < 0.0005 else Completed()
        engine.create_flow_run(flow_id=flow.id, work_queue_id=rnd.choice(queues).id, state=state)
    return engine, pool


def test_worker_poll_of_a_busy_pool(benchmark, polled_pool):
    engine, pool = polled_pool
    before = NOW + dt.timedelta(seconds=10)
    got = benchmark(engine.get_scheduled_flow_runs, work_pool_ids=[pool.id], scheduled_before=before)
    def busy(**queue):
        return engine.count_flow_runs(flow_run_filter={"state": {"type": {"any_": ["PENDING", "RUNNING"]}}},
                                      work_queue_filter=queue or None)

    assert got and len(got) <= max(0, 50 - busy())
    for queue in engine.read_work_queues(pool.id):
        taken = sum(r.work_queue_id == queue.id for r in got)
        if queue.concurrency_limit is not None:
            assert taken <= max(0, queue.concurrency_limit - busy(id={"any_": [str(queue.id)]}))
    assert all(r.flow_run.state_type is StateType.SCHEDULED and r.flow_run.next_scheduled_start_time <= before
               for r in got)


@pytest.fixture(scope="module")
def long_history_busy_elsewhere():
    # A limited queue with a long history (finished runs) and 20 due, while as many
    # runs are RUNNING in another pool: the poll's busy counts must not walk either.
    engine = Engine(ManualClock(NOW, tick=dt.timedelta(microseconds=1)))
    flow = engine.create_flow("bench")
    pool = engine.create_work_pool("pool", concurrency_limit=10_000)
    queue = engine.create_work_queue(pool.id, "q", concurrency_limit=50)
    other = engine.create_work_queue(engine.create_work_pool("other").id, "elsewhere")
    for _ in range(N_FLOW_RUNS):
        engine.create_flow_run(flow_id=flow.id, work_queue_id=queue.id, state=Completed())
        engine.create_flow_run(flow_id=flow.id, work_queue_id=other.id, state=Running())
    for i in range(20):
        engine.create_flow_run(flow_id=flow.id, work_queue_id=queue.id, state=Running())
        engine.create_flow_run(flow_id=flow.id, work_queue_id=queue.id,
                               state=Scheduled(scheduled_time=NOW - dt.timedelta(seconds=i)))
    return engine, pool


def test_worker_poll_of_a_long_history_while_many_run_elsewhere(benchmark, long_history_busy_elsewhere):
    engine, pool = long_history_busy_elsewhere
    got = benchmark(engine.get_scheduled_flow_runs, work_pool_ids=[pool.id])
    assert len(got) == 20   # the queue's 50 slots less its 20 RUNNING runs leave room for all 20
    assert all(r.flow_run.state_type is StateType.SCHEDULED for r in got)


def test_count_and_read_a_queues_running_runs_while_many_run_elsewhere(benchmark, long_history_busy_elsewhere):
    # What a work queue's page asks: its RUNNING runs, counted and the first page read.
    # Answered from the (queue, state type) index, not by walking the queue's history
    # or every RUNNING run.
    engine, pool = long_history_busy_elsewhere
    queue, = engine.read_work_queues(pool.id, work_queue_filter={"name": {"any_": ["q"]}})
    flow_runs = {"state": {"type": {"any_": ["RUNNING"]}}}
    queues = {"id": {"any_": [str(queue.id)]}}

    def count_and_read():
        return (engine.count_flow_runs(flow_run_filter=flow_runs, work_queue_filter=queues),
                engine.read_flow_runs(flow_run_filter=flow_runs, work_queue_filter=queues, sort="NAME_ASC", limit=10))

    count, page = benchmark(count_and_read)
    assert count == 20
    assert len(page) == 10 and [r.name for r in page] == sorted(r.name for r in page)
    assert all(r.state_type is StateType.RUNNING and r.work_queue_id == queue.id for r in page)
