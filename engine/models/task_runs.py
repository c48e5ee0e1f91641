"""`prefect.server.models.task_runs`, awaitable and backed by a runstate Engine."""
from __future__ import annotations

from typing import Any

from ..records import TaskRun
from ._facade import as_filter, as_mapping, engine_of, facade

__all__ = [
    "create_task_run", "update_task_run", "read_task_run", "read_task_runs", "count_task_runs",
    "count_task_runs_by_state", "delete_task_run", "set_task_run_state",
]


@facade
async def create_task_run(session: Any, task_run: Any, orchestration_parameters: dict | None = None) -> TaskRun:
    """Create a task run, or return the one with the same (flow_run_id, task_key,
    dynamic_key). Engine.create_task_run: O(indexes · log n)."""
    engine = engine_of(session)
    return engine.create_task_run(as_mapping(task_run, "task_run"), orchestration_parameters=orchestration_parameters)


@facade
async def update_task_run(session: Any, task_run_id: Any, task_run: Any) -> bool:
    """Replace the explicitly given updatable fields; True iff the run exists."""
    return engine_of(session).update_task_run(task_run_id, as_mapping(task_run, "task_run"))


@facade
async def read_task_run(session: Any, task_run_id: Any) -> TaskRun | None:
    """The task run or None. O(1)."""
    return engine_of(session).read_task_run(task_run_id)


@facade
async def read_task_runs(
    session: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    offset: int | None = None,
    limit: int | None = None,
    sort: Any = "ID_DESC",
) -> list[TaskRun]:
    """Filtered, sorted, paginated task runs (Engine.read_task_runs)."""
    return engine_of(session).read_task_runs(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter),
        as_filter(deployment_filter), offset, limit, sort,
    )


@facade
async def count_task_runs(
    session: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
) -> int:
    """Number of matching task runs (Engine.count_task_runs)."""
    return engine_of(session).count_task_runs(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter), as_filter(deployment_filter)
    )


@facade
async def count_task_runs_by_state(
    session: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
) -> Any:
    """Matching task runs counted per state type (a CountByState)."""
    return engine_of(session).count_task_runs_by_state(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter), as_filter(deployment_filter)
    )


@facade
async def delete_task_run(session: Any, task_run_id: Any) -> bool:
    """Delete a task run and its states; True iff it existed."""
    return engine_of(session).delete_task_run(task_run_id)


@facade
async def set_task_run_state(
    session: Any,
    task_run_id: Any,
    state: Any,
    force: bool = False,
    task_policy: Any = None,
    orchestration_parameters: dict | None = None,
) -> Any:
    """Orchestrate a proposed task state; returns an OrchestrationResult.
    `task_policy` may be a policy class, instance, or name ("CoreTaskPolicy")."""
    engine = engine_of(session)
    return engine.set_task_run_state(
        task_run_id, state, force=force, task_policy=task_policy,
        orchestration_parameters=orchestration_parameters,
    )
