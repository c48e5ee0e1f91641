"""Replay a query corpus (conformance README §2) against a fresh engine.

The dataset is loaded as-is: records are built directly with their recorded ids,
timestamps and current states (one state row each, nothing re-orchestrated). Each
case then calls the engine operation with the request's filters and compares:
ids in order, where runs of equal sort keys compare as sets and a window edge that
cuts through such a run (`boundary_tie`) leaves only the key sequence defined;
counts; dependencies; and errors (type name and message).
"""
from __future__ import annotations

import datetime as _dt
import json
import uuid
from typing import Any, Iterable

from ..clock import ManualClock
from ..engine import Engine
from ..records import (
    ConcurrencyLimitV2,
    Deployment,
    Flow,
    FlowRun,
    FlowRunStateRow,
    TaskRun,
    TaskRunStateRow,
    WorkPool,
    WorkQueue,
)
from ..states import State, StateDetails, StateType
from ..validation import as_datetime, as_optional_uuid, as_task_inputs
from . import Report

__all__ = ["load_dataset", "run_case", "run_file", "run_lines"]

_FILTER_ARGS = {
    "flows": "flow_filter",
    "flow_runs": "flow_run_filter",
    "task_runs": "task_run_filter",
    "deployments": "deployment_filter",
    "work_pools": "work_pool_filter",
    "work_pool_queues": "work_queue_filter",
}


def _t(value: Any) -> _dt.datetime | None:
    return as_datetime(value, "dataset time")


def _u(value: Any) -> uuid.UUID | None:
    return as_optional_uuid(value, "dataset id")


def _state(spec: dict | None, run_id: uuid.UUID, is_flow: bool) -> tuple[State | None, Any]:
    if spec is None:
        return None, None
    d = spec.get("state_details") or {}
    details = StateDetails(
        flow_run_id=run_id if is_flow else None,
        task_run_id=None if is_flow else run_id,
        scheduled_time=_t(d.get("scheduled_time")),
        pause_timeout=_t(d.get("pause_timeout")),
        pause_reschedule=bool(d.get("pause_reschedule", False)),
        pause_key=d.get("pause_key"),
        untrackable_result=bool(d.get("untrackable_result", False)),
        cache_key=d.get("cache_key"),
    )
    state = State(type=StateType(spec["type"]), name=spec["name"], timestamp=_t(spec["timestamp"]),
                  message=spec.get("message"), state_details=details, id=uuid.UUID(spec["id"]))
    row_cls = FlowRunStateRow if is_flow else TaskRunStateRow
    key = {"flow_run_id": run_id} if is_flow else {"task_run_id": run_id}
    row = row_cls(type=state.type, timestamp=state.timestamp, name=state.name, message=state.message,
                  state_details=details, id=state.id, **key)
    row.created = row.updated = state.timestamp
    return state, row


def _run_fields(rec: dict) -> dict:
    return dict(
        id=uuid.UUID(rec["id"]),
        name=rec["name"],
        tags=list(rec["tags"]),
        state_id=_u(rec["state_id"]),
        state_type=StateType(rec["state_type"]) if rec["state_type"] else None,
        state_name=rec["state_name"],
        state_timestamp=_t(rec["state_timestamp"]),
        run_count=rec["run_count"],
        expected_start_time=_t(rec["expected_start_time"]),
        next_scheduled_start_time=_t(rec["next_scheduled_start_time"]),
        start_time=_t(rec["start_time"]),
        end_time=_t(rec["end_time"]),
        total_run_time=_dt.timedelta(seconds=rec.get("total_run_time_s") or 0.0),
    )


def load_dataset(dataset: dict) -> Engine:
    """A fresh engine (ManualClock at the dataset's base time) holding the dataset."""
    base = _t(dataset.get("base_time")) or _dt.datetime(2024, 11, 1, tzinfo=_dt.timezone.utc)
    engine = Engine(clock=ManualClock(base))
    store = engine._store
    with engine.transaction():
        def put(kind: str, rec: Any) -> None:
            if getattr(rec, "created", None) is not None:
                rec.created = rec.updated = base
            store.insert(kind, rec)

        for f in dataset["flows"]:
            put("flow", Flow(name=f["name"], tags=list(f["tags"]), id=uuid.UUID(f["id"])))
        for p in dataset["work_pools"]:
            put("work_pool", WorkPool(name=p["name"], type=p["type"], is_paused=p["is_paused"],
                                      default_queue_id=_u(p["default_queue_id"]), id=uuid.UUID(p["id"])))
        for q in dataset["work_queues"]:
            put("work_queue", WorkQueue(name=q["name"], work_pool_id=uuid.UUID(q["work_pool_id"]),
                                        priority=q["priority"], id=uuid.UUID(q["id"])))
        for d in dataset["deployments"]:
            dep = Deployment(name=d["name"], flow_id=uuid.UUID(d["flow_id"]), tags=list(d["tags"]),
                             paused=d["paused"], work_queue_name=d["work_queue_name"],
                             work_queue_id=_u(d["work_queue_id"]), id=uuid.UUID(d["id"]))
            if d.get("concurrency_limit") is not None:
                gcl = ConcurrencyLimitV2(name=f"deployment:{dep.id}", limit=d["concurrency_limit"])
                put("concurrency_limit_v2", gcl)
                dep.concurrency_limit_id = gcl.id
            put("deployment", dep)
        for r in dataset["flow_runs"]:
            run = FlowRun(
                flow_id=uuid.UUID(r["flow_id"]), deployment_id=_u(r["deployment_id"]),
                work_queue_id=_u(r["work_queue_id"]), work_queue_name=r["work_queue_name"],
                flow_version=r["flow_version"], idempotency_key=r["idempotency_key"],
                parent_task_run_id=_u(r["parent_task_run_id"]), **_run_fields(r),
            )
            run.state, row = _state(r["state"], run.id, True)
            put("flow_run", run)
            if row is not None:
                store.insert("flow_run_state", row)
        for r in dataset["task_runs"]:
            run = TaskRun(
                flow_run_id=_u(r["flow_run_id"]), task_key=r["task_key"], dynamic_key=r["dynamic_key"],
                cache_key=r.get("cache_key"), flow_run_run_count=r.get("flow_run_run_count", 0),
                task_inputs=as_task_inputs(r.get("task_inputs") or {}), **_run_fields(r),
            )
            run.state, row = _state(r["state"], run.id, False)
            put("task_run", run)
            if row is not None:
                store.insert("task_run_state", row)
    return engine


# comparison ----------------------------------------------------------------------------------

def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _sort_key_text(rec: Any, sort: str) -> Any:
    if sort == "ID_DESC":
        return str(rec.id)
    if sort.startswith("NAME"):
        return rec.name
    if sort.startswith("START_TIME"):
        return _iso(rec.start_time if rec.start_time is not None else rec.expected_start_time)
    if sort.startswith("EXPECTED_START_TIME"):
        return _iso(rec.expected_start_time)
    if sort.startswith("NEXT_SCHEDULED"):
        return _iso(rec.next_scheduled_start_time)
    return _iso(rec.end_time)


def _runs_of_equal_keys(keys: list) -> Iterable[tuple[int, int]]:
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield start, i
            start = i


def _compare_read(records: list, expected: dict, sort: str) -> str | None:
    got_ids = [str(r.id) for r in records]
    exp_ids = expected["ids"]
    if len(got_ids) != len(exp_ids):
        return f"returned {len(got_ids)} runs, expected {len(exp_ids)}"
    exp_keys = expected.get("sort_keys")
    if exp_keys is None:
        return None if got_ids == exp_ids else "ids differ"
    got_keys = [_sort_key_text(r, sort) for r in records]
    for i, (g, e) in enumerate(zip(got_keys, exp_keys)):
        if g != e:
            return f"sort key at position {i} is {g!r}, expected {e!r}"
    runs = list(_runs_of_equal_keys(exp_keys))
    for n, (a, b) in enumerate(runs):
        at_edge = n == 0 or n == len(runs) - 1
        if expected.get("boundary_tie") and at_edge:
            continue  # the window cuts this run: only its keys are defined
        if set(got_ids[a:b]) != set(exp_ids[a:b]):
            return f"ids at positions {a}..{b - 1} differ from the expected ones"
    return None


def _compare_dependencies(results: list, expected: dict) -> str | None:
    got_ids = [str(d.id) for d in results]
    if got_ids != expected["ids"]:
        return f"task run ids {got_ids} differ from {expected['ids']}"
    for got, exp in zip(results, expected["dependencies"]):
        state = None if got.state is None else {
            "id": str(got.state.id), "type": got.state.type.value, "name": got.state.name}
        mine = {
            "id": str(got.id),
            "name": got.name,
            "upstream_dependencies": sorted(str(u.id) for u in got.upstream_dependencies),
            "state": state,
            "expected_start_time": _iso(got.expected_start_time),
            "start_time": _iso(got.start_time),
            "end_time": _iso(got.end_time),
            "total_run_time_s": got.total_run_time.total_seconds() if got.total_run_time is not None else None,
            "untrackable_result": got.untrackable_result,
        }
        for key, value in exp.items():
            if mine.get(key) != value:
                return f"dependency {exp['id']}: {key} is {mine.get(key)!r}, expected {value!r}"
    return None


def run_case(engine: Engine, case: dict) -> str | None:
    """Run one query case; returns None when it matches, else a failure message."""
    op = case["op"]
    request = dict(case["request"])
    expected = case["expected"]
    try:
        if op == "read_task_run_dependencies":
            got: Any = engine.read_task_run_dependencies(request["flow_run_id"])
        else:
            kwargs = {_FILTER_ARGS[k]: v for k, v in request.items() if k in _FILTER_ARGS}
            unknown = set(request) - set(_FILTER_ARGS) - {"sort", "limit", "offset"}
            if unknown:
                return f"request has unknown key(s) {sorted(unknown)}"
            if op in ("read_flow_runs", "read_task_runs"):
                got = getattr(engine, op)(**kwargs, offset=request.get("offset"), limit=request.get("limit"),
                                          sort=request.get("sort") or "ID_DESC")
                total_fn = engine.count_flow_runs if op == "read_flow_runs" else engine.count_task_runs
                total = total_fn(**kwargs)
            else:
                got = getattr(engine, op)(**kwargs)
    except Exception as exc:  # noqa: BLE001 - errors are part of the expected outcome
        err = expected.get("error")
        if err is None:
            return f"raised {type(exc).__name__}: {exc}"
        if type(exc).__name__ != err["type"] or str(exc) != err["message"]:
            return f"raised {type(exc).__name__}({exc}), expected {err['type']}({err['message']})"
        return None
    if "error" in expected:
        return f"returned normally, expected {expected['error']['type']}"
    if op in ("read_flow_runs", "read_task_runs"):
        if "total_matching" in expected and total != expected["total_matching"]:
            return f"count of matching runs is {total}, expected {expected['total_matching']}"
        return _compare_read(got, expected, request.get("sort") or "ID_DESC")
    if op in ("count_flow_runs", "count_task_runs"):
        return None if got == expected["count"] else f"count is {got}, expected {expected['count']}"
    if op == "count_task_runs_by_state":
        counts = got.as_dict()
        return None if counts == expected["counts"] else f"counts are {counts}, expected {expected['counts']}"
    if op == "read_task_run_dependencies":
        return _compare_dependencies(got, expected)
    return f"unknown op {op!r}"


def run_lines(lines: Iterable[str]) -> Report:
    """Replay a corpus given as JSON lines (first line: the dataset)."""
    report = Report()
    it = iter(lines)
    engine = load_dataset(json.loads(next(it))["dataset"])
    for line in it:
        if not line.strip():
            continue
        case = json.loads(line)
        problem = run_case(engine, case)
        if problem is None:
            report.passed += 1
        else:
            report.failed.append((case["id"], problem))
    return report


def run_file(path: str) -> Report:
    """Replay the query corpus at `path`."""
    with open(path, encoding="utf-8") as fh:
        return run_lines(fh)
