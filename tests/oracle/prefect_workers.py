#!/usr/bin/env python
"""Answer work-pool scenarios (see workers_scenarios.py) with Prefect 3.1.0's own server models.

usage: "$PREFECT_VENV/bin/python" tests/oracle/prefect_workers.py IN.json OUT.json [--db PATH]

One SQLite database for the whole file; every scenario runs inside its own outer
transaction that is rolled back at the end, so scenarios cannot see each other (checked:
the tables are empty at the start of every scenario). Every setup/update/call step runs
inside a SAVEPOINT, so a step that raises is rolled back alone and recorded as
{"error": "<ExceptionClassName>"}; the scenario then continues.

A scenario: `pools` [{name, type, concurrency_limit, is_paused}], `queues` [{pool, name,
priority, concurrency_limit, is_paused}] (each pool's own queue is "default"),
`deployments` [{name, pool, queue, concurrency_limit}], `runs` [{name, pool, queue, state,
offset_s, deployment, auto_scheduled}] (states SCHEDULED/LATE at T0 + offset_s, else the
bare state type; every run belongs to flow "f"), `updates` [{op: update_work_queue |
update_work_pool | update_deployment, pool/queue/deployment names, fields: the explicitly
set fields}], `calls` [{work_pools, work_queues ([pool, queue] pairs), scheduled_before /
scheduled_after _offset_s, limit, respect_queue_priorities}]. T0 = 2024-06-01T12:00Z.
An answer: per update True/False/{"error"}, per call [[pool, queue, run], ...] in
Prefect's order, and the final pools, queues, deployments (their global limit) and the
names of the runs left.

Priority ops (workers_scenarios.py --priorities): `updates` may also hold
{op: bulk_update_work_queue_priorities, pool, priorities: {queue name: int}} (names are
looked up in `pool`; an unknown name or pool becomes a fresh random id, so it is
ignored, and two unknown names stay two keys), {op: delete_work_queue, pool, queue} and
{op: create_work_queue, pool, queue, priority}. Their answers: None (what bulk_update
returns), True/False (delete), True (create), or {"error"}. A scenario with
"track_priorities": true also gets "priority_steps": every queue's priority
({"pool/queue": int}) after the setup and after each update, in order.

Worker steps (workers_scenarios.py --heartbeats): `worker_steps`, run after the calls,
on a manual clock: pendulum.now (which Prefect's worker_heartbeat, its column defaults
and update_work_pool read) answers T0 + the sum of the `advance` steps so far. Steps:
{op: advance, seconds}, {op: worker_heartbeat, pool, worker, interval, route} (route:
through Prefect's API route, prefect_routes.worker_heartbeat_route), {op: delete_worker, pool, worker}, {op: read_workers,
pool, filter (WorkerFilter JSON whose times are ms offsets from T0), limit, offset},
{op: update_work_pool, pool, fields}, {op: delete_work_pool, pool}, {op:
create_work_pool, pool, type}. An unknown pool name is a fresh random id. Answers, in
"worker_steps": None (advance), True or {"error"} (heartbeat), a bool (deletes),
[[name, heartbeat_interval_seconds, status, last_heartbeat_time, created, updated],
...] in Prefect's order (times as ms offsets from T0), [result, status, last
transitioned ms] (update_work_pool), True (create); then "worker_pools": every pool's
{status, is_paused, transitioned_ms} at the end.
"""
import datetime
import json
import pathlib
import sys
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import prefect_sandbox as sb  # noqa: E402  (must come before any Prefect import)
from prefect_routes import worker_heartbeat_route  # noqa: E402

T0 = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
CLOCK = sb.CLOCK  # the manual clock of worker steps (None: the real one)


def at(offset):
    return None if offset is None else T0 + datetime.timedelta(seconds=offset)


def ms_at(ms):
    return T0 + datetime.timedelta(milliseconds=ms)


def ms_of(t):
    return None if t is None else round((t - T0).total_seconds() * 1000)


async def answer_file(inp, out):
    import sqlalchemy as sa
    from prefect.server import models, schemas
    from prefect.server.database import orm_models as orm
    from prefect.server.database.dependencies import provide_database_interface

    A = schemas.actions
    S = schemas.states
    db = provide_database_interface()
    await db.create_db()

    with open(inp) as f:
        scenarios = json.load(f)

    def make_state(name, offset):
        t = at(offset)
        return {
            "SCHEDULED": lambda: S.Scheduled(scheduled_time=t),
            "LATE": lambda: S.Late(scheduled_time=t),
            "PENDING": S.Pending,
            "RUNNING": S.Running,
            "COMPLETED": S.Completed,
            "CANCELLING": S.Cancelling,
            "PAUSED": S.Paused,
        }[name]()

    async def run_one(s, sc):
        # --- isolation check
        for tbl in (orm.WorkPool, orm.WorkQueue, orm.FlowRun, orm.Deployment, orm.ConcurrencyLimitV2, orm.Worker):
            n = (await s.execute(sa.select(sa.func.count()).select_from(tbl))).scalar_one()
            assert n == 0, f"{sc['id']}: table {tbl.__tablename__} not empty ({n})"

        names = {}  # id maps, rebuilt from the database after every step

        async def refresh_maps():
            s.expire_all()
            pools = (await s.execute(sa.select(orm.WorkPool))).scalars().all()
            queues = (await s.execute(sa.select(orm.WorkQueue))).scalars().all()
            pool_name = {p.id: p.name for p in pools}
            names["pool_id"] = {p.name: p.id for p in pools}
            names["queue_id"] = {(pool_name[q.work_pool_id], q.name): q.id for q in queues}
            names["queue_label"] = {q.id: (pool_name[q.work_pool_id], q.name) for q in queues}
            names["pool_name"] = pool_name
            names["priorities"] = {f"{pool_name[q.work_pool_id]}/{q.name}": q.priority for q in queues}

        async def step(coro_fn):
            try:
                async with s.begin_nested():
                    return await coro_fn()
            except Exception as exc:  # noqa: BLE001
                return {"error": type(exc).__name__}

        async def worker_step(ws):
            op = ws["op"]
            if op == "advance":
                CLOCK[0] += datetime.timedelta(seconds=ws["seconds"])
                return None
            pid = names["pool_id"].get(ws["pool"], uuid.uuid4())
            if op == "worker_heartbeat":
                async def do():
                    if ws["route"]:
                        return await worker_heartbeat_route(s, ws["pool"], ws["worker"], ws["interval"])
                    await models.workers.worker_heartbeat(s, pid, ws["worker"],
                                                          heartbeat_interval_seconds=ws["interval"])
                    return True
                r = await step(do)
                s.expunge_all()
                return r if isinstance(r, dict) else True
            if op == "delete_worker":
                return await step(lambda: models.workers.delete_worker(s, pid, ws["worker"]))
            if op == "read_workers":
                flt = ws["filter"]
                if flt is not None:
                    flt = json.loads(json.dumps(flt))
                    for key, value in flt.get("last_heartbeat_time", {}).items():
                        flt["last_heartbeat_time"][key] = ms_at(value).isoformat()
                    flt = schemas.filters.WorkerFilter.model_validate(flt)

                async def do():
                    s.expunge_all()
                    rows = await models.workers.read_workers(s, pid, worker_filter=flt, limit=ws["limit"],
                                                             offset=ws["offset"])
                    return [[w.name, w.heartbeat_interval_seconds, w.status.value, ms_of(w.last_heartbeat_time),
                             ms_of(w.created), ms_of(w.updated)] for w in rows]
                return await step(do)
            if op == "update_work_pool":
                r = await step(lambda: models.workers.update_work_pool(s, pid, A.WorkPoolUpdate(**ws["fields"])))
                s.expunge_all()
                pool = await models.workers.read_work_pool(s, pid)
                return [r if isinstance(r, dict) else bool(r), None if pool is None else pool.status.value,
                        None if pool is None else ms_of(pool.last_transitioned_status_at)]
            if op == "delete_work_pool":
                r = await step(lambda: models.workers.delete_work_pool(s, pid))
                await refresh_maps()
                return r
            if op == "create_work_pool":
                r = await step(lambda: models.workers.create_work_pool(s, A.WorkPoolCreate(name=ws["pool"],
                                                                                           type=ws["type"])))
                await refresh_maps()
                return r if isinstance(r, dict) else True
            raise SystemExit(f"unknown worker op {op}")

        setup_errors = []
        for p in sc["pools"]:
            r = await step(lambda p=p: models.workers.create_work_pool(s, A.WorkPoolCreate(
                name=p["name"], type=p.get("type", "process"),
                concurrency_limit=p["concurrency_limit"], is_paused=p["is_paused"])))
            if isinstance(r, dict):
                setup_errors.append(["pool", p["name"], r["error"]])
        await refresh_maps()
        for q in sc["queues"]:
            pid = names["pool_id"].get(q["pool"])
            r = await step(lambda q=q, pid=pid: models.workers.create_work_queue(s, pid, A.WorkQueueCreate(
                name=q["name"], priority=q["priority"], concurrency_limit=q["concurrency_limit"],
                is_paused=q["is_paused"])))
            if isinstance(r, dict):
                setup_errors.append(["queue", f"{q['pool']}/{q['name']}", r["error"]])
        await refresh_maps()
        priority_steps = [names["priorities"]]

        flow = await models.flows.create_flow(s, schemas.core.Flow(name="f"))
        dep_ids = {}
        for d in sc["deployments"]:
            async def mk(d=d):
                kw = {"name": d["name"], "flow_id": flow.id,
                      "concurrency_limit": d.get("concurrency_limit")}
                if d.get("pool") is not None:
                    kw["work_pool_name"] = d["pool"]
                if d.get("queue") is not None:
                    kw["work_queue_name"] = d["queue"]
                create = A.DeploymentCreate(**kw)
                # as the API route does: drop work_pool_name, resolve the queue id
                dd = create.model_dump(exclude={"work_pool_name"}, exclude_unset=True)
                if d.get("pool") is not None:
                    pool_id = names["pool_id"][d["pool"]]
                    qname = d.get("queue") or "default"
                    dd["work_queue_id"] = names["queue_id"][(d["pool"], qname)]
                    if d.get("queue") is None:
                        pool = await models.workers.read_work_pool(s, pool_id)
                        assert dd["work_queue_id"] == pool.default_queue_id
                return await models.deployments.create_deployment(s, schemas.core.Deployment(**dd))
            r = await step(mk)
            if isinstance(r, dict):
                setup_errors.append(["deployment", d["name"], r["error"]])
            else:
                dep_ids[d["name"]] = r.id

        for run in sc["runs"]:
            async def mk(run=run):
                qid = names["queue_id"][(run["pool"], run["queue"])]
                fr = schemas.core.FlowRun(
                    flow_id=flow.id, name=run["name"],
                    state=make_state(run["state"], run["offset_s"]),
                    work_queue_id=qid, work_queue_name=run["queue"],
                    deployment_id=dep_ids.get(run["deployment"]) if run.get("deployment") else None,
                    auto_scheduled=bool(run.get("auto_scheduled")),
                )
                return await models.flow_runs.create_flow_run(s, fr)
            r = await step(mk)
            if isinstance(r, dict):
                setup_errors.append(["run", run["name"], r["error"]])

        # --- updates
        upd_answers = []
        for u in sc["updates"]:
            op, fields = u["op"], u.get("fields")
            if op == "update_work_queue":
                async def do(u=u, fields=fields):
                    qid = names["queue_id"].get((u["pool"], u["queue"]), uuid.uuid4())
                    return await models.workers.update_work_queue(s, qid, A.WorkQueueUpdate(**fields))
            elif op == "update_work_pool":
                async def do(u=u, fields=fields):
                    pid = names["pool_id"].get(u["pool"], uuid.uuid4())
                    return await models.workers.update_work_pool(s, pid, A.WorkPoolUpdate(**fields))
            elif op == "update_deployment":
                async def do(u=u, fields=fields):
                    did = dep_ids.get(u["deployment"], uuid.uuid4())
                    return await models.deployments.update_deployment(s, did, A.DeploymentUpdate(**fields))
            elif op == "bulk_update_work_queue_priorities":
                async def do(u=u):
                    pid = names["pool_id"].get(u["pool"], uuid.uuid4())
                    new = {names["queue_id"].get((u["pool"], n), uuid.uuid4()): prio
                           for n, prio in u["priorities"].items()}
                    return await models.workers.bulk_update_work_queue_priorities(s, pid, new)
            elif op == "delete_work_queue":
                async def do(u=u):
                    qid = names["queue_id"].get((u["pool"], u["queue"]), uuid.uuid4())
                    return await models.workers.delete_work_queue(s, qid)
            elif op == "create_work_queue":
                async def do(u=u):
                    pid = names["pool_id"].get(u["pool"], uuid.uuid4())
                    return await models.workers.create_work_queue(s, pid, A.WorkQueueCreate(
                        name=u["queue"], priority=u["priority"]))
            else:
                raise SystemExit(f"unknown op {op}")
            r = await step(do)
            if op == "bulk_update_work_queue_priorities":
                upd_answers.append(r)  # None unless it raised
            else:
                upd_answers.append(r if isinstance(r, dict) else bool(r))
            await refresh_maps()
            priority_steps.append(names["priorities"])

        # --- calls
        call_answers = []
        for c in sc["calls"]:
            async def do(c=c):
                wp = c.get("work_pools")
                wq = c.get("work_queues")
                rows = await models.workers.get_scheduled_flow_runs(
                    s,
                    work_pool_ids=None if wp is None else [names["pool_id"].get(n, uuid.uuid4()) for n in wp],
                    work_queue_ids=None if wq is None else [names["queue_id"].get(tuple(x), uuid.uuid4()) for x in wq],
                    scheduled_before=at(c.get("scheduled_before_offset_s")),
                    scheduled_after=at(c.get("scheduled_after_offset_s")),
                    limit=c.get("limit"),
                    respect_queue_priorities=c.get("respect_queue_priorities"),
                )
                out_rows = []
                for r in rows:
                    pname = names["pool_name"][r.work_pool_id]
                    qp, qname = names["queue_label"][r.work_queue_id]
                    assert qp == pname
                    out_rows.append([pname, qname, r.flow_run.name])
                return out_rows
            call_answers.append(await step(do))

        # --- worker steps (on the manual clock)
        worker_answers = []
        if "worker_steps" in sc:
            CLOCK[0] = T0
            try:
                for ws in sc["worker_steps"]:
                    worker_answers.append(await worker_step(ws))
            finally:
                CLOCK[0] = None

        # --- read back
        s.expire_all()
        pools_out, queues_out, deps_out = {}, {}, {}
        for p in await models.workers.read_work_pools(s):
            pools_out[p.name] = {"status": None if p.status is None else p.status.value,
                                 "is_paused": p.is_paused, "concurrency_limit": p.concurrency_limit,
                                 "description": p.description}
            for q in await models.workers.read_work_queues(s, p.id):
                queues_out[f"{p.name}/{q.name}"] = {
                    "priority": q.priority, "status": None if q.status is None else q.status.value,
                    "is_paused": q.is_paused, "concurrency_limit": q.concurrency_limit, "name": q.name}
        for name, did in dep_ids.items():
            d = await models.deployments.read_deployment(s, did)
            if d is None:
                deps_out[name] = None
                continue
            await s.refresh(d)
            gcl = d.global_concurrency_limit
            wq = names["queue_label"].get(d.work_queue_id) if d.work_queue_id else None
            deps_out[name] = {
                "paused": d.paused,
                "concurrency_limit": d._concurrency_limit,
                "gcl": None if gcl is None else {
                    "limit": gcl.limit, "name": gcl.name.replace(str(did), name)},
                "work_queue": None if wq is None else f"{wq[0]}/{wq[1]}",
            }
        runs_left = sorted((await s.execute(sa.select(orm.FlowRun.name))).scalars().all())
        ans = {"id": sc["id"], "updates": upd_answers, "calls": call_answers,
               "pools": pools_out, "queues": queues_out, "deployments": deps_out,
               "runs_left": runs_left}
        if sc.get("track_priorities"):
            ans["priority_steps"] = priority_steps
        if setup_errors:
            ans["setup_errors"] = setup_errors
        if "worker_steps" in sc:
            ans["worker_steps"] = worker_answers
            s.expunge_all()
            ans["worker_pools"] = {
                p.name: {"status": p.status.value, "is_paused": p.is_paused,
                         "transitioned_ms": ms_of(p.last_transitioned_status_at)}
                for p in await models.workers.read_work_pools(s)}
        return ans

    sb.install_manual_clock()
    await sb.answer_each(db, scenarios, run_one, out)


if __name__ == "__main__":
    sb.answer_from_command_line(
        answer_file, "Answer work-pool scenarios with Prefect 3.1.0",
        "scenario JSON list (workers_scenarios.py format)", "answers JSON list")
