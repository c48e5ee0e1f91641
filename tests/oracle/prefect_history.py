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

It also answers ui_scenarios.py's queries, calling the UI's route functions:
`read_flow_run_history` (prefect/server/api/ui/flow_runs.py; `limit` and `offset`
checked first as FastAPI checks the body, `le=1000` and `ge=0`) and
`read_dashboard_task_run_counts` (ui/task_runs.py; its 422 is an error answer).

And graph_scenarios.py's queries (op "graph"): the subflows are made through
`models.flow_runs.create_flow_run` after the rest is loaded, then the SQLite
`flow_run_graph_v2` query is called with the query's `max_nodes` and `since` (parsed as
the graph-v2 route's datetime query parameter; `datetime.min` if null). The answer is
{"start_us", "end_us", "roots": [id, ...], "nodes": [[id, kind, label, state_type,
start_us, end_us, parents, children, encapsulating], ...] (each edge list sorted),
"states": [[type, name, timestamp_us], ...]}.

Each OUT line is {"scenario": <the input line>, "answer": {"id", "answers"}}, one answer
per query: for a scatter plot, [[id, state_type, timestamp_us, duration_us, lateness_us], ...]
(timestamp in us after T0, or null); for a dashboard, [[completed, failed], ...] (20
buckets); for a history, {"start_ms", "width_ms", "count", "states": {"<k>": [[state_type,
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
import inspect
import pathlib
import sys
import uuid
from typing import Annotated

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import prefect_sandbox as sb  # noqa: E402  (must come before any Prefect import)
from history_scenarios import compact  # noqa: E402  (the answers' shape; standard library only)
from graph_scenarios import graph_answer  # noqa: E402  (likewise)
import sqlite_now  # noqa: E402

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CLOCK = sb.CLOCK
MESSAGE_LIMIT = 200
NOW_FUNCTIONS = ("strftime", "datetime", "julianday")  # what Prefect's queries here read 'now' with


def at_us(offset):
    return None if offset is None else T0 + datetime.timedelta(microseconds=offset)


def ms_of(t):
    # Interval bounds are whole milliseconds (SQLite's strftime('%f')): exact as ints.
    # (A plain datetime first: pendulum's differences do not divide by a timedelta.)
    return (datetime.datetime.fromisoformat(t.isoformat()) - T0) // datetime.timedelta(milliseconds=1)


def us_of(value):
    """A time as us after T0, or a timedelta as us (exact ints)."""
    if isinstance(value, datetime.timedelta):  # (timedelta's own division: pendulum's fails)
        return datetime.timedelta.__floordiv__(value, datetime.timedelta(microseconds=1))
    return (datetime.datetime.fromisoformat(value.isoformat()) - T0) // datetime.timedelta(microseconds=1)


# --- answering ------------------------------------------------------------------------------
async def answer_file(inp, out):
    import pydantic
    import sqlalchemy as sa
    from prefect.server.api import flow_runs as flow_run_routes
    from prefect.server.api import task_runs as task_run_routes
    from prefect.server.api.ui import flow_runs as ui_flow_run_routes
    from prefect.server.api.ui import task_runs as ui_task_run_routes
    from prefect.server.database import orm_models as orm
    from prefect.server.database.dependencies import provide_database_interface
    from prefect.server import models, schemas
    from prefect.server.schemas import filters, sorting, states
    from pydantic_extra_types.pendulum_dt import DateTime

    schemas_by_key = {
        "flows": filters.FlowFilter, "flow_runs": filters.FlowRunFilter, "task_runs": filters.TaskRunFilter,
        "deployments": filters.DeploymentFilter, "work_pools": filters.WorkPoolFilter,
        "work_pool_queues": filters.WorkQueueFilter, "work_queues": filters.WorkQueueFilter,
    }
    # The UI routes' body checks, as FastAPI makes them before calling the function.
    body_checks = {"limit": pydantic.TypeAdapter(Annotated[int, pydantic.Field(le=1000)]),
                   "offset": pydantic.TypeAdapter(Annotated[int, pydantic.Field(ge=0)])}
    # What FastAPI passes for a key the body leaves out (the function's own defaults
    # are FastAPI's Body markers).
    scatter_defaults = {name: param.default.default for name, param in
                        inspect.signature(ui_flow_run_routes.read_flow_run_history).parameters.items()
                        if name in ("sort", "limit", "offset")}
    body_time = pydantic.TypeAdapter(DateTime)
    graph_since = pydantic.TypeAdapter(datetime.datetime)   # the graph-v2 route's `since` query parameter
    db = provide_database_interface()
    sqlite_now.install(await db.engine(), NOW_FUNCTIONS)  # before the first connection is made
    await db.create_db()
    await sqlite_now.check(db, NOW_FUNCTIONS, T0)
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

    flow_ids = {}   # the scenario's flows by name, once loaded

    async def load(sc):
        async with db.session_context(begin_transaction=True) as s:
            flows = {f["name"]: orm.Flow(id=uuid.uuid4(), name=f["name"], tags=f["tags"]) for f in sc["flows"]}
            s.add_all(flows.values())
            flow_ids.clear()
            flow_ids.update((name, flow.id) for name, flow in flows.items())
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
            top_level = [r for r in sc["flow_runs"] if not r.get("parent_task_run")]
            for r in top_level:
                queue = queues[r["queue"]] if r["queue"] else None
                s.add(orm.FlowRun(**run_columns(r), flow_id=flows[r["flow"]].id,
                                  deployment_id=deployments[r["deployment"]].id if r["deployment"] else None,
                                  work_queue_id=None if queue is None else queue.id,
                                  work_queue_name=None if queue is None else queue.name))
            await s.flush()
            for r in sc["task_runs"]:
                s.add(orm.TaskRun(**run_columns(r), flow_run_id=uuid.UUID(r["flow_run"]) if r["flow_run"] else None,
                                  task_key=r["task_key"], dynamic_key=r["dynamic_key"],
                                  task_inputs=r.get("task_inputs", {})))
            await s.flush()
            for runs, cls, owner, model in ((top_level, orm.FlowRunState, "flow_run_id", orm.FlowRun),
                                            (sc["task_runs"], orm.TaskRunState, "task_run_id", orm.TaskRun)):
                stated = [r for r in runs if r["state"] is not None]
                rows = [state_row(cls, owner, r) for r in stated]
                s.add_all(rows)
                await s.flush()
                for r, row in zip(stated, rows):
                    await s.execute(sa.update(model).where(model.id == uuid.UUID(r["id"])).values(state_id=row.id))

    async def create_subflows(sc):
        """graph_scenarios.py's subflows, through models.flow_runs.create_flow_run as the
        replay makes them (forced: a state is mirrored onto the parent task run)."""
        for r in sc["flow_runs"]:
            if not r.get("parent_task_run"):
                continue
            fields = dict(id=uuid.UUID(r["id"]), name=r["name"], tags=r["tags"], start_time=at_us(r["start_us"]),
                          total_run_time=datetime.timedelta(microseconds=r["total_us"]),
                          flow_id=flow_ids[r["flow"]], parent_task_run_id=uuid.UUID(r["parent_task_run"]))
            if r["expected_us"] is not None:
                fields["expected_start_time"] = at_us(r["expected_us"])
            if r["state"] is not None:
                kind, name, ts = r["state"]
                details = {"scheduled_time": at_us(r["expected_us"])} if kind == "SCHEDULED" else {}
                fields["state"] = states.State(type=states.StateType(kind), name=name, timestamp=at_us(ts),
                                               state_details=states.StateDetails(**details))
            async with db.session_context(begin_transaction=True) as s:
                await models.flow_runs.create_flow_run(s, schemas.core.FlowRun(**fields))

    async def call_route(q):
        """The route's return value (a list of HistoryResponse, a number or None)."""
        unknown = set(q.get("filters") or {}) - set(schemas_by_key)
        if unknown:   # the scenario's mistake, not an answer of Prefect's
            raise SystemExit(f"unknown filter keys {sorted(unknown)}")
        filter_args = {k: schemas_by_key[k].model_validate(v) for k, v in (q.get("filters") or {}).items()}
        if q["op"] == "ui_flow_run_history":
            body = {key: check.validate_python(q[key]) if key in q else scatter_defaults[key]
                    for key, check in body_checks.items()}
            body["sort"] = sorting.FlowRunSort(q["sort"]) if "sort" in q else scatter_defaults["sort"]
            return await ui_flow_run_routes.read_flow_run_history(
                **body, flows=filter_args.get("flows"), flow_runs=filter_args.get("flow_runs"),
                task_runs=filter_args.get("task_runs"), deployments=filter_args.get("deployments"),
                work_pools=filter_args.get("work_pools"), db=db)
        if q["op"] == "dashboard_counts":
            return await ui_task_run_routes.read_dashboard_task_run_counts(
                task_runs=filter_args["task_runs"], flows=filter_args.get("flows"),
                flow_runs=filter_args.get("flow_runs"), deployments=filter_args.get("deployments"),
                work_pools=filter_args.get("work_pools"), work_queues=filter_args.get("work_queues"), db=db)
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

    async def graph(q):
        """models.flow_runs.read_flow_run_graph's query with the scenario's max_nodes, and
        `since` as the graph-v2 route parses its query parameter (datetime.min if absent)."""
        since = datetime.datetime.min if q["since"] is None else graph_since.validate_python(q["since"])
        async with db.session_context() as session:
            return await db.queries.flow_run_graph_v2(session=session, flow_run_id=uuid.UUID(q["flow_run"]),
                                                      since=since, max_nodes=q["max_nodes"], max_artifacts=10000)

    def us_or_none(t):
        return None if t is None else us_of(t)

    async def answer(q):
        if q["op"] not in ("lateness", "flow_run_history", "task_run_history", "ui_flow_run_history",
                           "dashboard_counts", "graph"):
            raise SystemExit(f"unknown op {q['op']!r}")
        try:
            result = await (graph(q) if q["op"] == "graph" else call_route(q))
        except SystemExit:
            raise
        except Exception as exc:  # noqa: BLE001  (an error is Prefect's answer too)
            detail = getattr(exc, "detail", None) or str(exc)
            return {"error": f"{type(exc).__name__}: {detail}"[:MESSAGE_LIMIT]}
        if q["op"] == "ui_flow_run_history":
            return [[str(r.id), r.state_type.value, us_of(r.timestamp), us_of(r.duration), us_of(r.lateness)]
                    for r in result]
        if q["op"] == "dashboard_counts":
            return [[int(b.completed), int(b.failed)] for b in result]
        if q["op"] == "graph":
            return graph_answer(result, us_or_none)
        return result if q["op"] == "lateness" else compact(result, ms_of)

    async def run_one(sc):
        await sb.assert_empty(db, orm.Flow, orm.WorkPool, orm.WorkQueue, orm.Deployment, orm.FlowRun, orm.TaskRun,
                              orm.FlowRunState, orm.TaskRunState)
        CLOCK[0] = T0 + datetime.timedelta(milliseconds=sc["now_ms"])
        await load(sc)
        await create_subflows(sc)
        return {"id": sc["id"], "answers": [await answer(q) for q in sc["queries"]]}

    async def wipe():
        CLOCK[0] = None
        await sb.delete_all_rows(db)

    return await sb.answer_lines(inp, out, run_one, wipe)


if __name__ == "__main__":
    sys.exit(sb.answer_from_command_line(
        answer_file, "Answer run-history scenarios with Prefect 3.1.0",
        "scenario JSON lines (history_scenarios.py format)", "JSON lines {scenario, answer}"))
