"""Flow-run inputs and resuming a run that waits for input.

The replay part runs every scenario of tests/data/inputs_prefect_oracle.jsonl
(12 focused, 94 schema x input pairs and 60 random scenarios, answered by Prefect 3.1.0's
own resume route and flow_run_input models functions: tests/oracle/prefect_inputs.py,
format in tests/oracle/inputs_scenarios.py) against the engine. The rest covers the
operations themselves: keys, uniqueness, filters, deletes, cascades, bad input, and
what a refused or failed resume leaves behind (nothing).
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import uuid

import pytest
from oracle_answers import compact, generator_writes, load_oracle_script, read_answers

from engine import (
    Engine, FlowRunInput, ManualClock, ObjectNotFoundError, Paused, Running, SetStateStatus, StateType, Suspended,
    UniquenessError, ValidationError,
)

CASES = read_answers("inputs_prefect_oracle.jsonl")
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
_SCENARIOS = load_oracle_script("inputs_scenarios")
KEYSET = _SCENARIOS.KEYSET                  # the keyset the oracle's paused runs wait with
RESUME_ANSWER = _SCENARIOS.resume_answer    # the oracle's own answer shape


def paused_run(engine: Engine, clock: ManualClock, keyset: dict | None = KEYSET, suspended: bool = False):
    flow = engine.create_flow("inputs")
    dep = engine.create_deployment(flow.id, "inputs")
    run = engine.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Running())
    clock.advance(1)
    pause = (Suspended if suspended else Paused)(timeout_seconds=3600)
    pause.state_details.run_input_keyset = keyset
    assert engine.set_flow_run_state(run.id, pause, flow_policy="CoreFlowPolicy").status is SetStateStatus.ACCEPT
    clock.advance(1)
    return run


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def engine(clock) -> Engine:
    return Engine(clock=clock)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_prefect_answers(case, engine, clock):
    run = paused_run(engine, clock, case["keyset"], case["pause"] == "suspended")
    for key, value in case["inputs"]:
        engine.create_flow_run_input(run.id, key, value)
        clock.advance(1)
    result = engine.resume_flow_run(run.id, case["run_input"])
    response = None
    if case["keyset"] and "response" in case["keyset"]:
        found = engine.read_flow_run_input(run.id, case["keyset"]["response"])
        response = found and found.value
    filters = [[i.key for i in engine.filter_flow_run_input(run.id, f["prefix"], f["limit"], f["exclude_keys"])]
               for f in case["filters"]]
    assert RESUME_ANSWER(result, run, response, filters) == case["expected"]


def test_the_generator_still_writes_the_recorded_scenarios(tmp_path):
    assert generator_writes("inputs_scenarios", ["7", "60"], tmp_path / "scenarios.json") == [
        compact({k: v for k, v in case.items() if k != "expected"}) for case in CASES]


def test_the_corpus_covers_accepts_refusals_and_every_refusal_kind():
    """A replay that only ever saw one outcome would prove little."""
    reasons = {(c["expected"]["reason"] or "").split(":")[0] for c in CASES}
    assert {"", "Reason", "Error hydrating run input", "Run input schema not found.",
            "Run input schema is not valid JSON.", "Invalid schema"} <= reasons
    assert sum(c["expected"]["response"] is not None for c in CASES) >= 30


# the operations ---------------------------------------------------------------------------------

def test_create_read_filter_delete(engine, clock):
    run = paused_run(engine, clock)
    first = engine.create_flow_run_input(run.id, "msg-b", "2", sender="flow-x")
    clock.advance(1)
    second = engine.create_flow_run_input(str(run.id), "msg-a", b"1")
    assert isinstance(first, FlowRunInput) and (first.value, first.sender, first.created) == ("2", "flow-x", T0 + dt.timedelta(seconds=2))
    assert engine.read_flow_run_input(run.id, "msg-a") is second and second.value == "1"
    assert engine.read_flow_run_input(run.id, "msg-c") is None
    # oldest first, at most `limit` (Prefect's default: 1), excluded keys left out
    assert engine.filter_flow_run_input(run.id, "msg") == [first]
    assert engine.filter_flow_run_input(run.id, "msg", limit=None) == [first, second]
    assert engine.filter_flow_run_input(run.id, "msg", limit=5, exclude_keys=["msg-b"]) == [second]
    assert engine.filter_flow_run_input(uuid.uuid4(), "msg", limit=5) == []
    assert engine.delete_flow_run_input(run.id, "msg-b") is True
    assert engine.delete_flow_run_input(run.id, "msg-b") is False
    assert engine.filter_flow_run_input(run.id, "", limit=None) == [second]


def test_inputs_with_one_stamp_keep_the_order_they_were_written(engine, clock):
    run = paused_run(engine, clock)
    keys = ["k-3", "k-1", "k-2"]
    for k in keys:
        engine.create_flow_run_input(run.id, k, "v")
    assert [i.key for i in engine.filter_flow_run_input(run.id, "k", limit=None)] == keys


def test_prefix_is_matched_like_sqlite_like(engine, clock):
    run = paused_run(engine, clock)
    for k in ("ab-1", "axb", "a", "b-ab"):
        engine.create_flow_run_input(run.id, k, "v")
    keys = lambda prefix: [i.key for i in engine.filter_flow_run_input(run.id, prefix, limit=None)]  # noqa: E731
    assert keys("AB") == ["ab-1"]                 # case-insensitive
    assert keys("a_b") == ["axb"]                 # `_` is any one character
    assert keys("%ab") == ["ab-1", "b-ab"]        # `%` any run of characters
    assert keys("") == ["ab-1", "axb", "a", "b-ab"]


def test_keys_are_unique_per_run_and_checked(engine, clock):
    run = paused_run(engine, clock)
    other = engine.create_flow_run(flow_id=run.flow_id)
    engine.create_flow_run_input(run.id, "k", "1")
    engine.create_flow_run_input(other.id, "k", "2")  # another run may use the key
    with pytest.raises(UniquenessError, match="'k'"):
        engine.create_flow_run_input(run.id, "k", "3")
    assert engine.read_flow_run_input(run.id, "k").value == "1"
    for bad in ("Key", "k_1", "k 1", "ké"):
        with pytest.raises(ValidationError, match="lowercase letters, numbers, and dashes"):
            engine.create_flow_run_input(run.id, bad, "v")
    with pytest.raises(ObjectNotFoundError, match="Flow run"):
        engine.create_flow_run_input(uuid.uuid4(), "k", "v")
    for args, match in [((run.id, 1, "v"), "key"), ((run.id, "k2", 5), "value"), ((run.id, "k2", b"\xff"), "UTF-8"),
                        (("nope", "k2", "v"), "flow_run_id")]:
        with pytest.raises(ValidationError, match=match):
            engine.create_flow_run_input(*args)
    with pytest.raises(ValidationError, match="sender"):
        engine.create_flow_run_input(run.id, "k2", "v", sender=3)
    for kwargs, match in [({"limit": -1}, "limit"), ({"limit": "2"}, "limit"), ({"exclude_keys": "k"}, "exclude_keys"),
                          ({"exclude_keys": [1]}, "exclude_keys")]:
        with pytest.raises(ValidationError, match=match):
            engine.filter_flow_run_input(run.id, "k", **kwargs)
    assert [i.key for i in engine.filter_flow_run_input(run.id, "", limit=None)] == ["k"]


def test_inputs_go_with_their_flow_run_and_roll_back(engine, clock):
    run = paused_run(engine, clock)
    keep = engine.create_flow_run(flow_id=run.flow_id)
    engine.create_flow_run_input(run.id, "a", "1")
    engine.create_flow_run_input(keep.id, "a", "2")
    with pytest.raises(RuntimeError):
        with engine.transaction():
            engine.create_flow_run_input(run.id, "b", "1")
            engine.delete_flow_run_input(run.id, "a")
            raise RuntimeError
    assert [i.key for i in engine.filter_flow_run_input(run.id, "", limit=None)] == ["a"]
    assert engine.delete_flow_run(run.id) is True
    assert engine.read_flow_run_input(run.id, "a") is None
    assert len(engine._store.tables["flow_run_input"].rows) == 1
    assert engine.read_flow_run_input(keep.id, "a").value == "2"


# resuming a run that waits for input ------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name"]}


def test_an_accepted_resume_stores_the_hydrated_input_once(engine, clock):
    run = paused_run(engine, clock)
    engine.create_flow_run_input(run.id, "paused-1-schema", json.dumps(SCHEMA))
    result = engine.resume_flow_run(run.id, {"name": {"__prefect_kind": "none", "value": "Ann"},
                                             "age": {"__prefect_kind": "json", "value": "7"}})
    assert result.status is SetStateStatus.ACCEPT and run.state_type is StateType.RUNNING
    stored = engine.read_flow_run_input(run.id, "paused-1-response")
    assert stored.value == '{"name":"Ann","age":7}' and stored.created == clock.now() == result.state.timestamp
    # A second resume finds the run no longer paused: nothing more is stored.
    assert engine.resume_flow_run(run.id, {"name": "Bo"}).status is SetStateStatus.ABORT
    assert [i.key for i in engine.filter_flow_run_input(run.id, "paused", limit=None)] == \
        ["paused-1-schema", "paused-1-response"]


def test_a_refused_resume_changes_nothing(engine, clock):
    run = paused_run(engine, clock)
    engine.create_flow_run_input(run.id, "paused-1-schema", json.dumps(SCHEMA))
    before = (run.state_id, run.run_count, len(engine.read_flow_run_states(run.id)))
    result = engine.resume_flow_run(run.id, {"age": 3})
    assert result.status is SetStateStatus.REJECT and result.state.type is StateType.PAUSED
    assert result.details.reason == "Reason: Validation failed. Failure reason: 'name' is a required property"
    assert (run.state_id, run.run_count, len(engine.read_flow_run_states(run.id))) == before
    assert engine.read_flow_run_input(run.id, "paused-1-response") is None


def test_an_input_that_cannot_be_stored_is_refused_before_the_state_changes(engine, clock):
    run = paused_run(engine, clock)
    engine.create_flow_run_input(run.id, "paused-1-schema", "{}")
    with pytest.raises(ValidationError, match="run_input must be JSON"):
        engine.resume_flow_run(run.id, {"when": dt.datetime(2024, 1, 1)})
    with pytest.raises(ValidationError, match="run_input must be JSON"):
        engine.resume_flow_run(run.id, {"x": float("nan")})
    assert run.state_type is StateType.PAUSED


def test_a_response_key_already_taken_rolls_the_resume_back(engine, clock):
    """Prefect's insert of the answer fails on the key's uniqueness and its route's
    transaction takes the state change with it; so does the engine's."""
    run = paused_run(engine, clock)
    engine.create_flow_run_input(run.id, "paused-1-schema", "{}")
    engine.create_flow_run_input(run.id, "paused-1-response", "old")
    with pytest.raises(UniquenessError):
        engine.resume_flow_run(run.id, {"x": 1})
    assert run.state_type is StateType.PAUSED and engine.read_flow_run_input(run.id, "paused-1-response").value == "old"


@pytest.mark.parametrize("keyset, schema, run_input, reason", [
    # Prefect fails with a server error on these; the engine answers REJECT with a reason.
    ({"response": "r"}, None, {"x": 1}, "Run input schema not found."),
    ({"schema": "s"}, {}, {"x": 1}, "Run input keyset has no 'response' key."),
    (KEYSET, {"type": "nope"}, {}, "Invalid schema: "),
    (KEYSET, ["not", "a", "schema"], {}, "Invalid schema: "),
    (KEYSET, {"properties": {"a": {"$ref": "#/definitions/Gone"}}}, {"a": 1},
     "Invalid schema: PointerToNowhere: '/definitions/Gone' does not exist"),
    (KEYSET, {"properties": {"a": {"type": "integer"}}}, {"a": {"__prefect_kind": "jinja", "template": "{{ x }}"}},
     "Error hydrating run input: runstate does not render Jinja templates"),
    # Nesting past the interpreter's recursion limit: a reason, not a bare RecursionError.
    (KEYSET, {}, {"a": functools.reduce(lambda v, _: [v], range(3000), 0)},
     "Error hydrating run input: the value nests too deep to hydrate"),
    (KEYSET, "[" * 100_000 + "]" * 100_000, {}, "Run input schema is not valid JSON."),  # (no decoder reaches it)
])
def test_resumes_prefect_cannot_answer(engine, clock, keyset, schema, run_input, reason):
    run = paused_run(engine, clock, keyset)
    if schema is not None:
        text = schema if isinstance(schema, str) else json.dumps(schema)  # (text: stored as given)
        engine.create_flow_run_input(run.id, keyset.get("schema", "s"), text)
    result = engine.resume_flow_run(run.id, run_input)
    assert result.status is SetStateStatus.REJECT and result.details.reason.startswith(reason)
    assert run.state_type is StateType.PAUSED


def test_boolean_schemas_accept_or_refuse_everything(engine, clock):
    run = paused_run(engine, clock)
    engine.create_flow_run_input(run.id, "paused-1-schema", "false")
    assert engine.resume_flow_run(run.id, {"x": 1}).details.reason == \
        "Reason: Validation failed. Failure reason: False schema does not allow {'x': 1}"
    engine.delete_flow_run_input(run.id, "paused-1-schema")
    engine.create_flow_run_input(run.id, "paused-1-schema", "true")
    assert engine.resume_flow_run(run.id, {"x": 1}).status is SetStateStatus.ACCEPT


def test_preprocessing_admits_null_for_optional_fields_without_defaults(engine, clock):
    """Prefect's schema repair: an optional typed property without a default also
    takes null; a required one or one with a default does not; a tuple's `items`
    list checks position by position."""
    schema = {"type": "object", "required": ["req"], "properties": {
        "req": {"type": "string"}, "opt": {"type": "string"}, "dflt": {"type": "string", "default": "x"},
        "pair": {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]}}}
    outcomes = {}
    for name, run_input in {"opt-null": {"req": "a", "opt": None}, "req-null": {"req": None},
                            "default-null": {"req": "a", "dflt": None}, "pair-ok": {"req": "a", "pair": [1, "b"]},
                            "pair-bad": {"req": "a", "pair": ["b", 1]}}.items():
        e = Engine(clock=ManualClock(T0))
        run = paused_run(e, e.clock)
        e.create_flow_run_input(run.id, "paused-1-schema", json.dumps(schema))
        outcomes[name] = e.resume_flow_run(run.id, run_input).status.value
    assert outcomes == {"opt-null": "ACCEPT", "req-null": "REJECT", "default-null": "REJECT",
                        "pair-ok": "ACCEPT", "pair-bad": "REJECT"}
