"""CRUD semantics of the Engine facade (spec operations.md) and transaction atomicity."""
import datetime as dt
import uuid

import pytest

from engine import (
    Completed, Engine, ManualClock, Running, StateType, UniquenessError, ValidationError,
)
from engine.records import Constant, FlowRunPolicy, Parameter, TaskRunPolicy, TaskRunResult

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def e():
    return Engine(clock=ManualClock(T))


@pytest.fixture
def flow(e):
    return e.create_flow("etl")


def snapshot(e):
    """Every table's rows and every index's contents, for before/after comparisons."""
    out = {}
    for kind, table in e._store.tables.items():
        rows = {rid: tuple(getattr(r, f) for f in r.__slots__ if f != "__weakref__") for rid, r in table.rows.items()}
        idx = {}
        for index in table.indexes:
            if hasattr(index, "buckets"):
                idx[index.name] = {k: {r.id for r in v.values()} for k, v in index.buckets.items()}
            else:
                idx[index.name] = list(index.entries)
        out[kind] = (rows, idx)
    return out


def test_repr_names_where_the_runs_live_the_clock_and_the_counts(e, flow):
    e.create_task_run(flow_run_id=e.create_flow_run(flow_id=flow.id).id, task_key="t", dynamic_key="0")
    e.create_flow_run(flow_id=flow.id)
    assert repr(e) == "<Engine memory, ManualClock(2024-11-01T00:00:00+00:00), flow runs: 2, task runs: 1>"


def test_flow_create_is_upsert_by_name(e):
    a = e.create_flow("etl", tags=["x"])
    b = e.create_flow("etl", tags=["y"])
    assert a is b and a.tags == ["x"]
    with pytest.raises(ValidationError, match="name"):
        e.create_flow("bad/name")


def test_create_flow_run_defaults(e, flow):
    run = e.create_flow_run(flow_id=flow.id)
    assert run.name and "-" in run.name
    assert run.state is None and run.state_type is None and run.run_count == 0
    assert run.parameters == {} and run.job_variables == {} and run.tags == []
    assert run.total_run_time == dt.timedelta(0)
    assert e.read_flow_run(run.id) is run and e.read_flow_run(str(run.id)) is run
    assert e.read_flow_run(uuid.uuid4()) is None


def test_idempotency_key(e, flow):
    a = e.create_flow_run(flow_id=flow.id, idempotency_key="k", tags=["a"])
    b = e.create_flow_run(flow_id=flow.id, idempotency_key="k", tags=["b"])
    assert a is b and a.tags == ["a"]
    other_flow = e.create_flow("other")
    c = e.create_flow_run(flow_id=other_flow.id, idempotency_key="k")
    assert c is not a
    # runs without a key never conflict
    assert e.create_flow_run(flow_id=flow.id) is not e.create_flow_run(flow_id=flow.id)
    # "" is falsy (no idempotent path) but still unique in the index
    e.create_flow_run(flow_id=flow.id, idempotency_key="")
    with pytest.raises(UniquenessError):
        e.create_flow_run(flow_id=flow.id, idempotency_key="")


def test_idempotent_create_returns_the_first_run_whatever_else_is_given(e, flow):
    # Prefect's insert skips on the key's conflict before any other reference is
    # checked (checked against Prefect 3.1.0): a missing queue or parent is no error.
    first = e.create_flow_run(flow_id=flow.id, idempotency_key="kk")
    again = e.create_flow_run(flow_id=flow.id, idempotency_key="kk", work_queue_id=uuid.uuid4(),
                              parent_task_run_id=uuid.uuid4())
    assert again is first and first.work_queue_id is None
    with pytest.raises(ValidationError, match="work queue"):  # a new run still needs its references
        e.create_flow_run(flow_id=flow.id, idempotency_key="other", work_queue_id=uuid.uuid4())


def test_global_limit_slots_with_repeated_ids_count_once(e):
    # One UPDATE ... WHERE id IN (...) in Prefect (checked against 3.1.0): a repeated
    # id takes or gives slots once, and the call reports that not every entry updated.
    limit = e.create_concurrency_limit_v2(name="g", limit=4)
    assert e.bulk_increment_active_slots([limit.id, limit.id], 1) is False
    assert limit.active_slots == 1
    assert e.bulk_increment_active_slots([limit.id], 2) is True and limit.active_slots == 3
    assert e.bulk_decrement_active_slots([limit.id, limit.id], 1, occupancy_seconds=10) is False
    assert limit.active_slots == 2 and limit.avg_slot_occupancy_seconds == 2.0 + (10 - 2.0) / 8


def test_occupancy_needs_slots_and_a_zero_limit_keeps_its_average(e):
    limit = e.create_concurrency_limit_v2(name="g", limit=2)
    before = (limit.active_slots, limit.avg_slot_occupancy_seconds, limit.updated)
    with pytest.raises(ValidationError, match="slots is 0"):  # Prefect: ZeroDivisionError
        e.bulk_decrement_active_slots([limit.id], 0, occupancy_seconds=5)
    assert (limit.active_slots, limit.avg_slot_occupancy_seconds, limit.updated) == before
    zero = e.create_concurrency_limit_v2(name="z", limit=0)  # Prefect: an integrity error
    assert e.bulk_decrement_active_slots([zero.id], 1, occupancy_seconds=10) is True
    assert zero.active_slots == 0 and zero.avg_slot_occupancy_seconds == before[1]


def test_bad_input_names_the_culprit_and_changes_nothing(e, flow):
    before = snapshot(e)
    with pytest.raises(ValidationError, match="bogus"):
        e.create_flow_run(flow_id=flow.id, bogus=1)
    with pytest.raises(ValidationError, match="flow_run.tags"):
        e.create_flow_run(flow_id=flow.id, tags="a")
    with pytest.raises(ValidationError, match="flow_id"):
        e.create_flow_run(flow_id="not-a-uuid")
    with pytest.raises(ValidationError, match="does not exist"):
        e.create_flow_run(flow_id=uuid.uuid4())
    with pytest.raises(ValidationError, match="empirical_policy"):
        e.create_flow_run(flow_id=flow.id, empirical_policy={"retries": 1, "nope": 2})
    with pytest.raises(ValidationError, match="flow_run_id"):
        e.read_flow_run(12)
    assert snapshot(e) == before


@pytest.mark.parametrize("call, field", [
    (lambda e, f: e.create_flow_run(flow_id=f.id, idempotency_key=7), "flow_run.idempotency_key"),
    (lambda e, f: e.create_flow_run(flow_id=f.id, work_queue_name=["x"]), "flow_run.work_queue_name"),
    (lambda e, f: e.create_flow_run(flow_id=f.id, infrastructure_pid=12), "flow_run.infrastructure_pid"),
    (lambda e, f: e.update_flow_run(e.create_flow_run(flow_id=f.id).id, flow_version=1), "flow_run.flow_version"),
    (lambda e, f: e.create_task_run(task_key="t", dynamic_key="0", task_version=3), "task_run.task_version"),
    (lambda e, f: e.create_task_run(task_key="t", dynamic_key="0", cache_key=5), "task_run.cache_key"),
    (lambda e, f: e.create_deployment(f.id, "d", version=2), "deployment.version"),
    (lambda e, f: e.create_deployment(f.id, "d", path=3), "deployment.path"),
    (lambda e, f: e.create_work_pool("p", description=4), "work_pool.description"),
])
def test_text_columns_refuse_other_types(e, flow, call, field):
    # Prefect's schemas type these `str` (pydantic refuses an int). Stored as given, an
    # integer idempotency key would come back from a backend as text and no longer match.
    before = snapshot(e)
    with pytest.raises(ValidationError, match=field):
        with e.transaction():  # (the update's own create goes too)
            call(e, flow)
    assert snapshot(e) == before


def test_json_columns_are_stored_as_prefects_json_type_stores_them(e, flow):
    # A JSON round trip (Prefect's JSON.process_bind_param): NaN and infinities become
    # None, tuples lists, nested keys strings; the stored value shares nothing with
    # the caller's, and a value JSON cannot hold is refused before anything is stored.
    nested = {"points": (1, 2), 3: "three"}
    run = e.create_flow_run(flow_id=flow.id, parameters={"x": float("nan"), "nested": nested},
                            context={"inf": float("-inf")}, job_variables={"env": {"A": "1"}})
    assert run.parameters == {"x": None, "nested": {"points": [1, 2], "3": "three"}}
    assert (run.context, run.job_variables) == ({"inf": None}, {"env": {"A": "1"}})
    nested["points"] = "changed"
    assert run.parameters["nested"]["points"] == [1, 2]
    e.update_flow_run(run.id, parameters={"y": (float("inf"),)})
    assert run.parameters == {"y": [None]}
    dep = e.create_deployment(flow.id, "d", parameters={"t": (1,)}, job_variables={"n": float("nan")})
    assert (dep.parameters, dep.job_variables) == ({"t": [1]}, {"n": None})
    pool = e.create_work_pool("p", base_job_template={"job_configuration": {"x": (1,)}})
    assert pool.base_job_template == {"job_configuration": {"x": [1]}}
    before = snapshot(e)
    with pytest.raises(ValidationError, match="flow_run.parameters must hold JSON values"):
        e.create_flow_run(flow_id=flow.id, parameters={"when": object()})
    with pytest.raises(ValidationError, match="flow_run.context keys must be strings"):
        e.create_flow_run(flow_id=flow.id, context={1: "x"})
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(ValidationError, match="deployment.parameters must hold JSON values"):
        e.update_deployment(dep.id, parameters=loop)
    assert snapshot(e) == before


@pytest.mark.parametrize("create", [
    lambda e, taken: e.create_flow("other", id=taken["flow"]),
    lambda e, taken: e.create_deployment(taken["flow"], "other", id=taken["deployment"]),
    lambda e, taken: e.create_work_pool("other", id=taken["pool"]),
    lambda e, taken: e.create_work_queue(taken["pool"], "other", id=taken["queue"]),
    lambda e, taken: e.create_concurrency_limit_v2(name="other", limit=1, id=taken["limit"]),
])
def test_an_explicit_id_already_taken_is_a_uniqueness_error(e, flow, create):
    pool = e.create_work_pool("p")
    taken = {"flow": flow.id, "deployment": e.create_deployment(flow.id, "d").id, "pool": pool.id,
             "queue": pool.default_queue_id, "limit": e.create_concurrency_limit_v2(name="g", limit=1).id}
    before = snapshot(e)
    with pytest.raises(UniquenessError, match="already exists"):
        create(e, taken)
    assert snapshot(e) == before


@pytest.mark.parametrize("name", ["a/b", "", "x<y", "50%", 7])
def test_global_limit_names_are_prefect_names(e, name):
    limit = e.create_concurrency_limit_v2(name="ok", limit=1)
    with pytest.raises(ValidationError, match="concurrency_limit_v2.name must be a non-empty string without"):
        e.create_concurrency_limit_v2(name=name, limit=1)
    with pytest.raises(ValidationError, match="concurrency_limit_v2.name"):
        e.update_concurrency_limit_v2(limit.id, name=name)
    if isinstance(name, str):
        with pytest.raises(ValidationError, match="concurrency_limit_v2.name"):
            e.bulk_read_or_create_concurrency_limits(["fine", name], create_if_missing=True)
    assert len(e._store.tables["concurrency_limit_v2"]) == 1 and e.read_concurrency_limit_v2(name="fine") is None


@pytest.mark.parametrize("kind, policy, field", [
    ("flow_run", FlowRunPolicy(retries="3"), "retries"),
    ("flow_run", {"retry_delay": "10s"}, "retry_delay"),
    ("flow_run", FlowRunPolicy(pause_keys=5), "pause_keys"),
    ("flow_run", {"pause_keys": [1]}, "pause_keys"),
    ("flow_run", {"resuming": "yes"}, "resuming"),
    ("flow_run", {"max_retries": True}, "max_retries"),
    ("task_run", TaskRunPolicy(retries=2, retry_delay="abc"), "retry_delay"),
    ("task_run", {"retry_delay": [1, "2"]}, "retry_delay"),
    ("task_run", {"retry_jitter_factor": "0.5"}, "retry_jitter_factor"),
    # Prefect's retry delays are integers: pydantic refuses a fraction, even one
    # back-filled from the deprecated retry_delay_seconds.
    ("flow_run", {"retry_delay": 2.5}, "retry_delay"),
    ("flow_run", {"retry_delay_seconds": 0.5}, "retry_delay"),
    ("task_run", {"retry_delay": [1, 2.5]}, "retry_delay"),
    ("task_run", TaskRunPolicy(retry_delay=float("inf")), "retry_delay"),
])
def test_policy_fields_are_checked_by_type(e, flow, kind, policy, field):
    # A policy of the right class is not validated on construction: its fields are
    # checked when it is given, so a rule never meets a string retry delay.
    flow_run = e.create_flow_run(flow_id=flow.id)
    before = snapshot(e)
    with pytest.raises(ValidationError, match=rf"{kind}\.empirical_policy\.{field} must be"):
        if kind == "flow_run":
            e.create_flow_run(flow_id=flow.id, empirical_policy=policy)
        else:
            e.create_task_run(flow_run_id=flow_run.id, task_key="t", dynamic_key="0", empirical_policy=policy)
    if kind == "flow_run":
        with pytest.raises(ValidationError, match=field):
            e.update_flow_run(flow_run.id, empirical_policy=policy)
    assert snapshot(e) == before


def test_policies_given_in_other_shapes_are_normalised(e, flow):
    run = e.create_flow_run(flow_id=flow.id, empirical_policy={"pause_keys": ["a", "b"], "max_retries": 2})
    assert run.empirical_policy.pause_keys == {"a", "b"} and run.empirical_policy.retries == 2
    given = FlowRunPolicy(pause_keys=["c"])
    assert e.create_flow_run(flow_id=flow.id, empirical_policy=given).empirical_policy.pause_keys == {"c"}
    task_run = e.create_task_run(flow_run_id=run.id, task_key="t", dynamic_key="0",
                                 empirical_policy={"retries": 2, "retry_delay": [1, 2.0]})
    # Whole floats become ints, as pydantic makes them (the deprecated field stays a float).
    assert task_run.empirical_policy.retry_delay == [1, 2] and type(task_run.empirical_policy.retry_delay[1]) is int
    run = e.create_flow_run(flow_id=flow.id, empirical_policy=FlowRunPolicy(retry_delay_seconds=30.0))
    assert type(run.empirical_policy.retry_delay) is int and run.empirical_policy.retry_delay == 30
    assert run.empirical_policy.retry_delay_seconds == 30.0


def test_update_flow_run_only_given_fields(e, flow):
    clock = e.clock
    run = e.create_flow_run(flow_id=flow.id, tags=["a"], parameters={"x": 1}, flow_version="1")
    clock.advance(5)
    assert e.update_flow_run(run.id, tags=["b"]) is True
    assert run.tags == ["b"] and run.parameters == {"x": 1} and run.flow_version == "1"
    assert run.updated == T + dt.timedelta(seconds=5)
    assert e.update_flow_run(run.id, name="") and run.name  # falsy name → slug
    assert e.update_flow_run(uuid.uuid4(), tags=[]) is False
    with pytest.raises(ValidationError, match="state_type"):
        e.update_flow_run(run.id, state_type="RUNNING")
    # the tags index follows the update
    assert run in e._store.tables["flow_run"].by_name["tags"].get("b").values()
    assert not e._store.tables["flow_run"].by_name["tags"].get("a")


def test_task_run_upsert_including_no_flow_run(e, flow):
    fr = e.create_flow_run(flow_id=flow.id)
    a = e.create_task_run(flow_run_id=fr.id, task_key="t", dynamic_key="0")
    assert e.create_task_run(flow_run_id=fr.id, task_key="t", dynamic_key="0", name="x") is a
    assert e.create_task_run(flow_run_id=fr.id, task_key="t", dynamic_key="1") is not a
    b = e.create_task_run(task_key="t", dynamic_key="0")
    assert b is not a and b.flow_run_id is None
    assert e.create_task_run(task_key="t", dynamic_key="0") is b
    with pytest.raises(ValidationError, match="Cache key exceeded"):
        e.create_task_run(task_key="t", dynamic_key="9", cache_key="k" * 2001)
    with pytest.raises(ValidationError, match="dynamic_key"):
        e.create_task_run(task_key="t")


def test_task_inputs_parsed(e):
    up = uuid.uuid4()
    tr = e.create_task_run(task_key="t", dynamic_key="0", task_inputs={
        "x": [{"input_type": "task_run", "id": str(up)}, {"input_type": "parameter", "name": "p"}],
    })
    assert tr.task_inputs["x"][0] == TaskRunResult(id=up)
    with pytest.raises(ValidationError, match="input_type"):
        e.create_task_run(task_key="t", dynamic_key="1", task_inputs={"x": [{"input_type": "weird"}]})


# Without `input_type`, Prefect's union of input models picks the kind; these pairs are
# what Prefect 3.1.0's TaskRun schema made of each entry.
_UP = uuid.uuid4()


@pytest.mark.parametrize("entry, expected", [
    ({"id": str(_UP)}, TaskRunResult(id=_UP)),
    ({"id": _UP}, TaskRunResult(id=_UP)),
    ({"name": "p"}, Parameter(name="p")),
    ({"type": "t"}, Constant(type="t")),
    ({"id": str(_UP), "name": "p"}, Parameter(name="p")),
    ({"name": "p", "type": "t"}, Parameter(name="p")),
    ({"id": str(_UP), "type": "t"}, Constant(type="t")),
])
def test_task_inputs_without_input_type_are_told_apart_as_in_prefect(e, entry, expected):
    tr = e.create_task_run(task_key="t", dynamic_key="0", task_inputs={"x": [entry]})
    assert tr.task_inputs == {"x": [expected]}


@pytest.mark.parametrize("entry", [{}, {"foo": 1}, {"id": "not-a-uuid"}, {"name": 5}, {"id": str(_UP), "input_type": None}])
def test_task_inputs_that_fit_no_kind_are_refused(e, entry):
    with pytest.raises(ValidationError, match=r"task_inputs\['x'\]\[0\]"):
        e.create_task_run(task_key="t", dynamic_key="0", task_inputs={"x": [entry]})
    assert e.count_task_runs() == 0


@pytest.mark.parametrize("task_inputs, message", [
    ([1], r"task_run\.task_inputs must be a dict of lists, got \[1\]"),
    ({"x": 5}, r"task_run\.task_inputs\['x'\] must be a list of inputs"),
    ({"x": [5]}, r"task_run\.task_inputs\['x'\]\[0\] must be an input object, got 5"),
    ({"x": [{"input_type": "task_run"}]}, r"task_run\.task_inputs\['x'\]\[0\] is missing 'id'"),
])
def test_task_inputs_of_the_wrong_shape_are_named(e, task_inputs, message):
    with pytest.raises(ValidationError, match=message):
        e.create_task_run(task_key="t", dynamic_key="0", task_inputs=task_inputs)
    assert e.count_task_runs() == 0


def test_task_inputs_may_mix_input_objects_and_their_json(e):
    tr = e.create_task_run(task_key="t", dynamic_key="0", task_inputs={"x": [TaskRunResult(id=_UP), {"name": "p"}]})
    assert tr.task_inputs == {"x": [TaskRunResult(id=_UP), Parameter(name="p")]}


def test_delete_flow_run_cascades(e, flow):
    fr = e.create_flow_run(flow_id=flow.id)
    tr = e.create_task_run(flow_run_id=fr.id, task_key="t", dynamic_key="0")
    sub = e.create_flow_run(flow_id=flow.id, parent_task_run_id=tr.id)
    assert e.delete_flow_run(fr.id) is True
    assert e.read_task_run(tr.id) is None
    assert sub.parent_task_run_id is None  # ON DELETE SET NULL
    assert not e._store.tables["flow_run"].by_name["parent_task_run_id"].get(tr.id)
    assert e.delete_flow_run(fr.id) is False


def test_deleting_runs_releases_only_the_deployment_slot():
    # Prefect: delete_flow_run gives back the run's deployment (V2) slot, not the tag
    # (v1) slots its task runs hold; delete_task_run gives back nothing.
    from engine.testing.helpers import full_deployment, full_tag_limit

    e = Engine(clock=ManualClock(T, tick=dt.timedelta(microseconds=1)))
    setup = full_deployment(e, limit=2)
    held = full_tag_limit(e, tag="db", limit=2, flow_run=setup.runs[0])
    assert setup.limit.active_slots == 2 and len(held.limit.active_slots) == 2
    assert e.delete_task_run(held.runs[1].id) is True
    assert setup.limit.active_slots == 2 and str(held.runs[1].id) in held.limit.active_slots
    assert e.delete_flow_run(setup.runs[0].id) is True
    assert setup.limit.active_slots == 1
    assert sorted(held.limit.active_slots) == sorted(str(r.id) for r in held.runs)
    assert e.read_task_run(held.runs[0].id) is None

def test_deployments_keep_their_creators_and_block_document_ids(e, flow):
    # Prefect's columns (models.md §6): the ids of block documents are stored as given
    # (runstate keeps no blocks), an upsert keeps the creator, an update may set the ids.
    infra, storage, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    creator = {"id": str(uuid.uuid4()), "type": "USER", "display_value": "ann"}
    dep = e.create_deployment(flow.id, "d", created_by=creator, updated_by=creator,
                              infrastructure_document_id=str(infra), storage_document_id=storage)
    assert (dep.created_by, dep.updated_by, dep.infrastructure_document_id, dep.storage_document_id) == (
        creator, creator, infra, storage)
    again = e.create_deployment(flow.id, "d", created_by={"type": "BOT"}, updated_by={"type": "BOT"},
                                storage_document_id=None)
    assert again is dep and dep.created_by == creator and dep.updated_by == {"type": "BOT"}
    assert (dep.infrastructure_document_id, dep.storage_document_id) == (infra, None)
    assert e.update_deployment(dep.id, storage_document_id=other, infrastructure_document_id=None) is True
    assert (dep.infrastructure_document_id, dep.storage_document_id) == (None, other)
    before = snapshot(e)
    with pytest.raises(ValidationError, match="storage_document_id"):
        e.update_deployment(dep.id, storage_document_id="not-a-uuid")
    with pytest.raises(ValidationError, match="created_by"):
        e.create_deployment(flow.id, "d2", created_by="ann")
    assert snapshot(e) == before


def test_a_deployments_infrastructure_document_goes_to_its_runs(e, flow):
    # Prefect: a run from the deployment route takes the run's own id, else the
    # deployment's; the scheduler's runs take the deployment's.
    infra, own = uuid.uuid4(), uuid.uuid4()
    dep = e.create_deployment(flow.id, "d", infrastructure_document_id=infra)
    assert e.create_flow_run_from_deployment(dep.id).infrastructure_document_id == infra
    assert e.create_flow_run_from_deployment(dep.id, infrastructure_document_id=own).infrastructure_document_id == own
    e.create_deployment_schedules(dep.id, [{"interval": 3600}])
    scheduled = [e.read_flow_run(i) for i in e.schedule_runs(dep.id)]
    assert scheduled and all(r.infrastructure_document_id == infra for r in scheduled)


def test_delete_flow_cascades_to_runs_and_deployments(e, flow):
    dep = e.create_deployment(flow.id, "d", concurrency_limit=2)
    fr = e.create_flow_run(flow_id=flow.id, deployment_id=dep.id)
    assert e.read_concurrency_limit_v2(name=f"deployment:{dep.id}").limit == 2
    assert e.delete_flow(flow.id)
    assert e.read_flow_run(fr.id) is None and e.read_deployment(dep.id) is None
    # One DELETE and the schema's cascades, as in Prefect: delete_deployment's removal
    # of the linked limit does not run, so the limit stays.
    assert e.read_concurrency_limit_v2(name=f"deployment:{dep.id}").limit == 2


def test_delete_deployment_deletes_its_limit(e, flow):
    dep = e.create_deployment(flow.id, "d", concurrency_limit=2)
    assert e.delete_deployment(dep.id)
    assert e.read_concurrency_limit_v2(name=f"deployment:{dep.id}") is None


def test_deleting_a_global_limit_lets_its_deployment_go_and_a_rollback_brings_it_back(e, flow):
    dep = e.create_deployment(flow.id, "d", concurrency_limit=1)
    other = e.create_deployment(flow.id, "d2", concurrency_limit=1)
    gcl_id = dep.concurrency_limit_id
    by_limit = e._store.tables["deployment"].by_name["concurrency_limit_id"]
    assert set(by_limit.get(gcl_id).values()) == {dep}
    before = snapshot(e)
    with pytest.raises(RuntimeError):
        with e.transaction():
            assert e.delete_concurrency_limit_v2(gcl_id)
            assert dep.concurrency_limit_id is None and not by_limit.get(gcl_id)
            raise RuntimeError
    assert snapshot(e) == before
    assert e.delete_concurrency_limit_v2(str(gcl_id))
    assert dep.concurrency_limit_id is None and other.concurrency_limit_id is not None
    assert e.read_concurrency_limit_v2(gcl_id) is None and not by_limit.get(gcl_id)
    assert not e.delete_concurrency_limit_v2(gcl_id)
    # Given a limit again, the deployment is filed under the new one; and under none
    # once that limit is taken away (the limit goes with it).
    e.create_deployment(flow.id, "d", concurrency_limit=2)
    second = dep.concurrency_limit_id
    assert set(by_limit.get(second).values()) == {dep}
    e.create_deployment(flow.id, "d", concurrency_limit=None)
    assert dep.concurrency_limit_id is None and not by_limit.get(second)
    with pytest.raises(ValidationError, match="concurrency_limit_id"):
        e.delete_concurrency_limit_v2("not-a-uuid")


def test_deployment_limit_management(e, flow):
    dep = e.create_deployment(flow.id, "d", concurrency_limit=1)
    gcl_id = dep.concurrency_limit_id
    again = e.create_deployment(flow.id, "d", concurrency_limit=3, description="x")
    assert again is dep and dep.description == "x" and dep.concurrency_limit_id == gcl_id
    assert e.read_concurrency_limit_v2(gcl_id).limit == 3
    e.create_deployment(flow.id, "d", concurrency_limit=None)
    assert dep.concurrency_limit_id is None and e.read_concurrency_limit_v2(gcl_id) is None
    with pytest.raises(ValidationError, match="collision_strategy"):
        e.create_deployment(flow.id, "d2", concurrency_options={"collision_strategy": "NOPE"})


def test_deployment_upsert_sets_an_explicit_none_and_keeps_what_is_not_given(e, flow):
    dep = e.create_deployment(flow.id, "d", version="1", concurrency_options={"collision_strategy": "CANCEL_NEW"})
    e.create_deployment(flow.id, "d", description="x")
    assert dep.concurrency_options.collision_strategy.value == "CANCEL_NEW" and dep.version == "1"
    e.create_deployment(flow.id, "d", concurrency_options=None, version=None)
    assert dep.concurrency_options is None and dep.version is None


def test_work_pools_and_queues(e):
    pool = e.create_work_pool("pool")
    default = e.read_work_queue(pool.default_queue_id)
    assert default.name == "default"
    q = e.create_work_queue(pool.id, "high", priority=2)
    with pytest.raises(UniquenessError):
        e.create_work_queue(pool.id, "high")
    with pytest.raises(ValidationError, match="priority"):
        e.create_work_queue(pool.id, "zero", priority=0)
    assert [x.name for x in e.read_work_queues(pool.id)] == ["default", "high"]
    flow = e.create_flow("f")
    fr = e.create_flow_run(flow_id=flow.id, work_queue_id=q.id)
    assert e.delete_work_pool(pool.id)
    assert e.read_work_queue(q.id) is None and fr.work_queue_id is None


def test_tag_concurrency_limit_upsert_keeps_slots(e):
    lim = e.create_concurrency_limit("db", 2, active_slots=["a", "a", "b"])
    assert lim.active_slots == ["a", "b"]
    assert e.create_concurrency_limit("db", 5) is lim and lim.concurrency_limit == 5 and lim.active_slots == ["a", "b"]
    assert e.reset_concurrency_limit_by_tag("db").active_slots == []
    with pytest.raises(ValidationError):
        e.create_concurrency_limit("db", -1)
    assert e.delete_concurrency_limit_by_tag("db") and e.read_concurrency_limit_by_tag("db") is None


def test_v2_slot_arithmetic(e):
    gcl = e.create_concurrency_limit_v2("g", 2)
    assert e.bulk_increment_active_slots([gcl.id], 2) and gcl.active_slots == 2
    assert not e.bulk_increment_active_slots([gcl.id], 1) and gcl.active_slots == 2
    assert e.bulk_decrement_active_slots([gcl.id], 5) and gcl.active_slots == 0
    assert not e.bulk_increment_active_slots([uuid.uuid4()], 1)


def test_v2_update_sets_given_fields_and_stamps_updated():
    clock = ManualClock(T)
    e = Engine(clock=clock)
    gcl = e.create_concurrency_limit_v2("g", 2, slot_decay_per_second=1.0)
    e.create_concurrency_limit_v2("taken", 1)
    clock.advance(dt.timedelta(seconds=5))
    assert e.update_concurrency_limit_v2(gcl.id, limit=4, active_slots=3)
    assert (gcl.limit, gcl.active_slots, gcl.updated) == (4, 3, T + dt.timedelta(seconds=5))
    assert e.update_concurrency_limit_v2(gcl.id, {"active": False}, name="h")  # keywords win
    assert (gcl.name, gcl.active) == ("h", False) and e.read_concurrency_limit_v2(name="h") is gcl
    assert e.read_concurrency_limit_v2(name="g") is None
    assert e.update_concurrency_limit_v2(uuid.uuid4(), limit=1) is False
    for bad, error in (({"name": "taken"}, UniquenessError), ({"limit": -1}, ValidationError),
                       ({"limit": None}, ValidationError), ({"slot_decay_per_second": "fast"}, ValidationError),
                       ({"avg_slot_occupancy_seconds": 3.0}, ValidationError), ({"active": 1}, ValidationError)):
        with pytest.raises(error):
            e.update_concurrency_limit_v2(gcl.id, **bad)
    assert (gcl.name, gcl.limit, gcl.active, gcl.slot_decay_per_second) == ("h", 4, False, 1.0)


def test_v2_create_checks_its_fields_as_update_does(e):
    for bad in ({"active_slots": -1}, {"denied_slots": "2"}, {"slot_decay_per_second": -0.5},
                {"avg_slot_occupancy_seconds": None}, {"active": "yes"}, {"tag": "x"}):
        with pytest.raises(ValidationError):
            e.create_concurrency_limit_v2("g", 2, **bad)
    assert e.read_concurrency_limit_v2(name="g") is None
    gcl = e.create_concurrency_limit_v2("g", 2, slot_decay_per_second=1, active_slots=1)
    assert (gcl.slot_decay_per_second, gcl.active_slots) == (1.0, 1)


def test_v2_denied_slots_decay_then_add_and_only_active_limits_count():
    clock = ManualClock(T)
    e = Engine(clock=clock)
    gcl = e.create_concurrency_limit_v2("g", 2, denied_slots=10, slot_decay_per_second=2.0, active_slots=2)
    off = e.create_concurrency_limit_v2("off", 2, active=False)
    clock.advance(dt.timedelta(seconds=3))  # 10 denied - floor(2/s * 3 s) = 4
    assert e.bulk_update_denied_slots([gcl.id], 1)
    # only the denied slots: the active ones are not decayed (Prefect's UPDATE sets one column)
    assert (gcl.denied_slots, gcl.active_slots, gcl.updated) == (5, 2, T + dt.timedelta(seconds=3))
    assert not e.bulk_update_denied_slots([gcl.id, off.id], 1) and gcl.denied_slots == 6 and off.denied_slots == 0
    with pytest.raises(ValidationError):
        e.bulk_update_denied_slots([gcl.id], -1)


def test_v2_bulk_read_or_create(e):
    b = e.create_concurrency_limit_v2("b", 5)
    a = e.create_concurrency_limit_v2("a", 5)
    assert e.bulk_read_or_create_concurrency_limits(["b", "zz", "a", "b"]) == [a, b]
    assert e.read_concurrency_limit_v2(name="zz") is None
    got = e.bulk_read_or_create_concurrency_limits(["zz", "b", "y"], create_if_missing=True)
    assert [(g.name, g.limit, g.active) for g in got] == [("b", 5, True), ("y", 1, False), ("zz", 1, False)]
    assert e.read_concurrency_limit_v2(name="zz") is got[2]
    with pytest.raises(ValidationError):
        e.bulk_read_or_create_concurrency_limits("a")


def test_transaction_groups_and_rolls_back_everything(e, flow):
    fr = e.create_flow_run(flow_id=flow.id, tags=["keep"])
    before = snapshot(e)
    with pytest.raises(RuntimeError):
        with e.transaction():
            e.create_flow_run(flow_id=flow.id, tags=["new"])
            e.update_flow_run(fr.id, tags=["changed"], empirical_policy={"retries": 3})
            e.create_task_run(flow_run_id=fr.id, task_key="t", dynamic_key="0")
            e.delete_flow_run(fr.id)
            raise RuntimeError("boom")
    assert snapshot(e) == before
    assert fr.tags == ["keep"] and fr.empirical_policy.retries is None


def test_failed_call_inside_transaction_is_undone_alone(e, flow):
    with e.transaction():
        a = e.create_flow_run(flow_id=flow.id)
        with pytest.raises(ValidationError):
            e.create_deployment(flow.id, "d", concurrency_limit=-1)
        assert e.read_deployments() == []
    assert e.read_flow_run(a.id) is a


def test_commit_listener_failure_rolls_back(e, flow):
    seen = []

    def listener(changes):
        seen.append(changes)
        raise OSError("disk full")

    e._store.listeners.append(listener)
    before = snapshot(e)
    with pytest.raises(OSError):
        e.create_flow_run(flow_id=flow.id)
    assert snapshot(e) == before and len(seen) == 1
    e._store.listeners.clear()


def test_listener_sees_upserts_and_deletes(e, flow):
    batches = []
    e._store.listeners.append(batches.append)
    fr = e.create_flow_run(flow_id=flow.id)
    e.delete_flow_run(fr.id)
    assert [(c.kind, c.op) for c in batches[0]] == [("flow_run", "upsert")]
    assert [(c.kind, c.op) for c in batches[1]] == [("flow_run", "delete")]


def test_estimated_times_use_engine_clock(e, flow):
    fr = e.create_flow_run(flow_id=flow.id, expected_start_time=T - dt.timedelta(seconds=30))
    assert e.estimated_start_time_delta(fr) == dt.timedelta(seconds=30)
    assert e.estimated_run_time(fr) == dt.timedelta(0)


def test_savepoint_restores_a_record_created_in_the_outer_level(e, flow):
    with e.transaction():
        run = e.create_flow_run(flow_id=flow.id, tags=["outer"])
        with pytest.raises(RuntimeError):
            with e.transaction():
                e.update_flow_run(run.id, tags=["inner"])
                raise RuntimeError
        assert run.tags == ["outer"]
        assert run in e._store.tables["flow_run"].by_name["tags"].get("outer").values()
        assert not e._store.tables["flow_run"].by_name["tags"].get("inner")
    assert e.read_flow_run(run.id).tags == ["outer"]


def test_a_state_id_already_stored_is_refused_and_nothing_changes():
    from engine import Completed, Pending, Running

    e = Engine(clock=ManualClock(T, tick=dt.timedelta(seconds=1)))
    flow = e.create_flow("f")
    run = e.create_flow_run(flow_id=flow.id, state=Pending())
    other = e.create_flow_run(flow_id=flow.id, state=Running())
    before = snapshot(e)
    # The same id as another run's stored state, with a result that would be stored
    # as an artifact first: the refusal must take the artifact back too.
    clash = Completed(data={"type": "literal", "value": 1})
    clash.id = other.state_id
    with pytest.raises(UniquenessError, match="already exists"):
        e.set_flow_run_state(run.id, clash, force=True)
    assert snapshot(e) == before
    assert run.state_type.value == "PENDING" and not e._store.tables["artifact"].rows


def test_create_leaves_out_what_prefect_leaves_out_of_the_insert(e, flow):
    # As in Prefect, a given created time and estimates are dropped (the new run is
    # stamped now); the state columns, which the engine keeps, are refused.
    e.clock.advance(60)
    run = e.create_flow_run({"flow_id": flow.id, "created": T, "estimated_run_time": 5,
                             "estimated_start_time_delta": "x", "tags": ["a"]})
    assert run.created == e.now() and run.tags == ["a"]
    task = e.create_task_run({"task_key": "t", "dynamic_key": "0", "created": T})
    assert task.created == e.now()
    with pytest.raises(ValidationError, match="estimated_run_time"):
        e.create_task_run(task_key="t", dynamic_key="1", estimated_run_time=5)
    with pytest.raises(ValidationError, match="state_type"):
        e.create_flow_run(flow_id=flow.id, state_type="COMPLETED")


def test_a_keyword_wins_over_the_mapping_for_every_field_the_state_too(e, flow):
    run = e.create_flow_run({"flow_id": flow.id, "name": "from-mapping", "state": Running()},
                            name="from-keyword", state=Completed())
    assert (run.name, run.state_type) == ("from-keyword", StateType.COMPLETED)
    fr = e.create_flow_run(flow_id=flow.id, state=Running())
    task = e.create_task_run({"flow_run_id": fr.id, "task_key": "t", "dynamic_key": "0", "name": "m",
                              "state": Running()}, name="k", state=Completed())
    assert (task.name, task.state_type) == ("k", StateType.COMPLETED)
    # (the mapping's state still counts when no keyword gives one)
    assert e.create_flow_run({"flow_id": flow.id, "state": Running()}).state_type == StateType.RUNNING


def test_a_paused_work_pool_starts_paused_unless_it_is_a_prefect_agent_pool(e):
    assert e.create_work_pool("paused", is_paused=True).status == "PAUSED"
    assert e.create_work_pool("running").status == "NOT_READY"
    assert e.create_work_pool("agent", type="prefect-agent", is_paused=True).status == "NOT_READY"


def test_queue_priorities_stay_unique_in_a_pool(e):
    # The order Prefect 3.1.0 gives for this sequence (answered by its models layer):
    # no priority takes the first free number; a taken one pushes the rest down.
    pool = e.create_work_pool("p")
    for name, priority in [("a", None), ("b", 1), ("c", None), ("d", 10), ("f", None), ("g", 3), ("h", 2), ("i", None)]:
        e.create_work_queue(pool.id, name, **({} if priority is None else {"priority": priority}))
    assert sorted((q.priority, q.name) for q in e.read_work_queues(pool.id)) == [
        (1, "b"), (2, "h"), (3, "default"), (4, "g"), (5, "a"), (6, "c"), (7, "f"), (8, "i"), (10, "d")]
    before = e.read_work_queues(pool.id)
    with pytest.raises(UniquenessError):
        e.create_work_queue(pool.id, "a", priority=1)
    assert [(q.name, q.priority) for q in e.read_work_queues(pool.id)] == [(q.name, q.priority) for q in before]


def test_a_state_time_clash_from_a_frozen_manual_clock_says_how_to_avoid_it(e, flow):
    # The engine's own clock stamped both states with one time: the error says why and
    # what to do. A clash between times the caller gave says nothing of the clock.
    from engine import Completed, Pending, Running
    from engine.errors import UniquenessError

    run = e.create_flow_run(flow_id=flow.id, state=Pending())
    with pytest.raises(UniquenessError, match=r"already has a state at .*ManualClock has no tick.*tick=timedelta"):
        e.set_flow_run_state(run.id, Running(), force=True)
    e.clock.advance(1)
    e.set_flow_run_state(run.id, Running(), force=True)
    given = T + dt.timedelta(seconds=1)
    with pytest.raises(UniquenessError, match="already has a state at") as caught:
        e.set_flow_run_state(run.id, Completed(timestamp=given - dt.timedelta(seconds=1)), force=True)
    assert "ManualClock" not in str(caught.value)
    ticking = Engine(clock=ManualClock(T, tick=dt.timedelta(microseconds=1)))
    other = ticking.create_flow_run(flow_id=ticking.create_flow("f").id, state=Pending(timestamp=T + dt.timedelta(seconds=9)))
    with pytest.raises(UniquenessError) as caught:
        ticking.set_flow_run_state(other.id, Running(timestamp=T + dt.timedelta(seconds=9)), force=True)
    assert "ManualClock" not in str(caught.value)


@pytest.mark.parametrize("kind", ["flow", "task"])
def test_a_long_history_still_refuses_any_repeated_state_time(e, flow, kind):
    """(run, timestamp) is unique whatever the history's length: a long history keeps
    an upper bound on its times so that a later state needs no scan, and that bound
    must never let an earlier time through (after rollbacks and deletes too)."""
    from engine import Completed, Running
    from engine.errors import UniquenessError

    run = e.create_flow_run(flow_id=flow.id)
    if kind == "task":
        run = e.create_task_run(flow_run_id=run.id, task_key="t", dynamic_key="0")
    set_state = e.set_flow_run_state if kind == "flow" else e.set_task_run_state
    states = e.read_flow_run_states if kind == "flow" else e.read_task_run_states
    delete = e.delete_flow_run_state if kind == "flow" else e.delete_task_run_state
    times = [T + dt.timedelta(seconds=i) for i in range(40)]
    for when in times:
        set_state(run.id, Running(timestamp=when), force=True)

    def refused(when):
        before = [s.id for s in states(run.id)]
        with pytest.raises(UniquenessError, match="already has a state at"):
            set_state(run.id, Completed(timestamp=when), force=True)
        assert [s.id for s in states(run.id)] == before

    refused(times[3])  # an old time, far below the newest
    refused(times[-1])
    later = T + dt.timedelta(seconds=100)
    with pytest.raises(RuntimeError):
        with e.transaction():
            set_state(run.id, Running(timestamp=later), force=True)
            raise RuntimeError("undo")
    refused(times[5])
    set_state(run.id, Running(timestamp=later), force=True)  # its rolled-back twin is gone
    refused(later)
    newest = [s for s in states(run.id) if s.timestamp == later][0]
    assert delete(newest.id)
    set_state(run.id, Completed(timestamp=later), force=True)  # the deleted state's time is free
    refused(times[0])
    assert len(states(run.id)) == 41
