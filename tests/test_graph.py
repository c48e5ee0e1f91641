"""Task-run dependencies and the flow-run graph v2."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from engine import Completed, Engine, ManualClock, Pending, Running
from engine.errors import FlowRunGraphTooLarge, ObjectNotFoundError
from engine.records import Artifact, ArtifactCollection

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 11, 1, tzinfo=UTC)


def _ref(task):
    return {"input_type": "task_run", "id": str(task.id)}


@pytest.fixture()
def world():
    e = Engine(clock=ManualClock(T0, tick=dt.timedelta(seconds=1)))
    flow = e.create_flow("etl")
    child_flow = e.create_flow("child")
    run = e.create_flow_run(flow_id=flow.id, name="parent", state=Running())
    mk = lambda key, **kw: e.create_task_run(flow_run_id=run.id, task_key=key, dynamic_key="0", **kw)  # noqa: E731
    a = mk("a", state=Running())
    e.set_task_run_state(a.id, Completed(), force=True)
    z = mk("z", state=Running(), task_inputs={"p": [{"input_type": "parameter", "name": "n"}],
                                              "c": [{"input_type": "constant", "type": "int"}]})
    b = mk("b", state=Running(), task_inputs={"x": [_ref(z)], "y": [_ref(z)], "__parents__": [_ref(a)]})
    pending = mk("pending", state=Pending())
    bare = mk("bare")  # no state: not a node
    wrapper = mk("wrapper", state=Running(), task_inputs={"x": [_ref(a), _ref(a), _ref(pending)]})
    sub = e.create_flow_run(flow_id=child_flow.id, name="kid", parent_task_run_id=wrapper.id, state=Running())
    return e, run, {"a": a, "z": z, "b": b, "pending": pending, "bare": bare, "wrapper": wrapper, "sub": sub}


def test_dependencies_list_task_run_inputs_once_in_id_desc_order(world):
    e, run, t = world
    deps = e.read_task_run_dependencies(run.id)
    assert [d.id for d in deps] == sorted((x.id for k, x in t.items() if k != "sub"), key=str, reverse=True)
    by_id = {d.id: d for d in deps}
    assert [u.id for u in by_id[t["b"].id].upstream_dependencies] == [t["z"].id, t["a"].id]
    assert by_id[t["z"].id].upstream_dependencies == []  # parameter/constant inputs skipped
    assert [u.id for u in by_id[t["wrapper"].id].upstream_dependencies] == [t["a"].id, t["pending"].id]
    assert by_id[t["bare"].id].state is None and by_id[t["bare"].id].untrackable_result is False
    assert by_id[t["a"].id].state.type.value == "COMPLETED"


def test_dependencies_of_a_missing_flow_run():
    e = Engine(clock=ManualClock(T0))
    missing = uuid.UUID(int=12345)
    with pytest.raises(ObjectNotFoundError, match=f"Flow run with id {missing} not found"):
        e.read_task_run_dependencies(missing)


def test_graph_nodes_edges_and_multiplicity(world):
    e, run, t = world
    g = e.read_flow_run_graph(run.id)
    nodes = dict(g.nodes)
    # pending and stateless task runs are not nodes; the wrapper task becomes the subflow's node
    assert set(nodes) == {t["a"].id, t["z"].id, t["b"].id, t["sub"].id}
    kid = nodes[t["sub"].id]
    assert (kid.kind, kid.label, kid.state_type.value) == ("flow-run", "child / kid", "RUNNING")
    # b has x:[z], y:[z] and z has two input entries -> 2 x 2 = 4 parent edges, no de-duplication
    assert [p.id for p in nodes[t["b"].id].parents] == [t["z"].id] * 4
    assert [c.id for c in nodes[t["z"].id].children] == [t["b"].id] * 4
    assert [p.id for p in nodes[t["b"].id].encapsulating] == [t["a"].id]
    # a referenced twice by the wrapper: a has no inputs, so one edge row each
    assert [p.id for p in kid.parents] == [t["a"].id, t["a"].id]
    assert set(g.root_node_ids) == {t["a"].id, t["z"].id}
    starts = [n.start_time for _, n in g.nodes]
    assert starts == sorted(starts)
    assert g.start_time == run.start_time and g.end_time is None
    assert [s.type.value for s in g.states] == ["RUNNING"]


def test_graph_since_keeps_unfinished_and_recent_nodes(world):
    e, run, t = world
    a_end = t["a"].end_time
    assert a_end is not None
    assert t["a"].id not in dict(e.read_flow_run_graph(run.id, since=a_end + dt.timedelta(seconds=1)).nodes)
    assert t["a"].id in dict(e.read_flow_run_graph(run.id, since=a_end).nodes)
    # running nodes (no end) are always kept
    assert t["b"].id in dict(e.read_flow_run_graph(run.id, since=T0 + dt.timedelta(days=9)).nodes)


def test_graph_too_large_and_missing(world):
    e, run, _ = world
    from engine import graph
    with pytest.raises(FlowRunGraphTooLarge, match=f"The graph of flow run {run.id} has more than 3 nodes."):
        graph.read_flow_run_graph(e, run.id, None, max_nodes=3)
    assert len(graph.read_flow_run_graph(e, run.id, None, max_nodes=4).nodes) == 4
    with pytest.raises(ObjectNotFoundError, match="not found"):
        e.read_flow_run_graph(uuid.UUID(int=1))


def test_graph_artifacts(world):
    e, run, t = world
    with e.transaction():
        made = []
        for i, (kind, task, key) in enumerate([("markdown", None, "report"), ("result", None, None),
                                               (None, None, None), ("progress", t["a"], None),
                                               ("markdown", None, "report")]):
            art = Artifact(key=key, type=kind, data={"n": i}, flow_run_id=run.id,
                           task_run_id=task.id if task else None)
            art.created = art.updated = T0 + dt.timedelta(minutes=i)
            e._store.insert("artifact", art)
            made.append(art)
        e._store.insert("artifact_collection", ArtifactCollection(key="report", latest_id=made[4].id))
    g = e.read_flow_run_graph(run.id)
    assert [(a.id, a.is_latest, a.data) for a in g.artifacts] == [(made[0].id, False, None), (made[4].id, True, None)]
    node_arts = dict(g.nodes)[t["a"].id].artifacts
    assert [(a.id, a.data) for a in node_arts] == [(made[3].id, {"n": 3})]


def test_graph_since_accepts_iso_text_and_rejects_garbage(world):
    e, run, t = world
    later = (t["a"].end_time + dt.timedelta(seconds=1)).isoformat()
    assert t["a"].id not in dict(e.read_flow_run_graph(run.id, since=later).nodes)
    from engine.errors import ValidationError
    with pytest.raises(ValidationError, match="since"):
        e.read_flow_run_graph(run.id, since="soon")
