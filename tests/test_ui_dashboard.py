"""The UI's dashboard routes: the flow-run scatter plot (read_flow_run_history) and the
task-run chart (read_dashboard_task_run_counts).

The replay compares the engine with the answers Prefect 3.1.0's own route functions gave
(tests/data/ui_prefect_oracle.jsonl, from tests/oracle/ui_scenarios.py and
prefect_history.py); the focused tests pin what the replay cannot: where Prefect fails,
and the bucket arithmetic at its edges."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from engine import (
    Completed, Crashed, Engine, Failed, ManualClock, Pending, Running, Scheduled, SimpleFlowRun, State, StateType,
    TaskRunCount, ValidationError,
)
from engine.conformance.queries import _sort_key_text as sort_key
from engine.history import sqlite_ms
from engine.states import TERMINAL_STATES
from engine.validation import as_datetime
from oracle_answers import T0, compact, generator_writes, is_error, load_oracle_script, read_answers
from scenario_build import replayed, us_of
from query_reference import FILTER_ARGS

CASES = read_answers("ui_prefect_oracle.jsonl")
ARGS = {**FILTER_ARGS, "work_queues": "work_queue_filter"}
US = dt.timedelta(microseconds=1)
MINUTE = dt.timedelta(minutes=1)


def us(value: Any) -> int | None:
    """A time as us after T0, or a timedelta as us, as the oracle writes them."""
    return value // US if isinstance(value, dt.timedelta) else us_of(value)


def scatter(e: Engine, q: dict) -> list[list]:
    points = e.read_flow_run_history(**{k: q[k] for k in ("sort", "limit", "offset") if k in q},
                                     **{ARGS[k]: v for k, v in q["filters"].items()})
    return [[str(p.id), p.state_type and p.state_type.value, us(p.timestamp), us(p.duration), us(p.lateness)]
            for p in points]


def check_scatter(e: Engine, q: dict, got: list[list], expected: list[list], where: str) -> None:
    """Equal keys in order; runs of equal keys equal as sets unless the window cuts them
    (then each point both answers hold must agree)."""
    assert len(got) == len(expected), where
    sort = q.get("sort", "EXPECTED_START_TIME_DESC")
    # (the conformance runner's sort keys: equal keys may come in any order in Prefect)
    keys = [sort_key(e.read_flow_run(row[0]), sort) for row in got]
    assert keys == [sort_key(e.read_flow_run(row[0]), sort) for row in expected], where
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]] + [len(keys)]
    for a, b in zip(starts, starts[1:]):
        cut = (a == 0 and q.get("offset", 0) > 0) or (b == len(keys) and len(keys) == q.get("limit", 1000))
        if not cut:
            assert sorted(got[a:b]) == sorted(expected[a:b]), where
    mine = {row[0]: row for row in got}
    assert all(mine[row[0]] == row for row in expected if row[0] in mine), where


def utc(text: str) -> bool:
    """Whether an ISO time names UTC (an offset of zero, or none)."""
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.utcoffset() in (None, dt.timedelta(0))


def dashboard(e: Engine, q: dict) -> list[list[int]]:
    filters = {ARGS[k]: v for k, v in q["filters"].items()}
    return [[c.completed, c.failed] for c in e.read_dashboard_task_run_counts(**filters)]


def after_now(after: str, now: dt.datetime) -> bool:
    """Whether after_ falls in a minute later than now's: without before_, the window
    then runs backwards, and Prefect files runs by negative bucket numbers (a Python
    list index from the end)."""
    minute = dt.datetime.fromisoformat(after.replace("Z", "+00:00")).replace(second=0, microsecond=0)
    return (minute if minute.tzinfo else minute.replace(tzinfo=dt.timezone.utc)) > now


def reference_chart(e: Engine, q: dict) -> list[list[int]]:
    """The chart as the README states the engine's rules, from read_task_runs (which
    takes no work pool or queue filter: those restrict the task run's flow run, as
    read_flow_runs applies them) and the bucket arithmetic done again: runs outside
    the 20 buckets or without a start are left out."""
    filters = {ARGS[k]: v for k, v in q["filters"].items() if k not in ("work_pools", "work_queues")}
    task_filter = dict(filters["task_run_filter"], state={"type": {"any_": [t.value for t in TERMINAL_STATES]}})
    runs = e.read_task_runs(**{**filters, "task_run_filter": task_filter})
    pool_and_queue = {ARGS[k]: v for k, v in q["filters"].items() if k in ("work_pools", "work_queues")}
    if pool_and_queue:
        in_pools = {r.id for r in e.read_flow_runs(**pool_and_queue)}
        runs = [r for r in runs if r.flow_run_id in in_pools]
    window = task_filter["start_time"]
    minute = lambda text: as_datetime(text, "t").replace(second=0, microsecond=0)  # noqa: E731
    start = minute(window["after_"])
    end = minute(window.get("before_", e.now().isoformat())) + MINUTE - US
    width = ((end - start) / 20).total_seconds()
    bars = [[0, 0] for _ in range(20)]
    for run in runs:
        if run.start_time is None or width <= 0:
            continue
        k = math.floor((sqlite_ms(run.start_time) // 1000 - sqlite_ms(start) // 1000) / width)
        if 0 <= k < 20:
            bars[k][run.state_type in (StateType.FAILED, StateType.CRASHED)] += 1
    return bars


def check_dashboard(e: Engine, q: dict, expected: Any, where: str) -> None:
    task_filter = q["filters"]["task_runs"]
    after = task_filter.get("start_time", {}).get("after_")
    backwards = after is not None and "before_" not in task_filter["start_time"] and after_now(after, e.now())
    if is_error(expected) and "after_ is required" in expected["error"]:
        with pytest.raises(ValidationError, match=r"task_runs\.start_time\.after_ is required"):
            dashboard(e, q)
        return
    if is_error(expected) and "validation error for TaskRunFilter" in expected["error"]:
        with pytest.raises(ValidationError):
            dashboard(e, q)
        return
    got = dashboard(e, q)
    if is_error(expected) or not utc(after) or backwards or task_filter.get("operator") == "or_":
        # Where Prefect fails or answers wrongly, the engine answers by its stated rules
        # (README, Differences).
        assert got == reference_chart(e, q), where
    if is_error(expected):
        reason = expected["error"]
        if "IndexError" in reason:      # a start outside the 20 buckets: after now, a shifted window or or_
            assert "before_" not in task_filter["start_time"] or not utc(after) \
                or task_filter.get("operator") == "or_", where
        elif "work_queue.work_pool_id" in reason:  # a work pool filter without a queue filter
            assert "work_pools" in q["filters"] and "work_queues" not in q["filters"], where
        else:                           # floor(NULL): an or_ filter let in a run without a start time
            assert "floor" in reason or "user-defined function" in reason, where
            assert task_filter.get("operator") == "or_", where
        return
    if not utc(after) or backwards or task_filter.get("operator") == "or_":
        # A non-UTC after_ read as UTC wall time; a backwards window; an or_ filter letting
        # in runs outside the window: Prefect files those by bucket numbers outside 0..19,
        # which its list takes as indexes from the end (README, Differences).
        return
    assert got == expected, where


@pytest.mark.parametrize("case", CASES, ids=[c["scenario"]["id"] for c in CASES])
def test_ui_routes_match_prefect(case):
    for e, q, expected, where in replayed(case):
        if q["op"] == "dashboard_counts":
            check_dashboard(e, q, expected, where)
        elif is_error(expected) and "validation errors for SimpleFlowRun" in expected["error"]:
            # Prefect cannot validate a run without a state; the engine gives its point (in
            # this window, unless runs of equal sort keys came in another order).
            assert any(row[1] is None for row in scatter(e, {**q, "offset": 0, "limit": 1000})), where
        elif is_error(expected):
            with pytest.raises(ValidationError):
                scatter(e, q)
        else:
            check_scatter(e, q, scatter(e, q), expected, where)


def test_the_oracle_file_covers_what_it_should():
    answers = [(q, a) for c in CASES for q, a in zip(c["scenario"]["queries"], c["answer"]["answers"])]
    charts = [a for q, a in answers if q["op"] == "dashboard_counts" and not is_error(a)
              and utc(q["filters"]["task_runs"]["start_time"]["after_"])]
    assert len(charts) >= 330  # compared with Prefect bucket by bucket (or_ and backwards ones aside)
    assert sum(1 for a in charts if any(b != [0, 0] for b in a)) >= 80
    assert sum(1 for a in charts if any(b[1] for b in a)) >= 20          # failed runs counted
    assert sum(1 for a in charts for b in a if b[0] + b[1] > 1) >= 20    # buckets holding several runs
    points = [a for q, a in answers if q["op"] == "ui_flow_run_history" and not is_error(a)]
    assert sum(1 for a in points if a) >= 80
    assert sum(1 for a in points for row in a if row[3] < 0) >= 1       # a RUNNING run's state after now
    assert {q.get("sort") for q, _ in answers if q["op"] == "ui_flow_run_history"} >= set(
        load_oracle_script("ui_scenarios").SORTS)
    assert sum(1 for _, a in answers if is_error(a)) >= 20


def test_the_generator_still_writes_the_recorded_scenarios(tmp_path):
    assert generator_writes("ui_scenarios", ["--focused", "1", "150"], tmp_path / "ui_in.jsonl") == [
        compact(c["scenario"]) for c in CASES]


# --- focused cases ------------------------------------------------------------------------------

@pytest.fixture
def engine() -> Engine:
    return Engine(ManualClock(T0))


def task_run(e: Engine, flow_run_id: Any, i: int, started: dt.datetime, final: State | None) -> Any:
    """A task run that started at `started` and, unless `final` is None, ended a second later."""
    run = e.create_task_run(flow_run_id=flow_run_id, task_key="t", dynamic_key=str(i), start_time=started,
                            state=Running(timestamp=started))
    if final is not None:
        final.timestamp = started + dt.timedelta(seconds=1)
        e.set_task_run_state(run.id, final, force=True)
    return run


def chart(e: Engine, after: Any, before: Any = None, **filters: Any) -> list[tuple[int, int]]:
    start_time = {"after_": after} if before is None else {"after_": after, "before_": before}
    task_filter = {"start_time": start_time, **filters.pop("task_runs", {})}
    return [(c.completed, c.failed) for c in e.read_dashboard_task_run_counts(task_filter, **filters)]


def test_a_point_per_run_with_its_estimates_at_now(engine):
    flow = engine.create_flow("f")
    running = engine.create_flow_run(flow_id=flow.id, name="running", expected_start_time=T0 - 10 * MINUTE,
                                     start_time=T0 - 5 * MINUTE, total_run_time=dt.timedelta(seconds=30),
                                     state=Running(timestamp=T0 - MINUTE))
    late = engine.create_flow_run(flow_id=flow.id, name="late", state=Scheduled(scheduled_time=T0 - 2 * MINUTE))
    engine.create_flow_run(flow_id=flow.id, name="stateless")
    engine.clock.advance(MINUTE)
    points = {p.id: p for p in engine.read_flow_run_history()}
    assert points[running.id] == SimpleFlowRun(running.id, StateType.RUNNING, T0 - 5 * MINUTE,
                                               dt.timedelta(seconds=150), 5 * MINUTE)
    assert points[late.id] == SimpleFlowRun(late.id, StateType.SCHEDULED, T0 - 2 * MINUTE, dt.timedelta(0),
                                            3 * MINUTE)
    stateless = next(p for p in points.values() if p.id not in (running.id, late.id))
    assert (stateless.state_type, stateless.timestamp) == (None, None)


def test_the_scatter_plot_reads_as_read_flow_runs(engine):
    flow = engine.create_flow("f")
    for i in range(12):
        engine.create_flow_run(flow_id=flow.id, name=f"r{i:02}", state=Scheduled(scheduled_time=T0 + i * MINUTE),
                               tags=["even"] if i % 2 == 0 else [])
    read = engine.read_flow_runs(flow_run_filter={"tags": {"all_": ["even"]}}, sort="NAME_DESC", offset=1, limit=3)
    points = engine.read_flow_run_history(sort="NAME_DESC", limit=3, offset=1,
                                          flow_run_filter={"tags": {"all_": ["even"]}})
    assert [p.id for p in points] == [r.id for r in read] and len(points) == 3
    default = engine.read_flow_run_history()  # the route's defaults: latest expected start first
    assert [p.timestamp for p in default] == [T0 + i * MINUTE for i in reversed(range(12))]


def test_the_scatter_plot_shows_at_most_1000_runs(engine):
    flow = engine.create_flow("f")
    for i in range(1001):
        engine.create_flow_run(flow_id=flow.id, name=f"r{i}", state=Scheduled(scheduled_time=T0 + i * MINUTE))
    assert len(engine.read_flow_run_history()) == len(engine.read_flow_run_history(limit=None)) == 1000
    assert engine.read_flow_run_history(limit=None)[-1].timestamp == T0 + MINUTE  # the earliest is left out
    assert len(engine.read_flow_run_history(limit=1000, offset=1000)) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 1001}, "limit must be at most 1000, got 1001"),
    ({"limit": -1}, "limit"),
    ({"limit": True}, "limit must be an integer"),
    ({"offset": -1}, "offset"),
    ({"sort": "DURATION_DESC"}, "DURATION_DESC"),
    ({"work_pool_filter": {"nope": 1}}, "work_pools.nope"),
])
def test_bad_scatter_requests_are_refused(engine, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        engine.read_flow_run_history(**kwargs)


def test_buckets_divide_the_minutes_from_after_to_before(engine):
    run = engine.create_flow_run(flow_id=engine.create_flow("f").id)
    # A window of 60 minutes less 1 us (12:00:00 .. 12:59:59.999999): 20 buckets of 3 minutes.
    starts = [(dt.timedelta(0), Completed()), (dt.timedelta(seconds=179, microseconds=999_499), Failed()),
              (dt.timedelta(seconds=179, microseconds=999_500), Completed()),  # read as 12:03:00
              (dt.timedelta(minutes=3), Crashed()), (dt.timedelta(minutes=59, seconds=59), State(type="CANCELLED")),
              (dt.timedelta(minutes=30), None), (dt.timedelta(minutes=31), Pending())]
    for i, (offset, final) in enumerate(starts):
        task_run(engine, run.id, i, T0 + offset, final)
    bars = chart(engine, "2024-06-01T12:00:00Z", "2024-06-01T12:59:59Z")
    assert bars[0] == (1, 1) and bars[1] == (1, 1) and bars[19] == (1, 0)
    assert sum(c + f for c, f in bars) == 5  # the RUNNING and PENDING runs are not final
    # after_ in mid-minute: the window still starts with its minute, but the run that
    # started at 12:00:00 is before after_.
    assert chart(engine, "2024-06-01T12:00:30Z", "2024-06-01T12:59:59Z") == [(0, 1)] + bars[1:]
    # A state filter is replaced by "a final state"; other criteria stay.
    assert chart(engine, "2024-06-01T12:00:00Z", "2024-06-01T12:59:59Z",
                 task_runs={"state": {"type": {"any_": ["RUNNING"]}}}) == bars
    assert sum(map(sum, chart(engine, "2024-06-01T12:00:00Z", "2024-06-01T12:59:00Z",
                              task_runs={"name": {"any_": ["no such name"]}}))) == 0


def test_without_before_the_window_ends_with_nows_minute_and_later_starts_are_left_out(engine):
    run = engine.create_flow_run(flow_id=engine.create_flow("f").id)
    for i, minutes in enumerate([0, 19, 25]):
        task_run(engine, run.id, i, T0 + minutes * MINUTE, Completed())
    engine.clock.advance(19 * MINUTE + dt.timedelta(seconds=30))  # now 12:19:30: a 20-minute window
    bars = chart(engine, "2024-06-01T12:00:00Z")
    assert bars[0] == (1, 0) and bars[19] == (1, 0) and sum(c for c, _ in bars) == 2  # 12:25 is after now


def test_times_in_other_offsets_are_the_same_instants(engine):
    run = engine.create_flow_run(flow_id=engine.create_flow("f").id)
    for i, minutes in enumerate([0, 7, 40]):
        task_run(engine, run.id, i, T0 + minutes * MINUTE, Failed())
    utc_bars = chart(engine, "2024-06-01T12:00:00Z", "2024-06-01T12:59:00Z")
    assert chart(engine, "2024-06-01T14:00:00+02:00", "2024-06-01T07:59:00-05:00") == utc_bars
    assert chart(engine, dt.datetime(2024, 6, 1, 12), dt.datetime(2024, 6, 1, 12, 59)) == utc_bars  # naive: UTC


def test_an_or_filter_can_let_in_runs_without_a_start_and_they_have_no_bucket(engine):
    run = engine.create_flow_run(flow_id=engine.create_flow("f").id)
    task_run(engine, run.id, 0, T0, Completed())
    unstarted = engine.create_task_run(flow_run_id=run.id, task_key="t", dynamic_key="never", state=Completed())
    assert unstarted.start_time is None
    bars = chart(engine, "2024-06-01T12:00:00Z", "2024-06-01T12:59:00Z", task_runs={"operator": "or_"})
    assert sum(c for c, _ in bars) == 1
    # Nor does a backwards window (before_ a minute before after_: its width rounds to 0 us)
    # hold the runs an or_ filter lets in.
    assert chart(engine, "2024-06-01T12:01:00Z", "2024-06-01T12:00:00Z", task_runs={"operator": "or_"}) \
        == [(0, 0)] * 20


def test_work_pool_and_queue_filters_restrict_the_flow_run(engine):
    flow = engine.create_flow("f")
    pool = engine.create_work_pool("pool-a", type="process")
    other = engine.create_work_pool("pool-b", type="docker")
    high = engine.create_work_queue(pool.id, "high")
    for i, queue in enumerate([engine.read_work_queue(pool.default_queue_id), high,
                               engine.read_work_queue(other.default_queue_id), None]):
        run = engine.create_flow_run(flow_id=flow.id, work_queue_id=queue and queue.id)
        task_run(engine, run.id, i, T0 + i * MINUTE, Completed())
    window = ("2024-06-01T12:00:00Z", "2024-06-01T12:59:00Z")
    total = lambda **f: sum(c for c, _ in chart(engine, *window, **f))  # noqa: E731
    assert total() == 4
    assert total(work_pool_filter={"name": {"any_": ["pool-a"]}}) == 2
    assert total(work_queue_filter={"name": {"any_": ["high"]}}) == 1
    assert total(work_pool_filter={"type": {"any_": ["docker"]}}, work_queue_filter={"name": {"any_": ["high"]}}) == 0
    assert total(work_pool_filter={}) == 3  # any pool: the run without a queue is out


@pytest.mark.parametrize("task_filter, message", [
    ({}, r"task_runs\.start_time\.after_ is required"),
    ({"start_time": {"before_": "2024-06-01T12:00:00Z"}}, r"task_runs\.start_time\.after_ is required"),
    ({"start_time": {"after_": "yesterday"}}, r"task_runs\.start_time\.after_"),
    ({"start_time": {"after_": "2024-06-01T12:00:00Z"}, "colour": 1}, r"task_runs\.colour"),
    (None, r"task_runs\.start_time\.after_ is required"),
])
def test_bad_chart_requests_are_refused(engine, task_filter, message):
    with pytest.raises(ValidationError, match=message):
        engine.read_dashboard_task_run_counts(task_filter)


def test_an_empty_window_has_20_empty_buckets(engine):
    bars = engine.read_dashboard_task_run_counts({"start_time": {"after_": T0}})
    assert bars == [TaskRunCount(0, 0)] * 20
