"""Updates of flows, deployments, work pools and queues, the worker's poll
(get_scheduled_flow_runs), and workers (heartbeats, read_workers, delete_worker):
Prefect 3.1.0's semantics (models/flows.py, deployments.py, workers.py and its SQLite
worker query). The worker tests end with a replay of
tests/data/workers_heartbeats_prefect_oracle.jsonl, answered by Prefect itself
(tests/oracle/prefect_workers.py)."""
from __future__ import annotations

import asyncio
import datetime as dt
import enum
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_backends_support import check_indexes

from engine import (
    Completed,
    Engine,
    ManualClock,
    ObjectNotFoundError,
    Pending,
    Running,
    Scheduled,
    UniquenessError,
    ValidationError,
    Worker,
    WorkerFilter,
    WorkerFilterLastHeartbeatTime,
    WorkerFilterStatus,
    models,
)

T = dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture
def e() -> Engine:
    return Engine(ManualClock(T, tick=dt.timedelta(milliseconds=1)))


def priorities(engine: Engine, pool) -> list[tuple[str, int]]:
    return [(q.name, q.priority) for q in engine.read_work_queues(pool.id)]


# flows ----------------------------------------------------------------------------------------------
def test_update_flow_replaces_tags_and_answers_whether_it_exists(e):
    flow = e.create_flow("f", tags=["a"])
    assert e.update_flow(flow.id, tags=["b", "c"]) is True
    assert e.read_flow(flow.id).tags == ["b", "c"]
    assert e.count_flows(flow_filter={"tags": {"all_": ["b"]}}) == 1
    assert e.update_flow(e.create_flow("g").id, {}) is True  # nothing given: nothing changes
    assert e.update_flow("00000000-0000-0000-0000-000000000000", tags=[]) is False


def test_update_flow_refuses_fields_prefect_does_not_update(e):
    flow = e.create_flow("f", tags=["a"])
    with pytest.raises(ValidationError, match="name"):
        e.update_flow(flow.id, name="other")
    with pytest.raises(ValidationError, match="tags"):
        e.update_flow(flow.id, tags="not-a-list")
    assert (flow.name, flow.tags) == ("f", ["a"])


# deployments --------------------------------------------------------------------------------------------
def test_update_deployment_sets_given_fields_and_drops_stale_auto_scheduled_runs(e):
    flow = e.create_flow("f")
    dep = e.create_deployment(flow.id, "d", version="1", tags=["x"])
    auto = e.create_flow_run(flow_id=flow.id, deployment_id=dep.id, auto_scheduled=True, state=Scheduled())
    manual = e.create_flow_run(flow_id=flow.id, deployment_id=dep.id, state=Scheduled())
    ran = e.create_flow_run(flow_id=flow.id, deployment_id=dep.id, auto_scheduled=True, run_count=1, state=Scheduled())
    assert e.update_deployment(dep.id, {"version": "2"}, paused=True) is True
    assert (dep.version, dep.paused, dep.tags) == ("2", True, ["x"])  # unset fields kept
    assert e.read_flow_run(auto.id) is None
    assert e.read_flow_run(manual.id) is not None and e.read_flow_run(ran.id) is not None
    assert e.update_deployment("00000000-0000-0000-0000-000000000000", paused=False) is False


def test_update_deployment_concurrency_limit_creates_changes_and_removes_its_global_limit(e):
    dep = e.create_deployment(e.create_flow("f").id, "d")
    e.update_deployment(dep.id, concurrency_limit=2)
    gcl = e.read_concurrency_limit_v2(dep.concurrency_limit_id)
    assert (gcl.name, gcl.limit) == (f"deployment:{dep.id}", 2)
    e.update_deployment(dep.id, concurrency_limit=5)
    assert dep.concurrency_limit_id == gcl.id and gcl.limit == 5
    e.update_deployment(dep.id, description="kept limit")
    assert e.read_concurrency_limit_v2(gcl.id).limit == 5
    e.update_deployment(dep.id, concurrency_limit=None)
    assert dep.concurrency_limit_id is None and e.read_concurrency_limit_v2(gcl.id) is None


def test_update_deployment_concurrency_options(e):
    dep = e.create_deployment(e.create_flow("f").id, "d", concurrency_options={"collision_strategy": "CANCEL_NEW"})
    e.update_deployment(dep.id, version="2")
    assert dep.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    e.update_deployment(dep.id, concurrency_options={"collision_strategy": "ENQUEUE"})
    assert dep.concurrency_options.collision_strategy.value == "ENQUEUE"
    e.update_deployment(dep.id, concurrency_options=None)
    assert dep.concurrency_options is None


def test_update_deployment_work_pool_name_points_at_a_queue_of_that_pool(e):
    pool = e.create_work_pool("p")
    dep = e.create_deployment(e.create_flow("f").id, "d")
    e.update_deployment(dep.id, work_pool_name="p")
    assert dep.work_queue_id == pool.default_queue_id
    e.update_deployment(dep.id, work_pool_name="p", work_queue_name="fresh")  # created on the way
    fresh = next(q for q in e.read_work_queues(pool.id) if q.name == "fresh")
    assert (dep.work_queue_id, dep.work_queue_name) == (fresh.id, "fresh")
    with pytest.raises(ObjectNotFoundError, match="nope"):
        e.update_deployment(dep.id, work_pool_name="nope", version="9")
    assert dep.version is None and dep.work_queue_id == fresh.id


def test_update_deployment_work_queue_name_alone_finds_or_makes_the_queue(e):
    # Prefect 3.1.0 answered this same sequence: without a "default-agent-pool" any
    # pool's queue of that name is taken; an unknown name creates that pool and the
    # queue in it at priority 1; once the pool exists, only its queues count.
    pool = e.create_work_pool("p", type="k8s")
    qq = e.create_work_queue(pool.id, "qq")
    dep = e.create_deployment(e.create_flow("f").id, "d")
    e.update_deployment(dep.id, work_queue_name="qq")
    assert dep.work_queue_id == qq.id
    e.update_deployment(dep.id, work_queue_name="new")
    agent = e.read_work_pool_by_name("default-agent-pool")
    assert agent.type == "prefect-agent" and e.count_work_pools() == 2
    assert [(q.name, q.priority, q.id == dep.work_queue_id) for q in e.read_work_queues(agent.id)] == [
        ("new", 1, True), ("default", 2, False)]
    e.update_deployment(dep.id, work_queue_name="qq")
    assert [(q.name, q.priority, q.id == dep.work_queue_id) for q in e.read_work_queues(agent.id)] == [
        ("qq", 1, True), ("new", 2, False), ("default", 3, False)]
    assert dep.work_queue_name == "qq" and e.read_work_queue(qq.id).work_pool_id == pool.id
    e.update_deployment(dep.id, work_queue_name="default")
    assert dep.work_queue_id == agent.default_queue_id


def test_a_queue_named_default_without_pools_is_the_new_agent_pools_own(e):
    dep = e.create_deployment(e.create_flow("f").id, "d")
    e.update_deployment(dep.id, work_queue_name="default")
    agent = e.read_work_pool_by_name("default-agent-pool")
    assert dep.work_queue_id == agent.default_queue_id and len(e.read_work_queues(agent.id)) == 1


def test_a_deployments_queue_must_exist_on_create_and_upsert(e):
    flow = e.create_flow("f")
    with pytest.raises(ObjectNotFoundError, match="Work queue"):  # Prefect: a foreign key error
        e.create_deployment(flow.id, "d", work_queue_id=uuid.uuid4())
    dep = e.create_deployment(flow.id, "d")
    with pytest.raises(ObjectNotFoundError, match="Work queue"):
        e.create_deployment(flow.id, "d", work_queue_id=uuid.uuid4(), version="2")
    assert (e.count_deployments(), dep.work_queue_id, dep.version) == (1, None, None)


def test_a_renamed_default_queue_still_answers_for_default(e):
    dep = e.create_deployment(e.create_flow("f").id, "d")
    e.update_deployment(dep.id, work_queue_name="default")
    agent = e.read_work_pool_by_name("default-agent-pool")
    e.update_work_queue(agent.default_queue_id, name="renamed")
    e.update_deployment(dep.id, work_queue_name="default")  # Prefect: the pool's default queue, by id
    assert dep.work_queue_id == agent.default_queue_id and len(e.read_work_queues(agent.id)) == 1


@pytest.mark.parametrize("bad", ["", "a/b", "50%", "x&y", "<q>", 5, None])
def test_a_queue_name_follows_prefects_name_rule(e, bad):
    pool = e.create_work_pool("p")
    queue = e.create_work_queue(pool.id, "q")
    with pytest.raises(ValidationError, match="work queue name must be a non-empty string without / % & > <"):
        e.create_work_queue(pool.id, bad)
    with pytest.raises(ValidationError, match=r"work[ _]queue[ .]name must be a"):
        e.update_work_queue(queue.id, name=bad)
    assert [q.name for q in e.read_work_queues(pool.id)] == ["default", "q"]


def test_update_deployment_ignores_empty_job_variables_as_prefect_does(e):
    dep = e.create_deployment(e.create_flow("f").id, "d", job_variables={"image": "a"})
    e.update_deployment(dep.id, job_variables={})
    assert dep.job_variables == {"image": "a"}
    e.update_deployment(dep.id, job_variables={"image": "b"})
    assert dep.job_variables == {"image": "b"}


def test_create_deployment_takes_what_prefects_create_takes(e):
    flow = e.create_flow("f")
    # Prefect's create_deployment has no status (a deployment starts NOT_READY) and
    # wants a dict of job variables; an upsert with an empty one keeps the old.
    with pytest.raises(ValidationError, match="unknown field.*status"):
        e.create_deployment(flow.id, "d", status="READY")
    with pytest.raises(ValidationError, match="deployment.job_variables"):
        e.create_deployment(flow.id, "d", job_variables=None)
    assert e.count_deployments() == 0
    dep = e.create_deployment(flow.id, "d", job_variables={"image": "a"})
    assert e.create_deployment(flow.id, "d", job_variables={}, version="2") is dep
    assert (dep.job_variables, dep.version, dep.status.value) == ({"image": "a"}, "2", "NOT_READY")
    assert e.create_deployment(flow.id, "d", job_variables={"image": "b"}).job_variables == {"image": "b"}
    assert e.create_deployment(flow.id, "fresh", job_variables={}).job_variables == {}


def test_bad_deployment_update_changes_nothing(e):
    flow = e.create_flow("f")
    dep = e.create_deployment(flow.id, "d", version="1")
    auto = e.create_flow_run(flow_id=flow.id, deployment_id=dep.id, auto_scheduled=True, state=Scheduled())
    for bad in ({"name": "renamed"}, {"paused": "yes"}, {"concurrency_limit": -1}, {"concurrency_limit": 0},
                {"concurrency_options": {"collision_strategy": "DROP"}}, {"work_queue_id": "not-a-uuid"},
                {"work_queue_id": "00000000-0000-0000-0000-000000000000", "version": "2"}):
        with pytest.raises((ValidationError, ObjectNotFoundError)):
            e.update_deployment(dep.id, **bad)
    assert (dep.name, dep.version, dep.paused, dep.concurrency_limit_id) == ("d", "1", False, None)
    assert e.read_flow_run(auto.id) is not None


# work pools --------------------------------------------------------------------------------------------------
def test_mark_deployments_ready_and_not_ready_by_id_or_queue():
    clock = ManualClock(T)
    e = Engine(clock)
    flow = e.create_flow("f")
    pool = e.create_work_pool("p")
    a = e.create_deployment(flow.id, "a", work_queue_id=pool.default_queue_id)
    b = e.create_deployment(flow.id, "b")
    c = e.create_deployment(flow.id, "c")
    clock.advance(dt.timedelta(seconds=5))
    e.mark_deployments_ready()  # nothing named: nothing changes
    assert {d.status for d in (a, b, c)} == {"NOT_READY"}
    e.mark_deployments_ready(deployment_ids=[b.id], work_queue_ids=[pool.default_queue_id])
    assert [(d.name, d.status, d.last_polled) for d in (a, b, c)] == [
        ("a", "READY", clock.now()), ("b", "READY", clock.now()), ("c", "NOT_READY", None)]
    assert a.updated == clock.now()
    e.mark_deployments_not_ready(work_queue_ids=[pool.default_queue_id])
    assert [d.status for d in (a, b, c)] == ["NOT_READY", "READY", "NOT_READY"]
    with pytest.raises(ValidationError):
        e.mark_deployments_ready(deployment_ids=["nope"], work_queue_ids=[pool.default_queue_id])
    assert a.status == "NOT_READY"


def test_pausing_a_pool_sets_its_status_and_a_status_event(e):
    pool = e.create_work_pool("p")
    assert pool.status == "NOT_READY" and pool.last_status_event_id is None
    e.update_work_pool(pool.id, is_paused=True, concurrency_limit=3)
    assert (pool.is_paused, pool.status, pool.concurrency_limit) == (True, "PAUSED", 3)
    first_event = pool.last_status_event_id
    assert first_event is not None and pool.last_transitioned_status_at is not None
    e.update_work_pool(pool.id, {"is_paused": False})
    assert (pool.is_paused, pool.status) == (False, "NOT_READY")  # no online workers in the engine
    assert pool.last_status_event_id not in (None, first_event)
    e.update_work_pool(pool.id, description="no status change")
    assert pool.status == "NOT_READY" and pool.description == "no status change"


def test_agent_pools_keep_their_status(e):
    pool = e.create_work_pool("agents", type="prefect-agent")
    before = pool.status
    e.update_work_pool(pool.id, is_paused=True)
    assert pool.is_paused and pool.status == before and pool.last_status_event_id is None


def test_read_and_count_work_pools_by_name_under_filters(e):
    for name, kind in [("b", "process"), ("a", "kubernetes"), ("c", "process")]:
        e.create_work_pool(name, type=kind)
    assert [p.name for p in e.read_work_pools()] == ["a", "b", "c"]
    assert [p.name for p in e.read_work_pools(work_pool_filter={"type": {"any_": ["process"]}})] == ["b", "c"]
    assert [p.name for p in e.read_work_pools(offset=1, limit=1)] == ["b"]
    a = e.read_work_pool_by_name("a")
    assert e.read_work_pools(work_pool_filter={"id": {"any_": [str(a.id)]}}) == [a]
    assert e.count_work_pools() == 3
    assert e.count_work_pools(work_pool_filter={"name": {"any_": ["a", "c", "zz"]}}) == 2
    with pytest.raises(ValidationError, match="colour"):
        e.read_work_pools(work_pool_filter={"colour": {}})
    with pytest.raises(ValidationError):
        e.read_work_pools(limit=-1)

    async def listed():
        async with e.session() as s:
            return ([p.name for p in await models.workers.read_work_pools(s, work_pool_filter={"type": {"any_": ["kubernetes"]}})],
                    await models.workers.count_work_pools(s))
    assert asyncio.run(listed()) == (["a"], 3)


def test_update_work_pool_errors(e):
    pool = e.create_work_pool("p", concurrency_limit=1)
    with pytest.raises(ObjectNotFoundError):
        e.update_work_pool("00000000-0000-0000-0000-000000000000", is_paused=True)
    for bad in ({"concurrency_limit": -1}, {"is_paused": 1}, {"name": "q"}, {"base_job_template": []}):
        with pytest.raises(ValidationError):
            e.update_work_pool(pool.id, **bad)
    assert (pool.concurrency_limit, pool.is_paused, pool.name) == (1, False, "p")



@pytest.mark.parametrize("template, message", [
    ({"x": 1}, "both a `job_configuration` key and a `variables` key"),
    ({"job_configuration": {"image": "{{ image }}"}, "variables": {}}, "both a"),
    ({"job_configuration": {"cmd": "{{ image }} {{ $HOME }}"}, "variables": {"properties": {"image": {}}}},
     r"undeclared variable\(s\) \['\$HOME'\]"),
    ({"job_configuration": {"env": {"A": "{{prefect.variables.a}}"}}, "variables": {"properties": {"b": {}}}},
     "prefect.variables.a"),
])
def test_update_work_pool_checks_the_template_as_prefects_update_does(e, template, message):
    # WorkPoolUpdate's validator; create_work_pool takes a template unchecked, as
    # Prefect's models function does with a core WorkPool (the variables alone, say).
    pool = e.create_work_pool("p", base_job_template={"variables": {"properties": {"image": {}}}})
    with pytest.raises(ValidationError, match=message):
        e.update_work_pool(pool.id, base_job_template=template)
    assert pool.base_job_template == {"variables": {"properties": {"image": {}}}}
    good = {"job_configuration": {"image": "{{ image }}", "n": 2}, "variables": {"properties": {"image": {}}}}
    assert e.update_work_pool(pool.id, base_job_template=good) and pool.base_job_template == good
    assert e.update_work_pool(pool.id, base_job_template={}) and pool.base_job_template == {}


# work queues -----------------------------------------------------------------------------------------------------
def test_queue_priority_update_moves_the_others_as_little_as_needed(e):
    pool = e.create_work_pool("p")
    for name in "abc":
        e.create_work_queue(pool.id, name)
    assert priorities(e, pool) == [("default", 1), ("a", 2), ("b", 3), ("c", 4)]
    c = next(q for q in e.read_work_queues(pool.id) if q.name == "c")
    e.update_work_queue(c.id, priority=2)
    assert priorities(e, pool) == [("default", 1), ("c", 2), ("a", 3), ("b", 4)]
    e.update_work_queue(c.id, priority=9)  # a free number: nobody moves, 2 stays free
    assert priorities(e, pool) == [("default", 1), ("a", 3), ("b", 4), ("c", 9)]
    e.update_work_queue(c.id, priority=3)
    assert priorities(e, pool) == [("default", 1), ("c", 3), ("a", 4), ("b", 5)]


def test_queue_pause_and_unpause_status(e):
    pool = e.create_work_pool("p")
    queue = e.create_work_queue(pool.id, "q")
    e.update_work_queue(queue.id, is_paused=True)
    assert (queue.is_paused, queue.status) == (True, "PAUSED")
    e.update_work_queue(queue.id, is_paused=False)
    assert queue.status == "NOT_READY"
    e.update_work_queue(queue.id, is_paused=True)
    e.update_work_queue(queue.id, is_paused=False, last_polled=T - dt.timedelta(seconds=30))
    assert queue.status == "READY"  # polled within the last minute
    e.update_work_queue(queue.id, is_paused=False)  # not PAUSED: status untouched
    assert queue.status == "READY"


def test_create_work_pool_and_queue_take_what_prefect_takes(e):
    # A pool always gets its own "default" queue (Prefect overwrites any id given);
    # its status must be one of Prefect's; a queue's status is not for the caller to
    # set, and a None description is left out of the insert (the column's "" stays).
    with pytest.raises(ValidationError, match="unknown field.*default_queue_id"):
        e.create_work_pool("p", default_queue_id=uuid.uuid4())
    with pytest.raises(ValidationError, match="work_pool.status must be one of"):
        e.create_work_pool("p", status="BOGUS")
    assert e.count_work_pools() == 0
    agent = e.create_work_pool("agent", type="prefect-agent", status="READY")
    assert agent.status == "READY"
    assert [q.id for q in e.read_work_queues(agent.id)] == [agent.default_queue_id]
    with pytest.raises(ValidationError, match="unknown field.*status"):
        e.create_work_queue(agent.id, "q", status="READY")
    queue = e.create_work_queue(agent.id, "q", description=None)
    assert (queue.description, queue.status) == ("", "NOT_READY")
    with pytest.raises(ValidationError, match="work_queue.description must be a string"):
        e.update_work_queue(queue.id, description=None)
    assert queue.description == ""


def test_update_work_queue_errors_change_nothing(e):
    pool = e.create_work_pool("p")
    queue = e.create_work_queue(pool.id, "q", concurrency_limit=2)
    e.create_work_queue(pool.id, "taken")
    with pytest.raises(UniquenessError):
        e.update_work_queue(queue.id, name="taken", concurrency_limit=5)
    for bad in ({"priority": 0}, {"priority": None}, {"concurrency_limit": -2}, {"is_paused": "no"},
                {"work_pool_id": pool.id}, {"last_polled": "yesterday"}):
        with pytest.raises(ValidationError):
            e.update_work_queue(queue.id, **bad)
    assert (queue.name, queue.concurrency_limit, queue.priority, queue.is_paused) == ("q", 2, 2, False)
    assert e.update_work_queue("00000000-0000-0000-0000-000000000000", is_paused=True) is False
    assert e.update_work_queue(queue.id, name="renamed") and queue.name == "renamed"


def test_failed_update_inside_a_transaction_rolls_back_the_renumbering(e):
    pool = e.create_work_pool("p")
    a = e.create_work_queue(pool.id, "a")
    e.create_work_queue(pool.id, "b")
    before = priorities(e, pool)
    with pytest.raises(RuntimeError):
        with e.transaction():
            e.update_work_queue(a.id, priority=1)
            assert priorities(e, pool)[0] == ("a", 1)
            raise RuntimeError("undo")
    assert priorities(e, pool) == before


def test_bulk_priority_update_places_targets_and_moves_the_others_as_little_as_needed(e):
    pool = e.create_work_pool("p")
    q = {name: e.create_work_queue(pool.id, name) for name in "abcd"}
    assert priorities(e, pool) == [("default", 1), ("a", 2), ("b", 3), ("c", 4), ("d", 5)]
    e.bulk_update_work_queue_priorities(pool.id, {q["d"].id: 1, q["c"].id: 3})
    # d goes before "default" (1), c before b (3); then each queue not above the one
    # before it moves to that one's number + 1.
    assert priorities(e, pool) == [("d", 1), ("default", 2), ("a", 3), ("c", 4), ("b", 5)]
    e.bulk_update_work_queue_priorities(pool.id, {q["a"].id: 7, q["b"].id: 9})  # free numbers: nobody moves
    assert priorities(e, pool) == [("d", 1), ("default", 2), ("c", 4), ("a", 7), ("b", 9)]
    e.bulk_update_work_queue_priorities(pool.id, {})  # nothing to place, nothing to repair
    assert priorities(e, pool) == [("d", 1), ("default", 2), ("c", 4), ("a", 7), ("b", 9)]


def test_bulk_priority_update_keeps_prefects_quirk_and_a_delete_repairs_it(e):
    # A target above every priority at its turn is left out of the renumbering walk,
    # which can then move another queue onto it: Prefect 3.1.0 ends with two queues
    # at 4. Deleting a queue renumbers with no targets, which repairs duplicates.
    pool = e.create_work_pool("p")
    q = {name: e.create_work_queue(pool.id, name) for name in ("q2", "q3", "a", "b")}
    e.bulk_update_work_queue_priorities(pool.id, {q["a"].id: 3, q["b"].id: 4})
    # (equal priorities are listed oldest first, as Prefect's index gives them)
    assert priorities(e, pool) == [("default", 1), ("q2", 2), ("a", 3), ("q3", 4), ("b", 4)]
    e.delete_work_queue(q["q2"].id)
    assert priorities(e, pool) == [("default", 1), ("a", 3), ("q3", 4), ("b", 5)]
    with pytest.raises(ValidationError, match="default queue"):  # it goes only with its pool
        e.delete_work_queue(pool.default_queue_id)
    assert priorities(e, pool) == [("default", 1), ("a", 3), ("q3", 4), ("b", 5)]


def test_bad_bulk_priority_updates_change_nothing(e):
    pool = e.create_work_pool("p")
    a, b = e.create_work_queue(pool.id, "a"), e.create_work_queue(pool.id, "b")
    before = priorities(e, pool)
    for bad, needle in (({a.id: 1, b.id: 1}, "duplicate"), ({a.id: 0}, "priority"), ({a.id: None}, "priority"),
                        ({a.id: "1"}, "priority"), ({"not-a-uuid": 1}, "new_priorities key"),
                        ([(a.id, 1)], "new_priorities")):
        with pytest.raises(ValidationError, match=needle):
            e.bulk_update_work_queue_priorities(pool.id, bad)
    with pytest.raises(ValidationError, match="work_pool_id"):
        e.bulk_update_work_queue_priorities("nope", {a.id: 1})
    assert priorities(e, pool) == before
    other = e.create_work_pool("other")
    e.bulk_update_work_queue_priorities(other.id, {a.id: 1})  # not that pool's queue: ignored
    e.bulk_update_work_queue_priorities("00000000-0000-0000-0000-000000000000", {a.id: 1})  # no pool: no-op
    assert priorities(e, pool) == before


def test_bulk_priority_update_through_the_facade():
    engine = Engine(ManualClock(T))
    pool = engine.create_work_pool("p")
    a = engine.create_work_queue(pool.id, "a")

    async def main():
        async with engine.session() as s:
            await models.workers.bulk_update_work_queue_priorities(s, pool.id, {str(a.id): 1})

    asyncio.run(main())
    assert priorities(engine, pool) == [("a", 1), ("default", 2)]


# get_scheduled_flow_runs -------------------------------------------------------------------------------------------
def polled(engine: Engine, **kwargs) -> list[tuple[str, str, str]]:
    out = []
    for row in engine.get_scheduled_flow_runs(**kwargs):
        pool = engine.read_work_pool(row.work_pool_id)
        queue = engine.read_work_queue(row.work_queue_id)
        assert row.flow_run.work_queue_id == queue.id and queue.work_pool_id == pool.id
        out.append((pool.name, queue.name, row.flow_run.name))
    return out


def scheduled(engine, flow, queue, name, seconds, state=None):
    return engine.create_flow_run(flow_id=flow.id, work_queue_id=queue.id, name=name,
                                  state=state or Scheduled(scheduled_time=T + dt.timedelta(seconds=seconds)))


def test_poll_respects_pool_and_queue_limits_counting_pending_and_running(e):
    flow = e.create_flow("f")
    pool = e.create_work_pool("p", concurrency_limit=3)
    fast = e.create_work_queue(pool.id, "fast", concurrency_limit=1)
    default = e.read_work_queue(pool.default_queue_id)
    for i in range(3):
        scheduled(e, flow, fast, f"fast{i}", i)
        scheduled(e, flow, default, f"slow{i}", 10 + i)
    scheduled(e, flow, default, "busy", 0, Running())
    e.create_flow_run(flow_id=flow.id, work_queue_id=default.id, name="done", state=Completed())
    # default (priority 1) first, then fast (1 free slot); the pool has 3 - 1 busy = 2 free.
    assert polled(e) == [("p", "default", "slow0"), ("p", "default", "slow1")]
    assert polled(e, respect_queue_priorities=False) == [("p", "fast", "fast0"), ("p", "default", "slow0")]
    e.update_work_pool(pool.id, concurrency_limit=None)
    assert polled(e) == [("p", "default", "slow0"), ("p", "default", "slow1"), ("p", "default", "slow2"),
                         ("p", "fast", "fast0")]
    e.set_flow_run_state(e.read_flow_runs(flow_run_filter={"name": {"any_": ["fast0"]}})[0].id, Pending())
    assert [r for r in polled(e) if r[1] == "fast"] == []  # the queue's one slot is taken


def test_poll_skips_paused_pools_and_queues_and_honours_bounds_and_limit(e):
    flow = e.create_flow("f")
    p1, p2 = e.create_work_pool("p1"), e.create_work_pool("p2")
    q1 = e.read_work_queue(p1.default_queue_id)
    q2 = e.read_work_queue(p2.default_queue_id)
    extra = e.create_work_queue(p2.id, "extra")
    for i in range(4):
        scheduled(e, flow, q1, f"a{i}", 10 * i)
        scheduled(e, flow, q2, f"b{i}", 10 * i + 5)
    scheduled(e, flow, extra, "x0", 1)
    # Bounds are inclusive; each pool's rank 1 comes first (by time), then rank 2, ...
    assert polled(e, scheduled_before=T + dt.timedelta(seconds=10), scheduled_after=T + dt.timedelta(seconds=5)) == [
        ("p2", "default", "b0"), ("p1", "default", "a1")]
    assert polled(e, scheduled_before=T + dt.timedelta(seconds=10), scheduled_after=T + dt.timedelta(seconds=5),
                  work_pool_ids=[p2.id]) == [("p2", "default", "b0")]
    assert polled(e, limit=3) == [("p1", "default", "a0"), ("p2", "default", "b0"), ("p1", "default", "a1")]
    assert polled(e, work_queue_ids=[extra.id]) == [("p2", "extra", "x0")]
    e.update_work_queue(q2.id, is_paused=True)
    assert {r[1] for r in polled(e, work_pool_ids=[p2.id])} == {"extra"}
    e.update_work_pool(p1.id, is_paused=True)
    assert {r[0] for r in polled(e)} == {"p2"}


def test_poll_argument_errors(e):
    for bad in ({"limit": -1}, {"work_pool_ids": "abc"}, {"work_queue_ids": ["nope"]},
                {"scheduled_before": "soon"}, {"respect_queue_priorities": "yes"}):
        with pytest.raises(ValidationError):
            e.get_scheduled_flow_runs(**bad)


def test_facade_updates_and_poll():
    engine = Engine(ManualClock(T))

    async def main():
        async with engine.session() as s:
            flow = await models.flows.create_flow(s, {"name": "f"})
            assert await models.flows.update_flow(s, flow.id, {"tags": ["t"]})
            pool = await models.workers.create_work_pool(s, {"name": "p"})
            queue = await models.workers.create_work_queue(s, pool.id, {"name": "q"})
            assert await models.workers.update_work_queue(s, queue.id, {"priority": 1, "concurrency_limit": 4})
            assert await models.workers.update_work_pool(s, pool.id, {"concurrency_limit": 2})
            dep = await models.deployments.create_deployment(s, {"flow_id": flow.id, "name": "d"})
            assert await models.deployments.update_deployment(s, dep.id, {"work_pool_name": "p", "work_queue_name": "q"})
            run = await models.flow_runs.create_flow_run(
                s, {"flow_id": flow.id, "work_queue_id": dep.work_queue_id, "state": Scheduled(scheduled_time=T)})
            rows = await models.workers.get_scheduled_flow_runs(s, work_pool_ids=[pool.id])
            return flow, queue, run, rows

    flow, queue, run, rows = asyncio.run(main())
    assert flow.tags == ["t"] and queue.priority == 1 and queue.concurrency_limit == 4
    assert [(r.work_queue_id, r.flow_run.id) for r in rows] == [(queue.id, run.id)]


def test_facade_status_change_callbacks_and_default_status():
    engine = Engine(ManualClock(T))
    pool = engine.create_work_pool("p")
    agent = engine.create_work_pool("a", type="prefect-agent")
    queue = engine.create_work_queue(pool.id, "q")
    pool_events, queue_events = [], []

    async def on_pool(**event):
        pool_events.append(event)

    async def on_queue(wq):
        queue_events.append((wq.name, wq.status))

    async def main():
        async with engine.session() as s:
            W = models.workers
            await W.update_work_pool(s, pool.id, {"description": "x"}, emit_status_change=on_pool)  # no status
            await W.update_work_pool(s, pool.id, {"is_paused": True}, emit_status_change=on_pool)
            await W.update_work_pool(s, agent.id, {"is_paused": True}, emit_status_change=on_pool)  # agents: none
            await W.update_work_queue(s, queue.id, {"is_paused": True}, emit_status_change=on_queue)
            await W.update_work_queue(s, queue.id, {"is_paused": True}, emit_status_change=on_queue)  # already
            await W.update_work_queue(s, queue.id, {"is_paused": False}, emit_status_change=on_queue,
                                      default_status="READY")

    asyncio.run(main())
    assert [(e["pre_update_work_pool"].status, e["work_pool"].status) for e in pool_events] == [("NOT_READY", "PAUSED")]
    event = pool_events[0]
    assert event["event_id"] == pool.last_status_event_id and event["occurred"] == pool.last_transitioned_status_at
    assert event["work_pool"] is pool and event["pre_update_work_pool"] is not pool
    assert queue_events == [("q", "PAUSED"), ("q", "READY")]


def test_default_status_for_an_unpaused_queue_not_polled_lately(e):
    pool = e.create_work_pool("p")
    queue = e.create_work_queue(pool.id, "q", is_paused=True)
    with pytest.raises(ValidationError, match="default_status"):
        e.update_work_queue(queue.id, is_paused=False, default_status="BUSY")
    assert queue.is_paused
    e.update_work_queue(queue.id, is_paused=True)
    assert e.update_work_queue(queue.id, is_paused=False, default_status="READY") and queue.status == "READY"


# A brute-force reading of Prefect's SQL (get-runs-from-worker-queues.sql), scanning
# everything, to check the engine's index-backed answer on random data.
def reference_poll(engine: Engine, pool_ids=None, queue_ids=None, before=None, after=None, limit=None,
                   respect=True) -> list:
    cap = 1000
    limit = cap if limit is None else limit
    pools = engine._store.tables["work_pool"].rows.values()
    queues = engine._store.tables["work_queue"].rows.values()
    runs = engine._store.tables["flow_run"].rows.values()

    def busy(qids):
        return sum(1 for r in runs if r.work_queue_id in qids and r.state_type is not None
                   and r.state_type.value in ("PENDING", "RUNNING"))

    rows = []
    for pool in pools:
        if pool.is_paused or (pool_ids and pool.id not in pool_ids):
            continue
        members = [q for q in queues if q.work_pool_id == pool.id]
        pool_free = cap if pool.concurrency_limit is None else max(0, pool.concurrency_limit - busy({q.id for q in members}))
        in_pool = []
        for q in members:
            if q.is_paused or (queue_ids and q.id not in queue_ids):
                continue
            q_free = cap if q.concurrency_limit is None else max(0, q.concurrency_limit - busy({q.id}))
            mine = sorted((r for r in runs if r.work_queue_id == q.id and r.state_type is not None
                           and r.state_type.value == "SCHEDULED"
                           and (after is None or r.next_scheduled_start_time >= after)
                           and (before is None or r.next_scheduled_start_time <= before)),
                          key=lambda r: r.next_scheduled_start_time)
            in_pool += [(q.priority if respect else 0, r, q) for r in mine[:min(q_free, cap)]]
        in_pool.sort(key=lambda x: (x[0], x[1].next_scheduled_start_time))
        rows += [(rank if respect else 0, r.next_scheduled_start_time, pool.name, q.name, r.name)
                 for rank, (_, r, q) in enumerate(in_pool, 1) if rank <= min(pool_free, cap)]
    rows.sort(key=lambda x: (x[0], x[1]))
    return [x[2:] for x in rows[:limit]]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_poll_matches_a_brute_force_reading_of_prefects_query(data):
    engine = Engine(ManualClock(T, tick=dt.timedelta(milliseconds=1)))
    flow = engine.create_flow("f")
    draw = data.draw
    all_queues = []
    for p in range(draw(st.integers(1, 3))):
        pool = engine.create_work_pool(f"p{p}", concurrency_limit=draw(st.none() | st.integers(0, 4)),
                                       is_paused=draw(st.sampled_from([False, False, True])))
        all_queues.append(engine.read_work_queue(pool.default_queue_id))
        for q in range(draw(st.integers(0, 2))):
            all_queues.append(engine.create_work_queue(
                pool.id, f"q{q}", priority=draw(st.none() | st.integers(1, 4)),
                concurrency_limit=draw(st.none() | st.integers(0, 3)), is_paused=draw(st.sampled_from([False, False, True]))))
    offsets = draw(st.lists(st.integers(-300, 300), min_size=4, max_size=25, unique=True))
    kinds = {"S": lambda: None, "P": Pending, "R": Running, "C": Completed}
    for i, offset in enumerate(offsets):
        queue = draw(st.sampled_from(all_queues))
        kind = draw(st.sampled_from("SSSSPRC"))
        scheduled(engine, flow, queue, f"r{i}", offset, kinds[kind]())
    pool_ids = draw(st.none() | st.none() | st.sets(st.sampled_from(sorted({q.work_pool_id for q in all_queues}, key=str))))
    queue_ids = draw(st.none() | st.none() | st.sets(st.sampled_from([q.id for q in all_queues])))
    before = draw(st.none() | st.integers(-100, 300).map(lambda s: T + dt.timedelta(seconds=s)))
    after = draw(st.none() | st.integers(-300, 100).map(lambda s: T + dt.timedelta(seconds=s)))
    limit = draw(st.none() | st.integers(0, 8))
    respect = draw(st.sampled_from([None, True, False]))
    def poll_agrees() -> None:
        got = polled(engine, work_pool_ids=pool_ids, work_queue_ids=queue_ids, scheduled_before=before,
                     scheduled_after=after, limit=limit, respect_queue_priorities=respect)
        assert got == reference_poll(engine, pool_ids, queue_ids, before, after, limit, respect is not False)

    poll_agrees()
    # The first poll of a limited pool or queue built the busy-runs index; it follows
    # every later write, a rolled-back transaction's included.
    used = set(offsets)
    for step in range(draw(st.integers(0, 6))):
        # (by name: the engine's own order follows random ids, which would make the
        # draws differ when hypothesis replays an example)
        runs = sorted(engine.read_flow_runs(), key=lambda r: r.name)
        kind = draw(st.sampled_from(["state", "state", "delete", "create", "rollback"]))
        if kind == "create" or not runs:
            # A time no other run has: the poll breaks ties between equal times by id.
            offset = draw(st.integers(-300, 300).filter(lambda s: s not in used))
            used.add(offset)
            scheduled(engine, flow, draw(st.sampled_from(all_queues)), f"n{step}", offset,
                      draw(st.sampled_from([None, Pending(), Running()])))
        elif kind == "delete":
            engine.delete_flow_run(draw(st.sampled_from(runs)).id)
        else:
            try:
                with engine.transaction():
                    for run in draw(st.lists(st.sampled_from(runs), min_size=1, max_size=3, unique_by=id)):
                        new = draw(st.sampled_from([Pending, Running, Completed]))()
                        engine.set_flow_run_state(run.id, new, force=True)
                    if kind == "rollback":
                        raise ZeroDivisionError
            except ZeroDivisionError:
                pass
        poll_agrees()
    check_indexes(engine)


# workers ----------------------------------------------------------------------------------------------
def beat(engine: Engine, pool, *names: str, interval=None) -> None:
    for name in names:
        engine.worker_heartbeat(pool.id, name, interval)


def workers(engine: Engine, pool, **kwargs) -> list[str]:
    return [w.name for w in engine.read_workers(pool.id, **kwargs)]


def test_first_heartbeat_creates_the_worker_and_later_ones_update_it():
    clock = ManualClock(T)
    e = Engine(clock)
    pool = e.create_work_pool("p")
    assert e.worker_heartbeat(pool.id, "w", 30) is True
    [w] = e.read_workers(pool.id)
    assert isinstance(w, Worker)
    assert (w.name, w.work_pool_id, w.status, w.heartbeat_interval_seconds) == ("w", pool.id, "ONLINE", 30)
    assert w.last_heartbeat_time == w.created == w.updated == T
    clock.advance(10)
    assert e.worker_heartbeat(pool.id, "w") is True  # the interval is kept when not given
    assert (w.last_heartbeat_time, w.heartbeat_interval_seconds) == (T + dt.timedelta(seconds=10), 30)
    assert w.created == w.updated == T  # Prefect's upsert leaves `updated` alone
    clock.advance(10)
    e.worker_heartbeat(pool.id, "w", heartbeat_interval_seconds=0)
    assert w.heartbeat_interval_seconds == 0 and len(e.read_workers(pool.id)) == 1
    assert Worker(name="x", work_pool_id=pool.id).status == "OFFLINE"  # the column default


def test_workers_are_per_pool_and_any_string_names_one():
    e = Engine(ManualClock(T))
    p, q = e.create_work_pool("p"), e.create_work_pool("q")
    beat(e, p, "w", "")
    beat(e, q, "w")
    assert sorted(workers(e, p)) == ["", "w"] and workers(e, q) == ["w"]
    assert e.delete_worker(p.id, "w") is True and e.delete_worker(p.id, "w") is False
    assert workers(e, p) == [""] and workers(e, q) == ["w"]


def test_read_workers_latest_heartbeat_first_ties_newest_worker_first():
    clock = ManualClock(T)
    e = Engine(clock)
    pool = e.create_work_pool("p")
    beat(e, pool, "b", "a", "d", "c")  # one instant: newest worker first, as Prefect's rowid order
    assert workers(e, pool) == ["c", "d", "a", "b"]
    clock.advance(5)
    beat(e, pool, "a")
    assert workers(e, pool) == ["a", "c", "d", "b"]
    clock.advance(5)
    beat(e, pool, "c", "b", "a", "d")  # ties again: the order of creation decides, not of heartbeats
    assert workers(e, pool) == ["c", "d", "a", "b"]
    assert workers(e, pool, limit=2) == ["c", "d"] and workers(e, pool, offset=1) == ["d", "a", "b"]
    assert workers(e, pool, limit=1, offset=2) == ["a"] and workers(e, pool, limit=0) == []
    assert workers(e, pool, offset=9) == [] and e.read_workers(pool.id, None, 2, 1) == e.read_workers(pool.id)[1:3]


def test_ties_follow_creation_time_on_a_ticking_clock_even_after_a_rolled_back_delete():
    clock = ManualClock(T, tick=dt.timedelta(milliseconds=1))
    e = Engine(clock)
    pool = e.create_work_pool("p")
    beat(e, pool, "a", "b", "c")
    now = clock.now()
    clock.set(now)
    for w in e.read_workers(pool.id):  # one heartbeat time for all three, creation times apart
        with e.transaction():
            e._store.touch("worker", w)
            w.last_heartbeat_time = now
    with pytest.raises(RuntimeError):
        with e.transaction():
            e.delete_work_pool(pool.id)  # restores the workers in reverse order of their deletes
            raise RuntimeError
    assert workers(e, pool) == ["c", "b", "a"]


class StrStatus(str, enum.Enum):
    ONLINE = "ONLINE"


class PlainStatus(enum.Enum):
    ONLINE = "ONLINE"


def test_worker_filters_typed_and_json():
    clock = ManualClock(T)
    e = Engine(clock)
    pool = e.create_work_pool("p")
    for name in "abc":
        beat(e, pool, name)
        clock.advance(10)
    t10 = T + dt.timedelta(seconds=10)
    cases = [
        ({"last_heartbeat_time": {"before_": t10}}, ["b", "a"]),  # inclusive bounds
        ({"last_heartbeat_time": {"after_": t10.isoformat()}}, ["c", "b"]),
        ({"last_heartbeat_time": {"after_": "2024-06-01T12:00:10", "before_": "2024-06-01T12:00:10"}}, ["b"]),
        ({"status": {"any_": ["ONLINE"]}}, ["c", "b", "a"]),
        ({"status": {"any_": ["OFFLINE"]}}, []),
        ({"status": {"any_": []}}, []),
        ({"status": {"not_any_": []}}, ["c", "b", "a"]),
        ({"status": {"not_any_": ["ONLINE"]}}, []),
        ({"operator": "or_", "status": {"any_": []}, "last_heartbeat_time": {"after_": T + dt.timedelta(seconds=20)}},
         ["c"]),
        ({"operator": "or_", "status": {}, "last_heartbeat_time": {"after_": T + dt.timedelta(seconds=20)}},
         ["c", "b", "a"]),  # an empty criterion is TRUE, as Prefect's SQL has it
        ({}, ["c", "b", "a"]),
        # a status enum's member, str-based like Prefect's WorkerStatus or not
        ({"status": {"any_": [StrStatus.ONLINE]}}, ["c", "b", "a"]),
        ({"status": {"any_": [PlainStatus.ONLINE]}}, ["c", "b", "a"]),
        ({"status": {"not_any_": [PlainStatus.ONLINE]}}, []),
    ]
    for flt, expected in cases:
        assert workers(e, pool, worker_filter=flt) == expected, flt
    typed = WorkerFilter(last_heartbeat_time=WorkerFilterLastHeartbeatTime(before_=t10),
                         status=WorkerFilterStatus(not_any_=["OFFLINE"]))
    assert workers(e, pool, worker_filter=typed) == ["b", "a"]
    assert workers(e, pool, worker_filter=WorkerFilter(operator="or_", status=WorkerFilterStatus(any_=[]),
                                                       last_heartbeat_time=WorkerFilterLastHeartbeatTime(
                                                           after_=T + dt.timedelta(seconds=20)))) == ["c"]


# Each bad call names its culprit and changes nothing.
BAD_WORKER_CALLS = [
    (lambda e, pool: e.worker_heartbeat("nope", "w"), ValidationError, "work_pool_id"),
    (lambda e, pool: e.worker_heartbeat(pool.id, 5), ValidationError, "worker_name"),
    (lambda e, pool: e.worker_heartbeat(pool.id, None), ValidationError, "worker_name"),
    (lambda e, pool: e.worker_heartbeat(pool.id, "w", "30"), ValidationError, "heartbeat_interval_seconds"),
    (lambda e, pool: e.worker_heartbeat(pool.id, "w", True), ValidationError, "heartbeat_interval_seconds"),
    (lambda e, pool: e.worker_heartbeat(pool.id, "w", 2.5), ValidationError, "heartbeat_interval_seconds"),
    (lambda e, pool: e.worker_heartbeat(pool.id, "w", mark_pool_ready="yes"), ValidationError, "mark_pool_ready"),
    (lambda e, pool: e.worker_heartbeat(uuid.uuid4(), "w"), ObjectNotFoundError, "Work pool"),
    (lambda e, pool: e.read_workers("nope"), ValidationError, "work_pool_id"),
    (lambda e, pool: e.read_workers(pool.id, limit=-1), ValidationError, "limit"),
    (lambda e, pool: e.read_workers(pool.id, offset=-1), ValidationError, "offset"),
    (lambda e, pool: e.read_workers(pool.id, limit="2"), ValidationError, "limit"),
    (lambda e, pool: e.read_workers(pool.id, {"status": {"any_": ["BUSY"]}}), ValidationError,
     r"worker_filter\.status\.any_\[0\]"),
    (lambda e, pool: e.read_workers(pool.id, {"status": {"any_": "ONLINE"}}), ValidationError,
     "worker_filter.status.any_"),
    (lambda e, pool: e.read_workers(pool.id, {"name": {"any_": ["w"]}}), ValidationError, "worker_filter.name"),
    (lambda e, pool: e.read_workers(pool.id, {"last_heartbeat_time": {"before_": "soon"}}), ValidationError,
     "worker_filter.last_heartbeat_time.before_"),
    (lambda e, pool: e.read_workers(pool.id, {"last_heartbeat_time": {"is_null_": True}}), ValidationError,
     "is_null_"),
    (lambda e, pool: e.read_workers(pool.id, {"operator": "xor_"}), ValidationError, "worker_filter.operator"),
    (lambda e, pool: e.read_workers(pool.id, "ONLINE"), ValidationError, "worker_filter"),
    (lambda e, pool: e.delete_worker("nope", "w"), ValidationError, "work_pool_id"),
    (lambda e, pool: e.delete_worker(pool.id, 1), ValidationError, "worker_name"),
    (lambda e, pool: WorkerFilterStatus(any_=["online"]), ValidationError, "unknown worker status"),
]


@pytest.fixture
def one_worker():
    e = Engine(ManualClock(T))
    pool = e.create_work_pool("p")
    beat(e, pool, "w", interval=5)
    return e, pool


def _worker_rows(e, pool):
    return [(w.name, w.heartbeat_interval_seconds, w.last_heartbeat_time) for w in e.read_workers(pool.id)]


@pytest.mark.parametrize("call, error, match", BAD_WORKER_CALLS)
def test_worker_argument_errors_name_the_culprit_and_change_nothing(one_worker, call, error, match):
    e, pool = one_worker
    before = _worker_rows(e, pool)
    with pytest.raises(error, match=match):
        call(e, pool)
    assert _worker_rows(e, pool) == before
    assert len(e._store.tables["worker"].rows) == 1 and pool.status == "NOT_READY"


def test_worker_calls_on_an_unknown_pool_answer_as_prefect_does(one_worker):
    e, pool = one_worker
    assert e.read_workers(uuid.uuid4()) == [] and e.delete_worker(uuid.uuid4(), "w") is False
    assert len(e._store.tables["worker"].rows) == 1 and pool.status == "NOT_READY"


def test_worker_calls_roll_back_with_their_transaction():
    clock = ManualClock(T)
    e = Engine(clock)
    pool = e.create_work_pool("p")
    beat(e, pool, "a", interval=5)
    clock.advance(1)
    a = e.read_workers(pool.id)[0]
    with pytest.raises(RuntimeError):
        with e.transaction():
            beat(e, pool, "a", interval=50)
            beat(e, pool, "b")
            e.worker_heartbeat(pool.id, "c", mark_pool_ready=True)
            assert pool.status == "READY" and workers(e, pool) == ["c", "b", "a"]
            assert e.delete_worker(pool.id, "b")
            raise RuntimeError
    assert workers(e, pool) == ["a"] and e.read_workers(pool.id)[0] is a
    assert (a.last_heartbeat_time, a.heartbeat_interval_seconds) == (T, 5)
    assert (pool.status, pool.last_status_event_id, pool.last_transitioned_status_at) == ("NOT_READY", None, None)
    with pytest.raises(RuntimeError):
        with e.transaction():
            assert e.delete_work_pool(pool.id)
            assert e.read_workers(pool.id) == []
            raise RuntimeError
    assert workers(e, pool) == ["a"]
    # A failed call inside a transaction is undone on its own.
    with e.transaction():
        beat(e, pool, "b")
        with pytest.raises(ValidationError):
            e.worker_heartbeat(pool.id, "c", "x")
    assert workers(e, pool) == ["b", "a"]


def test_deleting_a_pool_deletes_its_workers_only():
    e = Engine(ManualClock(T))
    p, q = e.create_work_pool("p"), e.create_work_pool("q")
    beat(e, p, "a", "b")
    beat(e, q, "a")
    assert e.delete_work_pool(p.id) is True
    assert e.read_workers(p.id) == [] and workers(e, q) == ["a"] and len(e._store.tables["worker"].rows) == 1
    with pytest.raises(ObjectNotFoundError):
        e.worker_heartbeat(p.id, "a")  # the pool is gone
    again = e.create_work_pool("p")  # a new pool of that name starts with no workers
    assert e.read_workers(again.id) == []


def test_unpausing_a_pool_sets_ready_when_a_worker_is_online():
    clock = ManualClock(T)
    e = Engine(clock)
    pool = e.create_work_pool("p", is_paused=True)
    agent = e.create_work_pool("a", type="prefect-agent")
    e.update_work_pool(pool.id, is_paused=False)
    assert pool.status == "NOT_READY"  # no worker
    beat(e, pool, "w")
    assert pool.status == "NOT_READY"  # Prefect's models-layer heartbeat leaves the pool alone
    clock.advance(1)
    e.update_work_pool(pool.id, is_paused=True)
    e.update_work_pool(pool.id, is_paused=False)
    assert pool.status == "READY" and pool.last_transitioned_status_at == T + dt.timedelta(seconds=1)
    e.update_work_pool(pool.id, is_paused=False)  # an unpaused pool unpaused again: READY again
    assert pool.status == "READY"
    e.delete_worker(pool.id, "w")
    e.update_work_pool(pool.id, is_paused=False)
    assert pool.status == "NOT_READY"
    beat(e, agent, "w")
    e.update_work_pool(agent.id, is_paused=False)
    assert agent.status == "NOT_READY"  # agent pools keep their status


def test_mark_pool_ready_does_what_prefects_heartbeat_route_adds():
    clock = ManualClock(T)
    e = Engine(clock)
    pool = e.create_work_pool("p")
    paused = e.create_work_pool("q", is_paused=True)
    clock.advance(3)
    assert e.worker_heartbeat(pool.id, "w", mark_pool_ready=True) is True
    assert pool.status == "READY" and pool.last_transitioned_status_at == T + dt.timedelta(seconds=3)
    event = pool.last_status_event_id
    assert event is not None
    clock.advance(3)
    e.worker_heartbeat(pool.id, "w", mark_pool_ready=True)  # already READY: no new transition
    assert pool.last_status_event_id == event and pool.last_transitioned_status_at == T + dt.timedelta(seconds=3)
    e.worker_heartbeat(paused.id, "w", mark_pool_ready=True)
    assert paused.status == "PAUSED"  # only NOT_READY pools


def test_worker_facade_matches_the_engine():
    clock = ManualClock(T)
    engine = Engine(clock)
    pool = engine.create_work_pool("p")

    class PydanticLikeFilter:  # what as_filter sees of a Prefect WorkerFilter
        def model_dump(self, exclude_unset=False, mode="python"):
            after = (T + dt.timedelta(seconds=1)).isoformat()
            return {"status": {"any_": ["ONLINE"]}, "last_heartbeat_time": {"after_": after}}

    async def main():
        async with engine.session() as s:
            W = models.workers
            assert await W.worker_heartbeat(s, pool.id, "a", heartbeat_interval_seconds=10) is True
            clock.advance(1)
            assert await W.worker_heartbeat(session=s, work_pool_id=pool.id, worker_name="b") is True
            everyone = await W.read_workers(s, pool.id)
            filtered = await W.read_workers(s, pool.id, worker_filter=PydanticLikeFilter())
            paged = await W.read_workers(s, pool.id, None, 1, 1)
            deleted = await W.delete_worker(s, pool.id, "a"), await W.delete_worker(s, pool.id, "a")
            with pytest.raises(ValidationError, match="worker_heartbeat.*unknown parameter"):
                await W.worker_heartbeat(s, pool.id, "a", mark_pool_ready=True)
            with pytest.raises(ObjectNotFoundError):
                await W.worker_heartbeat(s, uuid.uuid4(), "a")
            return everyone, filtered, paged, deleted

    everyone, filtered, paged, deleted = asyncio.run(main())
    assert [w.name for w in everyone] == ["b", "a"] and everyone[1].heartbeat_interval_seconds == 10
    assert [w.name for w in filtered] == ["b"] and [w.name for w in paged] == ["a"]
    assert deleted == (True, False) and workers(engine, pool) == ["b"]
    assert pool.status == "NOT_READY"  # the facade mirrors the models layer


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_read_workers_matches_a_brute_force_reading_of_prefects_query(data):
    """read_workers against Prefect's SQL read literally: the pool's rows in creation
    (rowid) order, the filter's WHERE, ORDER BY last_heartbeat_time DESC walking the
    index backwards (ties: the higher rowid first), then OFFSET and LIMIT."""
    clock = ManualClock(T)
    e = Engine(clock)
    pools = [e.create_work_pool(f"p{i}") for i in range(2)]
    created: list = []  # (pool id, name) in creation order, as Prefect's rowids
    for _ in range(data.draw(st.integers(0, 25))):
        clock.advance(data.draw(st.sampled_from([0, 0, 1, 2])))
        pool = data.draw(st.sampled_from(pools))
        name = data.draw(st.sampled_from("abcdef"))
        if data.draw(st.integers(0, 5)) == 0:
            if e.delete_worker(pool.id, name):
                created.remove((pool.id, name))
            continue
        e.worker_heartbeat(pool.id, name, data.draw(st.none() | st.integers(0, 60)))
        if (pool.id, name) not in created:
            created.append((pool.id, name))
    instants = [T + dt.timedelta(seconds=s) for s in range(0, 30)]
    flt = {}
    if data.draw(st.booleans()):
        flt["operator"] = data.draw(st.sampled_from(["and_", "or_"]))
    if data.draw(st.booleans()):
        flt["last_heartbeat_time"] = {k: data.draw(st.sampled_from(instants)) for k in ("before_", "after_")
                                      if data.draw(st.booleans())}
    if data.draw(st.booleans()):
        flt["status"] = {k: data.draw(st.lists(st.sampled_from(["ONLINE", "OFFLINE"]), max_size=2))
                         for k in ("any_", "not_any_") if data.draw(st.booleans())}
    limit = data.draw(st.none() | st.integers(0, 5))
    offset = data.draw(st.none() | st.integers(0, 4))
    pool = data.draw(st.sampled_from(pools))

    rows = [w for pid, name in created if pid == pool.id
            for w in e.read_workers(pool.id) if w.name == name]  # creation order

    def criteria(w):
        out = []
        bounds = flt.get("last_heartbeat_time")
        if bounds is not None:
            parts = [w.last_heartbeat_time <= v if k == "before_" else w.last_heartbeat_time >= v
                     for k, v in bounds.items()]
            out.append(all(parts))
        status = flt.get("status")
        if status is not None:
            parts = [(w.status in v) if k == "any_" else (w.status not in v) for k, v in status.items()]
            out.append(all(parts))
        return out

    def keep(w):
        found = criteria(w)
        if not found:
            return True
        return any(found) if flt.get("operator") == "or_" else all(found)

    ordered = sorted(reversed([w for w in rows if keep(w)]), key=lambda w: w.last_heartbeat_time, reverse=True)
    start = offset or 0
    expected = ordered[start:None if limit is None else start + limit]
    assert [w.name for w in e.read_workers(pool.id, flt, limit, offset)] == [w.name for w in expected]
