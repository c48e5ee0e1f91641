"""Result artifacts and artifact collections (spec states.md §5, models.md §14).

A state's result data is stored as an artifact; a keyed one also upserts the
artifact collection of its key. Prefect's upsert writes only the columns the new
artifact set (checked against Prefect 3.1.0: see test_a_later_result_keeps_...),
so the collection's other descriptive columns keep the earlier artifact's values.
"""
from __future__ import annotations

import collections
import datetime as dt
import uuid

import pytest

from engine import Completed, Engine, ManualClock, UniquenessError, ValidationError

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def e() -> Engine:
    return Engine(clock=ManualClock(T, tick=dt.timedelta(seconds=1)))


@pytest.fixture
def flow_run(e):
    return e.create_flow_run(flow_id=e.create_flow("f").id)


def test_a_keyed_result_makes_a_collection_with_the_artifacts_columns(e, flow_run):
    task_run = e.create_task_run(flow_run_id=flow_run.id, task_key="t", dynamic_key="0")
    e.set_task_run_state(task_run.id, Completed(data={"artifact_key": "k", "artifact_type": "result",
                                                     "artifact_description": "d", "v": 1}), force=True)
    coll = e.read_latest_artifact("k")
    artifact = e.read_artifact(coll.latest_id)
    assert (artifact.key, artifact.type, artifact.description, artifact.data) == ("k", "result", "d", {"v": 1})
    assert (coll.task_run_id, coll.flow_run_id, coll.type, coll.description, coll.data, coll.metadata_) == (
        task_run.id, flow_run.id, "result", "d", {"v": 1}, None)
    assert coll.created == coll.updated == artifact.created


def test_a_later_result_keeps_the_columns_it_does_not_set(e, flow_run):
    # As Prefect 3.1.0 answered this very sequence: the flow run's result sets no
    # type, description or task run, so those stay the task run's artifact's.
    task_run = e.create_task_run(flow_run_id=flow_run.id, task_key="t", dynamic_key="0")
    e.set_task_run_state(task_run.id, Completed(data={"artifact_key": "k", "artifact_type": "result",
                                                     "artifact_description": "d1", "v": 1}), force=True)
    first = e.read_latest_artifact("k")
    created, first_id = first.created, first.latest_id
    e.set_flow_run_state(flow_run.id, Completed(data={"artifact_key": "k", "artifact_type": "", "v": 2}), force=True)
    coll = e.read_latest_artifact("k")
    assert coll is first  # one collection per key, upserted
    latest = e.read_artifact(coll.latest_id)
    assert coll.latest_id != first_id and (latest.type, latest.description, latest.task_run_id) == (None, None, None)
    assert (coll.data, coll.flow_run_id, coll.task_run_id, coll.type, coll.description) == (
        {"v": 2}, flow_run.id, task_run.id, "result", "d1")
    assert coll.created == created < coll.updated == latest.created
    assert e.read_artifact(first_id).data == {"v": 1}  # the earlier artifact stays


def test_a_task_run_without_a_flow_run_keeps_the_collections_flow_run(e, flow_run):
    e.set_flow_run_state(flow_run.id, Completed(data={"artifact_key": "k", "v": 1}), force=True)
    orphan = e.create_task_run(task_key="t", dynamic_key="0")
    e.set_task_run_state(orphan.id, Completed(data={"artifact_key": "k", "v": 2}), force=True)
    coll = e.read_latest_artifact("k")
    assert (coll.data, coll.task_run_id, coll.flow_run_id) == ({"v": 2}, orphan.id, flow_run.id)
    assert e.read_artifact(coll.latest_id).flow_run_id is None


def test_a_refused_write_leaves_the_collection_as_it_was(e, flow_run):
    e.set_flow_run_state(flow_run.id, Completed(data={"artifact_key": "k", "artifact_type": "a", "v": 1}),
                         force=True)
    coll = e.read_latest_artifact("k")
    before = (coll.latest_id, coll.data, coll.type, coll.updated)
    other = e.create_flow_run(flow_id=flow_run.flow_id, state=Completed())
    clash = Completed(data={"artifact_key": "k", "artifact_type": "b", "v": 2})
    clash.id = other.state_id  # refused after the artifact and collection were written
    with pytest.raises(UniquenessError):
        e.set_flow_run_state(flow_run.id, clash, force=True)
    assert e.read_latest_artifact("k") is coll
    assert (coll.latest_id, coll.data, coll.type, coll.updated) == before
    assert len(e._store.tables["artifact"]) == 1


def test_unkeyed_and_unpersisted_results_make_no_collection(e, flow_run):
    e.set_flow_run_state(flow_run.id, Completed(data={"v": 1}), force=True)
    e.set_flow_run_state(flow_run.id, Completed(data={"type": "unpersisted", "artifact_key": "k"}), force=True)
    assert len(e._store.tables["artifact"]) == 1 and len(e._store.tables["artifact_collection"]) == 0
    assert e.read_latest_artifact("k") is None


def test_reads_refuse_ids_and_keys_of_the_wrong_type(e):
    assert e.read_artifact(uuid.uuid4()) is None
    with pytest.raises(ValidationError, match="artifact_id"):
        e.read_artifact("not-a-uuid")
    with pytest.raises(ValidationError, match="key must be a string"):
        e.read_latest_artifact(7)


@pytest.mark.parametrize("column", ["artifact_key", "artifact_type", "artifact_description"])
@pytest.mark.parametrize("value", [5, ["k"], "k\udc80"])
def test_a_result_whose_artifact_columns_are_not_text_aborts_with_nothing_stored(e, flow_run, column, value):
    """Prefect's Artifact schema refuses a non-string key, type or description inside
    state validation, and the transition ABORTs (checked against Prefect 3.1.0); a
    text no store can hold (a lone surrogate) is refused the same way."""
    e.set_flow_run_state(flow_run.id, Completed(data={"artifact_key": "k", "v": 0}), force=True)
    before = (e.read_latest_artifact("k").latest_id, e.read_flow_run(flow_run.id).state_id)
    answer = e.set_flow_run_state(flow_run.id, Completed(data={column: value, "v": 1}), force=True)
    assert answer.status.value == "ABORT"
    assert f"state.data.{column} must be" in answer.details.reason
    assert (e.read_latest_artifact("k").latest_id, e.read_flow_run(flow_run.id).state_id) == before


@pytest.mark.parametrize("column", ["artifact_key", "artifact_type", "artifact_description"])
@pytest.mark.parametrize("value", [0, False, [], {}, ""])
def test_a_result_whose_artifact_column_is_falsy_stores_an_artifact_without_it(e, flow_run, column, value):
    """Prefect pops the three columns and uses each only when truthy: a falsy value
    of any type is dropped unread, not refused, and the state is stored."""
    answer = e.set_flow_run_state(flow_run.id, Completed(data={column: value, "v": 1}), force=True)
    assert answer.status.value == "ACCEPT"
    run = e.read_flow_run(flow_run.id)
    assert run.state_id == answer.state.id and run.state_type.value == "COMPLETED"
    artifact = e.read_artifact(e._store.tables["flow_run_state"].rows[answer.state.id].result_artifact_id)
    assert (artifact.key, artifact.type, artifact.description, artifact.data) == (None, None, None, {"v": 1})


@pytest.mark.parametrize("kind", [dict, collections.OrderedDict], ids=["dict", "dict-subclass"])
def test_an_unpersisted_result_is_answered_but_never_read_back(e, flow_run, kind):
    # A dict subclass takes the artifact-writing path; its stored data must be
    # hidden from reads all the same (states.md §5).
    data = kind(type="unpersisted", value=1)
    result = e.set_flow_run_state(flow_run.id, Completed(data=data), force=True)
    assert result.state.data == {"type": "unpersisted", "value": 1}
    assert e.read_flow_run(flow_run.id).state.data is None
    assert e.read_flow_run_states(flow_run.id)[-1].data is None
