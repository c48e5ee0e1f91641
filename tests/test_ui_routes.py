"""Prefect's per-id UI routes: count_task_runs_by_flow_run, count_deployments_by_flow,
next_runs_by_flow. The tie and subflow cases are the answers Prefect 3.1.0's own
route functions gave for the same data (checked with the oracle venv)."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from engine import Engine, ManualClock, Pending, Scheduled, SimpleNextFlowRun, StateType, ValidationError

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
T = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
UNKNOWN = uuid.UUID("3c4bd7b5-1b8e-4b42-a5e3-5a1d6fd5d1a2")


@pytest.fixture
def engine() -> Engine:
    return Engine(ManualClock(T0, tick=dt.timedelta(seconds=1)))


def test_task_run_counts_leave_out_subflow_parents(engine):
    flow = engine.create_flow("f")
    run, other = (engine.create_flow_run(flow_id=flow.id) for _ in range(2))
    engine.create_task_run(flow_run_id=run.id, task_key="a", dynamic_key="0")
    parent = engine.create_task_run(flow_run_id=run.id, task_key="a", dynamic_key="1")
    engine.create_flow_run(flow_id=flow.id, parent_task_run_id=parent.id)
    for i in range(3):
        engine.create_task_run(flow_run_id=other.id, task_key="b", dynamic_key=str(i))
    counts = engine.count_task_runs_by_flow_run([run.id, str(other.id), run.id, UNKNOWN])
    assert counts == {run.id: 1, other.id: 3, UNKNOWN: 0} and list(counts) == [run.id, other.id, UNKNOWN]


def test_deployment_counts(engine):
    f, g = engine.create_flow("f"), engine.create_flow("g")
    for name in ("a", "b"):
        engine.create_deployment(f.id, name)
    engine.delete_deployment(engine.create_deployment(g.id, "gone").id)
    assert engine.count_deployments_by_flow([f.id, g.id, UNKNOWN]) == {f.id: 2, g.id: 0, UNKNOWN: 0}


def test_next_run_is_the_earliest_scheduled_ties_going_to_the_last_created(engine):
    f, g, h = (engine.create_flow(n) for n in "fgh")
    for name, flow, when in [("r0", f, T), ("r1", f, T), ("r2", f, T + dt.timedelta(days=1)), ("r3", f, T),
                             ("h0", h, T + dt.timedelta(hours=1))]:
        engine.create_flow_run(flow_id=flow.id, name=name, state=Scheduled(scheduled_time=when))
    engine.create_flow_run(flow_id=g.id, name="pending", state=Pending())
    engine.create_flow_run(flow_id=g.id, name="no-state")  # no next_scheduled_start_time: never next
    nxt = engine.next_runs_by_flow([f.id, g.id, h.id, UNKNOWN])
    assert list(nxt) == [f.id, g.id, h.id, UNKNOWN]
    assert nxt[f.id].name == "r3" and nxt[g.id] is None and nxt[UNKNOWN] is None
    h0 = engine.read_flow_runs(flow_run_filter={"name": {"any_": ["h0"]}})[0]
    assert nxt[h.id] == SimpleNextFlowRun(id=h0.id, flow_id=h.id, name="h0", state_name="Scheduled",
                                          state_type=StateType.SCHEDULED,
                                          next_scheduled_start_time=T + dt.timedelta(hours=1))


def test_runs_created_at_one_instant_tie_by_id_through_a_rolled_back_delete():
    """A clock that does not tick creates runs at one instant: the greater id wins,
    however memory orders them (a rolled-back delete puts a run last there)."""
    engine = Engine(ManualClock(T0))
    flow = engine.create_flow("f")
    runs = [engine.create_flow_run(flow_id=flow.id, id=uuid.UUID(int=n, version=4), name=f"r{n}",
                                   state=Scheduled(scheduled_time=T)) for n in (3, 1, 2)]
    assert engine.next_runs_by_flow([flow.id])[flow.id].name == "r3"
    with pytest.raises(RuntimeError):
        with engine.transaction():
            engine.delete_flow_run(runs[0].id)
            raise RuntimeError("changed my mind")
    assert [r.name for r in engine.read_flow_runs(sort="ID_DESC")] == ["r3", "r2", "r1"]
    assert engine.next_runs_by_flow([flow.id])[flow.id].name == "r3"


def test_a_run_that_leaves_scheduled_is_no_longer_next(engine):
    flow = engine.create_flow("f")
    early = engine.create_flow_run(flow_id=flow.id, name="early", state=Scheduled(scheduled_time=T))
    engine.create_flow_run(flow_id=flow.id, name="late", state=Scheduled(scheduled_time=T + dt.timedelta(1)))
    assert engine.next_runs_by_flow([flow.id])[flow.id].name == "early"
    engine.set_flow_run_state(early.id, Pending(), force=True)
    assert engine.next_runs_by_flow([flow.id])[flow.id].name == "late"


@pytest.mark.parametrize("method", ["count_task_runs_by_flow_run", "count_deployments_by_flow", "next_runs_by_flow"])
def test_bad_id_lists(engine, method):
    call = getattr(engine, method)
    with pytest.raises(ValidationError, match="at most 200 ids, got 201"):
        call([uuid.uuid4() for _ in range(201)])
    with pytest.raises(ValidationError, match="not-a-uuid"):
        call(["not-a-uuid"])
    assert call([]) == {}
