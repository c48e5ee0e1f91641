"""One engine shared by many threads (and asyncio tasks) keeps every invariant:
counts equal scans, at most `limit` slots held per tag or deployment at any
instant, no lost state rows, no partially visible transactions."""
from __future__ import annotations

import asyncio
import collections
import random
import sys
import threading
import time

import pytest

from engine import Completed, Engine, Failed, Pending, Running, Scheduled, StateType, models
from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy
from engine.testing.plugin import new_engine
from test_backends_support import check_indexes

THREADS = 8
RUNS_PER_THREAD = 25


@pytest.fixture(autouse=True)
def fast_switching():
    # Switch threads very often so interleavings that would expose a race happen.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


class Ledger:
    """What the drivers saw: every state id written per run, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written: dict = collections.defaultdict(list)
        self.errors: list = []

    def record(self, run_id, result) -> None:
        state = result.state
        if state is None:
            return
        with self.lock:
            seen = self.written[run_id]
            if result.status.value in ("ACCEPT", "REJECT") and (not seen or seen[-1] != state.id):
                seen.append(state.id)


def _run_threads(targets) -> None:
    """Run each target in its own thread; re-raise the first exception any raised."""
    failures: list = []

    def guarded(target):
        def go():
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
        return go

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a driver thread hung"
    if failures:
        raise failures[0]


class Monitor:
    """Checks an invariant under the engine lock, over and over, until stopped."""

    def __init__(self, engine: Engine, check) -> None:
        self.engine, self.check = engine, check
        self.stop = threading.Event()
        self.violations: list = []
        self.samples = 0

    def __call__(self) -> None:
        while not self.stop.is_set():
            try:
                with self.engine.transaction():
                    problem = self.check()
            except Exception as exc:  # noqa: BLE001 - a crash is a violation too
                problem = repr(exc)
            self.samples += 1
            if problem:
                self.violations.append(problem)


def _assert_history_intact(engine: Engine, ledger: Ledger, kind: str) -> None:
    read = engine.read_task_run_states if kind == "task" else engine.read_flow_run_states
    table = engine._store.tables[f"{kind}_run"].rows
    for run_id, written in ledger.written.items():
        stored = [s.id for s in read(run_id)]
        # Creation-time (forced) states are not in the ledger: they precede its entries.
        assert stored[len(stored) - len(written):] == written, f"lost or reordered states of {run_id}"
        assert table[run_id].state_id == stored[-1]


def _assert_counts_equal_scans(engine: Engine) -> None:
    task_runs = list(engine._store.tables["task_run"].rows.values())
    by_type = collections.Counter(r.state_type.value for r in task_runs if r.state_type is not None)
    counted = {k: v for k, v in engine.count_task_runs_by_state().as_dict().items() if v}
    assert counted == dict(by_type)
    assert engine.count_task_runs() == len(task_runs)
    flow_runs = list(engine._store.tables["flow_run"].rows.values())
    for state_type in StateType:
        expected = sum(1 for r in flow_runs if r.state_type is state_type)
        got = engine.count_flow_runs(flow_run_filter={"state": {"type": {"any_": [state_type.value]}}})
        assert got == expected, state_type
    for kind, table in engine._store.tables.items():
        assert all(rec.id == rec_id for rec_id, rec in table.rows.items()), kind
    check_indexes(engine)  # every index agrees with a scan of its table


def test_threads_driving_task_runs_respect_tag_limits():
    engine = new_engine()
    flow = engine.create_flow(name="f")
    flow_run = engine.create_flow_run(flow_id=flow.id, state=Running())
    engine.create_concurrency_limit("db", 3)
    engine.create_concurrency_limit("api", 2)
    limits = {"db": 3, "api": 2}
    ledger = Ledger()
    waits = collections.Counter()

    def slot_check():
        for tag, limit in limits.items():
            held = engine.read_concurrency_limit_by_tag(tag).active_slots
            running = engine.count_task_runs(task_run_filter={
                "state": {"type": {"any_": ["RUNNING"]}}, "tags": {"all_": [tag]}})
            if len(held) > limit or running > limit or len(set(held)) != len(held):
                return (tag, held, running)
        return None

    monitor = Monitor(engine, slot_check)

    def driver(seed: int):
        def go():
            rng = random.Random(seed)
            for i in range(RUNS_PER_THREAD):
                tags = ["db"] if i % 3 else ["db", "api"]
                run = engine.create_task_run(
                    flow_run_id=flow_run.id, task_key=f"t{seed}", dynamic_key=str(i), tags=tags,
                    empirical_policy={"retries": 1}, state=Pending())
                fail_first = rng.random() < 0.3
                while True:
                    result = engine.set_task_run_state(run.id, Running(), task_policy=CoreTaskPolicy)
                    ledger.record(run.id, result)
                    if result.status.value == "WAIT":
                        waits[seed] += 1
                        continue
                    assert result.status.value == "ACCEPT", result.details
                    if i < 3:
                        # Hold the slot for a moment so other threads meet the limit
                        # (without this, fast calls can finish within one GIL slice).
                        time.sleep(0.002)
                    final = Failed() if fail_first else Completed()
                    result = engine.set_task_run_state(run.id, final, task_policy=CoreTaskPolicy)
                    ledger.record(run.id, result)
                    if fail_first:
                        assert result.state.name == "AwaitingRetry"
                        fail_first = False
                        continue
                    assert result.status.value == "ACCEPT"
                    break
        return go

    watcher = threading.Thread(target=monitor)
    watcher.start()
    try:
        _run_threads([driver(s) for s in range(THREADS)])
    finally:
        monitor.stop.set()
        watcher.join()
    assert monitor.violations == []
    assert monitor.samples > 0 and sum(waits.values()) > 0  # the limits really were contended
    assert engine.read_concurrency_limit_by_tag("db").active_slots == []
    assert engine.count_task_runs(task_run_filter={"state": {"type": {"any_": ["COMPLETED"]}}}) == THREADS * RUNS_PER_THREAD
    _assert_history_intact(engine, ledger, "task")
    _assert_counts_equal_scans(engine)


def test_threads_driving_flow_runs_respect_the_deployment_limit():
    engine = new_engine()
    flow = engine.create_flow(name="f")
    dep = engine.create_deployment(flow.id, "d", concurrency_limit=3)
    gcl = engine.read_concurrency_limit_v2(dep.concurrency_limit_id)
    ledger = Ledger()
    rejected = collections.Counter()
    active_types = {StateType.PENDING, StateType.RUNNING, StateType.CANCELLING}

    def slot_check():
        holding = sum(1 for r in engine._store.tables["flow_run"].rows.values() if r.state_type in active_types)
        if gcl.active_slots > 3 or holding > 3 or holding != gcl.active_slots:
            return (gcl.active_slots, holding)
        return None

    monitor = Monitor(engine, slot_check)

    def driver(seed: int):
        def go():
            for i in range(RUNS_PER_THREAD):
                with engine.transaction():
                    start = engine.now()
                run = engine.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Scheduled(start))
                while True:
                    result = engine.set_flow_run_state(run.id, Pending(), flow_policy=CoreFlowPolicy)
                    ledger.record(run.id, result)
                    if result.status.value == "ACCEPT":
                        if i < 3:
                            time.sleep(0.002)  # hold the slot so other threads meet the limit
                        break
                    assert result.state.name == "AwaitingConcurrencySlot"
                    rejected[seed] += 1
                while True:
                    result = engine.set_flow_run_state(run.id, Running(), flow_policy=CoreFlowPolicy)
                    ledger.record(run.id, result)
                    if result.status.value == "ACCEPT":
                        break
                    assert result.status.value == "WAIT"
                    with engine.transaction():  # the clock moves under the engine lock
                        engine.clock.advance(result.details.delay_seconds)
                result = engine.set_flow_run_state(run.id, Completed(), flow_policy=CoreFlowPolicy)
                ledger.record(run.id, result)
                assert result.status.value == "ACCEPT"
        return go

    watcher = threading.Thread(target=monitor)
    watcher.start()
    try:
        _run_threads([driver(s) for s in range(THREADS)])
    finally:
        monitor.stop.set()
        watcher.join()
    assert monitor.violations == []
    assert sum(rejected.values()) > 0  # the limit really was contended
    assert gcl.active_slots == 0
    assert engine.count_flow_runs(flow_run_filter={"state": {"type": {"any_": ["COMPLETED"]}}}) == THREADS * RUNS_PER_THREAD
    _assert_history_intact(engine, ledger, "flow")
    _assert_counts_equal_scans(engine)


def test_transactions_are_never_seen_half_done():
    engine = new_engine()
    flow = engine.create_flow(name="f")
    stop = threading.Event()
    torn: list = []

    def writer(seed: int):
        def go():
            rng = random.Random(seed)
            for i in range(60):
                try:
                    with engine.transaction():
                        a = engine.create_flow_run(flow_id=flow.id, tags=[f"pair-{seed}-{i}"])
                        engine.create_task_run(flow_run_id=a.id, task_key="k", dynamic_key="0", tags=[f"pair-{seed}-{i}"])
                        if rng.random() < 0.4:
                            raise KeyError("roll back")
                except KeyError:
                    pass
        return go

    def reader():
        while not stop.is_set():
            try:
                with engine.transaction():
                    flow_tags = {r.tags[0] for r in engine._store.tables["flow_run"].rows.values()}
                    task_tags = {r.tags[0] for r in engine._store.tables["task_run"].rows.values()}
                    if flow_tags != task_tags:
                        torn.append(flow_tags ^ task_tags)
            except Exception as exc:  # noqa: BLE001
                torn.append(repr(exc))

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        _run_threads([writer(s) for s in range(THREADS)])
    finally:
        stop.set()
        watcher.join()
    assert torn == []
    assert engine.count_flow_runs() == engine.count_task_runs() == len(engine._store.tables["flow_run"].rows)
    assert 0 < engine.count_flow_runs() < THREADS * 60
    _assert_counts_equal_scans(engine)


def test_asyncio_tasks_and_a_thread_share_onenew_engine():
    engine = new_engine()
    flow = engine.create_flow(name="f")
    flow_run = engine.create_flow_run(flow_id=flow.id, state=Running())
    engine.create_concurrency_limit("db", 2)
    ledger = Ledger()
    peak = []

    async def task_driver(session, n: int):
        for i in range(10):
            run = await models.task_runs.create_task_run(session, task_run={
                "flow_run_id": flow_run.id, "task_key": f"a{n}", "dynamic_key": str(i), "tags": ["db"],
                "state": Pending()})
            while True:
                result = await models.task_runs.set_task_run_state(session, run.id, Running(), task_policy=CoreTaskPolicy)
                ledger.record(run.id, result)
                await asyncio.sleep(0)  # let other tasks interleave between calls
                if result.status.value == "ACCEPT":
                    break
            peak.append(len(engine.read_concurrency_limit_by_tag("db").active_slots))
            await asyncio.sleep(0)
            result = await models.task_runs.set_task_run_state(session, run.id, Completed(), task_policy=CoreTaskPolicy)
            ledger.record(run.id, result)

    async def main():
        async with engine.session() as session:
            await asyncio.gather(*(task_driver(session, n) for n in range(12)))

    def sync_thread(n: int):
        for i in range(60):
            run = engine.create_task_run(flow_run_id=flow_run.id, task_key=f"sync{n}", dynamic_key=str(i),
                                         tags=["db"], state=Pending())
            while True:
                result = engine.set_task_run_state(run.id, Running(), task_policy=CoreTaskPolicy)
                ledger.record(run.id, result)
                if result.status.value == "ACCEPT":
                    break
            ledger.record(run.id, engine.set_task_run_state(run.id, Completed(), task_policy=CoreTaskPolicy))

    failures: list = []

    def guarded(n: int):
        try:
            sync_thread(n)
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    asyncio.run(main())
    for thread in threads:
        thread.join()
    assert failures == []
    assert max(peak) <= 2
    assert engine.read_concurrency_limit_by_tag("db").active_slots == []
    assert engine.count_task_runs(task_run_filter={"state": {"type": {"any_": ["COMPLETED"]}}}) == 12 * 10 + 3 * 60
    _assert_history_intact(engine, ledger, "task")
    _assert_counts_equal_scans(engine)
