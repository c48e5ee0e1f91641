"""The policies: ordered rule lists, exactly Prefect 3.1.0's (spec orchestration.md §7)."""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import ValidationError, shown

from .flow_rules import (
    BypassCancellingFlowRunsWithNoInfra,
    EnforceCancellingToCancelledTransition,
    EnsureOnlyScheduledFlowsMarkedLate,
    HandleFlowTerminalStateTransitions,
    HandlePausingFlows,
    HandleResumingPausedFlows,
    PreventDuplicateTransitions,
    PreventPendingTransitions,
    RetryFailedFlows,
)
from .global_rules import (
    IncrementFlowRunCount,
    IncrementRunTime,
    IncrementTaskRunCount,
    RemoveResumingIndicator,
    SetEndTime,
    SetExpectedStartTime,
    SetNextScheduledStartTime,
    SetRunStateName,
    SetRunStateTimestamp,
    SetRunStateType,
    SetStartTime,
    UpdateStateDetails,
    UpdateSubflowParentTask,
    UpdateSubflowStateDetails,
)
from .instrumentation import InstrumentFlowRunStateTransitions
from .rules import BaseOrchestrationPolicy
from .shared_rules import CopyScheduledTime, WaitForScheduledTime
from .slot_rules import (
    ReleaseFlowConcurrencySlots,
    ReleaseTaskConcurrencySlots,
    SecureFlowConcurrencySlots,
    SecureTaskConcurrencySlots,
)
from .task_rules import (
    CacheInsertion,
    CacheRetrieval,
    CopyTaskParametersID,
    EnqueueScheduledTasks,
    HandleTaskTerminalStateTransitions,
    PreventRunningTasksFromStoppedFlows,
    RenameReruns,
    RetryFailedTasks,
    UpdateFlowRunTrackerOnTasks,
)

__all__ = [
    "CoreFlowPolicy",
    "CoreFlowPolicyWithoutDeploymentConcurrency",
    "CoreTaskPolicy",
    "ClientSideTaskOrchestrationPolicy",
    "BackgroundTaskPolicy",
    "MinimalFlowPolicy",
    "MinimalTaskPolicy",
    "MarkLateRunsPolicy",
    "GlobalFlowPolicy",
    "GlobalTaskPolicy",
    "POLICIES",
    "resolve_policy",
]


class CoreFlowPolicy(BaseOrchestrationPolicy):
    """What the API uses for flow runs."""

    RUN_KIND = "flow"

    @staticmethod
    def priority():
        return [
            PreventDuplicateTransitions,
            HandleFlowTerminalStateTransitions,
            EnforceCancellingToCancelledTransition,
            BypassCancellingFlowRunsWithNoInfra,
            PreventPendingTransitions,
            SecureFlowConcurrencySlots,
            EnsureOnlyScheduledFlowsMarkedLate,
            HandlePausingFlows,
            HandleResumingPausedFlows,
            CopyScheduledTime,
            WaitForScheduledTime,
            RetryFailedFlows,
            InstrumentFlowRunStateTransitions,
            ReleaseFlowConcurrencySlots,
        ]


class CoreFlowPolicyWithoutDeploymentConcurrency(BaseOrchestrationPolicy):
    """For clients 3.0.0rc20-3.0.3, which manage deployment concurrency themselves."""

    RUN_KIND = "flow"

    @staticmethod
    def priority():
        return [
            PreventDuplicateTransitions,
            HandleFlowTerminalStateTransitions,
            EnforceCancellingToCancelledTransition,
            BypassCancellingFlowRunsWithNoInfra,
            PreventPendingTransitions,
            EnsureOnlyScheduledFlowsMarkedLate,
            HandlePausingFlows,
            HandleResumingPausedFlows,
            CopyScheduledTime,
            WaitForScheduledTime,
            RetryFailedFlows,
            InstrumentFlowRunStateTransitions,
        ]


class CoreTaskPolicy(BaseOrchestrationPolicy):
    """What the API uses for task runs."""

    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [
            CacheRetrieval,
            HandleTaskTerminalStateTransitions,
            PreventRunningTasksFromStoppedFlows,
            SecureTaskConcurrencySlots,
            CopyScheduledTime,
            WaitForScheduledTime,
            RetryFailedTasks,
            RenameReruns,
            UpdateFlowRunTrackerOnTasks,
            CacheInsertion,
            ReleaseTaskConcurrencySlots,
        ]


class ClientSideTaskOrchestrationPolicy(BaseOrchestrationPolicy):
    """CoreTaskPolicy without tag concurrency (the client handles it)."""

    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [
            CacheRetrieval,
            HandleTaskTerminalStateTransitions,
            PreventRunningTasksFromStoppedFlows,
            CopyScheduledTime,
            WaitForScheduledTime,
            RetryFailedTasks,
            RenameReruns,
            UpdateFlowRunTrackerOnTasks,
            CacheInsertion,
            ReleaseTaskConcurrencySlots,
        ]


class BackgroundTaskPolicy(BaseOrchestrationPolicy):
    """Deferred (background) task runs: always used for deferred proposals."""

    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [
            PreventPendingTransitions,
            CacheRetrieval,
            HandleTaskTerminalStateTransitions,
            CopyScheduledTime,
            CopyTaskParametersID,
            WaitForScheduledTime,
            RetryFailedTasks,
            RenameReruns,
            UpdateFlowRunTrackerOnTasks,
            CacheInsertion,
            ReleaseTaskConcurrencySlots,
            EnqueueScheduledTasks,
        ]


class MinimalFlowPolicy(BaseOrchestrationPolicy):
    """Forced flow transitions (and the model-level default)."""

    RUN_KIND = "flow"

    @staticmethod
    def priority():
        return [
            BypassCancellingFlowRunsWithNoInfra,
            InstrumentFlowRunStateTransitions,
            ReleaseFlowConcurrencySlots,
        ]


class MarkLateRunsPolicy(BaseOrchestrationPolicy):
    """The late-runs service's policy."""

    RUN_KIND = "flow"

    @staticmethod
    def priority():
        return [
            EnsureOnlyScheduledFlowsMarkedLate,
            InstrumentFlowRunStateTransitions,
        ]


class MinimalTaskPolicy(BaseOrchestrationPolicy):
    """Forced task transitions (and the model-level default)."""

    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [
            ReleaseTaskConcurrencySlots,
        ]


# The transforms flow and task runs share, in Prefect's order (both global policies
# start with them).
_RUN_BOOKKEEPING = (
    SetRunStateType,
    SetRunStateName,
    SetRunStateTimestamp,
    SetStartTime,
    SetEndTime,
    IncrementRunTime,
    SetExpectedStartTime,
    SetNextScheduledStartTime,
    UpdateStateDetails,
)


class GlobalFlowPolicy(BaseOrchestrationPolicy):
    """Bookkeeping for every flow-run transition."""

    RUN_KIND = "flow"

    @staticmethod
    def priority():
        return [
            *_RUN_BOOKKEEPING,
            UpdateSubflowParentTask,
            UpdateSubflowStateDetails,
            IncrementFlowRunCount,
            RemoveResumingIndicator,
        ]


class GlobalTaskPolicy(BaseOrchestrationPolicy):
    """Bookkeeping for every task-run transition."""

    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [
            *_RUN_BOOKKEEPING,
            IncrementTaskRunCount,
        ]


POLICIES: dict[str, type[BaseOrchestrationPolicy]] = {
    cls.__name__: cls
    for cls in (
        CoreFlowPolicy,
        CoreFlowPolicyWithoutDeploymentConcurrency,
        CoreTaskPolicy,
        ClientSideTaskOrchestrationPolicy,
        BackgroundTaskPolicy,
        MinimalFlowPolicy,
        MinimalTaskPolicy,
        MarkLateRunsPolicy,
        GlobalFlowPolicy,
        GlobalTaskPolicy,
    )
}


def resolve_policy(policy: Any) -> type:
    """A policy class from a class, an instance, a POLICIES name or "module:Class".
    Anything else is a ValidationError naming it."""
    if isinstance(policy, str):
        if policy in POLICIES:
            return POLICIES[policy]
        if ":" not in policy:
            raise ValidationError(f"unknown policy {shown(policy)}: use one of {', '.join(POLICIES)} or 'module:Class'")
        module_name, _, attr = policy.partition(":")
        if not (all(part.isidentifier() for part in module_name.split("."))
                and all(part.isidentifier() for part in attr.split("."))):
            raise ValidationError(
                f"cannot load policy {shown(policy)}: write 'module:Class' with an absolute dotted module "
                "path and a class name (e.g. 'mypolicies:StrictTaskPolicy')"
            )
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValidationError(f"cannot load policy {shown(policy)}: {exc}") from None
        except Exception as exc:  # the module's own code failed: keep its traceback as the cause
            raise ValidationError(
                f"cannot load policy {shown(policy)}: importing {module_name} raised {type(exc).__name__}: {exc}"
            ) from exc
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError as exc:
            raise ValidationError(f"cannot load policy {shown(policy)}: {exc}") from None
        policy = obj
    if isinstance(policy, type) and issubclass(policy, BaseOrchestrationPolicy):
        return policy
    if isinstance(policy, BaseOrchestrationPolicy):
        return type(policy)
    raise ValidationError(
        f"{shown(policy)} is not an orchestration policy (a subclass of engine.orchestration.BaseOrchestrationPolicy)"
    )
