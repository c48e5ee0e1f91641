#!/usr/bin/env python3
"""Random scenarios for the flow-run graph (models.flow_runs.read_flow_run_graph, the
SQLite `flow_run_graph_v2` query).

usage: python3 tests/oracle/graph_scenarios.py [--focused] SEED N OUT.jsonl

Standard library only (no Prefect, no engine). Same seed and N, same bytes. The scenarios
have history_scenarios.py's format (answered by the same script, prefect_history.py),
with two more run fields:

* a task run's `task_inputs`: {key: [entry, ...]}, an entry {"input_type": "task_run",
  "id"} (a task run of the scenario, of another flow run, itself, or none at all),
  {"input_type": "parameter", "name"} or {"input_type": "constant", "type"}; keys are
  parameter names or "__parents__"; lists may be empty (Prefect's client sends one
  for every parameter without upstream);
* a flow run's `parent_task_run`: the id of the task run it is a subflow of, or absent.

The first flow run is the root: most task runs belong to it, some wrap subflows (one,
now and then a second one without a state), a few belong to the second flow run. The
oracle creates subflows through Prefect's create_flow_run (forced, as the replay does),
so a subflow with a state also gives its parent task run that state, at the scenario's
now (UpdateSubflowParentTask); no parent task run has a state of its own at that time. Queries are {"op": "graph",
"flow_run": id, "since": ISO text or null (the route's default, datetime.min),
"max_nodes": int}: of the root mostly, also of the other run, a subflow and an id
that is no flow run. `since` is often a node's end time exactly, or a microsecond off,
in UTC, with another offset or none. tests/test_graph_oracle.py replays the answers.
"""
import sys

import history_scenarios as hs
from scenario_files import write_scenarios

SECOND = hs.SECOND
KEYS = ["x", "y", "data", "__parents__"]
MISSING_ID = "00000000-0000-4000-8000-000000000001"


def graph_answer(graph, us_of):
    """A graph (Prefect's or the engine's: same attribute names) as the answers hold it,
    times as `us_of(datetime)` (None for None), each edge list sorted (SQLite's
    group_concat leaves their order open)."""
    def node(n):
        return [str(n.id), n.kind, n.label, n.state_type and n.state_type.value, us_of(n.start_time),
                us_of(n.end_time), *(sorted(str(e.id) for e in edges) for edges in (n.parents, n.children,
                                                                                    n.encapsulating))]
    return {"start_us": us_of(graph.start_time), "end_us": us_of(graph.end_time),
            "roots": [str(i) for i in graph.root_node_ids], "nodes": [node(n) for _, n in graph.nodes],
            "states": [[s.type.value, s.name, us_of(s.timestamp)] for s in graph.states]}


def _entry(rng, ids, own_id):
    u = rng.random()
    if u < 0.7 and ids:
        return {"input_type": "task_run", "id": rng.choice(ids)}
    if u < 0.75:
        return {"input_type": "task_run", "id": own_id if rng.random() < 0.5 else MISSING_ID}
    if u < 0.88:
        return {"input_type": "parameter", "name": rng.choice(["p", "q"])}
    return {"input_type": "constant", "type": rng.choice(["int", "str"])}


def _inputs(rng, ids, own_id):
    if rng.random() < 0.2:
        return {}
    keys = rng.sample(KEYS, rng.randint(1, 3))
    return {k: [_entry(rng, ids, own_id) for _ in range(rng.choice([0, 0, 1, 1, 1, 2, 3]))] for k in keys}


def _since(rng, times):
    """The `since` of a query: null, a node's time (exact or a microsecond off) or any time."""
    u = rng.random()
    if u < 0.25:
        return None
    us = rng.choice(times) if times and u < 0.8 else hs._time_us(rng)
    us += rng.choice([0, 0, 0, 1, -1, SECOND])
    return hs._text(us, rng)


def gen_scenario(rng, sid):
    flows = [{"name": "parent", "tags": []}, {"name": "child", "tags": []}]
    root = {**hs._run(rng), "flow": "parent", "deployment": None, "queue": None}
    other = {**hs._run(rng), "flow": "parent", "deployment": None, "queue": None}
    n = rng.choice([0, 1, 2, 3, 4, 5, 6, 8, 10, 12])
    task_runs = []
    for i in range(n + rng.randint(0, 2)):
        run = hs._run(rng)
        run.update(flow_run=root["id"] if i < n else other["id"], task_key="t", dynamic_key=str(i))
        task_runs.append(run)
    ids = [r["id"] for r in task_runs]
    for run in task_runs:
        run["task_inputs"] = _inputs(rng, ids, run["id"])
    subflows = []
    for run in task_runs[:n]:
        if rng.random() < 0.25:
            for k in range(1 if rng.random() < 0.9 else 2):
                sub = {**hs._run(rng), "flow": "child", "deployment": None, "queue": None,
                       "parent_task_run": run["id"]}
                if k:   # a second subflow has no state: its own would collide (below)
                    sub.update(state=None, expected_us=None, start_us=None, total_us=0)
                subflows.append(sub)
            # A subflow created with a state gives its parent task run that state at
            # "now" (UpdateSubflowParentTask): not at the task's own state's time.
            if run["state"] is not None and run["state"][2] == 0:
                run["state"][2] = 1000
                if run["state"][0] == "RUNNING" and run["start_us"] is not None:
                    run["state"][2] = max(1000, run["start_us"])
    flow_runs = [root, other] + subflows
    times = [t for r in task_runs + subflows for t in (r["expected_us"], r["start_us"],
                                                       r["state"] and r["state"][2]) if t is not None]
    queries = [{"op": "graph", "flow_run": root["id"], "since": _since(rng, times), "max_nodes": 10000}
               for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.2:
        queries.append({"op": "graph", "flow_run": root["id"], "since": None, "max_nodes": rng.randint(0, n + 1)})
    extra = [other["id"], MISSING_ID] + [s["id"] for s in subflows[:1]]
    if rng.random() < 0.3:
        queries.append({"op": "graph", "flow_run": rng.choice(extra), "since": None, "max_nodes": 10000})
    return {"id": sid, "now_ms": 0, "flows": flows, "pools": [], "queues": [], "deployments": [],
            "flow_runs": flow_runs, "task_runs": task_runs, "queries": queries}


def _focused():
    """Hand-written: empty input lists count as edge rows; a stateless subflow."""
    def run(i, kind, flow_run=None, **extra):
        r = {"id": f"00000000-0000-4000-8000-0000000000{i:02d}", "name": f"r{i}", "tags": [],
             "state": kind and [kind, kind.title(), 10 * SECOND], "expected_us": 0, "start_us": 0, "total_us": 0}
        if kind is None:
            r.update(state=None, expected_us=None, start_us=None)
        if flow_run is not None:
            r.update(flow_run=flow_run, task_key="t", dynamic_key=str(i))
        r.update(extra)
        return r

    root = {**run(10, "RUNNING"), "flow": "parent", "deployment": None, "queue": None}
    p = run(11, "COMPLETED", root["id"], task_inputs={"x": [], "y": []})
    c = run(12, "RUNNING", root["id"], task_inputs={"a": [{"input_type": "task_run", "id": p["id"]}], "b": []})
    wrapper = run(13, "RUNNING", root["id"], task_inputs={})
    sub = {**run(14, None), "flow": "child", "deployment": None, "queue": None, "parent_task_run": wrapper["id"]}
    return [{"id": "g-empty-lists-and-stateless-subflow", "now_ms": 0,
             "flows": [{"name": "parent", "tags": []}, {"name": "child", "tags": []}],
             "pools": [], "queues": [], "deployments": [], "flow_runs": [root, sub], "task_runs": [p, c, wrapper],
             "queries": [{"op": "graph", "flow_run": root["id"], "since": None, "max_nodes": 10000}]}]


FOCUSED = _focused()


def main(argv):
    write_scenarios(argv, __doc__, FOCUSED, gen_scenario, "g")


if __name__ == "__main__":
    main(sys.argv)
