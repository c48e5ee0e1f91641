"""`prefect.server.models.flow_run_input`, awaitable."""
from __future__ import annotations

from typing import Any

from ..records import FlowRunInput
from ._facade import engine_of, facade, given_fields

__all__ = ["create_flow_run_input", "filter_flow_run_input", "read_flow_run_input", "delete_flow_run_input"]


@facade
async def create_flow_run_input(session: Any, flow_run_input: Any) -> FlowRunInput:
    """Store an input (flow_run_id, key, value, optional sender). O(1)."""
    fields = given_fields(flow_run_input, "flow_run_input", "flow_run_input.create_flow_run_input",
                          required=("flow_run_id", "key", "value"), allowed=("flow_run_id", "key", "value", "sender"))
    return engine_of(session).create_flow_run_input(**fields)


@facade
async def filter_flow_run_input(session: Any, flow_run_id: Any, prefix: str, limit: int,
                                exclude_keys: list[str]) -> list[FlowRunInput]:
    """The run's inputs under `prefix`, less `exclude_keys`, oldest first. O(k log k)."""
    return engine_of(session).filter_flow_run_input(flow_run_id, prefix, limit, exclude_keys)


@facade
async def read_flow_run_input(session: Any, flow_run_id: Any, key: str) -> FlowRunInput | None:
    """The run's input under `key`, or None. O(1)."""
    return engine_of(session).read_flow_run_input(flow_run_id, key)


@facade
async def delete_flow_run_input(session: Any, flow_run_id: Any, key: str) -> bool:
    """Delete the run's input under `key`; True iff there was one. O(1)."""
    return engine_of(session).delete_flow_run_input(flow_run_id, key)
