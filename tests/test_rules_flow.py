"""Flow-run rules, each applied alone or under CoreFlowPolicy (spec orchestration.md
§8.1-§8.14; conformance-cases.md B)."""
from __future__ import annotations

import datetime as dt

import pytest

from engine.errors import OrchestrationError
from engine.orchestration import (
    BypassCancellingFlowRunsWithNoInfra,
    CoreFlowPolicy,
    CopyScheduledTime,
    EnforceCancellingToCancelledTransition,
    EnsureOnlyScheduledFlowsMarkedLate,
    HandleFlowTerminalStateTransitions,
    HandlePausingFlows,
    HandleResumingPausedFlows,
    MarkLateRunsPolicy,
    PreventDuplicateTransitions,
    PreventPendingTransitions,
    RetryFailedFlows,
    WaitForScheduledTime,
)
from engine.states import StateType
from test_orchestration_harness import (
    ABORT, ACCEPT, ALL_TYPES, PERSISTED, REJECT, SECOND, TERMINAL, WAIT, Harness, policy_of, rejecting_to,
)

S = StateType


@pytest.fixture
def h() -> Harness:
    return Harness()


def sched(h: Harness, offset: float, **details):
    return h.state(S.SCHEDULED, state_details={"scheduled_time": h.clock.now() + offset * SECOND, **details})


# WaitForScheduledTime / CopyScheduledTime ---------------------------------------------------
@pytest.mark.parametrize("initial", [S.SCHEDULED, S.PENDING])
def test_running_waits_for_a_future_scheduled_time(h, initial):  # 39, 40
    when = h.clock.now() + 300 * SECOND
    run = h.flow_run(h.state(initial, state_details={"scheduled_time": when}))
    result = h.set(run, S.RUNNING, policy_of(WaitForScheduledTime))
    assert result.status is WAIT and abs(result.details.delay_seconds - 300) <= 2
    assert result.details.reason == "Scheduled time is in the future"
    past = h.flow_run(h.state(initial, state_details={"scheduled_time": h.clock.now() - 300 * SECOND}))
    assert h.set(past, S.RUNNING, policy_of(WaitForScheduledTime)).status is ACCEPT


def test_wait_rounds_to_the_nearest_second(h):
    run = h.flow_run(h.state(S.SCHEDULED, state_details={"scheduled_time": h.clock.now() + 10.4 * SECOND}))
    assert h.set(run, S.RUNNING, policy_of(WaitForScheduledTime)).details.delay_seconds == 10
    run = h.flow_run(h.state(S.SCHEDULED, state_details={"scheduled_time": h.clock.now() + 10.7 * SECOND}))
    assert h.set(run, S.RUNNING, policy_of(WaitForScheduledTime)).details.delay_seconds == 11


@pytest.mark.parametrize("proposed", sorted(TERMINAL, key=str))
def test_future_schedule_does_not_block_final_states(h, proposed):  # 41
    run = h.flow_run(sched(h, 300))
    assert h.set(run, proposed, policy_of(WaitForScheduledTime)).status is ACCEPT


def test_pending_inherits_the_scheduled_time(h):  # 42
    run = h.flow_run(sched(h, 60))
    when = run.state.state_details.scheduled_time
    result = h.set(run, S.PENDING, policy_of(CopyScheduledTime))
    assert result.state.state_details.scheduled_time == when


# PreventDuplicateTransitions ------------------------------------------------------------------
@pytest.mark.parametrize("initial_id, proposed_id, status", [
    (None, None, ACCEPT), ("a", None, ACCEPT), (None, "a", ACCEPT), ("a", "b", ACCEPT), ("a", "a", REJECT),
])
def test_duplicate_transition_ids_are_rejected(h, initial_id, proposed_id, status):  # 121-125
    import uuid

    ids = {"a": uuid.uuid4(), "b": uuid.uuid4(), None: None}
    run = h.flow_run(h.state(S.PENDING, state_details={"transition_id": ids[initial_id]}))
    result = h.set(run, h.state(S.PENDING, state_details={"transition_id": ids[proposed_id]}),
                   policy_of(PreventDuplicateTransitions))
    assert result.status is status
    if status is REJECT:
        assert result.details.reason == "This run has already made this state transition."
        assert result.state.id == run.state_id


# terminal states ---------------------------------------------------------------------------------
@pytest.mark.parametrize("initial", TERMINAL)
@pytest.mark.parametrize("proposed", [S.CRASHED, S.CANCELLING, S.PAUSED])
def test_terminal_flow_runs_cannot_crash_cancel_or_pause(h, initial, proposed):  # 74, 75
    run = h.flow_run(initial)
    result = h.set(run, proposed, policy_of(HandleFlowTerminalStateTransitions))
    assert result.status is ABORT
    assert result.details.reason == f"Run is already in terminal state {initial.value}."


@pytest.mark.parametrize("proposed", [S.PENDING, S.RUNNING])
def test_completed_with_a_result_cannot_rerun(h, proposed):  # 77
    run = h.flow_run(h.state(S.COMPLETED, data=dict(PERSISTED)))
    result = h.set(run, proposed, policy_of(HandleFlowTerminalStateTransitions))
    assert (result.status, result.details.reason) == (REJECT, "Run is already COMPLETED.")
    # ... but may move to another final state
    assert h.set(run, S.FAILED, policy_of(HandleFlowTerminalStateTransitions)).status is ACCEPT


@pytest.mark.parametrize("data", [None, {"type": "unpersisted"}])
def test_completed_without_a_result_can_rerun(h, data):  # 76
    run = h.flow_run(h.state(S.COMPLETED, data=data))
    assert h.set(run, S.RUNNING, policy_of(HandleFlowTerminalStateTransitions)).status is ACCEPT


def test_rescheduling_a_terminal_run_needs_a_deployment(h):  # 53-56
    run = h.flow_run(S.FAILED, empirical_policy={"retries": 1}, run_count=2)
    result = h.set(run, h.state(S.SCHEDULED, name="AwaitingRetry"), policy_of(HandleFlowTerminalStateTransitions))
    assert (result.status, result.details.reason) == (ABORT, "Cannot reschedule a run without an associated deployment.")
    deployed = h.flow_run(S.FAILED, deployment_id=h.deployment().id, run_count=2)
    result = h.set(deployed, h.state(S.SCHEDULED, name="FooBar"), policy_of(HandleFlowTerminalStateTransitions))
    assert result.status is ACCEPT and deployed.run_count == 2


def test_leaving_a_terminal_state_resets_pause_bookkeeping_and_fizzle_restores_it(h):
    flagged = {"pause_keys": ["k"], "resuming": True}
    run = h.flow_run(S.FAILED)
    h.engine.update_flow_run(run.id, empirical_policy=flagged)
    h.set(run, S.RUNNING, policy_of(HandleFlowTerminalStateTransitions))
    assert run.empirical_policy.pause_keys == set() and run.empirical_policy.resuming is False
    other = h.flow_run(S.FAILED)
    h.engine.update_flow_run(other.id, empirical_policy=flagged)
    h.set(other, S.RUNNING, policy_of(HandleFlowTerminalStateTransitions, rejecting_to(S.PENDING)))
    assert other.empirical_policy.pause_keys == {"k"} and other.empirical_policy.resuming is True


def test_an_aborted_reschedule_keeps_pause_bookkeeping(h):
    # The abort ends the rule's hook: the reset that follows it does not happen.
    run = h.flow_run(S.FAILED)
    h.engine.update_flow_run(run.id, empirical_policy={"pause_keys": ["k"], "resuming": True})
    result = h.set(run, S.SCHEDULED, policy_of(HandleFlowTerminalStateTransitions))
    assert (result.status, result.details.reason) == (ABORT, "Cannot reschedule a run without an associated deployment.")
    assert run.empirical_policy.pause_keys == {"k"} and run.empirical_policy.resuming is True


def test_old_clients_keep_pause_bookkeeping(h):
    run = h.flow_run(S.FAILED, empirical_policy={"pause_keys": ["k"]})
    h.engine.set_flow_run_state(run.id, h.state(S.RUNNING), flow_policy=policy_of(HandleFlowTerminalStateTransitions),
                                orchestration_parameters={"api-version": "0.8.3"})
    assert run.empirical_policy.pause_keys == {"k"}


# cancelling -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("proposed", [t for t in ALL_TYPES if t is not S.CANCELLED])
def test_cancelling_runs_may_only_become_cancelled(h, proposed):  # 114
    run = h.flow_run(S.CANCELLING)
    result = h.set(run, proposed, policy_of(EnforceCancellingToCancelledTransition))
    assert result.status is REJECT and result.state.type is S.CANCELLING
    assert result.details.reason == "Cannot transition flows that are cancelling to a state other than Cancelled."
    assert h.set(run, S.CANCELLED, policy_of(EnforceCancellingToCancelledTransition)).status is ACCEPT


@pytest.mark.parametrize("initial, pid, expected, reason", [
    (("SCHEDULED", None, {}), None, S.CANCELLED, "Scheduled flow run has no infrastructure to terminate."),
    (("SCHEDULED", None, {}), "pid-1", S.CANCELLING, None),
    (("SCHEDULED", "Resuming", {}), "my-pid-42", S.CANCELLED, "Scheduled flow run has no infrastructure to terminate."),
    (("PAUSED", None, {"pause_reschedule": True}), None, S.CANCELLED, "Suspended flow run has no infrastructure to terminate."),
    (("PAUSED", None, {}), None, S.CANCELLING, None),
    (("RUNNING", None, {}), None, S.CANCELLING, None),
])
def test_cancelling_without_infrastructure_cancels_at_once(h, initial, pid, expected, reason):  # 115-120
    type_, name, details = initial
    run = h.flow_run(h.state(S(type_), name=name, state_details=details), infrastructure_pid=pid)
    result = h.set(run, S.CANCELLING, policy_of(BypassCancellingFlowRunsWithNoInfra))
    assert run.state_type is expected
    assert result.details.reason == reason if reason else result.status is ACCEPT


def test_blocking_paused_flow_cannot_be_cancelled_without_force(h):  # quirk 11
    run = h.flow_run(S.PAUSED)
    result = h.set(run, S.CANCELLING, CoreFlowPolicy)
    assert result.status is REJECT and run.state_type is S.PAUSED
    assert result.details.reason == ("This run cannot transition to the StateType.CANCELLING state "
                                     "from the StateType.PAUSED state.")
    assert h.set(run, S.CANCELLING, CoreFlowPolicy, force=True).status is ACCEPT


# pending / late ------------------------------------------------------------------------------------
@pytest.mark.parametrize("initial", [S.CANCELLING, S.CANCELLED, S.RUNNING, S.PENDING])
def test_only_one_client_claims_a_run(h, initial):  # 81
    run = h.flow_run(initial)
    result = h.set(run, S.PENDING, policy_of(PreventPendingTransitions))
    assert result.status is ABORT
    assert result.details.reason == f"This run is in a {initial.name} state and cannot transition to a PENDING state."


@pytest.mark.parametrize("initial", [S.RUNNING, S.PENDING, S.COMPLETED, S.FAILED, S.CANCELLING])
def test_only_scheduled_runs_are_marked_late(h, initial):  # 79, 80
    run = h.flow_run(initial)
    result = h.set(run, h.state(S.SCHEDULED, name="Late"), MarkLateRunsPolicy)
    assert (result.status, result.details.reason) == (REJECT, "Only scheduled flows can be marked late.")
    scheduled = h.flow_run(S.SCHEDULED)
    assert h.set(scheduled, h.state(S.SCHEDULED, name="Late"), MarkLateRunsPolicy).status is ACCEPT


def test_marking_a_stateless_run_late_fails(h):
    run = h.flow_run(None)
    with pytest.raises(OrchestrationError, match="late"):
        h.set(run, h.state(S.SCHEDULED, name="Late"), policy_of(EnsureOnlyScheduledFlowsMarkedLate))
    assert run.state_id is None


# pausing / resuming ------------------------------------------------------------------------------------
def test_pause_records_its_key_once(h):  # 101-103
    run = h.flow_run(S.RUNNING)
    paused = h.state(S.PAUSED, state_details={"pause_key": "hello", "pause_timeout": h.clock.now() + 1000 * SECOND})
    assert h.set(run, paused, policy_of(HandlePausingFlows)).status is ACCEPT
    assert run.empirical_policy.pause_keys == {"hello"}
    h.set(run, S.RUNNING, force=True)
    result = h.set(run, h.state(S.PAUSED, state_details={"pause_key": "hello"}), policy_of(HandlePausingFlows))
    assert (result.status, result.details.reason, result.state.type) == (REJECT, "This pause has already fired.", S.RUNNING)


def test_a_fired_key_is_refused_before_a_suspend_needs_a_deployment(h):
    run = h.flow_run(S.RUNNING)  # no deployment: a new suspend would abort
    h.engine.update_flow_run(run.id, empirical_policy={"pause_keys": ["k"]})
    suspend = h.state(S.PAUSED, name="Suspended", state_details={"pause_key": "k", "pause_reschedule": True})
    result = h.set(run, suspend, policy_of(HandlePausingFlows))
    assert (result.status, result.details.reason, result.state.type) == (REJECT, "This suspend has already fired.",
                                                                         S.RUNNING)


def test_pause_without_key_gets_a_fresh_one(h):
    run = h.flow_run(S.RUNNING)
    h.set(run, S.PAUSED, policy_of(HandlePausingFlows))
    assert len(run.empirical_policy.pause_keys) == 1


@pytest.mark.parametrize("initial", [None, *ALL_TYPES])
def test_only_running_flows_pause(h, initial):  # 104
    run = h.flow_run(initial, deployment_id=h.deployment().id)
    result = h.set(run, S.PAUSED, policy_of(HandlePausingFlows))
    if initial is None:
        assert result.status is ABORT  # "Cannot pause flows with no state." then validation fails
        assert result.details.reason.startswith("Error validating state: ")
    elif initial is S.RUNNING:
        assert result.status is ACCEPT
    else:
        assert (result.status, result.state.type) == (REJECT, initial)
        assert result.details.reason == "Cannot pause flows that are not currently running."


def test_suspending_needs_a_deployment_and_a_top_level_run(h):  # 98-100
    suspend = lambda: h.state(S.PAUSED, name="Suspended", state_details={"pause_reschedule": True})  # noqa: E731
    run = h.flow_run(S.RUNNING)
    result = h.set(run, suspend(), policy_of(HandlePausingFlows))
    assert (result.status, result.details.reason) == (ABORT, "Cannot suspend flows without a deployment.")
    deployed = h.flow_run(S.RUNNING, deployment_id=h.deployment().id)
    assert h.set(deployed, suspend(), policy_of(HandlePausingFlows)).status is ACCEPT
    parent_task = h.task_run(S.RUNNING)
    sub = h.flow_run(S.RUNNING, deployment_id=h.deployment().id, parent_task_run_id=parent_task.id)
    result = h.set(sub, suspend(), policy_of(HandlePausingFlows))
    assert (result.status, result.details.reason) == (ABORT, "Cannot suspend subflows.")


@pytest.mark.parametrize("proposed, status", [
    (S.RUNNING, ACCEPT), (S.COMPLETED, ACCEPT), (S.SCHEDULED, ACCEPT), (S.FAILED, ACCEPT), (S.CRASHED, ACCEPT),
    (S.CANCELLED, ACCEPT), (S.PENDING, REJECT), (S.PAUSED, REJECT), (S.CANCELLING, REJECT),
])
def test_paused_flows_resume_only_to_running_scheduled_or_final(h, proposed, status):  # 107
    run = h.flow_run(S.PAUSED, deployment_id=h.deployment().id)
    result = h.set(run, proposed, policy_of(HandleResumingPausedFlows))
    assert result.status is status
    if status is REJECT:
        assert result.state.type is S.PAUSED
    assert run.empirical_policy.resuming is True  # the after-hook runs even when it rejected


@pytest.mark.parametrize("timeout_in", [300, -300], ids=["before-timeout", "after-timeout"])
def test_suspended_run_without_deployment_cannot_resume(h, timeout_in):  # 105, 106
    # (checked before the timeout: a timed-out one is refused the same way, not failed)
    timeout = h.clock.now() + timeout_in * SECOND
    run = h.flow_run(h.state(S.PAUSED, name="Suspended", state_details={"pause_timeout": timeout, "pause_reschedule": True}))
    result = h.set(run, S.RUNNING, policy_of(HandleResumingPausedFlows))
    assert (result.status, result.details.reason) == (REJECT, "Cannot reschedule a running flow run without a deployment.")
    assert (result.state.type, result.state.name) == (S.PAUSED, "Suspended")
    blocking = h.flow_run(h.state(S.PAUSED, state_details={"pause_timeout": timeout}))
    assert h.set(blocking, S.RUNNING, policy_of(HandleResumingPausedFlows)).status is (
        ACCEPT if timeout_in > 0 else REJECT)


def test_a_pause_resumes_up_to_its_timeout_inclusive(h):
    # Prefect fails it only once the timeout is earlier than now.
    timeout = h.clock.now() + 60 * SECOND
    runs = [h.flow_run(h.state(S.PAUSED, state_details={"pause_timeout": timeout})) for _ in range(2)]
    for run, at, status in ((runs[0], timeout, ACCEPT), (runs[1], timeout + SECOND / 1000, REJECT)):
        proposed = h.state(S.RUNNING)
        h.clock.set(at)
        result = h.set(run, proposed, policy_of(HandleResumingPausedFlows))
        assert result.status is status, at


def test_expired_pause_fails_the_run(h):  # 108, 109
    run = h.flow_run(h.state(S.PAUSED, state_details={"pause_timeout": h.clock.now() - 300 * SECOND}),
                     deployment_id=h.deployment().id)
    result = h.set(run, S.RUNNING, policy_of(HandleResumingPausedFlows))
    assert result.status is REJECT
    assert result.details.reason == "The flow run pause has timed out and can no longer resume."
    assert (result.state.type, result.state.message) == (S.FAILED, "The flow was running and never resumed.")


# The resume_flow_run route. Expected answers recorded from Prefect 3.1.0's own route
# (prefect.server.api.flow_runs.resume_flow_run, called with CoreFlowPolicy on a
# SQLite database): a run paused (or suspended) with a 60 s timeout, resumed 1 s or
# 120 s later; with a deployment or without.
@pytest.mark.parametrize("deployed", [False, True])
@pytest.mark.parametrize("kind, later, want", [
    ("pause", 1, {False: ("ACCEPT", "RUNNING", "Running", None), True: ("ACCEPT", "RUNNING", "Running", None)}),
    ("suspend", 1, {False: ("ABORT", None, None, "Cannot resume a flow run that is not paused."),
                    True: ("ACCEPT", "SCHEDULED", "Resuming", None)}),
    ("pause", 120, {d: ("REJECT", "FAILED", "Failed", "The flow run pause has timed out and can no longer resume.")
                    for d in (False, True)}),
    ("suspend", 120, {False: ("ABORT", None, None, "Cannot resume a flow run that is not paused."),
                      True: ("REJECT", "FAILED", "Failed", "The flow run pause has timed out and can no longer resume.")}),
    ("keyset", 1, {d: ("REJECT", "PAUSED", "Paused", "Run input schema not found.") for d in (False, True)}),
    ("not paused", 1, {d: ("ABORT", None, None, "Cannot resume a flow run that is not paused.") for d in (False, True)}),
])
def test_resume_flow_run_route(h, deployed, kind, later, want):
    engine = h.engine
    run = h.flow_run(S.RUNNING, deployment_id=h.deployment().id if deployed else None)
    if kind != "not paused":
        details = {"pause_timeout": h.clock.now() + 60 * SECOND, "pause_reschedule": kind == "suspend"}
        if kind == "keyset":
            details["run_input_keyset"] = {"schema": "s", "response": "r"}
        # Without a deployment the suspension itself is aborted: the run stays RUNNING.
        h.set(run, h.state(S.PAUSED, name="Suspended" if kind == "suspend" else "Paused", state_details=details),
              CoreFlowPolicy)
    h.clock.advance(later * SECOND)
    before = run.run_count
    result = engine.resume_flow_run(run.id)
    state = result.state
    got = (result.status.value, state and state.type.value, state and state.name, getattr(result.details, "reason", None))
    assert got == want[deployed]
    if got[0] == "ACCEPT":
        assert run.state_name == state.name and run.empirical_policy.resuming is True
        # A blocking resume counts a run (resuming is set after the count); a suspended one does not.
        assert run.run_count == before + (kind == "pause")
        if state.type is S.SCHEDULED:
            # Scheduled for the route's "now" (read just before the state's stamp).
            assert dt.timedelta(0) <= state.timestamp - state.state_details.scheduled_time < SECOND
    if kind == "keyset" or got[0] == "ABORT":
        assert run.state_type is (S.PAUSED if kind == "keyset" else S.RUNNING)


def test_resume_flow_run_route_arguments(h):
    from engine.errors import ObjectNotFoundError, ValidationError
    run = h.flow_run(S.RUNNING)
    h.set(run, S.PAUSED, CoreFlowPolicy)
    with pytest.raises(ObjectNotFoundError):
        h.engine.resume_flow_run("00000000-0000-0000-0000-000000000001")
    with pytest.raises(ValidationError, match="flow_run_id"):
        h.engine.resume_flow_run("not-a-uuid")
    with pytest.raises(ValidationError, match="run_input"):
        h.engine.resume_flow_run(run.id, run_input=[1])
    assert run.state_type is S.PAUSED   # nothing changed
    # A policy can be named; the minimal one lets the resume through without the pause rules.
    assert h.engine.resume_flow_run(run.id, run_input={"x": 1}, flow_policy="MinimalFlowPolicy").status is ACCEPT


# retries ------------------------------------------------------------------------------------------
def test_failing_flow_with_retries_left_awaits_retry(h):  # 51, 52
    # (the forced RUNNING initial state counts as the first attempt: run_count 1)
    run = h.flow_run(S.RUNNING, empirical_policy={"retries": 1, "retry_delay": 10})
    failure = h.state(S.FAILED, message="boom", data={"type": "unpersisted"})
    result = h.set(run, failure, policy_of(RetryFailedFlows))
    assert (result.status, result.details.reason) == (REJECT, "Retrying")
    assert (result.state.type, result.state.name, result.state.message) == (S.SCHEDULED, "AwaitingRetry", "boom")
    assert result.state.data == {"type": "unpersisted"}
    delay = (result.state.state_details.scheduled_time - result.state.timestamp).total_seconds()
    assert delay == pytest.approx(10, abs=0.01)
    exhausted = h.flow_run(S.RUNNING, empirical_policy={"retries": 1}, run_count=1)
    assert h.set(exhausted, S.FAILED, policy_of(RetryFailedFlows)).status is ACCEPT


def test_legacy_clients_reset_failed_task_runs_on_flow_retry(h):
    run = h.flow_run(S.RUNNING, empirical_policy={"retries": 2}, run_count=1)
    failed_task = h.task_run(S.FAILED, flow_run=run, run_count=1)
    done_task = h.task_run(S.COMPLETED, flow_run=run, run_count=1)
    h.engine.set_flow_run_state(run.id, h.state(S.FAILED), flow_policy=policy_of(RetryFailedFlows),
                                orchestration_parameters={"api-version": "0.8.2"})
    assert (failed_task.state_type, failed_task.state_name, failed_task.run_count) == (S.SCHEDULED, "AwaitingRetry", 0)
    assert done_task.state_type is S.COMPLETED and done_task.run_count == 1


def test_retry_clears_pause_bookkeeping_for_current_clients(h):
    run = h.flow_run(S.RUNNING, empirical_policy={"retries": 1})
    h.engine.update_flow_run(run.id, empirical_policy={"retries": 1, "pause_keys": ["k"], "resuming": True})
    h.set(run, S.FAILED, policy_of(RetryFailedFlows))
    assert run.empirical_policy.pause_keys == set() and run.empirical_policy.resuming is False


def test_the_retry_of_a_resumed_run_counts_as_a_new_run(h):
    # Paused and resumed (resuming: its next Running is not a new run), then failed
    # with retries left: the retry's Running is counted.
    run = h.flow_run(S.RUNNING, empirical_policy={"retries": 5})
    for proposed in (S.PAUSED, S.RUNNING):
        assert h.set(run, proposed, CoreFlowPolicy).status is ACCEPT
    assert run.empirical_policy.resuming is True
    count = run.run_count
    assert h.set(run, S.FAILED, CoreFlowPolicy).state.name == "AwaitingRetry"
    assert run.empirical_policy.resuming is False
    h.clock.advance(5)
    for proposed in (S.PENDING, S.RUNNING):
        assert h.set(run, proposed, CoreFlowPolicy).status is ACCEPT
    assert run.run_count == count + 1
