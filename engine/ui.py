"""Prefect 3.1.0's UI routes.

Per-id routes: task runs per flow run (`/ui/flow_runs/count-task-runs`), deployments
per flow (`/ui/flows/count-deployments`) and each flow's next scheduled run
(`/ui/flows/next-runs`). Each takes at most 200 ids and answers for every id given, in
the order given (a repeated id once), from hash indexes.

Dashboard routes: the flow-run scatter plot (`/ui/flow_runs/history`), a read of
flow runs reduced to a point each, and the task-run bar chart
(`/ui/task_runs/dashboard/counts`), finished task runs counted in 20 buckets of
start time, with the whole-second arithmetic of Prefect's SQLite query.
(`/ui/task_runs/count` is `count_task_runs_by_state`.)

Functions take the Engine; the Engine's methods of the same names are the public API.
"""
from __future__ import annotations

import datetime as _dt
import math
import uuid
from typing import Any

import attrs

from . import queries as _queries
from .errors import ValidationError, shown
from .filters import (
    TaskRunFilter, TaskRunFilterState, TaskRunFilterStateType, WorkPoolFilter, WorkQueueFilter, parse_filter,
)
from .history import sqlite_ms
from .records import estimated_run_time, estimated_start_time_delta
from .states import TERMINAL_STATES, StateType
from .validation import as_uuid_list

__all__ = [
    "SimpleNextFlowRun", "SimpleFlowRun", "TaskRunCount", "count_task_runs_by_flow_run", "count_deployments_by_flow",
    "next_runs_by_flow", "read_flow_run_history", "read_dashboard_task_run_counts",
]

MAX_IDS = 200  # the per-id routes' `max_items`
MAX_HISTORY_RUNS = 1000  # the scatter plot's limit: its default and its maximum
DASHBOARD_BUCKETS = 20
_FAILED = frozenset({StateType.FAILED, StateType.CRASHED})
_LAST_OF_MINUTE = _dt.timedelta(seconds=59, microseconds=999_999)


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
    they were inserted, and keeps the last); runs created at one instant (a manual
    clock that does not tick) by the greater id, not by their place in memory, which
    a rolled-back delete changes and a store does not. O(runs of the given flows)."""
    by_flow = engine._store.tables["flow_run"].by_name["flow_id"]
    answer: dict[uuid.UUID, SimpleNextFlowRun | None] = {}
    for flow_id in _ids(flow_ids, "flow_ids"):
        best = None
        for run in by_flow.get(flow_id):
            when = run.next_scheduled_start_time
            if run.state_type is not StateType.SCHEDULED or when is None:
                continue
            if best is None or when < best.next_scheduled_start_time or (
                    when == best.next_scheduled_start_time and (run.created, run.id) > (best.created, best.id)):
                best = run
        answer[flow_id] = None if best is None else SimpleNextFlowRun(
            id=best.id, flow_id=flow_id, name=best.name, state_name=best.state_name, state_type=best.state_type,
            next_scheduled_start_time=best.next_scheduled_start_time)
    return answer


# dashboard routes --------------------------------------------------------------------------------

@attrs.frozen(slots=True)
class SimpleFlowRun:
    """A flow run as a point of the UI's scatter plot.

    `timestamp` is the start time, or the expected start time if the run has not
    started; `duration` its estimated run time and `lateness` its estimated start time
    delta, both at the engine's now. `state_type` and `timestamp` are None for a run
    without a state (Prefect's route fails on such a run)."""

    id: uuid.UUID
    state_type: StateType | None
    timestamp: _dt.datetime | None
    duration: _dt.timedelta
    lateness: _dt.timedelta


def read_flow_run_history(engine: Any, sort: Any, limit: Any, offset: Any, *filters: Any) -> list[SimpleFlowRun]:
    """The flow runs `read_flow_runs` gives for `filters` (flow, flow run, task run,
    deployment, work pool, work queue), `sort`, `offset` and `limit` (at most 1000),
    each as a SimpleFlowRun; a limit of None is 1000. Cost: that read's, + O(limit)."""
    if limit is None:
        limit = MAX_HISTORY_RUNS
    elif isinstance(limit, int) and not isinstance(limit, bool) and limit > MAX_HISTORY_RUNS:
        raise ValidationError(f"limit must be at most {MAX_HISTORY_RUNS}, got {shown(limit)}")
    runs = _queries.read_flow_runs(engine, *filters, offset, limit, sort)
    now = engine.now()
    return [SimpleFlowRun(run.id, run.state_type, run.start_time or run.expected_start_time,
                          estimated_run_time(run, now), estimated_start_time_delta(run, now)) for run in runs]


@attrs.frozen(slots=True)
class TaskRunCount:
    """One bar of the UI's task-run chart: finished task runs that started in one
    bucket of time; `failed` counts FAILED and CRASHED, `completed` the other final
    states (COMPLETED, CANCELLED)."""

    completed: int
    failed: int


def read_dashboard_task_run_counts(
    engine: Any,
    task_run_filter: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    work_queue_filter: Any = None,
) -> list[TaskRunCount]:
    """Task runs in a final state matching every filter, counted in 20 buckets of
    start time. `task_run_filter` must have `start_time.after_`; its state criteria
    are replaced by "a final state". The buckets divide the window from the start of
    after_'s minute to the end of before_'s minute (or of now's, without before_)
    into 20; a run's bucket is floor((its start second - the window's) / (window /
    20)), its start time read as SQLite's strftime('%s') reads it. A run outside the
    20 buckets (it started after now, the window runs backwards, or an or_ filter
    let it in) or without a start time is left out; Prefect's route fails on such
    runs, or counts those of negative bucket numbers in the last buckets.

    Cost: O(log n + k) for the k task runs that started in the window (the task
    runs' start-time index), or O(c) for a smaller index-backed candidate set; + the
    plan's cross-entity filters."""
    parsed = parse_filter(TaskRunFilter, task_run_filter, "task_runs")
    if parsed is None or parsed.start_time is None or parsed.start_time.after_ is None:
        raise ValidationError("task_runs.start_time.after_ is required")
    finished = TaskRunFilterState(type=TaskRunFilterStateType(any_=sorted(TERMINAL_STATES, key=lambda t: t.value)))
    parsed = attrs.evolve(parsed, state=finished)
    filters = _queries._task_run_filters(flow_filter, flow_run_filter, parsed, deployment_filter)
    plan = _queries._task_run_plan(engine._store.tables, *filters,
                                   parse_filter(WorkPoolFilter, work_pool_filter, "work_pools"),
                                   parse_filter(WorkQueueFilter, work_queue_filter, "work_queues"))
    start = parsed.start_time.after_.replace(second=0, microsecond=0)
    before = parsed.start_time.before_
    end = (engine.now() if before is None else before).replace(second=0, microsecond=0) + _LAST_OF_MINUTE
    bucket_seconds = ((end - start) / DASHBOARD_BUCKETS).total_seconds()
    first_second = sqlite_ms(start) // 1000
    completed = [0] * DASHBOARD_BUCKETS
    failed = [0] * DASHBOARD_BUCKETS
    failed_types = _FAILED
    # A window that ends before it starts holds no run (not even one an or_ filter lets
    # in), and its width may round to 0.
    runs = _queries._matching(plan, engine._store.tables["task_run"].rows) if bucket_seconds > 0 else ()
    for run in runs:
        started = run.start_time
        if started is None:
            continue  # let in by an or_ filter; no bucket (Prefect's floor(NULL) fails)
        k = math.floor((sqlite_ms(started) // 1000 - first_second) / bucket_seconds)
        if 0 <= k < DASHBOARD_BUCKETS:
            if run.state_type in failed_types:
                failed[k] += 1
            else:
                completed[k] += 1
    return [TaskRunCount(c, f) for c, f in zip(completed, failed)]
