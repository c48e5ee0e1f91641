#!/usr/bin/env python
"""Answer deployment-schedule scenarios (see schedules_scenarios.py) with Prefect 3.1.0's
own models layer.

usage: "$PREFECT_VENV/bin/python" tests/oracle/prefect_schedules.py IN.json OUT.json [--db PATH]

One SQLite database for the whole file; each scenario runs in its own transaction,
rolled back at its end, and each step in a SAVEPOINT, so a step that raises is undone
alone and answered {"error": "invalid"} (a pydantic or value error: bad input) or
{"error": "not_found"} (ObjectNotFoundError, or a foreign-key IntegrityError). The
time is a manual clock: `pendulum.now` (which schedule_runs' default start, the
Scheduled states, the column defaults and create_deployment read) answers T0 plus the
`advance` steps so far, so every time below is exact.

An answer: {"id", "steps": [one per step], "final": {deployment: [schedule views]},
"runs": sorted [idempotency_key, deployment] of every flow run left (keys name the
deployment, not its random id)}. A schedule view
is [schedule, active, max_scheduled_runs, created_ms, updated_ms] with the schedule's
JSON (an interval's anchor_date as "anchor_ms", ms from T0). Step answers: None
(advance), schedule views (create, read), a bool (update, deletes, update_deployment),
True (upsert), queue names in Prefect's order (check_work_queues_for_deployment), and
for schedule_runs {"count", "runs"}: the inserted runs as [idempotency_key,
expected_start_time, next_scheduled_start_time, tags, auto_scheduled, state type,
state name, message, scheduled_time, state timestamp ms, parameters, work_queue_name,
deployment_version, created_ms, state_timestamp column] sorted by key (Prefect returns
the ids in the order its SELECT finds them, which is not the dates' order).
"""
import datetime
import json
import pathlib
import sys
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import prefect_sandbox as sb  # noqa: E402  (must come before any Prefect import)

T0 = datetime.datetime(2024, 3, 9, 12, 0, 0, tzinfo=datetime.timezone.utc)
CLOCK = sb.CLOCK


def ms_of(t):
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return round((t - T0).total_seconds() * 1000)


def iso(t):
    if t is None:
        return None
    return t.astimezone(datetime.timezone.utc).isoformat()


def at(s):
    return None if s is None else T0 + datetime.timedelta(seconds=s)


def schedule_view(schedule):
    data = schedule.model_dump(mode="json")
    if "interval" in data:
        data = {"interval": data["interval"], "anchor_ms": ms_of(schedule.anchor_date), "timezone": data["timezone"]}
    return data


async def answer_file(inp, out):
    import pydantic
    import sqlalchemy as sa
    import sqlalchemy.exc
    from prefect.server import models, schemas
    from prefect.server.database import orm_models as orm
    from prefect.server.database.dependencies import provide_database_interface
    from prefect.server.exceptions import ObjectNotFoundError

    A = schemas.actions
    db = provide_database_interface()
    await db.create_db()
    scenarios = json.load(open(inp))
    sb.install_manual_clock()

    def views(rows):
        return [[schedule_view(r.schedule), r.active, r.max_scheduled_runs, ms_of(r.created), ms_of(r.updated)]
                for r in rows]

    async def run_one(s, sc):
        CLOCK[0] = T0
        flow = await models.flows.create_flow(s, schemas.core.Flow(name="f"))
        deps = {}
        for d in sc["deployments"]:
            dep = await models.deployments.create_deployment(s, schemas.core.Deployment(
                name=d["name"], flow_id=flow.id, tags=d["tags"], paused=d["paused"], version=d["version"],
                parameters=d["parameters"],
                schedules=[schemas.core.DeploymentSchedule(**e) for e in d["schedules"]]))
            deps[d["name"]] = dep.id
        missing = uuid.uuid4()
        if sc["queues"]:
            pool = await models.workers.create_work_pool(s, A.WorkPoolCreate(name="p", type="process"))
            for q in sc["queues"]:
                queue = await models.workers.create_work_queue(s, pool.id, A.WorkQueueCreate(name=q["name"]))
                flt = {}
                if q["tags"] is not None:
                    flt["tags"] = q["tags"]
                if q["deployments"] is not None:
                    flt["deployment_ids"] = [str(deps[n]) for n in q["deployments"]]
                await s.execute(sa.update(orm.WorkQueue).where(orm.WorkQueue.id == queue.id)
                                .values(filter=schemas.core.QueueFilter(**flt)))
        def label(runs):
            # idempotency keys name the deployment's random id: use its name
            for r in runs:
                for name, did in deps.items():
                    r[0] = r[0].replace(str(did), name)
            return runs

        def dep_id(name):
            return deps.get(name, missing)

        async def schedule_id(name, index):
            rows = await models.deployments.read_deployment_schedules(s, dep_id(name))
            return rows[index].id if index < len(rows) else uuid.uuid4()

        answers = []
        for st in sc["steps"]:
            op = st["op"]
            if op == "advance":
                CLOCK[0] = CLOCK[0] + datetime.timedelta(seconds=st["seconds"])
                answers.append(None)
                continue
            try:
                async with s.begin_nested():
                    if op == "create_deployment_schedules":
                        made = await models.deployments.create_deployment_schedules(
                            s, dep_id(st["deployment"]), [A.DeploymentScheduleCreate(**e) for e in st["schedules"]])
                        ans = views(made)
                    elif op == "read_deployment_schedules":
                        flt = None if st["filter"] is None else schemas.filters.DeploymentScheduleFilter(**st["filter"])
                        ans = views(await models.deployments.read_deployment_schedules(s, dep_id(st["deployment"]), flt))
                    elif op == "update_deployment_schedule":
                        sid = await schedule_id(st["deployment"], st["index"])
                        ans = await models.deployments.update_deployment_schedule(
                            s, dep_id(st["deployment"]), sid, A.DeploymentScheduleUpdate(**st["fields"]))
                        # The UPDATE's `updated` is SQLite's own now (the column's onupdate),
                        # not pendulum's: bring it onto the manual clock.
                        await s.execute(sa.update(orm.DeploymentSchedule)
                                        .where(orm.DeploymentSchedule.updated > CLOCK[0])
                                        .values(updated=CLOCK[0]))
                    elif op == "delete_deployment_schedule":
                        sid = await schedule_id(st["deployment"], st["index"])
                        ans = await models.deployments.delete_deployment_schedule(s, dep_id(st["deployment"]), sid)
                    elif op == "delete_schedules_for_deployment":
                        ans = await models.deployments.delete_schedules_for_deployment(s, dep_id(st["deployment"]))
                    elif op == "schedule_runs":
                        ids = await models.deployments.schedule_runs(
                            s, dep_id(st["deployment"]), start_time=at(st["start_s"]), end_time=at(st["end_s"]),
                            min_time=None if st["min_time_s"] is None else datetime.timedelta(seconds=st["min_time_s"]),
                            min_runs=st["min_runs"], max_runs=st["max_runs"], auto_scheduled=st["auto_scheduled"])
                        runs = []
                        for rid in ids:
                            r = (await s.execute(sa.select(orm.FlowRun).where(orm.FlowRun.id == rid))).scalar_one()
                            state = (await s.execute(sa.select(orm.FlowRunState)
                                                     .where(orm.FlowRunState.flow_run_id == rid))).scalar_one()
                            assert r.state_id == state.id
                            runs.append([r.idempotency_key, iso(r.expected_start_time), iso(r.next_scheduled_start_time),
                                         list(r.tags), r.auto_scheduled, state.type.value, state.name, state.message,
                                         iso(state.state_details.scheduled_time), ms_of(state.timestamp),
                                         r.parameters, r.work_queue_name, r.deployment_version, ms_of(r.created),
                                         ms_of(r.state_timestamp)])
                        ans = {"count": len(ids), "runs": sorted(label(runs))}
                    elif op == "update_deployment":
                        ans = await models.deployments.update_deployment(
                            s, dep_id(st["deployment"]), A.DeploymentUpdate(**st["fields"]))
                    elif op == "upsert_deployment":
                        await models.deployments.create_deployment(s, schemas.core.Deployment(
                            name=st["deployment"], flow_id=flow.id,
                            **{k: ([schemas.core.DeploymentSchedule(**e) for e in v] if k == "schedules" else v)
                               for k, v in st["fields"].items()}))
                        ans = True
                    elif op == "check_work_queues_for_deployment":
                        queues = await models.deployments.check_work_queues_for_deployment(s, dep_id(st["deployment"]))
                        ans = [q.name for q in queues]
                    else:
                        raise SystemExit(f"unknown op {op!r}")
            except (pydantic.ValidationError, ValueError):
                ans = {"error": "invalid"}
            except (ObjectNotFoundError, sqlalchemy.exc.IntegrityError):
                ans = {"error": "not_found"}
            answers.append(ans)
        final = {name: views(await models.deployments.read_deployment_schedules(s, did))
                 for name, did in deps.items()}
        names = {v: k for k, v in deps.items()}
        runs = (await s.execute(sa.select(orm.FlowRun.deployment_id, orm.FlowRun.idempotency_key))).all()
        return {"id": sc["id"], "steps": answers, "final": final,
                "runs": sorted(label([[k, names.get(d, str(d))] for d, k in runs]))}

    def stop_clock() -> None:
        CLOCK[0] = None

    await sb.answer_each(db, scenarios, run_one, out, after_each=stop_clock)


if __name__ == "__main__":
    sb.answer_from_command_line(
        answer_file, "Answer deployment-schedule scenarios with Prefect 3.1.0",
        "scenario JSON list (schedules_scenarios.py format)", "answers JSON list")
