"""Filter parsing (errors name the JSON path), filter semantics (NULLs, wildcards,
operators, cross-entity rules) and sort semantics."""
from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

import pytest
from hypothesis import given, settings, strategies as st

from engine import Completed, Engine, ManualClock, Pending, Running, Scheduled, StateType
from engine.errors import ValidationError
from engine.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    TaskRunFilter,
    like_matcher,
    parse_filter,
)
from engine.sorting import FlowRunSort, TaskRunSort, as_flow_run_sort, as_task_run_sort

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 11, 1, tzinfo=UTC)


# parsing -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "data, path",
    [
        ({"state": {"type": {"any_": "COMPLETED"}}}, "flow_runs.state.type.any_"),
        ({"state": {"type": {"any_": ["DONE"]}}}, "flow_runs.state.type.any_[0]"),
        ({"id": {"any_": ["not-a-uuid"]}}, "flow_runs.id.any_[0]"),
        ({"name": {"like": "x"}}, "flow_runs.name.like"),
        ({"operator": "xor"}, "flow_runs.operator"),
        ({"tags": {"is_null_": "yes"}}, "flow_runs.tags.is_null_"),
        ({"start_time": {"before_": "yesterday"}}, "flow_runs.start_time.before_"),
        ({"state": ["COMPLETED"]}, "flow_runs.state"),
        ({"unknown": {}}, "flow_runs.unknown"),
    ],
)
def test_bad_json_names_its_path(data, path):
    with pytest.raises(ValidationError) as info:
        parse_filter(FlowRunFilter, data, "flow_runs")
    assert path in str(info.value)


def test_engine_rejects_bad_filters_and_sorts_by_argument_name():
    e = Engine(clock=ManualClock(T0))
    with pytest.raises(ValidationError, match=r"task_runs\.subflow_runs\.exists_"):
        e.read_task_runs(task_run_filter={"subflow_runs": {"exists_": "true"}})
    with pytest.raises(ValidationError, match=r"deployments\.paused\.eq_"):
        e.count_flow_runs(deployment_filter={"paused": {"eq_": 1}})
    with pytest.raises(ValidationError, match="work_pool_queues"):
        e.read_flow_runs(work_queue_filter=TaskRunFilter())  # wrong filter class
    with pytest.raises(ValidationError, match="sort"):
        e.read_flow_runs(sort="NAME")
    with pytest.raises(ValidationError, match="sort"):
        e.read_task_runs(sort="START_TIME_ASC")  # no START_TIME order for task runs


def test_typed_objects_are_coerced_like_json():
    run_id = uuid.uuid4()
    typed = FlowRunFilter(
        id=FlowRunFilterId(any_=[str(run_id)]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["COMPLETED"])),
    )
    parsed = parse_filter(FlowRunFilter, {"id": {"any_": [str(run_id)]},
                                          "state": {"type": {"any_": ["COMPLETED"]}}}, "flow_runs")
    assert typed == parsed
    assert typed.id.any_ == [run_id]
    with pytest.raises(ValidationError):
        FlowRunFilterId(any_=["nope"])


def test_a_criterion_assigned_later_is_checked_and_coerced_too(world):
    engine, runs, _ = world
    flt = FlowRunFilter()
    flt.state = {"type": {"any_": ["COMPLETED"]}}  # Prefect's JSON shape, as the constructor takes it
    flt.id = FlowRunFilterId()
    flt.id.any_ = [str(runs["marvin"].id), runs["sad"].id]
    assert flt.id.any_ == [runs["marvin"].id, runs["sad"].id]
    assert flt.state == FlowRunFilterState(type=FlowRunFilterStateType(any_=["COMPLETED"]))
    assert [r.id for r in engine.read_flow_runs(flow_run_filter=flt)] == [runs["marvin"].id]
    before = (flt.id.any_, flt.operator)
    with pytest.raises(ValidationError, match=r"^FlowRunFilterId\.any_\[1\] must be a UUID, got str 'nope'$"):
        flt.id.any_ = [runs["marvin"].id, "nope"]
    with pytest.raises(ValidationError, match=r"^FlowRunFilter\.operator must be 'and_' or 'or_', got 'xor'$"):
        flt.operator = "xor"
    # None is no criterion's absence here: Prefect refuses it (it was read as and_)
    with pytest.raises(ValidationError, match=r"^FlowRunFilter\.operator must be 'and_' or 'or_', got None$"):
        flt.operator = None
    with pytest.raises(ValidationError, match=r"^flow_runs\.state\.operator must be 'and_' or 'or_', got None$"):
        engine.read_flow_runs(flow_run_filter={"state": {"operator": None, "type": {"any_": ["COMPLETED"]}}})
    with pytest.raises(ValidationError, match=r"^FlowRunFilter\.state must be an object \(FlowRunFilterState\)"):
        flt.state = ["COMPLETED"]
    assert (flt.id.any_, flt.operator) == before  # a refused assignment changes nothing
    flt.state = None
    assert len(engine.read_flow_runs(flow_run_filter=flt)) == 2


def test_only_filters_on_id():
    a = str(uuid.uuid4())
    assert parse_filter(FlowRunFilter, {"id": {"any_": [a]}, "operator": "or_"}, "f").only_filters_on_id()
    assert not parse_filter(FlowRunFilter, {"id": {"any_": []}}, "f").only_filters_on_id()
    assert not parse_filter(FlowRunFilter, {"id": {"any_": [a], "not_any_": [a]}}, "f").only_filters_on_id()
    assert not parse_filter(FlowRunFilter, {"id": {"any_": [a]}, "name": {}}, "f").only_filters_on_id()


def test_sort_accepts_enum_or_name():
    assert as_flow_run_sort("NAME_ASC") is FlowRunSort.NAME_ASC
    assert as_flow_run_sort(FlowRunSort.END_TIME_DESC) is FlowRunSort.END_TIME_DESC
    assert as_task_run_sort(None) is TaskRunSort.ID_DESC
    assert len(FlowRunSort) == 9 and len(TaskRunSort) == 7
    # str() of a member (as Python 3.11 writes it) names the same sort; another kind's is refused
    assert as_flow_run_sort("FlowRunSort.NAME_ASC") is FlowRunSort.NAME_ASC
    with pytest.raises(ValidationError, match="unknown sort 'TaskRunSort.NAME_ASC'"):
        as_flow_run_sort("TaskRunSort.NAME_ASC")


def test_a_sort_of_another_kind_is_refused_though_its_name_exists_here_too():
    # (the sort enums are strings: TaskRunSort.NAME_ASC equals the text "NAME_ASC")
    with pytest.raises(ValidationError, match="TaskRunSort.NAME_ASC is not a FlowRunSort"):
        Engine().read_flow_runs(sort=TaskRunSort.NAME_ASC)
    with pytest.raises(ValidationError, match="FlowRunSort.END_TIME_DESC is not a TaskRunSort"):
        Engine().read_task_runs(sort=FlowRunSort.END_TIME_DESC)
    assert as_task_run_sort("NAME_ASC") is TaskRunSort.NAME_ASC  # the text alone is a name of either


# semantics ----------------------------------------------------------------------------------

@pytest.fixture()
def world():
    e = Engine(clock=ManualClock(T0, tick=dt.timedelta(seconds=1)))
    flow = e.create_flow("etl")
    other = e.create_flow("Other")
    pool = e.create_work_pool("pool-a")
    queue = e.create_work_queue(pool.id, "Marvin-robot")
    dep = e.create_deployment(flow.id, "nightly", tags=["prod"])
    runs = {
        "marvin": e.create_flow_run(flow_id=flow.id, name="marvin", tags=["a", "b"], state=Completed(),
                                    idempotency_key="k1", deployment_id=dep.id),
        "sad": e.create_flow_run(flow_id=flow.id, name="sad-Marvin", tags=["a"],
                                 state=Scheduled(scheduled_time=T0 + dt.timedelta(hours=1), name="Late"),
                                 work_queue_id=queue.id, work_queue_name=queue.name),
        "robot": e.create_flow_run(flow_id=other.id, name="marvin_robot", state=Running()),
        "none": e.create_flow_run(flow_id=other.id, name="Zed"),  # no state at all
    }
    tasks = {
        "t1": e.create_task_run(flow_run_id=runs["marvin"].id, task_key="a", dynamic_key="0", state=Completed()),
        "t2": e.create_task_run(flow_run_id=runs["sad"].id, task_key="a", dynamic_key="0", state=Pending()),
        "bg": e.create_task_run(task_key="bg", dynamic_key="0", state=Running()),
        "bare": e.create_task_run(flow_run_id=runs["robot"].id, task_key="b", dynamic_key="0"),  # stateless
    }
    return e, runs, tasks


def names(runs):
    return sorted(r.name for r in runs)


def test_null_semantics(world):
    e, runs, _ = world
    assert names(e.read_flow_runs(flow_run_filter={"state": {"type": {"not_any_": ["COMPLETED"]}}})) == \
        ["marvin_robot", "sad-Marvin"]  # the stateless run is excluded
    assert e.count_flow_runs(flow_run_filter={"state": {"type": {"not_any_": []}}}) == 4
    assert e.count_flow_runs(flow_run_filter={"state": {"type": {"any_": []}}}) == 0
    assert names(e.read_flow_runs(flow_run_filter={"idempotency_key": {"not_any_": ["zzz"]}})) == ["marvin"]
    assert names(e.read_flow_runs(flow_run_filter={"start_time": {"is_null_": True}})) == ["Zed", "marvin", "sad-Marvin"]


def test_like_is_case_insensitive_with_unescaped_wildcards(world):
    e, _, _ = world
    assert names(e.read_flow_runs(flow_run_filter={"name": {"like_": "MARVIN"}})) == \
        ["marvin", "marvin_robot", "sad-Marvin"]
    assert names(e.read_flow_runs(flow_run_filter={"name": {"like_": "n_r"}})) == ["marvin_robot"]
    assert names(e.read_flow_runs(flow_run_filter={"name": {"like_": "s%m"}})) == ["sad-Marvin"]
    assert names(e.read_flow_runs(work_queue_filter={"name": {"startswith_": ["marvin"]}})) == ["sad-Marvin"]
    assert e.count_flow_runs(work_queue_filter={"name": {"startswith_": ["robot"]}}) == 0


_LIKE_TEXT = st.text(alphabet="aAbB_%éÉ\n-", max_size=12)


@settings(max_examples=400, deadline=None)
@given(text=_LIKE_TEXT, value=_LIKE_TEXT, prefix=st.booleans())
def test_like_matches_as_sqlite_does(text, value, prefix):
    # The SQL Prefect's filters run on SQLite: `lower(x) LIKE lower('%value%')`, or
    # `x LIKE 'value%'` for a prefix (LIKE itself folds ASCII case only).
    pattern = value + "%" if prefix else "%" + value + "%"
    sql = "SELECT ? LIKE ?" if prefix else "SELECT lower(?) LIKE lower(?)"
    expected = bool(sqlite3.connect(":memory:").execute(sql, (text, pattern)).fetchone()[0])
    assert like_matcher(value, prefix=prefix)(text) is expected


def test_like_with_many_wildcards_does_not_backtrack():
    # Each `%` was a regex `.*`: this one backtracked through ~60^7 ways to place the
    # a's (hours, with the engine's lock held). Now each segment is searched once.
    e = Engine(clock=ManualClock(T0))
    flow = e.create_flow("f")
    e.create_flow_run(flow_id=flow.id, name="a" * 60)
    assert e.count_flow_runs(flow_run_filter={"name": {"like_": "%a" * 7 + "%b"}}) == 0
    assert e.count_flow_runs(flow_run_filter={"name": {"like_": "%a" * 7 + "%"}}) == 1


def test_empty_startswith_is_left_out_of_the_sql():
    # Prefect ORs the prefixes; an OR of nothing is an empty clause SQLAlchemy drops
    # from whatever combines it (checked against Prefect 3.1.0): no constraint under
    # and_, but unlike an empty filter `{}` it does not make an or_ TRUE.
    e = Engine(clock=ManualClock(T0))
    flow = e.create_flow("f")
    pool = e.create_work_pool("p")
    alpha, beta = e.create_work_queue(pool.id, "alpha"), e.create_work_queue(pool.id, "beta")
    for queue in (alpha, beta):
        e.create_flow_run(flow_id=flow.id, work_queue_id=queue.id)
    e.create_flow_run(flow_id=flow.id)  # no queue: never matched by a queue filter
    empty = {"startswith_": []}
    count = lambda wq: e.count_flow_runs(work_queue_filter=wq)  # noqa: E731
    assert count({"name": empty}) == 2
    assert count({"operator": "or_", "id": {"any_": [str(alpha.id)]}, "name": empty}) == 1
    assert count({"operator": "or_", "id": {"any_": []}, "name": empty}) == 0
    assert count({"operator": "or_", "name": {"any_": ["beta"], **empty}}) == 1
    assert count({"operator": "and_", "id": {"any_": [str(alpha.id)]}, "name": empty}) == 1
    assert count({"operator": "or_", "id": {"any_": [str(alpha.id)]}, "name": {}}) == 2  # `{}` is TRUE


def test_tags_and_operators(world):
    e, _, _ = world
    assert e.count_flow_runs(flow_run_filter={"tags": {"all_": []}}) == 4
    assert names(e.read_flow_runs(flow_run_filter={"tags": {"all_": ["b", "a"]}})) == ["marvin"]
    assert names(e.read_flow_runs(flow_run_filter={"tags": {"is_null_": True}})) == ["Zed", "marvin_robot"]
    # type and name criteria flatten into one list under the state's operator
    flat = {"state": {"operator": "or_", "type": {"any_": ["COMPLETED"]}, "name": {"any_": ["Late"]}}}
    assert names(e.read_flow_runs(flow_run_filter=flat)) == ["marvin", "sad-Marvin"]
    # an empty sub-filter is TRUE, so an or_ filter containing one matches everything
    assert e.count_flow_runs(flow_run_filter={"operator": "or_", "name": {}, "id": {"any_": []}}) == 4


def test_empty_filter_objects_are_not_neutral(world):
    e, _, _ = world
    assert names(e.read_flow_runs(task_run_filter={})) == ["marvin", "marvin_robot", "sad-Marvin"]
    assert names(e.read_flow_runs(deployment_filter={})) == ["marvin"]
    assert names(e.read_flow_runs(work_pool_filter={})) == ["sad-Marvin"]
    assert e.count_task_runs(flow_run_filter={}) == 3  # not the background task
    assert e.count_task_runs() == 4
    # the deprecated concurrency_limit criterion is ignored, but the filter still needs a deployment
    assert e.count_flow_runs(deployment_filter={"operator": "or_", "concurrency_limit": {"ge_": 99}}) == 1


def test_task_run_flow_run_id_defaults(world):
    e, runs, tasks = world
    assert e.count_task_runs(task_run_filter={"flow_run_id": {}}) == 3
    both = {"flow_run_id": {"is_null_": True, "any_": [str(runs["marvin"].id)]}}
    assert [t.id for t in e.read_task_runs(task_run_filter=both)] == [tasks["bg"].id]
    only_any = {"flow_run_id": {"is_null_": False, "any_": [str(runs["marvin"].id)]}}
    assert [t.id for t in e.read_task_runs(task_run_filter=only_any)] == [tasks["t1"].id]
    assert e.count_task_runs(task_run_filter={"flow_run_id": {"is_null_": None}}) == 4


def test_fast_path_ignores_operator_and_matches_general_path(world):
    e, runs, tasks = world
    ids = [str(runs["marvin"].id), str(runs["sad"].id)]
    fast = e.read_task_runs(flow_run_filter={"operator": "or_", "id": {"any_": ids}})
    general = e.read_task_runs(flow_run_filter={"id": {"any_": ids}, "name": {"like_": ""}})
    assert {t.id for t in fast} == {t.id for t in general} == {tasks["t1"].id, tasks["t2"].id}


def test_cross_entity_filters(world):
    e, _, tasks = world
    assert names(e.read_flow_runs(flow_filter={"name": {"any_": ["Other"]}})) == ["Zed", "marvin_robot"]
    assert names(e.read_flow_runs(flow_filter={"deployment": {"is_null_": True}})) == ["Zed", "marvin_robot"]
    assert names(e.read_flow_runs(deployment_filter={"flow_or_deployment_name": {"like_": "ETL"}})) == ["marvin"]
    assert names(e.read_flow_runs(task_run_filter={"state": {"type": {"any_": ["PENDING"]}}})) == ["sad-Marvin"]
    sub = e.read_task_runs(flow_filter={"name": {"any_": ["etl"]}})
    assert {t.id for t in sub} == {tasks["t1"].id, tasks["t2"].id}


def test_count_by_state_skips_stateless_task_runs(world):
    e, runs, _ = world
    counts = e.count_task_runs_by_state().as_dict()
    assert counts["COMPLETED"] == 1 and counts["PENDING"] == 1 and counts["RUNNING"] == 1
    assert sum(counts.values()) == 3  # four task runs, one without a state
    one = e.count_task_runs_by_state(flow_run_filter={"id": {"any_": [str(runs["sad"].id)]}}).as_dict()
    assert one["PENDING"] == 1 and sum(one.values()) == 1


def test_count_by_state_follows_transitions_and_rollbacks(world):
    e, runs, tasks = world
    ff = {"id": {"any_": [str(runs["sad"].id)]}}
    e.set_task_run_state(tasks["t2"].id, Running(), force=True)
    assert e.count_task_runs_by_state(flow_run_filter=ff).RUNNING == 1
    with pytest.raises(RuntimeError):
        with e.transaction():
            e.set_task_run_state(tasks["t2"].id, Completed(), force=True)
            assert e.count_task_runs_by_state(flow_run_filter=ff).COMPLETED == 1
            raise RuntimeError("undo")
    after = e.count_task_runs_by_state(flow_run_filter=ff)
    assert (after.RUNNING, after.COMPLETED) == (1, 0)


# sorts ---------------------------------------------------------------------------------------

def test_sort_orders_follow_sqlite(world):
    e, runs, _ = world
    # byte-wise names: upper case before lower case
    assert [r.name for r in e.read_flow_runs(sort="NAME_ASC")] == ["Zed", "marvin", "marvin_robot", "sad-Marvin"]
    assert [r.name for r in e.read_flow_runs(sort="NAME_DESC", limit=2)] == ["sad-Marvin", "marvin_robot"]
    # NULLs first ascending, last descending
    assert e.read_flow_runs(sort="NEXT_SCHEDULED_START_TIME_ASC")[-1].name == "sad-Marvin"
    e.set_flow_run_state(runs["robot"].id, Completed(), force=True)
    assert runs["robot"].end_time is not None
    assert e.read_flow_runs(sort="END_TIME_DESC")[0].name == "marvin_robot"
    assert e.read_flow_runs(sort="END_TIME_DESC", offset=1, limit=3)[0].end_time is None
    # START_TIME coalesces with the expected start time
    order = [r.name for r in e.read_flow_runs(sort="START_TIME_ASC")]
    assert order[0] == "Zed"  # neither time set: NULL first
    assert order.index("sad-Marvin") == 3  # expected start one hour after the others started
    ids = [r.id for r in e.read_flow_runs()]
    assert ids == sorted(ids, key=str, reverse=True)  # default ID_DESC = UUID text order
    assert [r.id for r in e.read_flow_runs(offset=1, limit=2)] == ids[1:3]


# index use (no timing: a scan of the table would raise) -----------------------------------------

class _NoScan(dict):
    def values(self):
        raise AssertionError("query scanned the whole table")

    def __iter__(self):
        raise AssertionError("query scanned the whole table")


def test_counts_and_limited_reads_come_from_indexes(world):
    e, runs, _ = world
    tables = e._store.tables
    e.read_flow_runs(sort="EXPECTED_START_TIME_ASC", limit=1)  # build the cold sort indexes first
    e.count_flow_runs(flow_run_filter={"expected_start_time": {"before_": T0.isoformat()}})
    saved = {k: tables[k].rows for k in ("flow_run", "task_run")}
    try:
        for k in saved:
            tables[k].rows = _NoScan(saved[k])
        assert e.count_task_runs_by_state().COMPLETED == 1
        assert e.count_task_runs_by_state(flow_run_filter={"id": {"any_": [str(runs["sad"].id)]}}).PENDING == 1
        assert e.count_task_runs(task_run_filter={"flow_run_id": {"any_": [str(runs["sad"].id)]}}) == 1
        assert e.count_flow_runs(flow_run_filter={"state": {"type": {"any_": ["COMPLETED", "RUNNING"]}}}) == 2
        assert e.count_flow_runs(flow_run_filter={"state": {"type": {"not_any_": ["COMPLETED"]}}}) == 2
        assert e.count_flow_runs() == 4
        late = e.read_flow_runs(flow_run_filter={"state": {"type": {"any_": ["SCHEDULED"]}}},
                                sort="EXPECTED_START_TIME_ASC", limit=5)
        assert [r.name for r in late] == ["sad-Marvin"]
        due = {"expected_start_time": {"before_": (T0 + dt.timedelta(minutes=30)).isoformat()}}
        assert e.count_flow_runs(flow_run_filter=due) == 2  # marvin and robot, not the 1-hour-late run
    finally:
        for k, rows in saved.items():
            tables[k].rows = rows


def test_tag_criteria_on_every_entity(world):
    e, runs, _ = world
    e.create_task_run(flow_run_id=runs["marvin"].id, task_key="tagged", dynamic_key="0", tags=["x", "y"])
    assert names(e.read_flow_runs(deployment_filter={"tags": {"all_": ["prod"]}})) == ["marvin"]
    assert e.count_flow_runs(deployment_filter={"tags": {"is_null_": True}}) == 0
    assert e.count_flow_runs(flow_filter={"tags": {"is_null_": True}}) == 4  # the flows have no tags
    assert e.count_flow_runs(flow_filter={"tags": {"all_": ["prod"]}}) == 0
    assert e.count_task_runs(task_run_filter={"tags": {"all_": ["y", "x"]}}) == 1
    assert e.count_task_runs(task_run_filter={"tags": {"is_null_": False}}) == 1
    assert e.count_task_runs(task_run_filter={"tags": {"operator": "or_", "all_": ["x"], "is_null_": True}}) == 5


def test_numbers_in_time_criteria_are_unix_times_as_prefect_reads_them():
    # Pydantic (under Prefect's DateTime) reads a number or numeric text as a unix
    # time: "20241103" is 1970-08-23, not a date in basic ISO form; a lower-case z is UTC.
    e = Engine(clock=ManualClock(T0))
    flow = e.create_flow("f")
    for hours in (0, 30, 60):
        e.create_flow_run(flow_id=flow.id, state=Scheduled(scheduled_time=T0 + dt.timedelta(hours=hours)))
    bound = T0 + dt.timedelta(hours=30)
    unix = int(bound.timestamp())

    def count(value, op="before_"):
        return e.count_flow_runs(flow_run_filter={"expected_start_time": {op: value}})
    assert count(bound.isoformat()) == 2
    for value in (unix, float(unix), str(unix), f"{unix}.0", unix * 1000, bound.isoformat()[:-6] + "z"):
        assert count(value) == 2, value
    assert count("20241103") == 0 and count("20241103", "after_") == 3   # 1970, as in Prefect 3.1.0
    assert count(-86400) == 0
    with pytest.raises(ValidationError, match="flow_runs.expected_start_time.before_ must be a datetime, got bool"):
        count(True)


def test_times_without_an_offset_are_utc():
    # Prefect 3.1.0 reads a time with no offset, or a bare date, as UTC.
    e = Engine(clock=ManualClock(T0))
    flow = e.create_flow("f")
    for hours in (0, 30, 60):
        e.create_flow_run(flow_id=flow.id, state=Scheduled(scheduled_time=T0 + dt.timedelta(hours=hours)))
    bound = (T0 + dt.timedelta(hours=30)).replace(tzinfo=None)
    for value in (bound.isoformat(), bound, (T0 + dt.timedelta(hours=30)).isoformat()):
        before = {"expected_start_time": {"before_": value}}
        assert e.count_flow_runs(flow_run_filter=before) == 2, value
    day_after = (T0 + dt.timedelta(days=1)).date().isoformat()  # midnight UTC
    assert e.count_flow_runs(flow_run_filter={"expected_start_time": {"after_": day_after}}) == 2
    naive = e.create_flow_run(flow_id=flow.id, expected_start_time="2024-11-05T06:00:00")
    assert naive.expected_start_time == dt.datetime(2024, 11, 5, 6, tzinfo=dt.timezone.utc)


U = "12345678-9abc-def0-1234-56789abcdef0"


@pytest.mark.parametrize("text, read", [
    (U, True), (U.upper(), True), (U.replace("-", ""), True), ("{" + U + "}", True), ("urn:uuid:" + U, True),
    # Python's uuid.UUID takes these; Prefect's pydantic refuses them, and so does runstate.
    ("1234-5678-9abc-def0-1234-5678-9abc-def0", False), ("{" + U, False), (U + "}", False),
    ("{" + U.replace("-", "") + "}", False), ("urn:uuid:" + U.replace("-", ""), False), ("URN:UUID:" + U, False),
    ("\uff11" + U[1:], False), (" " + U, False),
])
def test_ids_are_read_in_the_forms_prefect_reads(text, read):
    engine = Engine()
    if read:
        assert FlowRunFilterId(any_=[text]).any_ == [uuid.UUID(U)]
        assert engine.count_flow_runs(flow_run_filter={"id": {"any_": [text]}}) == 0
    else:
        with pytest.raises(ValidationError, match=r"flow_runs.id.any_\[0\] must be a UUID"):
            engine.count_flow_runs(flow_run_filter={"id": {"any_": [text]}})
        with pytest.raises(ValidationError, match="must be a UUID"):
            engine.create_flow_run(flow_id=text)


@pytest.mark.parametrize("make", [list, tuple, set, frozenset, lambda v: {k: 1 for k in v}.keys(), lambda v: iter(v)])
def test_a_list_criterion_takes_any_iterable_as_pydantic_does(world, make):
    engine, runs, _ = world
    ids = [runs["marvin"].id, runs["sad"].id]
    expected = engine.count_flow_runs(flow_run_filter={"id": {"any_": ids}})
    assert expected == 2
    assert engine.count_flow_runs(flow_run_filter={"id": {"any_": make(ids)}}) == expected
    assert FlowRunFilterStateType(any_=make(["COMPLETED"])).any_ == [StateType.COMPLETED]


@pytest.mark.parametrize("value", ["COMPLETED", b"COMPLETED", {"COMPLETED": 1}, 5])
def test_text_and_mappings_are_not_lists(value):
    with pytest.raises(ValidationError, match=r"flow_runs.state.type.any_ must be a list, got"):
        Engine().count_flow_runs(flow_run_filter={"state": {"type": {"any_": value}}})
