"""Shared set-up for the orchestration and rule tests (imported by
test_orchestration_*.py and test_rules_*.py), plus tests of the set-up itself.

Conventions follow spec conformance-cases.md: the initial state is written with a
forced transition 5 s in the past; proposals are stamped "now" by the engine; a
rule under test is applied alone (or in a short list) through `policy_of(...)`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from engine import Engine, ManualClock
from engine.orchestration import (
    ALL_STATES,
    BaseOrchestrationPolicy,
    BaseOrchestrationRule,
    BaseUniversalTransform,
    SetStateStatus,
)
from engine.states import TERMINAL_STATES, State, StateDetails, StateType

T0 = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)
SECOND = dt.timedelta(seconds=1)
ALL_TYPES = list(StateType)
TERMINAL = sorted(TERMINAL_STATES, key=lambda t: t.value)
ACCEPT, REJECT, WAIT, ABORT = (SetStateStatus.ACCEPT, SetStateStatus.REJECT, SetStateStatus.WAIT,
                               SetStateStatus.ABORT)
PERSISTED = {"storage_key": "results/x", "serializer": {"type": "json"}}  # a persisted-result record


class Harness:
    """One engine on a manual clock (1 ms per reading) with a flow and helpers."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0, tick=dt.timedelta(milliseconds=1))
        self.engine = Engine(self.clock)
        self.engine.random.seed(1234)
        self.flow = self.engine.create_flow(name="harness-flow")

    # objects ------------------------------------------------------------------------
    def deployment(self, limit: int | None = None, strategy: str | None = None) -> Any:
        kw: dict[str, Any] = {}
        if limit is not None:
            kw["concurrency_limit"] = limit
        if strategy is not None:
            kw["concurrency_options"] = {"collision_strategy": strategy}
        return self.engine.create_deployment(self.flow.id, f"dep-{len(self.engine.read_deployments())}", **kw)

    def flow_run(self, initial: StateType | State | None = None, **fields: Any) -> Any:
        run = self.engine.create_flow_run(flow_id=self.flow.id, flow_version="0.1", **fields)
        if initial is not None:
            self.force(run, initial)
        return run

    def task_run(self, initial: StateType | State | None = None, flow_run: Any = "running", **fields: Any) -> Any:
        if flow_run == "running":
            flow_run = self.flow_run(StateType.RUNNING)
        fields.setdefault("task_key", "my-key")
        fields.setdefault("dynamic_key", str(len(self.engine._store.tables["task_run"].rows)))
        run = self.engine.create_task_run(flow_run_id=None if flow_run is None else flow_run.id, **fields)
        if initial is not None:
            self.force(run, initial)
        return run

    # states ---------------------------------------------------------------------------
    def state(self, type_: StateType, ago: float | None = None, **kw: Any) -> State:
        details = kw.pop("state_details", None)
        if isinstance(details, dict):
            details = StateDetails(**details)
        state = State(type=type_, state_details=details or StateDetails(), **kw)
        if ago is not None:
            state.timestamp = self.clock.now() - ago * SECOND
        return state

    def force(self, run: Any, initial: StateType | State, ago: float = 5) -> Any:
        """Write `initial` with a forced transition, `ago` seconds in the past."""
        state = initial if isinstance(initial, State) else self.state(initial)
        if state.timestamp is None:
            state.timestamp = self.clock.now() - ago * SECOND
        return self.set(run, state, force=True)

    def set(self, run: Any, state: StateType | State, policy: Any = None, **kw: Any) -> Any:
        if not isinstance(state, State):
            state = self.state(state)
        if hasattr(run, "task_key"):
            return self.engine.set_task_run_state(run.id, state, task_policy=policy, **kw)
        return self.engine.set_flow_run_state(run.id, state, flow_policy=policy, **kw)

    def states(self, run: Any) -> list[State]:
        if hasattr(run, "task_key"):
            return self.engine.read_task_run_states(run.id)
        return self.engine.read_flow_run_states(run.id)


def policy_of(*rules: type) -> type[BaseOrchestrationPolicy]:
    """A policy applying exactly `rules`, outermost first."""

    class _Policy(BaseOrchestrationPolicy):
        @staticmethod
        def priority() -> list[type]:
            return list(rules)

    return _Policy


def rejecting_to(to_type: StateType) -> type[BaseOrchestrationRule]:
    """A rule that rejects every transition into a fresh state of type `to_type`."""

    class Rejector(BaseOrchestrationRule):
        FROM_STATES = [None, *ALL_TYPES]
        TO_STATES = [None, *ALL_TYPES]

        def before_transition(self, initial_state, proposed_state, context):
            self.reject_transition(State(type=to_type), "test")

    return Rejector


def recording_rule(log: list, name: str, from_states=ALL_STATES, to_states=ALL_STATES,
                   before=None, after=None) -> type[BaseOrchestrationRule]:
    """A rule that appends (name, hook) to `log` for each hook it runs; `before` /
    `after` are optional extra actions (called with the rule and the hook args)."""

    class _Rule(BaseOrchestrationRule):
        FROM_STATES = from_states
        TO_STATES = to_states

        def before_transition(self, initial_state, proposed_state, context):
            log.append((name, "before"))
            if before is not None:
                before(self, initial_state, proposed_state, context)

        def after_transition(self, initial_state, validated_state, context):
            log.append((name, "after"))
            if after is not None:
                after(self, initial_state, validated_state, context)

        def cleanup(self, initial_state, validated_state, context):
            log.append((name, "cleanup"))

    _Rule.__name__ = _Rule.__qualname__ = name
    _Rule._signature = str(_Rule)  # computed at class creation, before the rename
    return _Rule


def recording_transform(log: list, name: str) -> type[BaseUniversalTransform]:
    class _Transform(BaseUniversalTransform):
        def before_transition(self, context):
            log.append((name, "before"))

        def after_transition(self, context):
            log.append((name, "after"))

    _Transform.__name__ = _Transform.__qualname__ = name
    _Transform._signature = str(_Transform)
    return _Transform


def hooks(log: list, name: str) -> list[str]:
    return [hook for who, hook in log if who == name]


# tests of the harness itself -------------------------------------------------------------
def test_forced_initial_state_is_in_the_past_and_current():
    h = Harness()
    run = h.flow_run(StateType.PENDING)
    assert run.state_type is StateType.PENDING
    assert run.state.timestamp < h.clock.now()


def test_policy_of_applies_exactly_the_given_rules():
    h = Harness()
    log: list = []
    run = h.flow_run(StateType.PENDING)
    result = h.set(run, StateType.RUNNING, policy_of(recording_rule(log, "only")))
    assert result.status is SetStateStatus.ACCEPT
    assert log == [("only", "before"), ("only", "after")]
