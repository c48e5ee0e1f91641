"""Filtered, sorted, paginated reads and counts of flow and task runs, answered from
indexes (spec operations.md §1.4–1.6, §2.4–2.7).

A query is first turned into a `_Plan`: one compiled predicate (the AND of every
supplied filter, cross-entity filters reduced to id sets) plus *candidate sources*,
index buckets that must contain every match (e.g. the runs of the requested state
types). Execution then picks the cheapest route:

* counts: no restriction -> table size; exactly one restriction that a source covers
  exactly -> that source's size (bucket sizes, O(keys)); otherwise the predicate
  over the smallest source;
* reads with a limit: walk the sort index (or, for state-type filters, the
  per-state sort index) and stop after offset+limit matches, unless the smallest
  source is small enough that filtering and sorting it is cheaper. A walk that
  examines twice that source's size without filling the window (the matches sort
  last) switches to sorting the source, so a read never walks the whole table when
  a smaller candidate set exists. A time filter
  on the sort key itself (`next_scheduled_start_time` before now, sorted by it)
  narrows the walk to that range of the index: its start is a bisection;
* a state-type filter and a restriction to work queues, deployments or flows: one
  more candidate source, the buckets of those (key, state type) pairs in a
  "<field>+state_type" index; with no other criterion it is the answer, so a count
  is a sum of bucket sizes (`_join_state_types`; the index is cold until a plan
  large enough to be worth its upkeep asks);
* count_task_runs_by_state: bucket sizes of the state-type index; restricted to
  given flow runs, a walk of those runs' task runs. (A (flow run, state type)
  index would answer in O(9) per flow run, but every task transition would pay
  for moving the run in it.)

Prefect 3.1.0 crashes when counting task runs by state if one has no state; here
stateless task runs are simply not counted.
"""
from __future__ import annotations

from itertools import chain
from typing import Any, Callable, Iterable

import attrs

from .errors import ValidationError, shown
from .filters import (
    DeploymentFilter,
    FlowFilter,
    FlowRunFilter,
    Operator,
    TaskRunFilter,
    WorkPoolFilter,
    WorkQueueFilter,
    combine,
    parse_filter,
)
from .indexes import key_range
from .sorting import as_flow_run_sort, as_task_run_sort, sort_spec
from .states import CountByState, StateType

__all__ = [
    "read_flow_runs",
    "page_flow_runs",
    "count_flow_runs",
    "read_task_runs",
    "count_task_runs",
    "count_task_runs_by_state",
    "check_window",
    "window",
]


# plans -------------------------------------------------------------------------------------

@attrs.define(slots=True)
class _Source:
    """Records that include every match of the plan (a superset), `size` of them.

    `exact` means the source is exactly the matches of the one restriction it came
    from. `state_types` says which state-type buckets it is made of, so ordered
    walks and counts by state can use finer indexes."""

    size: int
    records: Callable[[], Iterable[Any]]
    exact: bool = False
    state_types: frozenset | None = None
    # A range of one sorted index: its name and key_range bounds. A read sorted on
    # that index can walk just the range, which is already in order.
    sorted_on: str | None = None
    bounds: tuple | None = None
    # Runs whose `keyed[0]` field (work_queue_id, deployment_id or flow_id) is one of
    # `keyed[1]`: joined with state types through the "<field>+state_type" index.
    keyed: tuple | None = None
    # Exactly the matches of one AND-ed criterion (`exact` is for the whole plan).
    unit: bool = False


@attrs.define(slots=True)
class _Plan:
    predicates: list = attrs.field(factory=list)
    sources: list = attrs.field(factory=list)
    restrictions: int = 0
    # A source that is exactly the matches of the whole plan, though made from two
    # of its criteria (see _join_state_types).
    answer: _Source | None = None

    def add(self, predicate: Callable, sources: list[_Source]) -> None:
        self.predicates.append(predicate)
        self.sources.extend(sources)
        self.restrictions += 1

    def predicate(self) -> Callable:
        return combine(self.predicates, Operator.and_)

    def smallest(self) -> _Source | None:
        return min(self.sources, key=lambda s: s.size) if self.sources else None

    def exact_source(self) -> _Source | None:
        """The source that *is* the answer: one covering a single restriction
        exactly, or a join of two that are the plan's only criteria."""
        if self.answer is not None:
            return self.answer
        if self.restrictions != 1:
            return None
        for src in self.sources:
            if src.exact:
                return src
        return None


def _buckets(index: Any, keys: Iterable, exact: bool, **tags: Any) -> _Source:
    """Union of distinct hash-index buckets (disjoint, since each record has one key)."""
    keys = list(dict.fromkeys(keys))
    size = sum(index.count(k) for k in keys)
    get = index.get
    return _Source(size, lambda: chain.from_iterable(get(k).values() for k in keys), exact, **tags)


def _ids(table: Any, ids: Iterable, exact: bool) -> _Source:
    found = table.existing(ids)
    return _Source(len(found), lambda: found, exact)


def _time_range(index: Any, sub: Any, exact: bool) -> _Source | None:
    """Records whose key lies in [after_, before_] (NULLs excluded), from a sorted
    index on exactly that column: O(log n) to size, in key order to iterate."""
    if sub.before_ is None and sub.after_ is None:
        return None
    bounds = key_range(sub.after_, sub.before_)
    exact = exact and getattr(sub, "is_null_", None) is None
    return _Source(index.span(bounds), lambda: index.walk(False, bounds), exact,
                   sorted_on=index.name, bounds=bounds)


def _usable(flt: Any) -> bool:
    """Criteria of an operator filter are each required only under and_ (or alone)."""
    return flt.operator is Operator.and_ or len(flt.populated()) <= 1


def _state_sources(state: Any, index_type: Any, index_name: Any) -> list[_Source]:
    """Sources for `state.type.any_` / `state.name.any_` (flattened criteria)."""
    crits = [c for part in (state.type, state.name) if part is not None for c in part.populated()]
    if not (state.operator is Operator.and_ or len(crits) <= 1):
        return []
    out = []
    if state.type is not None and state.type.any_ is not None:
        types = frozenset(state.type.any_)
        out.append(_buckets(index_type, types, exact=len(crits) == 1, state_types=types))
    not_any = getattr(state.type, "not_any_", None)
    if not_any:
        # A non-empty NOT IN excludes NULLs too, so it is IN (every other type).
        types = frozenset(StateType) - frozenset(not_any)
        out.append(_buckets(index_type, types, exact=len(crits) == 1, state_types=types))
    if state.name is not None and state.name.any_ is not None:
        out.append(_buckets(index_name, state.name.any_, exact=len(crits) == 1))
    return out


def _run_sources(table: Any, flt: Any, time_fields: dict[str, str]) -> tuple[list[_Source], bool] | None:
    """Sources from the criteria flow- and task-run filters share (ids, state, tags
    and time ranges: `time_fields` maps a time criterion to the sorted index on its
    column), and whether `flt` has a single criterion; None when no source can come
    from `flt` (empty, or OR-ed criteria). O(keys in the filter)."""
    fields = flt.populated()
    if not fields or not _usable(flt):
        return None
    single = len(fields) == 1
    idx = table.by_name
    out: list[_Source] = []
    ids = flt.id
    if ids is not None and ids.any_ is not None:
        out.append(_ids(table, ids.any_, exact=single and getattr(ids, "not_any_", None) is None))
    if flt.state is not None:
        for src in _state_sources(flt.state, idx["state_type"], idx["state_name"]):
            src.unit = src.exact
            src.exact = src.exact and single
            out.append(src)
    tags = flt.tags
    if tags is not None and tags.all_ and _usable(tags):
        tag_index = idx["tags"]
        tag = min(set(tags.all_), key=tag_index.count)
        exact = single and len(set(tags.all_)) == 1 and tags.is_null_ is None
        out.append(_buckets(tag_index, [tag], exact=exact))
    for name, index_name in time_fields.items():
        sub = getattr(flt, name)
        if sub is not None:
            src = _time_range(idx[index_name], sub, exact=single)
            if src is not None:
                out.append(src)
    return out, single


_FLOW_RUN_TIME_INDEXES = {"expected_start_time": "expected_start_time", "start_time": "start_time_range",
                          "next_scheduled_start_time": "next_scheduled_start_time", "end_time": "end_time"}
_TASK_RUN_TIME_INDEXES = {"expected_start_time": "expected_start_time", "start_time": "start_time"}


def _flow_run_filter_sources(tables: Any, flt: FlowRunFilter) -> list[_Source]:
    """Index-backed supersets of a FlowRunFilter's matches. O(keys in the filter)."""
    table = tables["flow_run"]
    found = _run_sources(table, flt, _FLOW_RUN_TIME_INDEXES)
    if found is None:
        return []
    out, single = found
    idx = table.by_name
    for name in ("deployment_id", "work_queue_name", "parent_task_run_id"):
        sub = getattr(flt, name)
        if sub is None or not _usable(sub):
            continue
        one = single and len(sub.populated()) == 1
        if sub.any_ is not None:
            src = _buckets(idx[name], sub.any_, exact=one, unit=len(sub.populated()) == 1)
            if name == "deployment_id":
                src.keyed = (name, frozenset(sub.any_))
            out.append(src)
        elif sub.is_null_ is True:
            out.append(_buckets(idx[name], [None], exact=one))
        elif sub.is_null_ is False:  # every bucket: these indexes keep none for None
            out.append(_buckets(idx[name], list(idx[name].buckets), exact=one))
    parents = flt.parent_flow_run_id
    if parents is not None and parents.any_ is not None:
        by_flow_run = tables["task_run"].by_name["flow_run_id"]
        task_ids = [tr.id for fr_id in set(parents.any_) for tr in by_flow_run.get(fr_id).values()]
        out.append(_buckets(idx["parent_task_run_id"], task_ids, exact=single))
    return out


def _task_run_filter_sources(tables: Any, flt: TaskRunFilter) -> list[_Source]:
    """Index-backed supersets of a TaskRunFilter's matches. O(keys in the filter)."""
    table = tables["task_run"]
    found = _run_sources(table, flt, _TASK_RUN_TIME_INDEXES)
    if found is None:
        return []
    out, single = found
    idx = table.by_name
    frid = flt.flow_run_id
    if frid is not None:
        if frid.is_null_ is True:
            out.append(_buckets(idx["flow_run_id"], [None], exact=single))
        elif frid.any_ is not None:
            ids = frozenset(frid.any_)
            out.append(_buckets(idx["flow_run_id"], ids, exact=single))
    sub = flt.subflow_runs
    if sub is not None and sub.exists_ is True:
        parents = list(tables["flow_run"].by_name["parent_task_run_id"].buckets)  # sparse: no None key
        out.append(_ids(table, parents, exact=single))
    return out


def _matching(plan: _Plan, rows: dict) -> Iterable[Any]:
    """Every record matching `plan` (unordered), from its smallest source; a source
    that is exactly the matches (see `exact_source`) needs no predicate, nor does a
    plan without restrictions (every row)."""
    if plan.restrictions == 0:
        return rows.values()
    exact = plan.exact_source()
    if exact is not None:
        return exact.records()
    pred = plan.predicate()
    src = plan.smallest()
    records = src.records() if src is not None else rows.values()
    return (r for r in records if pred(r))


def _queue_ids(tables: Any, wq: WorkQueueFilter | None, wp: WorkPoolFilter | None) -> set:
    """Ids of work queues that satisfy `wq` and whose pool exists and satisfies `wp`.
    O(k) for a filter of k queue ids alone (a worker's poll), else O(queues)."""
    if wp is None and wq is not None and wq.populated() == ["id"] and wq.id.any_ is not None:
        rows = tables["work_queue"].rows  # (the operator of a single criterion does not matter)
        return {i for i in wq.id.any_ if i in rows}
    q_pred = wq.predicate(tables) if wq is not None else None
    p_pred = wp.predicate(tables) if wp is not None else None
    pools = tables["work_pool"].rows
    out = set()
    for q in tables["work_queue"].rows.values():
        if q_pred is not None and not q_pred(q):
            continue
        if p_pred is not None:
            pool = pools.get(q.work_pool_id)
            if pool is None or not p_pred(pool):
                continue
        out.add(q.id)
    return out


def _flow_run_plan(
    tables: Any,
    flow_filter: FlowFilter | None,
    flow_run_filter: FlowRunFilter | None,
    task_run_filter: TaskRunFilter | None,
    deployment_filter: DeploymentFilter | None,
    work_pool_filter: WorkPoolFilter | None,
    work_queue_filter: WorkQueueFilter | None,
) -> _Plan:
    """Plan for §1.4: every supplied filter (even an empty one) is a restriction,
    except an empty flow-run filter, which is TRUE on the table itself."""
    plan = _Plan()
    idx = tables["flow_run"].by_name
    if flow_run_filter is not None and flow_run_filter.populated():
        plan.add(flow_run_filter.predicate(tables), _flow_run_filter_sources(tables, flow_run_filter))
    if flow_filter is not None:
        f_pred = flow_filter.predicate(tables)
        flow_ids = frozenset(f.id for f in tables["flow"].rows.values() if f_pred(f))
        plan.add(lambda r: r.flow_id in flow_ids,
                 [_buckets(idx["flow_id"], flow_ids, exact=True, unit=True, keyed=("flow_id", flow_ids))])
    if deployment_filter is not None:
        d_pred = deployment_filter.predicate(tables)
        dep_ids = frozenset(d.id for d in tables["deployment"].rows.values() if d_pred(d))
        plan.add(lambda r: r.deployment_id in dep_ids,
                 [_buckets(idx["deployment_id"], dep_ids, exact=True, unit=True, keyed=("deployment_id", dep_ids))])
    if work_queue_filter is not None or work_pool_filter is not None:
        queue_ids = frozenset(_queue_ids(tables, work_queue_filter, work_pool_filter))
        plan.add(lambda r: r.work_queue_id in queue_ids,
                 [_buckets(idx["work_queue_id"], queue_ids, exact=True, unit=True,
                           keyed=("work_queue_id", queue_ids))])
    if task_run_filter is not None:
        # "Has at least one task run matching": the set of their flow run ids.
        t_plan = _task_run_plan(tables, None, None, task_run_filter, None)
        if t_plan.restrictions == 0:  # an empty filter: every flow run that has a task run
            fr_ids = frozenset(tables["task_run"].by_name["flow_run_id"].buckets) - {None}
        else:
            fr_ids = frozenset(tr.flow_run_id for tr in _matching(t_plan, tables["task_run"].rows)) - {None}
        plan.add(lambda r: r.id in fr_ids, [_ids(tables["flow_run"], fr_ids, exact=True)])
    criteria = plan.restrictions
    if flow_run_filter is not None and flow_run_filter.populated():
        criteria += len(flow_run_filter.populated()) - 1
    _join_state_types(plan, idx, criteria)
    return plan


# A cold "<field>+state_type" index is built (O(n) once, then a dict write per later
# transition) only for a plan whose smallest source has at least this many runs.
JOIN_WARM_AT = 2048


def _join_state_types(plan: _Plan, idx: dict, criteria: int) -> None:
    """Add the runs of the plan's state types *and* its queues, deployments or flows
    as one more source, from the (field, state type) index: a queue's RUNNING runs
    without walking every RUNNING run or every run of the queue. When those two
    criteria are all the plan has (`criteria` AND-ed criteria in all), the join is
    its answer and a count is a sum of bucket sizes. O(keys x state types)."""
    typed = [s for s in plan.sources if s.state_types is not None]
    keyed = [s for s in plan.sources if s.keyed is not None]
    if not typed or not keyed:
        return
    state = min(typed, key=lambda s: s.size)
    best = plan.smallest()
    for src in keyed:
        field, keys = src.keyed
        pairs = [(key, state_type) for key in keys for state_type in state.state_types]
        index = idx[field + "+state_type"]
        if len(pairs) >= best.size or not (index.live or best.size >= JOIN_WARM_AT):
            continue  # looking up the pairs (or building the index) costs more than the scan
        joined = _buckets(index, pairs, exact=False)
        plan.sources.append(joined)
        if criteria == 2 and state.unit and src.unit:
            plan.answer = joined


def _task_run_plan(
    tables: Any,
    flow_filter: FlowFilter | None,
    flow_run_filter: FlowRunFilter | None,
    task_run_filter: TaskRunFilter | None,
    deployment_filter: DeploymentFilter | None,
    work_pool_filter: WorkPoolFilter | None = None,
    work_queue_filter: WorkQueueFilter | None = None,
) -> _Plan:
    """Plan for §2.4, including the flow-run id fast path. The work pool and queue
    filters (only the UI's dashboard route takes them) restrict the flow run."""
    plan = _Plan()
    idx = tables["task_run"].by_name
    if task_run_filter is not None and task_run_filter.populated():
        plan.add(task_run_filter.predicate(tables), _task_run_filter_sources(tables, task_run_filter))
    beyond_the_run = not (flow_filter is None and deployment_filter is None and work_pool_filter is None
                          and work_queue_filter is None)
    if flow_run_filter is not None and flow_run_filter.only_filters_on_id() and not beyond_the_run:
        ids = frozenset(flow_run_filter.id.any_)
        plan.add(lambda r: r.flow_run_id in ids,
                 [_buckets(idx["flow_run_id"], ids, exact=True)])
    elif flow_run_filter is not None or beyond_the_run:
        fr_plan = _flow_run_plan(tables, flow_filter, flow_run_filter, None, deployment_filter, work_pool_filter,
                                 work_queue_filter)
        if fr_plan.restrictions == 0:
            # Only an empty flow-run filter: "has a flow run" (it always exists).
            plan.add(lambda r: r.flow_run_id is not None, [])
        else:
            fr_ids = frozenset(r.id for r in _matching(fr_plan, tables["flow_run"].rows))
            plan.add(lambda r: r.flow_run_id in fr_ids,
                     [_buckets(idx["flow_run_id"], fr_ids, exact=True)])
    return plan


# execution ---------------------------------------------------------------------------------

# A state-filtered read first tries the global sort order for up to 4*(offset+limit)
# + WALK_SLACK records before building the per-state lists (tests lower it).
WALK_SLACK = 256
# A walk chosen over sorting the smallest candidate source gives up after
# 2*(its size) + HEDGE_SLACK records and sorts the candidates instead (see _read;
# tests lower it).
HEDGE_SLACK = 256


def check_window(offset: Any, limit: Any) -> tuple[int, int | None]:
    """(offset, limit) checked: integers, not negative; offset None is 0."""
    if offset is None:
        offset = 0
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise ValidationError(f"offset must be an integer, got {type(offset).__name__} {shown(offset)}")
    if offset < 0:
        raise ValidationError(f"offset must be >= 0, got {offset}")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValidationError(f"limit must be an integer or None, got {type(limit).__name__} {shown(limit)}")
        if limit < 0:
            raise ValidationError(f"limit must be >= 0, got {limit}")
    return offset, limit


def window(offset: Any, limit: Any) -> slice:
    """The slice of a sorted list that `offset` and `limit` select (checked as by
    check_window), for listings sorted in full. O(1)."""
    offset, limit = check_window(offset, limit)
    return slice(offset, None if limit is None else offset + limit)


def _read(plan: _Plan, table: Any, sort: Any, offset: int, limit: int | None) -> list:
    """Execute a read plan; see the module docstring for the route chosen."""
    if limit == 0:
        return []
    index_name, descending = sort_spec(sort)
    index = table.by_name[index_name]
    pred = plan.predicate()
    stop = None if limit is None else offset + limit
    best = plan.smallest()
    if best is not None and best.size == 0:
        return []
    # Every match lies in a range of the sort key, if the filter gives one: walks
    # then cover that range only (`span` records instead of the table).
    ranges = [s for s in plan.sources if s.sorted_on == index_name]
    bounds = None
    span = len(table.rows)
    if ranges:
        narrowest = min(ranges, key=lambda s: s.size)
        bounds, span = narrowest.bounds, narrowest.size
    grouped = table.by_name.get("state_type+" + index_name)
    ordered = None
    if grouped is not None:
        typed = [s for s in plan.sources if s.state_types is not None]
        if typed:
            ordered = min(typed, key=lambda s: s.size)
    if stop is None:
        if best is not None and best.size * 2 < span:
            return _sorted_candidates(best, pred, index, descending)[offset:]
        if ordered is not None and grouped.live:
            return _take(grouped.walk(ordered.state_types, descending, bounds), pred, offset, None)
        return _take(index.walk(descending, bounds), pred, offset, None)
    # A walk is chosen when the matches, if spread evenly through the sort order,
    # fill the window within about best.size records; bunched at the far end, they
    # would not until the walk had covered everything. So a walk is hedged: past
    # twice that many records it gives up for sorting the candidates, which bounds a
    # read at a few times the cheaper route's cost whatever the spread.
    hedge = None if best is None else 2 * best.size + HEDGE_SLACK
    if ordered is not None:
        if best.size * best.size > stop * min(ordered.size, span):
            if not grouped.live:
                # Per-state lists cost every later write, so build them only once the
                # global order proves slow here: matches are not near its start.
                found = _take(index.walk(descending, bounds), pred, offset, stop,
                              budget=min(4 * stop + WALK_SLACK, hedge))
                if found is not None:
                    return found
            found = _take(grouped.walk(ordered.state_types, descending, bounds), pred, offset, stop, budget=hedge)
            if found is not None:
                return found
    elif best is None:
        return _take(index.walk(descending, bounds), pred, offset, stop)
    elif best.size * best.size > stop * span:
        found = _take(index.walk(descending, bounds), pred, offset, stop, budget=hedge)
        if found is not None:
            return found
    return _sorted_candidates(best, pred, index, descending)[offset:stop]


def _sorted_candidates(src: _Source, pred: Callable, index: Any, descending: bool) -> list:
    extract = index.extract
    matched = [r for r in src.records() if pred(r)]
    matched.sort(key=extract, reverse=descending)
    return matched


def _take(records: Iterable[Any], pred: Callable, offset: int, stop: int | None,
          budget: int | None = None) -> Any:
    """Matches number offset..stop-1 of `records`; None if `budget` records were
    examined first (the caller then takes another route)."""
    out = []
    seen = 0
    examined = 0
    for rec in records:
        if budget is not None:
            examined += 1
            if examined > budget:
                return None
        if pred(rec):
            if seen >= offset:
                out.append(rec)
            seen += 1
            if stop is not None and seen >= stop:
                break
    return out


def _count(plan: _Plan, table: Any) -> int:
    if plan.restrictions == 0:
        return len(table.rows)
    exact = plan.exact_source()
    if exact is not None:
        return exact.size
    return sum(1 for _ in _matching(plan, table.rows))


# public entry points (called by Engine under its lock) ------------------------------------------

def _flow_run_filters(ff: Any, frf: Any, trf: Any, df: Any, wpf: Any, wqf: Any) -> tuple:
    # Spelled out rather than reusing _task_run_filters: these run on every count.
    return (
        parse_filter(FlowFilter, ff, "flows"),
        parse_filter(FlowRunFilter, frf, "flow_runs"),
        parse_filter(TaskRunFilter, trf, "task_runs"),
        parse_filter(DeploymentFilter, df, "deployments"),
        parse_filter(WorkPoolFilter, wpf, "work_pools"),
        parse_filter(WorkQueueFilter, wqf, "work_pool_queues"),
    )


def _task_run_filters(ff: Any, frf: Any, trf: Any, df: Any) -> tuple:
    return (
        parse_filter(FlowFilter, ff, "flows"),
        parse_filter(FlowRunFilter, frf, "flow_runs"),
        parse_filter(TaskRunFilter, trf, "task_runs"),
        parse_filter(DeploymentFilter, df, "deployments"),
    )


def _flow_run_query(tables: Any, ff: Any, frf: Any, trf: Any, df: Any, wpf: Any, wqf: Any) -> _Plan:
    """The plan of a flow-run query whose filters are typed objects or JSON shapes."""
    return _flow_run_plan(tables, *_flow_run_filters(ff, frf, trf, df, wpf, wqf))


def _task_run_query(tables: Any, ff: Any, frf: Any, trf: Any, df: Any) -> _Plan:
    """The plan of a task-run query whose filters are typed objects or JSON shapes."""
    return _task_run_plan(tables, *_task_run_filters(ff, frf, trf, df))


def read_flow_runs(
    engine: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    work_queue_filter: Any = None,
    offset: int | None = None,
    limit: int | None = None,
    sort: Any = "ID_DESC",
) -> list:
    """Flow runs matching every supplied filter, in `sort` order, `offset` skipped,
    at most `limit` (None = all). Filters are typed objects or Prefect JSON dicts.

    Cost: O(offset+limit) index steps when matches are dense in the sort (or
    per-state) order; otherwise O(c log c) for the smallest index candidate set c;
    cross-entity filters add O(matching flows/deployments/queues/task runs)."""
    tables = engine._store.tables
    plan = _flow_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
                           work_pool_filter, work_queue_filter)
    offset, limit = check_window(offset, limit)
    return _read(plan, tables["flow_run"], as_flow_run_sort(sort), offset, limit)


def page_flow_runs(engine: Any, filters: tuple, offset: int, limit: int, sort: Any) -> tuple[list, int]:
    """(read_flow_runs's window, count_flow_runs) under the six flow-run `filters`,
    from one plan: a paginate route's page and its total. Costs as the two."""
    tables = engine._store.tables
    plan, table = _flow_run_query(tables, *filters), tables["flow_run"]
    return _read(plan, table, as_flow_run_sort(sort), offset, limit), _count(plan, table)


def count_flow_runs(
    engine: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    work_pool_filter: Any = None,
    work_queue_filter: Any = None,
) -> int:
    """Number of flow runs matching every supplied filter. O(1) without filters,
    O(keys) for one index-covered criterion (e.g. state types), else O(c)."""
    tables = engine._store.tables
    return _count(_flow_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
                                  work_pool_filter, work_queue_filter), tables["flow_run"])


def read_task_runs(
    engine: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
    offset: int | None = None,
    limit: int | None = None,
    sort: Any = "ID_DESC",
) -> list:
    """Task runs matching every supplied filter, sorted, offset and limited
    (costs as for read_flow_runs)."""
    tables = engine._store.tables
    plan = _task_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter)
    offset, limit = check_window(offset, limit)
    return _read(plan, tables["task_run"], as_task_run_sort(sort), offset, limit)


def count_task_runs(
    engine: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
) -> int:
    """Number of task runs matching every supplied filter (costs as count_flow_runs)."""
    tables = engine._store.tables
    return _count(_task_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter),
                  tables["task_run"])


_STATE_TYPES = tuple(StateType)


def count_task_runs_by_state(
    engine: Any,
    flow_filter: Any = None,
    flow_run_filter: Any = None,
    task_run_filter: Any = None,
    deployment_filter: Any = None,
) -> CountByState:
    """Matching task runs counted per state type; stateless task runs are skipped
    (Prefect 3.1.0 raises a TypeError on them).

    O(state types) without filters; O(c) otherwise (c: the candidates of the
    smallest source, e.g. the task runs of the given flow runs)."""
    tables = engine._store.tables
    table = tables["task_run"]
    plan = _task_run_query(tables, flow_filter, flow_run_filter, task_run_filter, deployment_filter)
    counts = dict.fromkeys(_STATE_TYPES, 0)
    exact = plan.exact_source()  # None unless exactly one restriction
    if plan.restrictions == 0:
        for st, n in table.by_name["state_type"].counts().items():
            if st is not None:  # stateless runs are not counted
                counts[st] = n
    elif exact is not None and exact.state_types is not None:
        by_type = table.by_name["state_type"]
        for st in exact.state_types:
            counts[st] = by_type.count(st)
    else:
        for rec in _matching(plan, table.rows):
            st = rec.state_type
            if st is not None:
                counts[st] += 1
    return CountByState(**{st.value: n for st, n in counts.items()})
