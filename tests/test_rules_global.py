"""Global transforms: bookkeeping on every transition, forced or not (spec
orchestration.md §9; conformance-cases.md C). Exact times/counters under whole
policies are covered by test_conformance_cases.py; here: ids, subflows, resuming."""
from __future__ import annotations

import pytest

from engine.errors import ObjectNotFoundError
from engine.orchestration import (
    CoreFlowPolicy,
    CoreFlowPolicyWithoutDeploymentConcurrency,
    CoreTaskPolicy,
    EVENT_LISTENERS,
    MarkLateRunsPolicy,
    PreventPendingTransitions,
    instrumentation,
)
from engine.states import StateType
from test_orchestration_harness import ABORT, ACCEPT, SECOND, WAIT, Harness, policy_of

S = StateType


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_states_carry_their_run_ids(h):
    flow_run = h.flow_run(S.PENDING)
    assert flow_run.state.state_details.flow_run_id == flow_run.id
    task = h.task_run(S.PENDING, flow_run=flow_run)
    details = task.state.state_details
    assert (details.flow_run_id, details.task_run_id) == (flow_run.id, task.id)
    lone = h.task_run(S.PENDING, flow_run=None)
    assert (lone.state.state_details.flow_run_id, lone.state.state_details.task_run_id) == (None, lone.id)


def subflow(h: Harness, parent_type=S.RUNNING):
    parent_task = h.task_run(parent_type)
    sub = h.flow_run(None, parent_task_run_id=parent_task.id)
    return parent_task, sub


def test_subflow_states_are_mirrored_onto_the_parent_task(h):  # 156, 157
    parent_task, sub = subflow(h)
    h.set(sub, S.RUNNING, force=True)
    result = h.set(sub, h.state(S.FAILED, message="boom"), CoreFlowPolicy)
    assert result.status is ACCEPT
    assert result.state.state_details.task_run_id == parent_task.id
    mirrored = parent_task.state
    assert (mirrored.type, mirrored.message) == (S.FAILED, "boom")
    assert mirrored.id != result.state.id
    assert mirrored.state_details.child_flow_run_id == sub.id
    assert mirrored.state_details.task_run_id == parent_task.id
    assert parent_task.end_time is not None and parent_task.run_count == 2  # RUNNING twice (own + mirrored)


def test_nullified_subflow_transitions_are_not_mirrored(h):
    parent_task, sub = subflow(h)
    h.set(sub, S.RUNNING, force=True)
    rows = len(h.states(parent_task))
    assert h.set(sub, S.PENDING, CoreFlowPolicy).status is ABORT
    assert len(h.states(parent_task)) == rows


def test_missing_parent_task_fails_the_subflow_transition(h):
    parent_task, sub = subflow(h)
    h.engine._store.tables["task_run"].rows.pop(parent_task.id)  # simulate a lost row
    with pytest.raises(ObjectNotFoundError):
        h.set(sub, S.RUNNING, force=True)
    assert sub.state_id is None


def test_blocking_resume_counts_a_run_and_then_clears_the_flag(h):  # §9 consequences
    run = h.flow_run(None)
    h.set(run, S.RUNNING, CoreFlowPolicy)
    h.set(run, h.state(S.PAUSED, state_details={"pause_key": "k"}), CoreFlowPolicy)
    result = h.set(run, S.RUNNING, CoreFlowPolicy)
    assert result.status is ACCEPT
    assert run.run_count == 2 and run.empirical_policy.resuming is True
    h.set(run, S.COMPLETED, CoreFlowPolicy)
    assert run.empirical_policy.resuming is False


def test_suspended_resume_does_not_count_a_run(h):  # 158, 159
    run = h.flow_run(None, deployment_id=h.deployment().id)
    h.set(run, S.RUNNING, CoreFlowPolicy)
    h.set(run, h.state(S.PAUSED, name="Suspended", state_details={"pause_reschedule": True}), CoreFlowPolicy)
    resuming = h.state(S.SCHEDULED, name="Resuming")
    assert h.set(run, resuming, CoreFlowPolicy).status is ACCEPT
    assert run.empirical_policy.resuming is True
    h.set(run, S.PENDING, CoreFlowPolicy)
    h.set(run, S.RUNNING, CoreFlowPolicy)
    assert run.run_count == 1 and run.empirical_policy.resuming is False


def test_old_clients_always_count_runs(h):
    run = h.flow_run(S.PENDING)
    h.engine.update_flow_run(run.id, empirical_policy={"resuming": True})
    h.engine.set_flow_run_state(run.id, h.state(S.RUNNING), orchestration_parameters={"api-version": "0.8.3"})
    assert run.run_count == 1 and run.empirical_policy.resuming is True


def test_nullified_transition_changes_no_bookkeeping(h):
    when = h.clock.now() + 60 * SECOND
    run = h.flow_run(h.state(S.SCHEDULED, state_details={"scheduled_time": when}))
    before = (run.state_type, run.state_name, run.state_timestamp, run.run_count, run.start_time,
              run.next_scheduled_start_time, run.total_run_time)
    assert h.set(run, S.RUNNING, CoreFlowPolicy).status is WAIT
    assert (run.state_type, run.state_name, run.state_timestamp, run.run_count, run.start_time,
            run.next_scheduled_start_time, run.total_run_time) == before


def test_rule_replaced_state_drives_the_bookkeeping(h):
    run = h.flow_run(S.RUNNING, empirical_policy={"retries": 1, "retry_delay": 30})
    h.clock.advance(2)
    result = h.set(run, S.FAILED, CoreFlowPolicy)
    assert result.state.name == "AwaitingRetry"
    assert (run.state_type, run.state_name) == (S.SCHEDULED, "AwaitingRetry")
    assert run.next_scheduled_start_time == result.state.state_details.scheduled_time
    assert run.total_run_time.total_seconds() > 2 and run.end_time is None


# InstrumentFlowRunStateTransitions (spec orchestration.md §8.25): a policy's transform,
# feeding engine.orchestration.EVENT_LISTENERS in place of Prefect's event bus.

@pytest.fixture
def events():
    received: list = []
    EVENT_LISTENERS.append(received.append)
    yield received
    EVENT_LISTENERS.remove(received.append)


@pytest.mark.parametrize("policy", [CoreFlowPolicy, CoreFlowPolicyWithoutDeploymentConcurrency, MarkLateRunsPolicy])
def test_each_stored_flow_run_state_is_one_event(h, events, policy):
    run = h.flow_run(S.SCHEDULED)  # (forced: MinimalFlowPolicy instruments too)
    initial = run.state
    events.clear()
    to = h.state(S.SCHEDULED, name="Late") if policy is MarkLateRunsPolicy else S.PENDING
    result = h.set(run, to, policy)
    assert result.status is ACCEPT
    [event] = events
    validated = result.state
    assert event["event"] == f"prefect.flow-run.{validated.name}"
    assert event["occurred"] == validated.timestamp
    assert event["resource"] == {"prefect.resource.id": f"prefect.flow-run.{run.id}",
                                 "prefect.resource.name": run.name}
    assert event["payload"] == {
        "intended": {"from": "SCHEDULED", "to": validated.type.value},
        "initial_state": {"type": "SCHEDULED", "name": initial.name, "message": ""},
        "validated_state": {"type": validated.type.value, "name": validated.name, "message": ""},
    }


def test_a_forced_state_is_an_event_too_and_a_first_state_has_no_initial_one(h, events):
    run = h.flow_run()
    h.set(run, h.state(S.RUNNING, message="go"), force=True)
    [event] = events
    assert event["payload"]["intended"] == {"from": None, "to": "RUNNING"}
    assert event["payload"]["initial_state"] is None
    assert event["payload"]["validated_state"]["message"] == "go"


def test_no_event_for_a_delayed_proposal_task_runs_or_policies_without_the_transform(h, events):
    when = h.clock.now() + 60 * SECOND
    run = h.flow_run(h.state(S.SCHEDULED, state_details={"scheduled_time": when}))
    events.clear()
    assert h.set(run, S.RUNNING, CoreFlowPolicy).status is WAIT  # nullified: nothing stored
    task = h.task_run(S.PENDING)
    events.clear()
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is ACCEPT
    assert h.set(run, S.PENDING, policy_of(PreventPendingTransitions)).status is ACCEPT
    assert events == []


def test_event_messages_are_cut_at_the_limit(h, events):
    run = h.flow_run(S.RUNNING)
    events.clear()
    long = "x" * (instrumentation.MAX_EVENT_MESSAGE + 5)
    h.set(run, h.state(S.FAILED, message=long), CoreFlowPolicy)
    [event] = events
    assert event["payload"]["validated_state"]["message"] == long[:instrumentation.MAX_EVENT_MESSAGE]
    assert run.state.message == long  # (the stored state keeps it whole)
