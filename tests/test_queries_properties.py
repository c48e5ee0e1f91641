"""Property tests: every index-backed read/count equals a brute-force evaluation.

The reference (tests/query_reference.py) interprets Prefect's JSON filter shapes
directly from the spec over plain lists of records; it shares no code with
engine/filters.py or engine/queries.py. Datasets are random, then
mutated (updates, state changes, deletes) and hit by rolled-back transactions
before being queried again.
"""
from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, strategies as st

from engine import Engine, ManualClock, queries
from engine.errors import ValidationError
from query_reference import (
    BASE, FILTER_ARGS, FLOW_RUN_SORTS, SETTINGS, STATE_NAMES, TAGS, TYPES, World, check_queries, iso_text, maybe,
    ref_flow_runs, ref_sorted, ref_task_runs, world_of,
)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_fr=st.integers(0, 30), n_tr=st.integers(0, 60), data=st.data())
def test_reads_and_counts_match_brute_force(seed, n_fr, n_tr, data):
    world = World(seed, n_fr, n_tr)
    check_queries(world.engine, data)
    world.mutate()
    check_queries(world.engine, data)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_fr=st.integers(0, 60), n_tr=st.integers(0, 60), data=st.data())
def test_walks_that_give_up_for_the_candidates_answer_the_same(seed, n_fr, n_tr, data):
    # A walk of the sort order chosen over sorting the smallest candidate source gives
    # up after a budget (matches bunched at the far end) and sorts the candidates:
    # with no budget at all, every such read takes that way and must agree.
    world = World(seed, n_fr, n_tr)
    saved = queries.HEDGE_SLACK
    queries.HEDGE_SLACK = -10**9
    try:
        check_queries(world.engine, data)
        world.mutate()
        check_queries(world.engine, data)
    finally:
        queries.HEDGE_SLACK = saved


class Boom(Exception):
    pass


# Restrictions that name work queues, deployments or flows, joined with a state
# filter through the (field, state type) indexes.
_JOINED = {
    "work_pool_queues": [{}, {"name": {"any_": ["high"]}}, {"name": {"any_": ["default"]}}],
    "deployments": [{}, {"name": {"any_": ["dep-0", "dep-2"]}}, {"paused": {"eq_": True}}],
    "flows": [{}, {"name": {"any_": ["etl-daily"]}}, {"name": {"like_": "t"}}],
}


@st.composite
def joined_requests(draw, deployment_ids):
    """A state-type filter and one restriction by queue, deployment or flow; at times
    a third criterion, a state name, or an OR that the join must not answer alone."""
    state = {"type": {draw(st.sampled_from(["any_", "any_", "not_any_"])):
                      draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2))}}
    if maybe(draw, 0.15):
        state["name"] = {"any_": [draw(st.sampled_from(STATE_NAMES))]}
    flow_runs = {"state": state}
    req = {"flow_runs": flow_runs}
    joined = draw(st.sampled_from(["work_pool_queues", "deployments", "flows", "deployment_id"]))
    if joined == "deployment_id":
        flow_runs["deployment_id"] = {"any_": draw(st.lists(st.sampled_from(deployment_ids), min_size=1, max_size=2))}
        if maybe(draw, 0.2):
            flow_runs["deployment_id"]["is_null_"] = draw(st.booleans())
    else:
        req[joined] = draw(st.sampled_from(_JOINED[joined]))
    if maybe(draw, 0.2):
        flow_runs["tags"] = {"all_": [draw(st.sampled_from(TAGS))]}
    if maybe(draw, 0.15):
        req["work_pools"] = {"type": {"any_": ["docker"]}}
    if maybe(draw, 0.15):
        flow_runs["operator"] = "or_"
    return req


def check_joined(engine, data, rounds):
    w = world_of(engine)
    deployment_ids = sorted(str(i) for i in w["deployments"])
    for _ in range(rounds):
        req = data.draw(joined_requests(deployment_ids))
        kwargs = {FILTER_ARGS[k]: v for k, v in req.items()}
        expected = ref_flow_runs(req, w)
        assert engine.count_flow_runs(**kwargs) == len(expected), req
        sort = data.draw(st.sampled_from(FLOW_RUN_SORTS))
        limit = data.draw(st.sampled_from([None, 1, 5]))
        got = engine.read_flow_runs(**kwargs, sort=sort, limit=limit)
        assert [r.id for r in got] == [r.id for r in ref_sorted(expected, sort)[:limit]], (req, sort, limit)


@contextlib.contextmanager
def joins_built_at_once():
    """(field, state type) indexes built for any plan a join serves, not only large
    ones (JOIN_WARM_AT), for the block."""
    saved = queries.JOIN_WARM_AT
    queries.JOIN_WARM_AT = 0
    try:
        yield
    finally:
        queries.JOIN_WARM_AT = saved


def _deployment_ids(*names, **more):
    # A deployment_id criterion naming deployments, resolved once the world exists.
    return lambda w: {"any_": [str(d.id) for d in w["deployments"].values() if d.name in names], **more}


@pytest.mark.parametrize("req", [
    {"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "RUNNING"]}}}, "work_pool_queues": {"name": {"any_": ["high"]}}},
    {"flow_runs": {"state": {"type": {"not_any_": ["COMPLETED"]}}}, "deployments": {"name": {"any_": ["dep-1"]}}},
    {"flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}, "flows": {"name": {"any_": ["etl-daily"]}}},
    {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}, "deployment_id": _deployment_ids("dep-0")}},
    {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}},
                   "deployment_id": _deployment_ids("dep-0", is_null_=True)}},
    {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}, "deployment_id": _deployment_ids("dep-0", "dep-2"),
                   "tags": {"all_": ["prod"]}}},
    {"flow_runs": {"state": {"type": {"any_": ["CANCELLING"]}, "name": {"any_": ["Cancelling"]}}},
     "work_pool_queues": {}},
    {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}, "tags": {"all_": ["prod"]}}, "work_pool_queues": {}},
    {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}, "deployment_id": _deployment_ids("dep-0"),
                   "operator": "or_"}},
    {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}, "work_pool_queues": {},
     "deployments": {"name": {"any_": ["dep-2"]}}},
    {"flow_runs": {"state": {"type": {"any_": ["RUNNING", "PENDING"]}}}, "work_pools": {"type": {"any_": ["docker"]}}},
], ids=["queue", "not-any-deployment", "flow", "deployment-id", "deployment-id-and-null", "third-criterion",
        "state-name-too", "tags-too", "or", "two-restrictions", "pool"])
def test_a_join_answers_alone_only_when_it_covers_every_criterion(req):
    # Each of these but the OR is answered through a (field, state type) join; a
    # count from the join alone is right only where nothing else is left to check.
    world = World(11, 150, 0)
    w = world_of(world.engine)
    resolved = {k: {f: (v(w) if callable(v) else v) for f, v in flt.items()} for k, flt in req.items()}
    kwargs = {FILTER_ARGS[k]: v for k, v in resolved.items()}
    expected = ref_flow_runs(resolved, w)
    with joins_built_at_once():
        assert world.engine.count_flow_runs(**kwargs) == len(expected)
        got = world.engine.read_flow_runs(**kwargs, sort="NAME_ASC")
    assert [r.id for r in got] == [r.id for r in ref_sorted(expected, "NAME_ASC")]
    indexes = world.engine._store.tables["flow_run"].by_name
    joined = any(indexes[f + "+state_type"].live for f in ("work_queue_id", "deployment_id", "flow_id"))
    assert joined == ("operator" not in req["flow_runs"])


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_fr=st.integers(0, 80), n_tr=st.integers(0, 20), data=st.data())
def test_state_types_joined_with_queues_deployments_or_flows_answer_the_same(seed, n_fr, n_tr, data):
    # The (field, state type) indexes are built at once here rather than for large
    # plans only; they must stay right through later writes and a rolled-back
    # transaction.
    world = World(seed, n_fr, n_tr)
    e = world.engine
    with joins_built_at_once():
        check_joined(e, data, rounds=3)
        world.mutate()
        check_joined(e, data, rounds=3)
        with pytest.raises(Boom):
            with e.transaction():
                world.mutate()
                check_joined(e, data, rounds=2)
                raise Boom()
        check_joined(e, data, rounds=3)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_fr=st.integers(1, 25), n_tr=st.integers(0, 50), data=st.data())
def test_indexes_stay_consistent_after_rolled_back_transactions(seed, n_fr, n_tr, data):
    world = World(seed, n_fr, n_tr)
    e = world.engine
    check_queries(e, data, rounds=2)  # warms the sort indexes before the rollback
    before = {(r.id, r.state_type, tuple(r.tags), r.name) for r in e.read_flow_runs()}
    with pytest.raises(Boom):
        with e.transaction():
            world.mutate()
            # reads inside the transaction may build cold indexes; rollback must fix them up
            check_queries(e, data, rounds=2)
            world.mutate()
            raise Boom()
    after = {(r.id, r.state_type, tuple(r.tags), r.name) for r in e.read_flow_runs()}
    assert after == before
    check_queries(e, data, rounds=3)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_large_offsets_and_limits_follow_the_sort_index(seed, data):
    # Enough runs that the planner prefers walking the sort index to sorting candidates.
    world = World(seed, 120, 0)
    e = world.engine
    req = {"flow_runs": {"state": {"type": {"any_": data.draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3))}}}}
    sort = data.draw(st.sampled_from(FLOW_RUN_SORTS))
    offset, limit = data.draw(st.integers(0, 60)), data.draw(st.integers(0, 30))
    w = world_of(e)
    expected = ref_sorted(ref_flow_runs(req, w), sort)
    got = e.read_flow_runs(flow_run_filter=req["flow_runs"], sort=sort, offset=offset, limit=limit)
    assert [r.id for r in got] == [r.id for r in expected[offset: offset + limit]]
    # Again with no patience for the global order: the per-state lists answer.
    saved = queries.WALK_SLACK
    queries.WALK_SLACK = -10**9
    try:
        got = e.read_flow_runs(flow_run_filter=req["flow_runs"], sort=sort, offset=offset, limit=limit)
        assert [r.id for r in got] == [r.id for r in expected[offset: offset + limit]]
        world.mutate()  # the per-state lists are now live and must follow writes
        w = world_of(e)
        expected = ref_sorted(ref_flow_runs(req, w), sort)
        again = e.read_flow_runs(flow_run_filter=req["flow_runs"], sort=sort, offset=offset, limit=limit)
        check_queries(e, data, rounds=2)
    finally:
        queries.WALK_SLACK = saved
    assert [r.id for r in again] == [r.id for r in expected[offset: offset + limit]]


# The sort keys a time filter can narrow: a read sorted on one walks only its range.
RANGED_SORTS = {"EXPECTED_START_TIME_ASC": "expected_start_time", "EXPECTED_START_TIME_DESC": "expected_start_time",
                "NEXT_SCHEDULED_START_TIME_ASC": "next_scheduled_start_time", "END_TIME_DESC": "end_time"}


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), for_tasks=st.booleans(), data=st.data())
def test_time_ranges_on_the_sort_key_walk_only_the_range(seed, for_tasks, data):
    world = World(seed, 60 if for_tasks else 150, 150 if for_tasks else 0)
    e = world.engine
    sort = data.draw(st.sampled_from(["EXPECTED_START_TIME_ASC", "EXPECTED_START_TIME_DESC"] if for_tasks
                                     else list(RANGED_SORTS)))
    bounds = data.draw(st.sampled_from([("after_",), ("before_",), ("after_", "before_")]))
    flt = {RANGED_SORTS[sort]: {op: iso_text(data.draw) for op in bounds}}
    if maybe(data.draw):
        flt["state"] = {"type": {"any_": data.draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3))}}
    offset = data.draw(st.integers(0, 20))
    limit = data.draw(st.sampled_from([None, 0, 1, 5, 30]))
    key = "task_runs" if for_tasks else "flow_runs"
    read = e.read_task_runs if for_tasks else e.read_flow_runs
    kwargs = {"task_run_filter" if for_tasks else "flow_run_filter": flt}

    def expected():
        w = world_of(e)
        found = ref_sorted((ref_task_runs if for_tasks else ref_flow_runs)({key: flt}, w), sort)
        return [r.id for r in found[offset: None if limit is None else offset + limit]]

    assert [r.id for r in read(**kwargs, sort=sort, offset=offset, limit=limit)] == expected()
    saved = queries.WALK_SLACK
    queries.WALK_SLACK = -10**9  # straight to the per-state lists, within the range
    try:
        assert [r.id for r in read(**kwargs, sort=sort, offset=offset, limit=limit)] == expected()
        world.mutate()  # indexes follow writes, ranges included
        assert [r.id for r in read(**kwargs, sort=sort, offset=offset, limit=limit)] == expected()
    finally:
        queries.WALK_SLACK = saved


def test_negative_window_is_rejected_and_changes_nothing():
    world = World(1, 5, 5)
    with pytest.raises(ValidationError, match="offset"):
        world.engine.read_flow_runs(offset=-1)
    with pytest.raises(ValidationError, match="limit"):
        world.engine.read_task_runs(limit=-5)
    assert world.engine.count_flow_runs() == len(world.engine._store.tables["flow_run"].rows)


def _queue_ids(*names):
    return lambda w: {"any_": [str(q.id) for q in w["work_queues"].values() if q.name in names]}


# Shapes the random requests rarely or never draw, each guarding a shortcut of the
# planner (an index source taken as exact, an id fast path, a flow's deployments).
@pytest.mark.parametrize("req", [
    {"flow_runs": {"deployment_id": _deployment_ids("dep-0", is_null_=True)}},
    {"flow_runs": {"deployment_id": _deployment_ids("dep-0", is_null_=False)}},
    {"flow_runs": {"deployment_id": _deployment_ids("dep-0", "dep-1", is_null_=True, operator="or_")}},
    {"flow_runs": {"deployment_id": {}}},
    {"flow_runs": {"work_queue_name": {}}},
    {"flow_runs": {"parent_task_run_id": {}}},
    {"flow_runs": {"deployment_id": {}, "state": {"type": {"any_": ["COMPLETED"]}}}},
    {"work_pool_queues": {"id": {}}},
    {"work_pool_queues": {"id": _queue_ids("high")}},
    {"flows": {"deployment": {}}},
    {"flows": {"deployment": {"is_null_": False}}},
    {"flows": {"deployment": {"is_null_": True}}},
], ids=["deployment-and-null", "deployment-and-not-null", "deployment-or-null", "empty-deployment-id",
        "empty-queue-name", "empty-parent", "empty-deployment-id-and-state", "empty-queue-id", "queue-id",
        "flow-empty-deployment", "flow-with-deployment", "flow-without-deployment"])
def test_rare_filter_shapes_match_brute_force(req):
    world = World(5, 40, 30)
    e = world.engine
    # Runs of a flow that has no deployment, for the flow's deployment criterion.
    lonely = next(f for f in e.read_flows() if f.name == "lonely")
    for _ in range(3):
        run = e.create_flow_run(flow_id=lonely.id, state={"type": "COMPLETED"})
        e.create_task_run(flow_run_id=run.id, task_key="t", dynamic_key="0", state={"type": "RUNNING"})
    w = world_of(e)
    resolved = {k: {f: (v(w) if callable(v) else v) for f, v in flt.items()} for k, flt in req.items()}
    kwargs = {FILTER_ARGS[k]: v for k, v in resolved.items()}
    expected = ref_flow_runs(resolved, w)
    assert e.count_flow_runs(**kwargs) == len(expected)
    for sort, limit in (("NAME_ASC", None), ("EXPECTED_START_TIME_DESC", 3)):
        got = e.read_flow_runs(**kwargs, sort=sort, limit=limit)
        assert [r.id for r in got] == [r.id for r in ref_sorted(expected, sort)[:limit]]
    if "work_pool_queues" not in resolved:
        tasks = ref_task_runs(resolved, w)
        assert e.count_task_runs(**kwargs) == len(tasks)
        assert [r.id for r in e.read_task_runs(**kwargs, sort="NAME_ASC")] == [
            r.id for r in ref_sorted(tasks, "NAME_ASC")]


def test_per_state_walks_answer_unlimited_reads_and_give_up_to_the_candidates():
    # 1,000 COMPLETED runs named a0000..a0999 (the last 100 tagged) and 10 FAILED
    # ones: a FAILED page sorted by name is far from the start of the global order,
    # so it builds the per-state lists; later reads by state walk those lists.
    e = Engine(clock=ManualClock(BASE, tick=dt.timedelta(seconds=1)))
    flow = e.create_flow("f")
    for i in range(1000):
        e.create_flow_run(flow_id=flow.id, name=f"a{i:04d}", state={"type": "COMPLETED"}, tags=["x"] * (i >= 900))
    for i in range(10):
        e.create_flow_run(flow_id=flow.id, name=f"z{i:02d}", state={"type": "FAILED"})
    runs = ref_sorted(e._store.tables["flow_run"].rows.values(), "NAME_ASC")

    def read(flt, limit):
        return [r.name for r in e.read_flow_runs(flow_run_filter=flt, sort="NAME_ASC", limit=limit)]

    assert read({"state": {"type": {"any_": ["FAILED"]}}}, 2) == ["z00", "z01"]
    assert e._store.tables["flow_run"].by_name["state_type+name"].live
    # No limit, most runs match: the per-state list of COMPLETED, in order.
    assert read({"state": {"type": {"any_": ["COMPLETED"]}}}, None) == [
        r.name for r in runs if r.state_type.value == "COMPLETED"]
    # A limit, but the tagged matches lie 900 records down the COMPLETED list: the
    # walk gives up past its budget and the tagged candidates are sorted instead.
    tagged = {"state": {"type": {"any_": ["COMPLETED"]}}, "tags": {"all_": ["x"]}}
    assert read(tagged, 3) == ["a0900", "a0901", "a0902"]
    # The live lists follow writes: a run that moves between the two states walked
    # together is met once, and a deleted one not at all.
    moved, gone = runs[0], runs[1]
    e.set_flow_run_state(moved.id, {"type": "FAILED"}, force=True)
    e.delete_flow_run(gone.id)
    both = {"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}}
    expected = ref_sorted((r for r in runs if r is not gone), "NAME_ASC")
    assert read(both, None) == [r.name for r in expected]
    assert read(both, 5) == [r.name for r in expected[:5]]
