#!/usr/bin/env python3
"""Answer flow-run input scenarios (inputs_scenarios.py format) with Prefect 3.1.0.

usage: $PREFECT_VENV/bin/python tests/oracle/prefect_inputs.py IN.json OUT.json [--db PATH]

Each scenario gets its own flow run of one deployment (a suspension needs one), created RUNNING and then paused (or suspended,
3,600 s timeout) through `models.flow_runs.set_flow_run_state` under CoreFlowPolicy,
with the scenario's `run_input_keyset`. Its inputs are stored with
`models.flow_run_input.create_flow_run_input`, one per second of a manual clock (so
their order by `created` is certain); the run is resumed through the API route
function `api.flow_runs.resume_flow_run` itself (it opens its own session), then the
response input is read and each filter answered with `filter_flow_run_input`.
Writes a JSON list of {"id", "expected": {"status", "state", "reason", "response",
"run_state", "filters"}}; `state` and `run_state` are [type, name] or null. Where the
route raises (Prefect's HTTP 500), "expected" is {"error": exception class name,
"response", "run_state"} instead.
"""
import sys
import time

import prefect_sandbox as sb
from inputs_scenarios import resume_answer


async def answer_file(path_in: str, path_out: str) -> None:
    from fastapi import Response
    from prefect.server import models, schemas
    from prefect.server.api import flow_runs as api
    from prefect.server.orchestration.core_policy import CoreFlowPolicy, CoreTaskPolicy

    states = schemas.states
    db, scenarios = await sb.manual_clock_database(path_in)
    now = 0
    sb.set_clock(now)
    async with db.session_context(begin_transaction=True) as s:
        flow_id = (await models.flows.create_flow(s, schemas.core.Flow(name="inputs"))).id
        deployment_id = (await models.deployments.create_deployment(
            s, schemas.core.Deployment(name="inputs", flow_id=flow_id))).id
    answers = []
    started = time.perf_counter()
    for sc in scenarios:
        now += 10
        sb.set_clock(now)
        async with db.session_context(begin_transaction=True) as s:
            run_id = (await models.flow_runs.create_flow_run(
                s, schemas.core.FlowRun(flow_id=flow_id, deployment_id=deployment_id, state=states.Running()))).id
        now += 1
        sb.set_clock(now)
        pause = (states.Suspended if sc["pause"] == "suspended" else states.Paused)(timeout_seconds=3600)
        pause.state_details.run_input_keyset = sc["keyset"]
        async with db.session_context(begin_transaction=True) as s:
            paused = await models.flow_runs.set_flow_run_state(s, run_id, pause, flow_policy=CoreFlowPolicy)
        assert paused.status.value == "ACCEPT", (sc["id"], paused)
        for key, value in sc["inputs"]:
            now += 1
            sb.set_clock(now)
            async with db.session_context(begin_transaction=True) as s:
                await models.flow_run_input.create_flow_run_input(
                    s, schemas.core.FlowRunInput(flow_run_id=run_id, key=key, value=value))
        now += 1
        sb.set_clock(now)
        try:
            result = await api.resume_flow_run(
                flow_run_id=run_id, db=db, run_input=sc["run_input"], response=Response(), flow_policy=CoreFlowPolicy,
                task_policy=CoreTaskPolicy, orchestration_parameters={}, api_version=None)
        except Exception as exc:  # the route's 500: recorded, the run left as it was
            result = exc
        async with db.session_context() as s:
            run = await models.flow_runs.read_flow_run(s, run_id)
            response = None
            if sc["keyset"] and "response" in sc["keyset"]:
                found = await models.flow_run_input.read_flow_run_input(s, run_id, sc["keyset"]["response"])
                response = found and found.value
            filters = []
            for flt in sc["filters"]:
                got = await models.flow_run_input.filter_flow_run_input(
                    s, run_id, flt["prefix"], flt["limit"], flt["exclude_keys"])
                filters.append([i.key for i in got])
        if isinstance(result, Exception):
            answers.append({"id": sc["id"], "expected": {"error": type(result).__name__, "response": response,
                                                         "run_state": [run.state.type.value, run.state.name]}})
            continue
        answers.append({"id": sc["id"], "expected": resume_answer(result, run, response, filters)})
    sb.write_answer_list(path_out, answers, started)


if __name__ == "__main__":
    sys.exit(sb.answer_from_command_line(
        answer_file, "Answer flow-run input scenarios with Prefect 3.1.0",
        "scenario JSON list (inputs_scenarios.py format)", "JSON list of {id, expected}"))
