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
