"""Rules of the task-run policies (spec orchestration.md §8.3, §8.15-§8.18,
§8.21-§8.24)."""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from ..errors import ObjectNotFoundError, OrchestrationError
from ..records import TaskRunStateCache
from ..states import StateDetails, StateType, has_persisted_result
from .common import LEAVE_TERMINAL_ABORT, CoreRule, make_state, retry_time
from .rules import ALL_STATES, TERMINAL

__all__ = [
    "HandleTaskTerminalStateTransitions",
    "PreventRunningTasksFromStoppedFlows",
    "RetryFailedTasks",
    "RenameReruns",
    "UpdateFlowRunTrackerOnTasks",
    "CacheRetrieval",
    "CacheInsertion",
    "CopyTaskParametersID",
    "EnqueueScheduledTasks",
    "clamped_poisson_interval",
    "TASK_QUEUE_CAPACITY",
]

S = StateType
# Prefect's in-memory background task queue sizes per task key (informational here:
# our queues are unbounded lists, see EnqueueScheduledTasks).
TASK_QUEUE_CAPACITY = {"scheduled": 1000, "retry": 100}


class HandleTaskTerminalStateTransitions(CoreRule):
    """Guard terminal task runs; re-running one resets its retry budget."""

    FROM_STATES = TERMINAL
    TO_STATES = ALL_STATES

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        self._original_run_count = run.run_count
        if proposed_state.type in LEAVE_TERMINAL_ABORT:
            self.abort_transition(f"Run is already {initial_state.type.value}.")
            return
        if initial_state.type is S.COMPLETED and has_persisted_result(initial_state):
            self.reject_transition(None, "This run is already completed.")
            return
        if not proposed_state.is_final():
            run.run_count = 0
        if proposed_state.type is S.RUNNING and run.flow_run_id is not None:
            flow_run = context.flow_run()
            if flow_run is not None and run.flow_run_run_count < flow_run.run_count:
                self.rename_state("Retrying")

    def cleanup(self, initial_state, validated_state, context):
        context.run.run_count = self._original_run_count


class PreventRunningTasksFromStoppedFlows(CoreRule):
    """Tasks run only inside a RUNNING flow run; a paused flow makes them NotReady."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        flow_run = context.flow_run()
        if flow_run is None:
            return
        flow_state = flow_run.state if flow_run.state_id is not None else None
        if flow_state is None:
            self.abort_transition("The enclosing flow must be running to begin task execution.")
        elif flow_state.type is S.PAUSED:
            flow_details = flow_state.state_details
            details = StateDetails(
                pause_timeout=flow_details.pause_timeout,
                pause_reschedule=flow_details.pause_reschedule,
                pause_key=None,
            )
            self.reject_transition(
                make_state(S.PAUSED, "NotReady", context.now, details=details),
                f"The flow is paused, new tasks can execute after resuming flow run: {flow_run.id}.",
            )
        elif flow_state.type is not S.RUNNING:
            self.abort_transition("The enclosing flow must be running to begin task execution.")


def clamped_poisson_interval(average: float, clamping_factor: float, rng) -> float:
    """A random delay around `average`, clamped to [lower, average * (1 + factor)]
    (Prefect's retry jitter). O(1)."""
    k = 1 + clamping_factor
    upper = average * k
    lower_multiple = 0.0 if k >= 50 else math.log2(2**k / (2**k - 1))
    lower = max(0.0, average * lower_multiple)
    u_lo = 1 - math.exp(-lower / average)
    u_hi = 1 - math.exp(-upper / average)
    u = rng.uniform(u_lo, u_hi)
    return -math.log(max(1 - u, 1e-10)) * average


def _jitter(engine: Any, base: float, factor: float) -> float:
    """A jittered delay drawn from the engine's generator; if the call is rolled back,
    the generator is put back too, so a failed call leaves the engine as it was and
    a seeded engine's later draws don't depend on it. O(1) (O(generator state) to
    save it: 625 words for a random.Random)."""
    rng = engine.random
    getstate = getattr(rng, "getstate", None)
    if getstate is not None:
        saved = getstate()
        engine._store.on_rollback(lambda: rng.setstate(saved))
    return clamped_poisson_interval(base, factor, rng)


class RetryFailedTasks(CoreRule):
    """A failing task run with retries left goes to AwaitingRetry (delays may be a
    list per attempt, optionally jittered)."""

    FROM_STATES = (S.RUNNING,)
    TO_STATES = (S.FAILED,)

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        policy = run.empirical_policy
        run_count = run.run_count
        delays = policy.retry_delay
        if isinstance(delays, list):
            # Prefect raises IndexError on an empty list; no delay is the sensible reading.
            base = delays[min(run_count - 1, len(delays) - 1)] if delays else 0
        else:
            base = delays or 0
        if policy.retry_jitter_factor and base:
            # (Prefect divides by zero when the base delay is 0; we keep 0.)
            delay = _jitter(context.session, base, policy.retry_jitter_factor)
        else:
            delay = base
        if proposed_state.state_details.retriable is False:
            return
        if policy.retries is not None and run_count <= policy.retries:
            now = context.now
            self.reject_transition(
                make_state(
                    S.SCHEDULED, "AwaitingRetry", now,
                    message=proposed_state.message, data=proposed_state.data,
                    details=StateDetails(scheduled_time=retry_time(now, delay, run)),
                ),
                "Retrying",
            )


class RenameReruns(CoreRule):
    """A task entering RUNNING again is "Retrying" (after AwaitingRetry) or "Rerunning"."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        if context.run.run_count > 0:
            if initial_state is None:
                # Prefect crashes here (AttributeError on the missing state's name) and
                # the call fails; we fail as well, with a reason.
                raise OrchestrationError("Cannot rename a rerun of a task run that has no state.")
            if initial_state.name == "AwaitingRetry":
                self.rename_state("Retrying")
            else:
                self.rename_state("Rerunning")


class UpdateFlowRunTrackerOnTasks(CoreRule):
    """Remember which flow-run attempt the task last ran in."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def after_transition(self, initial_state, validated_state, context):
        run = context.run
        if run.flow_run_id is None:
            return
        flow_run = context.flow_run()
        if flow_run is None:
            raise ObjectNotFoundError(
                f"Unable to read flow run associated with task run: {run.id}, "
                "this flow run might have been deleted"
            )
        run.flow_run_run_count = flow_run.run_count


def _latest_cache_row(engine, key: str, now: _dt.datetime):
    """Newest (by created; later insert wins ties) unexpired cache row of `key`.
    O(1) in the usual case (see NewestIndex)."""
    return engine._store.tables["task_run_state_cache"].by_name["cache_key"].newest(key, now)


class CacheRetrieval(CoreRule):
    """A RUNNING proposal with a cache key hits the cache: REJECT with the cached
    COMPLETED state (fresh copy named "Cached")."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        details = proposed_state.state_details
        key = details.cache_key
        if not key or details.refresh_cache:
            return
        engine = context.session
        row = _latest_cache_row(engine, key, context.now)
        if row is None:
            return
        state_row = engine._store.tables["task_run_state"].rows.get(row.task_run_state_id)
        if state_row is None:
            return  # only the newest entry counts, even if its state is gone
        cached = engine._row_to_state(state_row).fresh_copy(context.now)
        cached.name = "Cached"
        self.reject_transition(cached, "Retrieved state from cache")


class CacheInsertion(CoreRule):
    """A stored COMPLETED state with a cache key becomes a cache entry."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.COMPLETED,)

    def after_transition(self, initial_state, validated_state, context):
        if validated_state is None:
            return
        details = validated_state.state_details
        if not details.cache_key:
            return
        row = TaskRunStateCache(
            cache_key=details.cache_key,
            cache_expiration=details.cache_expiration,
            task_run_state_id=validated_state.id,
        )
        row.created = row.updated = context.now
        context.session._store.insert("task_run_state_cache", row)


class CopyTaskParametersID(CoreRule):
    """Background tasks keep their parameters id from SCHEDULED/PENDING onwards."""

    FROM_STATES = (S.SCHEDULED, S.PENDING)
    TO_STATES = (S.PENDING, S.RUNNING)

    def before_transition(self, initial_state, proposed_state, context):
        details = proposed_state.state_details
        if not details.task_parameters_id:
            details.task_parameters_id = initial_state.state_details.task_parameters_id


class EnqueueScheduledTasks(CoreRule):
    """A stored deferred SCHEDULED state puts the task run on its task key's queue
    (the retry queue for AwaitingRetry). Queues: engine.task_queues[task_key]."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.SCHEDULED,)

    def after_transition(self, initial_state, validated_state, context):
        if validated_state is None or not validated_state.state_details.deferred:
            return
        engine = context.session
        queues = engine.task_queues
        task_key = context.run.task_key
        entry = queues.get(task_key)
        store = engine._store
        if entry is None:
            entry = queues[task_key] = {"scheduled": [], "retry": []}
            store.on_rollback(lambda: queues.pop(task_key, None))
        which = entry["retry" if validated_state.name == "AwaitingRetry" else "scheduled"]
        which.append(context.run.id)
        store.on_rollback(which.pop)
