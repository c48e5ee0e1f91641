"""Creating flow runs from a deployment (Engine.create_flow_run_from_deployment).

The replay part sends every request of tests/data/deployment_runs_prefect_oracle.jsonl
(hand-written and random scenarios answered by Prefect 3.1.0's own
create_flow_run_from_deployment route: tests/oracle/prefect_deployment_runs.py, format
in tests/oracle/deployment_runs_scenarios.py) to the engine. The rest covers what the
corpus cannot show: bad input, atomicity, the order of tags, and the cases Prefect
answers with a server error.
"""
from __future__ import annotations

import datetime as dt

import pytest
from oracle_answers import compact, generator_writes, load_oracle_script, read_answers

from engine import (
    Engine, ManualClock, ObjectNotFoundError, Running, Scheduled, StateType, ValidationError,
)

CASES = read_answers("deployment_runs_prefect_oracle.jsonl")
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
VARIABLES = {"type": "object", "required": ["image"], "properties": {
    "image": {"type": "string"}, "cpu": {"type": "integer", "default": 1, "minimum": 1}}}
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
RUN_ANSWER = load_oracle_script("deployment_runs_scenarios").run_answer   # the oracle's own answer shape
# What the engine says where Prefect's route fails, by the exception Prefect raised:
# a queue name for a deployment without a queue; hydrated parameters that are not an
# object, or a queue name a new queue cannot have.
PREFECT_500 = {"AttributeError": ("work_queue_name '",),
               "ValidationError": ("flow_run.parameters must be a dict", "work queue name must be a non-empty string")}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def engine(clock) -> Engine:
    return Engine(clock=clock)


def setup(engine: Engine, template: dict | None, queues=(), **deployment):
    """A flow and a deployment, in the default queue of a new pool unless
    `template` is None; returns (deployment, pool or None)."""
    flow = engine.create_flow("flow")
    pool = queue = None
    if template is not None:
        pool = engine.create_work_pool("pool", type="process", base_job_template=template)
        for name in queues:
            engine.create_work_queue(pool.id, name)
        queue = engine.read_work_queue(pool.default_queue_id)
    dep = engine.create_deployment(flow.id, "dep", work_queue_id=queue and queue.id,
                                   work_queue_name=queue and queue.name, **deployment)
    return dep, pool


def answer(engine: Engine, dep, request: dict, seen: dict, i: int) -> dict:
    run = engine.create_flow_run_from_deployment(dep.id, request)
    queue = run.work_queue_id and engine.read_work_queue(run.work_queue_id)
    got = RUN_ANSWER(run, queue.name if queue else None, request, seen.get(run.id))
    seen.setdefault(run.id, i)
    return got


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_prefect_answers(case, engine, clock):
    dep, pool = setup(engine, case["template"], case["queues"], **case["deployment"])
    seen: dict = {}
    for i, (request, want) in enumerate(zip(case["requests"], case["expected"]["answers"], strict=True)):
        clock.advance(1)
        before = engine.count_flow_runs()
        if "run" in want:
            assert answer(engine, dep, request, seen, i) == want["run"], request
            continue
        error = ObjectNotFoundError if want.get("status") == 404 else ValidationError
        with pytest.raises(error) as caught:
            engine.create_flow_run_from_deployment(dep.id, request)
        if "detail" in want:
            assert str(caught.value) == want["detail"]
        else:  # Prefect's 500: the engine refuses with a reason of its own
            assert str(caught.value).startswith(PREFECT_500[want["error"]]), (request, caught.value)
        assert engine.count_flow_runs() == before
    queues = [[q.name, q.priority] for q in engine.read_work_queues(pool.id)] if pool is not None else []
    assert queues == case["expected"]["queues"]


def test_the_generator_still_writes_the_recorded_scenarios(tmp_path):
    assert generator_writes("deployment_runs_scenarios", ["11", "200"], tmp_path / "scenarios.json") == [
        compact({k: v for k, v in case.items() if k != "expected"}) for case in CASES]


def test_the_corpus_covers_runs_and_every_refusal_kind():
    """A replay that only ever saw one outcome would prove little."""
    kinds = {a.get("status") or a.get("error") or ("same" if a["run"]["same_as"] is not None else "run")
             for c in CASES for a in c["expected"]["answers"]}
    assert {"run", "same", 400, 404, 409, 422, "AttributeError"} <= kinds
    created = [a for c in CASES for a in c["expected"]["answers"] if "run" in a]
    assert len(created) >= 100
    assert {a["run"]["queue"] for a in created} >= {None, "default", "fast", "brand-new"}


def test_tags_keep_the_deployments_order_then_the_runs(engine):
    """Prefect unions them as a set (its order follows string hashes); the engine
    keeps a stable order: the deployment's, then the run's new ones."""
    dep, _ = setup(engine, None, tags=["b", "a"])
    assert engine.create_flow_run_from_deployment(dep.id, tags=["c", "a", "d"]).tags == ["b", "a", "c", "d"]


def test_the_default_state_is_scheduled_now(engine, clock):
    dep, _ = setup(engine, None)
    clock.advance(30)
    run = engine.create_flow_run_from_deployment(dep.id)
    assert run.state_type is StateType.SCHEDULED
    assert run.state.state_details.scheduled_time == run.expected_start_time == clock.now()
    assert run.job_variables == {} and run.work_queue_id is None


def test_job_variables_none_is_stored_as_prefect_stores_it(engine):
    """Prefect's create_flow_run adds a run without an idempotency key through the
    ORM, whose column default {} replaces None; with a key its insert keeps None."""
    flow = engine.create_flow("f")
    assert engine.create_flow_run(flow_id=flow.id, job_variables=None).job_variables == {}
    assert engine.create_flow_run(flow_id=flow.id, job_variables=None, idempotency_key="").job_variables == {}
    assert engine.create_flow_run(flow_id=flow.id, job_variables=None, idempotency_key="k").job_variables is None
    run = engine.create_flow_run(flow_id=flow.id, job_variables={"a": 1})
    engine.update_flow_run(run.id, job_variables=None)  # an update writes None as given
    assert run.job_variables is None


def test_a_state_object_and_passed_on_fields(engine):
    dep, _ = setup(engine, None, version="7")
    parent_flow = engine.create_flow_run(flow_id=dep.flow_id)
    parent = engine.create_task_run(flow_run_id=parent_flow.id, task_key="t", dynamic_key="0")
    run = engine.create_flow_run_from_deployment(
        dep.id, {"name": "given", "context": {"c": 1}, "parent_task_run_id": str(parent.id)},
        state=Running(), empirical_policy={"retries": 2})
    assert (run.name, run.context, run.parent_task_run_id, run.empirical_policy.retries) == \
        ("given", {"c": 1}, parent.id, 2)
    assert run.state_type is StateType.RUNNING and run.deployment_version == "7"


def test_idempotency_returns_the_first_run_unchanged(engine, clock):
    dep, _ = setup(engine, None, parameter_openapi_schema=SCHEMA)
    first = engine.create_flow_run_from_deployment(dep.id, parameters={"n": 1}, idempotency_key="k")
    clock.advance(1)
    again = engine.create_flow_run_from_deployment(dep.id, parameters={"n": 2}, idempotency_key="k", tags=["x"])
    assert again is first and first.parameters == {"n": 1} and first.tags == []
    # ...but the request is still checked first, as in Prefect.
    with pytest.raises(ValidationError, match="Error creating flow run"):
        engine.create_flow_run_from_deployment(dep.id, parameters={"n": "x"}, idempotency_key="k")


@pytest.mark.parametrize("request_, message", [
    ({"paramaters": {}}, "unknown field(s) 'paramaters'"),
    ({"parameters": [1]}, "parameters must be a dict"),
    ({"tags": "a"}, "tags must be a list of strings"),
    ({"work_queue_name": 3}, "work_queue_name must be a string"),
    ({"enforce_parameter_schema": "yes"}, "enforce_parameter_schema must be a boolean"),
    ({"state": "RUNNING"}, "state"),
    ({"parent_task_run_id": "not-a-uuid"}, "parent_task_run_id"),
    ({"parameters": {"n": {"__prefect_kind": "jinja", "template": "{{ 1 }}"}}},
     "Error hydrating flow run parameters: runstate does not render Jinja templates"),
])
def test_bad_requests_name_the_problem_and_change_nothing(engine, request_, message):
    dep, pool = setup(engine, {"variables": VARIABLES}, job_variables={"image": "i"})
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine.create_flow_run_from_deployment(dep.id, {**request_, "work_queue_name": request_.get(
            "work_queue_name", "new-queue")})
    assert engine.count_flow_runs() == 0 and [q.name for q in engine.read_work_queues(pool.id)] == ["default"]


def test_an_unknown_deployment(engine):
    with pytest.raises(ObjectNotFoundError, match="Deployment with id"):
        engine.create_flow_run_from_deployment("3c4bd7b5-1b8e-4b42-a5e3-5a1d6fd5d1a2")
    with pytest.raises(ValidationError, match="deployment_id"):
        engine.create_flow_run_from_deployment("nope")


def test_a_failed_create_takes_the_new_queue_with_it(engine):
    """The queue a work_queue_name creates is written before the run; a run that
    then fails (an unknown parent task run) leaves no queue behind."""
    dep, pool = setup(engine, {"variables": VARIABLES}, job_variables={"image": "i"})
    with pytest.raises(ValidationError, match="parent_task_run_id"):
        engine.create_flow_run_from_deployment(dep.id, work_queue_name="late",
                                               parent_task_run_id="3c4bd7b5-1b8e-4b42-a5e3-5a1d6fd5d1a2")
    assert [q.name for q in engine.read_work_queues(pool.id)] == ["default"]
    run = engine.create_flow_run_from_deployment(dep.id, work_queue_name="late")
    assert run.work_queue_id == engine.read_work_queues(pool.id)[1].id


@pytest.mark.parametrize("deployment, message", [
    # Prefect fails with a server error on these; the engine refuses with a reason.
    ({"parameter_openapi_schema": {"type": "nope"}}, "Invalid schema: "),
    ({"parameter_openapi_schema": {"properties": {"n": {"$ref": "#/definitions/Gone"}}}},
     "Invalid schema: PointerToNowhere"),
])
def test_schemas_prefect_cannot_use(engine, deployment, message):
    dep, _ = setup(engine, None, **deployment)
    with pytest.raises(ValidationError, match=message):
        engine.create_flow_run_from_deployment(dep.id, parameters={"n": 1})


def test_a_queue_name_needs_a_deployment_in_a_pool(engine):
    dep, _ = setup(engine, None)
    with pytest.raises(ValidationError, match="has no work queue"):
        engine.create_flow_run_from_deployment(dep.id, work_queue_name="q")


def test_job_variables_none_passes_for_a_field_with_a_default(engine):
    """Prefect's allow_none_with_default: an optional field with a default takes
    None in a run's job variables; a required one does not."""
    dep, _ = setup(engine, {"variables": VARIABLES})
    run = engine.create_flow_run_from_deployment(dep.id, job_variables={"image": "i", "cpu": None})
    assert run.job_variables == {"image": "i", "cpu": None}
    with pytest.raises(ValidationError, match="Validation failed for field 'image'"):
        engine.create_flow_run_from_deployment(dep.id, job_variables={"image": None})


def test_the_created_run_is_an_ordinary_flow_run(engine):
    dep, _ = setup(engine, None, parameters={"n": 1}, parameter_openapi_schema=SCHEMA)
    run = engine.create_flow_run_from_deployment(dep.id, state=Scheduled(scheduled_time=T0 + dt.timedelta(hours=1)))
    assert engine.read_flow_runs(deployment_filter={"id": {"any_": [str(dep.id)]}}) == [run]
    assert engine.read_flow_run(run.id).parameters == {"n": 1}


def test_a_schema_is_checked_by_its_content_each_time(engine):
    """The repaired, checked schema is reused across runs (see
    schema_tools._validator_for), but by content: a deployment whose schema is
    updated, or two deployments with schemas differing only in `required`, are each
    held to their own."""
    dep, _ = setup(engine, None, parameter_openapi_schema=SCHEMA)
    other = engine.create_deployment(dep.flow_id, "other", parameter_openapi_schema={**SCHEMA, "required": []})
    for _ in range(2):
        with pytest.raises(ValidationError, match="Validation failed. Failure reason: 'n' is a required property"):
            engine.create_flow_run_from_deployment(dep.id, parameters={})
        assert engine.create_flow_run_from_deployment(other.id, parameters={}).parameters == {}
    text = engine.create_deployment(dep.flow_id, "text", parameter_openapi_schema={
        **SCHEMA, "properties": {"n": {"type": "string"}}})
    with pytest.raises(ValidationError, match="for field 'n'. Failure reason: 1 is not of type 'string'"):
        engine.create_flow_run_from_deployment(text.id, parameters={"n": 1})
    engine.create_flow_run_from_deployment(dep.id, parameters={"n": 1})


def test_a_schema_changed_in_place_is_checked_afresh():
    from engine.schema_tools import InvalidSchemaError, check_schema, error_finder, validation_failure
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert validation_failure({}, schema) is None
    check_schema(schema)
    assert error_finder(schema)({"n": "1"})
    schema["properties"]["n"]["type"] = "string"
    assert error_finder(schema)({"n": "1"}) == []
    schema["required"] = ["n"]
    assert validation_failure({}, schema) == "Validation failed. Failure reason: 'n' is a required property"
    assert validation_failure({}, schema, ignore_required=True) is None
    schema["properties"]["n"]["type"] = "nope"
    for _ in range(2):   # an unusable schema is refused every time, not remembered as usable
        with pytest.raises(InvalidSchemaError, match="Invalid schema: "):
            validation_failure({"n": 1}, schema)
        with pytest.raises(InvalidSchemaError, match="Invalid schema: "):
            check_schema(schema)


def test_remembered_schemas_are_bounded():
    from engine import schema_tools
    for i in range(schema_tools._REMEMBERED_KEPT + 10):
        assert schema_tools.validation_failure(i, {"type": "integer", "maximum": i}) is None
    assert len(schema_tools._REMEMBERED) == schema_tools._REMEMBERED_KEPT
    assert schema_tools.validation_failure(5, {"type": "integer", "maximum": 4}) is not None
