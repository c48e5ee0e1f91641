#!/usr/bin/env python3
"""Scenarios for flow-run inputs and resuming a run that waits for input.

usage: python3 tests/oracle/inputs_scenarios.py SEED N OUT.json

No Prefect import. Writes a JSON list: the hand-written scenarios below, then N
random ones (ids "in<SEED>-<i>"). A scenario pauses a running flow run, stores
inputs for it, resumes it with a run input, then filters its inputs:

    {"id": ..., "pause": "paused" | "suspended",
     "keyset": {"schema": key, "response": key} or null,
     "inputs": [[key, text value], ...],        # stored before the resume
     "run_input": any JSON or null,             # the resume's body
     "filters": [{"prefix": ..., "limit": n, "exclude_keys": [...]}, ...]}

prefect_inputs.py answers each with Prefect 3.1.0's route (status, state, reason,
the stored response) and models functions (the keys each filter returns);
tests/test_inputs.py replays them against the engine.
"""
import json
import random
import sys

KEYSET = {"schema": "paused-1-schema", "response": "paused-1-response"}

# Schemas as Prefect's RunInput models produce them (pydantic v2), and some by hand.
PERSON = {"title": "Person", "type": "object", "properties": {
    "name": {"title": "Name", "type": "string"},
    "age": {"title": "Age", "type": "integer", "minimum": 0},
    "email": {"title": "Email", "type": "string", "format": "email"},
    "nickname": {"title": "Nickname", "type": "string", "default": "none"}},
    "required": ["name", "age"]}
NESTED = {"title": "Order", "type": "object", "properties": {
    "address": {"title": "Address", "type": "object", "properties": {
        "street": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
        "required": ["street"]},
    "count": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    "pair": {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]}},
    "required": ["count"]}
DEFS = {"title": "Approval", "type": "object", "$defs": {
    "Choice": {"enum": ["yes", "no"], "title": "Choice", "type": "string"}},
    "properties": {"choice": {"$ref": "#/$defs/Choice"}, "comment": {"type": "string"}},
    "required": ["choice"]}
LEGACY_DEFS = {"type": "object", "definitions": {
    "Item": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
             "required": ["sku"]}},
    "properties": {"item": {"$ref": "#/definitions/Item"}}, "required": ["item"]}
ANY_OF = {"type": "object", "properties": {"value": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
                                           "ratio": {"type": "number", "exclusiveMaximum": 1}},
          "additionalProperties": False}
CIRCULAR = {"$ref": "#"}
SCHEMAS = [PERSON, NESTED, DEFS, LEGACY_DEFS, ANY_OF, {}, {"type": "object"}]

# Run inputs meant for each schema above (valid and not), then ones for any schema.
PERSON_INPUTS = [
    {"name": "Ann", "age": 3}, {"name": "Ann", "age": -1}, {"name": "Ann"}, {"age": "3"},
    {"name": "Ann", "age": 3, "email": "not-an-email", "nickname": None}, {"name": None, "age": 3},
    {"name": {"__prefect_kind": "none", "value": "Bo"}, "age": {"__prefect_kind": "json", "value": "4"}},
    {"name": "Bo", "age": {"__prefect_kind": "json", "value": "four"}},
    {"name": "Bo", "age": {"__prefect_kind": "json", "value": 4}},
    {"name": "Bo", "age": {"__prefect_kind": "json"}},
    {"name": {"__prefect_kind": "none"}, "age": 1},
    {"name": {"__prefect_kind": "jinja"}, "age": 1},
    {"name": {"__prefect_kind": "workspace_variable", "variable_name": "who"}, "age": 1},
    {"name": {"__prefect_kind": "workspace_variable"}, "age": 1},
    {"name": {"__prefect_kind": "mystery", "value": "Cy"}, "age": 1},
    {"__prefect_kind": "json", "value": "{\"name\": \"Di\", \"age\": 9}"},
    {"name": "Ed", "age": 2, "extra": [1, {"deep": True}]},
]
NESTED_INPUTS = [
    {"count": 2, "address": {"zip": "123"}}, {"count": 2, "address": {"street": "x", "zip": "12345"}},
    {"count": None}, {"count": 1, "tags": ["a", "b", "c"]}, {"count": 1, "pair": [1, 2]},
    {"count": 1, "pair": [1, "x", 3]}, {"count": 1, "address": None}, {"count": 1, "tags": None},
    {"count": 1, "tags": [{"__prefect_kind": "json"}, "x"]},
    {"count": {"__prefect_kind": "json", "value": {"__prefect_kind": "json", "value": "1"}}},
    {"count": {"__prefect_kind": "none", "value": {"__prefect_kind": "json", "value": "[1]"}}},
]
DEFS_INPUTS = [{"choice": "yes"}, {"choice": "maybe"}, {"choice": "no", "comment": 5}, {"choice": None},
               {"choice": "no", "comment": "fine"}]
LEGACY_INPUTS = [{"item": {"sku": "a", "qty": None}}, {"item": {"qty": 1}}, {"item": {"sku": 1}},
                 {"item": {"sku": "a", "qty": 2}}, {"item": None}]
ANY_OF_INPUTS = [{"value": 3}, {"value": "x"}, {"ratio": 1}, {"extra": 1}, {"ratio": 0.5, "value": True},
                 {"value": None}, {}]
ANY_INPUTS = [
    None, {}, {"text": "caf\u00e9 \u2615", "n": 1.5, "big": 12345678901234567890}, {"__prefect_kind": "json"},
    {"__prefect_kind": "none", "value": {}}, {"__prefect_kind": "json", "value": "[1, 2]"},
    {"a": [{"__prefect_kind": "workspace_variable"}, {"__prefect_kind": "json", "value": "null"}]},
]
SCHEMA_INPUTS = [PERSON_INPUTS, NESTED_INPUTS, DEFS_INPUTS, LEGACY_INPUTS, ANY_OF_INPUTS, [], []]
RUN_INPUTS = [ri for group in SCHEMA_INPUTS for ri in group] + ANY_INPUTS

FILTERS = [
    {"prefix": "paused", "limit": 10, "exclude_keys": []},
    {"prefix": "PAUSED-1", "limit": 10, "exclude_keys": ["paused-1-schema"]},
    {"prefix": "", "limit": 1, "exclude_keys": []},
    {"prefix": "p_used", "limit": 5, "exclude_keys": []},
    {"prefix": "%response", "limit": 5, "exclude_keys": []},
    {"prefix": "msg-", "limit": 2, "exclude_keys": ["msg-a"]},
    {"prefix": "zzz", "limit": 3, "exclude_keys": []},
]


def _scenario(sid, pause="paused", keyset=KEYSET, schema=PERSON, run_input=None, extra=(), filters=None):
    inputs = [] if schema is None else [[KEYSET["schema"], schema if isinstance(schema, str) else json.dumps(schema)]]
    inputs += [list(kv) for kv in extra]
    return {"id": sid, "pause": pause, "keyset": keyset, "inputs": inputs, "run_input": run_input,
            "filters": FILTERS[:2] if filters is None else filters}


FIXED = [
    _scenario("no-keyset", keyset=None, schema=None, run_input={"a": 1}),
    _scenario("no-keyset-suspended", pause="suspended", keyset=None, schema=None),
    _scenario("schema-missing", schema=None, run_input={"name": "Ann", "age": 3}),
    _scenario("schema-not-json", schema="{not json", run_input={"name": "Ann", "age": 3}),
    _scenario("schema-nan", schema='{"type": "object", "maximum": NaN}', run_input={}),
    _scenario("schema-circular", schema=CIRCULAR, run_input={"a": 1}),
    _scenario("valid", run_input={"name": "Ann", "age": 3}),
    _scenario("valid-suspended", pause="suspended", run_input={"name": "Ann", "age": 3}),
    _scenario("empty-input-required", run_input=None),
    _scenario("empty-input-open", schema={"type": "object"}, run_input=None),
    _scenario("other-keys", keyset={"schema": "in-schema", "response": "in-answer"}, schema=None,
              run_input={"x": 1}, extra=[["in-schema", json.dumps({"type": "object"})]]),
    _scenario("messages", schema={}, run_input={"k": "v"},
              extra=[["msg-a", "1"], ["msg-b", "2"], ["msg-c", "3"], ["pause-x", "4"]], filters=FILTERS),
]


def resume_answer(result, run, response, filters) -> dict:
    """A scenario's answer, from Prefect's or the engine's objects alike: the resume's
    OrchestrationResult, the run after it, the stored response (or None) and the keys
    each filter returned."""
    state = result.state
    return {"status": result.status.value, "state": state and [state.type.value, state.name],
            "reason": getattr(result.details, "reason", None), "response": response,
            "run_state": [run.state.type.value, run.state.name], "filters": filters}


def random_scenarios(seed: int, n: int) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        which = rng.randrange(len(SCHEMAS))
        mine = SCHEMA_INPUTS[which]
        run_input = rng.choice(mine if mine and rng.random() < 0.7 else RUN_INPUTS)
        extra = [[f"msg-{c}", str(rng.randrange(10))] for c in rng.sample("abcd", rng.randrange(3))]
        out.append(_scenario(f"in{seed}-{i}", pause=rng.choice(["paused", "suspended"]), schema=SCHEMAS[which],
                             run_input=run_input, extra=extra, filters=rng.sample(FILTERS, 2)))
    return out


def main(argv: list[str]) -> None:
    seed, n, out = int(argv[1]), int(argv[2]), argv[3]
    pairs = [(s, ri) for s, mine in zip(SCHEMAS, SCHEMA_INPUTS) for ri in mine + ANY_INPUTS]
    cases = FIXED + [_scenario(f"fixed-{j}", schema=s, run_input=ri) for j, (s, ri) in enumerate(pairs)]
    cases += random_scenarios(seed, n)
    with open(out, "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main(sys.argv)
