"""`prefect.server.models.flows`, awaitable (the subset the engine models:
flows have a name and tags; flow filters are not modelled)."""
from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..records import Flow
from ._facade import as_mapping, engine_of, facade

__all__ = ["create_flow", "read_flow", "read_flow_by_name", "read_flows", "count_flows", "delete_flow"]


@facade
async def create_flow(session: Any, flow: Any) -> Flow:
    """Create a flow, or return the existing one with that name. O(1)."""
    engine = engine_of(session)
    fields = as_mapping(flow, "flow")
    unknown = sorted(set(fields) - {"name", "tags", "id"})
    if unknown:
        raise ValidationError(f"flows.create_flow(): unknown flow field(s) {unknown}; accepted: id, name, tags")
    if "name" not in fields:
        raise ValidationError("flows.create_flow(): flow needs a name")
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
async def read_flows(session: Any, sort: str = "NAME_ASC", offset: int | None = None, limit: int | None = None) -> list[Flow]:
    """Flows by name (NAME_ASC or NAME_DESC), paginated. O(n log n)."""
    if sort not in ("NAME_ASC", "NAME_DESC"):
        raise ValidationError(f"flows.read_flows(): sort must be NAME_ASC or NAME_DESC, got {sort!r}")
    for key, value in (("offset", offset), ("limit", limit)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValidationError(f"flows.read_flows(): {key} must be a non-negative integer, got {value!r}")
    rows = engine_of(session).read_flows()
    if sort == "NAME_DESC":
        rows.reverse()
    start = offset or 0
    return rows[start: None if limit is None else start + limit]


@facade
async def count_flows(session: Any) -> int:
    """Number of flows. O(1)."""
    engine = engine_of(session)
    with engine._lock:
        return len(engine._table("flow"))


@facade
async def delete_flow(session: Any, flow_id: Any) -> bool:
    """Delete a flow with its deployments and runs; True iff it existed."""
    return engine_of(session).delete_flow(flow_id)
