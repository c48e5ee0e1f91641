"""set_flow_run_state / set_task_run_state: policy choice, input checking, stamping,
atomicity, custom policies (spec operations.md §1.10, §2.9; orchestration.md §5)."""
from __future__ import annotations

import datetime as dt
import types

import pytest

from engine.errors import ObjectNotFoundError, ValidationError
from engine.orchestration import (
    POLICIES,
    BaseOrchestrationPolicy,
    BaseOrchestrationRule,
    CoreFlowPolicy,
    CoreTaskPolicy,
    SetStateStatus,
    parse_api_version,
)
from engine.orchestration.pipeline import _compile_plan
from engine.orchestration.versions import V0_8_3, V0_8_4
from engine.states import Pending, Running, Scheduled, State, StateType
from test_orchestration_harness import SECOND, Harness, hooks, policy_of, recording_rule

S = StateType


@pytest.fixture
def h() -> Harness:
    return Harness()


# errors -------------------------------------------------------------------------------------
def test_unknown_runs_are_not_found(h):
    import uuid

    missing = uuid.uuid4()
    with pytest.raises(ObjectNotFoundError, match=f"Flow run with id {missing} not found"):
        h.engine.set_flow_run_state(missing, Running())
    with pytest.raises(ObjectNotFoundError, match=f"Task run with id {missing} not found"):
        h.engine.set_task_run_state(missing, Running())


@pytest.mark.parametrize("bad", ["CoreFlowPolicie", "no_such_module:Policy", "engine.states:State", 42, object(),
                                 BaseOrchestrationRule, ":CoreFlowPolicy", ".orchestration:CoreFlowPolicy",
                                 "engine.orchestration:", "engine..orchestration:X", "engine.orchestration:Core Flow"])
@pytest.mark.parametrize("force", [False, True])
def test_a_policy_must_be_a_policy_class_instance_or_name(h, bad, force):
    run = h.flow_run(S.PENDING)
    with pytest.raises(ValidationError, match="flow_policy") as caught:
        h.engine.set_flow_run_state(run.id, Running(), force=force, flow_policy=bad)
    if isinstance(bad, str):
        assert repr(bad) in str(caught.value)
    assert run.state_type is S.PENDING
    assert len(h.engine.read_flow_run_states(run.id)) == 1


def test_a_policy_module_that_fails_to_import_is_named_with_its_error(h, tmp_path, monkeypatch):
    (tmp_path / "broken_policies.py").write_text("raise RuntimeError('half-written module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = h.flow_run(S.PENDING)
    with pytest.raises(ValidationError, match="importing broken_policies raised RuntimeError: half-written module"):
        h.engine.set_flow_run_state(run.id, Running(), flow_policy="broken_policies:Policy")
    assert run.state_type is S.PENDING


@pytest.mark.parametrize("name", ["CoreTaskPolicy", "engine.orchestration:CoreTaskPolicy"])
def test_a_policy_can_be_named(h, name):
    # The same choice as the class: only CoreTaskPolicy keeps a task of a paused flow
    # run from starting.
    task = h.task_run(S.PENDING, flow_run=h.flow_run(S.PAUSED))
    assert h.engine.set_task_run_state(task.id, Running(), task_policy=name).status is SetStateStatus.REJECT
    assert h.engine.set_task_run_state(task.id, Running(), task_policy="MinimalTaskPolicy").status is SetStateStatus.ACCEPT


def test_policy_instances_are_accepted(h):
    run = h.flow_run(S.RUNNING)
    result = h.engine.set_flow_run_state(run.id, Pending(), flow_policy=CoreFlowPolicy())
    assert result.status is SetStateStatus.ABORT


@pytest.mark.parametrize("value, parsed", [
    (None, None), ("0.8.4", (0, 8, 4)), ("0.8", (0, 8, 0)), ((0, 8, 3), (0, 8, 3)), ("0.8.4.0", (0, 8, 4)),
    (" v0.8.4 ", (0, 8, 4)), (types.SimpleNamespace(release=(0, 8, 2)), (0, 8, 2)),  # (packaging's Version)
])
def test_api_versions_parse_without_packaging(value, parsed):
    assert parse_api_version(value) == parsed


@pytest.mark.parametrize("text", [
    "0.8.4", "0.8.4rc1", "0.8.4.post1", "0.8.4.dev0", "0.8.4.post1.dev0", "0.8.4rc1.post1", "0.8.3.9", "0.8.4a",
    "0.8.3rc2", "0.8.0b1", "0.0.0a1", "1.0.0.dev3", "0.8.4-1", "0.8.4+local.7", "0.8.10", "0.9", "V0.8.4",
])
def test_api_versions_compare_as_packaging_compares_them(text):
    # A pre- or dev-release is an older client than its release (the rules' 0.8.3 and
    # 0.8.4 thresholds), a post-release a newer one; a Version object reads the same.
    packaging = pytest.importorskip("packaging.version")
    version = packaging.Version(text)
    for given in (text, version):
        parsed = parse_api_version(given)
        for threshold, ours in (("0.8.4", V0_8_4), ("0.8.3", V0_8_3)):
            assert (parsed >= ours) is (version >= packaging.Version(threshold)), (given, threshold)
            assert (parsed < ours) is (version < packaging.Version(threshold)), (given, threshold)


@pytest.mark.parametrize("bad", ["latest", "0.x.4", ("0", "8"), 3.5, "0.-8.4", (0, -8, 4), "0.8.4 rc1", "0.8.4+"])
def test_malformed_api_version_is_a_validation_error(h, bad):
    run = h.flow_run(S.PENDING)
    with pytest.raises(ValidationError, match="api-version"):
        h.engine.set_flow_run_state(run.id, Running(), orchestration_parameters={"api-version": bad})


def test_policies_registry_names_every_policy():
    assert set(POLICIES) == {
        "CoreFlowPolicy", "CoreFlowPolicyWithoutDeploymentConcurrency", "CoreTaskPolicy",
        "ClientSideTaskOrchestrationPolicy", "BackgroundTaskPolicy", "MinimalFlowPolicy",
        "MinimalTaskPolicy", "MarkLateRunsPolicy", "GlobalFlowPolicy", "GlobalTaskPolicy",
    }
    assert all(issubclass(cls, BaseOrchestrationPolicy) and cls.__name__ == name for name, cls in POLICIES.items())


# policy choice ------------------------------------------------------------------------------
def test_no_policy_or_force_means_minimal(h):
    run = h.flow_run(S.RUNNING)
    # CoreFlowPolicy would abort RUNNING -> PENDING; the minimal policy does not.
    assert h.engine.set_flow_run_state(run.id, Pending()).status is SetStateStatus.ACCEPT
    run2 = h.flow_run(S.RUNNING)
    result = h.engine.set_flow_run_state(run2.id, Pending(), force=True, flow_policy=CoreFlowPolicy)
    assert result.status is SetStateStatus.ACCEPT


def test_forced_flow_transition_still_bypasses_cancelling_without_infrastructure(h):  # quirk 3
    run = h.flow_run(S.SCHEDULED)
    result = h.set(run, S.CANCELLING, CoreFlowPolicy, force=True)
    assert result.status is SetStateStatus.REJECT and run.state_type is S.CANCELLED


def test_deferred_task_states_use_the_background_policy_even_forced(h):  # quirk 2
    task = h.task_run(S.RUNNING, flow_run=None)
    state = h.state(S.PENDING, state_details={"deferred": True})
    result = h.set(task, state, force=True)
    # PreventPendingTransitions (first rule of BackgroundTaskPolicy) refuses.
    assert result.status is SetStateStatus.ABORT
    assert result.details.reason == "This run is in a RUNNING state and cannot transition to a PENDING state."


def test_core_task_policy_is_used_when_given(h):
    task = h.task_run(S.PENDING, flow_run=h.flow_run(S.PAUSED))
    assert h.set(task, S.RUNNING, CoreTaskPolicy).status is SetStateStatus.REJECT
    assert h.set(task, S.RUNNING).status is SetStateStatus.ACCEPT


# stamping and copies -----------------------------------------------------------------------------
def test_states_without_time_get_the_engine_clock(h):
    run = h.flow_run(None)
    before = h.clock.now()
    result = h.engine.set_flow_run_state(run.id, Scheduled())
    assert result.state.timestamp > before
    assert result.state.state_details.scheduled_time == result.state.timestamp
    assert run.expected_start_time == result.state.timestamp


def test_the_callers_state_object_is_never_mutated(h):
    run = h.flow_run(S.SCHEDULED)
    proposal = Pending()
    h.engine.set_flow_run_state(run.id, proposal, flow_policy=CoreFlowPolicy)
    assert proposal.timestamp is None
    assert proposal.state_details.flow_run_id is None
    assert proposal.state_details.scheduled_time is None  # CopyScheduledTime wrote the engine's copy


def test_a_waited_proposal_can_be_resubmitted_later(h):
    run = h.flow_run(h.state(S.SCHEDULED, state_details={"scheduled_time": h.clock.now() + 60 * SECOND}))
    proposal = Running()
    assert h.engine.set_flow_run_state(run.id, proposal, flow_policy=CoreFlowPolicy).status is SetStateStatus.WAIT
    h.clock.advance(61)
    result = h.engine.set_flow_run_state(run.id, proposal, flow_policy=CoreFlowPolicy)
    assert result.status is SetStateStatus.ACCEPT
    assert result.state.timestamp > run.expected_start_time


def test_state_times_without_an_offset_are_utc(h):
    # A State built in Python is not validated on construction; Prefect reads a time
    # with no offset as UTC, so the engine's copy does too (it used to keep it naive,
    # and the first aware comparison, e.g. in a sort index, raised TypeError).
    utc = dt.timezone.utc
    later = (h.clock.now() + 3600 * SECOND).replace(tzinfo=None)
    other = h.flow_run(None)
    h.engine.set_flow_run_state(other.id, Scheduled(scheduled_time=h.clock.now()))
    run = h.flow_run(None)
    proposal = Scheduled(scheduled_time=later)
    proposal.state_details.cache_expiration = later
    proposal.state_details.pause_timeout = later.isoformat()  # text is parsed
    stored = h.engine.set_flow_run_state(run.id, proposal).state
    details = stored.state_details
    assert details.scheduled_time == details.cache_expiration == details.pause_timeout == later.replace(tzinfo=utc)
    assert run.expected_start_time == later.replace(tzinfo=utc)
    assert [r.id for r in h.engine.read_flow_runs(sort="EXPECTED_START_TIME_DESC")][:2] == [run.id, other.id]
    naive_stamp = State(type=S.RUNNING, timestamp=(h.clock.now() + SECOND).replace(tzinfo=None))
    assert h.engine.set_flow_run_state(run.id, naive_stamp).state.timestamp.tzinfo is utc
    assert proposal.state_details.cache_expiration.tzinfo is None  # the caller's object is untouched


def test_a_state_time_that_is_not_a_time_is_refused_before_anything_changes(h):
    run = h.flow_run(S.SCHEDULED)
    before = (run.state_id, run.state_type, len(h.engine.read_flow_run_states(run.id)))
    with pytest.raises(ValidationError, match="state.timestamp must be a datetime"):
        h.engine.set_flow_run_state(run.id, State(type=S.RUNNING, timestamp=[12]))
    with pytest.raises(ValidationError, match="state.state_details.scheduled_time is not an ISO-8601"):
        h.engine.set_flow_run_state(run.id, Scheduled(scheduled_time="soon"))
    assert (run.state_id, run.state_type, len(h.engine.read_flow_run_states(run.id))) == before


def _with(**fields):
    state = Running()
    for name, value in fields.items():
        if name.startswith("details_"):
            setattr(state.state_details, name[len("details_"):], value)
        else:
            setattr(state, name, value)
    return state


@pytest.mark.parametrize("fields, path", [
    ({"type": "BOGUS"}, "state.type"),
    ({"name": 5}, "state.name"),
    ({"name": None}, "state.name"),
    ({"message": ["boom"]}, "state.message"),
    ({"id": "not-a-uuid"}, "state.id"),
    ({"state_details": ["not", "details"]}, "state.state_details"),
    ({"details_transition_id": "abc"}, "state.state_details.transition_id"),
    ({"details_cache_key": 5}, "state.state_details.cache_key"),
    ({"details_pause_key": 3}, "state.state_details.pause_key"),
    ({"details_deferred": "yes"}, "state.state_details.deferred"),
    ({"details_untrackable_result": None}, "state.state_details.untrackable_result"),
    ({"details_run_input_keyset": {"a": 1}}, "state.state_details.run_input_keyset"),
])
def test_every_field_of_a_submitted_state_is_checked(h, fields, path):
    # States built in Python are not validated on construction (nor on assignment);
    # the engine checks its copy, naming the field, before the run is touched.
    flow_run, task_run = h.flow_run(S.PENDING), h.task_run(S.PENDING)
    for run, propose in ((flow_run, h.engine.set_flow_run_state), (task_run, h.engine.set_task_run_state)):
        before = (run.state_id, run.state_type, run.run_count)
        with pytest.raises(ValidationError, match=path.replace(".", r"\.") + r"\b"):
            propose(run.id, _with(**fields))
        assert (run.state_id, run.state_type, run.run_count) == before


def test_submitted_ids_and_details_given_as_text_or_dicts_are_read_as_prefect_reads_them(h):
    import uuid

    run = h.flow_run(S.PENDING)
    transition = uuid.uuid4()
    state = _with(details_transition_id=str(transition), id=str(uuid.uuid4()))
    stored = h.engine.set_flow_run_state(run.id, state).state
    assert stored.state_details.transition_id == transition and isinstance(stored.id, uuid.UUID)
    task_run = h.task_run(S.PENDING)
    as_dict = _with(state_details={"cache_key": "k", "not_a_field": 1})  # unknown keys ignored, as Prefect does
    assert h.engine.set_task_run_state(task_run.id, as_dict).state.state_details.cache_key == "k"


def test_api_version_travels_in_the_parameters(h):
    seen = []
    rule = recording_rule([], "r", before=lambda r, i, p, c: seen.append(c.parameters.get("api-version")))
    run = h.flow_run(S.PENDING)
    h.engine.set_flow_run_state(run.id, Running(), flow_policy=policy_of(rule),
                                orchestration_parameters={"api-version": "0.8.4"})
    assert seen == ["0.8.4"]


# compilation -----------------------------------------------------------------------------------------
def test_rules_are_compiled_per_transition_and_cached():
    first = CoreFlowPolicy.compile_transition_rules(S.RUNNING, S.FAILED)
    assert first is CoreFlowPolicy.compile_transition_rules(S.RUNNING, S.FAILED)
    names = [r.__name__ for r in first]
    assert names == ["PreventDuplicateTransitions", "RetryFailedFlows",
                     "InstrumentFlowRunStateTransitions", "ReleaseFlowConcurrencySlots"]
    plan = _compile_plan(CoreFlowPolicy, POLICIES["GlobalFlowPolicy"], S.RUNNING, S.FAILED)
    assert plan is _compile_plan(CoreFlowPolicy, POLICIES["GlobalFlowPolicy"], S.RUNNING, S.FAILED)


def test_rules_are_filtered_by_the_intended_transition_only(h):  # quirk 4
    log: list = []
    # A rule for ... -> SCHEDULED never runs when an earlier rule turns RUNNING into SCHEDULED.
    swap = recording_rule(log, "swap", before=lambda r, *a: r.reject_transition(h.state(S.SCHEDULED), "x"))
    late = recording_rule(log, "late", to_states=[S.SCHEDULED])
    run = h.flow_run(S.PENDING)
    h.set(run, S.RUNNING, policy_of(swap, late))
    assert hooks(log, "late") == []


# atomicity ------------------------------------------------------------------------------------------
def test_error_in_an_after_hook_rolls_everything_back(h):
    def boom(*a):
        raise RuntimeError("after")

    run = h.flow_run(S.PENDING)
    rows = len(h.states(run))
    with pytest.raises(RuntimeError, match="after"):
        h.set(run, S.RUNNING, policy_of(recording_rule([], "r", after=boom)))
    assert run.state_type is S.PENDING and run.run_count == 0 and run.start_time is None
    assert len(h.states(run)) == rows


def test_transition_changing_nothing_leaves_indexes_alone(h):
    run = h.flow_run(S.PENDING)
    state_index = h.engine._store.tables["flow_run"].by_name["state_type"]
    before = dict(state_index.get(S.PENDING))
    result = h.set(run, S.RUNNING, policy_of(recording_rule([], "w", before=lambda r, *a: r.delay_transition(5, "x"))))
    assert result.status is SetStateStatus.WAIT
    assert dict(state_index.get(S.PENDING)) == before and not state_index.get(S.RUNNING)


def test_accepted_transition_moves_the_run_between_index_buckets(h):
    run = h.flow_run(S.PENDING)
    h.set(run, S.RUNNING, CoreFlowPolicy)
    index = h.engine._store.tables["flow_run"].by_name["state_type"]
    assert run in index.get(S.RUNNING).values() and run not in index.get(S.PENDING).values()


# custom rules are first-class ----------------------------------------------------------------------------
class NoRunningOnWeekends(BaseOrchestrationRule):
    FROM_STATES = [S.PENDING]
    TO_STATES = [S.RUNNING]

    def before_transition(self, initial_state, proposed_state, context):
        if context.now.weekday() >= 5:
            self.reject_transition(State(type=S.SCHEDULED, name="Monday"), "No work on weekends")


class Throttle(BaseOrchestrationRule):
    FROM_STATES = [S.PENDING]
    TO_STATES = [S.RUNNING]

    def before_transition(self, initial_state, proposed_state, context):
        self.delay_transition(7, "Throttled")


class ReserveSomething(BaseOrchestrationRule):
    """Takes a (fake) resource before the transition; gives it back on fizzle."""

    FROM_STATES = [S.PENDING]
    TO_STATES = [S.RUNNING]
    held: list = []

    def before_transition(self, initial_state, proposed_state, context):
        self.held.append(context.run.id)

    def cleanup(self, initial_state, validated_state, context):
        self.held.remove(context.run.id)


class AbortEverything(BaseOrchestrationRule):
    FROM_STATES = [S.PENDING]
    TO_STATES = [S.RUNNING]

    def before_transition(self, initial_state, proposed_state, context):
        self.abort_transition("Nope")


class WeekendPolicy(BaseOrchestrationPolicy):
    @staticmethod
    def priority():
        return [*CoreFlowPolicy.priority(), NoRunningOnWeekends]


def test_custom_rule_rejects_with_its_own_state(h):
    h.clock.set(dt.datetime(2024, 11, 2, tzinfo=dt.timezone.utc))  # a Saturday
    run = h.flow_run(S.PENDING)
    result = h.set(run, S.RUNNING, WeekendPolicy)
    assert result.status is SetStateStatus.REJECT
    assert result.details.reason == "No work on weekends"
    assert (run.state_type, run.state_name, run.run_count) == (S.SCHEDULED, "Monday", 0)
    assert result.state.state_details.scheduled_time is not None  # stamped like any SCHEDULED state


def test_custom_rule_delays(h):
    run = h.flow_run(S.PENDING)
    result = h.set(run, S.RUNNING, policy_of(Throttle))
    assert (result.status, result.details.delay_seconds, result.details.reason) == (SetStateStatus.WAIT, 7, "Throttled")
    assert run.state_type is S.PENDING


def test_custom_rule_cleans_up_when_a_later_rule_aborts(h):
    ReserveSomething.held.clear()
    run = h.flow_run(S.PENDING)
    result = h.set(run, S.RUNNING, policy_of(ReserveSomething, AbortEverything))
    assert result.status is SetStateStatus.ABORT and result.details.reason == "Nope"
    assert ReserveSomething.held == []
    result = h.set(run, S.RUNNING, policy_of(ReserveSomething))
    assert result.status is SetStateStatus.ACCEPT and ReserveSomething.held == [run.id]
