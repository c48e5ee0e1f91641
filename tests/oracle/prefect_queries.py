"""Answer query cases with Prefect 3.1.0's own models layer (conformance README §2).

    python prefect_queries.py IN.jsonl OUT.jsonl [--db PATH]

IN is a query corpus: line 1 is the `{"dataset": ...}` record, every other line a case
(`id`, `op`, `request`; an `expected` already there is ignored). OUT gets the same
dataset line, then each case with `expected` replaced by what Prefect returned.

The dataset is written straight into Prefect's tables with its recorded ids, times and
current states (nothing is re-orchestrated), then every case calls the models function
its `op` names. Runs only in a venv with Prefect 3.1.0 installed (see README.md).
"""
from __future__ import annotations

import datetime as dt
import json
import uuid

import prefect_sandbox  # first: it prepares the environment Prefect reads on import

import pendulum
import sqlalchemy as sa
from prefect.server import models, schemas
from prefect.server.database.dependencies import provide_database_interface
from prefect.server.schemas import filters, sorting
from prefect.server.schemas.states import StateType

# request key -> (keyword argument of the models functions, Prefect filter schema)
FILTERS = {
    "flows": ("flow_filter", filters.FlowFilter),
    "flow_runs": ("flow_run_filter", filters.FlowRunFilter),
    "task_runs": ("task_run_filter", filters.TaskRunFilter),
    "deployments": ("deployment_filter", filters.DeploymentFilter),
    "work_pools": ("work_pool_filter", filters.WorkPoolFilter),
    "work_pool_queues": ("work_queue_filter", filters.WorkQueueFilter),
}

# Error messages are cut to this length in `expected.error.message`.
MESSAGE_LIMIT = 300


def as_time(text):
    return None if text is None else pendulum.parse(text)


def as_uuid(text):
    return None if text is None else uuid.UUID(text)


def iso(value):
    return None if value is None else pendulum.instance(value).in_tz("UTC").isoformat()


# --- loading the dataset -------------------------------------------------------------------

def run_columns(rec: dict) -> dict:
    """Columns flow runs and task runs share, taken verbatim from the dataset record."""
    return dict(
        id=as_uuid(rec["id"]), name=rec["name"], tags=rec["tags"],
        state_type=None if rec["state_type"] is None else StateType(rec["state_type"]),
        state_name=rec["state_name"], state_timestamp=as_time(rec["state_timestamp"]),
        run_count=rec["run_count"], expected_start_time=as_time(rec["expected_start_time"]),
        next_scheduled_start_time=as_time(rec["next_scheduled_start_time"]),
        start_time=as_time(rec["start_time"]), end_time=as_time(rec["end_time"]),
        total_run_time=dt.timedelta(seconds=rec["total_run_time_s"]))


def state_row(state_cls, owner_column: str, run: dict):
    """The run's current state as a state row (None when the run has no state)."""
    spec = run["state"]
    if spec is None:
        return None
    details = {k: v for k, v in spec["state_details"].items() if v is not None}
    for key in ("scheduled_time", "pause_timeout"):
        if key in details:
            details[key] = as_time(details[key])
    return state_cls(id=as_uuid(spec["id"]), **{owner_column: as_uuid(run["id"])},
                     type=StateType(spec["type"]), name=spec["name"], timestamp=as_time(spec["timestamp"]),
                     message=spec["message"], state_details=schemas.states.StateDetails(**details))


async def load_dataset(db, ds: dict) -> None:
    """Insert the dataset's rows as they are, in foreign-key order (one flush per table)."""
    async with db.session_context(begin_transaction=True) as s:
        s.add_all(db.Flow(id=as_uuid(f["id"]), name=f["name"], tags=f["tags"]) for f in ds["flows"])
        await s.flush()
        s.add_all(db.WorkPool(id=as_uuid(p["id"]), name=p["name"], type=p["type"], is_paused=p["is_paused"])
                  for p in ds["work_pools"])
        await s.flush()
        s.add_all(db.WorkQueue(id=as_uuid(q["id"]), name=q["name"], work_pool_id=as_uuid(q["work_pool_id"]),
                               priority=q["priority"]) for q in ds["work_queues"])
        await s.flush()
        s.add_all(db.Deployment(id=as_uuid(d["id"]), name=d["name"], flow_id=as_uuid(d["flow_id"]), tags=d["tags"],
                                paused=d["paused"], work_queue_name=d["work_queue_name"],
                                work_queue_id=as_uuid(d["work_queue_id"])) for d in ds["deployments"])
        await s.flush()
        s.add_all(db.FlowRun(**run_columns(r), flow_id=as_uuid(r["flow_id"]), deployment_id=as_uuid(r["deployment_id"]),
                             work_queue_id=as_uuid(r["work_queue_id"]), work_queue_name=r["work_queue_name"],
                             flow_version=r["flow_version"], idempotency_key=r["idempotency_key"])
                  for r in ds["flow_runs"])
        await s.flush()
        s.add_all(db.TaskRun(**run_columns(r), flow_run_id=as_uuid(r["flow_run_id"]), task_key=r["task_key"],
                             dynamic_key=r["dynamic_key"], cache_key=r["cache_key"],
                             flow_run_run_count=r["flow_run_run_count"], task_inputs=r["task_inputs"])
                  for r in ds["task_runs"])
        await s.flush()
        for runs, state_cls, owner in ((ds["flow_runs"], db.FlowRunState, "flow_run_id"),
                                       (ds["task_runs"], db.TaskRunState, "task_run_id")):
            s.add_all(row for row in (state_row(state_cls, owner, r) for r in runs) if row is not None)
        await s.flush()
        # Links that point at rows created later (a subflow's parent task run, each run's
        # current state) are set once everything exists.
        for r in ds["flow_runs"]:
            await s.execute(sa.update(db.FlowRun).where(db.FlowRun.id == as_uuid(r["id"])).values(
                parent_task_run_id=as_uuid(r["parent_task_run_id"]), state_id=as_uuid(r["state_id"])))
        for r in ds["task_runs"]:
            await s.execute(sa.update(db.TaskRun).where(db.TaskRun.id == as_uuid(r["id"])).values(
                state_id=as_uuid(r["state_id"])))


# --- answering cases -----------------------------------------------------------------------

def sort_key_text(run, sort: str):
    """The value a run is ordered by under `sort`, as text (README §2.2 `sort_keys`)."""
    if sort == "ID_DESC":
        return str(run.id)
    if sort.startswith("NAME"):
        return run.name
    if sort.startswith("START_TIME"):
        return iso(run.start_time or run.expected_start_time)
    if sort.startswith("EXPECTED"):
        return iso(run.expected_start_time)
    if sort.startswith("NEXT"):
        return iso(run.next_scheduled_start_time)
    return iso(run.end_time)


def dependency_record(dep) -> dict:
    return {
        "id": str(dep.id),
        "name": dep.name,
        # Prefect does not define the order of upstream dependencies.
        "upstream_dependencies": sorted(str(u.id) for u in dep.upstream_dependencies),
        "state": None if dep.state is None else {
            "id": str(dep.state.id), "type": dep.state.type.value, "name": dep.state.name},
        "expected_start_time": iso(dep.expected_start_time),
        "start_time": iso(dep.start_time),
        "end_time": iso(dep.end_time),
        "total_run_time_s": None if dep.total_run_time is None else dep.total_run_time.total_seconds(),
        "untrackable_result": dep.untrackable_result,
    }


async def read_runs(session, op: str, request: dict, filter_args: dict) -> dict:
    flow = op == "read_flow_runs"
    module = models.flow_runs if flow else models.task_runs
    sort = request.get("sort") or "ID_DESC"
    sort_enum = (sorting.FlowRunSort if flow else sorting.TaskRunSort)[sort]
    rows = await getattr(module, op)(session, **filter_args, offset=request.get("offset"),
                                     limit=request.get("limit"), sort=sort_enum)
    total = await (module.count_flow_runs if flow else module.count_task_runs)(session, **filter_args)
    # Rows with equal sort keys come back in no defined order. The comparison finds
    # runs of equal keys from `sort_keys` itself, so `tie_groups` stays empty; and
    # `boundary_tie` is set whenever the window may cut such a run (an offset, or a
    # full page), which only makes the comparison skip the edge runs' ids.
    window_cut = bool(request.get("offset")) or (request.get("limit") is not None
                                                  and len(rows) == request["limit"])
    return {"ids": [str(r.id) for r in rows], "sort_keys": [sort_key_text(r, sort) for r in rows],
            "total_matching": total, "tie_groups": [], "boundary_tie": window_cut}


async def answer(db, case: dict) -> dict:
    """What Prefect returns for one case, in the shape of README §2.2 `expected`."""
    op, request = case["op"], case["request"]
    try:
        async with db.session_context() as session:
            if op == "read_task_run_dependencies":
                deps = await models.flow_runs.read_task_run_dependencies(session, as_uuid(request["flow_run_id"]))
                return {"ids": [str(d.id) for d in deps], "dependencies": [dependency_record(d) for d in deps]}
            filter_args = {FILTERS[k][0]: FILTERS[k][1].model_validate(v) for k, v in request.items() if k in FILTERS}
            if op in ("read_flow_runs", "read_task_runs"):
                return await read_runs(session, op, request, filter_args)
            if op == "count_flow_runs":
                return {"count": await models.flow_runs.count_flow_runs(session, **filter_args)}
            if op == "count_task_runs":
                return {"count": await models.task_runs.count_task_runs(session, **filter_args)}
            if op == "count_task_runs_by_state":
                counts = await models.task_runs.count_task_runs_by_state(session, **filter_args)
                return {"counts": counts.model_dump()}
            raise ValueError(f"unknown op {op!r}")
    except Exception as exc:  # an error is an answer too (e.g. ObjectNotFoundError)
        return {"error": {"type": type(exc).__name__, "message": str(exc)[:MESSAGE_LIMIT]}}


async def answer_file(in_path: str, out_path: str) -> int:
    with open(in_path, encoding="utf-8") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    dataset = json.loads(lines[0])
    if "dataset" not in dataset:
        raise SystemExit(f"{in_path}: line 1 must be the {{\"dataset\": ...}} record")
    db = provide_database_interface()
    await db.create_db()
    await load_dataset(db, dataset["dataset"])
    with open(out_path, "w", encoding="utf-8") as out:
        out.write(lines[0] + "\n")
        for line in lines[1:]:
            case = json.loads(line)
            out.write(json.dumps({"id": case["id"], "op": case["op"], "request": case["request"],
                                  "expected": await answer(db, case)}) + "\n")
    return len(lines) - 1


def main(argv: list[str] | None = None) -> None:
    count = prefect_sandbox.answer_from_command_line(
        answer_file, __doc__.splitlines()[0], "query corpus: dataset line, then cases",
        "where to write the dataset line and the answered cases", argv)
    print(f"{count} cases answered")


if __name__ == "__main__":
    main()
