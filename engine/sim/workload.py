"""The workload description: its schema, loading (TOML or JSON) and validation.

`load_workload(path)` / `parse_workload(dict)` return a `Workload` of slotted spec
records, or raise `WorkloadError` naming the offending key's path (for example
``flows[2].tasks[1].duration.mean``) before anything runs. The format is
documented in examples/README.md.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import string
from typing import Any, Callable, Iterable

import attrs

from .. import foreman as _foreman_service
from ..timetext import TimeTextError, parse_time_text
from ..schedules import valid_timezone
from ..states import StateType
from .cron import Cron
from .durations import Dist, constant, parse_dist, parse_duration
from ..errors import shown
from ..validation import INT64_MAX, is_finite_number
from .errors import WorkloadError
from .settings import apply_settings

try:
    import tomllib as _toml
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (tomli)
    import tomli as _toml

__all__ = [
    "Workload", "SimulationSpec", "SchedulerSpec", "LateRunsSpec", "PauseExpirationsSpec", "ForemanSpec",
    "PolicySpec", "OutageSpec", "FailureSpec", "RUNS_ON_DOWN",
    "TagLimitSpec", "QueueSpec", "PoolSpec", "WorkerSpec", "CacheSpec", "TaskSpec", "PauseSpec", "CancelSpec",
    "FlowSpec", "ScheduleSpec", "DeploymentSpec", "TriggersSpec", "TriggerSpec", "ActionSpec", "AutomationSpec",
    "load_workload", "parse_workload", "CACHE_FIELDS",
]

UTC = _dt.timezone.utc
_STATE_TYPES = tuple(t.value for t in StateType)
CACHE_FIELDS = ("flow", "task", "index", "deployment", "day", "hour", "choice")


# Spec records ----------------------------------------------------------------------------

@attrs.define(slots=True)
class SimulationSpec:
    seed: int = 42
    start: _dt.datetime = _dt.datetime(2024, 1, 1, tzinfo=UTC)
    until: float | None = None          # simulated seconds; None = run until `runs` drain
    runs: int | None = None             # stop creating top-level runs after this many
    sample_interval: float = 300.0
    max_time: float = 30 * 86400.0      # safety horizon when only `runs` is given

    @property
    def horizon(self) -> float:
        """The longest the simulation runs: `until`, else the `max_time` limit."""
        return self.until if self.until is not None else self.max_time


@attrs.define(slots=True)
class SchedulerSpec:
    loop: float = 60.0
    max_runs: int = 100
    min_runs: int = 3
    min_scheduled_time: float = 3600.0
    max_scheduled_time: float = 100 * 86400.0


@attrs.define(slots=True)
class LateRunsSpec:
    enabled: bool = True
    loop: float = 5.0
    mark_late_after: float = 15.0


@attrs.define(slots=True)
class PauseExpirationsSpec:
    enabled: bool = True
    loop: float = 5.0


@attrs.define(slots=True)
class ForemanSpec:
    """Prefect's foreman service (Engine.run_foreman_once every `loop`), with its
    settings' defaults. Enabled, it also makes worker polls record themselves as
    Prefect's poll route does, and workers heartbeat every 30 s unless told."""

    enabled: bool = False
    loop: float = 15.0
    inactivity_heartbeat_multiple: int = _foreman_service.INACTIVITY_HEARTBEAT_MULTIPLE
    # whole seconds, as Prefect's settings
    fallback_heartbeat_interval: int = _foreman_service.FALLBACK_HEARTBEAT_INTERVAL_SECONDS
    deployment_last_polled_timeout: int = _foreman_service.DEPLOYMENT_LAST_POLLED_TIMEOUT_SECONDS
    work_queue_last_polled_timeout: int = _foreman_service.WORK_QUEUE_LAST_POLLED_TIMEOUT_SECONDS


@attrs.define(slots=True)
class TriggersSpec:
    """Prefect's triggers service: evaluates the automations at every event, and
    proactive ones at passes every `loop` seconds from the start
    (PREFECT_EVENTS_PROACTIVE_GRANULARITY). Off, no automation runs."""

    enabled: bool = True
    loop: float = 5.0


@attrs.define(slots=True)
class PolicySpec:
    flow: str = "CoreFlowPolicy"
    task: str = "CoreTaskPolicy"


@attrs.define(slots=True)
class TagLimitSpec:
    tag: str
    limit: int


@attrs.define(slots=True)
class QueueSpec:
    name: str
    priority: int | None = None         # None: the engine gives the first free number
    concurrency_limit: int | None = None
    paused: bool = False


@attrs.define(slots=True)
class PoolSpec:
    name: str
    concurrency_limit: int | None = None
    paused: bool = False
    queues: list[QueueSpec] = attrs.field(factory=list)


# What becomes of the flow runs a worker submitted when it goes down: "continue"
# (their infrastructure does not need it: containers, Kubernetes jobs), "crash"
# (they get a termination signal with it and report CRASHED; those still starting
# up are lost) or "lost" (killed without a word: they keep their states for good,
# but for one waiting for its retry, which goes back to its queue).
RUNS_ON_DOWN = ("continue", "crash", "lost")


@attrs.define(slots=True)
class OutageSpec:
    at: float          # seconds from the start
    duration: float
    runs: str = "continue"   # one of RUNS_ON_DOWN


@attrs.define(slots=True)
class FailureSpec:
    mean_uptime: float   # seconds a worker runs between failures, on average (exponentially distributed)
    repair: Dist         # how long each failure keeps it down
    runs: str = "continue"   # one of RUNS_ON_DOWN


@attrs.define(slots=True)
class WorkerSpec:
    pool: str
    count: int = 1
    poll_interval: float = 10.0
    prefetch: float = 10.0
    startup: Dist = attrs.field(factory=lambda: constant(1.0))
    limit: int | None = None
    heartbeat: float | None = None      # seconds between heartbeats; None: none sent (30 s with the foreman)
    outages: list[OutageSpec] = attrs.field(factory=list)   # by start time, not overlapping
    failures: FailureSpec | None = None   # random failures, each worker on its own


@attrs.define(slots=True)
class CacheSpec:
    key: str
    expiration: float | None = None
    choices: int = 1


@attrs.define(slots=True)
class TaskSpec:
    name: str
    count: int = 1
    duration: Dist = attrs.field(factory=lambda: constant(1.0))
    failure_probability: float = 0.0
    retries: int = 0
    retry_delay: float | list[float] = 0.0
    retry_jitter_factor: float | None = None
    depends_on: list[str] = attrs.field(factory=list)
    tags: list[str] = attrs.field(factory=list)
    cache: CacheSpec | None = None
    subflow: str | None = None


@attrs.define(slots=True)
class PauseSpec:
    probability: float
    after: str
    duration: Dist
    timeout: float = 3600.0


@attrs.define(slots=True)
class CancelSpec:
    probability: float
    after: Dist
    latency: float = 5.0


@attrs.define(slots=True)
class FlowSpec:
    name: str
    tasks: list[TaskSpec] = attrs.field(factory=list)
    retries: int = 0
    retry_delay: float = 0.0
    crash_probability: float = 0.0
    pause: PauseSpec | None = None
    cancel: CancelSpec | None = None
    tags: list[str] = attrs.field(factory=list)


@attrs.define(slots=True)
class ScheduleSpec:
    kind: str                      # interval | cron | poisson | at
    interval: float = 0.0          # interval: seconds between runs; poisson: mean gap
    anchor: float = 0.0            # interval: offset of the first run from the start
    cron: Cron | None = None           # (read in its timezone, if given one, with its day_or)
    at: list[float] = attrs.field(factory=list)


@attrs.define(slots=True)
class DeploymentSpec:
    name: str
    flow: str
    pool: str
    queue: str = "default"
    schedule: ScheduleSpec | None = None
    parameters: dict[str, Any] = attrs.field(factory=dict)
    tags: list[str] = attrs.field(factory=list)
    concurrency_limit: int | None = None
    collision_strategy: str = "ENQUEUE"
    paused: bool = False


# What the simulator's flow-run state events carry (Prefect's
# flow_run_state_change_event): labels of the flow run itself, for a trigger's
# `match`, and of its related resources (flow, deployment, work queue, work pool,
# parent task run, tags), for `match_related`.
RESOURCE_LABELS = ("prefect.resource.id", "prefect.resource.name", "prefect.state-name", "prefect.state-type",
                   "prefect.state-message")
RELATED_LABELS = ("prefect.resource.id", "prefect.resource.role", "prefect.resource.name")
RELATED_ROLES = ("flow", "deployment", "work-queue", "work-pool", "task-run", "tag")
POSTURES = ("Reactive", "Proactive")
# The simulated actions on a deployment, a pool or a queue (named, or inferred from
# the firing's event); the others act on a flow run, or do nothing.
DEPLOYMENT_ACTIONS = ("run-deployment", "pause-deployment", "resume-deployment")
POOL_ACTIONS = ("pause-work-pool", "resume-work-pool")
QUEUE_ACTIONS = ("pause-work-queue", "resume-work-queue")
# Each action's keys: Prefect's, but for a deployment, pool or queue named where
# Prefect takes its id.
ACTION_KEYS = {
    "change-flow-run-state": ("type", "state", "name", "message"), "cancel-flow-run": ("type",),
    "suspend-flow-run": ("type",), "resume-flow-run": ("type",),
    "do-nothing": ("type",),
    "run-deployment": ("type", "source", "deployment", "parameters", "job_variables"),
    **{kind: ("type", "source", "deployment") for kind in DEPLOYMENT_ACTIONS[1:]},
    **{kind: ("type", "source", "work_pool") for kind in POOL_ACTIONS},
    **{kind: ("type", "source", "work_pool", "work_queue") for kind in QUEUE_ACTIONS},
}
# Prefect's state names (its named states): with the names actions give, the names
# event patterns may use, so that a typo is an error rather than a trigger that
# never fires.
STATE_NAMES = ("Scheduled", "Late", "AwaitingRetry", "AwaitingConcurrencySlot", "Pending", "Running", "Retrying",
               "Completed", "Cached", "Failed", "Crashed", "Cancelling", "Cancelled", "Paused", "Suspended")
FLOW_RUN_EVENT = "prefect.flow-run."


@attrs.define(slots=True)
class TriggerSpec:
    """An event trigger of Prefect's automations over the simulated events (flow-run
    states, named as Prefect names them: ``prefect.flow-run.<state name>``); patterns
    may end in ``*`` or start with ``!``. Defaults are Prefect's."""

    posture: str                   # "Reactive" (on the presence of events) or "Proactive" (their absence)
    after: list[str] = attrs.field(factory=list)
    expect: list[str] = attrs.field(factory=list)
    # one bucket per distinct value of these labels: the run's own, or
    # "related:<role>:<label>" of its first related resource in that role
    for_each: list[str] = attrs.field(factory=list)
    within: float = 0.0            # seconds
    threshold: int = 1
    match: dict[str, list[str]] = attrs.field(factory=dict)           # label -> patterns (any)
    match_related: dict[str, list[str]] = attrs.field(factory=dict)


@attrs.define(slots=True)
class ActionSpec:
    """One of ACTION_KEYS, in Prefect's keys, except that a selected deployment, pool
    or queue is named (`deployment`, `work_pool`, and `work_queue` within it) where
    Prefect takes its id."""

    type: str
    state: StateType | None = None  # change-flow-run-state: e.g. CRASHED
    name: str | None = None         # change-flow-run-state: the state's name (None: its type's default)
    message: str | None = None      # change-flow-run-state: None is "State changed by Automation <id>"
    source: str = "selected"        # deployment, pool and queue actions: "selected" or "inferred" (from the event)
    deployment: str | None = None
    work_pool: str | None = None
    work_queue: str | None = None
    # run-deployment: merged over the deployment's own (None: those alone), as Prefect does
    parameters: dict[str, Any] | None = None
    job_variables: dict[str, Any] | None = None


@attrs.define(slots=True)
class AutomationSpec:
    name: str
    trigger: TriggerSpec
    actions: list[ActionSpec]
    enabled: bool = True


@attrs.define(slots=True)
class Workload:
    name: str = "workload"
    description: str = ""
    simulation: SimulationSpec = attrs.field(factory=SimulationSpec)
    scheduler: SchedulerSpec = attrs.field(factory=SchedulerSpec)
    late_runs: LateRunsSpec = attrs.field(factory=LateRunsSpec)
    pause_expirations: PauseExpirationsSpec = attrs.field(factory=PauseExpirationsSpec)
    foreman: ForemanSpec = attrs.field(factory=ForemanSpec)
    triggers: TriggersSpec = attrs.field(factory=TriggersSpec)
    policies: PolicySpec = attrs.field(factory=PolicySpec)
    tag_limits: list[TagLimitSpec] = attrs.field(factory=list)
    work_pools: list[PoolSpec] = attrs.field(factory=list)
    workers: list[WorkerSpec] = attrs.field(factory=list)
    flows: list[FlowSpec] = attrs.field(factory=list)
    deployments: list[DeploymentSpec] = attrs.field(factory=list)
    automations: list[AutomationSpec] = attrs.field(factory=list)
    # The ``PATH=VALUE`` settings applied to the file before validation (--set), kept
    # so that a report says which variant of the workload it is.
    settings: tuple[str, ...] = ()
    # The folder of the workload file (None: built in, or given as data): its
    # "module:Class" policies are looked for there, beside it, first.
    folder: str | None = None

    def with_overrides(self, seed: int | None = None, until: float | None = None, runs: int | None = None) -> "Workload":
        """A copy with the CLI's --seed/--until/--runs applied (either stop condition alone
        replaces both of the file's)."""
        sim = attrs.evolve(self.simulation)
        if seed is not None:
            sim.seed = seed
        if until is not None or runs is not None:
            sim.until, sim.runs = until, runs
        return attrs.evolve(self, simulation=sim)


# Readers ---------------------------------------------------------------------------------

class _Table:
    """A dict being validated at `path`; rejects unknown keys up front."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str, allowed: set[str]) -> None:
        if not isinstance(data, dict):
            raise WorkloadError(path, f"must be a table (mapping), got {type(data).__name__} {shown(data)}")
        for key in data:
            if key not in allowed:
                raise WorkloadError(_join(path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def get(self, key: str, check: Callable[[Any, str], Any], default: Any = None, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise WorkloadError(self.at(key), "is required")
            return default
        return check(self.data[key], self.at(key))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_error(path: str, expected: str, value: Any) -> WorkloadError:
    return WorkloadError(path, f"must be {expected}, got {type(value).__name__} {shown(value)}")


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _type_error(path, "a string", value)
    return value


def _name(value: Any, path: str) -> str:
    value = _str(value, path)
    if not value or any(c in value for c in "/%&><"):
        raise WorkloadError(path, f"must be a non-empty name without / % & > <, got {shown(value)}")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _type_error(path, "true or false", value)
    return value


def _int(lo: int | None = None) -> Callable[[Any, str], int]:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(path, "an integer", value)
        if lo is not None and value < lo:
            raise WorkloadError(path, f"must be >= {lo}, got {shown(value)}")
        if value > INT64_MAX:
            raise WorkloadError(path, f"must fit in a signed 64-bit integer, got {shown(value)}")
        return value
    return check


def _number(value: Any, path: str) -> float:
    if not is_finite_number(value):
        raise _type_error(path, "a number", value)
    return float(value)


def _probability(value: Any, path: str) -> float:
    p = _number(value, path)
    if not 0.0 <= p <= 1.0:
        raise WorkloadError(path, f"must be a probability between 0 and 1, got {shown(value)}")
    return p


def _positive_duration(value: Any, path: str) -> float:
    seconds = parse_duration(value, path, "positive")
    if seconds <= 0:
        raise WorkloadError(path, f"must be a positive duration, got {shown(value)}")
    return seconds


def _str_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        raise _type_error(path, "a list of strings", value)
    for i, item in enumerate(value):
        _str(item, f"{path}[{i}]")
    return list(value)


def _table_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _type_error(path, "a list of tables", value)
    return value


def _dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _type_error(path, "a table", value)
    return dict(value)


def _datetime(value: Any, path: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = parse_time_text(value)
        except TimeTextError as exc:
            raise WorkloadError(path, f"is not an ISO-8601 date-time: {shown(value)}{exc.hint}") from None
    else:
        raise _type_error(path, "an ISO-8601 date-time", value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _unique(items: list[Any], attr: str, path: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = getattr(item, attr)
        if name in seen:
            raise WorkloadError(f"{path}[{i}].{attr}", f"duplicate {attr} {shown(name)}")
        seen.add(name)


# Sections ----------------------------------------------------------------------------------

def _simulation(value: Any, path: str) -> SimulationSpec:
    t = _Table(value, path, {"seed", "start", "until", "runs", "sample_interval", "max_time"})
    spec = SimulationSpec(
        seed=t.get("seed", _int(0), 42),
        start=t.get("start", _datetime, SimulationSpec().start),
        until=t.get("until", _positive_duration),
        runs=t.get("runs", _int(1)),
        sample_interval=t.get("sample_interval", _positive_duration, 300.0),
        max_time=t.get("max_time", _positive_duration, 30 * 86400.0),
    )
    return spec


def _scheduler(value: Any, path: str) -> SchedulerSpec:
    t = _Table(value, path, {"loop", "max_runs", "min_runs", "min_scheduled_time", "max_scheduled_time"})
    return SchedulerSpec(
        loop=t.get("loop", _positive_duration, 60.0),
        max_runs=t.get("max_runs", _int(1), 100),
        min_runs=t.get("min_runs", _int(0), 3),
        min_scheduled_time=t.get("min_scheduled_time", parse_duration, 3600.0),
        max_scheduled_time=t.get("max_scheduled_time", _positive_duration, 100 * 86400.0),
    )


def _late_runs(value: Any, path: str) -> LateRunsSpec:
    t = _Table(value, path, {"enabled", "loop", "mark_late_after"})
    return LateRunsSpec(
        enabled=t.get("enabled", _bool, True),
        loop=t.get("loop", _positive_duration, 5.0),
        mark_late_after=t.get("mark_late_after", parse_duration, 15.0),
    )


def _looping(cls: type) -> Callable[[Any, str], Any]:
    """The reader of a service that is only `enabled` and its `loop`, as `cls`."""
    def read(value: Any, path: str) -> Any:
        t = _Table(value, path, {"enabled", "loop"})
        d = cls()  # the defaults
        return cls(enabled=t.get("enabled", _bool, d.enabled), loop=t.get("loop", _positive_duration, d.loop))
    return read


def _whole_seconds(value: Any, path: str) -> int:
    seconds = parse_duration(value, path)
    if seconds != int(seconds):
        raise WorkloadError(path, f"must be a whole number of seconds, got {shown(value)}")
    return int(seconds)


def _foreman(value: Any, path: str) -> ForemanSpec:
    t = _Table(value, path, {"enabled", "loop", "inactivity_heartbeat_multiple", "fallback_heartbeat_interval",
                             "deployment_last_polled_timeout", "work_queue_last_polled_timeout"})
    d = ForemanSpec()  # the defaults
    return ForemanSpec(
        enabled=t.get("enabled", _bool, d.enabled),
        loop=t.get("loop", _positive_duration, d.loop),
        inactivity_heartbeat_multiple=t.get("inactivity_heartbeat_multiple", _int(0), d.inactivity_heartbeat_multiple),
        fallback_heartbeat_interval=t.get("fallback_heartbeat_interval", _whole_seconds, d.fallback_heartbeat_interval),
        deployment_last_polled_timeout=t.get("deployment_last_polled_timeout", _whole_seconds,
                                             d.deployment_last_polled_timeout),
        work_queue_last_polled_timeout=t.get("work_queue_last_polled_timeout", _whole_seconds,
                                             d.work_queue_last_polled_timeout),
    )


_SERVICES: dict[str, tuple[Callable[[Any, str], Any], type]] = {
    "scheduler": (_scheduler, SchedulerSpec), "late_runs": (_late_runs, LateRunsSpec),
    "pause_expirations": (_looping(PauseExpirationsSpec), PauseExpirationsSpec), "foreman": (_foreman, ForemanSpec),
    "triggers": (_looping(TriggersSpec), TriggersSpec),
}


def _services(value: Any, path: str) -> dict[str, Any]:
    """Each service's spec by its key in `_SERVICES` (a default for those not given)."""
    t = _Table(value, path, set(_SERVICES))
    return {key: t.get(key, parse, default()) for key, (parse, default) in _SERVICES.items()}


def _policy_name(value: Any, path: str) -> str:
    value = _str(value, path)
    if not value or (":" in value and not all(value.split(":", 1))):
        raise WorkloadError(path, f"must be a policy name (e.g. CoreFlowPolicy) or 'module:Class', got {shown(value)}")
    return value


def _policies(value: Any, path: str) -> PolicySpec:
    t = _Table(value, path, {"flow", "task"})
    return PolicySpec(flow=t.get("flow", _policy_name, "CoreFlowPolicy"), task=t.get("task", _policy_name, "CoreTaskPolicy"))


def _tag_limit(value: Any, path: str) -> TagLimitSpec:
    t = _Table(value, path, {"tag", "limit"})
    return TagLimitSpec(tag=t.get("tag", _name, required=True), limit=t.get("limit", _int(0), required=True))


def _queue(value: Any, path: str) -> QueueSpec:
    t = _Table(value, path, {"name", "priority", "concurrency_limit", "paused"})
    spec = QueueSpec(
        name=t.get("name", _name, required=True),
        priority=t.get("priority", _int(1)),
        concurrency_limit=t.get("concurrency_limit", _int(0)),
        paused=t.get("paused", _bool, False),
    )
    if spec.name == "default" and spec.priority is not None:
        # The simulation only creates queues; the pool's own "default" queue already
        # exists (priority 1) and moves down as other queues take its number.
        raise WorkloadError(t.at("priority"), (
            'the "default" queue is created with its pool (priority 1) and cannot be given one: '
            "give the other queues priorities instead (a queue created with priority p takes it "
            "and moves the queues at or after p down)"))
    return spec


def _pool(value: Any, path: str) -> PoolSpec:
    t = _Table(value, path, {"name", "concurrency_limit", "paused", "queues"})
    queues = _section_list(t, "queues", _queue)
    _unique(queues, "name", t.at("queues"))
    if not any(q.name == "default" for q in queues):
        queues.insert(0, QueueSpec(name="default"))
    return PoolSpec(
        name=t.get("name", _name, required=True),
        concurrency_limit=t.get("concurrency_limit", _int(0)),
        paused=t.get("paused", _bool, False),
        queues=queues,
    )


def _runs_on_down(value: Any, path: str) -> str:
    if value not in RUNS_ON_DOWN:
        raise WorkloadError(path, f"must be one of {', '.join(map(repr, RUNS_ON_DOWN))}, got {shown(value)}")
    return value


def _outage(value: Any, path: str) -> OutageSpec:
    t = _Table(value, path, {"at", "duration", "runs"})
    return OutageSpec(at=t.get("at", parse_duration, required=True),
                      duration=t.get("duration", _positive_duration, required=True),
                      runs=t.get("runs", _runs_on_down, "continue"))


def _outages(value: Any, path: str) -> list[OutageSpec]:
    outages = [_outage(v, f"{path}[{i}]") for i, v in enumerate(_table_list(value, path))]
    for i in range(1, len(outages)):
        before = outages[i - 1]
        if outages[i].at < before.at + before.duration:
            raise WorkloadError(f"{path}[{i}].at", "starts before the previous outage has ended "
                                                   "(list outages in order, without overlaps)")
    return outages


def _failures(value: Any, path: str) -> FailureSpec:
    t = _Table(value, path, {"mean_uptime", "repair", "runs"})
    mean_uptime = t.get("mean_uptime", _positive_duration, required=True)
    repair = t.get("repair", parse_dist, required=True)
    if repair.mean <= 0:
        raise WorkloadError(t.at("repair"), "a repair must take time (its mean is 0)")
    return FailureSpec(mean_uptime=mean_uptime, repair=repair, runs=t.get("runs", _runs_on_down, "continue"))


def _worker(value: Any, path: str) -> WorkerSpec:
    t = _Table(value, path, {"pool", "count", "poll_interval", "prefetch", "startup", "limit", "heartbeat",
                             "outages", "failures"})
    return WorkerSpec(
        pool=t.get("pool", _name, required=True),
        count=t.get("count", _int(1), 1),
        poll_interval=t.get("poll_interval", _positive_duration, 10.0),
        prefetch=t.get("prefetch", parse_duration, 10.0),
        startup=t.get("startup", parse_dist, constant(1.0)),
        limit=t.get("limit", _int(1)),
        heartbeat=t.get("heartbeat", _positive_duration),
        outages=t.get("outages", _outages, []),
        failures=t.get("failures", _failures),
    )


def _cache(value: Any, path: str) -> CacheSpec:
    t = _Table(value, path, {"key", "expiration", "choices"})
    key = t.get("key", _str, required=True)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(key) if f is not None]
    except ValueError as exc:
        raise WorkloadError(t.at("key"), f"is not a valid template: {exc}") from None
    for field in fields:
        if field not in CACHE_FIELDS:
            raise WorkloadError(t.at("key"), f"unknown placeholder {{{field}}} (allowed: {', '.join(CACHE_FIELDS)})")
    if not key:
        raise WorkloadError(t.at("key"), "must not be empty")
    return CacheSpec(key=key, expiration=t.get("expiration", _positive_duration), choices=t.get("choices", _int(1), 1))


def _delay(value: Any, path: str) -> float:
    # Prefect's retry delays are integers: whole seconds (kept as a float, as durations are).
    return float(_whole_seconds(value, path))


def _retry_delay(value: Any, path: str) -> float | list[float]:
    if isinstance(value, list):
        if len(value) > 50:
            raise WorkloadError(path, f"can list at most 50 retry delays, got {len(value)}")
        return [_delay(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return _delay(value, path)


def _task(value: Any, path: str) -> TaskSpec:
    t = _Table(value, path, {
        "name", "count", "duration", "failure_probability", "retries", "retry_delay",
        "retry_jitter_factor", "depends_on", "tags", "cache", "subflow",
    })
    jitter = t.get("retry_jitter_factor", _number)
    if jitter is not None and jitter < 0:
        raise WorkloadError(t.at("retry_jitter_factor"), f"must be >= 0, got {jitter}")
    return TaskSpec(
        name=t.get("name", _name, required=True),
        count=t.get("count", _int(1), 1),
        duration=t.get("duration", parse_dist, constant(1.0)),
        failure_probability=t.get("failure_probability", _probability, 0.0),
        retries=t.get("retries", _int(0), 0),
        retry_delay=t.get("retry_delay", _retry_delay, 0.0),
        retry_jitter_factor=jitter,
        depends_on=t.get("depends_on", _str_list, []),
        tags=t.get("tags", _str_list, []),
        cache=t.get("cache", _cache),
        subflow=t.get("subflow", _name),
    )


def _pause(value: Any, path: str) -> PauseSpec:
    t = _Table(value, path, {"probability", "after", "duration", "timeout"})
    return PauseSpec(
        probability=t.get("probability", _probability, required=True),
        after=t.get("after", _name, required=True),
        duration=t.get("duration", parse_dist, required=True),
        timeout=t.get("timeout", _positive_duration, 3600.0),
    )


def _cancel(value: Any, path: str) -> CancelSpec:
    t = _Table(value, path, {"probability", "after", "latency"})
    return CancelSpec(
        probability=t.get("probability", _probability, required=True),
        after=t.get("after", parse_dist, required=True),
        latency=t.get("latency", parse_duration, 5.0),
    )


def _flow(value: Any, path: str) -> FlowSpec:
    t = _Table(value, path, {"name", "tasks", "retries", "retry_delay", "crash_probability", "pause", "cancel", "tags"})
    tasks = _section_list(t, "tasks", _task)
    _unique(tasks, "name", t.at("tasks"))
    flow = FlowSpec(
        name=t.get("name", _name, required=True),
        tasks=tasks,
        retries=t.get("retries", _int(0), 0),
        retry_delay=t.get("retry_delay", _delay, 0.0),
        crash_probability=t.get("crash_probability", _probability, 0.0),
        pause=t.get("pause", _pause),
        cancel=t.get("cancel", _cancel),
        tags=t.get("tags", _str_list, []),
    )
    _check_task_graph(flow, path)
    if flow.pause is not None and not any(task.name == flow.pause.after for task in tasks):
        raise WorkloadError(f"{path}.pause.after", f"names no task of flow {shown(flow.name)}: "
                            f"{shown(flow.pause.after)}")
    return flow


def _check_task_graph(flow: FlowSpec, path: str) -> None:
    """Unknown dependencies and cycles (depth-first, reporting the first task on a cycle)."""
    index = {task.name: i for i, task in enumerate(flow.tasks)}
    for i, task in enumerate(flow.tasks):
        for j, dep in enumerate(task.depends_on):
            if dep not in index:
                raise WorkloadError(f"{path}.tasks[{i}].depends_on[{j}]", f"names no task of flow "
                                    f"{shown(flow.name)}: {shown(dep)}")
    state = [0] * len(flow.tasks)  # 0 new, 1 on the stack, 2 done

    def visit(i: int, trail: list[str]) -> None:
        state[i] = 1
        for dep in flow.tasks[i].depends_on:
            j = index[dep]
            if state[j] == 1:
                cycle = " -> ".join(trail[trail.index(dep):] + [dep]) if dep in trail else f"{dep} -> {dep}"
                raise WorkloadError(f"{path}.tasks[{i}].depends_on", f"dependency cycle: {cycle}")
            if state[j] == 0:
                visit(j, trail + [dep])
        state[i] = 2

    for i, task in enumerate(flow.tasks):
        if state[i] == 0:
            visit(i, [task.name])


def _timezone(value: Any, path: str) -> str:
    value = _str(value, path)
    if not valid_timezone(value):
        raise WorkloadError(path, f"is not an IANA timezone name (e.g. America/New_York, Europe/Paris, UTC): "
                                  f"{shown(value)}")
    return value


def _schedule(value: Any, path: str) -> ScheduleSpec:
    t = _Table(value, path, {"interval", "anchor", "cron", "timezone", "day_or", "poisson", "at"})
    kinds = [k for k in ("interval", "cron", "poisson", "at") if k in t.data]
    if len(kinds) != 1:
        raise WorkloadError(path, f"needs exactly one of interval, cron, poisson, at (got {kinds or 'none'})")
    kind = kinds[0]
    if "anchor" in t.data and kind != "interval":
        raise WorkloadError(t.at("anchor"), "only applies to an interval schedule")
    for key in ("timezone", "day_or"):
        if key in t.data and kind != "cron":
            # (an interval's dates are instants apart; Poisson and fixed arrivals are
            # offsets; only a cron has day fields to combine)
            raise WorkloadError(t.at(key), "only applies to a cron schedule")
    if kind == "interval":
        return ScheduleSpec(kind, interval=t.get("interval", _positive_duration), anchor=t.get("anchor", parse_duration, 0.0))
    if kind == "poisson":
        return ScheduleSpec(kind, interval=t.get("poisson", _positive_duration))
    if kind == "at":
        offsets = t.data["at"]
        if not isinstance(offsets, list):
            raise _type_error(t.at("at"), "a list of durations", offsets)
        return ScheduleSpec(kind, at=sorted(parse_duration(v, f"{t.at('at')}[{i}]") for i, v in enumerate(offsets)))
    text = t.get("cron", _str)
    timezone = t.get("timezone", _timezone)
    day_or = t.get("day_or", _bool, True)   # Prefect's CronSchedule default
    try:
        return ScheduleSpec(kind, cron=Cron(text, timezone, day_or))
    except ValueError as exc:
        raise WorkloadError(t.at("cron"), f"{exc}: {shown(text)}") from None


def _deployment(value: Any, path: str) -> DeploymentSpec:
    t = _Table(value, path, {
        "name", "flow", "pool", "queue", "schedule", "parameters", "tags",
        "concurrency_limit", "collision_strategy", "paused",
    })
    params = t.get("parameters", _dict, {})
    strategy = t.get("collision_strategy", _str, "ENQUEUE")
    if strategy not in ("ENQUEUE", "CANCEL_NEW"):
        raise WorkloadError(t.at("collision_strategy"), f"must be ENQUEUE or CANCEL_NEW, got {shown(strategy)}")
    return DeploymentSpec(
        name=t.get("name", _name, required=True),
        flow=t.get("flow", _name, required=True),
        pool=t.get("pool", _name, required=True),
        queue=t.get("queue", _name, "default"),
        schedule=t.get("schedule", _schedule),
        parameters=params,
        tags=t.get("tags", _str_list, []),
        concurrency_limit=t.get("concurrency_limit", _int(0)),
        collision_strategy=strategy,
        paused=t.get("paused", _bool, False),
    )


def _resource_spec(labels: tuple[str, ...]) -> Callable[[Any, str], dict[str, list[str]]]:
    """A ResourceSpecification: label -> a pattern or a list of them."""
    def check(value: Any, path: str) -> dict[str, list[str]]:
        spec = _dict(value, path)
        out: dict[str, list[str]] = {}
        for label, patterns in spec.items():
            at = _join(path, label)
            if label not in labels:
                raise WorkloadError(at, f"is no label of the simulated events (they carry: {', '.join(labels)})")
            out[label] = [patterns] if isinstance(patterns, str) else _str_list(patterns, at)
        return out
    return check


def _within(proactive: bool) -> Callable[[Any, str], float]:
    def check(value: Any, path: str) -> float:
        seconds = parse_duration(value, path)
        if proactive and seconds == 0:
            return 10.0   # Prefect's default for a proactive trigger without a window
        if proactive and seconds < 10:
            raise WorkloadError(path, f"must be at least 10 seconds for a Proactive trigger (as in Prefect), "
                                      f"got {shown(value)}")
        return seconds
    return check


def _bucket_label(value: Any, path: str) -> str:
    """A `for_each` label: one of the run's own, or ``related:<role>:<label>``."""
    label = _str(value, path)
    if label in RESOURCE_LABELS:
        return label
    kind, _, rest = label.partition(":")
    role, _, related = rest.partition(":")
    if kind == "related" and role in RELATED_ROLES and related in RELATED_LABELS:
        return label
    raise WorkloadError(path, f"must be a label of the run ({', '.join(RESOURCE_LABELS)}) or "
                              f"related:<role>:<label> with a role of {', '.join(RELATED_ROLES)} and a label of "
                              f"{', '.join(RELATED_LABELS)}, got {shown(label)}")


def _trigger(value: Any, path: str) -> TriggerSpec:
    t = _Table(value, path, {"type", "posture", "after", "expect", "for_each", "threshold", "within", "match",
                             "match_related"})
    kind = t.get("type", _str, "event")
    if kind != "event":
        raise WorkloadError(t.at("type"), f"only event triggers are simulated: must be 'event', got {shown(kind)}")
    posture = t.get("posture", _str, required=True)
    if posture not in POSTURES:
        raise WorkloadError(t.at("posture"), f"must be one of {', '.join(POSTURES)}, got {shown(posture)}")
    for_each = [_bucket_label(v, f"{t.at('for_each')}[{i}]")
                for i, v in enumerate(t.get("for_each", _str_list, []))]
    return TriggerSpec(
        posture=posture, after=t.get("after", _str_list, []), expect=t.get("expect", _str_list, []),
        for_each=sorted(set(for_each)),
        within=t.get("within", _within(posture == "Proactive"), 10.0 if posture == "Proactive" else 0.0),
        threshold=t.get("threshold", _int(0), 1),
        match=t.get("match", _resource_spec(RESOURCE_LABELS), {}),
        match_related=t.get("match_related", _resource_spec(RELATED_LABELS), {}),
    )


def _state_type(value: Any, path: str) -> StateType:
    value = _str(value, path)
    if value not in _STATE_TYPES:
        raise WorkloadError(path, f"must be a state type ({', '.join(_STATE_TYPES)}), got {shown(value)}")
    return StateType(value)


def _action(value: Any, path: str) -> ActionSpec:
    t = _Table(value, path, {key for keys in ACTION_KEYS.values() for key in keys})
    kind = t.get("type", _str, required=True)
    if kind not in ACTION_KEYS:
        raise WorkloadError(t.at("type"), f"must be one of the simulated actions ({', '.join(ACTION_KEYS)}), "
                                          f"got {shown(kind)}")
    # Each action takes its own keys only: another's is a mistake, not a default.
    own = ACTION_KEYS[kind]
    for key in t.data:
        if key not in own:
            raise WorkloadError(t.at(key), f"is not a key of a {shown(kind)} action (it takes: "
                                           f"{', '.join(sorted(own))})")
    action = ActionSpec(type=kind, state=t.get("state", _state_type, required=kind == "change-flow-run-state"),
                        name=t.get("name", _str), message=t.get("message", _str),
                        source=t.get("source", _str, "selected"), deployment=t.get("deployment", _name),
                        work_pool=t.get("work_pool", _name), work_queue=t.get("work_queue", _name),
                        parameters=t.get("parameters", _dict), job_variables=t.get("job_variables", _dict))
    if action.source not in ("selected", "inferred"):
        raise WorkloadError(t.at("source"), f"must be 'selected' or 'inferred', got {shown(action.source)}")
    for key in ("deployment", "work_pool", "work_queue"):
        named = getattr(action, key) is not None
        if key in own and action.source == "selected" and not named:
            raise WorkloadError(t.at(key), "is required when the source is 'selected' (the default): "
                                           "name it, or infer it with source = 'inferred'")
        if action.source == "inferred" and named:
            raise WorkloadError(t.at(key), "is not allowed when the source is 'inferred' (as in Prefect)")
    return action


def _automation(value: Any, path: str) -> AutomationSpec:
    t = _Table(value, path, {"name", "description", "enabled", "trigger", "actions"})
    t.get("description", _str)
    actions = [_action(v, f"{t.at('actions')}[{i}]") for i, v in
               enumerate(t.get("actions", _table_list, required=True))]
    if not actions:
        raise WorkloadError(t.at("actions"), "must list at least one action")
    return AutomationSpec(name=t.get("name", _name, required=True), trigger=t.get("trigger", _trigger, required=True),
                          actions=actions, enabled=t.get("enabled", _bool, True))


def _section_list(t: _Table, key: str, parse: Callable[[Any, str], Any]) -> list[Any]:
    """`parse` applied to each table of the list at `key` (absent: none)."""
    path = t.at(key)
    return [parse(v, f"{path}[{i}]") for i, v in enumerate(t.get(key, _table_list, []))]


def parse_workload(data: Any, source: str = "", settings: Iterable[str] = ()) -> Workload:
    """Validate a workload given as a dict (the parsed TOML/JSON), after applying the
    ``PATH=VALUE`` `settings` to a copy of it (engine/sim/settings.py). O(size)."""
    settings = tuple(settings)
    data = apply_settings(data, settings)
    t = _Table(data, "", {
        "name", "description", "simulation", "services", "policies", "tag_limits",
        "work_pools", "workers", "flows", "deployments", "automations",
    })
    services = t.get("services", _services) or _services({}, "services")
    wl = Workload(
        name=t.get("name", _str, os.path.splitext(os.path.basename(source))[0] or "workload"),
        description=t.get("description", _str, ""),
        simulation=t.get("simulation", _simulation, SimulationSpec()),
        scheduler=services["scheduler"],
        late_runs=services["late_runs"],
        pause_expirations=services["pause_expirations"],
        foreman=services["foreman"],
        triggers=services["triggers"],
        policies=t.get("policies", _policies, PolicySpec()),
        tag_limits=_section_list(t, "tag_limits", _tag_limit),
        work_pools=_section_list(t, "work_pools", _pool),
        workers=_section_list(t, "workers", _worker),
        flows=_section_list(t, "flows", _flow),
        deployments=_section_list(t, "deployments", _deployment),
        automations=_section_list(t, "automations", _automation),
        settings=settings,
    )
    _cross_check(wl)
    if wl.simulation.until is None and wl.simulation.runs is None:
        wl.simulation.until = 86400.0
    return wl


def _cross_check(wl: Workload) -> None:
    for key in ("tag_limits", "work_pools", "flows", "deployments", "automations"):
        _unique(getattr(wl, key), "tag" if key == "tag_limits" else "name", key)
    pools = {p.name: p for p in wl.work_pools}
    flows = {f.name: f for f in wl.flows}
    for i, w in enumerate(wl.workers):
        if w.pool not in pools:
            raise WorkloadError(f"workers[{i}].pool", f"names no work pool: {shown(w.pool)}")
    for i, d in enumerate(wl.deployments):
        if d.flow not in flows:
            raise WorkloadError(f"deployments[{i}].flow", f"names no flow: {shown(d.flow)}")
        _check_pool_queue(pools, f"deployments[{i}].pool", d.pool, f"deployments[{i}].queue", d.queue)
    for i, f in enumerate(wl.flows):
        for j, task in enumerate(f.tasks):
            if task.subflow is not None and task.subflow not in flows:
                raise WorkloadError(f"flows[{i}].tasks[{j}].subflow", f"names no flow: {shown(task.subflow)}")
    # Subflows calling back into their callers would recurse forever.
    order = {f.name: i for i, f in enumerate(wl.flows)}

    def visit(name: str, trail: list[str]) -> None:
        f = flows[name]
        for j, task in enumerate(f.tasks):
            if task.subflow is None:
                continue
            if task.subflow in trail:
                cycle = " -> ".join(trail[trail.index(task.subflow):] + [task.subflow])
                raise WorkloadError(f"flows[{order[name]}].tasks[{j}].subflow", f"subflow cycle: {cycle}")
            visit(task.subflow, trail + [task.subflow])

    for f in wl.flows:
        visit(f.name, [f.name])
    deployments = {d.name for d in wl.deployments}
    for i, auto in enumerate(wl.automations):
        for j, action in enumerate(auto.actions):
            at = f"automations[{i}].actions[{j}]"
            if action.deployment is not None and action.deployment not in deployments:
                raise WorkloadError(f"{at}.deployment", f"names no deployment: {shown(action.deployment)}")
            if action.work_pool is not None:
                _check_pool_queue(pools, f"{at}.work_pool", action.work_pool, f"{at}.work_queue", action.work_queue)
    _check_event_names(wl.automations)


def _check_pool_queue(pools: dict, pool_at: str, pool: str, queue_at: str, queue: str | None) -> None:
    """`pool` names a work pool and `queue` (unless None) one of its queues."""
    if pool not in pools:
        raise WorkloadError(pool_at, f"names no work pool: {shown(pool)}")
    if queue is not None and not any(q.name == queue for q in pools[pool].queues):
        raise WorkloadError(queue_at, f"names no queue of pool {shown(pool)}: {shown(queue)}")


def _check_event_names(automations: list[AutomationSpec]) -> None:
    """Every trigger pattern must match one of the events the simulator emits
    (flow-run states, by Prefect's names or those the actions give): a typo would
    otherwise be a trigger that silently never fires. A negated pattern of other
    events matches every event, which is allowed."""
    names = [*STATE_NAMES, *(a.name for auto in automations for a in auto.actions if a.name)]
    events = [FLOW_RUN_EVENT + name for name in names]
    for i, auto in enumerate(automations):
        for key in ("after", "expect"):
            for j, pattern in enumerate(getattr(auto.trigger, key)):
                bare = pattern[1:] if pattern.startswith("!") else pattern
                in_namespace = bare.startswith(FLOW_RUN_EVENT)
                if any(matches(bare, event) for event in events) or (bare != pattern and not in_namespace):
                    continue
                reason = "names no state a flow run takes here" if in_namespace else "matches no event the simulator emits"
                raise WorkloadError(f"automations[{i}].trigger.{key}[{j}]",
                                    f"{reason}: {shown(pattern)} (it emits flow-run state events, "
                                    f"{FLOW_RUN_EVENT}<state "
                                    f"name>, for {', '.join(STATE_NAMES)} and the names the actions give)")


def matches(expected: str, value: str | None) -> bool:
    """Prefect's label and event-name match: ``!`` negates, a trailing ``*`` matches
    any suffix. O(len(expected))."""
    if value is None:
        return False
    positive = not expected.startswith("!")
    if not positive:
        expected = expected[1:]
    if expected.endswith("*"):
        hit = value.startswith(expected[:-1])
    else:
        hit = value == expected
    return hit if positive else not hit


def _keys_once(repeats: list[tuple[dict, str]]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A json object_pairs_hook noting each object that gives a key more than once
    (json keeps the last silently; TOML refuses it, and so do workloads) in
    `repeats`, as (object, key): objects come in the order they close."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out and (not repeats or repeats[-1][0] is not out):
                repeats.append((out, key))
            out[key] = value
        return out
    return hook


def _path_to(value: Any, target: dict, path: str = "") -> str | None:
    """Path (as workload errors write it) of the object `target` within the parsed
    JSON `value`; None if it is not there. O(size)."""
    if value is target:
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _path_to(item, target, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key)
        if found is not None:
            return found
    return None


def load_workload(path: str | os.PathLike[str], settings: Iterable[str] = ()) -> Workload:
    """Read and validate a workload file: TOML (``.toml``) or JSON (anything else that
    parses), with the ``PATH=VALUE`` `settings` applied first (see parse_workload)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise WorkloadError("", f"cannot read workload file {shown(path)}: {exc.strerror or exc}") from None
    if path.endswith(".json"):
        repeats: list[tuple[dict, str]] = []
        try:
            data = json.loads(raw.decode("utf-8"), object_pairs_hook=_keys_once(repeats))
        except (ValueError, UnicodeDecodeError) as exc:
            raise WorkloadError("", f"{path} is not valid JSON: {exc}") from None
        if repeats:
            obj, key = repeats[0]
            where = _path_to(data, obj)
            raise WorkloadError(f"{where}.{key}" if where else key, f"given more than once in {path}")
    else:
        try:
            data = _toml.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise WorkloadError("", f"{path} is not valid TOML: {exc}") from None
    workload = parse_workload(data, source=path, settings=settings)
    workload.folder = os.path.dirname(os.path.abspath(path))
    return workload
