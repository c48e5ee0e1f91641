"""runstate: an in-memory engine for Prefect 3.1.0's run layer.

The public API, re-exported from the modules that define it:

* `Engine` (engine.engine) and the clocks (engine.clock);
* states and records (engine.states, engine.records);
* errors (engine.errors);
* filters and sorts for reads and counts (engine.filters, engine.sorting);
* what a foreman pass changed, ForemanPass (engine.foreman);
* the schedule types (engine.schedules);
* orchestration: results, policies and the bases for custom rules
  (engine.orchestration);
* the flow-run graph types (engine.graph).

Submodules with more: `engine.orchestration` (every rule), `engine.models` (the
Prefect-shaped async facade), `engine.testing` (pytest plugin and state-setup
helpers), `engine.sim` (the simulator), `engine.conformance` (corpus replay),
`engine.rulebench` (rule benchmarking); durability lives in the `backends` package.
"""
from .clock import Clock, ManualClock, SystemClock
from .engine import Engine
from .errors import (
    BackendError,
    DuplicateIdError,
    FlowRunGraphTooLarge,
    ObjectNotFoundError,
    OrchestrationError,
    RunstateError,
    TransactionError,
    UniquenessError,
    ValidationError,
)
from .filters import (
    DeploymentFilter,
    DeploymentScheduleFilter,
    DeploymentScheduleFilterActive,
    FlowFilter,
    FlowRunFilter,
    Operator,
    TaskRunFilter,
    WorkerFilter,
    WorkerFilterLastHeartbeatTime,
    WorkerFilterStatus,
    WorkPoolFilter,
    WorkQueueFilter,
)
from .graph import DependencyResult, Graph
from .orchestration import (
    POLICIES,
    BackgroundTaskPolicy,
    BaseOrchestrationPolicy,
    BaseOrchestrationRule,
    BaseUniversalTransform,
    ClientSideTaskOrchestrationPolicy,
    CoreFlowPolicy,
    CoreFlowPolicyWithoutDeploymentConcurrency,
    CoreTaskPolicy,
    GlobalFlowPolicy,
    GlobalTaskPolicy,
    MarkLateRunsPolicy,
    MinimalFlowPolicy,
    MinimalTaskPolicy,
    OrchestrationContext,
    OrchestrationResult,
    SetStateStatus,
    StateAbortDetails,
    StateAcceptDetails,
    StateRejectDetails,
    StateWaitDetails,
)
from .records import (
    Artifact,
    ConcurrencyLimit,
    ConcurrencyLimitV2,
    ConcurrencyOptions,
    Constant,
    Deployment,
    DeploymentSchedule,
    Flow,
    FlowRun,
    FlowRunInput,
    FlowRunPolicy,
    FlowRunStateRow,
    Parameter,
    TaskRun,
    TaskRunPolicy,
    TaskRunResult,
    TaskRunStateCache,
    TaskRunStateRow,
    Worker,
    WorkerFlowRunResponse,
    WorkPool,
    WorkQueue,
)
from .sorting import DeploymentSort, FlowRunSort, FlowSort, TaskRunSort
from .foreman import ForemanPass
from .history import HistoryResponse, HistoryResponseState
from .pagination import PaginationResponse
from .ui import SimpleFlowRun, SimpleNextFlowRun, TaskRunCount
from .schedules import CronSchedule, IntervalSchedule, RRuleSchedule
from .states import (
    ALL_ORCHESTRATION_STATES,
    TERMINAL_STATES,
    AwaitingConcurrencySlot,
    AwaitingRetry,
    Cached,
    Cancelled,
    Cancelling,
    Completed,
    CountByState,
    Crashed,
    Failed,
    Late,
    Paused,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateDetails,
    StateType,
    Suspended,
)

__all__ = [
    # engine and time
    "Engine", "Clock", "SystemClock", "ManualClock",
    # errors
    "RunstateError", "ObjectNotFoundError", "ValidationError", "UniquenessError", "DuplicateIdError",
    "OrchestrationError", "FlowRunGraphTooLarge", "TransactionError", "BackendError",
    # states
    "StateType", "TERMINAL_STATES", "ALL_ORCHESTRATION_STATES", "State", "StateDetails",
    "CountByState", "Scheduled", "Late", "AwaitingRetry", "AwaitingConcurrencySlot",
    "Retrying", "Cached", "Pending", "Running", "Completed", "Failed", "Crashed",
    "Cancelled", "Cancelling", "Paused", "Suspended",
    # records
    "Flow", "FlowRun", "TaskRun", "FlowRunStateRow", "TaskRunStateRow", "TaskRunStateCache",
    "Deployment", "DeploymentSchedule", "ConcurrencyOptions", "WorkPool", "WorkQueue", "Worker", "WorkerFlowRunResponse", "ConcurrencyLimit",
    "ConcurrencyLimitV2", "Artifact", "FlowRunInput", "FlowRunPolicy", "TaskRunPolicy", "TaskRunResult",
    "Parameter", "Constant",
    # queries
    "FlowFilter", "FlowRunFilter", "TaskRunFilter", "DeploymentFilter", "WorkPoolFilter",
    "WorkQueueFilter", "WorkerFilter", "WorkerFilterLastHeartbeatTime", "WorkerFilterStatus", "ForemanPass",
    "DeploymentScheduleFilter", "DeploymentScheduleFilterActive", "HistoryResponse", "HistoryResponseState",
    "PaginationResponse", "SimpleNextFlowRun", "SimpleFlowRun", "TaskRunCount",
    # schedules
    "IntervalSchedule", "CronSchedule", "RRuleSchedule",
    "Operator", "FlowRunSort", "TaskRunSort", "FlowSort", "DeploymentSort", "DependencyResult", "Graph",
    # orchestration
    "SetStateStatus", "OrchestrationResult", "OrchestrationContext", "StateAcceptDetails",
    "StateRejectDetails", "StateWaitDetails", "StateAbortDetails", "BaseOrchestrationRule",
    "BaseUniversalTransform", "BaseOrchestrationPolicy", "POLICIES", "CoreFlowPolicy",
    "CoreFlowPolicyWithoutDeploymentConcurrency", "CoreTaskPolicy",
    "ClientSideTaskOrchestrationPolicy", "BackgroundTaskPolicy", "MinimalFlowPolicy",
    "MinimalTaskPolicy", "MarkLateRunsPolicy", "GlobalFlowPolicy", "GlobalTaskPolicy",
]
