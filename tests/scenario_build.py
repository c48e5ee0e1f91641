"""Engines built from run-history-format oracle scenarios (tests/oracle/history_scenarios.py
and graph_scenarios.py write them): the dataset Prefect was given, made through the
engine's public API, each run's columns checked against what Prefect stored."""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

from engine import Engine, ManualClock, State, StateType
from engine.states import TERMINAL_STATES
from oracle_answers import T0


_US = dt.timedelta(microseconds=1)


def at_us(offset: int | None) -> dt.datetime | None:
    return None if offset is None else T0 + dt.timedelta(microseconds=offset)


def us_of(t: dt.datetime | None) -> int | None:
    """A time as microseconds after T0, as the oracles write them (at_us's inverse)."""
    return None if t is None else (t - T0) // _US


def replayed(case: dict) -> Iterator[tuple[Engine, dict, Any, str]]:
    """A committed case's engine (`build`), with each of its queries, Prefect's answer
    to it and a label for failure messages."""
    sc = case["scenario"]
    e = build(sc)
    for i, (q, expected) in enumerate(zip(sc["queries"], case["answer"]["answers"], strict=True)):
        yield e, q, expected, f"{sc['id']} query {i}: {q}"


def build(sc: dict) -> Engine:
    """The scenario's dataset made through the engine's public API, on a clock stopped at
    the scenario's now; each run's columns are checked against what Prefect was given."""
    e = Engine(ManualClock(T0 + dt.timedelta(milliseconds=sc["now_ms"])))
    flows = {f["name"]: e.create_flow(f["name"], tags=f["tags"]) for f in sc["flows"]}
    queues = {}
    for p in sc["pools"]:
        pool = e.create_work_pool(p["name"], type=p["type"])
        queues[f"{p['name']}/default"] = e.read_work_queue(pool.default_queue_id)
    for q in sc["queues"]:
        pool = e.read_work_pool_by_name(q["pool"])
        queues[f"{q['pool']}/{q['name']}"] = e.create_work_queue(pool.id, q["name"])
    deployments = {}
    for d in sc["deployments"]:
        queue = queues[d["queue"]] if d["queue"] else None
        deployments[d["name"]] = e.create_deployment(
            flows[d["flow"]].id, d["name"], tags=d["tags"], paused=d["paused"],
            work_queue_id=queue and queue.id, work_queue_name=queue and queue.name)

    def flow_run(r: dict) -> None:
        queue = queues[r["queue"]] if r["queue"] else None
        run = e.create_flow_run(flow_id=flows[r["flow"]].id,
                                deployment_id=deployments[r["deployment"]].id if r["deployment"] else None,
                                work_queue_id=queue and queue.id, work_queue_name=queue and queue.name,
                                parent_task_run_id=r.get("parent_task_run"), **run_fields(r))
        check_columns(run, r)

    # Subflows (graph_scenarios.py) once the task runs they are subflows of exist.
    for r in sc["flow_runs"]:
        if not r.get("parent_task_run"):
            flow_run(r)
    for r in sc["task_runs"]:
        run = e.create_task_run(flow_run_id=r["flow_run"], task_key=r["task_key"], dynamic_key=r["dynamic_key"],
                                task_inputs=r.get("task_inputs", {}), **run_fields(r))
        check_columns(run, r)
    for r in sc["flow_runs"]:
        if r.get("parent_task_run"):
            flow_run(r)
    return e


def run_fields(r: dict) -> dict:
    fields: dict[str, Any] = dict(id=r["id"], name=r["name"], tags=r["tags"], start_time=at_us(r["start_us"]),
                                  total_run_time=dt.timedelta(microseconds=r["total_us"]))
    if r["expected_us"] is not None:
        fields["expected_start_time"] = at_us(r["expected_us"])
    if r["state"] is not None:
        kind, name, ts = r["state"]
        details = {"scheduled_time": at_us(r["expected_us"])} if kind == "SCHEDULED" else {}
        fields["state"] = State(type=kind, name=name, timestamp=at_us(ts), state_details=details)
    return fields


def check_columns(run: Any, r: dict) -> None:
    # The columns prefect_history.py writes for this run (history_scenarios.py's rules).
    kind, name, ts = r["state"] or (None, None, None)
    final = kind is not None and StateType(kind) in TERMINAL_STATES
    want = (kind, name, at_us(ts), at_us(r["expected_us"]), at_us(r["start_us"]),
            at_us(ts) if final and r["start_us"] is not None else None,
            at_us(r["expected_us"]) if kind == "SCHEDULED" else None,
            dt.timedelta(microseconds=r["total_us"]), 1 if kind == "RUNNING" else 0)
    got = (run.state_type and run.state_type.value, run.state_name, run.state_timestamp, run.expected_start_time,
           run.start_time, run.end_time, run.next_scheduled_start_time, run.total_run_time, run.run_count)
    assert got == want, r["id"]
