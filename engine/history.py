"""Run history and lateness: Prefect 3.1.0's POST /flow_runs/history, /task_runs/history
and /flow_runs/lateness, as answered on SQLite.

A history cuts [history_start, history_end) into intervals of `history_interval` and
counts the matching runs whose expected start time falls in each, per (state type,
state name), with the sums of their estimated run times and lateness. Prefect builds
the intervals with a recursive SQL query and aggregates with SQLite's date functions;
what that means, and what is reproduced here:

* Times are read to the millisecond, half up (SQLite's `strftime('%f')`): history_start,
  history_end and the interval are rounded so before any arithmetic, and so are the
  times a run's estimates are computed from.
* Intervals start at history_start and follow each other while they start before
  history_end: the last one may end after history_end, and there is always at least
  one, even when history_end is not after history_start (the query's first row is
  unconditional). At most 500.
* A run falls in [interval_start, interval_end) by its exact expected start time.
* Estimates are whole seconds per run, rounded down (SQLite's `extract(epoch)` is
  `CAST(strftime('%s', ...) AS INTEGER)`), negatives counted as 0, then summed.
* An interval's states are ordered by state type name, then state name (code points).
* Lateness averages, over the matching runs, `strftime('%s', start_time) -
  strftime('%s', expected_start_time)` (whole seconds, each time rounded down first)
  for runs that started late; for runs not started, not final and expected before
  `datetime('now')` (now rounded down to the second), that now minus the expected
  start; else 0.

"Now" is the engine's clock, read once per call. Runs without a state are left out of
histories (Prefect 3.1.0 fails validating a state_type of NULL) and count 0 in lateness
(as in SQL, NULL NOT IN (...) is not true).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable

import attrs

from .errors import ValidationError, shown
from .indexes import key_range
from .queries import _flow_run_query, _matching, _task_run_query
from .states import TERMINAL_STATES, StateType
from .validation import as_datetime, as_route_seconds

__all__ = ["HistoryResponse", "HistoryResponseState", "MAX_INTERVALS", "run_history", "average_flow_run_lateness"]

MAX_INTERVALS = 500  # Prefect's cap on the number of intervals ("bars")

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MS = _dt.timedelta(milliseconds=1)
_HALF_MS = _dt.timedelta(microseconds=500)
_ONE_SECOND = _dt.timedelta(seconds=1)
_RUNNING = StateType.RUNNING


@attrs.frozen(slots=True)
class HistoryResponseState:
    """The runs of one (state type, state name) in one interval."""

    state_type: StateType
    state_name: str
    count_runs: int
    sum_estimated_run_time: _dt.timedelta
    sum_estimated_lateness: _dt.timedelta


@attrs.frozen(slots=True)
class HistoryResponse:
    """One interval of a history; `states` is empty when no run fell in it."""

    interval_start: _dt.datetime
    interval_end: _dt.datetime
    states: tuple[HistoryResponseState, ...]


# arguments ------------------------------------------------------------------------------------

def _as_time(value: Any, what: str) -> _dt.datetime:
    if value is None:
        raise ValidationError(f"{what} is required (a datetime or an ISO-8601 string)")
    return as_datetime(value, what)


def _as_interval(value: Any) -> _dt.timedelta:
    interval = as_route_seconds(value, "history_interval")
    # As Prefect checks it: before the millisecond rounding below.
    if interval < _ONE_SECOND:
        raise ValidationError(f"history_interval must not be less than 1 second, got "
                              f"{shown(interval.total_seconds())} s")
    return interval


def sqlite_ms(t: _dt.datetime) -> int:
    """Milliseconds since the epoch, as SQLite reads a stored time (half up)."""
    return (t - _EPOCH + _HALF_MS) // _MS


def _intervals(start: _dt.datetime, end: _dt.datetime, interval: _dt.timedelta) -> tuple[_dt.datetime, _dt.timedelta, int]:
    """(first interval's start, width, how many) as Prefect's SQLite query makes them."""
    start_ms, end_ms = sqlite_ms(start), sqlite_ms(end)
    width_ms = (interval + _HALF_MS) // _MS
    # Interval k (k >= 0) exists when k == 0 or it starts before the end: ceil((end - start) / width).
    count = min(MAX_INTERVALS, max(1, -((start_ms - end_ms) // width_ms)))
    width = _dt.timedelta(milliseconds=width_ms)
    try:
        first = _EPOCH + _dt.timedelta(milliseconds=start_ms)  # (rounded up, it may pass year 9999 itself)
        first + count * width
    except OverflowError:
        raise ValidationError(f"history intervals from {start.isoformat()} would end after year 9999") from None
    return first, width, count


# history --------------------------------------------------------------------------------------

def _runs_in_range(tables: Any, kind: str, plan: Any, low: _dt.datetime, high: _dt.datetime) -> Iterable[Any]:
    """The runs matching `plan` whose expected start time is in [low, high), unordered.

    Walks the expected-start-time index from `low` (a bisection) to `high` with the
    plan's predicate, O(log n + r) for the r runs in the range; or, when the plan's
    smallest candidate source is smaller than r, filters that source by time, O(c).
    As for reads, a cold index is not built for a filter that names few runs (fewer
    than half the table): their source is filtered instead."""
    table = tables[kind]
    index = table.by_name["expected_start_time"]
    bounds = key_range(low, high)  # `high` inclusive here: the walks stop before it
    if plan.restrictions == 0:
        return _before(index.walk(False, bounds), high)
    best = plan.smallest()
    if best is not None and (best.size * 2 < len(table.rows) if not index.live else best.size < index.span(bounds)):
        # A source that is exactly the matches (one restriction) needs no predicate.
        pred = (lambda r: True) if best is plan.exact_source() else plan.predicate()
        return (r for r in best.records()
                if r.expected_start_time is not None and low <= r.expected_start_time < high and pred(r))
    pred = plan.predicate()
    # Per-state-type lists over the same key, when a filter names state types and some
    # read has already built them (building them here would tax every later write).
    grouped = table.by_name.get("state_type+expected_start_time")
    typed = [s for s in plan.sources if s.state_types is not None]
    if grouped is not None and grouped.live and typed:
        types = min(typed, key=lambda s: s.size).state_types
        walks: Iterable[Any] = (r for t in types for r in _before(grouped.walk([t], False, bounds), high))
        return (r for r in walks if pred(r))
    return (r for r in _before(index.walk(False, bounds), high) if pred(r))


def _before(walk: Iterable[Any], high: _dt.datetime) -> Iterable[Any]:
    # An ascending walk that ends at `high` (the bounds let runs exactly at it through).
    for run in walk:
        if run.expected_start_time >= high:
            return
        yield run


def run_history(
    engine: Any,
    run_type: str,
    history_start: Any,
    history_end: Any,
    history_interval: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    work_queue_filter: Any = None,
) -> list[HistoryResponse]:
    """The history of the flow runs (`run_type` "flow_run") or task runs ("task_run")
    matching every supplied filter (typed or Prefect's JSON shapes), in intervals of
    `history_interval` (a timedelta or seconds, at least 1 s) from `history_start` to
    `history_end` (datetimes or ISO strings), ordered by interval start. See the module
    docstring for Prefect's rules.

    Cost: O(log n + r) for the r runs whose expected start time lies in the intervals
    (a walk of the expected-start-time index), or O(c) when the filters' smallest
    index-backed candidate set c is smaller; + the plan's cross-entity filters (as for
    read_flow_runs) + O(N + s log s) for N intervals and s (interval, state) groups."""
    start = _as_time(history_start, "history_start")
    end = _as_time(history_end, "history_end")
    interval = _as_interval(history_interval)
    tables = engine._store.tables
    if run_type == "flow_run":
        plan = _flow_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
                               work_pool_filter, work_queue_filter)
    elif run_type == "task_run":
        if work_pool_filter is not None or work_queue_filter is not None:
            raise ValidationError("a task-run history takes no work pool or work queue filter")
        plan = _task_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter)
    else:
        raise ValidationError(f"run_type must be 'flow_run' or 'task_run', got {shown(run_type)}")
    first, width, count = _intervals(start, end, interval)
    now_ms = sqlite_ms(engine.now())
    now = _EPOCH + _dt.timedelta(milliseconds=now_ms)  # SQL now(): to the millisecond

    # (interval number, state type, state name) -> [runs, run time s, lateness s]
    groups: dict[tuple, list] = {}
    get = groups.get
    terminal = TERMINAL_STATES
    running = _RUNNING
    to_ms, half_ms, one_ms = sqlite_ms, _HALF_MS, _MS
    for run in _runs_in_range(tables, run_type, plan, first, first + count * width):
        state_type = run.state_type
        if state_type is None:
            continue  # Prefect fails on these; see the module docstring
        expected = run.expected_start_time
        run_ms = (run.total_run_time + half_ms) // one_ms
        if state_type is running and run.state_timestamp is not None:
            run_ms += now_ms - to_ms(run.state_timestamp)
        started = run.start_time
        if started is not None:
            late_ms = to_ms(started) - to_ms(expected) if started > expected else 0
        elif state_type not in terminal and expected < now:
            late_ms = now_ms - to_ms(expected)
        else:
            late_ms = 0
        # Whole seconds rounded down, negatives counted as 0.
        run_s = run_ms // 1000 if run_ms > 0 else 0
        late_s = late_ms // 1000 if late_ms > 0 else 0
        key = ((expected - first) // width, state_type, run.state_name)
        sums = get(key)
        if sums is None:
            groups[key] = [1, run_s, late_s]
        else:
            sums[0] += 1
            sums[1] += run_s
            sums[2] += late_s

    per_interval: list[list] = [[] for _ in range(count)]
    for (k, state_type, name), (runs, run_s, late_s) in groups.items():
        per_interval[k].append(HistoryResponseState(state_type, name, runs, _dt.timedelta(seconds=run_s),
                                                    _dt.timedelta(seconds=late_s)))
    out = []
    for k, states in enumerate(per_interval):
        # SQLite groups by (state_type, state_name): the type's name, then the name's code points.
        states.sort(key=lambda s: (s.state_type.value, s.state_name is not None, s.state_name or ""))
        out.append(HistoryResponse(first + k * width, first + (k + 1) * width, tuple(states)))
    return out


# lateness -------------------------------------------------------------------------------------

def average_flow_run_lateness(
    engine: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    work_queue_filter: Any = None,
) -> float | None:
    """Mean lateness in whole seconds of the flow runs matching every supplied filter,
    as Prefect's SQLite query computes it (see the module docstring), or None when no
    run matches.

    Cost: O(c) over the filters' smallest index-backed candidate set (O(n) without
    filters), + the plan's cross-entity filters."""
    tables = engine._store.tables
    plan = _flow_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
                           work_pool_filter, work_queue_filter)
    runs = _matching(plan, tables["flow_run"].rows)
    # datetime('now') has no fraction: now rounded down to the second.
    now_s = sqlite_ms(engine.now()) // 1000
    now = _EPOCH + _dt.timedelta(seconds=now_s)
    terminal = TERMINAL_STATES
    total = 0
    matched = 0
    for run in runs:
        matched += 1
        expected = run.expected_start_time
        if expected is None:
            continue  # every comparison with NULL fails: 0
        started = run.start_time
        if started is not None:
            if started > expected:
                total += sqlite_ms(started) // 1000 - sqlite_ms(expected) // 1000
        elif run.state_type is not None and run.state_type not in terminal and expected < now:
            total += now_s - sqlite_ms(expected) // 1000
    return total / matched if matched else None
