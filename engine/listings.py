"""Flows and deployments listed and counted under Prefect's cross-entity filters.

Prefect narrows these listings with EXISTS subqueries: a flow-run (or task-run)
filter keeps the flows that have a matching run, a deployment (or work-pool) filter
the flows that have a matching deployment, and so on. Every supplied filter counts,
even an empty one (`flow_run_filter={}`: flows with at least one run), as Prefect
tests the filter object, not its content. These tables are small next to the runs':
listings scan them and reuse the run queries' plans for the run side.
"""
from __future__ import annotations

from typing import Any, Callable

from .filters import DeploymentFilter, FlowFilter, FlowRunFilter, TaskRunFilter, WorkPoolFilter, WorkQueueFilter, parse_filter
from .queries import _flow_run_plan, _matching, _queue_ids, window
from .sorting import DeploymentSort, FlowSort, as_catalog_sort, sort_records

__all__ = ["read_flows", "count_flows", "read_deployments", "count_deployments", "page"]


def _runs_matching(tables: Any, frf: Any, trf: Any) -> list:
    # Runs that pass the flow-run filter and, with a task-run filter, have a matching task run.
    return list(_matching(_flow_run_plan(tables, None, frf, trf, None, None, None), tables["flow_run"].rows))


def _flow_predicates(tables: Any, ff: Any, frf: Any, trf: Any, df: Any, wpf: Any) -> list[Callable]:
    preds = []
    if ff is not None:
        preds.append(ff.predicate(tables))
    if df is not None or wpf is not None:
        d_pred = df.predicate(tables) if df is not None else None
        queues = _queue_ids(tables, None, wpf) if wpf is not None else None  # deployment -> queue -> pool
        with_deployment = {d.flow_id for d in tables["deployment"].rows.values()
                           if (d_pred is None or d_pred(d)) and (queues is None or d.work_queue_id in queues)}
        preds.append(lambda f: f.id in with_deployment)
    if frf is not None or trf is not None:
        with_run = {r.flow_id for r in _runs_matching(tables, frf, trf)}
        preds.append(lambda f: f.id in with_run)
    return preds


def _deployment_predicates(tables: Any, ff: Any, frf: Any, trf: Any, df: Any, wpf: Any, wqf: Any) -> list[Callable]:
    preds = []
    if df is not None:
        preds.append(df.predicate(tables))
    if ff is not None:
        f_pred = ff.predicate(tables)
        flows = {f.id for f in tables["flow"].rows.values() if f_pred(f)}
        preds.append(lambda d: d.flow_id in flows)
    if frf is not None or trf is not None:
        with_run = {r.deployment_id for r in _runs_matching(tables, frf, trf)}
        preds.append(lambda d: d.id in with_run)
    if wpf is not None or wqf is not None:
        queues = _queue_ids(tables, wqf, wpf)
        preds.append(lambda d: d.work_queue_id in queues)
    return preds


def _select(rows: Any, preds: list[Callable]) -> list:
    return [r for r in rows if all(p(r) for p in preds)] if preds else list(rows)


def _flow_filters(ff: Any, frf: Any, trf: Any, df: Any, wpf: Any) -> tuple:
    return (parse_filter(FlowFilter, ff, "flows"), parse_filter(FlowRunFilter, frf, "flow_runs"),
            parse_filter(TaskRunFilter, trf, "task_runs"), parse_filter(DeploymentFilter, df, "deployments"),
            parse_filter(WorkPoolFilter, wpf, "work_pools"))


def _deployment_filters(ff: Any, frf: Any, trf: Any, df: Any, wpf: Any, wqf: Any) -> tuple:
    return (*_flow_filters(ff, frf, trf, df, wpf), parse_filter(WorkQueueFilter, wqf, "work_pool_queues"))


# kind -> (parse the filter arguments, predicates from the parsed filters, sort enum)
_KINDS: dict[str, tuple[Callable, Callable, type]] = {
    "flow": (_flow_filters, _flow_predicates, FlowSort),
    "deployment": (_deployment_filters, _deployment_predicates, DeploymentSort),
}


def page(engine: Any, kind: str, filters: tuple, sort: Any, offset: Any, limit: Any) -> tuple[list, int]:
    """(the sorted window of `kind` records matching `filters`, how many match in
    all): a read and its count from one selection."""
    parse, predicates, sort_enum = _KINDS[kind]
    parsed = parse(*filters)
    sort = as_catalog_sort(sort_enum, sort)
    chosen = window(offset, limit)
    tables = engine._store.tables
    selected = _select(tables[kind].rows.values(), predicates(tables, *parsed))
    return sort_records(selected, sort)[chosen], len(selected)


def _listing(engine: Any, kind: str, filters: tuple, sort: Any, offset: Any, limit: Any) -> list:
    return page(engine, kind, filters, sort, offset, limit)[0]


def _count(engine: Any, kind: str, filters: tuple) -> int:
    parse, predicates, _ = _KINDS[kind]
    parsed = parse(*filters)
    tables = engine._store.tables
    preds = predicates(tables, *parsed)
    return len(_select(tables[kind].rows.values(), preds)) if preds else len(tables[kind].rows)


def read_flows(engine: Any, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
               deployment_filter: Any = None, work_pool_filter: Any = None, sort: Any = None,
               offset: int | None = None, limit: int | None = None) -> list:
    """Flows matching every supplied filter, sorted, paginated. O(flows log flows),
    plus O(matching runs) with a run filter."""
    filters = (flow_filter, flow_run_filter, task_run_filter, deployment_filter, work_pool_filter)
    return _listing(engine, "flow", filters, sort, offset, limit)


def count_flows(engine: Any, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                deployment_filter: Any = None, work_pool_filter: Any = None) -> int:
    """Number of flows matching every supplied filter. O(1) without filters."""
    return _count(engine, "flow", (flow_filter, flow_run_filter, task_run_filter, deployment_filter, work_pool_filter))


def read_deployments(engine: Any, offset: int | None = None, limit: int | None = None, flow_filter: Any = None,
                     flow_run_filter: Any = None, task_run_filter: Any = None, deployment_filter: Any = None,
                     work_pool_filter: Any = None, work_queue_filter: Any = None, sort: Any = None) -> list:
    """Deployments matching every supplied filter, sorted, paginated (Prefect's
    parameter order). O(deployments log deployments), plus O(matching runs)."""
    filters = (flow_filter, flow_run_filter, task_run_filter, deployment_filter, work_pool_filter, work_queue_filter)
    return _listing(engine, "deployment", filters, sort, offset, limit)


def count_deployments(engine: Any, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                      deployment_filter: Any = None, work_pool_filter: Any = None, work_queue_filter: Any = None) -> int:
    """Number of deployments matching every supplied filter. O(1) without filters."""
    filters = (flow_filter, flow_run_filter, task_run_filter, deployment_filter, work_pool_filter, work_queue_filter)
    return _count(engine, "deployment", filters)
