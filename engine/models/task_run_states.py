"""`prefect.server.models.task_run_states`, awaitable. States come back as State
objects (with their data), not ORM rows."""
from __future__ import annotations

from typing import Any

from ..states import State
from ._facade import engine_of, facade

__all__ = ["read_task_run_state", "read_task_run_states", "delete_task_run_state"]


@facade
async def read_task_run_state(session: Any, task_run_state_id: Any) -> State | None:
    """One state by id, or None. O(1)."""
    return engine_of(session).read_task_run_state(task_run_state_id)


@facade
async def read_task_run_states(session: Any, task_run_id: Any) -> list[State]:
    """A task run's states, oldest first. O(h log h) for h states."""
    return engine_of(session).read_task_run_states(task_run_id)


@facade
async def delete_task_run_state(session: Any, task_run_state_id: Any) -> bool:
    """Delete one state row; True iff it existed."""
    return engine_of(session).delete_task_run_state(task_run_state_id)
