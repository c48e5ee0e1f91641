"""The pipeline's fast paths (core rules entered/exited inline, stateless global
transforms fused and skipped where they cannot act) must answer exactly as the
ordinary path: every rule through its own __enter__/__exit__, every transform
called. Random traffic is replayed through both on twin engines and compared step
by step: response, stored state, and the run's columns."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.orchestration import (
    BaseOrchestrationPolicy,
    BaseUniversalTransform,
    CoreFlowPolicy,
    CoreTaskPolicy,
    GlobalFlowPolicy,
    GlobalTaskPolicy,
)
from engine.errors import OrchestrationError
from engine.orchestration import pipeline as _pipeline
from engine.orchestration.pipeline import _compile_plan
from engine.states import State, StateDetails, StateType
from test_orchestration_harness import Harness

S = StateType
TYPES = list(StateType)
NAMES = {S.SCHEDULED: ["Scheduled", "Late", "AwaitingRetry"], S.PAUSED: ["Paused", "Suspended"]}


def _slow(rule: type) -> type:
    """`rule` forced onto the ordinary path (own __enter__, a class, not fused)."""
    if issubclass(rule, BaseUniversalTransform):
        # Defined outside global_rules and without _STATELESS_HOOKS: built per call.
        return type(rule.__name__, (rule,), {"__module__": __name__})
    return type(rule.__name__, (rule,), {"__enter__": lambda self: rule.__enter__(self)})


def _slow_policy(policy: type) -> type:
    rules = [_slow(r) for r in policy.priority()]
    return type(policy.__name__, (BaseOrchestrationPolicy,), {"priority": staticmethod(lambda: list(rules))})


SLOW = {
    CoreFlowPolicy: _slow_policy(CoreFlowPolicy),
    CoreTaskPolicy: _slow_policy(CoreTaskPolicy),
    GlobalFlowPolicy: _slow_policy(GlobalFlowPolicy),
    GlobalTaskPolicy: _slow_policy(GlobalTaskPolicy),
}


def test_slow_policies_really_take_the_ordinary_path():
    plan = _compile_plan(SLOW[CoreTaskPolicy], SLOW[GlobalTaskPolicy], S.PENDING, S.RUNNING)
    assert plan.fused is None and not any(entry.__class__ is tuple for entry in plan.transforms)
    assert not any(getattr(entry, "_fast", False) for entry in plan.rules)
    fast = _compile_plan(CoreTaskPolicy, GlobalTaskPolicy, S.PENDING, S.RUNNING)
    assert fast.fused is not None and len(fast.fused.befores) < len(fast.transforms)


class _Twin:
    """A world (deployment with a limit of 1, a tag limit of 1, retries) built the
    same way on its own engine."""

    def __init__(self, fast: bool) -> None:
        self.fast = fast
        self.h = h = Harness()
        h.engine.create_concurrency_limit("db", 1)
        dep = self.deployment = h.deployment(limit=1)
        self.flows = [h.flow_run(S.SCHEDULED, deployment_id=dep.id, empirical_policy={"retries": 1}),
                      h.flow_run(S.SCHEDULED, deployment_id=dep.id),
                      h.flow_run(S.RUNNING)]
        parent = self.flows[2]
        self.tasks = [h.task_run(S.PENDING, flow_run=parent, tags=["db"], empirical_policy={"retries": 1}),
                      h.task_run(S.PENDING, flow_run=parent, tags=["db"]),
                      h.task_run(S.PENDING, flow_run=parent)]
        # A run with no state yet and a subflow (of task 2): rules abort proposals
        # for them, and every global transform must then let the nullified one by.
        self.flows += [h.flow_run(None), h.flow_run(S.RUNNING, parent_task_run_id=self.tasks[2].id)]

    def _label_ids(self, details):
        # Reasons may name a run id; each twin has its own ids, so compare labels.
        reason = getattr(details, "reason", None)
        if reason:
            for label, run in [*(("flow%d" % i, r) for i, r in enumerate(self.flows)),
                               *(("task%d" % i, r) for i, r in enumerate(self.tasks))]:
                reason = reason.replace(str(run.id), label)
        return (details.type, reason, getattr(details, "delay_seconds", None))

    def apply(self, kind: str, index: int, state: State, forced: bool, seconds: float):
        h = self.h
        h.clock.advance(seconds)
        engine = h.engine
        saved = (_pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy)
        if not self.fast:
            _pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy = SLOW[GlobalFlowPolicy], SLOW[GlobalTaskPolicy]
        try:
            if kind == "flow":
                run = self.flows[index % len(self.flows)]
                policy = CoreFlowPolicy if self.fast else SLOW[CoreFlowPolicy]
                result = engine.set_flow_run_state(run.id, state, force=forced, flow_policy=policy)
            else:
                run = self.tasks[index % len(self.tasks)]
                policy = CoreTaskPolicy if self.fast else SLOW[CoreTaskPolicy]
                result = engine.set_task_run_state(run.id, state, force=forced, task_policy=policy)
        except OrchestrationError as error:
            # (e.g. Late proposed for the stateless run, where Prefect crashes): both
            # paths must refuse alike and leave the run as it was.
            return "refused", str(error), run.state_type, run.state_name, run.state_timestamp
        finally:
            _pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy = saved
        stored = result.state
        tag_slots = engine.read_concurrency_limit_by_tag("db").active_slots
        deployment_slots = engine.read_concurrency_limit_v2(self.deployment.concurrency_limit_id).active_slots
        return (
            sorted(i for i, task in enumerate(self.tasks) if str(task.id) in tag_slots), deployment_slots,
            result.status, self._label_ids(result.details),
            None if stored is None else (stored.type, stored.name, stored.timestamp, stored.message,
                                         stored.state_details.scheduled_time),
            run.state_type, run.state_name, run.state_timestamp, run.start_time, run.end_time,
            run.total_run_time, run.expected_start_time, run.next_scheduled_start_time, run.run_count,
            getattr(run, "flow_run_run_count", None),
        )


step = st.tuples(
    st.sampled_from(["flow", "task"]),
    st.integers(min_value=0, max_value=4),
    st.sampled_from(TYPES),
    st.integers(min_value=0, max_value=2),   # which name for SCHEDULED / PAUSED
    st.booleans(),                            # forced?
    st.floats(min_value=0, max_value=40),     # seconds to advance first
)


def _state(state_type: StateType, which: int, now) -> State:
    names = NAMES.get(state_type, [state_type.value.capitalize()])
    details = StateDetails()
    if state_type is S.SCHEDULED:
        # Some in the future: a later RUNNING proposal then WAITs, fizzling the
        # slot rules entered before WaitForScheduledTime (their cleanup must run).
        details.scheduled_time = now + dt.timedelta(seconds=30 * which)
    if state_type is S.PAUSED:
        details.pause_reschedule = which == 1
    return State(type=state_type, name=names[which % len(names)], state_details=details)


def _now(*twins: _Twin):
    # Every twin's clock ticks once per reading: read them all alike.
    return [twin.h.clock.now() for twin in twins][0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40))
@example([("flow", 3, S.SCHEDULED, 1, False, 0.0)])  # Late for the stateless run: refused on both
def test_fast_paths_answer_as_the_ordinary_path(steps):
    fast, slow = _Twin(fast=True), _Twin(fast=False)
    for kind, index, state_type, which, forced, seconds in steps:
        state = _state(state_type, which, _now(fast, slow))
        assert fast.apply(kind, index, state, forced, seconds) == slow.apply(kind, index, state, forced, seconds)


@pytest.mark.parametrize("seed", range(3))
def test_full_lifecycles_match(seed):
    rng = random.Random(seed)
    fast, slow = _Twin(fast=True), _Twin(fast=False)
    path = [S.SCHEDULED, S.PENDING, S.RUNNING, S.FAILED, S.PENDING, S.RUNNING, S.COMPLETED]
    for _ in range(30):
        kind, index = rng.choice(["flow", "task"]), rng.randrange(3)
        state_type = rng.choice(path)
        state = _state(state_type, rng.randrange(3), _now(fast, slow))
        assert fast.apply(kind, index, state, False, 1.0) == slow.apply(kind, index, state, False, 1.0)


@pytest.mark.parametrize("steps", [
    [("flow", 3, S.PAUSED)],                                 # no state: pausing aborts
    [("flow", 4, S.PENDING)],                                # a running subflow: Pending aborts
    [("flow", 2, S.PAUSED), ("flow", 2, S.RUNNING), ("flow", 2, S.PENDING)],  # aborted while resuming
], ids=["stateless-paused", "subflow-pending", "resuming-pending"])
def test_aborted_proposals_pass_every_global_transform_on_both_paths(steps):
    fast, slow = _Twin(fast=True), _Twin(fast=False)
    for kind, index, state_type in steps:
        state = _state(state_type, 0, _now(fast, slow))
        answer = fast.apply(kind, index, state, False, 1.0)
        assert answer == slow.apply(kind, index, state, False, 1.0)
    assert answer[2].value == "ABORT"
