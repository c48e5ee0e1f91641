"""Helpers shared by the backend tests (no tests here): a deterministic workload, a
canonical dump of everything an engine stores, and a brute-force index check.

The crash tests run `Workload` in a child process and replay it in memory, so every
choice it makes comes from its own seeded RNG and every id it creates is explicit
(or drawn from the seeded `seed_ids` generator).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import uuid
import zlib
from typing import Any

from backends.base import COLUMNS_ADDED_IN
from backends.sqlite import ADDED_IN
from engine import ManualClock, UniquenessError
from engine.indexes import ColdHashIndex, ColumnView, HashIndex, MultiIndex, SortedIndex, SparseHashIndex
from engine.store import HistoryTable
from engine.records import TaskRunStateCache, seed_slugs
from engine.serialization import CONVERTER, codec
from engine.states import State, StateType, TERMINAL_STATES, seed_ids
from engine.tables import KINDS

START = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)


def as_schema_version(path: Any, version: int, *more: str) -> None:
    """Make the SQLite file at `path` look written by the runstate of schema `version`:
    the tables and columns added since dropped, the version stamped; then the `more`
    statements."""
    dropped = [f"DROP TABLE {kind}" for kind, added in ADDED_IN.items() if added > version]
    dropped += [f'ALTER TABLE {kind} DROP COLUMN "{col}"' for kind, (added, cols) in COLUMNS_ADDED_IN.items()
                if added > version for col in cols]
    execute_sql(path, *dropped, f"PRAGMA user_version = {version}", *more)


def execute_sql(path: Any, *statements: str) -> None:
    """Run SQL statements on the SQLite file at `path` and commit, as another program would."""
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


# Another process taking the lock a read-only SQLite open holds while it reads (see
# backends.sqlite._shared_lock), reporting "locked", and holding it until its stdin closes.
_READER = """
import os, sys
from backends.sqlite import _shared_lock
fd = os.open(sys.argv[1], os.O_RDONLY)
assert _shared_lock(fd, sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def reader_elsewhere(path: Any):
    """For the block, another process holds the SQLite file at `path` as a read-only
    open does while it reads: a writer closing meanwhile is not its last connection."""
    proc = subprocess.Popen([sys.executable, "-c", _READER, str(path)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"locked\n", "the reader process failed (see stderr)"
        yield
    finally:
        proc.stdin.close()
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0


def names_in_the_file_alone(path: Any) -> set:
    """The flow names the SQLite file at `path` holds by itself, any -wal beside it unread."""
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM flow")}
    finally:
        conn.close()


def rewrite_snapshot(path: Any, header_changes: dict, payload_change: Any = None) -> None:
    """Change a JSON snapshot file in place: its header fields, and its payload through
    `payload_change(body)` (the header's length and checksum then follow the payload)."""
    blob = open(path, "rb").read()
    head, payload = blob.split(b"\n", 1)
    header = json.loads(head)
    if payload_change is not None:
        body = json.loads(payload)
        payload_change(body)
        payload = json.dumps(body).encode()
        header.update(length=len(payload), crc32=zlib.crc32(payload))
    header.update(header_changes)
    open(path, "wb").write(json.dumps(header).encode() + b"\n" + payload)


def nested_lists(levels: int) -> list:
    """A list nested `levels` deep ([] is one level): nesting no JSON codec or
    repr() reaches, past a few thousand."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def make_clock() -> ManualClock:
    """The workloads' clock: one millisecond per reading keeps timestamps distinct."""
    return ManualClock(START, tick=_dt.timedelta(milliseconds=1))


def force_state(engine: Any, kind: str, run_id: Any, state: State) -> State:
    """Make `state` the run's current state, as a forced transition would, without
    depending on the orchestration package. Deterministic."""
    with engine.transaction():
        store = engine._store
        run = store.tables[kind].rows[run_id]
        now = engine._clock.now()
        if state.timestamp is None:
            state.timestamp = now
        if state.type is StateType.SCHEDULED and state.state_details.scheduled_time is None:
            state.state_details.scheduled_time = state.timestamp
        if kind == "flow_run":
            state.state_details.flow_run_id = run.id
        else:
            state.state_details.task_run_id = run.id
        store.touch(kind, run)
        validated = engine._store_state(kind, run, state)
        ts = validated.timestamp
        run.state_type, run.state_name, run.state_timestamp = validated.type, validated.name, ts
        if validated.type is StateType.RUNNING:
            run.run_count += 1
            if run.start_time is None:
                run.start_time = ts
        if validated.type in TERMINAL_STATES:
            run.end_time = ts
        if validated.type is StateType.SCHEDULED:
            run.next_scheduled_start_time = validated.state_details.scheduled_time
            if run.expected_start_time is None:
                run.expected_start_time = validated.state_details.scheduled_time
        run.updated = now
        store.reindex(kind, run)
        return validated


def add_cache_entry(engine: Any, cache_key: str, state_id: Any, rec_id: uuid.UUID) -> None:
    """Insert a task_run_state_cache row, as the cache rule would."""
    with engine.transaction():
        now = engine._clock.now()
        rec = TaskRunStateCache(cache_key=cache_key, task_run_state_id=state_id,
                                cache_expiration=now + _dt.timedelta(hours=1), id=rec_id)
        rec.created = rec.updated = now
        engine._store.insert("task_run_state_cache", rec)


class Workload:
    """A seeded sequence of engine calls touching every stored kind.

    `step(engine)` performs one call (sometimes a transaction grouping several) and
    returns a short description. Two engines given the same seed and clock end in
    identical states after the same number of steps.
    """

    STATE_TYPES = list(StateType)

    def __init__(self, seed: int, with_data: bool = True) -> None:
        self.rng = random.Random(seed)
        self.with_data = with_data
        self.flows: list[uuid.UUID] = []
        self.flow_runs: list[uuid.UUID] = []
        self.task_runs: list[uuid.UUID] = []
        self.task_states: list[uuid.UUID] = []
        self.limits: list[uuid.UUID] = []
        self.pools: list[uuid.UUID] = []
        self.n = 0

    def _id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def step(self, engine: Any) -> str:
        rng = self.rng
        self.n += 1
        if not self.flows or rng.random() < 0.03:
            fid = self._id()
            engine.create_flow(name=f"flow-{self.n}", tags=[f"t{rng.randrange(3)}"], id=fid)
            self.flows.append(fid)
            return "create_flow"
        r = rng.random()
        if r < 0.20 or not self.flow_runs:
            rid = self._id()
            engine.create_flow_run(
                flow_id=rng.choice(self.flows), id=rid, name=f"run-{rng.randrange(1000)}",
                tags=rng.sample(["a", "b", "c", "d"], rng.randrange(3)),
                parameters={"x": rng.randrange(100), "s": "é\u2603"},
                expected_start_time=START + _dt.timedelta(seconds=rng.randrange(10_000)),
                idempotency_key=None if rng.random() < 0.7 else f"key-{self.n}",
            )
            self.flow_runs.append(rid)
            return "create_flow_run"
        if r < 0.30:
            tid = self._id()
            engine.create_task_run(
                flow_run_id=rng.choice(self.flow_runs), task_key=f"task-{rng.randrange(5)}",
                dynamic_key=str(self.n), id=tid, name=f"task-{self.n}", tags=["x"] if rng.random() < 0.5 else [],
                cache_key=f"ck-{rng.randrange(4)}" if rng.random() < 0.3 else None,
            )
            self.task_runs.append(tid)
            return "create_task_run"
        if r < 0.62:
            rid = rng.choice(self.flow_runs)
            data = {"value": self.n} if self.with_data and rng.random() < 0.2 else None
            state = State(type=rng.choice(self.STATE_TYPES), id=self._id(), data=data,
                          message=None if rng.random() < 0.5 else f"m{self.n}")
            force_state(engine, "flow_run", rid, state)
            return "flow_run_state"
        if r < 0.74 and self.task_runs:
            tid = rng.choice(self.task_runs)
            state = State(type=rng.choice(self.STATE_TYPES), id=self._id())
            force_state(engine, "task_run", tid, state)
            self.task_states.append(state.id)
            return "task_run_state"
        if r < 0.78 and self.task_states:
            add_cache_entry(engine, f"ck-{rng.randrange(4)}", rng.choice(self.task_states), self._id())
            return "cache"
        if r < 0.80:
            return self._input_step(engine)
        if r < 0.85:
            engine.update_flow_run(rng.choice(self.flow_runs), name=f"renamed-{self.n}",
                                   tags=rng.sample(["a", "b", "e"], rng.randrange(3)))
            return "update_flow_run"
        if r < 0.88:
            if not self.limits or rng.random() < 0.3:
                lid = self._id()
                engine.create_concurrency_limit_v2(name=f"lim-{self.n}", limit=rng.randrange(1, 5), id=lid)
                self.limits.append(lid)
                return "create_limit"
            engine.bulk_increment_active_slots([rng.choice(self.limits)], 1)
            return "take_slot"
        if r < 0.90:
            if rng.random() < 0.3:
                return self._schedule_step(engine)
            return self._worker_step(engine)
        if r < 0.92:
            # A multi-call transaction: lands entirely or not at all.
            with engine.transaction():
                rid = self._id()
                engine.create_flow_run(flow_id=rng.choice(self.flows), id=rid, name="txn")
                force_state(engine, "flow_run", rid, State(type=StateType.PENDING, id=self._id()))
                engine.update_flow_run(rid, tags=["txn"])
            self.flow_runs.append(rid)
            return "transaction"
        if r < 0.96 and len(self.flow_runs) > 3:
            engine.delete_flow_run(self.flow_runs[rng.randrange(len(self.flow_runs))])
            self._forget_deleted(engine)
            return "delete_flow_run"
        if self.task_runs:
            engine.delete_task_run(self.task_runs[rng.randrange(len(self.task_runs))])
            self._forget_deleted(engine)
            return "delete_task_run"
        return "noop"

    def _input_step(self, engine: Any) -> str:
        """Flow-run inputs: create (a key the run may already have: refused, and the
        call leaves nothing behind) and delete."""
        rng = self.rng
        rid = rng.choice(self.flow_runs)
        key = f"in-{rng.randrange(4)}"
        if rng.random() < 0.7:
            try:
                engine.create_flow_run_input(rid, key, f"v{self.n}", sender=rng.choice([None, "s"]))
            except UniquenessError:
                return "flow_run_input_taken"
            return "create_flow_run_input"
        engine.delete_flow_run_input(rid, key)
        return "delete_flow_run_input"

    def _schedule_step(self, engine: Any) -> str:
        """A deployment call (see `_deployment_call`), then forget the runs it deleted:
        an upsert, a schedule change or a delete takes the deployment's never-run
        scheduled runs with it, and with them their task runs."""
        done = self._deployment_call(engine)
        self._forget_deleted(engine)
        return done

    def _forget_deleted(self, engine: Any) -> None:
        """Drop the runs and task states a delete took (with their cascades) from the
        lists later steps pick from."""
        tables = engine._store.tables
        self.flow_runs = [r for r in self.flow_runs if r in tables["flow_run"].rows]
        self.task_runs = [t for t in self.task_runs if t in tables["task_run"].rows]
        self.task_states = [s for s in self.task_states if s in tables["task_run_state"].rows]

    def _deployment_call(self, engine: Any) -> str:
        """Deployments with schedules: create (an upsert replacing them), add,
        update, delete one or all, schedule_runs, delete the deployment."""
        rng = self.rng
        deps = list(engine._store.tables["deployment"].rows)
        kinds = [{"interval": rng.choice([600, 3600, 86400])},
                 {"cron": rng.choice(["0 * * * *", "*/20 1-3 * * *"]), "timezone": "America/New_York"},
                 {"rrule": "FREQ=HOURLY;INTERVAL=5", "timezone": "Europe/London"}]
        if not deps or rng.random() < 0.2:
            engine.create_deployment(rng.choice(self.flows), f"dep-{rng.randrange(3)}", tags=["s"],
                                     schedules=[{"schedule": rng.choice(kinds), "active": rng.random() < 0.8}])
            return "create_deployment"
        dep_id = rng.choice(deps)
        schedules = engine.read_deployment_schedules(dep_id)
        u = rng.random()
        if u < 0.3 or not schedules:
            engine.create_deployment_schedules(dep_id, [rng.choice(kinds)])
            return "create_deployment_schedules"
        if u < 0.5:
            engine.update_deployment_schedule(dep_id, rng.choice(schedules).id,
                                              {"active": rng.random() < 0.5, "max_scheduled_runs": rng.randrange(1, 9)})
            return "update_deployment_schedule"
        if u < 0.6:
            engine.delete_deployment_schedule(dep_id, rng.choice(schedules).id)
            return "delete_deployment_schedule"
        if u < 0.65:
            engine.delete_schedules_for_deployment(dep_id)
            return "delete_schedules_for_deployment"
        if u < 0.95:
            self.flow_runs.extend(engine.schedule_runs(dep_id, max_runs=rng.randrange(1, 6)))
            return "schedule_runs"
        engine.delete_deployment(dep_id)
        return "delete_deployment"

    def _worker_step(self, engine: Any) -> str:
        """Work pools and their workers: heartbeats (new and repeated, with and
        without an interval), worker deletes, and pool deletes cascading to them."""
        rng = self.rng
        if not self.pools or rng.random() < 0.1:
            self.pools.append(engine.create_work_pool(f"pool-{self.n}").id)
            return "create_work_pool"
        pool_id = rng.choice(self.pools)
        u = rng.random()
        if u < 0.7:
            interval = None if rng.random() < 0.5 else rng.randrange(5, 60)
            engine.worker_heartbeat(pool_id, f"worker-{rng.randrange(4)}", interval)
            return "worker_heartbeat"
        if u < 0.9:
            engine.delete_worker(pool_id, f"worker-{rng.randrange(4)}")
            return "delete_worker"
        self.pools.remove(pool_id)
        engine.delete_work_pool(pool_id)
        return "delete_work_pool"


def seed_engine_ids(seed: int) -> None:
    """Make the engine's own ids and run names deterministic (for replays). The ids
    come from a seed other than the Workload's: drawn from one seed, the engine's
    ids and the workload's explicit ones would be the same sequence and collide."""
    seed_ids(seed ^ 0x1D5_EED)
    seed_slugs(seed)


# Comparing engines -------------------------------------------------------------------------

def dump(engine: Any) -> dict:
    """Everything the engine stores, canonically: rows per kind keyed by id, plus each
    run's current state object."""
    tables = engine._store.tables
    out: dict[str, Any] = {}
    for kind in KINDS:
        c = codec(kind)
        out[kind] = {str(rid): c.encode(rec) for rid, rec in tables[kind].rows.items()}
    for kind in ("flow_run", "task_run"):
        states = {}
        for rid, run in tables[kind].rows.items():
            s = run.state
            states[str(rid)] = None if s is None else (
                str(s.id), s.type, s.name, s.timestamp, s.message, s.data, CONVERTER.unstructure(s.state_details))
        out[kind + ":state"] = states
    return out


def index_contents(engine: Any) -> dict:
    """Every maintained index's contents (cold indexes warmed first)."""
    out = {}
    for kind, table in engine._store.tables.items():
        for idx in table.by_name.values():
            if isinstance(idx, (SortedIndex, ColdHashIndex)):
                idx.warm()
        for idx in table.indexes:
            if isinstance(idx, SortedIndex):
                out[(kind, idx.name)] = list(idx.entries)
            elif isinstance(idx, HashIndex):
                out[(kind, idx.name)] = {k: {r.id for r in v.values()} for k, v in idx.buckets.items()}
            elif hasattr(idx, "groups"):
                out[(kind, idx.name)] = {k: list(v) for k, v in idx.groups.items()}
    return out


def check_indexes(engine: Any) -> None:
    """Assert every maintained index equals one rebuilt by brute force from the rows."""
    for kind, table in engine._store.tables.items():
        for idx in table.by_name.values():
            if isinstance(idx, (SortedIndex, ColdHashIndex)):
                idx.warm()
        rows = table.rows
        if isinstance(table, HistoryTable):  # keeps no keys: its one key is re-extracted
            assert not table._keys, kind
        else:
            # keyed by the records themselves, like the buckets (see Table)
            assert set(table._keys) == set(rows.values()), kind
            for rid, rec in rows.items():
                assert tuple(table._keys[rec]) == tuple(i.extract(rec) for i in table.indexes), (kind, rid)
        for idx in table.indexes:
            keys = [idx.extract(rec) for rec in rows.values()]
            if isinstance(idx, SortedIndex):
                assert list(idx.entries) == sorted(keys), (kind, idx.name)
            elif isinstance(idx, MultiIndex):
                expected: dict = {}
                for rec in rows.values():
                    for k in idx.extract(rec):
                        expected.setdefault(k, set()).add(rec.id)
                assert {k: {r.id for r in v.values()} for k, v in idx.buckets.items()} == expected, (kind, idx.name)
            elif isinstance(idx, HashIndex):
                expected = {}
                for rec in rows.values():
                    expected.setdefault(idx.extract(rec), set()).add(rec.id)
                assert idx.counts() == {k: len(v) for k, v in expected.items()}, (kind, idx.name)
                if isinstance(idx, SparseHashIndex):  # no None bucket; its answers still exact
                    assert {r.id for r in idx.get(None).values()} == expected.get(None, set()), (kind, idx.name)
                    assert idx.count(None) == len(expected.pop(None, ())), (kind, idx.name)
                assert {k: {r.id for r in v.values()} for k, v in idx.buckets.items()} == expected, (kind, idx.name)
            elif hasattr(idx, "groups"):
                grouped: dict = {}
                for k in keys:
                    grouped.setdefault(k[0], []).append(k[1])
                assert {k: list(v) for k, v in idx.groups.items()} == {k: sorted(v) for k, v in grouped.items()}
        for view in table.by_name.values():
            if isinstance(view, ColumnView):  # answers as a plain index on its column would
                expected = {}
                for rec in rows.values():
                    expected.setdefault(view.extract(rec), set()).add(rec.id)
                assert {k: {r.id for r in v.values()} for k, v in view.buckets.items()} == expected, (kind, view.name)
                assert view.counts() == {k: len(v) for k, v in expected.items()}, (kind, view.name)
                for key in [*expected, "no such value"]:
                    assert {r.id for r in view.get(key).values()} == expected.get(key, set()), (kind, view.name, key)
                    assert view.count(key) == len(expected.get(key, ())), (kind, view.name, key)


def assert_same_engine(a: Any, b: Any) -> None:
    """Assert two engines store the same things and answer reads the same way."""
    da, db = dump(a), dump(b)
    for kind in da:
        assert da[kind] == db[kind], kind
    for kind in KINDS:  # creation order survives too (some rules break ties by it)
        assert list(a._store.tables[kind].rows) == list(b._store.tables[kind].rows), kind
    check_indexes(b)
    assert index_contents(a) == index_contents(b)
    for rid in list(a._store.tables["flow_run"].rows)[:50]:
        assert a.read_flow_run_states(rid) == b.read_flow_run_states(rid)
    try:
        from engine.queries import read_flow_runs  # noqa: F401  (written by another helper)
    except ImportError:  # pragma: no cover
        return
    for sort in ("ID_DESC", "START_TIME_ASC", "START_TIME_DESC", "EXPECTED_START_TIME_ASC", "NAME_ASC",
                 "NAME_DESC", "NEXT_SCHEDULED_START_TIME_ASC", "END_TIME_DESC"):
        assert [r.id for r in a.read_flow_runs(sort=sort)] == [r.id for r in b.read_flow_runs(sort=sort)], sort
    assert a.count_flow_runs() == b.count_flow_runs()
    assert [r.id for r in a.read_task_runs()] == [r.id for r in b.read_task_runs()]
    assert a.count_task_runs_by_state() == b.count_task_runs_by_state()


def populate_all_kinds(engine: Any) -> dict:
    """One or more records of every stored kind, with non-default nested values.
    Returns the main records by name."""
    flow = engine.create_flow(name="every-kind", tags=["k"])
    pool = engine.create_work_pool(name="pool", base_job_template={"job": {"cpu": 2}}, description="d")
    queue = engine.create_work_queue(pool.id, "fast", priority=2, concurrency_limit=3, filter={"tags": ["x"]})
    dep = engine.create_deployment(
        flow.id, "dep", concurrency_limit=2, concurrency_options={"collision_strategy": "CANCEL_NEW"},
        parameters={"p": [1, 2.5, None, True, {"n": "é"}]}, job_variables={"image": "x"}, tags=["t"],
        work_queue_id=queue.id, pull_steps=[{"step": 1}], version="1.0",
    )
    tag_limit = engine.create_concurrency_limit("db", 5, active_slots=["a", "b"])
    run = engine.create_flow_run(
        flow_id=flow.id, deployment_id=dep.id, tags=["x", "y"], parameters={"a": {"b": [1, "two"]}},
        context={"c": 1}, work_queue_id=queue.id, idempotency_key="idem", created_by={"type": "USER"},
        empirical_policy={"retries": 3, "retry_delay": 10, "pause_keys": {"k2", "k1"}, "resuming": True},
        expected_start_time=START + _dt.timedelta(minutes=5), infrastructure_pid="pid-1",
    )
    force_state(engine, "flow_run", run.id, State(type=StateType.SCHEDULED, id=uuid.uuid4()))
    task = engine.create_task_run(
        flow_run_id=run.id, task_key="t", dynamic_key="0", cache_key="ck", tags=["tt"],
        cache_expiration=START + _dt.timedelta(days=1),
        empirical_policy={"retries": 2, "retry_delay": [1, 2, 4], "retry_jitter_factor": 0.5},
        task_inputs={"x": [{"input_type": "parameter", "name": "p"}, {"input_type": "constant", "type": "int"}]},
    )
    upstream = engine.create_task_run(flow_run_id=run.id, task_key="u", dynamic_key="0",
                                      task_inputs={"y": [{"input_type": "task_run", "id": str(task.id)}]})
    done = State(type=StateType.COMPLETED, id=uuid.uuid4(),
                 data={"value": [1, 2], "artifact_key": "result-key", "artifact_description": "desc"},
                 state_details={"cache_key": "ck", "cache_expiration": START + _dt.timedelta(days=1),
                                "run_input_keyset": {"a": "b"}, "deferred": None, "untrackable_result": True})
    force_state(engine, "task_run", task.id, done)
    force_state(engine, "task_run", upstream.id, State(type=StateType.RUNNING, id=uuid.uuid4(), message="go"))
    add_cache_entry(engine, "ck", done.id, uuid.uuid4())
    engine.bulk_increment_active_slots([dep.concurrency_limit_id], 1)
    # Updates of the worker-side kinds (status bookkeeping, renumbered priorities).
    engine.update_flow(flow.id, tags=["k", "k2"])
    engine.update_work_pool(pool.id, is_paused=True, concurrency_limit=4)
    engine.update_work_queue(queue.id, priority=1, is_paused=True, last_polled=START)
    engine.update_deployment(dep.id, version="1.1", paused=True, concurrency_limit=3)
    # Workers: one heartbeat with an interval, one without, one re-beaten, one gone.
    engine.worker_heartbeat(pool.id, "w-interval", 15)
    engine.worker_heartbeat(pool.id, "w-plain")
    engine.worker_heartbeat(pool.id, "w-gone")
    engine.worker_heartbeat(pool.id, "w-interval")
    engine.delete_worker(pool.id, "w-gone")
    # Deployment schedules of all three kinds (one updated, one deleted) and the runs
    # schedule_runs makes from them.
    interval, cron, rrule = engine.create_deployment_schedules(dep.id, [
        {"schedule": {"interval": 5400.5, "anchor_date": "2024-03-09T23:30:00-05:00",
                      "timezone": "America/New_York"}, "max_scheduled_runs": 7},
        {"schedule": {"cron": "30 2 * * *", "timezone": "Europe/Berlin", "day_or": False}, "active": False},
        {"schedule": {"rrule": "DTSTART:20240101T090000\nRRULE:FREQ=DAILY;BYHOUR=9,17", "timezone": "Asia/Kolkata"}},
    ])
    engine.update_deployment_schedule(dep.id, cron.id, {"active": True})
    # Flow-run inputs: one with a sender, one without, non-ASCII text, one deleted.
    engine.create_flow_run_input(run.id, "schema-1", '{"type": "object", "title": "é"}', sender="flow/x")
    engine.create_flow_run_input(run.id, "response-1", "{}")
    engine.create_flow_run_input(run.id, "gone", "x")
    engine.delete_flow_run_input(run.id, "gone")
    engine.delete_deployment_schedule(dep.id, rrule.id)
    engine.schedule_runs(dep.id, start_time=START, max_runs=4)
    return {"flow": flow, "pool": pool, "queue": queue, "deployment": dep, "tag_limit": tag_limit,
            "flow_run": run, "task_run": task, "upstream": upstream}
