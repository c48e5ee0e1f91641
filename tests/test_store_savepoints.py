"""Store savepoints (engine/store.py): levels are marks plus serial numbers, and a
record is snapshotted once per level. These cases pin the orderings where a reused
level marker would skip a needed snapshot."""
from __future__ import annotations

import pytest

from engine.errors import TransactionError
from engine.records import Flow
from engine.tables import build_store


@pytest.fixture
def store_and_flow():
    store = build_store()
    flow = Flow(name="a", tags=["x"])
    store.begin()
    store.insert("flow", flow)
    store.commit()
    return store, flow


def _rename(store, flow, name):
    store.touch("flow", flow)
    flow.name = name
    store.reindex("flow", flow)


def test_sibling_savepoints_each_snapshot(store_and_flow):
    store, flow = store_and_flow
    store.begin()
    store.begin()
    _rename(store, flow, "b")
    store.commit()  # inner level closed, kept
    store.begin()  # a sibling at the same depth must snapshot again
    _rename(store, flow, "c")
    store.rollback()
    assert flow.name == "b"
    store.rollback()
    assert flow.name == "a"
    assert set(store.tables["flow"].by_name["name"].buckets) == {"a"}


def test_savepoint_after_a_rolled_back_one_at_the_same_mark(store_and_flow):
    store, flow = store_and_flow
    store.begin()
    store.begin()
    _rename(store, flow, "b")
    store.rollback()  # undo log back to the same length
    store.begin()  # same mark as the rolled-back level
    _rename(store, flow, "c")
    store.rollback()
    assert flow.name == "a"
    _rename(store, flow, "d")
    store.commit()
    assert flow.name == "d"
    assert set(store.tables["flow"].by_name["name"].buckets) == {"d"}


def test_consecutive_transactions_snapshot_again(store_and_flow):
    store, flow = store_and_flow
    store.begin()
    _rename(store, flow, "b")
    store.commit()
    store.begin()
    _rename(store, flow, "c")
    flow.tags.append("y")
    store.rollback()
    assert (flow.name, flow.tags) == ("b", ["x"])


def test_unfiled_insert_is_filed_by_reindex_and_removed_by_rollback():
    store = build_store()
    flow = Flow(name="a")
    store.begin()
    store.insert("flow", flow, file=False)
    assert not store.tables["flow"].by_name["name"].get("a")
    store.reindex("flow", flow)
    assert flow in store.tables["flow"].by_name["name"].get("a").values()
    store.rollback()
    assert not store.tables["flow"].rows and not store.tables["flow"]._keys
    assert not store.tables["flow"].by_name["name"].buckets


def test_an_insert_whose_filing_fails_midway_leaves_nothing_behind():
    """Filing raises after the record is in some indexes (an interrupt, say): the
    insert takes it out of the rows and of those indexes before the error goes on."""
    store = build_store()
    table = store.tables["flow"]
    store.begin()
    store.insert("flow", Flow(name="kept"))
    store.commit()
    by_name = table.by_name["name"]  # filed inline by the generated code
    recorder, failing = _Recorder(by_name.extract), _Recorder(by_name.extract, fail=True)
    table.indexes[:] = [by_name, recorder, failing]
    table._file_fn = None
    store.begin()
    with pytest.raises(_Interrupted):
        store.insert("flow", Flow(name="lost"))
    store.rollback()
    assert [f.name for f in table.rows.values()] == ["kept"]
    assert set(by_name.buckets) == {"kept"} and recorder.filed == set()
    assert len(table._keys) == 1


class _Interrupted(BaseException):
    pass


class _Recorder:
    """An index the generated filing code calls through `insert`: records the keys
    filed, or (`fail`) raises as an interrupt would."""

    def __init__(self, extract, fail=False):
        self.extract, self.fail, self.filed = extract, fail, set()

    def insert(self, key, rec):
        if self.fail:
            raise _Interrupted()
        self.filed.add(key)

    def remove(self, key, rec):
        self.filed.remove(key)


def test_duplicate_insert_keeps_the_existing_record(store_and_flow):
    store, flow = store_and_flow
    twin = Flow(name="twin", id=flow.id)
    store.begin()
    with pytest.raises(KeyError):
        store.insert("flow", twin)
    store.rollback()
    assert store.tables["flow"].rows[flow.id] is flow


def test_writes_outside_a_transaction_are_refused(store_and_flow):
    store, flow = store_and_flow
    with pytest.raises(TransactionError):
        store.touch("flow", flow)
    with pytest.raises(TransactionError):
        store.insert("flow", Flow(name="b"))
    with pytest.raises(TransactionError):
        store.delete("flow", flow)
    assert list(store.tables["flow"].rows.values()) == [flow]


def test_rollback_undoes_in_place_changes_to_containers_and_policies():
    # A rule may mutate a run's containers and policy in place (as Prefect's rules
    # do on the ORM object): the snapshot saves them by value.
    from engine.records import FlowRun, TaskRun
    import uuid

    store = build_store()
    run = FlowRun(flow_id=uuid.uuid4(), tags=["a"], parameters={"x": 1})
    task = TaskRun(task_key="t", dynamic_key="0")
    task.empirical_policy.retry_delay = [1, 2]
    store.begin()
    store.insert("flow_run", run)
    store.insert("task_run", task)
    store.commit()
    policy = run.empirical_policy

    store.begin()
    store.touch("flow_run", run)
    store.touch("task_run", task)
    run.tags.append("b")
    run.parameters["x"] = 2
    policy.pause_keys.add("k")
    policy.resuming = True
    policy.retries = 3
    task.empirical_policy.retry_delay.append(3)
    store.rollback()

    assert run.tags == ["a"] and run.parameters == {"x": 1}
    assert run.empirical_policy is policy
    assert (policy.pause_keys, policy.resuming, policy.retries) == (set(), False, None)
    assert task.empirical_policy.retry_delay == [1, 2]


def test_rolled_back_deletes_keep_creation_order_where_reads_show_it():
    # Ties in these reads fall to creation order (SQLite's rowid order). A delete
    # rolled back must put the record back in its place, not at the end.
    import datetime as dt

    from engine import Engine, ManualClock

    engine = Engine(clock=ManualClock(dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)))
    pool = engine.create_work_pool("pool")
    queues = [engine.create_work_queue(pool.id, f"q{i}") for i in range(3)]
    flow = engine.create_flow("f")
    dep = engine.create_deployment(flow_id=flow.id, name="d")
    schedules = engine.create_deployment_schedules(dep.id, [{"interval": 60 * (i + 1)} for i in range(3)])
    for i in range(3):
        engine.create_work_pool(f"other-{i}")

    def reads():
        return ([q.id for q in engine.check_work_queues_for_deployment(dep.id)],
                [s.id for s in engine.read_deployment_schedules(dep.id)],
                list(engine._store.tables["work_pool"].rows),
                [list(b) for b in engine._store.tables["work_queue"].by_name["work_pool_id"].buckets.values()])

    before = reads()
    with pytest.raises(RuntimeError), engine.transaction():
        engine.delete_work_queue(queues[0].id)
        engine.delete_deployment_schedule(dep.id, schedules[0].id)
        engine.delete_work_pool(engine.read_work_pool_by_name("other-0").id)
        raise RuntimeError("undo")
    assert reads() == before


def test_rolled_back_input_delete_keeps_the_runs_inputs_in_order():
    # Inputs stamped at one instant read back in the order written.
    import datetime as dt

    from engine import Engine, ManualClock

    engine = Engine(clock=ManualClock(dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)))
    run = engine.create_flow_run(flow_id=engine.create_flow("f").id)
    for key in ("k0", "k1", "k2"):
        engine.create_flow_run_input(run.id, key, '"v"')
    before = [i.key for i in engine.filter_flow_run_input(run.id, "k", limit=None)]
    with pytest.raises(RuntimeError), engine.transaction():
        engine.delete_flow_run_input(run.id, "k0")
        raise RuntimeError("undo")
    assert [i.key for i in engine.filter_flow_run_input(run.id, "k", limit=None)] == before == ["k0", "k1", "k2"]


def test_rolled_back_deletes_restore_every_order_of_a_catalog_table():
    # Store level: any mix of deletes, in nested levels, rolled back leaves `rows`,
    # every bucket and the buckets' keys in their first order.
    import random

    store = build_store()
    rng = random.Random(7)
    store.begin()
    flows = [Flow(name=rng.choice("abc")) for i in range(12)]  # the name index: buckets of several
    for flow in flows:
        store.insert("flow", flow)
    store.commit()
    table = store.tables["flow"]

    def orders():
        return list(table.rows), {idx.name: {k: list(b) for k, b in idx.buckets.items()} for idx in table.indexes}, \
            [list(idx.buckets) for idx in table.indexes]

    for _ in range(20):
        before = orders()
        store.begin()
        for victim in rng.sample(flows, 4):
            if rng.random() < 0.5:
                store.begin()
            store.delete("flow", victim)
        while store.in_transaction:
            store.rollback()
        assert orders() == before
