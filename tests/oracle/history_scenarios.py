#!/usr/bin/env python3
"""Random scenarios for Prefect's run-history and lateness routes (POST /flow_runs/history,
/task_runs/history, /flow_runs/lateness).

usage: python3 tests/oracle/history_scenarios.py [--focused] SEED N OUT.jsonl

Standard library only (no Prefect, no engine). Writes one scenario per line, ids
"h<SEED>-<i>"; with --focused, the hand-written scenarios of FOCUSED come first. Same
seed and N, same bytes. prefect_history.py answers the scenarios, and
tests/test_history.py replays the answers against the engine.

A scenario (times are integer offsets from T0 = 2024-06-01T12:00Z: `*_us` in
microseconds, `now_ms` in milliseconds):

* `now_ms`: the fixed "now" of every query;
* `flows` [{name, tags}]; `pools` [{name, type}], each with its own "default" queue;
  `queues` [{pool, name}]; `deployments` [{name, flow, tags, paused, queue}], `queue`
  a "pool/queue" label or null;
* `flow_runs` [{id, name, flow, deployment (name or null), queue (label or null:
  work_queue_id and work_queue_name), tags, state ([type, name, timestamp_us] or null),
  expected_us, start_us, total_us}] and `task_runs` [{id, name, flow_run (id or null),
  task_key, dynamic_key, tags, state, expected_us, start_us, total_us}]. The columns are
  those a run created with that state gets from the engine's public API
  (`create_flow_run(..., state=...)`, forced, with those fields): a stated run has an
  expected start time (a SCHEDULED one's is its scheduled time), a RUNNING one a start
  time. The columns the state's bookkeeping sets are not written here; the oracle and
  the replay derive them: run_count 1 for RUNNING, else 0; next_scheduled_start_time
  the expected start of a SCHEDULED run; end_time the state's timestamp for a final
  state of a run that started. Runs without a state have no expected start time, except
  in the focused scenario "h-stateless";
* `queries` [{op, history_start, history_end, history_interval_seconds, filters}] with
  op "flow_run_history" or "task_run_history" (times as ISO text in several forms), or
  [{op: "lateness", filters}]; `filters` maps Prefect's body keys (flows, flow_runs,
  task_runs, deployments, work_pools, work_pool_queues) to filter JSON.

Times are mostly whole seconds or milliseconds; about one in twenty has a sub-millisecond
part (never exactly half a millisecond, whose rounding SQLite leaves to floating point,
and never in the last half millisecond of a minute for history bounds, which SQLite's
'%f' prints as 59.999).
"""
import datetime
import sys
import uuid

from scenario_files import write_scenarios

T0 = datetime.datetime(2024, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
SECOND = 1_000_000
HOUR = 3600 * SECOND
TYPES = ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING"]
NAMES_BY_TYPE = {
    "SCHEDULED": ["Scheduled", "Late", "AwaitingRetry", "Resuming"],
    "PENDING": ["Pending"],
    "RUNNING": ["Running", "Retrying"],
    "COMPLETED": ["Completed", "Cached", "completed", "Été", "B", "a"],
    "FAILED": ["Failed"],
    "CANCELLED": ["Cancelled"],
    "CRASHED": ["Crashed"],
    "PAUSED": ["Paused", "Suspended"],
    "CANCELLING": ["Cancelling"],
}
RUN_NAMES = ["alpha", "beta", "Gamma", "delta-1", "etl_run"]
TAGS = ["etl", "prod", "dev"]
FLOW_NAMES = ["etl", "report", "ml"]
INTERVALS = [1, 1.5, 60, 300, 900, 900, 1800, 3600, 3600, 3600, 7200, 86400, 2.0006, 1.0004, 3600.0]
BAD_INTERVALS = [0.5, 0.9999, 0, -60]


def _id(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _sub_ms(rng):
    """A microsecond part that is not a whole, nor exactly half, millisecond."""
    return rng.choice([1, 123, 499, 501, 876, 999])


def _time_us(rng, span_us=4 * HOUR, grid_us=15 * 60 * SECOND):
    """A time around T0 - 1 h .. T0 + span: on a grid (interval boundaries), whole
    seconds, whole milliseconds, or (rarely) with a sub-millisecond part."""
    u = rng.random()
    base = rng.randint(-HOUR, span_us)
    if u < 0.3:
        return (base // grid_us) * grid_us
    if u < 0.65:
        return (base // SECOND) * SECOND
    if u < 0.95:
        return (base // 1000) * 1000
    return (base // 1000) * 1000 + _sub_ms(rng)


def _duration_us(rng):
    return rng.choice([0, 0, SECOND, 59 * SECOND, 90 * SECOND + 500_000, 999_000, 1_999_000, 3 * HOUR,
                       rng.randint(0, 600) * SECOND, rng.randint(0, 600_000) * 1000,
                       rng.randint(0, 600_000) * 1000 + _sub_ms(rng)])


def _run(rng):
    """The columns shared by flow and task runs (see the module docstring)."""
    run = {"id": _id(rng), "name": rng.choice(RUN_NAMES), "tags": rng.sample(TAGS, rng.randint(0, 2))}
    if rng.random() < 0.08:
        run.update(state=None, expected_us=None, start_us=None, total_us=0)
        return run
    kind = rng.choice(TYPES)
    expected = _time_us(rng)
    # States were entered before or after the expected start; a SCHEDULED run was
    # scheduled earlier, most others moved on later.
    if kind == "SCHEDULED":
        ts = expected - rng.choice([0, SECOND, 600 * SECOND, rng.randint(0, 2 * HOUR)])
    else:
        ts = expected + rng.choice([0, 1000, SECOND, rng.randint(0, HOUR), rng.randint(0, 4 * HOUR)])
    start = None
    if kind == "RUNNING" or (kind != "SCHEDULED" and rng.random() < 0.6):
        start = rng.choice([expected, expected + rng.choice([1000, 100_000, 900_000, SECOND, 1_100_000]),
                            expected - rng.choice([1000, SECOND, 60 * SECOND]),
                            expected + rng.randint(0, 2 * HOUR) // 1000 * 1000,
                            expected + rng.randint(0, 10 * SECOND) // 1000 * 1000 + _sub_ms(rng)])
        if kind == "RUNNING":
            ts = max(ts, start)
    run.update(state=[kind, rng.choice(NAMES_BY_TYPE[kind]), ts], expected_us=expected, start_us=start,
               total_us=0 if kind in ("SCHEDULED", "PENDING") and rng.random() < 0.8 else _duration_us(rng))
    return run


# --- times as the body carries them ----------------------------------------------------------

def _text(us, rng):
    """ISO text for T0 + us, in one of the forms a client sends."""
    t = T0 + datetime.timedelta(microseconds=us)
    form = rng.random()
    if form < 0.45:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if t.microsecond else t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form < 0.7:
        return t.isoformat()
    if form < 0.85:
        return t.astimezone(datetime.timezone(datetime.timedelta(hours=rng.choice([2, -5, 5.5])))).isoformat()
    return t.replace(tzinfo=None).isoformat()  # no offset: UTC


def _bound_us(rng):
    us = _time_us(rng, grid_us=HOUR)
    if us % 1000 and (us // 1000) % 60_000 >= 59_999:
        us -= 1000  # keep clear of '%f' printing 59.9995.. as 59.999
    return us


def _history_query(rng, op, expected_us):
    """A history request; its range usually starts at or a little before the expected
    start of one of the runs (`expected_us`), so that intervals have runs."""
    interval = rng.choice(BAD_INTERVALS) if rng.random() < 0.03 else rng.choice(INTERVALS)
    width = max(1, int(interval * SECOND))
    start = _bound_us(rng)
    if expected_us and rng.random() < 0.75:
        anchor = rng.choice(expected_us)
        start = anchor - rng.choice([0, 0, width * rng.randint(1, 3), rng.randint(0, 2 * width) // 1000 * 1000])
        if start % 1000 and (start // 1000) % 60_000 >= 59_999:
            start -= 1000
    u = rng.random()
    if u < 0.35:
        end = start + width * rng.randint(1, 8)  # a whole number of intervals
    elif u < 0.7:
        end = start + width * rng.randint(0, 6) + rng.choice([1000, SECOND, width // 2, _sub_ms(rng)])
    elif u < 0.8:
        end = start - rng.choice([0, 0, SECOND, HOUR])  # not after the start
    elif u < 0.9:
        end = _bound_us(rng)
    else:
        end = start + width * rng.choice([499, 500, 501, 2000])  # about the 500-interval cap
    seconds = interval if isinstance(interval, float) or rng.random() < 0.7 else float(interval)
    return {"op": op, "history_start": _text(start, rng), "history_end": _text(end, rng),
            "history_interval_seconds": seconds, "filters": {}}


# --- filters ---------------------------------------------------------------------------------

def _state_filter(rng, for_tasks=False):
    f = {}
    if rng.random() < 0.8:
        # (Prefect's task-run state filter has no not_any_: an error, now and then.)
        negate = rng.random() < (0.05 if for_tasks else 0.5)
        f["type"] = {"not_any_" if negate else "any_": rng.sample(TYPES, rng.randint(1, 3))}
    if rng.random() < 0.35:
        f["name"] = {"any_": rng.sample(sorted({n for ns in NAMES_BY_TYPE.values() for n in ns}), rng.randint(1, 3))}
    if len(f) == 2 and rng.random() < 0.3:
        f["operator"] = "or_"
    return f


def _flow_run_filter(rng, flow_run_ids):
    f = {}
    for _ in range(1 if rng.random() < 0.75 else 2):
        u = rng.random()
        if u < 0.3:
            f["state"] = _state_filter(rng)
        elif u < 0.4 and flow_run_ids:
            f["id"] = {"any_": rng.sample(flow_run_ids, min(len(flow_run_ids), rng.randint(1, 6)))}
        elif u < 0.5:
            f["tags"] = {"all_": rng.sample(TAGS, rng.randint(1, 2))}
        elif u < 0.6:
            f["deployment_id"] = {"is_null_": rng.random() < 0.5}
        elif u < 0.7:
            f["work_queue_name"] = {"any_": rng.sample(["default", "high", "low"], rng.randint(1, 2))}
        elif u < 0.8:
            f["expected_start_time"] = {rng.choice(["after_", "before_"]): _text(_time_us(rng), rng)}
        elif u < 0.9:
            f["start_time"] = {"is_null_": rng.random() < 0.5}
        else:
            f["name"] = {"like_": rng.choice(["a", "ETA", "run"])}
    return f


def _task_run_filter(rng, flow_run_ids):
    u = rng.random()
    if u < 0.35:
        return {"state": _state_filter(rng, for_tasks=True)}
    if u < 0.5:
        return {"flow_run_id": {"is_null_": rng.random() < 0.5}}
    if u < 0.6 and flow_run_ids:
        return {"flow_run_id": {"any_": rng.sample(flow_run_ids, min(len(flow_run_ids), rng.randint(1, 3)))}}
    if u < 0.75:
        return {"tags": {"all_": rng.sample(TAGS, 1)}}
    if u < 0.85:
        return {"name": {"any_": rng.sample(RUN_NAMES, 2)}}
    return {}


def _filters(rng, for_tasks, flow_run_ids, flow_names):
    out = {}
    if rng.random() < 0.35:
        return out
    keys = ["flows", "flow_runs", "flow_runs", "task_runs", "deployments"]
    if not for_tasks:
        keys += ["work_pools", "work_pool_queues"]
    for key in rng.sample(keys, 1 if rng.random() < 0.8 else 2):
        if key == "flows":
            out[key] = rng.choice([{"name": {"any_": rng.sample(flow_names, min(len(flow_names), 2))}},
                                   {"name": {"any_": [rng.choice(FLOW_NAMES)]}}, {"tags": {"all_": ["prod"]}}, {}])
        elif key == "flow_runs":
            out[key] = _flow_run_filter(rng, flow_run_ids)
        elif key == "task_runs":
            out[key] = _task_run_filter(rng, flow_run_ids)
        elif key == "deployments":
            out[key] = rng.choice([{"name": {"any_": ["d1"]}}, {"tags": {"all_": ["prod"]}},
                                   {"paused": {"eq_": rng.random() < 0.5}},
                                   {"work_queue_name": {"any_": ["default"]}}, {}])
        elif key == "work_pools":
            out[key] = rng.choice([{"name": {"any_": ["pool-a"]}}, {"type": {"any_": ["docker"]}}, {}])
        else:
            out[key] = rng.choice([{"name": {"any_": ["high"]}}, {"name": {"any_": ["default", "low"]}}, {}])
    return out


# --- scenarios -------------------------------------------------------------------------------

def task_run(rng, i, flow_run_ids):
    """A random task run (dynamic key `i`), of one of `flow_run_ids` or of none."""
    run = _run(rng)
    run.update(flow_run=rng.choice(flow_run_ids) if flow_run_ids and rng.random() < 0.85 else None,
               task_key=rng.choice(["extract", "load"]), dynamic_key=str(i))
    return run


def gen_scenario(rng, sid):
    flows = [{"name": name, "tags": rng.sample(["prod", "dev"], rng.randint(0, 1))}
             for name in FLOW_NAMES[:rng.randint(1, 3)]]
    pools = [{"name": name, "type": kind} for name, kind in [("pool-a", "process"), ("pool-b", "docker")]
             [:rng.randint(0, 2)]]
    queues = [{"pool": p["name"], "name": q} for p in pools for q in ("high", "low")[:rng.randint(0, 2)]]
    labels = [f"{p['name']}/default" for p in pools] + [f"{q['pool']}/{q['name']}" for q in queues]
    deployments = [{"name": f"d{i + 1}", "flow": rng.choice(flows)["name"], "tags": rng.sample(["prod"], rng.randint(0, 1)),
                    "paused": rng.random() < 0.3, "queue": rng.choice(labels) if labels and rng.random() < 0.7 else None}
                   for i in range(rng.randint(0, 3))]
    flow_runs = []
    for _ in range(rng.randint(0, 16)):
        run = _run(rng)
        dep = rng.choice(deployments) if deployments and rng.random() < 0.5 else None
        run.update(flow=dep["flow"] if dep else rng.choice(flows)["name"], deployment=dep["name"] if dep else None,
                   queue=rng.choice(labels) if labels and rng.random() < 0.6 else None)
        flow_runs.append(run)
    all_flow_run_ids = [r["id"] for r in flow_runs]
    task_runs = [task_run(rng, i, all_flow_run_ids) for i in range(rng.randint(0, 8))]
    sc = {"id": sid, "now_ms": rng.choice([0, 2 * 3600_000, rng.randint(0, 8 * 3600) * 1000,
                                           rng.randint(0, 8 * 3600_000)]),
          "flows": flows, "pools": pools, "queues": queues, "deployments": deployments,
          "flow_runs": flow_runs, "task_runs": task_runs, "queries": []}
    for _ in range(rng.randint(2, 5)):
        op = rng.choice(["flow_run_history", "flow_run_history", "task_run_history"])
        runs = flow_runs if op == "flow_run_history" else task_runs
        q = _history_query(rng, op, [r["expected_us"] for r in runs if r["expected_us"] is not None])
        q["filters"] = _filters(rng, op == "task_run_history", all_flow_run_ids, [f["name"] for f in flows])
        sc["queries"].append(q)
    for _ in range(rng.randint(1, 2)):
        sc["queries"].append({"op": "lateness",
                              "filters": _filters(rng, False, all_flow_run_ids, [f["name"] for f in flows])})
    return sc


# --- answers -------------------------------------------------------------------------------

def compact(history, ms_of):
    """A history (Prefect's HistoryResponse rows or the engine's: the same attribute
    names; times read by `ms_of` as ms after T0) as {"start_ms", "width_ms", "count",
    "states": {index: states}} (only the intervals with runs listed) when its
    intervals are `count` adjacent ones of one width from `start_ms`, as Prefect's
    always were; else the list of intervals as it came."""
    intervals = [[ms_of(h.interval_start), ms_of(h.interval_end),
                  [[st.state_type.value, st.state_name, st.count_runs, st.sum_estimated_run_time.total_seconds(),
                    st.sum_estimated_lateness.total_seconds()] for st in h.states]]
                 for h in history]
    if intervals:
        start, width = intervals[0][0], intervals[0][1] - intervals[0][0]
        if all(iv[0] == start + k * width and iv[1] == start + (k + 1) * width for k, iv in enumerate(intervals)):
            return {"start_ms": start, "width_ms": width, "count": len(intervals),
                    "states": {str(k): iv[2] for k, iv in enumerate(intervals) if iv[2]}}
    return intervals


# --- hand-written scenarios ------------------------------------------------------------------

def _hand_run(i, kind, name, expected_us, ts_us=None, start_us=None, total_us=0, **more):
    """A flow run of flow "etl"; a RUNNING one started when its state was entered."""
    ts = expected_us if ts_us is None else ts_us
    if kind == "RUNNING" and start_us is None:
        start_us = ts
    run = {"id": str(uuid.UUID(int=i, version=4)), "name": f"run-{i}", "flow": "etl", "deployment": None,
           "queue": None, "tags": [], "state": None if kind is None else [kind, name, ts],
           "expected_us": expected_us, "start_us": start_us, "total_us": total_us}
    run.update(more)
    return run


def _hand(sid, flow_runs, queries, now_ms=0, task_runs=()):
    return {"id": sid, "now_ms": now_ms, "flows": [{"name": "etl", "tags": []}], "pools": [], "queues": [],
            "deployments": [], "flow_runs": flow_runs, "task_runs": list(task_runs), "queries": queries}


def _hq(start, end, interval, op="flow_run_history", **filters):
    return {"op": op, "history_start": start, "history_end": end, "history_interval_seconds": interval,
            "filters": filters}


_LATENESS = {"op": "lateness", "filters": {}}
FOCUSED = [
    # Runs exactly on interval boundaries, the range's start and end; a last interval that
    # runs past the end; an end equal to or before the start (still one interval).
    _hand("h-boundaries", [_hand_run(i, "COMPLETED", "Completed", t, start_us=t, total_us=30 * SECOND)
                           for i, t in enumerate([-1, 0, 1, HOUR - 1, HOUR, 2 * HOUR, 2 * HOUR + 1, 3 * HOUR,
                                                  150 * 60 * SECOND, 3 * HOUR - 1000], 1)],
          [_hq("2024-06-01T12:00:00Z", "2024-06-01T15:00:00Z", 3600),
           _hq("2024-06-01T12:00:00Z", "2024-06-01T14:30:00Z", 3600),
           _hq("2024-06-01T12:00:00Z", "2024-06-01T12:00:00Z", 3600),
           _hq("2024-06-01T12:00:00Z", "2024-06-01T11:00:00Z", 3600),
           _hq("2024-06-01T12:00:00Z", "2024-06-01T12:00:00.001Z", 3600),
           _hq("2024-06-01T14:00:00+02:00", "2024-06-01T15:00:00", 1800.0), _hq("2024-06-01", "2024-06-02", 21600),
           _LATENESS]),
    # 500 intervals at most: a run after the 500th interval is not counted.
    _hand("h-cap", [_hand_run(1, "COMPLETED", "Completed", 0), _hand_run(2, "COMPLETED", "Completed", 499 * SECOND),
                    _hand_run(3, "COMPLETED", "Completed", 500 * SECOND)],
          [_hq("2024-06-01T12:00:00Z", "2024-06-02T12:00:00Z", 1), _hq("2024-06-01T12:00:00Z", "2024-06-01T12:08:20Z", 1),
           _hq("2024-06-01T12:00:00Z", "2024-06-01T12:08:19.999Z", 1)]),
    # Runs without a state: Prefect fails on one inside the history's range (state_type NULL),
    # counts it 0 in lateness; one outside the range changes nothing.
    _hand("h-stateless", [_hand_run(1, None, None, 10 * SECOND), _hand_run(2, "SCHEDULED", "Late", 20 * SECOND),
                          _hand_run(3, None, None, None)],
          [_hq("2024-06-01T12:00:00Z", "2024-06-01T13:00:00Z", 600), _hq("2024-06-01T12:00:15Z", "2024-06-01T13:00:00Z", 600),
           _LATENESS, {"op": "lateness", "filters": {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}},
           {"op": "lateness", "filters": {"flow_runs": {"id": {"any_": [str(uuid.UUID(int=3, version=4))]}}}}],
          now_ms=60_000),
    # Whole seconds: each time is rounded down to the second before lateness subtracts, and
    # each run's estimates are rounded down before the history sums them.
    _hand("h-whole-seconds", [
        _hand_run(1, "COMPLETED", "Completed", 900_000, start_us=1_100_000, total_us=1_999_000),
        _hand_run(2, "COMPLETED", "Completed", 100_000, start_us=900_000, total_us=999_000),
        _hand_run(3, "FAILED", "Failed", 2 * SECOND, start_us=2 * SECOND + 999_999, total_us=999_600),
        _hand_run(4, "SCHEDULED", "Late", 59 * SECOND + 999_000, ts_us=0),
        _hand_run(5, "PENDING", "Pending", 60 * SECOND + 1000, ts_us=0),
        _hand_run(6, "PENDING", "Pending", 60 * SECOND + 300_000, ts_us=0),
        _hand_run(7, "CRASHED", "Crashed", 30 * SECOND)],
        [_hq("2024-06-01T12:00:00Z", "2024-06-01T12:02:00Z", 60), _LATENESS,
         {"op": "lateness", "filters": {"flow_runs": {"state": {"type": {"any_": ["PENDING", "SCHEDULED"]}}}}},
         {"op": "lateness", "filters": {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}}],
        now_ms=60_800),
    # RUNNING runs: total run time plus now - state timestamp, 0 when the state is in the future.
    _hand("h-running", [
        _hand_run(1, "RUNNING", "Running", 0, ts_us=10 * SECOND, total_us=5 * SECOND),
        _hand_run(2, "RUNNING", "Retrying", 1000, ts_us=HOUR, start_us=0, total_us=0),
        _hand_run(3, "RUNNING", "Running", 2000, ts_us=100 * SECOND + 123, start_us=5 * SECOND, total_us=999_000),
        _hand_run(4, "PAUSED", "Suspended", 3000, ts_us=10 * SECOND, total_us=7 * SECOND)],
        [_hq("2024-06-01T12:00:00Z", "2024-06-01T12:10:00Z", 600), _LATENESS], now_ms=200_250),
    # Millisecond rounding of the range and the interval; a start with a sub-ms part.
    _hand("h-milliseconds", [_hand_run(i, "COMPLETED", "Completed", t) for i, t in enumerate(
        [123_000, 123_400, 124_000, 1_800_124_000, 1_800_125_000, 1_800_126_000], 1)],
        [_hq("2024-06-01T12:00:00.1235Z", "2024-06-01T14:00:00.0004Z", 1800.0005),
         _hq("2024-06-01T12:00:00.123456Z", "2024-06-01T12:30:00.125Z", 1800.0004),
         _hq("2024-06-01T12:00:00.1234Z", "2024-06-01T13:00:00Z", 1800.0015)]),
    # The order of states in an interval: type names, then state names by code point.
    _hand("h-order", [_hand_run(i, kind, name, i * SECOND) for i, (kind, name) in enumerate(
        [("SCHEDULED", "Scheduled"), ("COMPLETED", "a"), ("COMPLETED", "B"), ("COMPLETED", "Été"),
         ("COMPLETED", "Completed"), ("CANCELLED", "Cancelled"), ("CRASHED", "Crashed"), ("PENDING", "Pending"),
         ("CANCELLING", "Cancelling"), ("PAUSED", "Paused"), ("FAILED", "Failed"), ("RUNNING", "Running"),
         ("COMPLETED", "Cached"), ("SCHEDULED", "AwaitingRetry"), ("COMPLETED", "completed")], 1)],
        [_hq("2024-06-01T12:00:00Z", "2024-06-01T13:00:00Z", 3600)], now_ms=3_600_000),
    # Task runs: the same rules through POST /task_runs/history.
    _hand("h-task-runs", [_hand_run(1, "COMPLETED", "Completed", 0)], [
        _hq("2024-06-01T12:00:00Z", "2024-06-01T13:00:00Z", 900, op="task_run_history"),
        _hq("2024-06-01T12:00:00Z", "2024-06-01T13:00:00Z", 900, op="task_run_history",
            flow_runs={"state": {"type": {"any_": ["COMPLETED"]}}}),
        _hq("2024-06-01T12:00:00Z", "2024-06-01T13:00:00Z", 900, op="task_run_history",
            task_runs={"flow_run_id": {"is_null_": True}})],
        now_ms=1_000_000, task_runs=[
            _hand_run(100 + i, kind, name, t, start_us=start, flow_run=flow_run, task_key="t", dynamic_key=str(i))
            for i, (kind, name, t, start, flow_run) in enumerate([
                ("COMPLETED", "Completed", 0, 5 * SECOND, str(uuid.UUID(int=1, version=4))),
                ("RUNNING", "Running", 60 * SECOND, 70 * SECOND, str(uuid.UUID(int=1, version=4))),
                ("PENDING", "Pending", 900 * SECOND, None, None),
                ("SCHEDULED", "Scheduled", 2000 * SECOND, None, None)])]),
]


def main(argv):
    write_scenarios(argv, __doc__, FOCUSED, gen_scenario, "h")


if __name__ == "__main__":
    main(sys.argv)
