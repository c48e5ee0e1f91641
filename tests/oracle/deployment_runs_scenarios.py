#!/usr/bin/env python3
"""Scenarios for creating flow runs from a deployment.

usage: python3 tests/oracle/deployment_runs_scenarios.py SEED N OUT.json

No Prefect import. Writes a JSON list: the hand-written scenarios below, then N
random ones (ids "dr<SEED>-<i>"). A scenario sets up one work pool (its base job
template, extra queues) and one deployment of a flow, in the pool's default queue or
in none, then sends its requests, in order, to the create_flow_run_from_deployment
route:

    {"id": ..., "template": base job template or null (no pool),
     "queues": [extra queue names],
     "deployment": {"parameters", "tags", "version", "parameter_openapi_schema",
                    "enforce_parameter_schema", "job_variables"},
     "requests": [DeploymentFlowRunCreate fields as JSON, ...]}

prefect_deployment_runs.py answers each with Prefect 3.1.0's route; the replay in
tests/test_deployment_runs.py sends the same requests to the engine.
"""
import json
import random
import sys

from inputs_scenarios import ANY_INPUTS, SCHEMA_INPUTS, SCHEMAS

CONFIG = {"command": "{{ command }}", "image": "{{ image }}"}
BASIC = {"job_configuration": CONFIG, "variables": {"type": "object", "required": ["image"], "properties": {
    "command": {"type": "string", "title": "Command"},
    "image": {"type": "string", "title": "Image"},
    "cpu": {"type": "integer", "default": 1, "minimum": 1},
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "labels": {"type": "array", "items": {"type": "string"}, "default": ["x"]}}}}


def _variables(properties: dict, required=("image",)) -> dict:
    props = {"command": {"type": "string"}, "image": {"type": "string"}, **properties}
    return {"job_configuration": CONFIG, "variables": {"type": "object", "required": list(required),
                                                        "properties": props}}


TEMPLATES = {
    "none": {},
    "basic": BASIC,
    "bad-default": _variables({"cpu": {"type": "integer", "default": "one"}}),
    "null-default": _variables({"region": {"type": "string", "default": None}}),
    "format-default": _variables({"owner": {"type": "string", "format": "email", "default": "nobody"}}),
    "email-default": _variables({"owner": {"type": "string", "format": "email", "default": "a@b.c"}}),
    "block-default": _variables({"creds": {"type": "object", "default": {
        "$ref": {"block_document_id": "8a5a7c3e-2b1f-4d8e-9c71-0a1b2c3d4e5f"}}}}),
    "ref-no-block": _variables({"creds": {"type": "object", "default": {"$ref": {}}}}),
    "tuple": _variables({"pair": {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]}}),
    "required-named": _variables({"required": {"type": "string"}}, required=("image", "required")),
    "nested-required": _variables({"limits": {"type": "object", "required": ["mem"], "properties": {
        "mem": {"type": "integer"}, "gpu": {"type": "integer"}}}}),
    "nested-default": _variables({"limits": {"type": "object", "properties": {
        "mem": {"type": "integer", "default": 1}}, "default": {"mem": 1}}}),
    "bad-default-nested": _variables({"cpu": {"type": "integer", "default": "one"}, "limits": {
        "type": "object", "required": ["mem"], "properties": {"mem": {"type": "integer"}}}}),
    "invalid-schema": {"job_configuration": {"image": "x"}, "variables": {"type": "nope"}},
    "no-variables": {"job_configuration": {"image": "x"}},
}

JOB_VARIABLES = [None, {}, {"image": "python"}, {"image": 5}, {"cpu": 0}, {"cpu": None},
                 {"image": "python", "env": {"A": "1"}}, {"env": {"A": 1}}, {"image": None},
                 {"image": "i", "pair": [1, "a"]}, {"image": "i", "pair": ["a", 1]}, {"image": "i", "required": 3},
                 {"image": "i", "limits": {"gpu": 1}}, {"image": "i", "limits": {"mem": 2}},
                 {"image": "i", "owner": "x"}, {"image": "i", "labels": None}]
DEPLOYMENT_JOB_VARIABLES = [{}, {}, {"image": "base"}, {"cpu": 2}, {"image": 1}]
TAGS = [[], ["a"], ["a", "b"], ["b", "c"], ["c", "c"]]
QUEUE_NAMES = [None, None, "default", "fast", "brand-new", "bad/name", ""]
STATES = [None, None, {"type": "RUNNING"}, {"type": "PENDING"}, {"type": "SCHEDULED", "name": "Later"},
          {"type": "COMPLETED"}]
ENFORCE = [None, None, True, False]
PERSON = SCHEMAS[0]


def deployment(parameters=None, schema=PERSON, enforce=True, tags=("a",), version="1.0", job_variables=None):
    return {"parameters": parameters or {}, "tags": list(tags), "version": version,
            "parameter_openapi_schema": schema, "enforce_parameter_schema": enforce,
            "job_variables": job_variables or {}}


def scenario(sid, requests, template="basic", queues=("fast",), dep=None, in_queue=True):
    return {"id": sid, "template": TEMPLATES[template] if in_queue else None, "queues": list(queues),
            "deployment": dep or deployment(), "requests": requests}


FIXED = [
    scenario("valid", [{"parameters": {"name": "Ann", "age": 3}, "job_variables": {"image": "py"}}]),
    scenario("deployment-defaults", [{"job_variables": {"image": "py"}}],
             dep=deployment({"name": "Bo", "age": 4}, tags=("x", "y"))),
    scenario("override-one", [{"parameters": {"age": 5}, "job_variables": {"image": "py"}}],
             dep=deployment({"name": "Bo", "age": 4})),
    scenario("invalid-parameters", [{"parameters": {"name": "Ann", "age": -1}, "job_variables": {"image": "py"}}]),
    scenario("not-enforced-by-run", [{"parameters": {"age": "x"}, "enforce_parameter_schema": False,
                                      "job_variables": {"image": "py"}}]),
    scenario("enforced-by-run", [{"parameters": {"age": "x"}, "enforce_parameter_schema": True,
                                  "job_variables": {"image": "py"}}], dep=deployment(enforce=False)),
    scenario("no-schema-enforced", [{"parameters": {"a": 1}, "job_variables": {"image": "py"}}],
             dep=deployment(schema=None)),
    scenario("no-schema-not-enforced", [{"parameters": {"a": 1}, "job_variables": {"image": "py"}}],
             dep=deployment(schema=None, enforce=False)),
    scenario("circular-schema", [{"parameters": {"a": 1}, "job_variables": {"image": "py"}}],
             dep=deployment(schema={"$ref": "#"})),
    scenario("hydrated", [{"parameters": {"name": {"__prefect_kind": "none", "value": "Cy"},
                                          "age": {"__prefect_kind": "json", "value": "7"}},
                           "job_variables": {"image": "py"}}]),
    scenario("hydration-error", [{"parameters": {"name": "Cy", "age": {"__prefect_kind": "json", "value": "x"}},
                                  "job_variables": {"image": "py"}}]),
    scenario("workspace-variable", [{"parameters": {"name": {"__prefect_kind": "workspace_variable",
                                                             "variable_name": "who"}, "age": 1},
                                     "job_variables": {"image": "py"}}]),
    scenario("missing-required-job-variable", [{"parameters": {"name": "A", "age": 1}}]),
    scenario("required-from-deployment", [{"parameters": {"name": "A", "age": 1}}],
             dep=deployment(job_variables={"image": "base"})),
    scenario("invalid-default-lifts-required", [{"parameters": {"name": "A", "age": 1}}], template="bad-default"),
    scenario("format-default-lifts-required", [{"parameters": {"name": "A", "age": 1}}], template="format-default"),
    scenario("email-default-keeps-required", [{"parameters": {"name": "A", "age": 1}}], template="email-default"),
    scenario("nested-default-takes-no-null", [{"parameters": {"name": "A", "age": 1},
                                               "job_variables": {"image": "i", "limits": {"mem": None}}}],
             template="nested-default"),
    scenario("invalid-default-lifts-nested-required", [{"parameters": {"name": "A", "age": 1},
                                                        "job_variables": {"limits": {"gpu": 1}}}],
             template="bad-default-nested"),
    scenario("block-default", [{"parameters": {"name": "A", "age": 1}, "job_variables": {"image": "i"}}],
             template="block-default"),
    scenario("invalid-variables-schema", [{"parameters": {"name": "A", "age": 1}}], template="invalid-schema"),
    scenario("no-pool", [{"parameters": {"name": "A", "age": 1}}], in_queue=False),
    scenario("no-pool-queue-name", [{"parameters": {"name": "A", "age": 1}, "work_queue_name": "fast"}],
             in_queue=False),
    scenario("queue-existing", [{"parameters": {"name": "A", "age": 1}, "job_variables": {"image": "i"},
                                 "work_queue_name": "fast"}]),
    scenario("queue-created-once", [
        {"parameters": {"name": "A", "age": 1}, "job_variables": {"image": "i"}, "work_queue_name": "brand-new"},
        {"parameters": {"name": "B", "age": 2}, "job_variables": {"image": "i"}, "work_queue_name": "brand-new"}]),
    scenario("idempotent", [
        {"parameters": {"name": "A", "age": 1}, "job_variables": {"image": "i"}, "idempotency_key": "k"},
        {"parameters": {"name": "B", "age": 2}, "job_variables": {"image": "i"}, "idempotency_key": "k",
         "work_queue_name": "brand-new"},
        {"parameters": {"name": "B", "age": -2}, "job_variables": {"image": "i"}, "idempotency_key": "k"}]),
    scenario("states-and-names", [
        {"parameters": {"name": "A", "age": 1}, "job_variables": {"image": "i"}, "state": {"type": "RUNNING"},
         "name": "my-run", "tags": ["b", "a"]},
        {"parameters": {"name": "A", "age": 1}, "job_variables": {"image": "i"},
         "state": {"type": "SCHEDULED", "name": "Later"}}]),
    scenario("top-level-kind", [{"parameters": {"__prefect_kind": "json", "value": "{\"name\": \"Di\", \"age\": 9}"},
                                 "job_variables": {"image": "i"}}], dep=deployment({"name": "X", "age": 1})),
]


def run_answer(run, queue_name, request, same_as) -> dict:
    """A created run's answer, from Prefect's or the engine's run alike: `queue_name`
    is the name of the run's queue (or None), `same_as` the index of the earlier
    request whose run came back (or None)."""
    answer = {"parameters": run.parameters, "tags": sorted(run.tags), "work_queue_name": run.work_queue_name,
              "queue": queue_name, "job_variables": run.job_variables,
              "deployment_version": run.deployment_version, "state": [run.state.type.value, run.state.name],
              "same_as": same_as}
    if "name" in request:
        answer["name"] = run.name
    return answer


def random_scenarios(seed: int, n: int) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        which = rng.randrange(len(SCHEMAS))
        mine = [p for p in SCHEMA_INPUTS[which] + ANY_INPUTS if isinstance(p, dict)]
        dep = deployment(parameters=rng.choice([{}, {}, {"name": "Dep", "age": 1}, {"extra": True}]),
                         schema=rng.choice([SCHEMAS[which]] * 4 + [None]), enforce=rng.random() < 0.7,
                         tags=rng.choice(TAGS), version=rng.choice([None, "2"]),
                         job_variables=rng.choice(DEPLOYMENT_JOB_VARIABLES))
        requests = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            # Half the runs get job variables that satisfy every template, so that
            # enough requests get past step 3 to exercise the rest.
            job_variables = rng.choice(JOB_VARIABLES) if rng.random() < 0.5 else {"image": "python"}
            req = {"parameters": rng.choice(mine), "job_variables": job_variables}
            for key, choices in (("tags", TAGS), ("work_queue_name", QUEUE_NAMES), ("state", STATES),
                                 ("enforce_parameter_schema", ENFORCE),
                                 ("idempotency_key", [None, None, "k1", "k2"])):
                value = rng.choice(choices)
                if value is not None:
                    req[key] = value
            requests.append(req)
        out.append(scenario(f"dr{seed}-{i}", requests, template=rng.choice(sorted(TEMPLATES)),
                            queues=rng.sample(["fast", "slow"], rng.randrange(3)), dep=dep,
                            in_queue=rng.random() < 0.9))
    return out


def main(argv: list[str]) -> None:
    seed, n, out = int(argv[1]), int(argv[2]), argv[3]
    with open(out, "w") as f:
        json.dump(FIXED + random_scenarios(seed, n), f)


if __name__ == "__main__":
    main(sys.argv)
