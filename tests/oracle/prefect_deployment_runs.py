#!/usr/bin/env python3
"""Answer deployment-run scenarios (deployment_runs_scenarios.py format) with Prefect 3.1.0.

usage: $PREFECT_VENV/bin/python tests/oracle/prefect_deployment_runs.py IN.json OUT.json [--db PATH]

Each scenario gets its own flow, work pool (models.workers.create_work_pool with the
scenario's base job template, then its extra queues) and deployment (in the pool's
default queue, or in none), one second apart on a manual clock. Each request goes to
the API route function `api.deployments.create_flow_run_from_deployment` itself (it
opens and commits its own session), one second after the last. Writes a JSON list
of {"id", "expected": {"answers": [...], "queues": [[name, priority], ...]}}: per
request either {"status", "detail"} (the route's HTTPException), {"error": exception
class name} (its 500s), or {"run": {"parameters", "tags" (sorted: Prefect builds
them as a set), "work_queue_name", "queue" (the name of the run's queue, or null),
"job_variables", "deployment_version", "state": [type, name], "name" (only when the
request named the run), "same_as": index of the earlier request whose run came back
(idempotency), or null}}; `queues` lists the pool's queues by priority afterwards.
"""
import sys
import time

import prefect_sandbox as sb
from deployment_runs_scenarios import run_answer


async def answer_file(path_in: str, path_out: str) -> None:
    from fastapi import HTTPException, Response
    from prefect.server import models, schemas
    from prefect.server.api import deployments as api
    from prefect.server.api.workers import WorkerLookups

    db, scenarios = await sb.manual_clock_database(path_in)
    now = 0
    answers = []
    started = time.perf_counter()
    for n, sc in enumerate(scenarios):
        now += 10
        sb.set_clock(now)
        pool_id = queue_id = None
        async with db.session_context(begin_transaction=True) as s:
            flow_id = (await models.flows.create_flow(s, schemas.core.Flow(name=f"flow-{n}"))).id
            if sc["template"] is not None:
                pool = await models.workers.create_work_pool(s, schemas.core.WorkPool(
                    name=f"pool-{n}", type="process", base_job_template=sc["template"]))
                pool_id, queue_id = pool.id, pool.default_queue_id
                for name in sc["queues"]:
                    await models.workers.create_work_queue(s, pool.id, schemas.actions.WorkQueueCreate(name=name))
            dep = sc["deployment"]
            deployment_id = (await models.deployments.create_deployment(s, schemas.core.Deployment(
                name=f"dep-{n}", flow_id=flow_id, work_queue_id=queue_id,
                work_queue_name="default" if queue_id else None, **dep))).id
        seen = {}
        out = []
        for i, req in enumerate(sc["requests"]):
            now += 1
            sb.set_clock(now)
            try:
                run = await api.create_flow_run_from_deployment(
                    flow_run=schemas.actions.DeploymentFlowRunCreate(**req), deployment_id=deployment_id,
                    created_by=None, db=db, worker_lookups=WorkerLookups(), response=Response())
            except HTTPException as exc:
                out.append({"status": exc.status_code, "detail": exc.detail})
                continue
            except Exception as exc:  # the route's 500
                out.append({"error": type(exc).__name__})
                continue
            async with db.session_context() as s:
                queue = run.work_queue_id and await models.workers.read_work_queue(s, run.work_queue_id)
            out.append({"run": run_answer(run, queue.name if queue else None, req, seen.get(run.id))})
            seen.setdefault(run.id, i)
        queues = []
        if pool_id is not None:
            async with db.session_context() as s:
                queues = [[q.name, q.priority] for q in await models.workers.read_work_queues(s, pool_id)]
        answers.append({"id": sc["id"], "expected": {"answers": out, "queues": queues}})
    sb.write_answer_list(path_out, answers, started)


if __name__ == "__main__":
    sys.exit(sb.answer_from_command_line(
        answer_file, "Answer deployment-run scenarios with Prefect 3.1.0",
        "scenario JSON list (deployment_runs_scenarios.py format)", "JSON list of {id, expected}"))
