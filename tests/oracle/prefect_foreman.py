#!/usr/bin/env python
"""Answer foreman scenarios (see foreman_scenarios.py) with Prefect 3.1.0's own server code.

usage: "$PREFECT_VENV/bin/python" tests/oracle/prefect_foreman.py IN.jsonl OUT.jsonl [--db PATH]

Setup and steps call Prefect's models functions (models.workers, models.work_queues,
models.deployments) the way its API routes do, and a `foreman` step runs the real
service pass, `Foreman(...).run_once()`, with the constructor arguments the step names
(the others None: Prefect's settings, i.e. their defaults). The foreman and the
`mark_*` functions open their own sessions and commit, so scenarios cannot live in a
rolled-back transaction here: every step commits, and after each scenario every row
of every table is deleted (checked: the tables are empty when a scenario starts).

The clock. Every scenario runs on a manual clock, T0 = 2024-06-01T12:00Z plus the
`advance` steps so far:

* `pendulum.now` (heartbeat times, poll times, the foreman's polling thresholds,
  status transition times, column defaults) is routed to it by prefect_sandbox;
* SQLite's `julianday('now')`, which the foreman's worker step compares heartbeats
  with in raw SQL, is routed to it too: every new connection of Prefect's engine gets
  an application-defined `julianday` (SQLite lets one replace a built-in function).
  It hands its argument, or for 'now' the manual clock written as SQLite's text
  timestamp, to the real julianday of a private in-memory SQLite connection, so the
  value is the one SQLite would compute itself (whole milliseconds divided by
  86,400,000.0). A self-check at start-up makes sure the replacement is the one used,
  and the focused scenarios "fm-virtual-*" would fail without it (T0 is long past).

Events. update_work_pool's status callback, mark_work_queues_(not_)ready and
mark_deployments_(not_)ready emit events through PrefectServerEventsClient, which
publishes to Prefect's in-memory messaging broker; with no subscriber, nothing needs
a server, so nothing is patched.

Each OUT line is {"scenario": <the input line>, "answer": {"id", "steps"}}, one answer
per step: null (advance, poll, the marks), true (heartbeat), a bool (pause/unpause,
delete_worker: what the models function returned), {"error": "<ExceptionClassName>"}
for a step that raised (rolled back alone), and for a foreman step the state after
the pass:

    {"workers": [[pool, name, status, last_heartbeat_ms, heartbeat_interval_seconds], ...]
                 (sorted by pool and name),
     "pools": {name: [status, is_paused, event, last_transitioned_status_ms]},
     "queues": {"pool/queue": [status, is_paused, last_polled_ms]},
     "deployments": {name: [status, last_polled_ms]}}

Times are ms offsets from T0 (null for none). `event` labels a pool's
last_status_event_id: null, or the number of distinct event ids seen in the scenario's
reads when this one was first seen (pools read in name order), so an event id that
changed between two reads gets a new number. Progress goes to stderr every 200
scenarios; a scenario the script cannot run at all (a problem of the oracle, not an
answer from Prefect) is named on stderr and left out, and the exit status is 1.
"""
import datetime
import pathlib
import sys
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import prefect_sandbox as sb  # noqa: E402  (must come before any Prefect import)
from prefect_routes import worker_heartbeat_route  # noqa: E402
import sqlite_now  # noqa: E402

T0 = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
CLOCK = sb.CLOCK
SETTINGS = ("inactivity_heartbeat_multiple", "fallback_heartbeat_interval_seconds",
            "deployment_last_polled_timeout_seconds", "work_queue_last_polled_timeout_seconds")


def ms_of(t):
    return None if t is None else round((t - T0).total_seconds() * 1000)


# --- answering --------------------------------------------------------------------------
async def answer_file(inp, out):
    import sqlalchemy as sa
    from prefect.server import models, schemas
    from prefect.server.database import orm_models as orm
    from prefect.server.database.dependencies import provide_database_interface
    from prefect.server.models.workers import emit_work_pool_status_event
    from prefect.server.services.foreman import Foreman

    A = schemas.actions
    db = provide_database_interface()
    sqlite_now.install(await db.engine(), ("julianday",))  # before the first connection is made
    await db.create_db()
    await sqlite_now.check(db, ("julianday",), T0)
    sb.install_manual_clock()

    def value(enum_or_none):
        return None if enum_or_none is None else enum_or_none.value

    async def committed(fn):
        """fn(session) in a transaction of its own, committed; an error is the answer."""
        try:
            async with db.session_context(begin_transaction=True) as s:
                return await fn(s)
        except Exception as exc:  # noqa: BLE001
            return {"error": type(exc).__name__}

    async def catching(coro_fn):
        try:
            return await coro_fn()
        except Exception as exc:  # noqa: BLE001
            return {"error": type(exc).__name__}

    async def run_one(sc):
        await sb.assert_empty(db, orm.WorkPool, orm.WorkQueue, orm.Worker, orm.Deployment, orm.Flow)

        # --- setup, at T0
        async def setup(s):
            for p in sc["pools"]:
                await models.workers.create_work_pool(s, A.WorkPoolCreate(
                    name=p["name"], type=p["type"], is_paused=p["is_paused"]))
            pool_ids = {p.name: p.id for p in await models.workers.read_work_pools(s)}
            for q in sc["queues"]:
                await models.workers.create_work_queue(s, pool_ids[q["pool"]], A.WorkQueueCreate(
                    name=q["name"], is_paused=q["is_paused"]))
            queue_ids = {}
            for name, pid in pool_ids.items():
                for q in await models.workers.read_work_queues(s, pid):
                    queue_ids[f"{name}/{q.name}"] = q.id
            flow = await models.flows.create_flow(s, schemas.core.Flow(name="f"))
            dep_ids = {}
            for d in sc["deployments"]:
                fields = {"name": d["name"], "flow_id": flow.id}
                if d["queue"] is not None:
                    fields["work_queue_id"] = queue_ids[d["queue"]]
                dep = await models.deployments.create_deployment(s, schemas.core.Deployment(**fields))
                dep_ids[d["name"]] = dep.id
            return pool_ids, queue_ids, dep_ids

        pool_ids, queue_ids, dep_ids = await setup_result(setup)

        def pool_id(name):
            return pool_ids.get(name) or uuid.uuid4()

        def queue_id(label):
            return queue_ids.get(label) or uuid.uuid4()

        def dep_id(name):
            return dep_ids.get(name) or uuid.uuid4()

        events = {}  # last_status_event_id -> label

        async def snapshot():
            async with db.session_context() as s:
                pools = sorted((await s.execute(sa.select(orm.WorkPool))).scalars().all(), key=lambda p: p.name)
                pool_name = {p.id: p.name for p in pools}
                workers = (await s.execute(sa.select(orm.Worker))).scalars().all()
                queues = (await s.execute(sa.select(orm.WorkQueue))).scalars().all()
                deps = (await s.execute(sa.select(orm.Deployment))).scalars().all()
                pools_out = {}
                for p in pools:
                    event = p.last_status_event_id
                    if event is not None and event not in events:
                        events[event] = len(events) + 1
                    pools_out[p.name] = [value(p.status), p.is_paused, None if event is None else events[event],
                                         ms_of(p.last_transitioned_status_at)]
                return {
                    "workers": sorted([pool_name[w.work_pool_id], w.name, value(w.status),
                                       ms_of(w.last_heartbeat_time), w.heartbeat_interval_seconds]
                                      for w in workers),
                    "pools": pools_out,
                    "queues": {f"{pool_name[q.work_pool_id]}/{q.name}": [value(q.status), q.is_paused,
                                                                         ms_of(q.last_polled)]
                               for q in sorted(queues, key=lambda q: (pool_name[q.work_pool_id], q.name))},
                    "deployments": {d.name: [value(d.status), ms_of(d.last_polled)]
                                    for d in sorted(deps, key=lambda d: d.name)},
                }

        async def step(st):
            op = st["op"]
            if op == "advance":
                CLOCK[0] += datetime.timedelta(milliseconds=st["ms"])
                return None
            if op == "heartbeat":
                pid = pool_id(st["pool"])

                async def beat(s):
                    # The API route with the flag; the models function alone without it.
                    if st["mark_pool_ready"]:
                        return await worker_heartbeat_route(s, st["pool"], st["worker"], st["interval"])
                    await models.workers.worker_heartbeat(s, pid, st["worker"],
                                                          heartbeat_interval_seconds=st["interval"])
                    return True
                return await committed(beat)
            if op == "poll":
                async def read(s):
                    if st["queues"] is None:
                        return list(await models.workers.read_work_queues(s, pool_id(st["pool"])))
                    found = [await models.workers.read_work_queue_by_name(s, st["pool"], n) for n in st["queues"]]
                    if None in found:
                        raise LookupError("work queue not found")  # the route's 404
                    return found
                queues = await committed(read)
                if isinstance(queues, dict):
                    return queues

                async def marks():
                    await models.work_queues.mark_work_queues_ready(
                        polled_work_queue_ids=[q.id for q in queues
                                               if q.status != schemas.statuses.WorkQueueStatus.NOT_READY],
                        ready_work_queue_ids=[q.id for q in queues
                                              if q.status == schemas.statuses.WorkQueueStatus.NOT_READY])
                    await models.deployments.mark_deployments_ready(work_queue_ids=[q.id for q in queues])
                return await catching(marks)
            if op == "mark_work_queues_ready":
                return await catching(lambda: models.work_queues.mark_work_queues_ready(
                    polled_work_queue_ids=[queue_id(lab) for lab in st["polled"]],
                    ready_work_queue_ids=[queue_id(lab) for lab in st["ready"]]))
            if op == "mark_work_queues_not_ready":
                return await catching(lambda: models.work_queues.mark_work_queues_not_ready(
                    work_queue_ids=[queue_id(lab) for lab in st["queues"]]))
            if op == "mark_deployments_ready":
                return await catching(lambda: models.deployments.mark_deployments_ready(
                    deployment_ids=None if st["deployments"] is None else [dep_id(n) for n in st["deployments"]],
                    work_queue_ids=None if st["queues"] is None else [queue_id(lab) for lab in st["queues"]]))
            if op in ("pause_pool", "unpause_pool"):
                return await committed(lambda s: models.workers.update_work_pool(
                    s, pool_id(st["pool"]), A.WorkPoolUpdate(is_paused=op == "pause_pool"),
                    emit_status_change=emit_work_pool_status_event))
            if op in ("pause_queue", "unpause_queue"):
                return await committed(lambda s: models.workers.update_work_queue(
                    s, queue_id(st["queue"]), A.WorkQueueUpdate(is_paused=op == "pause_queue")))
            if op == "delete_worker":
                return await committed(lambda s: models.workers.delete_worker(s, pool_id(st["pool"]), st["worker"]))
            if op == "foreman":
                unknown = set(st["settings"]) - set(SETTINGS)
                if unknown:
                    raise SystemExit(f"unknown foreman settings {sorted(unknown)}")
                result = await catching(lambda: Foreman(**{k: st["settings"].get(k) for k in SETTINGS}).run_once())
                return result if isinstance(result, dict) else await snapshot()
            raise SystemExit(f"unknown op {op}")

        answers = []
        for st in sc["steps"]:
            answers.append(await step(st))
        return {"id": sc["id"], "steps": answers}

    async def setup_result(setup):
        async with db.session_context(begin_transaction=True) as s:
            return await setup(s)

    async def wipe():
        CLOCK[0] = None
        await sb.delete_all_rows(db)

    def at_t0():
        CLOCK[0] = T0

    return await sb.answer_lines(inp, out, run_one, wipe, before_each=at_t0, report_every=200)


if __name__ == "__main__":
    sys.exit(sb.answer_from_command_line(
        answer_file, "Answer foreman scenarios with Prefect 3.1.0",
        "scenario JSON lines (foreman_scenarios.py format)", "JSON lines {scenario, answer}"))
