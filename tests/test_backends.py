"""Durability backends: opening, what each mode makes durable and when, and reopen
equivalence (every read, count, sort and index the same; orchestration continues
identically)."""
from __future__ import annotations

import datetime as _dt
import gc
import os
import sqlite3
import sys
import tempfile
import uuid
import weakref

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_backends_support import (  # noqa: E402
    Workload,
    as_schema_version,
    assert_same_engine,
    check_indexes,
    make_clock,
    populate_all_kinds,
    rewrite_snapshot,
    seed_engine_ids,
)

from engine import Completed, Engine, Failed, Paused, Pending, Running, Scheduled  # noqa: E402
from backends.base import COLUMNS_ADDED_IN  # noqa: E402
from backends.sqlite import SCHEMA_VERSION  # noqa: E402
from engine.serialization import RECORD_CLASSES  # noqa: E402
from engine.errors import BackendError, ValidationError  # noqa: E402
from engine.records import seed_slugs  # noqa: E402
from engine.states import seed_ids  # noqa: E402

BACKENDS = [("sqlite", {}), ("sqlite", {"batch": 5}), ("json", {}), ("json", {"save_every": 3})]


def _url(folder, scheme: str) -> str:
    return f"{scheme}:///{os.path.join(str(folder), 'runs.' + scheme)}"


def _disk_counts(path) -> dict:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {k: conn.execute(f"SELECT count(*) FROM {k}").fetchone()[0] for k in ("flow", "flow_run", "flow_run_state")}
    finally:
        conn.close()


# opening ------------------------------------------------------------------------------------------

def test_memory_url_is_a_plain_engine():
    engine = Engine.open("memory://")
    assert engine.backend is None
    engine.create_flow(name="f")
    engine.flush()
    engine.close()  # no-ops without a backend
    engine.create_flow(name="g")


def test_relative_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Engine.open("sqlite:///rel.db") as engine:
        engine.create_flow(name="rel")
    assert (tmp_path / "rel.db").exists()
    with Engine.open(f"sqlite:///{tmp_path}/rel.db") as engine:  # four slashes: absolute
        assert engine.read_flow_by_name("rel") is not None


@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_every_kind_round_trips(tmp_path, scheme, options):
    url = _url(tmp_path, scheme)
    with Engine.open(url, clock=make_clock(), **options) as engine:
        records = populate_all_kinds(engine)
    with Engine.open(url, clock=make_clock()) as reopened:
        assert_same_engine(engine, reopened)
        run = reopened.read_flow_run(records["flow_run"].id)
        assert run.empirical_policy.pause_keys == {"k1", "k2"}
        assert run.state == records["flow_run"].state and run.state.id == records["flow_run"].state.id
        task = reopened.read_task_run(records["task_run"].id)
        assert task.state.data == {"value": [1, 2]}  # result data, rebuilt from its artifact
        assert reopened.read_concurrency_limit_by_tag("db").active_slots == ["a", "b"]
        limit = reopened.read_concurrency_limit_v2(records["deployment"].concurrency_limit_id)
        assert (limit.active_slots, limit.limit) == (1, 3)
        pool = reopened.read_work_pool(records["pool"].id)
        assert (pool.status, pool.concurrency_limit) == ("PAUSED", 4) and pool.last_status_event_id is not None
        assert [(q.name, q.priority, q.status) for q in reopened.read_work_queues(pool.id)] == [
            ("fast", 1, "PAUSED"), ("default", 2, "NOT_READY")]
        assert [(w.name, w.heartbeat_interval_seconds, w.status) for w in reopened.read_workers(pool.id)] == [
            ("w-interval", 15, "ONLINE"), ("w-plain", None, "ONLINE")]
        assert [w.last_heartbeat_time for w in reopened.read_workers(pool.id)] == [
            w.last_heartbeat_time for w in engine.read_workers(pool.id)]
        assert reopened.delete_work_pool(pool.id) and reopened.read_workers(pool.id) == []
        assert reopened.read_flow(records["flow"].id).tags == ["k", "k2"]
        assert reopened.read_deployment(records["deployment"].id).version == "1.1"


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_closed_engine_reads_but_refuses_writes(tmp_path, scheme):
    url = _url(tmp_path, scheme)
    with Engine.open(url) as engine:
        flow = engine.create_flow(name="f")
    engine.close()  # idempotent
    assert engine.read_flow(flow.id) is flow
    with pytest.raises(BackendError, match="closed"):
        engine.create_flow(name="g")
    assert engine.read_flow_by_name("g") is None
    with Engine.open(url) as again:  # the lock went with the close
        assert [f.name for f in again.read_flows()] == ["f"]


@pytest.mark.parametrize("scheme, options", [("memory", {}), *BACKENDS])
def test_a_dropped_engine_is_freed_at_once(tmp_path, scheme, options):
    # No reference cycles (indexes and their table, a backend and its engine): the
    # last reference going frees the engine and every record without the collector,
    # so a test's or a simulation's memory comes back as soon as it lets go.
    gc.collect()
    gc.disable()
    try:
        engine = Engine.open("memory://" if scheme == "memory" else _url(tmp_path, scheme), **options)
        records = populate_all_kinds(engine)
        engine.read_flow_runs(sort="EXPECTED_START_TIME_DESC", limit=2)   # sorted indexes made live
        engine.read_task_runs(task_run_filter={"state": {"type": {"any_": ["RUNNING"]}}}, sort="NAME_DESC", limit=2)
        engine.get_scheduled_flow_runs(work_pool_ids=[records["pool"].id])   # a cold hash index warmed
        engine.close()
        refs = [weakref.ref(engine), *(weakref.ref(rec) for rec in records.values())]
        del engine, records
        assert [ref() for ref in refs] == [None] * len(refs)
    finally:
        gc.enable()


# what is durable, and when -------------------------------------------------------------------------

def test_sqlite_write_through_is_on_disk_when_the_call_returns(tmp_path):
    path = tmp_path / "runs.db"
    engine = Engine.open(f"sqlite:///{path}", clock=make_clock())
    flow = engine.create_flow(name="f")
    assert _disk_counts(path) == {"flow": 1, "flow_run": 0, "flow_run_state": 0}
    with engine.transaction():
        run = engine.create_flow_run(flow_id=flow.id)
        assert _disk_counts(path)["flow_run"] == 0  # not before the transaction commits
    assert _disk_counts(path)["flow_run"] == 1
    engine.delete_flow_run(run.id)
    assert _disk_counts(path)["flow_run"] == 0
    engine.close()


def test_sqlite_batched_writes_every_n_commits_and_at_flush_and_close(tmp_path):
    path = tmp_path / "runs.db"
    engine = Engine.open(f"sqlite:///{path}", clock=make_clock(), batch=3)
    flow = engine.create_flow(name="f")
    engine.create_flow_run(flow_id=flow.id)
    assert _disk_counts(path)["flow"] == 0
    engine.create_flow_run(flow_id=flow.id)  # third commit: the batch is written
    assert _disk_counts(path) == {"flow": 1, "flow_run": 2, "flow_run_state": 0}
    engine.create_flow_run(flow_id=flow.id)
    assert _disk_counts(path)["flow_run"] == 2
    engine.flush()
    assert _disk_counts(path)["flow_run"] == 3
    engine.create_flow_run(flow_id=flow.id)
    engine.close()
    assert _disk_counts(path)["flow_run"] == 4


def test_json_saves_on_flush_close_and_every_n_commits(tmp_path):
    path = tmp_path / "runs.json"
    engine = Engine.open(f"json:///{path}", clock=make_clock(), save_every=2)
    flow = engine.create_flow(name="f")
    assert not path.exists()
    engine.create_flow_run(flow_id=flow.id)
    first = path.read_bytes()  # second commit saved
    engine.create_flow_run(flow_id=flow.id)
    assert path.read_bytes() == first
    engine.flush()
    assert path.read_bytes() != first
    engine.close()
    with Engine.open(f"json:///{path}") as reopened:
        assert reopened.count_flow_runs() == 2


def test_json_close_does_not_rewrite_an_unchanged_snapshot(tmp_path):
    path = tmp_path / "runs.json"
    with Engine.open(f"json:///{path}") as engine:
        engine.create_flow(name="f")
    inode = os.stat(path).st_ino
    with Engine.open(f"json:///{path}") as engine:
        engine.read_flows()
    assert os.stat(path).st_ino == inode  # a save would have renamed a new file in
    with Engine.open(f"json:///{path}") as engine:
        engine.create_flow(name="g")
    assert os.stat(path).st_ino != inode


# reopen equivalence ----------------------------------------------------------------------------------

def _run_in_memory(seed: int, steps: int) -> tuple[Engine, Workload]:
    """A memory engine after `steps` steps of the seeded workload (its ids seeded
    too: the caller resets them), and the workload."""
    seed_engine_ids(seed)
    engine = Engine(clock=make_clock())
    workload = Workload(seed)
    for _ in range(steps):
        workload.step(engine)
    return engine, workload


@pytest.mark.parametrize("seed, steps", [(149, 360), (452, 190)])
def test_workload_never_touches_runs_a_deployment_call_deleted(seed, steps):
    """An upsert or schedule change deletes the deployment's never-run scheduled
    runs; the workload once kept them listed and later forced a state onto a run
    that was gone (a KeyError that failed a crash test's child at random). These
    seeds reached such a run within `steps` steps."""
    try:
        engine, workload = _run_in_memory(seed, steps)
        rows = engine._store.tables
        assert all(r in rows["flow_run"].rows for r in workload.flow_runs)
        assert all(t in rows["task_run"].rows for t in workload.task_runs)
    finally:
        seed_ids(None)
        seed_slugs(None)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**30),
    steps=st.integers(0, 150),
    reopen_at=st.sets(st.integers(0, 150), max_size=3),
    backend=st.sampled_from(BACKENDS),
)
def test_reopen_equivalence_under_random_workloads(seed, steps, reopen_at, backend):
    """A durable engine closed and reopened at random points ends exactly like a
    memory engine that ran the same workload without interruption."""
    scheme, options = backend
    try:
        twin, _ = _run_in_memory(seed, steps)

        seed_engine_ids(seed)
        with tempfile.TemporaryDirectory() as folder:
            url = _url(folder, scheme)
            clock = make_clock()
            durable = Engine.open(url, clock=clock, **options)
            workload = Workload(seed)
            for i in range(steps):
                if i in reopen_at:
                    durable.close()
                    durable = Engine.open(url, clock=clock, **options)
                    check_indexes(durable)
                workload.step(durable)
            durable.close()
            assert_same_engine(twin, durable)
            with Engine.open(url, clock=clock) as final:
                assert_same_engine(twin, final)
    finally:
        seed_ids(None)
        seed_slugs(None)


def _orchestration_scenario(engine: Engine, checkpoint) -> tuple[Engine, list]:
    """Retries, cache hits and deployment concurrency slots across checkpoints
    (`checkpoint(engine)` returns the engine to continue with)."""
    from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy

    log = []

    def flow_to(run_id, state):
        result = engine.set_flow_run_state(run_id, state, flow_policy=CoreFlowPolicy)
        log.append((str(result.status), result.state.type.value if result.state else None,
                    result.state.name if result.state else None))

    def task_to(task_id, state):
        result = engine.set_task_run_state(task_id, state, task_policy=CoreTaskPolicy)
        log.append((str(result.status), result.state.type.value if result.state else None,
                    result.state.name if result.state else None))

    now = engine.now()
    flow = engine.create_flow(name="f")
    dep = engine.create_deployment(flow.id, "d", concurrency_limit=1)
    a = engine.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Scheduled(now),
                               empirical_policy={"retries": 1, "retry_delay": 0}).id
    b = engine.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Scheduled(now)).id
    engine = checkpoint(engine)
    flow_to(a, Pending())  # takes the deployment's only slot
    engine = checkpoint(engine)
    flow_to(b, Pending())  # no slot left
    flow_to(a, Running())
    engine = checkpoint(engine)
    flow_to(a, Failed())  # one retry left: rescheduled
    engine = checkpoint(engine)
    flow_to(a, Pending())
    flow_to(a, Running())
    expiry = engine.now() + _dt.timedelta(hours=1)
    t1 = engine.create_task_run(flow_run_id=a, task_key="k", dynamic_key="1").id
    task_to(t1, Pending())
    task_to(t1, Running(state_details={"cache_key": "ck", "cache_expiration": expiry}))
    task_to(t1, Completed(state_details={"cache_key": "ck", "cache_expiration": expiry}))
    engine = checkpoint(engine)
    t2 = engine.create_task_run(flow_run_id=a, task_key="k", dynamic_key="2").id
    task_to(t2, Pending())
    task_to(t2, Running(state_details={"cache_key": "ck"}))  # cache hit
    engine = checkpoint(engine)
    flow_to(a, Completed())
    engine = checkpoint(engine)
    flow_to(b, Pending())  # the slot came back
    return engine, log


@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_orchestration_continues_identically_after_reopen(tmp_path, scheme, options):
    pytest.importorskip("engine.orchestration.policies")
    url = _url(tmp_path, scheme)
    try:
        seed_engine_ids(5)
        twin, expected = _orchestration_scenario(Engine(clock=make_clock()), lambda e: e)

        seed_engine_ids(5)
        clock = make_clock()

        def reopen(engine):
            engine.close()
            return Engine.open(url, clock=clock, **options)

        durable, got = _orchestration_scenario(Engine.open(url, clock=clock, **options), reopen)
        durable.close()
    finally:
        seed_ids(None)
        seed_slugs(None)
    assert got == expected
    statuses = {entry[0] for entry in expected}
    names = {entry[2] for entry in expected}
    assert len(statuses) > 1 and {"AwaitingRetry", "Cached"} <= names  # the rules really fired
    assert_same_engine(twin, durable)


# workers -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_workers_persist_through_heartbeats_deletes_and_pool_deletes(tmp_path, scheme, options):
    """Every worker write lands in the backend: the first heartbeat (insert), later
    ones (update, an interval kept when not given), delete_worker, and a pool's
    delete taking its workers along."""
    url = _url(tmp_path, scheme)
    clock = make_clock()
    with Engine.open(url, clock=clock, **options) as engine:
        keep, gone = engine.create_work_pool("keep"), engine.create_work_pool("gone")
        engine.worker_heartbeat(keep.id, "a", 30)
        engine.worker_heartbeat(keep.id, "b")
        engine.worker_heartbeat(gone.id, "a")
        engine.worker_heartbeat(keep.id, "c")
    with Engine.open(url, clock=clock, **options) as engine:
        assert [w.name for w in engine.read_workers(keep.id)] == ["c", "b", "a"]
        engine.worker_heartbeat(keep.id, "a")  # the interval stays 30
        assert engine.delete_worker(keep.id, "b") is True
        assert engine.delete_work_pool(gone.id) is True
        expected = [(w.name, w.heartbeat_interval_seconds, w.last_heartbeat_time, w.created, w.updated, w.status)
                    for w in engine.read_workers(keep.id)]
    with Engine.open(url, clock=clock) as engine:
        got = [(w.name, w.heartbeat_interval_seconds, w.last_heartbeat_time, w.created, w.updated, w.status)
               for w in engine.read_workers(keep.id)]
        assert got == expected and [g[:2] for g in got] == [("a", 30), ("c", None)]
        assert engine.read_workers(gone.id) == [] and len(engine._store.tables["worker"].rows) == 2
        check_indexes(engine)


def test_a_version_1_sqlite_database_gains_the_worker_table(tmp_path):
    """A database written before workers existed (schema version 1, no worker table)
    opens with everything in it, and is moved to the current version by creating the
    tables added since (worker in 2, deployment_schedule in 3, flow_run_input in 4)."""
    path = tmp_path / "old.db"
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        pool = engine.create_work_pool("p")
        engine.create_flow("f")
    as_schema_version(path, 1)
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        assert engine.read_work_pool(pool.id).name == "p" and engine.read_flow_by_name("f") is not None
        engine.worker_heartbeat(pool.id, "w")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert conn.execute("SELECT name FROM worker").fetchall() == [("w",)]
    conn.close()
    with Engine.open(f"sqlite:///{path}") as engine:
        assert [w.name for w in engine.read_workers(pool.id)] == ["w"]


def test_a_version_2_sqlite_database_gains_the_deployment_schedule_table(tmp_path):
    """A database written before schedules existed (version 2) opens, gains an empty
    deployment_schedule table and moves to the current version; its schedules then persist."""
    path = tmp_path / "v2.db"
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        flow = engine.create_flow("f")
        dep = engine.create_deployment(flow.id, "d")
    as_schema_version(path, 2)
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        assert engine.read_deployment_schedules(dep.id) == []
        engine.create_deployment_schedules(dep.id, [{"cron": "0 * * * *"}])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    with Engine.open(f"sqlite:///{path}") as engine:
        assert [s.schedule.cron for s in engine.read_deployment_schedules(dep.id)] == ["0 * * * *"]


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_a_deployments_creator_and_document_ids_persist(tmp_path, scheme):
    url = _url(tmp_path, scheme)
    infra, storage = uuid.uuid4(), uuid.uuid4()
    with Engine.open(url, clock=make_clock()) as engine:
        dep = engine.create_deployment(engine.create_flow("f").id, "d", created_by={"type": "USER"},
                                       infrastructure_document_id=infra, storage_document_id=storage)
    with Engine.open(url, clock=make_clock()) as engine:
        got = engine.read_deployment(dep.id)
        assert (got.created_by, got.updated_by, got.infrastructure_document_id, got.storage_document_id) == (
            {"type": "USER"}, None, infra, storage)


@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_an_id_deleted_and_created_again_comes_back_last(tmp_path, scheme, options):
    """Memory files a re-created id after everything before it; a batch that saw the
    delete and the re-creation used to update the old row, keeping its old place."""
    url = _url(tmp_path, scheme)
    reused_queue, reused_run = uuid.UUID(int=7, version=4), uuid.UUID(int=8, version=4)
    with Engine.open(url, clock=make_clock(), **options) as engine:
        pool, flow = engine.create_work_pool("p"), engine.create_flow("f")
        dep = engine.create_deployment(flow.id, "d")
        engine.create_work_queue(pool.id, "q1", id=reused_queue)
        engine.create_flow_run(flow_id=flow.id, id=reused_run, name="r1")
        engine.flush()  # the first rows are on disk
        with engine.transaction():  # one commit: one batch whatever its size
            engine.update_work_queue(reused_queue, description="touched early in the batch")
            engine.update_flow_run(reused_run, name="r1b")
            engine.create_work_queue(pool.id, "q2")
            engine.create_flow_run(flow_id=flow.id, name="r2")
            engine.delete_work_queue(reused_queue)
            engine.delete_flow_run(reused_run)
            engine.create_work_queue(pool.id, "q3", id=reused_queue)
            engine.create_flow_run(flow_id=flow.id, id=reused_run, name="r3")
            engine.create_flow_run(flow_id=flow.id, name="r4")
            engine.update_flow_run(reused_run, name="r3b")  # a later update does not move it again
        live = [q.name for q in engine.check_work_queues_for_deployment(dep.id)]
        assert live == ["default", "q2", "q3"]
    with Engine.open(url, clock=make_clock()) as reopened:
        assert_same_engine(engine, reopened)
        assert [q.name for q in reopened.check_work_queues_for_deployment(dep.id)] == live
        assert [r.name for r in reopened._store.tables["flow_run"].rows.values()] == ["r2", "r3b", "r4"]


@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_numbers_are_kept_with_the_type_a_store_gives_back(tmp_path, scheme, options):
    """A policy's retry_delay_seconds is a float (pydantic's), so an all-default policy
    given 0 reads the same before and after reopen; a rate of -0.0 is 0.0 in memory as
    in SQLite. A closed store's flush is a no-op in both backends."""
    url = _url(tmp_path, scheme)
    with Engine.open(url, clock=make_clock(), **options) as engine:
        flow = engine.create_flow("f")
        runs = [engine.create_flow_run(flow_id=flow.id, empirical_policy={"retry_delay_seconds": 0}),
                engine.create_flow_run(flow_id=flow.id, empirical_policy={"retry_delay_seconds": 3, "retries": 1})]
        task = engine.create_task_run(task_key="k", dynamic_key="0", empirical_policy={"retry_delay_seconds": 0})
        limit = engine.create_concurrency_limit_v2("g", limit=1, slot_decay_per_second=-0.0)
        live = ([r.empirical_policy.retry_delay_seconds for r in runs], task.empirical_policy.retry_delay_seconds,
                limit.slot_decay_per_second)
        assert live == ([0.0, 3.0], 0.0, 0.0)
        assert [r.empirical_policy.retry_delay for r in runs] == [None, 3]  # copied before, still a whole number
        assert repr(live) == "([0.0, 3.0], 0.0, 0.0)"  # floats, and no -0.0
    engine.flush()  # closed: nothing left to save
    with Engine.open(url, clock=make_clock()) as reopened:
        again = ([reopened.read_flow_run(r.id).empirical_policy.retry_delay_seconds for r in runs],
                 reopened.read_task_run(task.id).empirical_policy.retry_delay_seconds,
                 reopened.read_concurrency_limit_v2(limit.id).slot_decay_per_second)
        assert repr(again) == repr(live)


@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_free_form_fields_are_kept_as_a_store_gives_them_back(tmp_path, scheme, options):
    """Creators, updaters, pull steps and a queue's filter: tuples become lists, NaN
    and infinity None, in memory as in the store, so a reopened engine reads the
    same values; what no store could hold is refused by the call that gives it."""
    url = _url(tmp_path, scheme)
    odd = {"type": "USER", "ids": (1, 2), "rate": float("nan"), "nested": {"7": (float("inf"),)}}
    normal = {"type": "USER", "ids": [1, 2], "rate": None, "nested": {"7": [None]}}
    with Engine.open(url, clock=make_clock(), **options) as engine:
        flow = engine.create_flow("f")
        queue = engine.create_work_queue(engine.create_work_pool("p").id, "q", filter={"tags": ("a", "b")})
        dep = engine.create_deployment(flow.id, "d", created_by=odd, updated_by=odd,
                                       pull_steps=({"step": {"k": (1, 2), "x": float("-inf")}},))
        run = engine.create_flow_run(flow_id=flow.id, created_by=odd)
        live = (engine.read_work_queue(queue.id).filter, dep.created_by, dep.updated_by, dep.pull_steps,
                run.created_by)
        assert live == ({"tags": ["a", "b"]}, normal, normal, [{"step": {"k": [1, 2], "x": None}}], normal)
        before = engine.count_deployments()
        for bad in ({}, 0, [1], [{1: "x"}], [{"k": object()}]):
            with pytest.raises(ValidationError, match=r"deployment\.pull_steps"):
                engine.create_deployment(flow.id, "d2", pull_steps=bad)
        with pytest.raises(ValidationError, match=r"flow_run\.created_by keys must be strings"):
            engine.create_flow_run(flow_id=flow.id, created_by={5: "five"})
        assert engine.count_deployments() == before
    with Engine.open(url, clock=make_clock()) as reopened:
        dep2 = reopened.read_deployment(dep.id)
        assert (reopened.read_work_queue(queue.id).filter, dep2.created_by, dep2.updated_by, dep2.pull_steps,
                reopened.read_flow_run(run.id).created_by) == live


def test_a_version_4_sqlite_database_gains_the_deployment_columns(tmp_path):
    """A database written before deployments had their creator and block document
    columns (version 4) opens with its deployments whole, gains the columns (NULL) at
    the table's end and moves to the current version; the new fields then persist."""
    path = tmp_path / "v4.db"
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        dep = engine.create_deployment(engine.create_flow("f").id, "d", tags=["t"], version="7")
    as_schema_version(path, 4)
    conn = sqlite3.connect(path)
    assert "storage_document_id" not in [r[1] for r in conn.execute("PRAGMA table_info(deployment)")]
    conn.close()
    storage = uuid.uuid4()
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        got = engine.read_deployment(dep.id)
        assert (got.tags, got.version, got.created_by, got.storage_document_id) == (["t"], "7", None, None)
        engine.update_deployment(dep.id, storage_document_id=storage)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert [r[1] for r in conn.execute("PRAGMA table_info(deployment)")][-4:] == [
        "created_by", "updated_by", "infrastructure_document_id", "storage_document_id"]
    conn.close()
    with Engine.open(f"sqlite:///{path}") as engine:
        assert engine.read_deployment(dep.id).storage_document_id == storage


def _keyed_results(engine: Engine) -> tuple:
    """A task run's keyed result, then its flow run's under the same key (which keeps
    the task run and type in the collection); returns the runs."""
    run = engine.create_flow_run(flow_id=engine.create_flow("f").id)
    task = engine.create_task_run(flow_run_id=run.id, task_key="t", dynamic_key="0")
    engine.set_task_run_state(task.id, Completed(data={"artifact_key": "k", "artifact_type": "table", "v": 1}),
                              force=True)
    engine.set_flow_run_state(run.id, Completed(data={"artifact_key": "k", "v": [2]}), force=True)
    return run, task


def _collection_columns(engine: Engine) -> tuple:
    coll = engine.read_latest_artifact("k")
    return (coll.latest_id, coll.task_run_id, coll.flow_run_id, coll.type, coll.data, coll.description,
            coll.metadata_, coll.created, coll.updated)


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_an_artifact_collections_columns_persist(tmp_path, scheme):
    url = _url(tmp_path, scheme)
    with Engine.open(url, clock=make_clock()) as engine:
        run, task = _keyed_results(engine)
        written = _collection_columns(engine)
    assert written[1:5] == (task.id, run.id, "table", {"v": [2]})
    with Engine.open(url, clock=make_clock()) as engine:
        assert _collection_columns(engine) == written
        assert engine.read_artifact(written[0]).data == {"v": [2]}


def test_a_version_5_sqlite_database_gains_the_artifact_collection_columns(tmp_path):
    """A database written before artifact collections kept their latest artifact's
    columns (version 5) opens with its collections whole (the columns NULL), gains
    the columns at the table's end, and keeps the next upsert's values."""
    path = tmp_path / "v5.db"
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        run, task = _keyed_results(engine)
        latest = engine.read_latest_artifact("k").latest_id
    as_schema_version(path, 5)
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        assert _collection_columns(engine)[:5] == (latest, None, None, None, None)
        engine.set_flow_run_state(run.id, Completed(data={"artifact_key": "k", "artifact_type": "t", "v": 3}),
                                  force=True)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert [r[1] for r in conn.execute("PRAGMA table_info(artifact_collection)")][-6:] == [
        "task_run_id", "flow_run_id", "type", "data", "description", "metadata_"]
    conn.close()
    with Engine.open(f"sqlite:///{path}") as engine:
        assert _collection_columns(engine)[1:6] == (None, run.id, "t", {"v": 3}, None)


def test_a_json_snapshot_saved_before_columns_were_added_loads(tmp_path):
    """Snapshots saved before a kind gained columns (COLUMNS_ADDED_IN) list fewer: the
    rows load whole, the later columns None (their default, as SQLite's added NULLs)."""
    path = tmp_path / "old.json"
    with Engine.open(f"json:///{path}", clock=make_clock()) as engine:
        _keyed_results(engine)
        dep = engine.create_deployment(engine.create_flow("g").id, "d", tags=["t"], created_by={"type": "USER"})
        latest = engine.read_latest_artifact("k").latest_id

    def narrow(body: dict) -> None:
        for kind, (_, added) in COLUMNS_ADDED_IN.items():
            table = body["tables"][kind]
            width = len(table["columns"]) - len(added)
            assert tuple(table["columns"][width:]) == added and table["rows"]
            table["columns"] = table["columns"][:width]
            table["rows"] = [row[:width] for row in table["rows"]]

    rewrite_snapshot(path, {}, payload_change=narrow)
    with Engine.open(f"json:///{path}", clock=make_clock()) as engine:
        assert _collection_columns(engine)[:7] == (latest, None, None, None, None, None, None)
        got = engine.read_deployment(dep.id)
        assert (got.tags, got.created_by) == (["t"], None)


def test_columns_added_later_default_to_none():
    # Both backends read a column missing from older data as None.
    for kind, (_, added) in COLUMNS_ADDED_IN.items():
        defaults = {f.name: f.default for f in attrs.fields(RECORD_CLASSES[kind])}
        assert [defaults[name] for name in added] == [None] * len(added), kind
        assert list(defaults)[-len(added):] == list(added), kind  # the record's last fields


def test_a_version_3_sqlite_database_gains_the_flow_run_input_table(tmp_path):
    """A database written before flow-run inputs existed (version 3) opens, gains an
    empty flow_run_input table and moves to the current version; inputs then persist."""
    path = tmp_path / "v3.db"
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        run = engine.create_flow_run(flow_id=engine.create_flow("f").id)
    as_schema_version(path, 3)
    with Engine.open(f"sqlite:///{path}", clock=make_clock()) as engine:
        assert engine.filter_flow_run_input(run.id, "", limit=None) == []
        engine.create_flow_run_input(run.id, "k", "v", sender="s")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    conn.close()
    with Engine.open(f"sqlite:///{path}") as engine:
        got = engine.read_flow_run_input(run.id, "k")
        assert (got.value, got.sender) == ("v", "s")


@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_flow_run_inputs_persist(tmp_path, scheme, options):
    """Inputs land in the backend through create, delete, a resume that stores its
    answer and a flow run's delete, and come back with every field."""
    url = _url(tmp_path, scheme)
    clock = make_clock()
    with Engine.open(url, clock=clock, **options) as engine:
        flow = engine.create_flow("f")
        dep = engine.create_deployment(flow.id, "d")
        run = engine.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Running())
        gone = engine.create_flow_run(flow_id=flow.id)
        engine.create_flow_run_input(gone.id, "x", "1")
        clock.advance(1)
        pause = Paused(timeout_seconds=60)
        pause.state_details.run_input_keyset = {"schema": "s", "response": "r"}
        engine.set_flow_run_state(run.id, pause)
        engine.create_flow_run_input(run.id, "s", '{"type": "object"}', sender="me")
        engine.create_flow_run_input(run.id, "tmp", "t")
        engine.delete_flow_run_input(run.id, "tmp")
        clock.advance(1)
        assert engine.resume_flow_run(run.id, {"ok": True}).status.value == "ACCEPT"
        engine.delete_flow_run(gone.id)
        expected = [(i.id, i.key, i.value, i.sender, i.created, i.updated)
                    for i in engine.filter_flow_run_input(run.id, "", limit=None)]
    assert [e[1:4] for e in expected] == [("s", '{"type": "object"}', "me"), ("r", '{"ok":true}', None)]
    with Engine.open(url, clock=clock) as engine:
        got = [(i.id, i.key, i.value, i.sender, i.created, i.updated)
               for i in engine.filter_flow_run_input(run.id, "", limit=None)]
        assert got == expected and len(engine._store.tables["flow_run_input"].rows) == 2
        check_indexes(engine)


@pytest.mark.parametrize("scheme, options", BACKENDS)
def test_deployment_schedules_persist(tmp_path, scheme, options):
    """Schedules of every kind land in the backend through create (alone and with a
    deployment upsert, which replaces them), update, the two deletes and a
    deployment's delete; the runs schedule_runs makes persist with their states."""
    url = _url(tmp_path, scheme)
    clock = make_clock()
    with Engine.open(url, clock=clock, **options) as engine:
        flow = engine.create_flow("f")
        keep = engine.create_deployment(flow.id, "keep", tags=["t"], schedules=[
            {"schedule": {"interval": 3600, "anchor_date": "2024-11-03T00:30:00-04:00",
                          "timezone": "America/New_York"}}])
        gone = engine.create_deployment(flow.id, "gone", schedules=[{"schedule": {"cron": "0 * * * *"}}])
        cron, rrule = engine.create_deployment_schedules(keep.id, [
            {"schedule": {"cron": "*/30 1 * * *", "timezone": "America/New_York"}, "max_scheduled_runs": 5},
            {"schedule": {"rrule": "FREQ=DAILY;BYHOUR=1", "timezone": "Europe/London"}, "active": False}])
        clock.advance(5)
        engine.update_deployment_schedule(keep.id, rrule.id, {"active": True, "max_scheduled_runs": 2})
        engine.delete_deployment_schedule(keep.id, cron.id)
        ids = engine.schedule_runs(keep.id, start_time=_dt.datetime(2024, 11, 3, 4, tzinfo=_dt.timezone.utc),
                                   max_runs=5)
        assert engine.delete_deployment(gone.id) is True
        expected = [(s.id, s.schedule, s.active, s.max_scheduled_runs, s.created, s.updated)
                    for s in engine.read_deployment_schedules(keep.id)]
        runs = [(r.id, r.idempotency_key, r.expected_start_time, r.state) for r in map(engine.read_flow_run, ids)]
    with Engine.open(url, clock=clock) as engine:
        got = [(s.id, s.schedule, s.active, s.max_scheduled_runs, s.created, s.updated)
               for s in engine.read_deployment_schedules(keep.id)]
        assert got == expected and len(got) == 2 and len(engine._store.tables["deployment_schedule"].rows) == 2
        assert [(r.id, r.idempotency_key, r.expected_start_time, r.state) for r in map(engine.read_flow_run, ids)] \
            == runs
        assert engine.schedule_runs(keep.id, start_time=_dt.datetime(2024, 11, 3, 4, tzinfo=_dt.timezone.utc),
                                    max_runs=5) == []  # the same keys: nothing new
        engine.create_deployment(flow.id, "keep")  # an upsert without schedules drops them
    with Engine.open(url, clock=clock) as engine:
        assert engine.read_deployment_schedules(keep.id) == []
        check_indexes(engine)


def test_a_json_snapshot_without_a_worker_table_loads(tmp_path):
    """Snapshots saved before workers existed have no worker table: none is read."""
    path = tmp_path / "old.json"
    with Engine.open(f"json:///{path}", clock=make_clock()) as engine:
        pool = engine.create_work_pool("p")

    def drop_workers(body: dict) -> None:
        assert body["tables"].pop("worker")["rows"] == []

    rewrite_snapshot(path, {}, payload_change=drop_workers)
    with Engine.open(f"json:///{path}", clock=make_clock()) as engine:
        assert engine.read_work_pool(pool.id).name == "p" and engine.read_workers(pool.id) == []
        engine.worker_heartbeat(pool.id, "w")
    with Engine.open(f"json:///{path}") as engine:
        assert [w.name for w in engine.read_workers(pool.id)] == ["w"]
