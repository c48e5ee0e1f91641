"""Flows and deployments listed under Prefect's cross-entity filters (EXISTS
semantics, engine/listings.py). Expected answers are those Prefect 3.1.0's models
layer gave for the same data (checked with tests/oracle's Prefect sandbox)."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from engine import Engine, ManualClock, State, ValidationError, models


@pytest.fixture
def e() -> Engine:
    engine = Engine(ManualClock(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), tick=dt.timedelta(seconds=1)))
    flows = {f"f{i}": engine.create_flow(f"f{i}", tags=["x"] if i in (1, 3) else []) for i in range(5)}
    pools = {name: engine.create_work_pool(name, type="process") for name in ("pool-a", "pool-b")}
    queues = {"high": engine.create_work_queue(pools["pool-a"].id, "high"),
              "low": engine.create_work_queue(pools["pool-b"].id, "low")}
    deps = {}
    for flow, name, queue in [("f0", "d1", "high"), ("f1", "d2", "low"), ("f1", "d1", None), ("f3", "d3", "high")]:
        kw = {"work_queue_id": queues[queue].id} if queue else {}
        deps[(flow, name)] = engine.create_deployment(flows[flow].id, name, **kw)
    for flow, dep, state, tags, task_state in [
        ("f0", "d1", "COMPLETED", ["r"], "FAILED"), ("f1", "d2", "RUNNING", [], None),
        ("f2", None, "COMPLETED", ["r"], "COMPLETED"), ("f3", "d3", "SCHEDULED", ["r"], None),
        ("f1", None, "FAILED", [], "FAILED"),
    ]:
        kw = {"deployment_id": deps[(flow, dep)].id} if dep else {}
        run = engine.create_flow_run(flow_id=flows[flow].id, tags=tags, state=State(type=state), **kw)
        if task_state:
            engine.create_task_run(flow_run_id=run.id, task_key="t", dynamic_key="0", state=State(type=task_state))
    return engine


def names(flows) -> list[str]:
    return [f.name for f in flows]


def deployments(engine, items) -> list[str]:
    return sorted(f"{d.name}/{engine.read_flow(d.flow_id).name}" for d in items)


def test_flow_filters_are_exists_clauses(e):
    assert names(e.read_flows()) == ["f0", "f1", "f2", "f3", "f4"]
    assert names(e.read_flows(flow_filter={"name": {"any_": ["f1", "f3"]}})) == ["f1", "f3"]
    # an empty filter still means "has one": flows with a run, flows with a deployment
    assert names(e.read_flows(flow_run_filter={})) == ["f0", "f1", "f2", "f3"]
    assert names(e.read_flows(deployment_filter={})) == ["f0", "f1", "f3"]
    assert names(e.read_flows(flow_run_filter={"state": {"type": {"any_": ["COMPLETED"]}}})) == ["f0", "f2"]
    assert names(e.read_flows(task_run_filter={"state": {"type": {"any_": ["FAILED"]}}})) == ["f0", "f1"]
    assert names(e.read_flows(work_pool_filter={"name": {"any_": ["pool-a"]}})) == ["f0", "f3"]
    assert names(e.read_flows(flow_filter={"tags": {"all_": ["x"]}}, flow_run_filter={"tags": {"all_": ["r"]}})) == ["f3"]
    assert e.count_flows() == 5 and e.count_flows(task_run_filter={}) == 3


def test_flow_sorts_and_windows(e):
    assert names(e.read_flows(sort="NAME_DESC")) == ["f4", "f3", "f2", "f1", "f0"]
    assert names(e.read_flows(sort="CREATED_DESC", offset=1, limit=2)) == ["f3", "f2"]
    with pytest.raises(ValidationError, match="unknown sort"):
        e.read_flows(sort="ID_DESC")
    with pytest.raises(ValidationError, match="offset"):
        e.read_flows(offset=-1)


def test_deployment_filters_are_exists_clauses(e):
    assert deployments(e, e.read_deployments()) == ["d1/f0", "d1/f1", "d2/f1", "d3/f3"]
    assert deployments(e, e.read_deployments(flow_filter={"name": {"any_": ["f1", "f3"]}})) == ["d1/f1", "d2/f1", "d3/f3"]
    assert deployments(e, e.read_deployments(flow_run_filter={})) == ["d1/f0", "d2/f1", "d3/f3"]
    assert deployments(e, e.read_deployments(task_run_filter={})) == ["d1/f0"]
    assert deployments(e, e.read_deployments(work_queue_filter={"name": {"any_": ["high"]}})) == ["d1/f0", "d3/f3"]
    assert deployments(e, e.read_deployments(deployment_filter={"name": {"like_": "d1"}})) == ["d1/f0", "d1/f1"]
    assert e.count_deployments(work_pool_filter={"name": {"any_": ["pool-a"]}}) == 2
    # names repeat across flows: ties come back by id, in the sort's direction
    ordered = e.read_deployments(sort="NAME_ASC")
    assert [d.name for d in ordered] == ["d1", "d1", "d2", "d3"] and ordered[0].id < ordered[1].id


def test_the_facade_takes_the_same_filters(e):
    async def go():
        async with e.session() as s:
            return (await models.flows.read_flows(s, flow_run_filter={"state": {"type": {"any_": ["COMPLETED"]}}}),
                    await models.flows.count_flows(s, deployment_filter={}),
                    await models.deployments.read_deployments(s, limit=1, sort="NAME_DESC"),
                    await models.deployments.count_deployments(s, task_run_filter={}))

    flows, flow_count, deps, dep_count = asyncio.run(go())
    assert names(flows) == ["f0", "f2"] and flow_count == 3 and [d.name for d in deps] == ["d3"] and dep_count == 1
