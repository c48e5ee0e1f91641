"""`prefect.server.models.flow_runs`, awaitable and backed by a runstate Engine.

Every function takes the session first and makes one atomic engine call; the
costs are those of the engine call named in each docstring.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from ..errors import ValidationError
from ..records import FlowRun
from ._facade import as_filter, as_mapping, engine_of, facade

__all__ = [
    "create_flow_run", "update_flow_run", "read_flow_run", "read_flow_runs", "count_flow_runs",
    "delete_flow_run", "set_flow_run_state", "read_task_run_dependencies", "read_flow_run_graph",
    "cleanup_flow_run_concurrency_slots",
]


@facade
async def create_flow_run(session: Any, flow_run: Any, orchestration_parameters: dict | None = None) -> FlowRun:
    """Create a flow run (idempotency-key aware); a given `state` goes through the
    forced path. Engine.create_flow_run: O(indexes · log n)."""
    engine = engine_of(session)
    return engine.create_flow_run(as_mapping(flow_run, "flow_run"), orchestration_parameters=orchestration_parameters)


@facade
async def update_flow_run(session: Any, flow_run_id: Any, flow_run: Any) -> bool:
    """Replace the explicitly given updatable fields; True iff the run exists. O(indexes)."""
    return engine_of(session).update_flow_run(flow_run_id, as_mapping(flow_run, "flow_run"))


@facade
async def read_flow_run(session: Any, flow_run_id: Any, for_update: bool = False) -> FlowRun | None:
    """The flow run or None. `for_update` is accepted and meaningless (calls are serialised). O(1)."""
    return engine_of(session).read_flow_run(flow_run_id)


@facade
async def read_flow_runs(
    session: Any,
    columns: list | None = None,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    work_queue_filter: Any = None,
    offset: int | None = None,
    limit: int | None = None,
    sort: Any = "ID_DESC",
) -> list[FlowRun]:
    """Filtered, sorted, paginated flow runs (Engine.read_flow_runs). `columns` is
    accepted for compatibility; full rows are always returned (they are live objects)."""
    return engine_of(session).read_flow_runs(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter),
        as_filter(deployment_filter), as_filter(work_pool_filter), as_filter(work_queue_filter),
        offset, limit, sort,
    )


@facade
async def count_flow_runs(
    session: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    work_queue_filter: Any = None,
) -> int:
    """Number of matching flow runs (Engine.count_flow_runs)."""
    return engine_of(session).count_flow_runs(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter),
        as_filter(deployment_filter), as_filter(work_pool_filter), as_filter(work_queue_filter),
    )


@facade
async def delete_flow_run(session: Any, flow_run_id: Any) -> bool:
    """Delete a run with its states and task runs, releasing a held deployment slot."""
    return engine_of(session).delete_flow_run(flow_run_id)


@facade
async def set_flow_run_state(
    session: Any,
    flow_run_id: Any,
    state: Any,
    force: bool = False,
    flow_policy: Any = None,
    orchestration_parameters: dict | None = None,
) -> Any:
    """Orchestrate a proposed state; returns an OrchestrationResult. `flow_policy`
    may be a policy class, instance, or name ("CoreFlowPolicy"). O(rules)."""
    engine = engine_of(session)
    return engine.set_flow_run_state(
        flow_run_id, state, force=force, flow_policy=flow_policy,
        orchestration_parameters=orchestration_parameters,
    )


@facade
async def read_task_run_dependencies(session: Any, flow_run_id: Any) -> list:
    """Each task run of the flow run with its upstream task runs."""
    return engine_of(session).read_task_run_dependencies(flow_run_id)


@facade
async def read_flow_run_graph(session: Any, flow_run_id: Any, since: _dt.datetime = _dt.datetime.min) -> Any:
    """The flow run graph (v2 shape); `since` limits nodes to those ending later."""
    engine = engine_of(session)
    return engine.read_flow_run_graph(flow_run_id, None if since == _dt.datetime.min else since)


@facade
async def cleanup_flow_run_concurrency_slots(session: Any, flow_run: Any) -> None:
    """Release the deployment slot a PENDING/RUNNING/CANCELLING run holds
    (idempotent only as far as Prefect's is: it decrements once per call). O(1)."""
    engine = engine_of(session)
    if not isinstance(flow_run, FlowRun):
        raise ValidationError(f"flow_run must be a FlowRun record, got {type(flow_run).__name__}")
    with engine.transaction():
        engine._cleanup_flow_run_concurrency_slots(flow_run)
