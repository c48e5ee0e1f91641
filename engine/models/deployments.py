"""`prefect.server.models.deployments`, awaitable (the parts the run layer uses:
create/upsert with a concurrency limit, reads, delete)."""
from __future__ import annotations

from typing import Any

from ..records import Deployment
from ._facade import as_filter, as_mapping, engine_of, facade, given_fields

__all__ = [
    "create_deployment", "read_deployment", "read_deployment_by_name", "read_deployments",
    "count_deployments", "update_deployment", "delete_deployment",
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
