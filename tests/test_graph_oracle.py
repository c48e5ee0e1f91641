"""The flow-run graph against Prefect 3.1.0's own query (models.flow_runs.read_flow_run_graph,
the SQLite flow_run_graph_v2): tests/data/graph_prefect_oracle.jsonl, from
tests/oracle/graph_scenarios.py and prefect_history.py (tests/oracle/README.md (m)).

Prefect leaves two orders to SQLite: nodes with equal (start, end) and the ids in an
edge list (group_concat). So the replay compares the nodes' (start, end) keys in order,
the nodes themselves as a multiset with their edge lists sorted (multiplicities kept),
and the root ids as a set."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from engine import graph as graph_module
from oracle_answers import compact, generator_writes, is_error, load_oracle_script, read_answers
from scenario_build import replayed, us_of

CASES = read_answers("graph_prefect_oracle.jsonl")
START_NONE = "validation error for Graph\nstart_time\n"


GRAPH_ANSWER = load_oracle_script("graph_scenarios").graph_answer   # the oracle's own answer shape


def comparable(answer: dict) -> dict:
    return {**answer, "nodes": sorted(answer["nodes"]), "keys": [n[4:6] for n in answer["nodes"]],
            "roots": sorted(answer["roots"])}


def wall_time_as_prefect_binds_it(since: str | None) -> dt.datetime | None:
    """Prefect binds `since` as its wall time, without its offset, so a non-UTC offset
    shifts it (README, Differences from Prefect); runstate reads the instant `since`
    names. Prefect's answer is thus runstate's for the wall time read as UTC."""
    if since is None:
        return None
    return dt.datetime.fromisoformat(since.replace("Z", "+00:00")).replace(tzinfo=dt.timezone.utc)


def engine_answer(engine: Any, q: dict) -> Any:
    try:
        graph = graph_module.read_flow_run_graph(engine, q["flow_run"], q["since"], max_nodes=q["max_nodes"])
    except Exception as exc:  # noqa: BLE001  (compared with Prefect's error by class)
        return {"error": type(exc).__name__}
    return GRAPH_ANSWER(graph, us_of)


@pytest.mark.parametrize("case", CASES, ids=[c["scenario"]["id"] for c in CASES])
def test_graph_matches_prefect(case):
    for engine, q, want, where in replayed(case):
        q = {**q, "flow_run": uuid.UUID(q["flow_run"]), "since": wall_time_as_prefect_binds_it(q["since"])}
        got = engine_answer(engine, q)
        if is_error(want) and START_NONE in want["error"]:
            # Prefect's Graph wants a start time: a root run with neither a start nor an
            # expected start fails its validation (a 500); runstate's graph says None.
            assert got["start_us"] is None, where
        elif is_error(want):
            assert got == {"error": want["error"].split(":")[0]}, where
        else:
            assert comparable(got) == comparable(want), where


def test_the_corpus_covers_what_the_graph_does():
    """A replay that never met an edge, a subflow, a `since` cut or an error would prove little."""
    graphs = [a for c in CASES for a in c["answer"]["answers"] if not is_error(a)]
    errors = {a["error"].split(":")[0] for c in CASES for a in c["answer"]["answers"] if is_error(a)}
    nodes = [n for g in graphs for n in g["nodes"]]
    assert len(graphs) >= 300 and len(nodes) >= 1000
    assert sum(1 for n in nodes if n[1] == "flow-run") >= 50
    assert sum(1 for n in nodes if len(n[6]) != len(set(n[6]))) >= 50      # parents repeated by the join
    assert sum(1 for n in nodes if n[8]) >= 50                               # encapsulating edges
    assert {"ObjectNotFoundError", "FlowRunGraphTooLarge"} <= errors


def test_the_generator_still_writes_the_recorded_scenarios(tmp_path):
    assert generator_writes("graph_scenarios", ["--focused", "1", "400"], tmp_path / "graph_in.jsonl") == [
        compact(c["scenario"]) for c in CASES]
