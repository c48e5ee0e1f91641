"""Global transforms: the bookkeeping every transition gets, forced or not
(spec orchestration.md §9). Each before-hook does nothing for a nullified proposal."""
from __future__ import annotations

from ..states import StateType, TERMINAL_STATES
from .rules import BaseUniversalTransform
from .versions import is_latest_client


__all__ = [
    "GlobalTransform",
    "SetRunStateType",
    "SetRunStateName",
    "SetRunStateTimestamp",
    "SetStartTime",
    "SetEndTime",
    "IncrementRunTime",
    "SetExpectedStartTime",
    "SetNextScheduledStartTime",
    "UpdateStateDetails",
    "UpdateSubflowParentTask",
    "UpdateSubflowStateDetails",
    "IncrementFlowRunCount",
    "RemoveResumingIndicator",
    "IncrementTaskRunCount",
]

class GlobalTransform(BaseUniversalTransform):
    """Base of the global transforms. The ones defined here keep no per-instance
    state, so the pipeline runs their hooks as plain functions instead of building
    an object per transition (same order, same semantics). Subclasses defined
    elsewhere are run the ordinary way."""

    def __init_subclass__(cls, **kwargs):
        if cls.__module__ == __name__:
            type.__setattr__(cls, "_STATELESS_HOOKS", True)
        super().__init_subclass__(**kwargs)


_RUNNING = StateType.RUNNING
_SCHEDULED = StateType.SCHEDULED


class SetRunStateType(GlobalTransform):
    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is not None:
            context.run.state_type = proposed.type


class SetRunStateName(GlobalTransform):
    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is not None:
            context.run.state_name = proposed.name


class SetRunStateTimestamp(GlobalTransform):
    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is not None:
            context.run.state_timestamp = proposed.timestamp


class SetStartTime(GlobalTransform):
    """The first RUNNING state's timestamp; never reset."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is not None and proposed.type is _RUNNING:
            run = context.run
            if run.start_time is None:
                run.start_time = proposed.timestamp


class SetEndTime(GlobalTransform):
    """Set on reaching a final state (if the run ever started); cleared on leaving one."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        run = context.run
        initial = context.initial_state
        proposed_final = proposed.type in TERMINAL_STATES
        if initial is not None and initial.type in TERMINAL_STATES and not proposed_final:
            run.end_time = None
        if proposed_final and run.start_time is not None and run.end_time is None:
            run.end_time = proposed.timestamp


class IncrementRunTime(GlobalTransform):
    """Time spent in RUNNING accumulates when a run leaves (or re-enters) RUNNING."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        initial = context.initial_state
        if initial is not None and initial.type is _RUNNING:
            run = context.run
            run.total_run_time = run.total_run_time + (proposed.timestamp - initial.timestamp)


class SetExpectedStartTime(GlobalTransform):
    """The first state fixes when the run was expected to start."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        run = context.run
        if run.expected_start_time is None:
            if proposed.type is _SCHEDULED:
                run.expected_start_time = proposed.state_details.scheduled_time
            else:
                run.expected_start_time = proposed.timestamp


class SetNextScheduledStartTime(GlobalTransform):
    """Mirrors the scheduled time while the run is SCHEDULED."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        run = context.run
        initial = context.initial_state
        if initial is not None and initial.type is _SCHEDULED:
            run.next_scheduled_start_time = None
        if proposed.type is _SCHEDULED:
            run.next_scheduled_start_time = proposed.state_details.scheduled_time


class UpdateStateDetails(GlobalTransform):
    """Stamp the run ids on the state being written."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        details = proposed.state_details
        run = context.run
        if context.run_kind == "flow_run":
            details.flow_run_id = run.id
        else:
            details.flow_run_id = run.flow_run_id
            details.task_run_id = run.id


class UpdateSubflowParentTask(GlobalTransform):
    """Mirror a subflow's new state onto its parent task run (forced)."""

    def after_transition(self, context):
        if context.proposed_state is None:
            return
        run = context.run
        parent_id = run.parent_task_run_id
        validated = context.validated_state
        if parent_id is None or validated is None:
            return
        from .pipeline import set_task_run_state  # cycle: the pipeline imports the policies

        engine = context.session
        mirrored = validated.fresh_copy(engine._clock.now())
        mirrored.state_details.child_flow_run_id = run.id
        set_task_run_state(engine, parent_id, mirrored, force=True)


class UpdateSubflowStateDetails(GlobalTransform):
    """A subflow's states point at the parent task run."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        parent_id = context.run.parent_task_run_id
        if parent_id is not None:
            proposed.state_details.task_run_id = parent_id


class IncrementFlowRunCount(GlobalTransform):
    """Count RUNNING entries, except the resume of a suspended (rescheduled) run."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None or proposed.type is not _RUNNING:
            return
        run = context.run
        if run.empirical_policy.resuming and is_latest_client(context.parameters):
            return
        run.run_count += 1


class RemoveResumingIndicator(GlobalTransform):
    """The resuming flag lasts until the next RUNNING or final state."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        policy = context.run.empirical_policy
        if not policy.resuming:
            return
        if (proposed.type is _RUNNING or proposed.type in TERMINAL_STATES) and is_latest_client(context.parameters):
            policy.resuming = False


class IncrementTaskRunCount(GlobalTransform):
    """Count RUNNING entries of a task run."""

    def before_transition(self, context):
        proposed = context.proposed_state
        if proposed is not None and proposed.type is _RUNNING:
            context.run.run_count += 1


# Which before-hooks can do anything for an actual transition (from, to), `to` being
# the proposal's type when the transforms run (None once nullified). The pipeline
# skips the others. Keyed by exact class: subclasses (instrumented copies, user
# variants) are always called.
def _proposed(from_type, to_type):
    return to_type is not None


STATIC_FILTERS = {
    SetRunStateType: _proposed,
    SetRunStateName: _proposed,
    SetRunStateTimestamp: _proposed,
    SetStartTime: lambda f, t: t is _RUNNING,
    SetEndTime: lambda f, t: t is not None and (t in TERMINAL_STATES or f in TERMINAL_STATES),
    IncrementRunTime: lambda f, t: t is not None and f is _RUNNING,
    SetExpectedStartTime: _proposed,
    SetNextScheduledStartTime: lambda f, t: t is not None and (f is _SCHEDULED or t is _SCHEDULED),
    UpdateStateDetails: _proposed,
    UpdateSubflowParentTask: _proposed,
    UpdateSubflowStateDetails: _proposed,
    IncrementFlowRunCount: lambda f, t: t is _RUNNING,
    RemoveResumingIndicator: lambda f, t: t is _RUNNING or t in TERMINAL_STATES,
    IncrementTaskRunCount: lambda f, t: t is _RUNNING,
}
