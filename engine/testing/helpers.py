"""One-line state setup for tests: runs built through the real transitions.

Every helper proposes states through the same orchestration policies a Prefect
server uses (CoreFlowPolicy, CoreTaskPolicy, MarkLateRunsPolicy), so run counts,
start/end times, total run time, state histories, cache rows and concurrency
slots are exactly what real traffic would leave behind, e.g.

    run = failed_flow_run(engine, attempt=2, retries=3)   # AwaitingRetry, run_count 2
    task = cached_task_run(engine, cache_key="K", expires_in=timedelta(minutes=5))
    run = paused_flow_run(engine, pause_key="K")
    setup = full_deployment(engine, limit=2)               # 2 RUNNING runs hold both slots

Time: with a ManualClock (what the pytest fixtures give), helpers advance the clock
for durations and scheduled waits (`duration`, retry delays), and stamp the state
ending a run's stretch at its RUNNING state's time + `duration`, as a client stamps
the states it proposes, so run times are exact whatever the clock's tick (a zero
duration is one microsecond: two states of a run may not share a timestamp). With
any other clock durations are whatever real time elapses, and a helper that would
have to wait raises instead.

A helper whose transition is not accepted raises `SetupError` naming the state,
the status and the orchestration's reason, so a broken setup never goes unnoticed;
each helper (`propose` too) is one transaction, so one that fails leaves nothing
behind, and a ManualClock is put back where it was. Runs may be given
as records or ids (UUID or its text), `flow=` as a Flow or its id, and states as
State objects or their JSON dicts, as the engine takes them. Durations and timeouts
are timedeltas or seconds, and may not be negative.
Each helper costs O(transitions · rules) — microseconds.
"""
from __future__ import annotations

import datetime as _dt
import functools
import itertools
import uuid
import weakref
from typing import Any, Callable, Iterable

import attrs

from ..errors import ObjectNotFoundError, RunstateError, ValidationError, shown
from ..validation import as_state, as_timedelta, as_uuid
from ..orchestration import CoreFlowPolicy, CoreTaskPolicy, MarkLateRunsPolicy, SetStateStatus
from ..records import ConcurrencyLimit, ConcurrencyLimitV2, Deployment, Flow, FlowRun, TaskRun
from ..states import (
    Completed,
    Failed,
    Late,
    Paused,
    Pending,
    Running,
    Scheduled,
    State,
    Suspended,
)

__all__ = [
    "SetupError", "DeploymentSetup", "TagLimitSetup", "propose",
    "helper_flow", "scheduled_flow_run", "pending_flow_run", "running_flow_run", "completed_flow_run",
    "failed_flow_run", "paused_flow_run", "late_flow_run", "full_deployment",
    "pending_task_run", "running_task_run", "completed_task_run", "failed_task_run", "cached_task_run",
    "full_tag_limit", "history",
]

_ONE_SECOND = _dt.timedelta(seconds=1)
_MICRO = _dt.timedelta(microseconds=1)
_STATUSES = tuple(status.value for status in SetStateStatus)
_MAX_WAITS = 100  # WAITs `propose` waits out before giving up
# Helpers that make a deployment or a tag limit give each its own name unless told
# one, so that helpers used together in one test never share (and upsert) one; task
# runs get their own dynamic keys. Counted per engine, so a test's names do not
# depend on which tests ran before it, and skipping what the engine already holds:
# a reopened store's records were named by an earlier engine's counters.
_counters: "weakref.WeakKeyDictionary[Any, dict[str, itertools.count]]" = weakref.WeakKeyDictionary()


def _fresh_number(engine: Any, what: str, first: int, taken: Callable[[str], Any]) -> str:
    """The next number counted for `what` (as text) that `taken` finds unused."""
    counter = _counters.setdefault(engine, {}).setdefault(what, itertools.count(first))
    while True:
        text = str(next(counter))
        if not taken(text):
            return text


def _setup_name(engine: Any, prefix: str, taken: Callable[[str], Any]) -> str:
    return f"{prefix}-" + _fresh_number(engine, prefix, 1, lambda n: taken(f"{prefix}-{n}"))


def _deployment_of(engine: Any, flow: Flow) -> Callable[[str], Any]:
    """Whether `flow` has a deployment of a name (deployment names are per flow)."""
    return lambda name: engine._unique("deployment", "flow_name", (flow.id, name))


def _span(value: Any, what: str, *, zero: bool) -> _dt.timedelta:
    """A timedelta or seconds that is positive (or, with `zero`, not negative)."""
    delta = as_timedelta(value, what)
    if delta < _dt.timedelta(0) or (not zero and delta == _dt.timedelta(0)):
        raise ValidationError(f"{what} must be {'zero or more' if zero else 'more than zero'}, got {shown(value)}")
    return delta


class SetupError(RunstateError, AssertionError):
    """A helper's transition was not accepted (the message says why)."""


def _transaction(fn: Callable) -> Callable:
    """Run a helper in one engine transaction (a savepoint when nested). If it
    raises, the store is rolled back and a clock that can be set (a ManualClock) is
    put back where it was; any other clock (a SystemClock never moves) is left."""

    @functools.wraps(fn)
    def wrapper(engine: Any, *args: Any, **kwargs: Any) -> Any:
        with engine.transaction():
            before = _settable_time(engine.clock)
            try:
                return fn(engine, *args, **kwargs)
            except BaseException:
                if before is not None:
                    engine.clock.set(before)
                raise

    return wrapper


def _clock_time(clock: Any) -> _dt.datetime | None:
    """The time a clock with advance() shows, read without a reading's tick (a
    ManualClock's advance(0)); None for a clock that cannot be moved, or whose
    advance() does not answer with the time."""
    advance = getattr(clock, "advance", None)
    if not callable(advance):
        return None
    now = advance(_dt.timedelta(0))
    return now if isinstance(now, _dt.datetime) else None


def _settable_time(clock: Any) -> _dt.datetime | None:
    """_clock_time of a clock that can also be set back (set()), else None."""
    return _clock_time(clock) if callable(getattr(clock, "set", None)) else None


# Runs, flows and states as the engine takes them -----------------------------------------------
def _record_of(engine: Any, value: Any, what: str, classes: tuple, readers: tuple[str, ...], kinds: str,
               noun: str) -> Any:
    """The record `value` is (one of `classes`) or identifies (a UUID or its text),
    looked up with the engine's `readers` in turn. `kinds` and `noun` say what was
    wanted in the errors: ValidationError for a value of another type,
    ObjectNotFoundError for an id nothing has."""
    if isinstance(value, classes):
        return value
    if not isinstance(value, (uuid.UUID, str)):
        raise ValidationError(f"{what} must be {kinds}, got {type(value).__name__} {shown(value)}")
    record_id = as_uuid(value, what)
    for reader in readers:
        found = getattr(engine, reader)(record_id)
        if found is not None:
            return found
    raise ObjectNotFoundError(f"{what}: no {noun} with id {record_id}")


def _run_of(engine: Any, run: Any, what: str = "run") -> FlowRun | TaskRun:
    return _record_of(engine, run, what, (FlowRun, TaskRun), ("read_flow_run", "read_task_run"),
                      "a FlowRun, a TaskRun or a run id", "flow run or task run")


def _flow_run_of(engine: Any, flow_run: Any, what: str = "flow_run") -> FlowRun:
    return _record_of(engine, flow_run, what, (FlowRun,), ("read_flow_run",), "a FlowRun or a flow run id", "flow run")


def _flow_of(engine: Any, flow: Any, what: str = "flow") -> Flow:
    return _record_of(engine, flow, what, (Flow,), ("read_flow",), "a Flow or a flow id", "flow")


@attrs.define(slots=True)
class DeploymentSetup:
    """What `full_deployment` built."""

    flow: Flow
    deployment: Deployment
    limit: ConcurrencyLimitV2
    runs: list[FlowRun]


@attrs.define(slots=True)
class TagLimitSetup:
    """What `full_tag_limit` built."""

    limit: ConcurrencyLimit
    runs: list[TaskRun]


# plumbing -------------------------------------------------------------------------------------
def _advance(engine: Any, delta: _dt.timedelta | float, why: str, required: bool = True) -> None:
    """Move a ManualClock forward. Other clocks cannot be moved: a required wait
    raises, an optional one (a duration) is whatever real time elapses."""
    if not isinstance(delta, _dt.timedelta):
        delta = _dt.timedelta(seconds=delta)
    if delta <= _dt.timedelta(0):
        return
    advance = getattr(engine.clock, "advance", None)
    if advance is None:
        if not required:
            return
        raise SetupError(f"{why} needs the clock to move by {delta}; use a ManualClock (the runstate_clock fixture)")
    advance(delta)


def _run_for(engine: Any, run: FlowRun | TaskRun, duration: _dt.timedelta, why: str) -> _dt.datetime | None:
    """Let the RUNNING `run` run for `duration`. With a clock that moves, the clock
    is advanced to and the state ending the stretch is to be stamped at exactly its
    RUNNING state's time + `duration` (at least a microsecond later: two states of
    a run may not share a timestamp), whatever ticks readings took in between.
    Otherwise (real time elapses) None: the state is stamped when proposed."""
    if getattr(engine.clock, "advance", None) is None:
        return None
    end = run.state_timestamp + max(duration, _MICRO)
    # The clock is put at `end` itself (read without a tick), so a state the
    # orchestration stamps instead (a failure rejected into AwaitingRetry is stamped
    # with the server's now) is at `end` too.
    now = _clock_time(engine.clock) or engine.now()
    _advance(engine, end - now, why, required=False)
    return end


def _fresh_timestamp(engine: Any, run: Any) -> _dt.datetime | None:
    # Two states of one run may not share a timestamp; a coarse real clock could
    # repeat one, so nudge past the current state's time if needed.
    last = run.state_timestamp
    if last is None:
        return None
    now = engine.now()
    return now if now > last else last + _MICRO


@_transaction
def propose(
    engine: Any,
    run: FlowRun | TaskRun | uuid.UUID | str,
    state: State | dict,
    *,
    policy: Any = None,
    expect: str | Iterable[str] = ("ACCEPT",),
    wait: bool = True,
) -> Any:
    """Propose `state` (a State or its JSON dict) for `run` (a flow run or task
    run, or its id) under `policy` (Core policy of the run's kind by default). A
    WAIT is honoured by advancing the ManualClock and proposing again (when `wait`,
    up to 100 times); any status outside `expect` (one status or several) raises
    SetupError, and then nothing is left behind: the transition is undone and a
    ManualClock put back where it was. Returns the
    OrchestrationResult. O(rules)."""
    # A lone status ("ABORT") would otherwise be read letter by letter.
    expect = (expect,) if isinstance(expect, str) else tuple(expect)
    unknown = [e for e in expect if e not in _STATUSES]
    if unknown:
        raise ValidationError(f"expect must name statuses among {'/'.join(_STATUSES)}, got {shown(unknown)}")
    run = _run_of(engine, run)
    state = as_state(state)
    is_flow = isinstance(run, FlowRun)
    kind = "flow run" if is_flow else "task run"
    setter = engine.set_flow_run_state if is_flow else engine.set_task_run_state
    if policy is None:
        policy = CoreFlowPolicy if is_flow else CoreTaskPolicy
    waited = _dt.timedelta(0)
    for _ in range(_MAX_WAITS):
        proposal = state
        if proposal.timestamp is None:
            stamp = _fresh_timestamp(engine, run)
            if stamp is not None:
                proposal = attrs.evolve(state, timestamp=stamp, state_details=state.state_details.copy())
        if is_flow:
            result = setter(run.id, proposal, flow_policy=policy)
        else:
            result = setter(run.id, proposal, task_policy=policy)
        status = result.status.value
        if status == "WAIT" and wait and "WAIT" not in expect:
            delay = result.details.delay_seconds
            _advance(engine, delay, f"{state.name} after WAIT ({result.details.reason})")
            waited += delay if isinstance(delay, _dt.timedelta) else _dt.timedelta(seconds=delay)
            continue
        if status not in expect:
            raise SetupError(
                f"{kind} {run.id}: proposing {state.type.value} {shown(state.name)} gave {status} "
                f"({shown(getattr(result.details, 'reason', None))}); expected {'/'.join(expect)}"
            )
        return result
    raise SetupError(
        f"{kind} {run.id}: proposing {shown(state.name)} kept being delayed: {_MAX_WAITS} WAITs ({waited} waited out, "
        f"now undone), the last {shown(result.details.reason)} with delay_seconds={shown(result.details.delay_seconds)}"
    )


def helper_flow(engine: Any, name: str = "runstate-test-flow") -> Flow:
    """The flow helpers attach runs to (created on first use). O(1)."""
    return engine.create_flow(name=name)


def _with_retry_policy(fields: dict, retries: int | None, retry_delay: Any) -> dict:
    """`fields` with `retries` / `retry_delay` (when given) merged into its empirical_policy."""
    if retries is not None or retry_delay is not None:
        policy = dict(fields.pop("empirical_policy", None) or {})
        if retries is not None:
            policy["retries"] = retries
        if retry_delay is not None:
            policy["retry_delay"] = retry_delay
        fields["empirical_policy"] = policy
    return fields


def _flow_run_fields(engine: Any, fields: dict, retries: int | None, retry_delay: float | None) -> dict:
    if "flow_id" not in fields:
        flow = fields.pop("flow", None)
        fields["flow_id"] = (helper_flow(engine) if flow is None else _flow_of(engine, flow)).id
    return _with_retry_policy(fields, retries, retry_delay)


def _check_attempt(attempt: int, retries: int | None) -> None:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValidationError(f"attempt must be an integer >= 1, got {shown(attempt)}")
    if attempt > 1 and (retries is None or retries < attempt - 1):
        raise ValidationError(f"attempt={attempt} needs retries >= {attempt - 1} (a failed run only retries if "
                              f"allowed), got retries={shown(retries)}")


def _fail_attempts(engine: Any, run: FlowRun | TaskRun, attempt: int, retries: int | None,
                   duration: _dt.timedelta, message: str, why: str) -> None:
    """Fail the RUNNING `run` `attempt` times, each after `duration`; a failure with
    retries left is rejected into AwaitingRetry, which is waited out and run again
    (except after the last attempt)."""
    for n in range(1, attempt + 1):
        end = _run_for(engine, run, duration, why)
        retrying = retries is not None and n <= retries
        result = propose(engine, run, Failed(message=message, timestamp=end),
                         expect=("REJECT",) if retrying else ("ACCEPT",))
        if n < attempt:
            _advance(engine, result.state.state_details.scheduled_time - engine.now(), "a retry delay")
            propose(engine, run, Running())


# flow runs -------------------------------------------------------------------------------------------
@_transaction
def scheduled_flow_run(engine: Any, *, scheduled_time: _dt.datetime | None = None,
                       retries: int | None = None, retry_delay: float | None = None, **fields: Any) -> FlowRun:
    """A flow run created in SCHEDULED (at `scheduled_time`, default now), as a
    client or scheduler creates one. Extra keywords are flow-run fields (tags,
    deployment_id, parameters, `flow=` a Flow, ...)."""
    fields = _flow_run_fields(engine, dict(fields), retries, retry_delay)
    when = scheduled_time if scheduled_time is not None else engine.now()
    return engine.create_flow_run(fields, state=Scheduled(when))


@_transaction
def pending_flow_run(engine: Any, **kwargs: Any) -> FlowRun:
    """A flow run moved SCHEDULED → PENDING (taking a deployment slot if limited)."""
    run = scheduled_flow_run(engine, **kwargs)
    propose(engine, run, Pending())
    return run


@_transaction
def running_flow_run(engine: Any, **kwargs: Any) -> FlowRun:
    """A flow run moved SCHEDULED → PENDING → RUNNING: run_count 1, start_time set."""
    run = pending_flow_run(engine, **kwargs)
    propose(engine, run, Running())
    return run


@_transaction
def completed_flow_run(engine: Any, *, duration: _dt.timedelta = _ONE_SECOND, result: Any = None,
                       **kwargs: Any) -> FlowRun:
    """A flow run that ran for `duration` and COMPLETED (with `result` as data)."""
    duration = _span(duration, "duration", zero=True)
    run = running_flow_run(engine, **kwargs)
    end = _run_for(engine, run, duration, "completed_flow_run(duration)")
    propose(engine, run, Completed(data=result, timestamp=end))
    return run


@_transaction
def failed_flow_run(engine: Any, *, attempt: int = 1, retries: int | None = None, retry_delay: float | None = None,
                    duration: _dt.timedelta = _ONE_SECOND, message: str = "Flow run failed", **kwargs: Any) -> FlowRun:
    """A flow run whose attempt number `attempt` just failed, with `retries`
    configured. Attempts before it failed and were retried (waiting out
    `retry_delay`). As on a real server, a failure with retries left is rejected
    into AwaitingRetry: the run ends SCHEDULED "AwaitingRetry" when
    `attempt <= retries`, FAILED otherwise. run_count == attempt either way."""
    _check_attempt(attempt, retries)
    duration = _span(duration, "duration", zero=True)
    run = running_flow_run(engine, retries=retries, retry_delay=retry_delay, **kwargs)
    _fail_attempts(engine, run, attempt, retries, duration, message, "failed_flow_run(duration)")
    return run


@_transaction
def paused_flow_run(engine: Any, *, pause_key: str | None = None, timeout: _dt.timedelta = _dt.timedelta(hours=1),
                    reschedule: bool = False, **kwargs: Any) -> FlowRun:
    """A RUNNING flow run that paused (PAUSED, `pause_key` recorded in its policy's
    pause_keys, pause timeout now + `timeout`). `reschedule=True` suspends it
    instead (name "Suspended"), which needs a deployment: one is created if the
    keywords give none."""
    timeout = _span(timeout, "timeout", zero=False)
    if reschedule and "deployment_id" not in kwargs:
        # (the deployment is the run's flow's: flow_id's, else flow's, else the helper flow's)
        what = "flow_id" if "flow_id" in kwargs else "flow"
        given = kwargs.get(what)
        flow = helper_flow(engine) if given is None else _flow_of(engine, given, what)
        if what == "flow":
            kwargs["flow"] = flow
        name = _setup_name(engine, "runstate-suspend-deployment", _deployment_of(engine, flow))
        kwargs["deployment_id"] = engine.create_deployment(flow.id, name).id
    run = running_flow_run(engine, **kwargs)
    until = engine.now() + timeout
    if reschedule:
        state = Suspended(pause_expiration_time=until, pause_key=pause_key)
    else:
        state = Paused(pause_expiration_time=until, pause_key=pause_key)
    propose(engine, run, state)
    return run


@_transaction
def late_flow_run(engine: Any, *, late_by: _dt.timedelta = _dt.timedelta(minutes=5), **kwargs: Any) -> FlowRun:
    """A flow run scheduled `late_by` ago and marked Late (SCHEDULED "Late"), as the
    late-runs service does through MarkLateRunsPolicy."""
    late_by = _span(late_by, "late_by", zero=False)
    run = scheduled_flow_run(engine, scheduled_time=engine.now() - late_by, **kwargs)
    propose(engine, run, Late(scheduled_time=run.next_scheduled_start_time), policy=MarkLateRunsPolicy)
    return run


@_transaction
def full_deployment(engine: Any, *, limit: int = 2, collision_strategy: str = "ENQUEUE",
                    name: str | None = None, flow: Flow | uuid.UUID | str | None = None) -> DeploymentSetup:
    """A new deployment (named `name`, else "runstate-test-deployment-N") with
    concurrency limit `limit` whose slots are all held by `limit` RUNNING flow runs
    (each took its slot via SecureFlowConcurrencySlots). The next run proposing
    PENDING is rejected to AwaitingConcurrencySlot (ENQUEUE) or Cancelled
    (CANCEL_NEW)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"full_deployment needs a limit >= 1, got {shown(limit)}")
    flow = helper_flow(engine) if flow is None else _flow_of(engine, flow)
    name = name or _setup_name(engine, "runstate-test-deployment", _deployment_of(engine, flow))
    dep = engine.create_deployment(flow.id, name, concurrency_limit=limit,
                                   concurrency_options={"collision_strategy": collision_strategy})
    runs = [running_flow_run(engine, flow=flow, deployment_id=dep.id) for _ in range(limit)]
    gcl = engine.read_concurrency_limit_v2(dep.concurrency_limit_id)
    return DeploymentSetup(flow=flow, deployment=dep, limit=gcl, runs=runs)


# task runs ---------------------------------------------------------------------------------------------
def _task_fields(engine: Any, fields: dict, flow_run: Any, retries: int | None, retry_delay: Any) -> dict:
    if flow_run is not None:
        fields["flow_run_id"] = _flow_run_of(engine, flow_run).id
    fields.setdefault("task_key", "runstate-test-task")
    if "dynamic_key" not in fields:
        run_and_task = (fields.get("flow_run_id"), fields["task_key"])
        fields["dynamic_key"] = _fresh_number(engine, "dynamic_key", 0,
                                              lambda k: engine._unique("task_run", "upsert_key", (*run_and_task, k)))
    return _with_retry_policy(fields, retries, retry_delay)


@_transaction
def pending_task_run(engine: Any, *, flow_run: FlowRun | uuid.UUID | str | None = None,
                     retries: int | None = None, retry_delay: Any = None, **fields: Any) -> TaskRun:
    """A task run created PENDING, as the client creates one. `flow_run` must be
    RUNNING for the task to start later; None makes an autonomous task run."""
    fields = _task_fields(engine, dict(fields), flow_run, retries, retry_delay)
    return engine.create_task_run(fields, state=Pending())


@_transaction
def running_task_run(engine: Any, **kwargs: Any) -> TaskRun:
    """A task run moved PENDING → RUNNING (tag slots taken, run_count 1)."""
    run = pending_task_run(engine, **kwargs)
    propose(engine, run, Running())
    return run


@_transaction
def completed_task_run(engine: Any, *, duration: _dt.timedelta = _ONE_SECOND, result: Any = None,
                       cache_key: str | None = None, cache_expiration: _dt.datetime | None = None,
                       **kwargs: Any) -> TaskRun:
    """A task run that ran for `duration` and COMPLETED; with a `cache_key` the
    completion is cached (CacheInsertion) until `cache_expiration` (None = never)."""
    duration = _span(duration, "duration", zero=True)
    run = running_task_run(engine, **kwargs)
    end = _run_for(engine, run, duration, "completed_task_run(duration)")
    state = Completed(data=result, timestamp=end,
                      state_details={"cache_key": cache_key, "cache_expiration": cache_expiration})
    propose(engine, run, state)
    return run


@_transaction
def cached_task_run(engine: Any, *, cache_key: str = "K", expires_in: _dt.timedelta | None = _dt.timedelta(minutes=5),
                    result: Any = None, **kwargs: Any) -> TaskRun:
    """A task run COMPLETED with `cache_key`, cached for `expires_in` from its
    completion (None = forever). Its result defaults to a persisted-result record, so a
    later task proposing RUNNING with the same key gets a "Cached" copy."""
    if result is None:
        result = {"storage_key": f"runstate-test-cache/{cache_key}", "serializer": "json"}
    duration = _span(kwargs.pop("duration", _ONE_SECOND), "duration", zero=True)
    if expires_in is not None:
        expires_in = _span(expires_in, "expires_in", zero=True)
    run = running_task_run(engine, **kwargs)
    end = _run_for(engine, run, duration, "cached_task_run(duration)")
    completion = end if end is not None else engine.now()
    expiration = None if expires_in is None else completion + expires_in  # counted from completion
    state = Completed(data=result, timestamp=end,
                      state_details={"cache_key": cache_key, "cache_expiration": expiration})
    propose(engine, run, state)
    return run


@_transaction
def failed_task_run(engine: Any, *, attempt: int = 1, retries: int | None = None, retry_delay: Any = None,
                    duration: _dt.timedelta = _ONE_SECOND, message: str = "Task run failed", **kwargs: Any) -> TaskRun:
    """A task run whose attempt `attempt` just failed with `retries` configured
    (retry_delay: seconds or a list). As on a server: AwaitingRetry if
    `attempt <= retries`, FAILED otherwise; run_count == attempt."""
    _check_attempt(attempt, retries)
    duration = _span(duration, "duration", zero=True)
    run = running_task_run(engine, retries=retries, retry_delay=retry_delay, **kwargs)
    _fail_attempts(engine, run, attempt, retries, duration, message, "failed_task_run(duration)")
    return run


@_transaction
def full_tag_limit(engine: Any, *, tag: str | None = None, limit: int = 1,
                   flow_run: FlowRun | uuid.UUID | str | None = None) -> TagLimitSetup:
    """A tag concurrency limit of `limit` whose slots are all held by `limit`
    RUNNING task runs tagged `tag` (else a new "runstate-test-tag-N": read it from
    the setup's `limit.tag`); the next such task proposing RUNNING WAITs 30 s."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"full_tag_limit needs a limit >= 1, got {shown(limit)}")
    cl = engine.create_concurrency_limit(tag or _setup_name(engine, "runstate-test-tag", engine.read_concurrency_limit_by_tag),
                                         limit)
    tag = cl.tag
    runs = [running_task_run(engine, tags=[tag], flow_run=flow_run) for _ in range(limit)]
    return TagLimitSetup(limit=cl, runs=runs)


def history(engine: Any, run: FlowRun | TaskRun | uuid.UUID | str) -> list[tuple[str, str]]:
    """(type, name) of each state of `run` (a flow run or task run, or its id),
    oldest first: handy in assertions. O(h log h)."""
    run = _run_of(engine, run)
    states = engine.read_flow_run_states(run.id) if isinstance(run, FlowRun) else engine.read_task_run_states(run.id)
    return [(s.type.value, s.name) for s in states]

