#!/usr/bin/env python3
"""Random scenarios for two of Prefect's UI routes: the flow-run scatter plot
(POST /ui/flow_runs/history) and the task-run chart (POST /ui/task_runs/dashboard/counts).

usage: python3 tests/oracle/ui_scenarios.py [--focused] SEED N OUT.jsonl

Standard library only (no Prefect, no engine). Same seed and N, same bytes. The scenarios
have history_scenarios.py's format and datasets (answered by the same script,
prefect_history.py), with more task runs and these queries instead:

* {"op": "ui_flow_run_history", "sort", "limit", "offset", "filters"}: `sort` a
  FlowRunSort name, `filters` with Prefect's body keys flows, flow_runs, task_runs,
  deployments, work_pools (the route takes no work queue filter);
* {"op": "dashboard_counts", "filters"}: `filters["task_runs"]` always present, usually
  with `start_time.after_` (the route requires it), sometimes `before_`; also flows,
  flow_runs, deployments, work_pools and work_queues.

Times in the requests are ISO text in UTC (as the UI sends them) or, now and then, with
another offset or none. tests/test_ui_dashboard.py replays the answers against the engine.
"""
import datetime
import sys
import uuid

import history_scenarios as hs
from scenario_files import write_scenarios

SORTS = ["ID_DESC", "START_TIME_ASC", "START_TIME_DESC", "EXPECTED_START_TIME_ASC", "EXPECTED_START_TIME_DESC",
         "NAME_ASC", "NAME_DESC", "NEXT_SCHEDULED_START_TIME_ASC", "END_TIME_DESC"]
SECOND, HOUR = hs.SECOND, hs.HOUR


def _scatter_query(rng, flow_run_ids, flow_names):
    filters = hs._filters(rng, False, flow_run_ids, flow_names)
    filters.pop("work_pool_queues", None)
    q = {"op": "ui_flow_run_history", "sort": rng.choice(SORTS), "limit": 1000, "offset": 0, "filters": filters}
    u = rng.random()
    if u < 0.4:
        q["limit"] = rng.choice([1, 2, 3, 5, 10])
    elif u < 0.45:
        q["limit"] = rng.choice([0, 1001])
    if rng.random() < 0.3:
        q["offset"] = rng.choice([1, 2, 4, 100])
    if rng.random() < 0.2:  # the route's defaults
        for key in ("sort", "limit", "offset"):
            if rng.random() < 0.5:
                del q[key]
    return q


def _utc_text(us, rng):
    # Mostly the UI's own form (JavaScript's toISOString), else history_scenarios' forms.
    if rng.random() < 0.7:
        t = hs.T0 + datetime.timedelta(microseconds=us)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    return hs._text(us, rng)


def _dashboard_query(rng, started_us, flow_run_ids, flow_names):
    anchor = rng.choice(started_us) if started_us and rng.random() < 0.8 else hs._time_us(rng)
    after = anchor - rng.choice([0, 0, SECOND, 59 * SECOND, 600 * SECOND, HOUR, rng.randint(0, 2 * HOUR)])
    after = after // 1000 * 1000 if rng.random() < 0.7 else after
    start_time = {"after_": _utc_text(after, rng)}
    u = rng.random()
    if u < 0.6:
        before = after + rng.choice([0, 20 * SECOND, 60 * SECOND, 59 * SECOND + 999_000, 1200 * SECOND, HOUR,
                                     rng.randint(0, 6 * HOUR), -60 * SECOND])
        start_time["before_"] = _utc_text(before, rng)
    elif u < 0.63:
        start_time = rng.choice([{"before_": _utc_text(after, rng)}, {"is_null_": False}])  # no after_: refused
    elif u < 0.66:
        start_time["is_null_"] = rng.random() < 0.5
    task_filter = {"start_time": start_time}
    if rng.random() < 0.15:
        task_filter["state"] = hs._state_filter(rng, for_tasks=True)  # replaced by the route
    if rng.random() < 0.25:
        extra = hs._task_run_filter(rng, flow_run_ids)
        extra.pop("state", None)
        task_filter.update(extra)
    if rng.random() < 0.05:
        task_filter["operator"] = "or_"
    filters = {"task_runs": task_filter}
    if rng.random() < 0.4:
        more = hs._filters(rng, False, flow_run_ids, flow_names)
        more.pop("task_runs", None)
        if "work_pool_queues" in more:
            more["work_queues"] = more.pop("work_pool_queues")
        filters.update(more)
    return {"op": "dashboard_counts", "filters": filters}


def gen_scenario(rng, sid):
    sc = hs.gen_scenario(rng, sid)
    flow_run_ids = [r["id"] for r in sc["flow_runs"]]
    first = len(sc["task_runs"])
    sc["task_runs"] += [hs.task_run(rng, i, flow_run_ids) for i in range(first, first + rng.randint(0, 24))]
    started = [r["start_us"] for r in sc["task_runs"] if r["start_us"] is not None]
    flow_names = [f["name"] for f in sc["flows"]]
    sc["queries"] = [_scatter_query(rng, flow_run_ids, flow_names) for _ in range(rng.randint(1, 3))]
    sc["queries"] += [_dashboard_query(rng, started, flow_run_ids, flow_names) for _ in range(rng.randint(2, 4))]
    return sc


def _hand_task(i, kind, start_us):
    """A task run of the hand-written scenarios, without a flow run, started at
    start_us, in state `kind` entered a second later."""
    return {"id": str(uuid.UUID(int=1000 + i, version=4)), "name": f"task-{i}", "tags": [],
            "state": [kind, kind.capitalize(), start_us + SECOND], "expected_us": start_us,
            "start_us": start_us, "total_us": SECOND, "flow_run": None, "task_key": "t", "dynamic_key": str(i)}


def _dq(after, before=None):
    start_time = {"after_": after} if before is None else {"after_": after, "before_": before}
    return {"op": "dashboard_counts", "filters": {"task_runs": {"start_time": start_time}}}


FOCUSED = [
    # Bucket edges in a one-hour window (3 min buckets): whole seconds, sub-second starts
    # (SQLite reads a start to the millisecond, half up, then to the second), every final
    # state and one that is not; after_ in the middle of a minute; a window without before_
    # (now's minute) with runs after now; non-UTC offsets.
    hs._hand("u-buckets", [], [
        _dq("2024-06-01T12:00:00.000Z", "2024-06-01T12:59:00.000Z"),
        _dq("2024-06-01T12:00:30.000Z", "2024-06-01T12:59:30.000Z"),
        _dq("2024-06-01T12:00:00.000Z"),
        _dq("2024-06-01T12:00:00.000Z", "2024-06-01T12:00:40.000Z"),
        _dq("2024-06-01T14:00:00+02:00", "2024-06-01T12:59:00Z"),
        _dq("2024-06-01T12:00:00Z", "2024-06-01T07:59:00-05:00"),
        _dq("2024-06-01T12:00:00", "2024-06-01T12:59:00"),
        _dq("2024-06-01T12:00:00.000Z", "2024-06-01T11:00:00.000Z"),
        {"op": "dashboard_counts", "filters": {"task_runs": {"start_time": {"before_": "2024-06-01T13:00:00Z"}}}},
        {"op": "dashboard_counts", "filters": {"task_runs": {}}},
    ], now_ms=30 * 60_000, task_runs=[
        _hand_task(i, kind, start) for i, (kind, start) in enumerate([
            ("COMPLETED", 0), ("FAILED", 1000), ("CRASHED", 179 * SECOND), ("CANCELLED", 179 * SECOND + 999_000),
            ("COMPLETED", 179 * SECOND + 999_499), ("COMPLETED", 179 * SECOND + 999_500), ("COMPLETED", 180 * SECOND),
            ("RUNNING", 200 * SECOND), ("FAILED", 30 * 60 * SECOND), ("COMPLETED", 31 * 60 * SECOND),
            ("COMPLETED", 3539 * SECOND), ("COMPLETED", 3599 * SECOND + 999_999), ("CANCELLED", 3600 * SECOND),
            ("COMPLETED", -SECOND)])]),
    # The scatter plot: every field, a RUNNING run's duration and a late run's lateness at
    # now, a run without a state (Prefect fails validating it), sorts with a limit.
    hs._hand("u-scatter", [
        hs._hand_run(1, "COMPLETED", "Completed", 0, ts_us=90 * SECOND, start_us=30 * SECOND, total_us=60 * SECOND),
        hs._hand_run(2, "RUNNING", "Running", 60 * SECOND, ts_us=100 * SECOND, start_us=100 * SECOND,
                     total_us=5 * SECOND),
        hs._hand_run(3, "SCHEDULED", "Late", 10 * SECOND, ts_us=0),
        hs._hand_run(4, "SCHEDULED", "Scheduled", HOUR, ts_us=0),
        hs._hand_run(5, "PENDING", "Pending", 20 * SECOND, ts_us=20 * SECOND)],
        [{"op": "ui_flow_run_history", "filters": {}},
         {"op": "ui_flow_run_history", "sort": "START_TIME_ASC", "limit": 2, "filters": {}},
         {"op": "ui_flow_run_history", "sort": "NAME_DESC", "offset": 1, "limit": 3, "filters": {}},
         {"op": "ui_flow_run_history", "limit": 1001, "filters": {}}], now_ms=200_000),
    hs._hand("u-stateless", [hs._hand_run(1, None, None, None), hs._hand_run(2, "COMPLETED", "Completed", 0)],
             [{"op": "ui_flow_run_history", "filters": {}},
              {"op": "ui_flow_run_history", "filters": {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}}]),
]


def main(argv):
    write_scenarios(argv, __doc__, FOCUSED, gen_scenario, "u")


if __name__ == "__main__":
    main(sys.argv)
