"""Rules of the flow-run policies (spec orchestration.md §8.1-§8.14)."""
from __future__ import annotations

import datetime as _dt

from ..errors import OrchestrationError
from ..states import StateDetails, StateType, has_persisted_result, new_id
from .common import LEAVE_TERMINAL_ABORT, CoreRule, make_state, retry_time
from .rules import ALL_STATES, TERMINAL
from .versions import V0_8_3, V0_8_4, api_version_of, is_latest_client

__all__ = [
    "PreventDuplicateTransitions",
    "HandleFlowTerminalStateTransitions",
    "EnforceCancellingToCancelledTransition",
    "BypassCancellingFlowRunsWithNoInfra",
    "PreventPendingTransitions",
    "EnsureOnlyScheduledFlowsMarkedLate",
    "HandlePausingFlows",
    "HandleResumingPausedFlows",
    "RetryFailedFlows",
]

S = StateType


class PreventDuplicateTransitions(CoreRule):
    """Reject a proposal carrying the same transition_id as the current state."""

    FROM_STATES = ALL_STATES
    TO_STATES = ALL_STATES

    def before_transition(self, initial_state, proposed_state, context):
        if initial_state is None or proposed_state is None:
            return
        initial_id = initial_state.state_details.transition_id
        proposed_id = proposed_state.state_details.transition_id
        if initial_id is not None and proposed_id is not None and initial_id == proposed_id:
            self.reject_transition(None, "This run has already made this state transition.")


class HandleFlowTerminalStateTransitions(CoreRule):
    """Guard terminal flow runs; leaving one for a non-final state resets pause info."""

    FROM_STATES = TERMINAL
    TO_STATES = ALL_STATES

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        self._original_policy = run.empirical_policy.copy()
        proposed_type = proposed_state.type
        if proposed_type in LEAVE_TERMINAL_ABORT:
            self.abort_transition(f"Run is already in terminal state {initial_state.type.value}.")
            return
        proposed_final = proposed_state.is_final()
        if initial_state.type is S.COMPLETED and not proposed_final and has_persisted_result(initial_state):
            self.reject_transition(None, "Run is already COMPLETED.")
            return
        if proposed_type is S.SCHEDULED and run.deployment_id is None:
            self.abort_transition("Cannot reschedule a run without an associated deployment.")
            return
        if not proposed_final and is_latest_client(context.parameters):
            policy = run.empirical_policy
            policy.resuming = False
            policy.pause_keys = set()

    def cleanup(self, initial_state, validated_state, context):
        context.run.empirical_policy = self._original_policy


class EnforceCancellingToCancelledTransition(CoreRule):
    """A cancelling (or cancelled) flow run may only become CANCELLED."""

    FROM_STATES = (S.CANCELLED, S.CANCELLING)
    TO_STATES = ALL_STATES - {S.CANCELLED}

    def before_transition(self, initial_state, proposed_state, context):
        self.reject_transition(
            None, "Cannot transition flows that are cancelling to a state other than Cancelled."
        )


class BypassCancellingFlowRunsWithNoInfra(CoreRule):
    """Cancel directly when there is no infrastructure to tear down."""

    FROM_STATES = (S.SCHEDULED, S.PAUSED)
    TO_STATES = (S.CANCELLING,)

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        if (initial_state.type is S.SCHEDULED and not run.infrastructure_pid) or initial_state.name == "Resuming":
            self.reject_transition(
                make_state(S.CANCELLED, "Cancelled", context.now),
                "Scheduled flow run has no infrastructure to terminate.",
            )
        elif initial_state.type is S.PAUSED and initial_state.state_details.pause_reschedule:
            self.reject_transition(
                make_state(S.CANCELLED, "Cancelled", context.now),
                "Suspended flow run has no infrastructure to terminate.",
            )


class PreventPendingTransitions(CoreRule):
    """Only one client may move a run to PENDING (it is the "I'll run it" claim)."""

    FROM_STATES = (S.PENDING, S.CANCELLING, S.RUNNING, S.CANCELLED)
    TO_STATES = (S.PENDING,)

    def before_transition(self, initial_state, proposed_state, context):
        self.abort_transition(
            f"This run is in a {initial_state.type.name} state and cannot transition to a PENDING state."
        )


class EnsureOnlyScheduledFlowsMarkedLate(CoreRule):
    """"Late" is only for runs that are still scheduled."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.SCHEDULED,)

    def before_transition(self, initial_state, proposed_state, context):
        if proposed_state.name != "Late":
            return
        if initial_state is None:
            # Prefect crashes here (AttributeError); we fail as clearly, with a reason.
            raise OrchestrationError("Only scheduled flows can be marked late; this run has no state.")
        if initial_state.type is not S.SCHEDULED:
            self.reject_transition(None, "Only scheduled flows can be marked late.")


class HandlePausingFlows(CoreRule):
    """Pause only running flows, once per pause key; suspending needs a deployment."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.PAUSED,)

    def before_transition(self, initial_state, proposed_state, context):
        verb = "suspend" if proposed_state.name == "Suspended" else "pause"
        if initial_state is None:
            self.abort_transition(f"Cannot {verb} flows with no state.")
            return
        if initial_state.type is not S.RUNNING:
            self.reject_transition(None, f"Cannot {verb} flows that are not currently running.")
            return
        details = proposed_state.state_details
        key = details.pause_key
        if key is None:
            key = str(new_id())
        self._pause_key = key
        run = context.run
        keys = run.empirical_policy.pause_keys
        if keys and key in keys:
            self.reject_transition(None, f"This {verb} has already fired.")
            return
        if details.pause_reschedule:
            if run.parent_task_run_id is not None:
                self.abort_transition(f"Cannot {verb} subflows.")
                return
            if run.deployment_id is None:
                self.abort_transition(f"Cannot {verb} flows without a deployment.")
                return

    def after_transition(self, initial_state, validated_state, context):
        policy = context.run.empirical_policy
        if policy.pause_keys is None:
            policy.pause_keys = set()
        policy.pause_keys.add(self._pause_key)


class HandleResumingPausedFlows(CoreRule):
    """Leaving PAUSED: only to RUNNING, SCHEDULED or a final state, before the timeout."""

    FROM_STATES = (S.PAUSED,)
    TO_STATES = ALL_STATES

    def before_transition(self, initial_state, proposed_state, context):
        name = proposed_state.name if proposed_state is not None else None
        verb = "suspend" if name == "Suspended" else "pause"
        if proposed_state is None or not (
            proposed_state.type is S.RUNNING or proposed_state.type is S.SCHEDULED or proposed_state.is_final()
        ):
            self.reject_transition(
                None,
                f"This run cannot transition to the {proposed_state.type if proposed_state else None} "
                f"state from the {initial_state.type} state.",
            )
            return
        details = initial_state.state_details
        lowered = (name or "").lower()
        if details.pause_reschedule and context.run.deployment_id is None:
            self.reject_transition(None, f"Cannot reschedule a {lowered} flow run without a deployment.")
            return
        timeout = details.pause_timeout
        if timeout is not None and timeout < context.now:
            self.reject_transition(
                make_state(S.FAILED, "Failed", context.now,
                           message=f"The flow was {lowered} and never resumed."),
                f"The flow run {verb} has timed out and can no longer resume.",
            )

    def after_transition(self, initial_state, validated_state, context):
        context.run.empirical_policy.resuming = True


class RetryFailedFlows(CoreRule):
    """A failing flow run with retries left goes to AwaitingRetry instead."""

    FROM_STATES = (S.RUNNING,)
    TO_STATES = (S.FAILED,)

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        policy = run.empirical_policy
        retries = policy.retries
        if retries is None or run.run_count > retries:
            return
        now = context.now
        retry_at = retry_time(now, policy.retry_delay or 0, run)
        version = api_version_of(context.parameters)
        if version is not None and version < V0_8_3:
            _reset_failed_task_runs(context, retry_at)
        if version is None or version >= V0_8_4:
            policy.resuming = False
            policy.pause_keys = set()
        self.reject_transition(
            make_state(
                S.SCHEDULED, "AwaitingRetry", now,
                message=proposed_state.message, data=proposed_state.data,
                details=StateDetails(scheduled_time=retry_at),
            ),
            "Retrying",
        )


def _reset_failed_task_runs(context, retry_at: _dt.datetime) -> None:
    """Legacy clients (< 0.8.3): every FAILED task run of the flow run is forced to
    AwaitingRetry and its run count reset. O(failed task runs)."""
    from .pipeline import set_task_run_state  # cycle: the pipeline imports the policies

    engine = context.session
    store = engine._store
    bucket = store.tables["task_run"].by_name["flow_run_id"].get(context.run.id)
    for task_run in [t for t in bucket.values() if t.state_type is S.FAILED]:
        set_task_run_state(
            engine, task_run.id,
            make_state(S.SCHEDULED, "AwaitingRetry", engine._clock.now(),
                       details=StateDetails(scheduled_time=retry_at)),
            force=True,
        )
        store.touch("task_run", task_run)
        task_run.run_count = 0

