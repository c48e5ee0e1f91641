"""Prefect 3.1.0's per-id UI routes: task runs per flow run (`/ui/flow_runs/count-task-runs`),
deployments per flow (`/ui/flows/count-deployments`) and each flow's next scheduled
run (`/ui/flows/next-runs`). Each takes at most 200 ids and answers for every id
given, in the order given (a repeated id once), from hash indexes.

Functions take the Engine; the Engine's methods of the same names are the public API.
"""
from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

import attrs

from .errors import ValidationError
from .states import StateType
from .validation import as_uuid_list

__all__ = ["SimpleNextFlowRun", "count_task_runs_by_flow_run", "count_deployments_by_flow", "next_runs_by_flow"]

MAX_IDS = 200  # the routes' `max_items`


@attrs.frozen(slots=True)
class SimpleNextFlowRun:
    """A flow's next scheduled run, as the UI route gives it."""

    id: uuid.UUID
    flow_id: uuid.UUID
    name: str
    state_name: str
    state_type: StateType
    next_scheduled_start_time: _dt.datetime


def _ids(values: Any, what: str) -> list[uuid.UUID]:
    ids = as_uuid_list(values, what)
    if len(ids) > MAX_IDS:
        raise ValidationError(f"{what} takes at most {MAX_IDS} ids, got {len(ids)}")
    return list(dict.fromkeys(ids))


def count_task_runs_by_flow_run(engine: Any, flow_run_ids: Any) -> dict[uuid.UUID, int]:
    """{flow run id: its task runs that are not a subflow's parent}; 0 for an
    unknown run. O(task runs of the given flow runs)."""
    by_run = engine._store.tables["task_run"].by_name["flow_run_id"]
    parents = engine._store.tables["flow_run"].by_name["parent_task_run_id"]
    counts = {}
    for run_id in _ids(flow_run_ids, "flow_run_ids"):
        counts[run_id] = sum(1 for task_run in by_run.get(run_id) if not parents.count(task_run.id))
    return counts


def count_deployments_by_flow(engine: Any, flow_ids: Any) -> dict[uuid.UUID, int]:
    """{flow id: number of its deployments}; 0 for an unknown flow. O(ids)."""
    by_flow = engine._store.tables["deployment"].by_name["flow_id"]
    return {flow_id: by_flow.count(flow_id) for flow_id in _ids(flow_ids, "flow_ids")}


def next_runs_by_flow(engine: Any, flow_ids: Any) -> dict[uuid.UUID, SimpleNextFlowRun | None]:
    """{flow id: its SCHEDULED run with the earliest next_scheduled_start_time, or
    None}. Runs without that time are never next; among runs tied for the earliest,
    the one created last wins (Prefect's SQLite query returns them all, in the order
    they were inserted, and keeps the last). O(runs of the given flows)."""
    by_flow = engine._store.tables["flow_run"].by_name["flow_id"]
    answer: dict[uuid.UUID, SimpleNextFlowRun | None] = {}
    for flow_id in _ids(flow_ids, "flow_ids"):
        best = None
        for run in by_flow.get(flow_id):
            when = run.next_scheduled_start_time
            if run.state_type is not StateType.SCHEDULED or when is None:
                continue
            if best is None or when < best.next_scheduled_start_time or (
                    when == best.next_scheduled_start_time and run.created >= best.created):
                best = run
        answer[flow_id] = None if best is None else SimpleNextFlowRun(
            id=best.id, flow_id=flow_id, name=best.name, state_name=best.state_name, state_type=best.state_type,
            next_scheduled_start_time=best.next_scheduled_start_time)
    return answer
