"""`prefect.server.models.flows`, awaitable (the subset the engine models: flows
have a name and tags)."""
from __future__ import annotations

from typing import Any

from ..records import Flow
from ._facade import as_filter, as_mapping, engine_of, facade, given_fields

__all__ = ["create_flow", "read_flow", "read_flow_by_name", "read_flows", "count_flows", "update_flow", "delete_flow"]


@facade
async def create_flow(session: Any, flow: Any) -> Flow:
    """Create a flow, or return the existing one with that name. O(1)."""
    engine = engine_of(session)
    fields = given_fields(flow, "flow", "flows.create_flow", required=("name",), allowed=("id", "name", "tags"))
    return engine.create_flow(**fields)


@facade
async def read_flow(session: Any, flow_id: Any) -> Flow | None:
    """The flow or None. O(1)."""
    return engine_of(session).read_flow(flow_id)


@facade
async def read_flow_by_name(session: Any, name: str) -> Flow | None:
    """The flow with this name or None. O(1)."""
    return engine_of(session).read_flow_by_name(name)


@facade
async def read_flows(session: Any, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                     deployment_filter: Any = None, work_pool_filter: Any = None, sort: Any = "NAME_ASC",
                     offset: int | None = None, limit: int | None = None) -> list[Flow]:
    """Flows matching every given filter (a flow-run filter: flows with a matching
    run; a deployment filter: with a matching deployment), sorted, paginated. O(n log n)."""
    return engine_of(session).read_flows(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter),
        as_filter(deployment_filter), as_filter(work_pool_filter), sort, offset, limit)


@facade
async def count_flows(session: Any, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                      deployment_filter: Any = None, work_pool_filter: Any = None) -> int:
    """Number of flows matching every given filter. O(1) without filters."""
    return engine_of(session).count_flows(
        as_filter(flow_filter), as_filter(flow_run_filter), as_filter(task_run_filter),
        as_filter(deployment_filter), as_filter(work_pool_filter))


@facade
async def update_flow(session: Any, flow_id: Any, flow: Any) -> bool:
    """Replace the explicitly given fields (tags); True iff the flow exists. O(1)."""
    return engine_of(session).update_flow(flow_id, as_mapping(flow, "flow"))


@facade
async def delete_flow(session: Any, flow_id: Any) -> bool:
    """Delete a flow with its deployments and runs; True iff it existed."""
    return engine_of(session).delete_flow(flow_id)
