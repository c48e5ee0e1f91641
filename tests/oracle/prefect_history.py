#!/usr/bin/env python
"""Answer run-history scenarios (see history_scenarios.py) with Prefect 3.1.0's own routes.

usage: "$PREFECT_VENV/bin/python" tests/oracle/prefect_history.py IN.jsonl OUT.jsonl [--db PATH]

Each scenario's dataset (flows, work pools and queues, deployments, flow runs and task
runs with their current state) is written straight into Prefect's tables with the
scenario's ids, times and states (nothing is orchestrated) and committed; then every
query calls the API route function itself, with the arguments FastAPI would hand it:

* `flow_run_history` / `task_run_history` (prefect/server/api/flow_runs.py, task_runs.py):
  `history_start`/`history_end` parsed as the body's pendulum `DateTime` fields,
  `history_interval_seconds` as a float, each filter through its schema's validation;
* `lateness`: `average_flow_run_lateness` (the SQLite branch of the route).

Both routes open their own sessions, so after a scenario every row is deleted (the
tables are checked empty before the next one loads).

The clock. A scenario has a fixed "now" (`now_ms` after T0 = 2024-06-01T12:00Z).
Prefect reads it from SQLite, not from Python: the estimated run time of a RUNNING run
and the estimated lateness of a run not started yet use the SQL `now()` (on SQLite,
`strftime('%Y-%m-%d %H:%M:%f000', 'now')`), and the lateness route compares with
`datetime('now')`. So every connection of Prefect's engine gets application-defined
`strftime`, `datetime` and `julianday` functions (SQLite lets one replace a built-in)
that hand their arguments, 'now' replaced by the manual clock as SQLite text, to the
real function of a private in-memory SQLite connection: the values are the ones SQLite
computes itself. A self-check at start-up makes sure the replacements are the ones
called. `pendulum.now` is routed to the same clock (column defaults).

Each OUT line is {"scenario": <the input line>, "answer": {"id", "answers"}}, one answer
per query: for a history, {"start_ms", "width_ms", "count", "states": {"<k>": [[state_type,
state_name, count_runs, sum_estimated_run_time_s, sum_estimated_lateness_s], ...]}}: its
`count` intervals are [start + k * width, start + (k + 1) * width) in ms after T0
(history_scenarios.compact checks that Prefect's are; any other list would be written
as it came, [[interval_start_ms, interval_end_ms, states], ...]), and `states` lists
the intervals that have runs, their states in the order Prefect returned them (interval
bounds are whole milliseconds: SQLite's '%f'); for lateness, a number
or null; for a query that raised, {"error": "<ExceptionClassName>: <message>"} (the
message cut to 200 characters). A scenario the script cannot run at all (a problem of
the oracle, not an answer from Prefect) is named on stderr and left out, and the exit
status is 1.
"""
import datetime
import json
import pathlib
import sqlite3
import sys
import threading
import time
import traceback
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import prefect_sandbox as sb  # noqa: E402  (must come before any Prefect import)
from history_scenarios import compact  # noqa: E402  (the answers' shape; standard library only)

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CLOCK = sb.CLOCK
FILTER_KEYS = ("flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues")
MESSAGE_LIMIT = 200


def at_us(offset):
    return None if offset is None else T0 + datetime.timedelta(microseconds=offset)


def ms_of(t):
    # Interval bounds are whole milliseconds (SQLite's strftime('%f')): exact as ints.
    # (A plain datetime first: pendulum's differences do not divide by a timedelta.)
    return (datetime.datetime.fromisoformat(t.isoformat()) - T0) // datetime.timedelta(milliseconds=1)


# --- SQLite's 'now' on the manual clock --------------------------------------------------
_REAL_SQLITE = sqlite3.connect(":memory:", check_same_thread=False)
_REAL_LOCK = threading.Lock()


def sqlite_text(t: datetime.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def on_manual_clock(name: str):
    """SQL function `name`(...) evaluated by SQLite's own, 'now' being the manual clock."""
    def call(*args):
        if CLOCK[0] is not None:
            args = tuple(sqlite_text(CLOCK[0]) if isinstance(a, str) and a.strip().lower() == "now" else a
                         for a in args)
        marks = ", ".join("?" * len(args))
        with _REAL_LOCK:
            return _REAL_SQLITE.execute(f"SELECT {name}({marks})", args).fetchone()[0]
    return call


def install_manual_now(async_engine) -> None:
    import sqlalchemy as sa

    def on_connect(dbapi_connection, connection_record):
        for name in ("strftime", "datetime", "julianday"):
            dbapi_connection.create_function(name, -1, on_manual_clock(name))

    sa.event.listen(async_engine.sync_engine, "connect", on_connect)


async def check_manual_now(db) -> None:
    """The replacements really answer: SQLite's 'now' follows the manual clock."""
    import sqlalchemy as sa

    for probe in (T0 + datetime.timedelta(seconds=1234, milliseconds=567), T0 - datetime.timedelta(days=400)):
        CLOCK[0] = probe
        try:
            async with db.session_context() as s:
                got = tuple((await s.execute(sa.text(
                    "SELECT strftime('%Y-%m-%d %H:%M:%f000', 'now'), datetime('now'), julianday('NOW')"))).one())
        finally:
            CLOCK[0] = None
        text = sqlite_text(probe)
        want = _REAL_SQLITE.execute("SELECT strftime('%Y-%m-%d %H:%M:%f000', ?), datetime(?), julianday(?)",
                                    (text, text, text)).fetchone()
        if got != tuple(want):
            raise SystemExit(f"SQLite's 'now' is not the manual clock: {got} != {tuple(want)}")


# --- answering ------------------------------------------------------------------------------
async def answer_file(inp, out):
    import pydantic
    import sqlalchemy as sa
    from prefect.server.api import flow_runs as flow_run_routes
    from prefect.server.api import task_runs as task_run_routes
    from prefect.server.database import orm_models as orm
    from prefect.server.database.dependencies import provide_database_interface
    from prefect.server.schemas import filters, states
    from pydantic_extra_types.pendulum_dt import DateTime

    schemas_by_key = {
        "flows": filters.FlowFilter, "flow_runs": filters.FlowRunFilter, "task_runs": filters.TaskRunFilter,
        "deployments": filters.DeploymentFilter, "work_pools": filters.WorkPoolFilter,
        "work_pool_queues": filters.WorkQueueFilter,
    }
    body_time = pydantic.TypeAdapter(DateTime)
    db = provide_database_interface()
    install_manual_now(await db.engine())  # before the first connection is made
    await db.create_db()
    await check_manual_now(db)
    sb.install_manual_clock()

    def run_columns(r):
        """The run's columns, with those its first state's bookkeeping sets (see
        history_scenarios.py)."""
        kind, name, ts = r["state"] or (None, None, None)
        final = kind in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
        return dict(
            id=uuid.UUID(r["id"]), name=r["name"], tags=r["tags"], state_type=kind and states.StateType(kind),
            state_name=name, state_timestamp=at_us(ts), run_count=1 if kind == "RUNNING" else 0,
            expected_start_time=at_us(r["expected_us"]),
            next_scheduled_start_time=at_us(r["expected_us"]) if kind == "SCHEDULED" else None,
            start_time=at_us(r["start_us"]), end_time=at_us(ts) if final and r["start_us"] is not None else None,
            total_run_time=datetime.timedelta(microseconds=r["total_us"]))

    def state_row(cls, owner, r):
        kind, name, ts = r["state"]
        details = {"scheduled_time": at_us(r["expected_us"])} if kind == "SCHEDULED" else {}
        return cls(id=uuid.uuid4(), **{owner: uuid.UUID(r["id"])}, type=states.StateType(kind), name=name,
                   timestamp=at_us(ts), state_details=states.StateDetails(**details))

    async def load(sc):
        async with db.session_context(begin_transaction=True) as s:
            flows = {f["name"]: orm.Flow(id=uuid.uuid4(), name=f["name"], tags=f["tags"]) for f in sc["flows"]}
            s.add_all(flows.values())
            await s.flush()
            pools = {p["name"]: orm.WorkPool(id=uuid.uuid4(), name=p["name"], type=p["type"]) for p in sc["pools"]}
            s.add_all(pools.values())
            await s.flush()
            queues = {}
            for pool in sc["pools"]:
                queues[f"{pool['name']}/default"] = orm.WorkQueue(
                    id=uuid.uuid4(), name="default", work_pool_id=pools[pool["name"]].id, priority=1)
            for i, q in enumerate(sc["queues"], 2):
                queues[f"{q['pool']}/{q['name']}"] = orm.WorkQueue(
                    id=uuid.uuid4(), name=q["name"], work_pool_id=pools[q["pool"]].id, priority=i)
            s.add_all(queues.values())
            await s.flush()
            for name, pool in pools.items():
                pool.default_queue_id = queues[f"{name}/default"].id
            deployments = {}
            for d in sc["deployments"]:
                queue = queues.get(d["queue"]) if d["queue"] else None
                deployments[d["name"]] = orm.Deployment(
                    id=uuid.uuid4(), name=d["name"], flow_id=flows[d["flow"]].id, tags=d["tags"], paused=d["paused"],
                    work_queue_name=None if queue is None else queue.name,
                    work_queue_id=None if queue is None else queue.id)
            s.add_all(deployments.values())
            await s.flush()
            for r in sc["flow_runs"]:
                queue = queues[r["queue"]] if r["queue"] else None
                s.add(orm.FlowRun(**run_columns(r), flow_id=flows[r["flow"]].id,
                                  deployment_id=deployments[r["deployment"]].id if r["deployment"] else None,
                                  work_queue_id=None if queue is None else queue.id,
                                  work_queue_name=None if queue is None else queue.name))
            await s.flush()
            for r in sc["task_runs"]:
                s.add(orm.TaskRun(**run_columns(r), flow_run_id=uuid.UUID(r["flow_run"]) if r["flow_run"] else None,
                                  task_key=r["task_key"], dynamic_key=r["dynamic_key"]))
            await s.flush()
            for runs, cls, owner, model in ((sc["flow_runs"], orm.FlowRunState, "flow_run_id", orm.FlowRun),
                                            (sc["task_runs"], orm.TaskRunState, "task_run_id", orm.TaskRun)):
                stated = [r for r in runs if r["state"] is not None]
                rows = [state_row(cls, owner, r) for r in stated]
                s.add_all(rows)
                await s.flush()
                for r, row in zip(stated, rows):
                    await s.execute(sa.update(model).where(model.id == uuid.UUID(r["id"])).values(state_id=row.id))

    def history_answer(rows):
        intervals = [[ms_of(h.interval_start), ms_of(h.interval_end),
                      [[st.state_type.value, st.state_name, st.count_runs, st.sum_estimated_run_time.total_seconds(),
                        st.sum_estimated_lateness.total_seconds()] for st in h.states]]
                     for h in rows]
        return compact(intervals)

    async def call_route(q):
        """The route's return value (a list of HistoryResponse, a number or None)."""
        filter_args = {k: schemas_by_key[k].model_validate(v) for k, v in (q.get("filters") or {}).items()}
        unknown = set(filter_args) - set(FILTER_KEYS)
        if unknown:
            raise SystemExit(f"unknown filter keys {sorted(unknown)}")
        if q["op"] == "lateness":
            return await flow_run_routes.average_flow_run_lateness(
                flows=filter_args.get("flows"), flow_runs=filter_args.get("flow_runs"),
                task_runs=filter_args.get("task_runs"), deployments=filter_args.get("deployments"),
                work_pools=filter_args.get("work_pools"), work_pool_queues=filter_args.get("work_pool_queues"),
                db=db)
        args = dict(history_start=body_time.validate_python(q["history_start"]),
                    history_end=body_time.validate_python(q["history_end"]),
                    history_interval=float(q["history_interval_seconds"]),
                    flows=filter_args.get("flows"), flow_runs=filter_args.get("flow_runs"),
                    task_runs=filter_args.get("task_runs"), deployments=filter_args.get("deployments"), db=db)
        if q["op"] == "flow_run_history":
            return await flow_run_routes.flow_run_history(
                **args, work_pools=filter_args.get("work_pools"), work_queues=filter_args.get("work_pool_queues"))
        if q["op"] == "task_run_history":
            if "work_pools" in filter_args or "work_pool_queues" in filter_args:
                raise SystemExit("task_run_history takes no work pool or queue filter")
            return await task_run_routes.task_run_history(**args)
        raise SystemExit(f"unknown op {q['op']!r}")

    async def answer(q):
        if q["op"] not in ("lateness", "flow_run_history", "task_run_history"):
            raise SystemExit(f"unknown op {q['op']!r}")
        try:
            result = await call_route(q)
        except SystemExit:
            raise
        except Exception as exc:  # noqa: BLE001  (an error is Prefect's answer too)
            detail = getattr(exc, "detail", None) or str(exc)
            return {"error": f"{type(exc).__name__}: {detail}"[:MESSAGE_LIMIT]}
        return result if q["op"] == "lateness" else history_answer(result)

    async def run_one(sc):
        async with db.session_context() as s:
            for tbl in (orm.Flow, orm.WorkPool, orm.WorkQueue, orm.Deployment, orm.FlowRun, orm.TaskRun,
                        orm.FlowRunState, orm.TaskRunState):
                n = (await s.execute(sa.select(sa.func.count()).select_from(tbl))).scalar_one()
                assert n == 0, f"table {tbl.__tablename__} not empty ({n})"
        CLOCK[0] = T0 + datetime.timedelta(milliseconds=sc["now_ms"])
        await load(sc)
        return {"id": sc["id"], "answers": [await answer(q) for q in sc["queries"]]}

    async def wipe():
        CLOCK[0] = None
        async with db.session_context(begin_transaction=True) as s:
            # work_pool and work_queue point at each other: check keys at COMMIT only.
            await s.execute(sa.text("PRAGMA defer_foreign_keys = ON"))
            for table in reversed(orm.Base.metadata.sorted_tables):
                await s.execute(table.delete())

    with open(inp) as f:
        scenarios = [json.loads(line) for line in f if line.strip()]
    lines, failed = [], []
    started = time.perf_counter()
    for i, sc in enumerate(scenarios, 1):
        try:
            result = await run_one(sc)
        except SystemExit:
            raise
        except Exception:  # noqa: BLE001  (the oracle's own problem: report and skip)
            failed.append(sc.get("id"))
            print(f"scenario {sc.get('id')} could not be run:\n{traceback.format_exc()}", file=sys.stderr)
        else:
            lines.append(json.dumps({"scenario": sc, "answer": result}, separators=(",", ":")))
        finally:
            await wipe()
        if i % 100 == 0:
            print(f"{i} scenarios ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
    with open(out, "w") as f:
        f.writelines(line + "\n" for line in lines)
    print(f"{len(lines)} scenarios answered in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(sb.answer_from_command_line(
        answer_file, "Answer run-history scenarios with Prefect 3.1.0",
        "scenario JSON lines (history_scenarios.py format)", "JSON lines {scenario, answer}"))
