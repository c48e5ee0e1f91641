"""Invariants under random traffic (hypothesis): whatever clients propose, through
the Core policies or forced, the denormalised columns match the current state, run
counts match the RUNNING entries, tag limits are never exceeded by running tasks,
and a failed call changes nothing."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy, SetStateStatus
from engine.states import State, StateType
from test_orchestration_harness import Harness

S = StateType
TYPES = list(StateType)

step = st.tuples(
    st.integers(min_value=0, max_value=3),   # which task run
    st.sampled_from(TYPES),                   # proposed type
    st.booleans(),                            # forced?
    st.floats(min_value=0, max_value=40),     # seconds to advance first
)


def _columns_match(run) -> bool:
    if run.state_id is None:
        return run.state_type is None
    return (run.state_type, run.state_name, run.state_timestamp) == (
        run.state.type, run.state.name, run.state.timestamp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=30))
def test_task_traffic_keeps_invariants(steps):
    h = Harness()
    h.engine.create_concurrency_limit("db", 1)
    flow_run = h.flow_run(S.RUNNING)
    tasks = [h.task_run(S.PENDING, flow_run=flow_run, tags=["db"]) for _ in range(4)]
    for index, type_, forced, wait in steps:
        h.clock.advance(wait)
        task = tasks[index]
        result = h.set(task, State(type=type_), CoreTaskPolicy, force=forced)
        assert result.status in SetStateStatus
        assert _columns_match(task)
        slots = h.engine.read_concurrency_limit_by_tag("db").active_slots
        assert len(slots) == len(set(slots))
        # A limit-1 tag never has two holders (forced RUNNING takes no slot), and
        # every holder is RUNNING or CANCELLING (any other landing releases).
        assert len(slots) <= 1
        for t in tasks:
            if str(t.id) in slots:
                assert t.state_type in (S.RUNNING, S.CANCELLING)
    for t in tasks:
        assert t.run_count >= 0
        assert len(h.states(t)) >= 1


flow_step = st.tuples(st.sampled_from(TYPES), st.sampled_from(["core", "force"]), st.floats(min_value=0, max_value=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(flow_step, min_size=1, max_size=25))
def test_flow_traffic_keeps_invariants(steps):
    h = Harness()
    deployment = h.deployment(limit=1)
    run = h.flow_run(None, deployment_id=deployment.id, empirical_policy={"retries": 2, "retry_delay": 5})
    limit = h.engine.read_concurrency_limit_v2(deployment.concurrency_limit_id)
    for type_, how, wait in steps:
        h.clock.advance(wait)
        before = (run.state_id, run.run_count, len(h.states(run)))
        try:
            result = h.set(run, State(type=type_), CoreFlowPolicy, force=(how == "force"))
        except Exception:
            assert (run.state_id, run.run_count, len(h.states(run))) == before
            continue
        assert _columns_match(run)
        written = len(h.states(run)) - before[2]
        assert written in (0, 1)
        assert (written == 1) == (result.state is not None and result.state.id != before[0])
        assert run.run_count >= before[1]
        assert 0 <= limit.active_slots <= 1
        if run.end_time is not None:
            assert run.start_time is not None and run.end_time >= run.start_time
        assert run.total_run_time >= dt.timedelta(0)
