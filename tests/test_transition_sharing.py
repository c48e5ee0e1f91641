"""Transitions keep few objects alive (shared details, reused keys) without that
sharing ever leaking into what callers read or into the indexes."""
from __future__ import annotations

from engine import Engine
from engine.orchestration import CoreTaskPolicy
from engine.states import Completed, Pending, Running, StateType
from engine.testing.plugin import new_engine


def _task_runs(engine: Engine, n: int):
    flow = engine.create_flow(name="f")
    flow_run = engine.create_flow_run(flow_id=flow.id, state=Running())
    runs = [engine.create_task_run(flow_run_id=flow_run.id, task_key="t", dynamic_key=str(i), state=Pending())
            for i in range(n)]
    return flow_run, runs


def _rows(engine: Engine, run_id):
    rows = engine._store.tables["task_run_state"].by_name["run_id"].get(run_id)
    return sorted(rows.values(), key=lambda r: r.timestamp)


def test_equal_consecutive_details_are_shared_and_history_stays_independent():
    engine = new_engine()
    _, (run,) = _task_runs(engine, 1)
    for make in (Running, Completed):
        engine.set_task_run_state(run.id, make(), task_policy=CoreTaskPolicy)
    rows = _rows(engine, run.id)
    assert [r.type for r in rows] == [StateType.PENDING, StateType.RUNNING, StateType.COMPLETED]
    assert rows[1].state_details is rows[2].state_details is run.state.state_details
    # what a caller reads back is its own copy: mutating it changes no stored state
    states = engine.read_task_run_states(run.id)
    states[1].state_details.cache_key = "mutated"
    assert all(r.state_details.cache_key is None for r in rows)
    assert [s.state_details.cache_key for s in engine.read_task_run_states(run.id)] == [None, None, None]


def test_different_details_are_not_shared():
    engine = new_engine()
    _, (run,) = _task_runs(engine, 1)
    engine.set_task_run_state(run.id, Running(), task_policy=CoreTaskPolicy)
    done = Completed()
    done.state_details.cache_key = "k"
    engine.set_task_run_state(run.id, done, task_policy=CoreTaskPolicy)
    rows = _rows(engine, run.id)
    assert rows[2].state_details is not rows[1].state_details
    assert (rows[1].state_details.cache_key, rows[2].state_details.cache_key) == (None, "k")


def test_composite_keys_stay_consistent_across_runs_moving_together_and_rollback():
    engine = new_engine()
    flow_run, runs = _task_runs(engine, 5)
    for run in runs[:3]:
        engine.set_task_run_state(run.id, Running(), task_policy=CoreTaskPolicy)
    # a failed multi-run transaction undoes its moves
    try:
        with engine.transaction():
            engine.set_task_run_state(runs[3].id, Running(), task_policy=CoreTaskPolicy)
            engine.set_task_run_state(runs[0].id, Completed(), task_policy=CoreTaskPolicy)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    table = engine._store.tables["task_run"]
    by_type = table.by_name["state_type"]
    counts = engine.count_task_runs_by_state(flow_run_filter={"id": {"any_": [str(flow_run.id)]}})
    for state_type in StateType:
        expected = {r.id for r in runs if r.state_type is state_type}
        assert {r.id for r in by_type.get(state_type).values()} == expected, state_type
        assert getattr(counts, state_type.value) == len(expected), state_type
    assert {r.id for r in runs if r.state_type is StateType.RUNNING} == {r.id for r in runs[:3]}
    assert set(table._keys) == set(table.rows.values())
    for rec, keys in table._keys.items():
        assert tuple(keys) == tuple(i.extract(rec) for i in table.indexes)


def test_runs_in_the_same_state_share_one_state_key():
    engine = new_engine()
    flow_run, runs = _task_runs(engine, 4)
    table = engine._store.tables["task_run"]
    position = [idx.name for idx in table.indexes].index("state")

    def state_keys():
        return {id(table._keys[run][position]) for run in runs}

    assert len(state_keys()) == 1  # filed on creation: one (PENDING, "Pending") tuple
    for run in runs:
        engine.set_task_run_state(run.id, Running(), task_policy=CoreTaskPolicy)
    assert len(state_keys()) == 1  # moved together: one (RUNNING, "Running") tuple
    assert table._keys[runs[0]][position] == (StateType.RUNNING, "Running")


def test_a_reopened_engine_shares_state_keys_too(tmp_path):
    from engine import Engine

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Engine.open(url) as engine:
        _task_runs(engine, 4)
    with Engine.open(url) as engine:
        table = engine._store.tables["task_run"]
        position = [idx.name for idx in table.indexes].index("state")
        assert len({id(keys[position]) for keys in table._keys.values()}) == 1
