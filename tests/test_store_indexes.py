"""The store's two special index layouts (engine/store.py, engine/indexes.py):
history tables (state rows: one index, no per-row keys) and sparse hash indexes
(optional references: no None bucket). Both must answer exactly as a full index
would, through inserts, deletes and rollbacks."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from engine import Engine, ManualClock, Pending, Running, Scheduled
from engine.records import FlowRun, FlowRunStateRow
from engine.serialization import RECORD_CLASSES
from engine.states import StateType
from engine.store import HistoryTable
from engine.tables import build_store

T = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _row(run_id, seconds: int = 0) -> FlowRunStateRow:
    return FlowRunStateRow(type=StateType.PENDING, timestamp=T + dt.timedelta(seconds=seconds),
                           name="Pending", flow_run_id=run_id)


def _history(store) -> dict:
    """run id -> ids of its rows, as the history index files them."""
    buckets = store.tables["flow_run_state"].by_name["run_id"].buckets
    return {k: {r.id for r in v.values()} for k, v in buckets.items()}


def test_state_tables_are_history_tables_that_keep_no_keys():
    store = build_store()
    table = store.tables["flow_run_state"]
    assert isinstance(table, HistoryTable)
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    rows = [_row(run_a, 0), _row(run_b, 1), _row(run_a, 2)]
    store.begin()
    for row in rows:
        store.insert("flow_run_state", row)
    store.commit()
    assert _history(store) == {run_a: {rows[0].id, rows[2].id}, run_b: {rows[1].id}}
    assert not table._keys
    # Re-filing a filed row is a no-op: its key cannot change.
    assert store.reindex("flow_run_state", rows[0]) is False


def test_history_table_delete_and_rollback_restore_the_index():
    store = build_store()
    run_a = uuid.uuid4()
    first, second = _row(run_a, 0), _row(run_a, 1)
    store.begin()
    store.insert("flow_run_state", first)
    store.insert("flow_run_state", second)
    store.commit()

    store.begin()
    store.delete("flow_run_state", first)
    store.delete("flow_run_state", second)
    assert _history(store) == {}  # the emptied bucket is gone
    store.rollback()
    assert _history(store) == {run_a: {first.id, second.id}}

    store.begin()
    third = _row(run_a, 2)
    store.insert("flow_run_state", third, file=False)
    assert _history(store) == {run_a: {first.id, second.id}}
    assert store.reindex("flow_run_state", third) is True  # files it
    assert _history(store) == {run_a: {first.id, second.id, third.id}}
    store.rollback()
    assert _history(store) == {run_a: {first.id, second.id}}
    assert third.id not in store.tables["flow_run_state"].rows


def test_history_table_refuses_a_second_index():
    table = build_store().tables["task_run_state"]
    with pytest.raises(RuntimeError, match="exactly one"):
        table.hash_index("other", lambda r: r.name)
    with pytest.raises(RuntimeError, match="exactly one"):
        table.sorted_index("timestamp", lambda r: r.timestamp)
    with pytest.raises(RuntimeError, match="exactly one"):
        table.multi_index("tags", lambda r: ())


def test_sparse_index_answers_none_by_count_and_scan():
    store = build_store()
    dep = uuid.uuid4()
    flow_id = uuid.uuid4()
    runs = [FlowRun(flow_id=flow_id, deployment_id=dep if i % 3 == 0 else None) for i in range(9)]
    store.begin()
    for run in runs:
        store.insert("flow_run", run)
    store.commit()
    index = store.tables["flow_run"].by_name["deployment_id"]
    assert None not in index.buckets
    assert {r.id for r in index.get(dep).values()} == {r.id for r in runs if r.deployment_id == dep}
    assert index.count(None) == 6
    assert {r.id for r in index.get(None).values()} == {r.id for r in runs if r.deployment_id is None}

    # Moving a run out of and back into None keeps both answers exact.
    store.begin()
    store.touch("flow_run", runs[1])
    runs[1].deployment_id = dep
    store.reindex("flow_run", runs[1])
    assert index.count(None) == 5 and index.count(dep) == 4
    store.rollback()
    assert index.count(None) == 6 and index.count(dep) == 3
    assert runs[1] not in index.get(dep).values()


def test_engine_reads_of_runs_without_a_deployment_use_the_sparse_index():
    engine = Engine(clock=ManualClock(T, tick=dt.timedelta(seconds=1)))
    flow = engine.create_flow(name="f")
    dep = engine.create_deployment(flow_id=flow.id, name="d")
    with_dep = [engine.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Scheduled()) for _ in range(2)]
    without = [engine.create_flow_run(flow_id=flow.id, state=Pending()) for _ in range(3)]
    engine.set_flow_run_state(without[0].id, Running(), force=True)
    no_dep = {"deployment_id": {"is_null_": True}}
    assert engine.count_flow_runs(flow_run_filter=no_dep) == 3
    assert {r.id for r in engine.read_flow_runs(flow_run_filter=no_dep)} == {r.id for r in without}
    has_dep = {"deployment_id": {"is_null_": False}}
    assert {r.id for r in engine.read_flow_runs(flow_run_filter=has_dep)} == {r.id for r in with_dep}
    engine.delete_flow_run(without[1].id)
    assert engine.count_flow_runs(flow_run_filter=no_dep) == 2


# NewestIndex (task-run cache lookups) against a scan ---------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from engine.indexes import NewestIndex  # noqa: E402
from engine.records import TaskRunStateCache  # noqa: E402


def _scan_newest(rows: list, key: str, now: dt.datetime):
    best = None
    for row in rows:  # insertion order: a later insert wins ties
        if row.cache_key != key or (row.cache_expiration is not None and row.cache_expiration <= now):
            continue
        if best is None or row.created >= best.created:
            best = row
    return best


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from("ab"), st.integers(0, 20), st.none() | st.integers(0, 30)),
        st.tuples(st.just("drop"), st.integers(0, 50)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, clock_moves_forward=st.booleans(), now=st.integers(0, 30))
def test_newest_index_answers_like_a_scan(ops, clock_moves_forward, now):
    store = build_store()
    index = store.tables["task_run_state_cache"].by_name["cache_key"]
    assert isinstance(index, NewestIndex)
    live: list = []
    t = 0
    for op in ops:
        store.begin()
        if op[0] == "add":
            _, key, created, expires = op
            t = t + created if clock_moves_forward else created
            row = TaskRunStateCache(cache_key=key, task_run_state_id=uuid.uuid4(),
                                    cache_expiration=None if expires is None else T + dt.timedelta(seconds=t + expires))
            row.created = T + dt.timedelta(seconds=t)
            store.insert("task_run_state_cache", row)
            live.append(row)
        elif live:
            row = live.pop(op[1] % len(live))
            store.delete("task_run_state_cache", row)
        if len(live) % 3 == 0 and live:  # some transactions roll back
            store.rollback()
            live = list(store.tables["task_run_state_cache"].rows.values())
        else:
            store.commit()
        at = T + dt.timedelta(seconds=now + t // 2)
        for key in "ab":
            assert index.newest(key, at) is _scan_newest(live, key, at)


def test_new_engines_reuse_compiled_filing():
    # Each engine registers the same extractors; compiling its file/refile functions
    # again per engine would cost more than the rest of an engine, and per-engine
    # ones would pile up.
    from engine.refile import _FACTORIES

    def engine_with_warm_sorts():
        engine = Engine(clock=ManualClock(T, tick=dt.timedelta(seconds=1)))
        flow = engine.create_flow(name="f")
        engine.create_flow_run(flow_id=flow.id, state=Scheduled())
        engine.read_flow_runs(sort="EXPECTED_START_TIME_DESC", limit=2)
        engine.read_task_runs(task_run_filter={"state": {"type": {"any_": ["RUNNING"]}}}, sort="NAME_DESC", limit=2)
        for field in ("work_queue_id", "deployment_id", "flow_id"):   # the joins' and worker polls' indexes
            engine._store.tables["flow_run"].by_name[field + "+state_type"].warm()
        engine.create_flow_run(flow_id=flow.id, state=Scheduled())  # files and refiles with the sorts live
        return engine

    first = engine_with_warm_sorts()
    compiled = len(_FACTORIES)
    later = [engine_with_warm_sorts() for _ in range(5)]
    assert len(_FACTORIES) == compiled
    # Engines share compiled code, never data: the same function code, each bound
    # to its own table.
    mine, theirs = first._store.tables["flow_run"], later[0]._store.tables["flow_run"]
    for fn in ("_file_fn", "_refile_fn"):
        assert getattr(mine, fn).__code__ is getattr(theirs, fn).__code__
        assert getattr(mine, fn) is not getattr(theirs, fn)
    assert first.count_flow_runs() == later[0].count_flow_runs() == 2


@pytest.mark.parametrize("kind", sorted(RECORD_CLASSES))
def test_records_hash_by_identity(kind):
    # Buckets, `_keys` and the undo bookkeeping are keyed by the records themselves:
    # that needs identity hashing (in C), which attrs' eq=False keeps.
    cls = RECORD_CLASSES[kind]
    assert cls.__hash__ is object.__hash__ and cls.__eq__ is object.__eq__, cls



@pytest.mark.parametrize("collector_on", [True, False])
def test_a_large_cold_index_build_pauses_the_collector_and_restores_it(monkeypatch, collector_on):
    # A table past BULK_BUILD_ROWS builds a cold index with the collector paused
    # (the collector rescanning the growing heap doubled such builds); afterwards the
    # collector is as the caller had it, and the index answers as a small build would.
    import gc

    import engine.store as store_module

    engine = Engine(clock=ManualClock(T, tick=dt.timedelta(seconds=1)))
    flow = engine.create_flow(name="f")
    for i in range(30):
        engine.create_flow_run(flow_id=flow.id, name=f"run-{i:02}", state=Running() if i % 3 else Pending())
    monkeypatch.setattr(store_module, "BULK_BUILD_ROWS", 20)
    seen = []
    real_no_gc = store_module.no_gc

    def spying_no_gc():
        seen.append(gc.isenabled())
        return real_no_gc()

    monkeypatch.setattr(store_module, "no_gc", spying_no_gc)
    was = gc.isenabled()
    try:
        if not collector_on:
            gc.disable()
        got = engine.read_flow_runs(flow_run_filter={"state": {"type": {"any_": ["RUNNING"]}}}, sort="NAME_DESC",
                                    limit=3)
        assert gc.isenabled() is collector_on
    finally:
        if was:
            gc.enable()
    assert seen and set(seen) == {collector_on}  # each build went through no_gc, as the caller had it
    assert [r.name for r in got] == ["run-29", "run-28", "run-26"]
