"""User-written rules and policies: what their hooks may touch, what they may pass to
the mutators, and how a bad rule or policy is reported. The outcomes that matter were
checked against Prefect 3.1.0 with the same rules ported to its API."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from engine import (
    Completed, DuplicateIdError, Engine, ManualClock, Pending, Running, StateType, UniquenessError, ValidationError,
)
from engine.orchestration import (
    BaseOrchestrationPolicy,
    BaseOrchestrationRule,
    BaseUniversalTransform,
    CoreFlowPolicy,
    CoreTaskPolicy,
    SetStateStatus,
)
from engine.orchestration.task_rules import CacheRetrieval
from test_orchestration_harness import policy_of

S = StateType
T0 = dt.datetime(2024, 11, 4, tzinfo=dt.timezone.utc)
# What `stored` gives for the task run as the fixture made it: PENDING, nothing else.
UNTOUCHED = [S.PENDING, "Pending", "Pending", None, [(S.PENDING, "Pending", None, None)]]


def rule(hooks: dict, from_states=(S.PENDING,), to_states=(S.RUNNING,), base: type = BaseOrchestrationRule) -> type:
    return type("UserRule", (base,), {"FROM_STATES": list(from_states), "TO_STATES": list(to_states), **hooks})


def propose_with(engine: Engine, run, **hooks) -> Any:
    """Propose RUNNING for `run` under a policy of one PENDING -> RUNNING rule with `hooks`."""
    return engine.set_task_run_state(run.id, Running(), task_policy=policy_of(rule(hooks)))


@pytest.fixture
def engine() -> Engine:
    return Engine(ManualClock(T0, tick=dt.timedelta(milliseconds=1)))


@pytest.fixture
def task_run(engine):
    flow_run = engine.create_flow_run(flow_id=engine.create_flow("f").id, state=Running())
    return engine.create_task_run(flow_run_id=flow_run.id, task_key="k", dynamic_key="0", state=Pending())


def stored(engine, task_run) -> list[tuple]:
    """The run's current state and history as columns and state objects hold them."""
    run = engine.read_task_run(task_run.id)
    history = [(s.type, s.name, s.message, s.state_details.cache_key) for s in engine.read_task_run_states(run.id)]
    current = run.state
    return [run.state_type, run.state_name, current.name, current.state_details.cache_key, history]


# what hooks may touch ------------------------------------------------------------------------------
def test_an_after_hook_writes_reach_the_answer_but_not_storage(engine, task_run):
    def after_transition(self, initial_state, validated_state, context):
        validated_state.state_details.cache_key = "audited"
        initial_state.state_details.cache_key = "audited-initial"
        self.rename_state("Audited")

    result = propose_with(engine, task_run, after_transition=after_transition)
    assert result.status is SetStateStatus.ACCEPT
    # Prefect answers with the state its rules saw: the details write shows there...
    assert (result.state.name, result.state.state_details.cache_key) == ("Running", "audited")
    # ...while the stored rows, the run's columns and its current state are untouched.
    assert stored(engine, task_run) == [
        S.RUNNING, "Running", "Running", None,
        [(S.PENDING, "Pending", None, None), (S.RUNNING, "Running", None, None)],
    ]


def test_a_before_hook_writing_the_initial_state_changes_nothing_stored(engine, task_run):
    def before_transition(self, initial_state, proposed_state, context):
        initial_state.state_details.cache_key = "scribbled"
        initial_state.name = "Renamed"
        self.delay_transition(5, "later")

    result = propose_with(engine, task_run, before_transition=before_transition)
    assert result.status is SetStateStatus.WAIT
    assert result.state.state_details.cache_key == "scribbled"  # as in Prefect's answer
    assert stored(engine, task_run) == UNTOUCHED


def test_a_cleanup_writing_the_kept_state_changes_nothing_stored(engine, task_run):
    # The first rule fizzles when the second delays: its cleanup sees the kept (current)
    # state, which the answer holds, as Prefect's does, and storage does not.
    def cleanup(self, initial_state, validated_state, context):
        validated_state.state_details.cache_key = "from-cleanup"

    def before_transition(self, initial_state, proposed_state, context):
        self.delay_transition(5, "later")

    rules = policy_of(rule({"cleanup": cleanup}), rule({"before_transition": before_transition}))
    result = engine.set_task_run_state(task_run.id, Running(), task_policy=rules)
    assert (result.status, result.state.state_details.cache_key) == (SetStateStatus.WAIT, "from-cleanup")
    assert stored(engine, task_run) == UNTOUCHED


def test_a_subclass_of_a_built_in_rule_gets_copies_unless_it_opts_out(engine, task_run):
    seen: list = []

    def before_transition(self, initial_state, proposed_state, context):
        proposed_state.name = "NameSetOnCopy"
        proposed_state.message = "message set on copy"
        context.parameters["leak"] = True
        CacheRetrieval.before_transition(self, initial_state, proposed_state, context)

    def reader(self, initial_state, proposed_state, context):
        seen.append(dict(context.parameters))

    mine = rule({"before_transition": before_transition}, base=CacheRetrieval)
    assert mine.SAFE_COPIES
    later = rule({"before_transition": reader})
    result = engine.set_task_run_state(task_run.id, Running(), task_policy=policy_of(mine, later))
    assert result.status is SetStateStatus.ACCEPT
    assert seen == [{}]  # the copy's parameters stayed with the copy
    assert stored(engine, task_run)[4][-1] == (S.RUNNING, "Running", None, None)

    # A class that declares SAFE_COPIES = False in its own body is handed the live objects.
    trusting = rule({"before_transition": before_transition, "SAFE_COPIES": False}, base=CacheRetrieval)
    other = engine.create_task_run(flow_run_id=task_run.flow_run_id, task_key="k", dynamic_key="1", state=Pending())
    engine.set_task_run_state(other.id, Running(), task_policy=policy_of(trusting))
    assert engine.read_task_run(other.id).state_name == "NameSetOnCopy"


def test_a_proposals_details_set_in_a_before_hook_are_stored(engine, task_run):
    # The proposal is shared with the hooks (as Prefect's shallow copies share it).
    def before_transition(self, initial_state, proposed_state, context):
        proposed_state.state_details.cache_key = "from-rule"

    propose_with(engine, task_run, before_transition=before_transition)
    assert stored(engine, task_run)[3] == "from-rule"


def test_a_state_a_rule_rejects_with_is_stored_as_a_copy_of_its_own(engine, task_run):
    # Prefect stores a row: the rule's object (here one shared by every proposal) is
    # neither the stored state nor stamped, so a later failed proposal or an edit of
    # the object cannot reach the history. Changes made before validation still count.
    skip = Completed(message="skipped")

    def before_transition(self, initial_state, proposed_state, context):
        self.reject_transition(skip, "skip")
        skip.state_details.cache_key = "set-after-reject"

    answer = propose_with(engine, task_run, before_transition=before_transition)
    assert answer.status is SetStateStatus.REJECT and answer.state is not skip
    assert skip.timestamp is None and skip.state_details.task_run_id is None
    after_first = stored(engine, task_run)
    assert after_first[0] == S.COMPLETED and after_first[3] == "set-after-reject"
    other = engine.create_task_run(flow_run_id=task_run.flow_run_id, task_key="k", dynamic_key="1", state=Pending())
    with pytest.raises(UniquenessError):  # the same state id twice, as Prefect's primary key refuses
        propose_with(engine, other, before_transition=before_transition)
    skip.message = "edited later"
    assert stored(engine, task_run) == after_first
    assert engine.read_task_run_states(task_run.id)[-1].state_details.task_run_id == task_run.id


def test_rejecting_with_the_stored_state_itself_names_the_state_not_its_time(engine, task_run):
    def before_transition(self, initial_state, proposed_state, context):
        self.reject_transition(initial_state, "again")

    before = stored(engine, task_run)
    with pytest.raises(DuplicateIdError, match="task run state with id .* already exists"):
        propose_with(engine, task_run, before_transition=before_transition)
    assert stored(engine, task_run) == before


# what the mutators take ----------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda self: self.abort_transition(5), "reason must be a string or None, got 5"),
    (lambda self: self.delay_transition(1.5, "x"), "delay_seconds must be a whole number of seconds, got 1.5"),
    (lambda self: self.delay_transition(None, "x"), "delay_seconds must be a whole number of seconds, got None"),
    (lambda self: self.delay_transition(float("nan"), "x"), "delay_seconds must be a whole number of seconds, got nan"),
    (lambda self: self.reject_transition("SCHEDULED", "x"), "reject_transition needs a State or None"),
])
def test_bad_mutator_arguments_raise_and_change_nothing(engine, task_run, call, message):
    def before_transition(self, initial_state, proposed_state, context):
        call(self)

    with pytest.raises(ValidationError, match=message):
        propose_with(engine, task_run, before_transition=before_transition)
    assert stored(engine, task_run) == UNTOUCHED


def test_a_whole_float_delay_is_taken(engine, task_run):
    def before_transition(self, initial_state, proposed_state, context):
        self.delay_transition(2.0, "x")

    result = propose_with(engine, task_run, before_transition=before_transition)
    assert (result.status, result.details.delay_seconds) == (SetStateStatus.WAIT, 2)


@pytest.mark.parametrize("name", [5, None, "x\udc80"])
def test_renaming_to_a_non_string_aborts_and_stores_nothing(engine, task_run, name):
    # (a lone surrogate is no storable text either)
    def before_transition(self, initial_state, proposed_state, context):
        self.rename_state(name)

    result = propose_with(engine, task_run, before_transition=before_transition)
    assert result.status is SetStateStatus.ABORT
    assert result.details.reason.startswith("Error validating state: ValidationError(")
    assert "state name must be" in result.details.reason
    assert stored(engine, task_run)[:2] == [S.PENDING, "Pending"]


def test_a_rename_to_a_str_subclass_is_stored_as_plain_str(engine, task_run):
    class Tagged(str):
        pass

    def before_transition(self, initial_state, proposed_state, context):
        self.rename_state(Tagged("Audited"))

    result = propose_with(engine, task_run, before_transition=before_transition)
    assert result.status is SetStateStatus.ACCEPT
    assert [type(s.name) for s in engine.read_task_run_states(task_run.id)] == [str, str]
    assert stored(engine, task_run)[1] == "Audited"


# bad declarations ----------------------------------------------------------------------------------
@pytest.mark.parametrize("base, hook", [(BaseOrchestrationRule, "before_transition"),
                                        (BaseOrchestrationRule, "cleanup"),
                                        (BaseUniversalTransform, "after_transition")])
def test_async_hooks_are_refused_when_the_class_is_defined(base, hook):
    async def coroutine(self, *args):
        pass

    with pytest.raises(TypeError, match=f"UserRule.{hook} is async; runstate calls hooks synchronously"):
        rule({hook: coroutine}, base=base)


@pytest.mark.parametrize("value", [S.PENDING, "PENDING", None])
def test_a_lone_state_type_is_refused_with_a_hint(value):
    with pytest.raises(TypeError, match=r"FROM_STATES must be a collection of state types.*write \["):
        type("Lone", (BaseOrchestrationRule,), {"FROM_STATES": value, "TO_STATES": [S.RUNNING]})


@pytest.mark.parametrize("entry", ["CacheRetrieval", 42, None, dict, Running()])
def test_a_policy_listing_something_else_than_a_rule_class_is_refused(engine, task_run, entry):
    with pytest.raises(ValidationError, match=r"policy _Policy: priority\(\) lists .*not a rule class"):
        engine.set_task_run_state(task_run.id, Running(), task_policy=policy_of(entry))
    assert stored(engine, task_run)[:2] == [S.PENDING, "Pending"]


def test_a_priority_that_is_not_a_staticmethod_is_named(engine, task_run):
    class Forgetful(BaseOrchestrationPolicy):
        def priority(self):  # noqa: D102 - the mistake under test
            return []

    with pytest.raises(ValidationError, match=r"policy Forgetful: priority\(\) must be a staticmethod"):
        engine.set_task_run_state(task_run.id, Running(), task_policy=Forgetful)


# policies --------------------------------------------------------------------------------------------
def test_reassigning_a_policys_priority_takes_effect(engine, task_run, monkeypatch):
    def before_transition(self, initial_state, proposed_state, context):
        self.abort_transition("blocked")

    class Mine(BaseOrchestrationPolicy):
        @staticmethod
        def priority():
            return []

    class Derived(Mine):
        pass

    other = engine.create_task_run(flow_run_id=task_run.flow_run_id, task_key="k", dynamic_key="1", state=Pending())
    engine.set_task_run_state(task_run.id, Pending(), task_policy=Derived)  # compiled and cached
    blocker = rule({"before_transition": before_transition})
    monkeypatch.setattr(Mine, "priority", staticmethod(lambda: [blocker]))
    assert engine.set_task_run_state(task_run.id, Running(), task_policy=Mine).status is SetStateStatus.ABORT
    assert engine.set_task_run_state(other.id, Running(), task_policy=Derived).status is SetStateStatus.ABORT
    monkeypatch.undo()
    assert engine.set_task_run_state(other.id, Running(), task_policy=Derived).status is SetStateStatus.ACCEPT


# patching a rule class (mock.patch.object, monkeypatch) --------------------------------------------
def _new_task_run(engine, task_run, key):
    return engine.create_task_run(flow_run_id=task_run.flow_run_id, task_key="k", dynamic_key=key, state=Pending())


def test_a_patched_global_transform_hook_runs_and_is_undone_with_the_patch(engine, task_run):
    # The built-in transforms run as plain functions compiled into cached plans: a
    # patch must reach them, be called as Prefect calls it (through the instance), and
    # be gone, for every engine, once undone.
    from unittest import mock

    from engine.orchestration.global_rules import SetStartTime

    with mock.patch.object(SetStartTime, "before_transition") as patched:
        engine.set_task_run_state(task_run.id, Running(), task_policy=CoreTaskPolicy)
        (context,), _ = patched.call_args
        assert patched.call_count == 1 and context.run.id == task_run.id
        assert engine.read_task_run(task_run.id).start_time is None  # the mock set nothing
    fresh = Engine(ManualClock(T0, tick=dt.timedelta(milliseconds=1)))
    run = fresh.create_task_run(task_key="k", dynamic_key="0", state=Pending())
    fresh.set_task_run_state(run.id, Running(), task_policy=CoreTaskPolicy)
    assert fresh.read_task_run(run.id).start_time is not None
    with mock.patch.object(SetStartTime, "before_transition") as again:
        fresh.set_task_run_state(run.id, Completed(), task_policy=CoreTaskPolicy)
        assert again.call_count == 1


def test_a_hook_patched_onto_a_rule_that_had_none_is_called(engine, task_run, monkeypatch):
    calls = []

    def before_transition(self, initial_state, proposed_state, context):
        calls.append("before")

    plain = rule({"before_transition": before_transition})
    engine.set_task_run_state(task_run.id, Running(), task_policy=policy_of(plain))  # compiled
    monkeypatch.setattr(plain, "after_transition", lambda self, initial, validated, ctx: calls.append("after"))
    monkeypatch.setattr(plain, "cleanup", lambda self, initial, validated, ctx: calls.append("cleanup"))
    other = _new_task_run(engine, task_run, "1")
    engine.set_task_run_state(other.id, Running(), task_policy=policy_of(plain))
    assert calls == ["before", "before", "after"]
    monkeypatch.undo()
    engine.set_task_run_state(_new_task_run(engine, task_run, "2").id, Running(), task_policy=policy_of(plain))
    assert calls == ["before", "before", "after", "before"]


def test_patched_from_states_take_effect_and_reach_subclasses_that_inherit_them(engine, task_run, monkeypatch):
    def before_transition(self, initial_state, proposed_state, context):
        self.abort_transition("blocked")

    blocker = rule({"before_transition": before_transition}, from_states=(S.SCHEDULED,))
    inheriting = type("Inheriting", (blocker,), {})
    for policy in (policy_of(blocker), policy_of(inheriting)):
        assert engine.set_task_run_state(task_run.id, Pending(), task_policy=policy).status is SetStateStatus.ACCEPT
    monkeypatch.setattr(blocker, "FROM_STATES", [S.PENDING])
    assert blocker.FROM_STATES == frozenset({S.PENDING})  # read as the class body's would be
    for policy in (policy_of(blocker), policy_of(inheriting)):
        assert engine.set_task_run_state(task_run.id, Running(), task_policy=policy).status is SetStateStatus.ABORT
    monkeypatch.undo()
    assert engine.set_task_run_state(task_run.id, Running(), task_policy=policy_of(inheriting)).status is SetStateStatus.ACCEPT


def test_a_mock_hook_on_a_built_in_rule_is_called_as_prefect_calls_it(engine, task_run):
    from unittest import mock

    with mock.patch.object(CacheRetrieval, "before_transition") as patched:
        engine.set_task_run_state(task_run.id, Running(), task_policy=CoreTaskPolicy)
    initial, proposed, context = patched.call_args.args  # no `self`: looked up through the instance
    assert (initial.type, proposed.type, context.run.id) == (S.PENDING, S.RUNNING, task_run.id)


def test_an_async_hook_patched_on_later_is_refused_and_the_class_is_unchanged():
    async def coroutine(self, *args):
        pass

    plain = rule({})
    with pytest.raises(TypeError, match="UserRule.before_transition is async"):
        plain.before_transition = coroutine
    assert plain.before_transition is BaseOrchestrationRule.before_transition


def test_an_async_mock_patched_onto_a_rule_is_refused_and_the_rule_still_runs(engine, task_run):
    # An AsyncMock hook would return an unawaited coroutine: it is refused like an
    # `async def` (inspect alone does not see one as async before Python 3.12).
    from unittest import mock

    with pytest.raises(TypeError, match="CacheRetrieval.before_transition is async"):
        with mock.patch.object(CacheRetrieval, "before_transition", new=mock.AsyncMock()):
            pass
    assert not isinstance(CacheRetrieval.__dict__["before_transition"], mock.AsyncMock)
    assert engine.set_task_run_state(task_run.id, Running(), task_policy=CoreTaskPolicy).status.value == "ACCEPT"


def test_an_async_hook_under_a_wrapping_decorator_is_refused():
    import functools

    async def coroutine(self, *args):
        pass

    @functools.wraps(coroutine)
    def wrapper(*args):
        return coroutine(*args)

    with pytest.raises(TypeError, match="UserRule.before_transition is async"):
        rule({"before_transition": wrapper})


def test_a_rule_may_mix_in_abc(engine, task_run):
    import abc

    def before_transition(self, initial_state, proposed_state, context):
        self.reject_transition(None, "no")

    class Abstract(BaseOrchestrationRule, abc.ABC):
        FROM_STATES = [S.PENDING]
        TO_STATES = [S.RUNNING]

    concrete = type("Concrete", (Abstract,), {"before_transition": before_transition})
    assert engine.set_task_run_state(task_run.id, Running(), task_policy=policy_of(concrete)).status is SetStateStatus.REJECT


@pytest.mark.parametrize("kind, wrong", [("flow", CoreTaskPolicy), ("task", CoreFlowPolicy), ("task", "MarkLateRunsPolicy")])
def test_a_policy_of_the_other_run_kind_is_refused(engine, task_run, kind, wrong):
    class Derived(wrong if isinstance(wrong, type) else CoreFlowPolicy):
        pass

    for candidate in (wrong, Derived):
        with pytest.raises(ValidationError, match=f"{kind}_policy=.* is a .*-run policy; a {kind} run needs"):
            if kind == "flow":
                engine.set_flow_run_state(task_run.flow_run_id, Pending(), flow_policy=candidate)
            else:
                engine.set_task_run_state(task_run.id, Running(), task_policy=candidate)
    assert engine.read_flow_run(task_run.flow_run_id).state_type is S.RUNNING
    assert stored(engine, task_run)[:2] == [S.PENDING, "Pending"]


# what hooks may read --------------------------------------------------------------------------------
def test_hooks_read_the_transition_and_the_run_through_the_contexts_helpers(engine, task_run):
    seen: dict = {}

    def before(self, initial, proposed, context):
        seen["before"] = (context.initial_state_type, context.proposed_state_type, context.validated_state_type,
                          self.invalid())
        seen["run"] = (context.engine is engine, context.run_settings is context.run.empirical_policy,
                       context.task_run() is context.run, context.flow_run().id == task_run.flow_run_id)

    def after(self, initial, validated, context):
        seen["after"] = (context.initial_state_type, context.validated_state_type, validated.name)

    assert propose_with(engine, task_run, before_transition=before, after_transition=after).status is (
        SetStateStatus.ACCEPT)
    assert seen == {"before": (S.PENDING, S.RUNNING, None, False), "run": (True, True, True, True),
                    "after": (S.PENDING, S.RUNNING, "Running")}


def test_a_rule_whose_proposal_a_later_rule_changed_has_fizzled_but_stays_valid(engine, task_run):
    # As in Prefect: validity is decided once, on entry; a change after it is a fizzle.
    seen: list = []

    def outer_before(self, initial, proposed, context):
        seen.append(("entered", self.invalid(), self.fizzled()))

    def outer_cleanup(self, initial, validated, context):
        seen.append(("cleanup", self.invalid(), self.fizzled(), self.invalid_transition(), validated.type))

    def inner_before(self, initial, proposed, context):
        self.reject_transition(None, reason="not yet")

    policy = policy_of(rule({"before_transition": outer_before, "cleanup": outer_cleanup}),
                       rule({"before_transition": inner_before}))
    result = engine.set_task_run_state(task_run.id, Running(), task_policy=policy)
    assert result.status is SetStateStatus.REJECT
    assert seen == [("entered", False, False), ("cleanup", False, True, True, S.PENDING)]


def test_a_transform_tells_a_nullified_transition_and_a_failed_one(engine, task_run):
    seen: list = []

    class Watcher(BaseUniversalTransform):
        def after_transition(self, context):
            seen.append((self.nullified_transition(), self.exception_in_transition()))

    def waiting(self, initial, proposed, context):
        self.delay_transition(5, reason="later")

    def raising(self, initial, proposed, context):
        raise RuntimeError("a bug in the rule")

    for hooks in ({}, {"before_transition": waiting}, {"before_transition": raising}):
        policy = policy_of(Watcher, rule(hooks))
        try:
            engine.set_task_run_state(task_run.id, Running(), task_policy=policy)
        except RuntimeError:
            pass
        else:
            engine.set_task_run_state(task_run.id, Pending(), force=True)
    # (a transform's after-hook does not run once a rule raised, as in Prefect)
    assert seen == [(False, False), (True, False)]
