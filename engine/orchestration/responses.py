"""What a state transition answers: a status, status details, and the validated state
(spec orchestration.md §2)."""
from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal, Union

import attrs

from ..errors import ValidationError, shown
from ..states import State

__all__ = [
    "SetStateStatus",
    "StateAcceptDetails",
    "StateRejectDetails",
    "StateAbortDetails",
    "StateWaitDetails",
    "StateResponseDetails",
    "OrchestrationResult",
    "details_from_dict",
]


class SetStateStatus(str, enum.Enum):
    """How a proposal was answered: ACCEPT (stored), REJECT (another state or nothing
    stored), WAIT (retry after a delay), ABORT (stop trying)."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    ABORT = "ABORT"
    WAIT = "WAIT"


def _as_reason(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"reason must be a string or None, got {shown(value)}")
    return value


def _as_int_seconds(value: Any) -> int:
    # Prefect declares delay_seconds as int: whole floats (its settings are floats)
    # are taken, a fraction is refused as pydantic refuses it.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        isinstance(value, float) and not value.is_integer()  # (NaN and infinities too)
    ):
        raise ValidationError(f"delay_seconds must be a whole number of seconds, got {shown(value)}")
    return int(value)


# Details are frozen so one shared "accept" instance can serve every transition.
@attrs.frozen(slots=True)
class StateAcceptDetails:
    type: Literal["accept_details"] = "accept_details"


@attrs.frozen(slots=True)
class StateRejectDetails:
    reason: str | None = attrs.field(default=None, converter=_as_reason)
    type: Literal["reject_details"] = "reject_details"


@attrs.frozen(slots=True)
class StateAbortDetails:
    reason: str | None = attrs.field(default=None, converter=_as_reason)
    type: Literal["abort_details"] = "abort_details"


@attrs.frozen(slots=True)
class StateWaitDetails:
    delay_seconds: int = attrs.field(converter=_as_int_seconds)
    reason: str | None = attrs.field(default=None, converter=_as_reason)
    type: Literal["wait_details"] = "wait_details"


StateResponseDetails = Union[StateAcceptDetails, StateRejectDetails, StateAbortDetails, StateWaitDetails]

ACCEPT_DETAILS = StateAcceptDetails()

_BY_TYPE = {
    "accept_details": StateAcceptDetails,
    "reject_details": StateRejectDetails,
    "abort_details": StateAbortDetails,
    "wait_details": StateWaitDetails,
}


def details_from_dict(value: Mapping[str, Any]) -> StateResponseDetails:
    """Parse a details dict, picking the class by its `type` key. O(1)."""
    kind = value.get("type", "accept_details")
    cls = _BY_TYPE.get(kind)
    if cls is None:
        raise ValidationError(f"unknown details type {shown(kind)}; expected one of {sorted(_BY_TYPE)}")
    allowed = {f.name for f in attrs.fields(cls)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValidationError(f"{kind} has unknown key(s) {unknown}")
    if cls is StateWaitDetails and "delay_seconds" not in value:
        raise ValidationError("wait_details needs delay_seconds")
    return cls(**{k: v for k, v in value.items() if k != "type"})


def _as_details(value: Any) -> StateResponseDetails:
    if isinstance(value, Mapping):
        return details_from_dict(value)
    if isinstance(value, tuple(_BY_TYPE.values())):
        return value
    raise ValidationError(f"details must be a details object or dict, got {shown(value)}")


def _as_status(value: Any) -> SetStateStatus:
    try:
        return SetStateStatus(value)
    except ValueError:
        raise ValidationError(f"unknown status {shown(value)}") from None


@attrs.define(slots=True)
class OrchestrationResult:
    """The answer to `set_flow_run_state` / `set_task_run_state`."""

    state: State | None
    status: SetStateStatus = attrs.field(converter=_as_status)
    details: StateResponseDetails = attrs.field(converter=_as_details)
