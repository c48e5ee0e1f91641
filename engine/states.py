"""Run states: StateType, StateDetails, State, the named constructors and CountByState.

States built outside the engine may leave `timestamp` (and a SCHEDULED state's
`scheduled_time`) unset; the engine stamps them from its clock when they are
submitted, which is what Prefect's API does with client states ("server now").
"""
from __future__ import annotations

import copy
import datetime as _dt
import enum
import os
import random
import struct
import uuid
from collections.abc import Mapping
from typing import Any, Iterator

import attrs

from .errors import ValidationError, shown

__all__ = [
    "StateType",
    "TERMINAL_STATES",
    "ALL_ORCHESTRATION_STATES",
    "StateDetails",
    "State",
    "CountByState",
    "Scheduled",
    "Late",
    "AwaitingRetry",
    "AwaitingConcurrencySlot",
    "Retrying",
    "Cached",
    "Pending",
    "Running",
    "Completed",
    "Failed",
    "Crashed",
    "Cancelled",
    "Cancelling",
    "Paused",
    "Suspended",
    "has_persisted_result",
]


class StateType(str, enum.Enum):
    """The nine state types; each value equals its name."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"

    # f-strings on Python >= 3.11 render "StateType.PENDING"; keep that everywhere so
    # reason strings match Prefect 3.1.0 as recorded (on Python 3.11+).
    def __str__(self) -> str:
        return f"StateType.{self.name}"

    __format__ = object.__format__  # type: ignore[assignment]


TERMINAL_STATES = frozenset(
    {StateType.COMPLETED, StateType.CANCELLED, StateType.FAILED, StateType.CRASHED}
)
ALL_ORCHESTRATION_STATES = frozenset([*StateType, None])


# Ids of new states and records come from `new_id`: random (uuid4) by default, or a
# seeded generator when a simulation asks for reproducible stores (`seed_ids`).
_id_rng = None


def seed_ids(seed: int | None) -> None:
    """Make `new_id` deterministic from `seed` (None restores random uuid4 ids)."""
    global _id_rng
    _id_rng = None if seed is None else random.Random(seed)


# The version-4 bits, set as uuid.UUID(..., version=4) sets them: building the UUID
# directly skips its constructor's argument handling (half the cost of a new record).
_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (4 << 76)
_urandom = os.urandom
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown
_iter_unpack = struct.iter_unpack
# UUID forbids attribute assignment; its slots' own setters are the cheapest way past
# that (a third of the cost of object.__setattr__).
_UUID = uuid.UUID
_new_uuid = object.__new__
_set_uuid_int = uuid.UUID.__dict__["int"].__set__
_set_uuid_safety = uuid.UUID.__dict__["is_safe"].__set__


# Random ids are drawn from the OS 256 at a time: one urandom call per id was half
# the cost of making it. `next` on a list iterator is atomic under the GIL, so
# threads never share a value; a forked child drops the parent's batch.
_BATCH = 256
_batch: Iterator[int] = iter(())


def _refill() -> Iterator[int]:
    global _batch
    pairs = _iter_unpack(">QQ", _urandom(16 * _BATCH))
    _batch = batch = iter([(((hi << 64) | lo) & _V4_CLEAR) | _V4_SET for hi, lo in pairs])
    return batch


def _drop_batch() -> None:
    global _batch
    _batch = iter(())


os.register_at_fork(after_in_child=_drop_batch)


def new_id() -> uuid.UUID:
    """A fresh version-4 UUID (seeded when `seed_ids` was called). O(1)."""
    rng = _id_rng
    if rng is None:
        value = next(_batch, None)
        if value is None:
            value = next(_refill())
    else:
        value = (rng.getrandbits(128) & _V4_CLEAR) | _V4_SET
    new = _new_uuid(_UUID)
    _set_uuid_int(new, value)
    _set_uuid_safety(new, _UNKNOWN_SAFETY)
    return new


def _compile(cls: type, signature: str, values: dict[str, str], prelude: tuple[str, ...] = (),
             names: dict[str, Any] | None = None) -> Any:
    # Straight-line field stores. Without a custom __setattr__ (no converters or
    # validators on assignment) a plain attribute store is the slot write itself,
    # specialised by the interpreter and several times cheaper than
    # object.__setattr__. Classes with on-setattr hooks get their slots written
    # through each slot's own descriptor instead (bypassing the hooks, at a third of
    # the cost of object.__setattr__).
    plain = cls.__setattr__ is object.__setattr__
    namespace = {"_new": object.__new__, "cls": cls, **(names or {})}
    lines = [signature, *("    " + line for line in prelude), "    new = _new(cls)"]
    for n, v in values.items():
        if plain:
            lines.append(f"    new.{n} = {v}")
        else:
            namespace[f"set_{n}"] = _slot_setter(cls, n)
            lines.append(f"    set_{n}(new, {v})")
    lines.append("    return new")
    exec("\n".join(lines), namespace)  # noqa: S102 - built from attrs field names only
    return namespace[signature[4:signature.index("(")]]


def _slot_setter(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            return descriptor.__set__
    raise AttributeError(f"{cls.__name__} has no slot {shown(name)}")


def compile_copier(cls: type) -> Any:
    """A function making a shallow copy of an attrs instance of `cls` without running
    `__init__` (`attrs.evolve` is several times slower, and copies sit on the hot
    path of every transaction snapshot). O(fields)."""
    names = [f.name for f in attrs.fields(cls)]
    return _compile(cls, "def copy(src):", {n: f"src.{n}" for n in names})


def compile_checked_copier(cls: type, checks: dict[str, str], names: dict[str, Any]) -> Any:
    """Like `compile_copier`, but `copy(src, what)` first runs, for each field named
    in `checks`, that statement on the field's value: `{v}` in it names the local
    holding the value (the statement may replace it or raise), `{field}` the field;
    `names` are the globals the statements use. O(fields)."""
    fields = [f.name for f in attrs.fields(cls)]
    prelude = []
    for i, n in enumerate(fields):
        prelude.append(f"v{i} = src.{n}")
        if n in checks:
            prelude.append(checks[n].replace("{v}", f"v{i}").replace("{field}", n))
    return _compile(cls, "def copy(src, what):", {n: f"v{i}" for i, n in enumerate(fields)}, tuple(prelude), names)


def compile_maker(cls: type) -> Any:
    """A constructor for `cls` that sets every field from its keyword arguments and
    skips defaults, converters and validators: for values the engine already
    checked, on paths that build a record per transition. O(fields)."""
    names = [f.name for f in attrs.fields(cls)]
    return _compile(cls, f"def make(*, {', '.join(names)}):", {n: n for n in names})


def _default_name(state_type: StateType) -> str:
    return " ".join(word.capitalize() for word in state_type.value.split("_"))


@attrs.define(slots=True, eq=True)
class StateDetails:
    """Metadata carried by a state. Every field is optional; see spec states.md §3."""

    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None
    child_flow_run_id: uuid.UUID | None = None
    scheduled_time: _dt.datetime | None = None
    cache_key: str | None = None
    cache_expiration: _dt.datetime | None = None
    deferred: bool | None = False
    untrackable_result: bool = False
    pause_timeout: _dt.datetime | None = None
    pause_reschedule: bool = False
    pause_key: str | None = None
    run_input_keyset: dict[str, str] | None = None
    refresh_cache: bool | None = None
    retriable: bool | None = None
    transition_id: uuid.UUID | None = None
    task_parameters_id: uuid.UUID | None = None

    def copy(self) -> "StateDetails":
        """A copy whose mutable parts are independent of this one. O(1)."""
        new = _copy_details(self)
        if self.run_input_keyset is not None:
            new.run_input_keyset = dict(self.run_input_keyset)
        return new


_copy_details = compile_copier(StateDetails)
STATE_DETAILS_FIELDS = frozenset(f.name for f in attrs.fields(StateDetails))


def as_state_details(value: Any, what: str = "state_details") -> StateDetails:
    """StateDetails from StateDetails, a dict (unknown keys ignored, as Prefect does)
    or None (defaults); `what` names the value in errors."""
    if value is None:
        return StateDetails()
    if isinstance(value, StateDetails):
        return value
    if isinstance(value, Mapping):
        return StateDetails(**{k: v for k, v in value.items() if k in STATE_DETAILS_FIELDS})
    raise ValidationError(f"{what} must be a StateDetails or a dict, got {type(value).__name__} {shown(value)}")


def as_state_type(value: Any, what: str = "state type") -> StateType:
    """A StateType from a member or its value; `what` names the value in errors."""
    if isinstance(value, StateType):
        return value
    try:
        return StateType(value)
    except ValueError:
        raise ValidationError(
            f"{what}: unknown state type {shown(value)}; expected one of {[t.value for t in StateType]}"
        ) from None


# Converters run in __init__ only, not on assignment (as Prefect's models do not
# validate assignments): attribute writes stay plain slot stores.
@attrs.define(slots=True, eq=False, on_setattr=attrs.setters.NO_OP)
class State:
    """A run state. `timestamp` None means "stamp with the engine's clock on submission".

    Equality ignores `id`; the hash is (flow_run_id, task_run_id, timestamp, type).
    """

    type: StateType = attrs.field(converter=as_state_type)
    name: str | None = None
    timestamp: _dt.datetime | None = None
    message: str | None = None
    data: Any = None
    state_details: StateDetails = attrs.field(factory=StateDetails, converter=as_state_details)
    id: uuid.UUID = attrs.field(factory=new_id)

    def __attrs_post_init__(self) -> None:
        if self.name is None:
            self.name = _default_name(self.type)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (
            self.type == other.type
            and self.name == other.name
            and self.timestamp == other.timestamp
            and self.message == other.message
            and self.data == other.data
            and self.state_details == other.state_details
        )

    def __hash__(self) -> int:
        d = self.state_details
        return hash((d.flow_run_id, d.task_run_id, self.timestamp, self.type))

    def __str__(self) -> str:
        parts = []
        if self.message:
            parts.append(f'"{self.message}"')
        if (self.name or "").lower() != self.type.value.lower():
            parts.append(f"type={self.type.value}")
        return f"{self.name}({', '.join(parts)})"

    # type predicates -------------------------------------------------------------
    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in TERMINAL_STATES

    def shallow_copy(self) -> "State":
        """Top-level fields independent, `state_details` and `data` shared. O(1)."""
        return _copy_state(self)

    def fresh_copy(self, now: _dt.datetime) -> "State":
        """A deep copy with a new id and `timestamp = now`. O(size of data)."""
        return State(
            type=self.type,
            name=self.name,
            timestamp=now,
            message=self.message,
            data=copy.deepcopy(self.data),
            state_details=self.state_details.copy(),
        )


_copy_state = compile_copier(State)
make_state = compile_maker(State)


def has_persisted_result(state: State) -> bool:
    """True when the state's data counts as a persisted result (states.md §5)."""
    data = state.data
    if not data:
        return False
    if isinstance(data, dict):
        return data.get("type") != "unpersisted"
    return True


@attrs.define(slots=True)
class CountByState:
    """Number of runs per state type (field order as in Prefect)."""

    COMPLETED: int = 0
    PENDING: int = 0
    RUNNING: int = 0
    FAILED: int = 0
    CANCELLED: int = 0
    CRASHED: int = 0
    PAUSED: int = 0
    CANCELLING: int = 0
    SCHEDULED: int = 0

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


# Named constructors ----------------------------------------------------------------

_PLAIN_KW = frozenset({"name", "message", "timestamp", "data", "state_details"})


def _build(state_type: StateType, default_name: str, kw: dict[str, Any]) -> State:
    # `Running()`, `Scheduled(t)` and friends: when nothing needs converting, skip
    # __init__'s converters (a client builds one state per transition).
    if kw.keys() <= _PLAIN_KW:
        details = kw.get("state_details")
        if details is None or details.__class__ is StateDetails:
            name = kw.get("name", default_name)
            return make_state(
                type=state_type, name=_default_name(state_type) if name is None else name,
                timestamp=kw.get("timestamp"), message=kw.get("message"), data=kw.get("data"),
                state_details=StateDetails() if details is None else details, id=new_id(),
            )
    kw.setdefault("name", default_name)
    return State(type=state_type, **kw)


def Scheduled(scheduled_time: _dt.datetime | None = None, **kw: Any) -> State:
    """A SCHEDULED state. Without `scheduled_time` the engine stamps "now" on submission
    (overwriting any `state_details.scheduled_time`, as Prefect does)."""
    details = as_state_details(kw.pop("state_details", None))
    if scheduled_time is None:
        details.scheduled_time = None
    elif details.scheduled_time:
        raise ValueError("An extra scheduled_time was provided in state_details")
    else:
        details.scheduled_time = scheduled_time
    kw["state_details"] = details
    return _build(StateType.SCHEDULED, "Scheduled", kw)


def Late(scheduled_time: _dt.datetime | None = None, **kw: Any) -> State:
    kw.setdefault("name", "Late")
    return Scheduled(scheduled_time, **kw)


def AwaitingRetry(scheduled_time: _dt.datetime | None = None, **kw: Any) -> State:
    kw.setdefault("name", "AwaitingRetry")
    return Scheduled(scheduled_time, **kw)


def AwaitingConcurrencySlot(scheduled_time: _dt.datetime | None = None, **kw: Any) -> State:
    kw.setdefault("name", "AwaitingConcurrencySlot")
    return Scheduled(scheduled_time, **kw)


def Retrying(**kw: Any) -> State:
    return _build(StateType.RUNNING, "Retrying", kw)


def Cached(**kw: Any) -> State:
    return _build(StateType.COMPLETED, "Cached", kw)


def Pending(**kw: Any) -> State:
    return _build(StateType.PENDING, "Pending", kw)


def Running(**kw: Any) -> State:
    return _build(StateType.RUNNING, "Running", kw)


def Completed(**kw: Any) -> State:
    return _build(StateType.COMPLETED, "Completed", kw)


def Failed(**kw: Any) -> State:
    return _build(StateType.FAILED, "Failed", kw)


def Crashed(**kw: Any) -> State:
    return _build(StateType.CRASHED, "Crashed", kw)


def Cancelled(**kw: Any) -> State:
    return _build(StateType.CANCELLED, "Cancelled", kw)


def Cancelling(**kw: Any) -> State:
    return _build(StateType.CANCELLING, "Cancelling", kw)


def Paused(
    timeout_seconds: float | None = None,
    pause_expiration_time: _dt.datetime | None = None,
    reschedule: bool = False,
    pause_key: str | None = None,
    *,
    now: _dt.datetime | None = None,
    **kw: Any,
) -> State:
    """A PAUSED state. `timeout_seconds` is counted from `now`; without `now`, from the
    engine's clock when the engine receives the state (until then `pause_timeout`
    holds the timeout as a timedelta), so pauses expire on a manual clock too."""
    details = as_state_details(kw.pop("state_details", None))
    if details.pause_timeout:
        raise ValueError("An extra pause timeout was provided in state_details")
    if timeout_seconds is not None and pause_expiration_time is not None:
        raise ValueError("Cannot supply both a pause_expiration_time and timeout_seconds")
    if pause_expiration_time is not None:
        details.pause_timeout = pause_expiration_time
    elif timeout_seconds is not None:
        try:
            timeout = _dt.timedelta(seconds=timeout_seconds)
            details.pause_timeout = timeout if now is None else now + timeout
        except (OverflowError, ValueError):  # (infinity, NaN, past timedelta's or datetime's range)
            raise ValidationError(f"timeout_seconds is out of range: {shown(timeout_seconds)}") from None
    details.pause_reschedule = reschedule
    details.pause_key = pause_key
    kw["state_details"] = details
    return _build(StateType.PAUSED, "Paused", kw)


def Suspended(
    timeout_seconds: float | None = None,
    pause_expiration_time: _dt.datetime | None = None,
    pause_key: str | None = None,
    **kw: Any,
) -> State:
    kw.setdefault("name", "Suspended")
    return Paused(
        timeout_seconds=timeout_seconds,
        pause_expiration_time=pause_expiration_time,
        reschedule=True,
        pause_key=pause_key,
        **kw,
    )
