"""The rule framework: lifecycle (valid / invalid / fizzled), mutators, safe copies,
universal transforms, validation (spec orchestration.md §2-§6; conformance-cases.md
A.1-A.38)."""
from __future__ import annotations

import itertools

import pytest

from engine.errors import OrchestrationError, UniquenessError, ValidationError
from engine.orchestration import (
    ALL_STATES,
    FlowOrchestrationContext,
    OrchestrationResult,
    SetStateStatus,
    StateAbortDetails,
    StateRejectDetails,
    StateWaitDetails,
    details_from_dict,
)
from engine.states import StateType
from test_orchestration_harness import (
    ALL_TYPES,
    Harness,
    hooks,
    policy_of,
    recording_rule,
    recording_transform,
)

S = StateType
OTHER = {t: next(o for o in ALL_TYPES if o is not t) for t in ALL_TYPES}
PAIRS = list(itertools.product([None, *ALL_TYPES], ALL_TYPES))


@pytest.fixture
def h() -> Harness:
    return Harness()


def context_for(h: Harness, initial: S | None, proposed: S | None):
    run = h.flow_run(initial)
    proposed_state = None if proposed is None else h.state(proposed)
    return FlowOrchestrationContext(h.engine, run, run.state, proposed_state)


# A.1 details --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, cls",
    [
        ({"type": "wait_details", "delay_seconds": 20, "reason": "No!"}, StateWaitDetails),
        ({"type": "reject_details", "reason": "No!"}, StateRejectDetails),
        ({"type": "abort_details", "reason": "No!"}, StateAbortDetails),
    ],
)
def test_details_dicts_parse_into_their_class(raw, cls):
    result = OrchestrationResult(state=None, status=SetStateStatus.ACCEPT, details=raw)
    assert isinstance(result.details, cls)
    assert details_from_dict(raw) == result.details


@pytest.mark.parametrize("raw, message", [
    ({"type": "maybe_details"}, "unknown details type 'maybe_details'"),
    ({"type": "reject_details", "reason": "No!", "delay_seconds": 3}, r"reject_details has unknown key\(s\) \['delay_seconds'\]"),
    ({"type": "wait_details", "reason": "later"}, "wait_details needs delay_seconds"),
])
def test_bad_details_dicts_are_named(raw, message):
    with pytest.raises(ValidationError, match=message):
        details_from_dict(raw)
    with pytest.raises(ValidationError, match=message):
        OrchestrationResult(state=None, status=SetStateStatus.ACCEPT, details=raw)


def test_a_result_takes_status_text_and_refuses_what_is_neither_status_nor_details():
    assert OrchestrationResult(state=None, status="REJECT", details={"type": "reject_details"}).status is (
        SetStateStatus.REJECT)
    with pytest.raises(ValidationError, match="unknown status 'MAYBE'"):
        OrchestrationResult(state=None, status="MAYBE", details={})
    with pytest.raises(ValidationError, match="details must be a details object or dict, got 'accept'"):
        OrchestrationResult(state=None, status=SetStateStatus.ACCEPT, details="accept")


def test_wait_details_delay_is_an_int():
    # Prefect's pydantic int: a whole float is taken, a fraction refused.
    assert StateWaitDetails(delay_seconds=30.0).delay_seconds == 30
    assert isinstance(StateWaitDetails(delay_seconds=30.0).delay_seconds, int)
    with pytest.raises(ValidationError, match="whole number of seconds, got 30.9"):
        StateWaitDetails(delay_seconds=30.9)


# A.2-A.5 lifecycle on a bare context -------------------------------------------------------
def test_rule_is_a_context_manager_whose_body_runs_once(h):
    ctx = context_for(h, S.PENDING, S.RUNNING)
    log: list = []
    body = 0
    with recording_rule(log, "r")(ctx, S.PENDING, S.RUNNING):
        body += 1
    assert body == 1


def test_valid_rule_runs_before_and_after(h):  # A.3
    ctx = context_for(h, S.PENDING, S.RUNNING)
    log: list = []
    rule = recording_rule(log, "r")(ctx, S.PENDING, S.RUNNING)
    with rule:
        pass
    assert hooks(log, "r") == ["before", "after"]
    assert not rule.invalid() and not rule.fizzled()


def test_rule_outside_its_from_and_to_sets_is_invalid(h):  # A.4
    ctx = context_for(h, S.PENDING, S.RUNNING)
    log: list = []
    rule = recording_rule(log, "r", from_states=(), to_states=())(ctx, S.SCHEDULED, S.COMPLETED)
    with rule:
        pass
    assert log == []
    assert rule.invalid() and not rule.fizzled()


@pytest.mark.parametrize("swap", ["proposed", "initial"])
def test_rule_whose_transition_changes_under_it_fizzles(h, swap):  # A.5
    ctx = context_for(h, S.PENDING, S.RUNNING)
    log: list = []
    rule = recording_rule(log, "r")(ctx, S.PENDING, S.RUNNING)
    with rule:
        if swap == "proposed":
            ctx.proposed_state = h.state(S.COMPLETED)
        else:
            ctx.initial_state = h.state(S.SCHEDULED)
    assert hooks(log, "r") == ["before", "cleanup"]
    assert not rule.invalid() and rule.fizzled()


@pytest.mark.parametrize("mutation", ["reject", "delay", "abort"])
def test_rule_that_changes_the_transition_itself_still_gets_its_after_hook(h, mutation):  # A.6-A.8
    ctx = context_for(h, S.PENDING, S.RUNNING)
    log: list = []

    def act(rule, initial, proposed, context):
        if mutation == "reject":
            replacement = proposed.shallow_copy()
            replacement.type = S.COMPLETED
            rule.reject_transition(replacement, "retyped")
        elif mutation == "delay":
            rule.delay_transition(42, "later")
        else:
            rule.abort_transition("stop")

    rule = recording_rule(log, "r", before=act)(ctx, S.PENDING, S.RUNNING)
    with rule:
        pass
    assert hooks(log, "r") == ["before", "after"]
    assert not rule.invalid() and not rule.fizzled()


def test_rule_rejecting_outside_its_to_set_is_invalid_on_exit(h):
    ctx = context_for(h, S.PENDING, S.RUNNING)
    log: list = []
    act = lambda rule, i, p, c: rule.reject_transition(h.state(S.COMPLETED), "no")  # noqa: E731
    rule = recording_rule(log, "r", to_states=[S.RUNNING], before=act)(ctx, S.PENDING, S.RUNNING)
    with rule:
        pass
    assert hooks(log, "r") == ["before"]
    assert rule.invalid()


# through the pipeline ---------------------------------------------------------------------
def test_context_parameters_change_only_through_the_mutator(h):  # A.9
    seen = []

    def writer(rule, initial, proposed, context):
        rule.update_context_parameters("a special message", "hello!")
        context.parameters["a special message"] = "ignored: a copy"

    def reader(rule, initial, proposed, context):
        seen.append(context.parameters["a special message"])

    log: list = []
    run = h.flow_run(S.PENDING)
    policy = policy_of(recording_rule(log, "A", before=writer), recording_rule(log, "B", before=reader))
    h.set(run, S.RUNNING, policy)
    assert seen == ["hello!"]


@pytest.mark.parametrize("initial, proposed", PAIRS)
def test_error_in_a_before_hook_fizzles_earlier_rules_and_is_reraised(h, initial, proposed):  # A.10
    log: list = []

    def boom(rule, *args):
        raise RuntimeError("boom")

    outer = recording_rule(log, "outer")
    raiser = recording_rule(log, "raiser", before=boom)
    inner = recording_rule(log, "inner")
    run = h.flow_run(initial)
    before_rows = len(h.states(run))
    with pytest.raises(RuntimeError, match="boom"):
        h.set(run, proposed, policy_of(outer, raiser, inner))
    assert hooks(log, "outer") == ["before", "cleanup"]
    assert hooks(log, "raiser") == ["before", "cleanup"]
    assert hooks(log, "inner") == []
    assert len(h.states(run)) == before_rows  # rolled back


def test_error_in_a_before_hook_becomes_an_abort_inside_the_framework(h):
    ctx = context_for(h, S.PENDING, S.RUNNING)

    def boom(rule, *args):
        raise ValueError("bad")

    rule = recording_rule([], "r", before=boom)(ctx, S.PENDING, S.RUNNING)
    with rule:
        pass
    assert ctx.proposed_state is None
    assert ctx.response_status is SetStateStatus.ABORT
    assert ctx.response_details.reason.startswith("Aborting orchestration due to error in ")
    assert isinstance(ctx.orchestration_error, ValueError)
    assert rule.fizzled()


@pytest.mark.parametrize("initial", [None, *ALL_TYPES])
def test_rule_outside_from_set_is_idle(h, initial):  # A.11
    log: list = []
    others = [t for t in [None, *ALL_TYPES] if t is not initial]
    run = h.flow_run(initial)
    h.set(run, S.RUNNING, policy_of(recording_rule(log, "r", from_states=others)))
    assert log == []


@pytest.mark.parametrize("initial, proposed", PAIRS[::3])
def test_nested_valid_rules_run_in_order(h, initial, proposed):  # A.13
    log: list = []
    run = h.flow_run(initial)
    h.set(run, proposed, policy_of(recording_rule(log, "first"), recording_rule(log, "second")))
    assert log == [("first", "before"), ("second", "before"), ("second", "after"), ("first", "after")]


@pytest.mark.parametrize("initial, proposed", [p for p in PAIRS if p[0] is not None][::2])
def test_rule_replacing_the_proposal_fizzles_outer_and_invalidates_inner(h, initial, proposed):  # A.14
    third = next(t for t in ALL_TYPES if t not in (initial, proposed))
    log: list = []
    mutator = recording_rule(
        log, "mutator", before=lambda rule, i, p, c: rule.reject_transition(h.state(third), "swap")
    )
    run = h.flow_run(initial)
    result = h.set(run, proposed, policy_of(recording_rule(log, "first"), mutator, recording_rule(log, "third")))
    assert result.status is SetStateStatus.REJECT
    assert result.state.type is third
    assert hooks(log, "first") == ["before", "cleanup"]
    assert hooks(log, "mutator") == ["before", "after"]
    assert hooks(log, "third") == []


def test_universal_transform_runs_both_hooks(h):  # A.15, A.17
    log: list = []
    run = h.flow_run(S.PENDING)
    h.set(run, S.RUNNING, policy_of(recording_transform(log, "t")))
    assert log == [("t", "before"), ("t", "after")]
    log.clear()
    abort = recording_rule(log, "abort", before=lambda rule, *a: rule.abort_transition("x"))
    h.set(run, S.RUNNING, policy_of(abort, recording_transform(log, "t")))
    assert hooks(log, "t") == ["before", "after"]  # the framework does not skip nullified


def test_universal_transform_skips_after_hook_when_a_rule_errored(h):  # A.18
    log: list = []

    def boom(rule, *a):
        raise RuntimeError("x")

    run = h.flow_run(S.PENDING)
    with pytest.raises(RuntimeError):
        h.set(run, S.RUNNING, policy_of(recording_rule(log, "r", before=boom), recording_transform(log, "t")))
    assert hooks(log, "t") == ["before"]


@pytest.mark.parametrize("kind", ["flow", "task"])
def test_assigning_to_the_copies_changes_nothing(h, kind):  # A.19
    def meddle(rule, initial, state, context):
        if initial is not None:
            initial.type = S.COMPLETED
        if state is not None:
            state.type = S.COMPLETED
            state.name = "Meddled"
        context.proposed_state = None

    run = h.task_run(S.PENDING) if kind == "task" else h.flow_run(S.PENDING)
    result = h.set(run, S.RUNNING, policy_of(recording_rule([], "m", before=meddle, after=meddle)))
    assert result.status is SetStateStatus.ACCEPT
    assert result.state.type is S.RUNNING and result.state.name == "Running"
    assert run.state_type is S.RUNNING


def test_rejecting_with_a_retyped_copy_stores_it(h):  # A.20
    def retype(rule, initial, proposed, context):
        proposed.type = S.COMPLETED
        rule.reject_transition(proposed, "retyped")

    run = h.flow_run(S.PENDING)
    result = h.set(run, S.RUNNING, policy_of(recording_rule([], "r", before=retype)))
    assert result.status is SetStateStatus.REJECT
    assert result.state.type is S.COMPLETED and run.state_type is S.COMPLETED


@pytest.mark.parametrize("call", ["reject", "delay", "abort"])
def test_mutators_refuse_after_validation(h, call):  # A.21, A.23, A.25
    def late(rule, initial, validated, context):
        {"reject": lambda: rule.reject_transition(None, "x"),
         "delay": lambda: rule.delay_transition(5, "x"),
         "abort": lambda: rule.abort_transition("x")}[call]()

    run = h.flow_run(S.PENDING)
    with pytest.raises(RuntimeError, match="The transition is already validated"):
        h.set(run, S.RUNNING, policy_of(recording_rule([], "r", after=late)))
    assert run.state_type is S.PENDING


@pytest.mark.parametrize("seconds", [42, 424242])
def test_delay_returns_wait_with_the_exact_delay(h, seconds):  # A.22
    run = h.flow_run(S.PENDING)
    current = run.state
    result = h.set(run, S.RUNNING, policy_of(recording_rule([], "d", before=lambda r, *a: r.delay_transition(seconds, "x"))))
    assert result.status is SetStateStatus.WAIT
    assert result.details.delay_seconds == seconds
    assert result.state.id == current.id and run.state_type is S.PENDING


def test_abort_returns_the_current_state(h):  # A.24
    run = h.flow_run(S.PENDING)
    current_id = run.state_id
    result = h.set(run, S.RUNNING, policy_of(recording_rule([], "a", before=lambda r, *a: r.abort_transition("stop"))))
    assert result.status is SetStateStatus.ABORT
    assert result.details.reason == "stop"
    assert result.state.id == current_id and len(h.states(run)) == 1


@pytest.mark.parametrize("initial, proposed", PAIRS[::4])
def test_no_rules_store_the_proposal(h, initial, proposed):  # A.26-A.28
    run = h.flow_run(initial)
    state = h.state(proposed)
    result = h.set(run, state, policy_of())
    assert result.status is SetStateStatus.ACCEPT
    assert result.state.type is proposed
    assert result.state.id == state.id == run.state_id


def test_validation_failure_aborts_and_fizzles_rules(h, monkeypatch):  # A.32
    log: list = []
    run = h.flow_run(S.PENDING)
    snapshot = (run.state_id, run.state_type, run.run_count, run.start_time)

    def fail(*args, **kwargs):
        raise RuntimeError("One time error!")

    monkeypatch.setattr(h.engine, "_store_state", fail)
    result = h.set(run, S.RUNNING, policy_of(recording_rule(log, "r")))
    assert result.status is SetStateStatus.ABORT
    assert result.details.reason == "Error validating state: RuntimeError('One time error!')"
    assert result.state is None
    assert hooks(log, "r") == ["before", "cleanup"]
    assert (run.state_id, run.state_type, run.run_count, run.start_time) == snapshot


def test_storage_conflict_propagates_after_cleanup(h):  # A.33
    log: list = []
    run = h.flow_run(S.PENDING)
    clash = h.state(S.RUNNING)
    clash.timestamp = run.state.timestamp  # two states of one run at one instant
    with pytest.raises(UniquenessError):
        h.set(run, clash, policy_of(recording_rule(log, "r")))
    assert hooks(log, "r") == ["before", "cleanup"]
    assert run.state_type is S.PENDING and len(h.states(run)) == 1


@pytest.mark.parametrize("initial, proposed", [p for p in PAIRS if p[0] is not None][::3])
def test_reject_to_current_fizzles_outer_and_invalidates_inner(h, initial, proposed):  # A.34, A.35
    log: list = []
    rejector = recording_rule(log, "rej", before=lambda r, *a: r.reject_transition(None, "keep"))
    run = h.flow_run(initial)
    result = h.set(run, proposed, policy_of(recording_rule(log, "outer"), rejector, recording_rule(log, "inner")))
    assert result.status is SetStateStatus.REJECT
    assert result.state.type is initial
    assert hooks(log, "outer") == ["before", "cleanup"]
    assert hooks(log, "rej") == ["before", "after"]  # TO contains None: still valid
    assert hooks(log, "inner") == []


@pytest.mark.parametrize("proposed", ALL_TYPES)
def test_reject_to_current_without_a_current_state_is_an_error(h, proposed):  # A.36
    rejector = recording_rule([], "rej", before=lambda r, *a: r.reject_transition(None, "keep"))
    run = h.flow_run(None)
    with pytest.raises(OrchestrationError, match="no state"):
        h.set(run, proposed, policy_of(rejector))
    assert run.state_id is None


def test_nullified_transition_on_a_stateless_run_aborts_with_validation_error(h):
    # Quirk 7: the rule's own response is replaced by the validation failure.
    run = h.flow_run(None)
    result = h.set(run, S.RUNNING, policy_of(recording_rule([], "a", before=lambda r, *a: r.abort_transition("mine"))))
    assert result.status is SetStateStatus.ABORT
    assert result.details.reason.startswith("Error validating state: ")
    assert result.state is None and run.state_type is None


def test_rename_keeps_the_type_and_fizzles_nothing(h):
    log: list = []
    renamer = recording_rule(log, "ren", before=lambda r, *a: r.rename_state("Renamed"))
    run = h.flow_run(S.PENDING)
    result = h.set(run, S.RUNNING, policy_of(recording_rule(log, "outer"), renamer))
    assert result.state.name == "Renamed" and run.state_name == "Renamed"
    assert hooks(log, "outer") == ["before", "after"]


def test_signatures_record_completed_hooks(h):
    ctx = context_for(h, S.PENDING, S.RUNNING)
    rule_cls = recording_rule([], "sig")
    with rule_cls(ctx, S.PENDING, S.RUNNING):
        pass
    assert ctx.rule_signature == [str(rule_cls)]
    assert ctx.finalization_signature == [str(rule_cls)]


def test_safe_copies_are_shallow(h):
    ctx = context_for(h, S.PENDING, S.RUNNING)
    initial, proposed, copy = ctx.entry_context()
    assert proposed is not ctx.proposed_state and copy is not ctx
    assert proposed.state_details is ctx.proposed_state.state_details  # shared on purpose
    assert copy.run is ctx.run and copy.parameters is not ctx.parameters


def test_all_states_includes_none():
    assert None in ALL_STATES and set(ALL_TYPES) <= ALL_STATES


# Prefect 3.1.0's policies, rule for rule (spec orchestration.md §7). Where rules
# overlap, their order decides which one answers; most swaps of neighbours give the
# same answers for every transition, so only the order itself can guard them.
_CORE_FLOW = ["PreventDuplicateTransitions", "HandleFlowTerminalStateTransitions",
              "EnforceCancellingToCancelledTransition", "BypassCancellingFlowRunsWithNoInfra",
              "PreventPendingTransitions", "SecureFlowConcurrencySlots", "EnsureOnlyScheduledFlowsMarkedLate",
              "HandlePausingFlows", "HandleResumingPausedFlows", "CopyScheduledTime", "WaitForScheduledTime",
              "RetryFailedFlows", "InstrumentFlowRunStateTransitions", "ReleaseFlowConcurrencySlots"]
_TASK_TAIL = ["CopyScheduledTime", "WaitForScheduledTime", "RetryFailedTasks", "RenameReruns",
              "UpdateFlowRunTrackerOnTasks", "CacheInsertion", "ReleaseTaskConcurrencySlots"]
_GLOBAL = ["SetRunStateType", "SetRunStateName", "SetRunStateTimestamp", "SetStartTime", "SetEndTime",
           "IncrementRunTime", "SetExpectedStartTime", "SetNextScheduledStartTime", "UpdateStateDetails"]
PREFECT_POLICIES = {
    "CoreFlowPolicy": _CORE_FLOW,
    "CoreFlowPolicyWithoutDeploymentConcurrency": [
        r for r in _CORE_FLOW if r not in ("SecureFlowConcurrencySlots", "ReleaseFlowConcurrencySlots")],
    "CoreTaskPolicy": ["CacheRetrieval", "HandleTaskTerminalStateTransitions", "PreventRunningTasksFromStoppedFlows",
                       "SecureTaskConcurrencySlots", *_TASK_TAIL],
    "ClientSideTaskOrchestrationPolicy": ["CacheRetrieval", "HandleTaskTerminalStateTransitions",
                                          "PreventRunningTasksFromStoppedFlows", *_TASK_TAIL],
    "BackgroundTaskPolicy": ["PreventPendingTransitions", "CacheRetrieval", "HandleTaskTerminalStateTransitions",
                             "CopyScheduledTime", "CopyTaskParametersID", *_TASK_TAIL[1:], "EnqueueScheduledTasks"],
    "MinimalFlowPolicy": ["BypassCancellingFlowRunsWithNoInfra", "InstrumentFlowRunStateTransitions",
                          "ReleaseFlowConcurrencySlots"],
    "MarkLateRunsPolicy": ["EnsureOnlyScheduledFlowsMarkedLate", "InstrumentFlowRunStateTransitions"],
    "MinimalTaskPolicy": ["ReleaseTaskConcurrencySlots"],
    "GlobalFlowPolicy": [*_GLOBAL, "UpdateSubflowParentTask", "UpdateSubflowStateDetails", "IncrementFlowRunCount",
                         "RemoveResumingIndicator"],
    "GlobalTaskPolicy": [*_GLOBAL, "IncrementTaskRunCount"],
}


def test_every_policy_holds_prefects_rules_in_prefects_order():
    from engine.orchestration import POLICIES
    assert {name: [rule.__name__ for rule in policy.priority()] for name, policy in POLICIES.items()} == (
        PREFECT_POLICIES)
