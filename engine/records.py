"""Stored records: slotted attrs classes, one per kind (spec models.md).

Records are the engine's own mutable rows. Readers get the live object; mutate them
only through the engine. Each class lists `_NESTED`: fields holding mutable
containers that a transaction must copy when it snapshots the record.
"""
from __future__ import annotations

import datetime as _dt
import enum
import random
import uuid
from typing import TYPE_CHECKING, Any, Literal, Union

import attrs

from .states import State, StateDetails, StateType, TERMINAL_STATES, compile_copier, new_id, seed_ids  # noqa: F401

if TYPE_CHECKING:  # the schedule types check their input with validation, which imports us
    from .schedules import Schedule

__all__ = [
    "Flow",
    "FlowRun",
    "TaskRun",
    "FlowRunStateRow",
    "TaskRunStateRow",
    "TaskRunStateCache",
    "Deployment",
    "DeploymentSchedule",
    "DeploymentStatus",
    "ConcurrencyOptions",
    "CollisionStrategy",
    "WorkPool",
    "WorkQueue",
    "Worker",
    "WorkerFlowRunResponse",
    "ConcurrencyLimit",
    "ConcurrencyLimitV2",
    "Artifact",
    "ArtifactCollection",
    "FlowRunInput",
    "FlowRunPolicy",
    "TaskRunPolicy",
    "TaskRunResult",
    "Parameter",
    "Constant",
    "TaskInput",
    "random_slug",
    "estimated_run_time",
    "estimated_start_time_delta",
]

_ZERO = _dt.timedelta(0)

_ADJECTIVES = (
    "quick brave calm eager fancy gentle happy jolly kind lively mellow nimble proud "
    "silly witty zany bold bright clever cosmic daring dusty fuzzy golden hidden icy"
).split()
_ANIMALS = (
    "otter badger beaver bison camel cobra coyote crane dingo eagle falcon ferret gecko "
    "heron ibex jackal koala lemur lynx marmot moose newt okapi panda quail raven"
).split()

# Name slugs do not have to be reproducible across processes, but simulations want
# determinism, so they draw from a module RNG that `seed_slugs` can seed.
_slug_rng = random.Random()


def seed_slugs(seed: int | None) -> None:
    """Seed the generator of random run names (for reproducible simulations)."""
    _slug_rng.seed(seed)


def random_slug() -> str:
    """A random two-word run name such as "quick-otter"."""
    return f"{_slug_rng.choice(_ADJECTIVES)}-{_slug_rng.choice(_ANIMALS)}"


# Default `created`/`updated`: replaced by the engine clock on insert; only a record
# built by hand keeps it. Datetimes are immutable, so one shared value will do.
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


# Policies ---------------------------------------------------------------------------

@attrs.define(slots=True)
class FlowRunPolicy:
    """A flow run's `empirical_policy` (retries, pauses)."""

    max_retries: int = 0
    retry_delay_seconds: float = 0.0
    retries: int | None = None
    retry_delay: int | None = None
    pause_keys: set[str] | None = attrs.field(factory=set)
    resuming: bool | None = False

    def __attrs_post_init__(self) -> None:
        # Deprecated fields back-fill the new ones (models.md §8).
        if not self.retries and self.max_retries:
            self.retries = self.max_retries
        if not self.retry_delay and self.retry_delay_seconds:
            self.retry_delay = self.retry_delay_seconds

    def copy(self) -> "FlowRunPolicy":
        new = _copy_flow_policy(self)
        if self.pause_keys is not None:
            new.pause_keys = set(self.pause_keys)
        return new


_copy_flow_policy = compile_copier(FlowRunPolicy)


def _check_retry_delay(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, list) and len(value) > 50:
        raise ValueError("Can not configure more than 50 retry delays per task.")


def _check_jitter(instance: Any, attribute: Any, value: Any) -> None:
    # Only numbers are compared: any other value is refused by type when the policy
    # is given to the engine (validation._check_policy).
    if isinstance(value, (int, float)) and value < 0:
        raise ValueError("`retry_jitter_factor` must be >= 0.")


@attrs.define(slots=True)
class TaskRunPolicy:
    """A task run's `empirical_policy`."""

    max_retries: int = 0
    retry_delay_seconds: float = 0.0
    retries: int | None = None
    retry_delay: Union[int, float, list[int], None] = attrs.field(default=None, validator=_check_retry_delay)
    retry_jitter_factor: float | None = attrs.field(default=None, validator=_check_jitter)

    def __attrs_post_init__(self) -> None:
        if not self.retries and self.max_retries:
            self.retries = self.max_retries
        if not self.retry_delay and self.retry_delay_seconds:
            self.retry_delay = self.retry_delay_seconds

    def copy(self) -> "TaskRunPolicy":
        new = _copy_task_policy(self)
        if isinstance(self.retry_delay, list):
            new.retry_delay = list(self.retry_delay)
        return new


_copy_task_policy = compile_copier(TaskRunPolicy)


# task_inputs entries -------------------------------------------------------------------

@attrs.frozen(slots=True)
class TaskRunResult:
    id: uuid.UUID
    input_type: Literal["task_run"] = "task_run"


@attrs.frozen(slots=True)
class Parameter:
    name: str
    input_type: Literal["parameter"] = "parameter"


@attrs.frozen(slots=True)
class Constant:
    type: str
    input_type: Literal["constant"] = "constant"


TaskInput = Union[TaskRunResult, Parameter, Constant]


# Entities -------------------------------------------------------------------------------

@attrs.define(slots=True, eq=False)
class Flow:
    name: str
    tags: list[str] = attrs.field(factory=list)
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ("tags",)


class DeploymentStatus(str, enum.Enum):
    READY = "READY"
    NOT_READY = "NOT_READY"


class CollisionStrategy(str, enum.Enum):
    ENQUEUE = "ENQUEUE"
    CANCEL_NEW = "CANCEL_NEW"


@attrs.define(slots=True)
class ConcurrencyOptions:
    collision_strategy: CollisionStrategy = attrs.field(
        default=CollisionStrategy.ENQUEUE, converter=CollisionStrategy
    )


@attrs.define(slots=True, eq=False)
class Deployment:
    name: str
    flow_id: uuid.UUID
    version: str | None = None
    description: str | None = None
    work_queue_name: str | None = None
    work_queue_id: uuid.UUID | None = None
    job_variables: dict[str, Any] = attrs.field(factory=dict)
    path: str | None = None
    entrypoint: str | None = None
    last_polled: _dt.datetime | None = None
    status: DeploymentStatus = DeploymentStatus.NOT_READY
    paused: bool = False
    concurrency_limit_id: uuid.UUID | None = None
    concurrency_options: ConcurrencyOptions | None = None
    tags: list[str] = attrs.field(factory=list)
    parameters: dict[str, Any] = attrs.field(factory=dict)
    pull_steps: list[Any] | None = None
    parameter_openapi_schema: dict[str, Any] | None = attrs.field(factory=dict)
    enforce_parameter_schema: bool = True
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH
    # Last, as the columns SQLite schema version 5 added (backends/sqlite.py). The
    # block documents are not kept: their ids are stored as given, never looked up.
    created_by: dict[str, Any] | None = None
    updated_by: dict[str, Any] | None = None
    infrastructure_document_id: uuid.UUID | None = None
    storage_document_id: uuid.UUID | None = None

    _NESTED = ("tags", "parameters", "job_variables")


@attrs.define(slots=True, eq=False)
class DeploymentSchedule:
    """One schedule of a deployment (Prefect 3.1.0's DeploymentSchedule): the
    schedule object (immutable, so shared, never copied), whether schedule_runs
    uses it, and `max_scheduled_runs`, stored for Prefect's scheduler service
    (schedule_runs itself does not read it). Removed with its deployment."""

    deployment_id: uuid.UUID
    schedule: Schedule
    active: bool = True
    max_scheduled_runs: int | None = None
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


# A work pool's or work queue's status (Prefect's WorkPoolStatus, WorkQueueStatus).
WORK_STATUSES = ("READY", "NOT_READY", "PAUSED")


@attrs.define(slots=True, eq=False)
class WorkPool:
    name: str
    type: str | None = None
    description: str | None = None
    base_job_template: dict[str, Any] = attrs.field(factory=dict)
    is_paused: bool = False
    default_queue_id: uuid.UUID | None = None
    concurrency_limit: int | None = None
    status: str = "NOT_READY"
    last_transitioned_status_at: _dt.datetime | None = None
    last_status_event_id: uuid.UUID | None = None
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ("base_job_template",)


@attrs.define(slots=True, eq=False)
class WorkQueue:
    name: str
    work_pool_id: uuid.UUID
    description: str = ""
    is_paused: bool = False
    concurrency_limit: int | None = None
    priority: int = 1
    filter: dict[str, Any] | None = None
    last_polled: _dt.datetime | None = None
    status: str = "NOT_READY"
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


@attrs.define(slots=True, eq=False)
class Worker:
    """A worker process of a work pool, as its heartbeats left it: one per (pool,
    name), removed with its pool. `status` is OFFLINE until the first heartbeat
    stores ONLINE (Prefect's column default); a foreman pass sets it back
    (`Engine.run_foreman_once`)."""

    name: str
    work_pool_id: uuid.UUID
    last_heartbeat_time: _dt.datetime = _EPOCH
    heartbeat_interval_seconds: int | None = None
    status: str = "OFFLINE"
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


@attrs.frozen(slots=True)
class WorkerFlowRunResponse:
    """One run a worker may submit (get_scheduled_flow_runs): the run with the pool
    and queue it was found in. Not stored."""

    work_pool_id: uuid.UUID
    work_queue_id: uuid.UUID
    flow_run: Any


@attrs.define(slots=True, eq=False)
class ConcurrencyLimit:
    """Tag-based (v1) limit on concurrently RUNNING task runs."""

    tag: str
    concurrency_limit: int
    active_slots: list[str] = attrs.field(factory=list)
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ("active_slots",)


@attrs.define(slots=True, eq=False)
class ConcurrencyLimitV2:
    """Global (v2) counter-based limit; deployments link one by id."""

    name: str
    limit: int
    active: bool = True
    active_slots: int = 0
    denied_slots: int = 0
    slot_decay_per_second: float = 0.0
    avg_slot_occupancy_seconds: float = 2.0
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


@attrs.define(slots=True, eq=False)
class Artifact:
    """A result artifact (only what state results need: states.md §5)."""

    key: str | None = None
    task_run_id: uuid.UUID | None = None
    flow_run_id: uuid.UUID | None = None
    type: str | None = None
    data: Any = None
    description: str | None = None
    metadata_: dict[str, Any] | None = None
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


@attrs.define(slots=True, eq=False)
class ArtifactCollection:
    """The latest artifact under a key, with that artifact's descriptive columns.
    Upserted per keyed artifact; a column the artifact did not set (a falsy type or
    description, a task run's id for a flow run's result) keeps its earlier value,
    as Prefect's upsert writes only the columns set."""

    key: str
    latest_id: uuid.UUID
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH
    # (after `updated`: added in SQLite schema version 6, appended to older tables)
    task_run_id: uuid.UUID | None = None
    flow_run_id: uuid.UUID | None = None
    type: str | None = None
    data: Any = None
    description: str | None = None
    metadata_: dict[str, Any] | None = None

    _NESTED = ()


@attrs.define(slots=True, eq=False)
class FlowRunInput:
    """A keyed text value stored for a flow run (Prefect's flow_run_input): a paused
    run's input schema and the answer it waits for, or messages between runs. One
    per (flow_run_id, key); removed with its flow run. Never changed once written."""

    flow_run_id: uuid.UUID
    key: str
    value: str
    sender: str | None = None
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


@attrs.define(slots=True, eq=False)
class TaskRunStateCache:
    cache_key: str
    task_run_state_id: uuid.UUID
    cache_expiration: _dt.datetime | None = None
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


@attrs.define(slots=True, eq=False)
class _StateRow:
    type: StateType
    timestamp: _dt.datetime
    name: str
    message: str | None = None
    state_details: StateDetails = attrs.field(factory=StateDetails)
    data: Any = None  # legacy column, never written by orchestration
    result_artifact_id: uuid.UUID | None = None
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH

    _NESTED = ()


@attrs.define(slots=True, eq=False)
class FlowRunStateRow(_StateRow):
    flow_run_id: uuid.UUID = attrs.field(kw_only=True)


@attrs.define(slots=True, eq=False)
class TaskRunStateRow(_StateRow):
    task_run_id: uuid.UUID = attrs.field(kw_only=True)


@attrs.define(slots=True, eq=False)
class _Run:
    name: str = attrs.field(factory=random_slug)
    tags: list[str] = attrs.field(factory=list)
    state_id: uuid.UUID | None = None
    state_type: StateType | None = None
    state_name: str | None = None
    state_timestamp: _dt.datetime | None = None
    run_count: int = 0
    expected_start_time: _dt.datetime | None = None
    next_scheduled_start_time: _dt.datetime | None = None
    start_time: _dt.datetime | None = None
    end_time: _dt.datetime | None = None
    total_run_time: _dt.timedelta = _ZERO
    id: uuid.UUID = attrs.field(factory=new_id)
    created: _dt.datetime = _EPOCH
    updated: _dt.datetime = _EPOCH
    # The current state object (with data), kept beside `state_id` so reads and
    # orchestration need no lookup. Not a stored column.
    state: State | None = attrs.field(default=None, repr=False)


@attrs.define(slots=True, eq=False)
class FlowRun(_Run):
    flow_id: uuid.UUID = attrs.field(kw_only=True)
    deployment_id: uuid.UUID | None = None
    deployment_version: str | None = None
    work_queue_name: str | None = None
    work_queue_id: uuid.UUID | None = None
    flow_version: str | None = None
    parameters: dict[str, Any] = attrs.field(factory=dict)
    idempotency_key: str | None = None
    context: dict[str, Any] = attrs.field(factory=dict)
    empirical_policy: FlowRunPolicy = attrs.field(factory=FlowRunPolicy)
    created_by: dict[str, Any] | None = None
    infrastructure_pid: str | None = None
    job_variables: dict[str, Any] | None = attrs.field(factory=dict)
    infrastructure_document_id: uuid.UUID | None = None
    parent_task_run_id: uuid.UUID | None = None
    auto_scheduled: bool = False

    _NESTED = ("tags", "parameters", "context", "job_variables")
    _POLICY = True


@attrs.define(slots=True, eq=False)
class TaskRun(_Run):
    task_key: str = attrs.field(kw_only=True)
    dynamic_key: str = attrs.field(kw_only=True)
    flow_run_id: uuid.UUID | None = None
    cache_key: str | None = None
    cache_expiration: _dt.datetime | None = None
    task_version: str | None = None
    flow_run_run_count: int = 0
    empirical_policy: TaskRunPolicy = attrs.field(factory=TaskRunPolicy)
    task_inputs: dict[str, list[TaskInput]] = attrs.field(factory=dict)

    _NESTED = ("tags", "task_inputs")
    _POLICY = True


# Computed properties ------------------------------------------------------------------------

def estimated_run_time(run: _Run, now: _dt.datetime) -> _dt.timedelta:
    """Run time so far: total plus the current RUNNING stretch. O(1)."""
    if run.state_type is StateType.RUNNING and run.state_timestamp is not None:
        return run.total_run_time + (now - run.state_timestamp)
    return run.total_run_time


def estimated_start_time_delta(run: _Run, now: _dt.datetime) -> _dt.timedelta:
    """Lateness: how far the start trails the expected start (models.md §10). O(1)."""
    start, expected = run.start_time, run.expected_start_time
    if start is not None and expected is not None and start > expected:
        return start - expected
    if (
        start is None
        and expected is not None
        and expected < now
        and run.state_type not in TERMINAL_STATES
    ):
        return now - expected
    return _ZERO
