"""Small helpers shared by the built-in rules."""
from __future__ import annotations

import datetime as _dt
from typing import Any

from ..errors import OrchestrationError
from ..states import State, StateDetails, StateType
from .rules import BaseOrchestrationRule

__all__ = ["CoreRule", "make_state", "retry_time", "LEAVE_TERMINAL_ABORT"]

# Where a terminal run may never go: both terminal-state rules ABORT these.
LEAVE_TERMINAL_ABORT = frozenset({StateType.CANCELLING, StateType.PAUSED, StateType.CRASHED})


class CoreRule(BaseOrchestrationRule):
    """Base of the built-in rules: they never assign to the states or context they
    are handed (only the mutators change the outcome), so no defensive copies."""

    SAFE_COPIES = False


def make_state(
    state_type: StateType,
    name: str,
    now: _dt.datetime,
    *,
    message: str | None = None,
    data: Any = None,
    details: StateDetails | None = None,
) -> State:
    """A State built by a rule, stamped with the transition's now. O(1)."""
    return State(
        type=state_type,
        name=name,
        timestamp=now,
        message=message,
        data=data,
        state_details=details if details is not None else StateDetails(),
    )


def retry_time(now: _dt.datetime, delay: float, run: Any) -> _dt.datetime:
    """When a retry `delay` seconds after `now` is due. A delay that reaches past
    9999-12-31 is an OrchestrationError naming it (Prefect's rule raises a bare
    OverflowError there). O(1)."""
    try:
        return now + _dt.timedelta(seconds=delay)
    except OverflowError:
        raise OrchestrationError(
            f"run {run.id}: a retry_delay of {delay} seconds puts its retry past the last datetime (9999-12-31)"
        ) from None
