"""The Prefect-shaped async facade (engine.models): the same scenarios through the
engine API and through the facade must give the same answers; bad input fails
clearly and changes nothing."""
from __future__ import annotations

import asyncio
import inspect
from datetime import timedelta
from typing import Any

import pytest

from engine import (
    Completed,
    Engine,
    Failed,
    ManualClock,
    Pending,
    Running,
    Scheduled,
    TransactionError,
    ValidationError,
    models,
)
from engine.models.session import Session
from engine.orchestration import CoreFlowPolicy, CoreTaskPolicy


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# Two adapters with one vocabulary: scenarios are written once and run on both. ---------------
class EngineAPI:
    def __init__(self, engine: Engine) -> None:
        self.e = engine

    async def create_flow(self, name):
        return self.e.create_flow(name=name)

    async def create_deployment(self, flow_id, name, limit):
        return self.e.create_deployment(flow_id, name, concurrency_limit=limit)

    async def create_flow_run(self, fields):
        return self.e.create_flow_run(fields)

    async def create_task_run(self, fields):
        return self.e.create_task_run(fields)

    async def set_flow(self, run_id, state, policy):
        return self.e.set_flow_run_state(run_id, state, flow_policy=policy)

    async def set_task(self, run_id, state, policy):
        return self.e.set_task_run_state(run_id, state, task_policy=policy)

    async def flow_states(self, run_id):
        return self.e.read_flow_run_states(run_id)

    async def task_states(self, run_id):
        return self.e.read_task_run_states(run_id)

    async def read_flow_run(self, run_id):
        return self.e.read_flow_run(run_id)

    async def read_flow_runs(self, **kw):
        return self.e.read_flow_runs(**kw)

    async def count_flow_runs(self, **kw):
        return self.e.count_flow_runs(**kw)

    async def read_task_runs(self, **kw):
        return self.e.read_task_runs(**kw)

    async def count_task_runs(self, **kw):
        return self.e.count_task_runs(**kw)

    async def count_task_runs_by_state(self, **kw):
        return self.e.count_task_runs_by_state(**kw)

    async def update_flow_run(self, run_id, fields):
        return self.e.update_flow_run(run_id, fields)

    async def delete_flow_run(self, run_id):
        return self.e.delete_flow_run(run_id)

    async def delete_flow_run_state(self, state_id):
        return self.e.delete_flow_run_state(state_id)

    async def create_limit(self, tag, limit):
        return self.e.create_concurrency_limit(tag, limit)

    async def read_limit(self, tag):
        return self.e.read_concurrency_limit_by_tag(tag)

    async def reset_limit(self, tag):
        return self.e.reset_concurrency_limit_by_tag(tag)

    async def delete_limit(self, tag):
        return self.e.delete_concurrency_limit_by_tag(tag)


class FacadeAPI:
    def __init__(self, session: Session) -> None:
        self.s = session

    async def create_flow(self, name):
        return await models.flows.create_flow(self.s, flow={"name": name})

    async def create_deployment(self, flow_id, name, limit):
        return await models.deployments.create_deployment(
            self.s, deployment={"flow_id": flow_id, "name": name, "concurrency_limit": limit})

    async def create_flow_run(self, fields):
        return await models.flow_runs.create_flow_run(self.s, flow_run=fields)

    async def create_task_run(self, fields):
        return await models.task_runs.create_task_run(session=self.s, task_run=fields)

    async def set_flow(self, run_id, state, policy):
        return await models.flow_runs.set_flow_run_state(self.s, flow_run_id=run_id, state=state, flow_policy=policy)

    async def set_task(self, run_id, state, policy):
        return await models.task_runs.set_task_run_state(self.s, task_run_id=run_id, state=state, task_policy=policy)

    async def flow_states(self, run_id):
        return await models.flow_run_states.read_flow_run_states(self.s, flow_run_id=run_id)

    async def task_states(self, run_id):
        return await models.task_run_states.read_task_run_states(self.s, task_run_id=run_id)

    async def read_flow_run(self, run_id):
        return await models.flow_runs.read_flow_run(self.s, flow_run_id=run_id)

    async def read_flow_runs(self, **kw):
        return await models.flow_runs.read_flow_runs(self.s, **kw)

    async def count_flow_runs(self, **kw):
        return await models.flow_runs.count_flow_runs(self.s, **kw)

    async def read_task_runs(self, **kw):
        return await models.task_runs.read_task_runs(self.s, **kw)

    async def count_task_runs(self, **kw):
        return await models.task_runs.count_task_runs(self.s, **kw)

    async def count_task_runs_by_state(self, **kw):
        return await models.task_runs.count_task_runs_by_state(self.s, **kw)

    async def update_flow_run(self, run_id, fields):
        return await models.flow_runs.update_flow_run(self.s, flow_run_id=run_id, flow_run=fields)

    async def delete_flow_run(self, run_id):
        return await models.flow_runs.delete_flow_run(self.s, flow_run_id=run_id)

    async def delete_flow_run_state(self, state_id):
        return await models.flow_run_states.delete_flow_run_state(self.s, flow_run_state_id=state_id)

    async def create_limit(self, tag, limit):
        return await models.concurrency_limits.create_concurrency_limit(
            self.s, concurrency_limit={"tag": tag, "concurrency_limit": limit})

    async def read_limit(self, tag):
        return await models.concurrency_limits.read_concurrency_limit_by_tag(self.s, tag=tag)

    async def reset_limit(self, tag):
        return await models.concurrency_limits.reset_concurrency_limit_by_tag(self.s, tag=tag)

    async def delete_limit(self, tag):
        return await models.concurrency_limits.delete_concurrency_limit_by_tag(self.s, tag=tag)


def _outcome(result) -> tuple:
    state = result.state
    return (result.status.value, getattr(result.details, "reason", None),
            getattr(result.details, "delay_seconds", None),
            None if state is None else (state.type.value, state.name))


# Scenarios: each returns a trace of observable answers (no random ids or names). -----------------
async def flow_lifecycle(api, clock):
    trace = []
    flow = await api.create_flow("etl")
    run = await api.create_flow_run({"flow_id": flow.id, "state": Scheduled(clock.now()),
                                     "empirical_policy": {"retries": 1}})
    for state in (Pending(), Running(), Failed(message="boom"), Running(), Completed()):
        trace.append(_outcome(await api.set_flow(run.id, state, CoreFlowPolicy)))
        clock.advance(1)
    again = await api.read_flow_run(run.id)
    trace.append((again.run_count, again.state_type.value, again.total_run_time > timedelta(0)))
    trace.append([(s.type.value, s.name, s.message) for s in await api.flow_states(run.id)])
    return trace


async def task_retries_and_tag_limits(api, clock):
    trace = []
    flow = await api.create_flow("etl")
    flow_run = await api.create_flow_run({"flow_id": flow.id, "state": Running()})
    await api.create_limit("db", 1)
    a = await api.create_task_run({"flow_run_id": flow_run.id, "task_key": "a", "dynamic_key": "0", "tags": ["db"],
                                   "empirical_policy": {"retries": 1, "retry_delay": 5}, "state": Pending()})
    b = await api.create_task_run({"flow_run_id": flow_run.id, "task_key": "b", "dynamic_key": "0", "tags": ["db"],
                                   "state": Pending()})
    trace.append(_outcome(await api.set_task(a.id, Running(), CoreTaskPolicy)))
    trace.append(_outcome(await api.set_task(b.id, Running(), CoreTaskPolicy)))
    trace.append(sorted((await api.read_limit("db")).active_slots) == [str(a.id)])
    trace.append(_outcome(await api.set_task(a.id, Failed(), CoreTaskPolicy)))
    trace.append(_outcome(await api.set_task(b.id, Running(), CoreTaskPolicy)))
    trace.append(_outcome(await api.set_task(a.id, Running(), CoreTaskPolicy)))
    clock.advance(6)
    trace.append(_outcome(await api.set_task(b.id, Completed(), CoreTaskPolicy)))
    trace.append(_outcome(await api.set_task(a.id, Running(), CoreTaskPolicy)))
    trace.append([(s.type.value, s.name) for s in await api.task_states(a.id)])
    trace.append((await api.count_task_runs_by_state()).as_dict())
    await api.reset_limit("db")
    trace.append((await api.read_limit("db")).active_slots)
    trace.append((await api.delete_limit("db"), await api.delete_limit("db")))
    return trace


async def deployment_limit(api, clock):
    trace = []
    flow = await api.create_flow("etl")
    dep = await api.create_deployment(flow.id, "d", 1)
    runs = [await api.create_flow_run({"flow_id": flow.id, "deployment_id": dep.id, "state": Scheduled(clock.now())})
            for _ in range(2)]
    for run in runs:
        trace.append(_outcome(await api.set_flow(run.id, Pending(), CoreFlowPolicy)))
    return trace


async def reads_and_counts(api, clock):
    flow = await api.create_flow("etl")
    ids = []
    for i, state in enumerate([Scheduled(clock.now()), Running(), Completed(), Completed(), Failed()]):
        run = await api.create_flow_run({"flow_id": flow.id, "state": state, "tags": [f"t{i % 2}"]})
        ids.append(run.id)
        await api.create_task_run({"flow_run_id": run.id, "task_key": "k", "dynamic_key": "0", "state": state})
        clock.advance(1)
    pos = {rid: i for i, rid in enumerate(ids)}
    done = {"state": {"type": {"any_": ["COMPLETED"]}}}
    trace = [
        await api.count_flow_runs(),
        await api.count_flow_runs(flow_run_filter=done),
        await api.count_flow_runs(flow_run_filter={"tags": {"all_": ["t0"]}}),
        [pos[r.id] for r in await api.read_flow_runs(sort="EXPECTED_START_TIME_ASC", offset=1, limit=3)],
        [pos[r.id] for r in await api.read_flow_runs(flow_run_filter=done, sort="START_TIME_DESC")],
        await api.count_task_runs(flow_run_filter=done),
        len(await api.read_task_runs(limit=2)),
        (await api.count_task_runs_by_state()).as_dict(),
    ]
    trace.append(await api.update_flow_run(ids[0], {"tags": ["new"]}))
    trace.append((await api.read_flow_run(ids[0])).tags)
    first_state = (await api.flow_states(ids[1]))[0]
    trace.append(await api.delete_flow_run_state(first_state.id))
    trace.append(await api.delete_flow_run(ids[2]))
    trace.append(await api.delete_flow_run(ids[2]))
    trace.append(await api.count_flow_runs())
    return trace


SCENARIOS = [flow_lifecycle, task_retries_and_tag_limits, deployment_limit, reads_and_counts]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_facade_matches_engine_api(scenario):
    clock_a = ManualClock(tick=timedelta(microseconds=1))
    engine_trace = run(scenario(EngineAPI(Engine(clock=clock_a)), clock_a))

    async def through_facade():
        clock_b = ManualClock(tick=timedelta(microseconds=1))
        engine = Engine(clock=clock_b)
        async with engine.session() as session:
            return await scenario(FacadeAPI(session), clock_b)

    facade_trace = run(through_facade())
    assert facade_trace == engine_trace
    assert len(engine_trace) >= 2


# Signatures follow the seeds (Prefect 3.1.0 prefect.server.models), session first. ------------
SEED_SIGNATURES = {
    models.flow_runs.create_flow_run: ["session", "flow_run", "orchestration_parameters"],
    models.flow_runs.update_flow_run: ["session", "flow_run_id", "flow_run"],
    models.flow_runs.read_flow_run: ["session", "flow_run_id", "for_update"],
    models.flow_runs.read_flow_runs: [
        "session", "columns", "flow_filter", "flow_run_filter", "task_run_filter", "deployment_filter",
        "work_pool_filter", "work_queue_filter", "offset", "limit", "sort"],
    models.flow_runs.count_flow_runs: [
        "session", "flow_filter", "flow_run_filter", "task_run_filter", "deployment_filter",
        "work_pool_filter", "work_queue_filter"],
    models.flow_runs.delete_flow_run: ["session", "flow_run_id"],
    models.flow_runs.set_flow_run_state: [
        "session", "flow_run_id", "state", "force", "flow_policy", "orchestration_parameters"],
    models.flow_runs.read_task_run_dependencies: ["session", "flow_run_id"],
    models.flow_runs.read_flow_run_graph: ["session", "flow_run_id", "since"],
    models.flow_runs.cleanup_flow_run_concurrency_slots: ["session", "flow_run"],
    models.task_runs.create_task_run: ["session", "task_run", "orchestration_parameters"],
    models.task_runs.update_task_run: ["session", "task_run_id", "task_run"],
    models.task_runs.read_task_run: ["session", "task_run_id"],
    models.task_runs.read_task_runs: [
        "session", "flow_filter", "flow_run_filter", "task_run_filter", "deployment_filter", "offset", "limit", "sort"],
    models.task_runs.count_task_runs: ["session", "flow_filter", "flow_run_filter", "task_run_filter", "deployment_filter"],
    models.task_runs.count_task_runs_by_state: [
        "session", "flow_filter", "flow_run_filter", "task_run_filter", "deployment_filter"],
    models.task_runs.delete_task_run: ["session", "task_run_id"],
    models.task_runs.set_task_run_state: [
        "session", "task_run_id", "state", "force", "task_policy", "orchestration_parameters"],
    models.flow_run_states.read_flow_run_state: ["session", "flow_run_state_id"],
    models.flow_run_states.read_flow_run_states: ["session", "flow_run_id"],
    models.flow_run_states.delete_flow_run_state: ["session", "flow_run_state_id"],
    models.task_run_states.read_task_run_state: ["session", "task_run_state_id"],
    models.task_run_states.read_task_run_states: ["session", "task_run_id"],
    models.task_run_states.delete_task_run_state: ["session", "task_run_state_id"],
    # Prefect 3.1.0's names for the modules beyond the seeds
    models.concurrency_limits_v2.create_concurrency_limit: ["session", "concurrency_limit"],
    models.concurrency_limits_v2.read_concurrency_limit: ["session", "concurrency_limit_id", "name"],
    models.concurrency_limits_v2.read_all_concurrency_limits: ["session", "limit", "offset"],
    models.concurrency_limits_v2.delete_concurrency_limit: ["session", "concurrency_limit_id", "name"],
    models.concurrency_limits_v2.bulk_increment_active_slots: ["session", "concurrency_limit_ids", "slots"],
    models.concurrency_limits_v2.bulk_decrement_active_slots: [
        "session", "concurrency_limit_ids", "slots", "occupancy_seconds"],
    models.workers.create_work_pool: ["session", "work_pool"],
    models.workers.read_work_pool: ["session", "work_pool_id"],
    models.workers.read_work_pool_by_name: ["session", "work_pool_name"],
    models.workers.delete_work_pool: ["session", "work_pool_id"],
    models.workers.create_work_queue: ["session", "work_pool_id", "work_queue"],
    models.workers.read_work_queue: ["session", "work_queue_id"],
    models.workers.read_work_queue_by_name: ["session", "work_pool_name", "work_queue_name"],
    models.workers.read_work_queues: ["session", "work_pool_id", "work_queue_filter", "offset", "limit"],
    models.workers.delete_work_queue: ["session", "work_queue_id"],
}


def test_signatures_follow_the_seeds():
    for fn, expected in SEED_SIGNATURES.items():
        assert list(inspect.signature(fn).parameters) == expected, fn.__name__


# Bad input: clear error, nothing changed. ------------------------------------------------------------------
def _snapshot(engine: Engine) -> dict:
    return {kind: len(table.rows) for kind, table in engine._store.tables.items()}


@pytest.fixture
def seeded():
    clock = ManualClock(tick=timedelta(microseconds=1))
    engine = Engine(clock=clock)
    flow = engine.create_flow(name="f")
    flow_run = engine.create_flow_run(flow_id=flow.id, state=Scheduled(clock.now()))
    return engine, flow_run


def test_unknown_parameter_is_a_validation_error(seeded):
    engine, flow_run = seeded
    before = _snapshot(engine)

    async def go():
        async with engine.session() as s:
            with pytest.raises(ValidationError, match=r"set_flow_run_state\(\): unknown parameter\(s\) 'policy'.*accepted"):
                await models.flow_runs.set_flow_run_state(s, flow_run.id, Pending(), policy=CoreFlowPolicy)
            with pytest.raises(ValidationError, match="missing"):
                await models.flow_runs.create_flow_run(s)

    run(go())
    assert _snapshot(engine) == before and flow_run.state_type.value == "SCHEDULED"


def test_closed_session_is_refused(seeded):
    engine, flow_run = seeded
    before = _snapshot(engine)

    async def go():
        async with engine.session() as s:
            pass
        with pytest.raises(TransactionError, match="closed"):
            await models.flow_runs.set_flow_run_state(s, flow_run.id, Pending())
        with pytest.raises(TransactionError, match="closed"):
            await s.atomic(lambda e: e.create_flow(name="x"))

    run(go())
    assert _snapshot(engine) == before


def test_a_session_context_is_entered_once(seeded):
    engine, _ = seeded
    ctx = engine.session()
    with ctx:
        pass
    with pytest.raises(TransactionError):
        ctx.__enter__()


def test_not_a_session_is_refused(seeded):
    engine, flow_run = seeded
    with pytest.raises(ValidationError, match="session must be a runstate Session"):
        run(models.flow_runs.read_flow_run(engine, flow_run.id))


@pytest.mark.parametrize("policy", [object(), "NoSuchPolicy", CoreTaskPolicy()])
def test_foreign_policy_is_refused(seeded, policy):
    engine, flow_run = seeded
    before = _snapshot(engine)

    async def go():
        async with engine.session() as s:
            await models.flow_runs.set_flow_run_state(s, flow_run.id, Pending(), flow_policy=policy)

    # (a task-run policy for a flow run too: Prefect fails inside a rule instead)
    with pytest.raises(ValidationError, match="polic"):
        run(go())
    assert _snapshot(engine) == before and flow_run.state_type.value == "SCHEDULED"


def test_atomic_groups_commit_together_or_not_at_all(seeded):
    engine, flow_run = seeded
    before = _snapshot(engine)

    def group(e):
        e.set_flow_run_state(flow_run.id, Pending(), flow_policy=CoreFlowPolicy)
        e.create_flow(name="second")
        raise RuntimeError("stop")

    async def go():
        async with engine.session() as s:
            with pytest.raises(RuntimeError):
                await s.atomic(group)
            return await s.atomic(lambda e: e.create_flow(name="kept").name)

    assert run(go()) == "kept"
    assert flow_run.state_type.value == "SCHEDULED"
    assert engine.read_flow_by_name("second") is None
    assert _snapshot(engine)["flow"] == before["flow"] + 1


def test_rollback_says_what_to_do_and_commit_is_harmless(seeded):
    engine, _ = seeded

    async def go():
        async with engine.session() as s:
            await s.commit()
            await s.flush()
            with pytest.raises(TransactionError, match="session.atomic"):
                await s.rollback()
            # Prefect's `async with session.begin():` gets the same pointer, not an AttributeError
            for begin in (s.begin, s.begin_nested):
                with pytest.raises(TransactionError, match="cannot hold a transaction open across awaits"):
                    begin()

    run(go())


def test_pydantic_style_objects_are_dumped(seeded):
    engine, _ = seeded

    class FakeSchema:  # what a Prefect schema object offers
        def model_dump(self, exclude_unset=False):
            assert exclude_unset
            return {"name": "from-schema", "tags": ["x"]}

    async def go():
        async with engine.session() as s:
            return await models.flows.create_flow(s, flow=FakeSchema())

    assert run(go()).tags == ["x"]


def test_other_modules_roundtrip(seeded):
    engine, flow_run = seeded

    async def go():
        async with engine.session() as s:
            flow = await models.flows.read_flow_by_name(s, name="f")
            assert await models.flows.read_flow(s, flow.id) is flow
            assert [f.name for f in await models.flows.read_flows(s)] == ["f"]
            assert await models.flows.count_flows(s) == 1
            dep = await models.deployments.create_deployment(s, deployment={"flow_id": flow.id, "name": "d"})
            assert await models.deployments.read_deployment_by_name(s, name="d", flow_name="f") is dep
            assert await models.deployments.read_deployment_by_name(s, name="d", flow_name="nope") is None
            assert await models.deployments.count_deployments(s) == 1
            assert await models.deployments.read_deployments(s, limit=1) == [dep]
            limit = await models.concurrency_limits.create_concurrency_limit(
                s, concurrency_limit={"tag": "t", "concurrency_limit": 3})
            assert await models.concurrency_limits.read_concurrency_limit(s, limit.id) is limit
            assert await models.concurrency_limits.read_concurrency_limits(s) == [limit]
            assert await models.concurrency_limits.delete_concurrency_limit(s, limit.id)
            assert not await models.concurrency_limits.delete_concurrency_limit(s, limit.id)
            state = (await models.flow_run_states.read_flow_run_states(s, flow_run.id))[0]
            assert (await models.flow_run_states.read_flow_run_state(s, state.id)).id == state.id
            task = await models.task_runs.create_task_run(
                s, task_run={"flow_run_id": flow_run.id, "task_key": "k", "dynamic_key": "0"})
            assert await models.task_runs.update_task_run(s, task.id, task_run={"name": "renamed"})
            assert (await models.task_runs.read_task_run(s, task.id)).name == "renamed"
            assert await models.task_runs.delete_task_run(s, task.id)
            assert await models.deployments.delete_deployment(s, dep.id)
            assert await models.flows.delete_flow(s, flow.id)
            assert s.calls > 15

    run(go())
    assert engine.read_flows() == []


def test_flow_run_inputs_roundtrip(seeded):
    engine, flow_run = seeded

    async def go():
        async with engine.session() as s:
            first = await models.flow_run_input.create_flow_run_input(
                s, flow_run_input={"flow_run_id": flow_run.id, "key": "msg-1", "value": "a", "sender": "me"})
            second = await models.flow_run_input.create_flow_run_input(
                s, {"flow_run_id": flow_run.id, "key": "msg-2", "value": "b"})
            assert await models.flow_run_input.read_flow_run_input(s, flow_run.id, "msg-1") is first
            assert await models.flow_run_input.filter_flow_run_input(s, flow_run.id, "msg", 5, ["msg-1"]) == [second]
            assert await models.flow_run_input.delete_flow_run_input(s, flow_run.id, "msg-2")
            assert not await models.flow_run_input.delete_flow_run_input(s, flow_run.id, "msg-2")
            with pytest.raises(ValidationError, match="needs a value"):
                await models.flow_run_input.create_flow_run_input(s, {"flow_run_id": flow_run.id, "key": "k"})
            with pytest.raises(ValidationError, match="unknown flow_run_input field"):
                await models.flow_run_input.create_flow_run_input(
                    s, {"flow_run_id": flow_run.id, "key": "k", "value": "v", "id": 1})

    run(go())
    assert [i.key for i in engine.filter_flow_run_input(flow_run.id, "", limit=None)] == ["msg-1"]


def test_pools_queues_and_global_limits_roundtrip(seeded):
    engine, _ = seeded

    async def go():
        async with engine.session() as s:
            pool = await models.workers.create_work_pool(s, work_pool={"name": "pool", "type": "process"})
            assert await models.workers.read_work_pool_by_name(s, "pool") is pool
            high = await models.workers.create_work_queue(s, pool.id, work_queue={"name": "high", "priority": 2})
            assert [q.name for q in await models.workers.read_work_queues(s, pool.id)] == ["default", "high"]
            assert await models.workers.read_work_queues(s, pool.id, {"name": {"any_": ["high"]}}) == [high]
            assert await models.workers.read_work_queues(s, pool.id, offset=1) == [high]
            assert await models.workers.read_work_queue_by_name(s, "pool", "high") is high
            assert await models.workers.read_work_queue_by_name(s, "nope", "high") is None
            assert await models.workers.delete_work_queue(s, high.id)
            assert await models.workers.read_work_queue(s, high.id) is None
            assert await models.workers.delete_work_pool(s, pool.id)
            assert await models.workers.read_work_pool(s, pool.id) is None
            # Prefect's WorkPoolCreate defaults the type: an agent pool, whose
            # status pausing and unpausing leave alone
            agent = await models.workers.create_work_pool(s, work_pool={"name": "agent"})
            assert (agent.type, agent.status) == ("prefect-agent", "NOT_READY")
            assert await models.workers.update_work_pool(s, agent.id, {"is_paused": True})
            assert agent.status == "NOT_READY"

            b = await models.concurrency_limits_v2.create_concurrency_limit(s, {"name": "b", "limit": 1})
            a = await models.concurrency_limits_v2.create_concurrency_limit(s, {"name": "a", "limit": 2})
            assert await models.concurrency_limits_v2.read_all_concurrency_limits(s, None, None) == [a, b]
            assert await models.concurrency_limits_v2.read_all_concurrency_limits(s, limit=1, offset=1) == [b]
            assert await models.concurrency_limits_v2.bulk_increment_active_slots(s, [a.id, b.id], 1)
            # b is full: False, yet a took its slot (Prefect's one UPDATE skips only b)
            assert not await models.concurrency_limits_v2.bulk_increment_active_slots(s, [a.id, b.id], 1)
            assert (a.active_slots, b.active_slots) == (2, 1)
            assert await models.concurrency_limits_v2.bulk_decrement_active_slots(s, [a.id], 2)
            # the id wins over the name when both are given, as in Prefect
            assert await models.concurrency_limits_v2.read_concurrency_limit(s, a.id, name="b") is a
            assert await models.concurrency_limits_v2.delete_concurrency_limit(s, name="a")
            assert await models.concurrency_limits_v2.read_concurrency_limit(s, name="a") is None
            with pytest.raises(ValidationError, match="concurrency_limit_id or a name"):
                await models.concurrency_limits_v2.read_concurrency_limit(s, name="")
            V2 = models.concurrency_limits_v2
            assert await V2.update_concurrency_limit(s, {"limit": 5, "name": "bee"}, name="b")
            assert (b.name, b.limit) == ("bee", 5)
            assert await V2.update_concurrency_limit(s, {"active": False}, concurrency_limit_id=b.id)
            assert not await V2.update_concurrency_limit(s, {"limit": 1}, name="gone")
            assert not await V2.bulk_update_denied_slots(s, [b.id], 2)  # inactive: not updated
            got = await V2.bulk_read_or_create_concurrency_limits(s, ["bee", "new"], create_if_missing=True)
            assert [(g.name, g.active) for g in got] == [("bee", False), ("new", False)]
            tags = models.concurrency_limits
            x = await tags.create_concurrency_limit(s, {"tag": "x", "concurrency_limit": 1})
            w = await tags.create_concurrency_limit(s, {"tag": "w", "concurrency_limit": 1})
            assert await tags.filter_concurrency_limits_for_orchestration(s, ["x", "none", "w"]) == [w, x]
            assert await tags.filter_concurrency_limits_for_orchestration(s, []) == []

    run(go())


def test_pydantic_style_states_are_dumped(seeded):
    engine, flow_run = seeded

    class PrefectState:  # the explicitly set fields of a Prefect schemas.states.State
        def model_dump(self, exclude_unset=False):
            assert exclude_unset
            return {"type": "PENDING", "name": "Pending", "state_details": {"transition_id": None}}

    async def go():
        async with engine.session() as s:
            return await models.flow_runs.set_flow_run_state(s, flow_run.id, PrefectState(), flow_policy=CoreFlowPolicy)

    result = run(go())
    assert result.status == "ACCEPT" and flow_run.state_type.value == "PENDING"


def test_policy_may_be_named(seeded):
    engine, flow_run = seeded

    async def go():
        async with engine.session() as s:
            return await models.flow_runs.set_flow_run_state(s, flow_run.id, Running(), flow_policy="CoreFlowPolicy")

    result = run(go())
    assert result.status == "ACCEPT" and flow_run.run_count == 1


def test_readme_side_by_side_example():
    # The runstate column of the README's side-by-side example, verbatim.
    from engine import Pending, Scheduled

    engine = Engine()

    async def main():
        async with engine.session() as session:
            flow = await models.flows.create_flow(session=session, flow={"name": "etl"})
            run = await models.flow_runs.create_flow_run(
                session=session, flow_run={"flow_id": flow.id, "state": Scheduled()})
            result = await models.flow_runs.set_flow_run_state(
                session=session, flow_run_id=run.id, state=Pending(), flow_policy=CoreFlowPolicy)
            pending = await models.flow_runs.read_flow_runs(
                session=session, flow_run_filter={"state": {"type": {"any_": ["PENDING"]}}}, limit=10)
            return run, result, pending

    run_, result, pending = run(main())
    assert result.status == "ACCEPT" and [r.id for r in pending] == [run_.id]


def test_atomic_refuses_async_functions_and_undoes_their_sync_part(seeded):
    engine, _ = seeded
    before = _snapshot(engine)

    async def coroutine_fn(e):
        e.create_flow(name="never")

    def returns_awaitable(e):
        e.create_flow(name="undone")
        return asyncio.sleep(0)

    async def go():
        async with engine.session() as s:
            with pytest.raises(TransactionError, match="coroutine function"):
                await s.atomic(coroutine_fn)
            with pytest.raises(TransactionError, match="awaitable"):
                await s.atomic(returns_awaitable)

    run(go())
    assert _snapshot(engine) == before


def test_cleanup_flow_run_concurrency_slots_releases_the_slot():
    from engine.testing.helpers import full_deployment

    engine = Engine(clock=ManualClock(tick=timedelta(microseconds=1)))
    setup = full_deployment(engine, limit=1)

    async def go():
        async with engine.session() as s:
            await models.flow_runs.cleanup_flow_run_concurrency_slots(s, flow_run=setup.runs[0])
            with pytest.raises(ValidationError, match="FlowRun record"):
                await models.flow_runs.cleanup_flow_run_concurrency_slots(s, flow_run=setup.runs[0].id)

    assert setup.limit.active_slots == 1
    run(go())
    assert setup.limit.active_slots == 0


def test_facade_functions_are_coroutine_functions():
    for fn in SEED_SIGNATURES:
        assert inspect.iscoroutinefunction(fn), fn.__name__
