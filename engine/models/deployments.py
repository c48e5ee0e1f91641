"""`prefect.server.models.deployments`, awaitable: create/upsert with a concurrency
limit and schedules, reads, update, delete, a deployment's schedules, schedule_runs
and check_work_queues_for_deployment."""
from __future__ import annotations

from typing import Any

from ..records import Deployment, DeploymentSchedule, WorkQueue
from ._facade import as_filter, as_mapping, engine_of, facade, given_fields

__all__ = [
    "create_deployment", "read_deployment", "read_deployment_by_name", "read_deployments",
    "count_deployments", "update_deployment", "delete_deployment", "schedule_runs",
    "check_work_queues_for_deployment", "create_deployment_schedules", "read_deployment_schedules",
    "update_deployment_schedule", "delete_schedules_for_deployment", "delete_deployment_schedule",
]


@facade
async def create_deployment(session: Any, deployment: Any) -> Deployment:
    """Create, or upsert by (flow_id, name), a deployment. `concurrency_limit` links
    a global limit named ``deployment:<id>``. O(runs of the deployment) on upsert."""
    engine = engine_of(session)
    fields = given_fields(deployment, "deployment", "deployments.create_deployment", required=("flow_id", "name"))
    flow_id, name = fields.pop("flow_id"), fields.pop("name")
    return engine.create_deployment(flow_id, name, **fields)


@facade
async def read_deployment(session: Any, deployment_id: Any) -> Deployment | None:
    """The deployment or None. O(1)."""
    return engine_of(session).read_deployment(deployment_id)


@facade
async def read_deployment_by_name(session: Any, name: str, flow_name: str) -> Deployment | None:
    """The deployment `name` of the flow named `flow_name`, or None. O(1)."""
    engine = engine_of(session)
    with engine._lock:
        flow = engine.read_flow_by_name(flow_name)
        if flow is None:
            return None
        return engine._unique("deployment", "flow_name", (flow.id, name))


@facade
async def read_deployments(session: Any, offset: int | None = None, limit: int | None = None,
                           flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                           deployment_filter: Any = None, work_pool_filter: Any = None,
                           work_queue_filter: Any = None, sort: Any = "NAME_ASC") -> list[Deployment]:
    """Deployments matching every given filter, sorted, paginated. O(n log n)."""
    return engine_of(session).read_deployments(
        offset, limit, as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter),
        as_filter(deployment_filter), as_filter(work_pool_filter), as_filter(work_queue_filter), sort)


@facade
async def count_deployments(session: Any, flow_filter: Any = None, flow_run_filter: Any = None,
                            task_run_filter: Any = None, deployment_filter: Any = None,
                            work_pool_filter: Any = None, work_queue_filter: Any = None) -> int:
    """Number of deployments matching every given filter. O(1) without filters."""
    return engine_of(session).count_deployments(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter),
        as_filter(deployment_filter), as_filter(work_pool_filter), as_filter(work_queue_filter))


@facade
async def update_deployment(session: Any, deployment_id: Any, deployment: Any) -> bool:
    """Set the explicitly given fields (Prefect's DeploymentUpdate, `work_pool_name`
    included); True iff the deployment exists. Deletes its never-run auto-scheduled
    runs and creates, changes or removes its concurrency limit as Prefect does.
    O(runs of the deployment)."""
    return engine_of(session).update_deployment(deployment_id, as_mapping(deployment, "deployment"))


@facade
async def delete_deployment(session: Any, deployment_id: Any) -> bool:
    """Delete a deployment, its limit and its scheduled never-run runs."""
    return engine_of(session).delete_deployment(deployment_id)


@facade
async def schedule_runs(session: Any, deployment_id: Any, start_time: Any = None, end_time: Any = None,
                        min_time: Any = None, min_runs: int | None = None, max_runs: int | None = None,
                        auto_scheduled: bool = True) -> list:
    """Create the SCHEDULED runs of the deployment's active schedules (Prefect's
    rules and defaults); the ids of the runs inserted."""
    return engine_of(session).schedule_runs(deployment_id, start_time, end_time, min_time, min_runs, max_runs,
                                            auto_scheduled)


@facade
async def check_work_queues_for_deployment(session: Any, deployment_id: Any) -> list[WorkQueue]:
    """The work queues whose legacy filter lets them pick the deployment up."""
    return engine_of(session).check_work_queues_for_deployment(deployment_id)


@facade
async def create_deployment_schedules(session: Any, deployment_id: Any, schedules: Any) -> list[DeploymentSchedule]:
    """Add DeploymentScheduleCreate entries (dicts or Prefect objects) to a deployment."""
    return engine_of(session).create_deployment_schedules(deployment_id, schedules)


@facade
async def read_deployment_schedules(session: Any, deployment_id: Any,
                                    deployment_schedule_filter: Any = None) -> list[DeploymentSchedule]:
    """The deployment's schedules under a DeploymentScheduleFilter, latest updated first."""
    return engine_of(session).read_deployment_schedules(deployment_id, as_filter(deployment_schedule_filter))


@facade
async def update_deployment_schedule(session: Any, deployment_id: Any, deployment_schedule_id: Any,
                                     schedule: Any) -> bool:
    """Set the non-None fields of a DeploymentScheduleUpdate; True iff the deployment has that schedule."""
    return engine_of(session).update_deployment_schedule(deployment_id, deployment_schedule_id,
                                                         as_mapping(schedule, "schedule"))


@facade
async def delete_schedules_for_deployment(session: Any, deployment_id: Any) -> bool:
    """Delete all of a deployment's schedules; True iff there was one."""
    return engine_of(session).delete_schedules_for_deployment(deployment_id)


@facade
async def delete_deployment_schedule(session: Any, deployment_id: Any, deployment_schedule_id: Any) -> bool:
    """Delete one schedule of a deployment; True iff it had it."""
    return engine_of(session).delete_deployment_schedule(deployment_id, deployment_schedule_id)
