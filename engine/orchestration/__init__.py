"""Orchestration: the rules that govern every state transition, grouped in Prefect
3.1.0's policies, and the pipeline that applies them (spec orchestration.md).

Entry points: `set_flow_run_state` and `set_task_run_state` (the Engine calls them
inside its transactions). Custom policies subclass `BaseOrchestrationPolicy` and
return their rule classes from `priority()`; custom rules subclass
`BaseOrchestrationRule` (or `BaseUniversalTransform`):

    class NoRunsAfterHours(BaseOrchestrationRule):
        FROM_STATES = [StateType.PENDING]
        TO_STATES = [StateType.RUNNING]

        def before_transition(self, initial_state, proposed_state, context):
            if context.now.hour >= 18:
                self.delay_transition(3600, "After hours")   # or reject_/abort_transition

    class MyPolicy(BaseOrchestrationPolicy):
        @staticmethod
        def priority():
            return [*CoreFlowPolicy.priority(), NoRunsAfterHours]

    engine.set_flow_run_state(run_id, Running(), flow_policy=MyPolicy)

Hooks get shallow copies of the states and context (assigning to them changes
nothing; use the mutators); `cleanup` runs if a later rule changed the transition.
"""
from .context import FlowOrchestrationContext, OrchestrationContext, TaskOrchestrationContext
from .flow_rules import *  # noqa: F401,F403
from .global_rules import *  # noqa: F401,F403
from .instrumentation import EVENT_LISTENERS, InstrumentFlowRunStateTransitions
from .pipeline import resume_flow_run, set_flow_run_state, set_task_run_state
from . import flow_rules as _flow_rules, global_rules as _global_rules, policies as _policies, task_rules as _task_rules
from .policies import *  # noqa: F401,F403 - every policy and POLICIES
from .responses import (
    OrchestrationResult,
    SetStateStatus,
    StateAbortDetails,
    StateAcceptDetails,
    StateRejectDetails,
    StateWaitDetails,
    details_from_dict,
)
from .rules import ALL_STATES, TERMINAL, BaseOrchestrationPolicy, BaseOrchestrationRule, BaseUniversalTransform
from .shared_rules import CopyScheduledTime, WaitForScheduledTime
from .slot_rules import (
    ReleaseFlowConcurrencySlots,
    ReleaseTaskConcurrencySlots,
    SecureFlowConcurrencySlots,
    SecureTaskConcurrencySlots,
)
from .task_rules import *  # noqa: F401,F403
from .versions import parse_api_version

__all__ = [
    "resume_flow_run",
    "set_flow_run_state",
    "set_task_run_state",
    "SetStateStatus",
    "OrchestrationResult",
    "StateAcceptDetails",
    "StateRejectDetails",
    "StateAbortDetails",
    "StateWaitDetails",
    "details_from_dict",
    "OrchestrationContext",
    "FlowOrchestrationContext",
    "TaskOrchestrationContext",
    "BaseOrchestrationRule",
    "BaseUniversalTransform",
    "BaseOrchestrationPolicy",
    "ALL_STATES",
    "TERMINAL",
    *_policies.__all__,
    # the rules, for policies of your own
    *_flow_rules.__all__,
    *_task_rules.__all__,
    *_global_rules.__all__,
    "CopyScheduledTime",
    "WaitForScheduledTime",
    "ReleaseFlowConcurrencySlots",
    "ReleaseTaskConcurrencySlots",
    "SecureFlowConcurrencySlots",
    "SecureTaskConcurrencySlots",
    "InstrumentFlowRunStateTransitions",
    "EVENT_LISTENERS",
    "parse_api_version",
]
