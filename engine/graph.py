"""Task-run dependencies and the flow-run graph (spec operations.md §1.9, §1.11, §5).

`read_task_run_dependencies` lists each task run of a flow run with the task runs it
consumed. Prefect 3.1.0 fails the whole call with a validation error when a task
input is a parameter or a constant (they cannot be represented as a TaskRunResult);
runstate skips such entries instead and reports only task-run inputs.

`read_flow_run_graph` is Prefect's graph v2 with SQLite's orderings: nodes by
(start, end) with a NULL end first, ties by id; edge lists in input order, with the
multiplicity Prefect's join produces (no de-duplication). That join is outer over the
JSON of `task_inputs`, so an empty input list is a row too (spec operations.md §5
counts entries only; tests/data/graph_prefect_oracle.jsonl shows Prefect 3.1.0's
rows), and over subflows, so a task run wrapping two subflows is two nodes; a
subflow's state type falls back to its task run's (`COALESCE`).
"""
from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

import attrs

from .errors import FlowRunGraphTooLarge, ObjectNotFoundError
from .records import TaskRunResult, estimated_run_time
from .states import State, StateType
from .validation import as_datetime

__all__ = [
    "DependencyResult",
    "Edge",
    "GraphArtifact",
    "GraphState",
    "Node",
    "Graph",
    "read_task_run_dependencies",
    "read_flow_run_graph",
    "MAX_NODES",
    "MAX_ARTIFACTS",
]

MAX_NODES = 10_000
MAX_ARTIFACTS = 10_000


@attrs.define(slots=True)
class DependencyResult:
    """One task run of a flow run with its upstream task runs."""

    id: uuid.UUID
    name: str
    upstream_dependencies: list[TaskRunResult]
    state: State | None
    expected_start_time: _dt.datetime | None
    start_time: _dt.datetime | None
    end_time: _dt.datetime | None
    total_run_time: _dt.timedelta | None
    estimated_run_time: _dt.timedelta | None
    untrackable_result: bool


def read_task_run_dependencies(engine: Any, flow_run_id: uuid.UUID) -> list[DependencyResult]:
    """Every task run of the flow run (ID_DESC order) with the de-duplicated task
    runs named in any of its `task_inputs` lists (`__parents__` included;
    parameter/constant inputs skipped). Raises ObjectNotFoundError for an unknown
    flow run. O(t log t + inputs) for t task runs."""
    tables = engine._store.tables
    if flow_run_id not in tables["flow_run"].rows:
        raise ObjectNotFoundError(f"Flow run with id {flow_run_id} not found")
    bucket = tables["task_run"].by_name["flow_run_id"].get(flow_run_id)
    now = engine._clock.now()
    out = []
    for tr in sorted(bucket.values(), key=lambda r: r.id.int, reverse=True):
        upstream: dict[uuid.UUID, TaskRunResult] = {}
        for entries in tr.task_inputs.values():
            for entry in entries:
                if isinstance(entry, TaskRunResult) and entry.id not in upstream:
                    upstream[entry.id] = entry
        state = tr.state
        out.append(DependencyResult(
            id=tr.id,
            name=tr.name,
            upstream_dependencies=list(upstream.values()),
            state=state,
            expected_start_time=tr.expected_start_time,
            start_time=tr.start_time,
            end_time=tr.end_time,
            total_run_time=tr.total_run_time,
            estimated_run_time=estimated_run_time(tr, now),
            untrackable_result=bool(state.state_details.untrackable_result) if state is not None else False,
        ))
    return out


@attrs.define(slots=True, frozen=True)
class Edge:
    id: uuid.UUID


@attrs.define(slots=True)
class GraphArtifact:
    id: uuid.UUID
    created: _dt.datetime
    key: str | None
    type: str | None
    is_latest: bool
    data: Any


@attrs.define(slots=True)
class GraphState:
    id: uuid.UUID
    timestamp: _dt.datetime
    type: StateType
    name: str | None


@attrs.define(slots=True)
class Node:
    kind: str  # "task-run" or "flow-run"
    id: uuid.UUID
    label: str
    state_type: StateType | None
    start_time: _dt.datetime
    end_time: _dt.datetime | None
    parents: list[Edge] = attrs.field(factory=list)
    children: list[Edge] = attrs.field(factory=list)
    encapsulating: list[Edge] = attrs.field(factory=list)
    artifacts: list[GraphArtifact] = attrs.field(factory=list)


@attrs.define(slots=True)
class Graph:
    start_time: _dt.datetime | None
    end_time: _dt.datetime | None
    root_node_ids: list[uuid.UUID]
    nodes: list[tuple[uuid.UUID, Node]]
    artifacts: list[GraphArtifact]
    states: list[GraphState]


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None:
            return v
    return None


def read_flow_run_graph(
    engine: Any,
    flow_run_id: uuid.UUID,
    since: _dt.datetime | None = None,
    max_nodes: int = MAX_NODES,
    max_artifacts: int = MAX_ARTIFACTS,
) -> Graph:
    """The flow run's graph: one node per task run that has a state other than
    PENDING (a subflow's wrapper task becomes the subflow's node), edges from task
    inputs, artifacts and the run's state history. `since` keeps only nodes still
    running or ended at/after it. Raises ObjectNotFoundError for an unknown run and
    FlowRunGraphTooLarge above `max_nodes` nodes. O(t log t + inputs + artifacts)."""
    if since is not None:
        since = as_datetime(since, "since")
    tables = engine._store.tables
    run = tables["flow_run"].rows.get(flow_run_id)
    if run is None:
        raise ObjectNotFoundError(f"Flow run {flow_run_id} not found")
    flows = tables["flow"].rows
    subflows = tables["flow_run"].by_name["parent_task_run_id"]

    nodes: dict[uuid.UUID, Node] = {}
    rows_of: dict[uuid.UUID, list[tuple[str | None, uuid.UUID | None]]] = {}
    for tr in tables["task_run"].by_name["flow_run_id"].get(flow_run_id).values():
        if tr.state_type is None or tr.state_type is StateType.PENDING:
            continue
        # The query's rows for this task run: one per input entry, one (no parent) per
        # empty input list, one if it has no inputs at all (outer joins over the JSON).
        edge_rows = [
            (key, entry.id if isinstance(entry, TaskRunResult) else None)
            for key, entries in tr.task_inputs.items()
            for entry in (entries or (None,))
        ] or [(None, None)]
        completed_at = tr.expected_start_time if tr.state_type is StateType.COMPLETED else None
        wrapped = subflows.get(tr.id)
        # A task run wrapping subflows is one node per subflow (the query joins them all).
        for sub in sorted(wrapped.values(), key=lambda r: r.id.int) if wrapped else (None,):
            if sub is not None:
                flow = flows.get(sub.flow_id)
                start = _first(sub.start_time, sub.expected_start_time, tr.start_time, tr.expected_start_time)
                node = Node("flow-run", sub.id, f"{flow.name if flow else ''} / {sub.name}",
                            _first(sub.state_type, tr.state_type), start,
                            _first(sub.end_time, tr.end_time, completed_at))
            else:
                start = _first(tr.start_time, tr.expected_start_time)
                node = Node("task-run", tr.id, tr.name, tr.state_type, start, _first(tr.end_time, completed_at))
            if start is None:
                continue
            nodes[node.id] = node
            rows_of[node.id] = edge_rows

    # Edges over all candidates (before `since`), with the join's multiplicity:
    # each matching edge row counts once per edge row of the referenced node.
    for child_id, edge_rows in rows_of.items():
        child = nodes[child_id]
        for key, parent_id in edge_rows:
            if parent_id is None or parent_id not in nodes:
                continue
            times = len(rows_of[parent_id])
            if key == "__parents__":
                child.encapsulating.extend([Edge(parent_id)] * times)
            else:
                child.parents.extend([Edge(parent_id)] * times)
                nodes[parent_id].children.extend([Edge(child_id)] * times)

    kept = [n for n in nodes.values() if since is None or n.end_time is None or n.end_time >= since]
    kept.sort(key=lambda n: (n.start_time, 0, n.id.int) if n.end_time is None
              else (n.start_time, 1, n.end_time, n.id.int))
    if len(kept) > max_nodes:
        raise FlowRunGraphTooLarge(f"The graph of flow run {flow_run_id} has more than {max_nodes} nodes.")

    graph_artifacts = _artifacts(tables, flow_run_id, max_artifacts, nodes)
    states = sorted(tables["flow_run_state"].by_name["run_id"].get(flow_run_id).values(),
                    key=lambda r: r.timestamp)
    return Graph(
        start_time=_first(run.start_time, run.expected_start_time),
        end_time=run.end_time,
        root_node_ids=[n.id for n in kept if not n.parents],
        nodes=[(n.id, n) for n in kept],
        artifacts=graph_artifacts,
        states=[GraphState(s.id, s.timestamp, s.type, s.name) for s in states],
    )


def _artifacts(tables: Any, flow_run_id: uuid.UUID, limit: int, nodes: dict) -> list[GraphArtifact]:
    """Attach non-result artifacts to their task-run nodes; return the flow-level ones."""
    rows = tables["artifact"].by_name["flow_run_id"].get(flow_run_id).values()
    # SQL `type != 'result'` is not true for a NULL type either.
    chosen = sorted((a for a in rows if a.type is not None and a.type != "result"),
                    key=lambda a: (a.created, a.id.int))[:limit]
    collections = tables["artifact_collection"].by_name["key"]
    flow_level = []
    for a in chosen:
        if a.key is None:
            latest = True
        else:
            bucket = collections.get(a.key)
            latest = any(c.latest_id == a.id for c in bucket.values())
        item = GraphArtifact(a.id, a.created, a.key, a.type, latest, a.data if a.type == "progress" else None)
        if a.task_run_id is None:
            flow_level.append(item)
        elif a.task_run_id in nodes:
            nodes[a.task_run_id].artifacts.append(item)
    return flow_level
