"""The random query generator (tests/oracle/query_variants.py) and what it covers.

Its seed-1 cases, answered by Prefect 3.1.0, are tests/data/queries_variants_prefect_oracle.jsonl,
which tests/test_conformance_queries.py replays; here the committed file is checked
to be exactly what the generator writes, so the data can be made again (see
tests/oracle/README.md, "Random query variants").
"""
from __future__ import annotations

import collections
import json
import pathlib
import re

import pytest
from oracle_answers import load_oracle_script

HERE = pathlib.Path(__file__).parent
CORPUS = HERE / "data" / "queries.jsonl"
VARIANTS = HERE / "data" / "queries_variants_prefect_oracle.jsonl"

FLOW_OPS = ("read_flow_runs", "count_flow_runs")
TASK_OPS = ("read_task_runs", "count_task_runs", "count_task_runs_by_state")

# Every field and criterion of spec/filters.md §2, per entity filter (request key).
FILTER_PATHS = {
    "flows": "id.any_ deployment.is_null_ deployment.operator name.any_ name.like_ tags.all_ tags.is_null_ "
             "tags.operator operator",
    "flow_runs": "id.any_ id.not_any_ name.any_ name.like_ tags.all_ tags.is_null_ tags.operator "
                 "deployment_id.any_ deployment_id.is_null_ deployment_id.operator work_queue_name.any_ "
                 "work_queue_name.is_null_ work_queue_name.operator flow_version.any_ state.type.any_ "
                 "state.type.not_any_ state.name.any_ state.name.not_any_ state.operator start_time.before_ "
                 "start_time.after_ start_time.is_null_ end_time.before_ end_time.after_ end_time.is_null_ "
                 "expected_start_time.before_ expected_start_time.after_ next_scheduled_start_time.before_ "
                 "next_scheduled_start_time.after_ parent_flow_run_id.any_ parent_flow_run_id.operator "
                 "parent_task_run_id.any_ parent_task_run_id.is_null_ parent_task_run_id.operator "
                 "idempotency_key.any_ idempotency_key.not_any_ operator",
    "task_runs": "id.any_ name.any_ name.like_ tags.all_ tags.is_null_ tags.operator state.type.any_ "
                 "state.name.any_ state.operator start_time.before_ start_time.after_ start_time.is_null_ "
                 "expected_start_time.before_ expected_start_time.after_ subflow_runs.exists_ "
                 "flow_run_id.any_ flow_run_id.is_null_ flow_run_id.operator operator",
    "deployments": "id.any_ name.any_ name.like_ flow_or_deployment_name.like_ paused.eq_ tags.all_ "
                   "tags.is_null_ tags.operator work_queue_name.any_ concurrency_limit.ge_ concurrency_limit.le_ "
                   "concurrency_limit.is_null_ operator",
    "work_pools": "id.any_ name.any_ type.any_ operator",
    "work_pool_queues": "id.any_ name.any_ name.startswith_ operator",
}
FLOW_RUN_SORTS = {"ID_DESC", "START_TIME_ASC", "START_TIME_DESC", "EXPECTED_START_TIME_ASC",
                  "EXPECTED_START_TIME_DESC", "NAME_ASC", "NAME_DESC", "NEXT_SCHEDULED_START_TIME_ASC",
                  "END_TIME_DESC"}
TASK_RUN_SORTS = FLOW_RUN_SORTS - {"START_TIME_ASC", "START_TIME_DESC"}


@pytest.fixture(scope="module")
def qv():
    return load_oracle_script("query_variants")


@pytest.fixture(scope="module")
def corpus(qv):
    return qv.read_corpus(CORPUS)


@pytest.fixture(scope="module")
def seed1(qv, corpus):
    line, recorded = corpus
    return qv.generate(line, recorded, 1, 1000)


def _paths(flt: dict, prefix: tuple = ()) -> set[str]:
    """Dotted paths of the populated (non-null) leaves of a filter object."""
    out = set()
    for key, value in flt.items():
        if isinstance(value, dict):
            out |= _paths(value, prefix + (key,))
        elif value is not None:
            out.add(".".join(prefix + (key,)))
    return out


def test_the_committed_answers_are_the_seed_1_cases(seed1):
    committed = [json.loads(line) for line in VARIANTS.read_text().splitlines()]
    assert [(c["id"], c["op"], c["request"]) for c in committed] == \
        [(c["id"], c["op"], c["request"]) for c in seed1]


def test_output_is_deterministic_and_a_seed_extends_its_own_prefix(qv, corpus, seed1):
    line, recorded = corpus
    assert qv.generate(line, recorded, 1, 120) == seed1[:120]
    assert qv.generate(line, recorded, 2, 120) != seed1[:120]


def test_command_line_writes_the_dataset_line_then_the_cases(qv, tmp_path):
    out = tmp_path / "variants.jsonl"
    assert qv.main(["--seed", "7", "--count", "25", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == CORPUS.read_text().split("\n", 1)[0]
    cases = [json.loads(line) for line in lines[1:]]
    assert len(cases) == 25
    for n, case in enumerate(cases):
        assert case["id"] == f"variant.s7.{n:05d}.{case['op']}"
        assert set(case) == {"id", "op", "request"}


def test_every_op_entity_field_and_criterion_is_drawn(seed1):
    ops = collections.Counter(c["op"] for c in seed1)
    assert set(ops) == set(FLOW_OPS + TASK_OPS + ("read_task_run_dependencies",))
    for family, entities in ((FLOW_OPS, list(FILTER_PATHS)),
                             (TASK_OPS, ["flows", "flow_runs", "task_runs", "deployments"])):
        seen: dict[str, set] = collections.defaultdict(set)
        for case in seed1:
            if case["op"] in family:
                for key, value in case["request"].items():
                    if isinstance(value, dict):
                        seen[key] |= _paths(value)
        assert set(seen) == set(entities), family  # no entity filter an op does not accept
        for entity in entities:
            missing = set(FILTER_PATHS[entity].split()) - seen[entity]
            assert not missing, (family, entity, missing)


def test_windows_sorts_and_odd_values_are_drawn(seed1):
    reads = [c["request"] for c in seed1 if c["op"] in ("read_flow_runs", "read_task_runs")]
    flow_sorts = {c["request"].get("sort") for c in seed1 if c["op"] == "read_flow_runs"}
    task_sorts = {c["request"].get("sort") for c in seed1 if c["op"] == "read_task_runs"}
    assert FLOW_RUN_SORTS < flow_sorts and None in flow_sorts
    assert TASK_RUN_SORTS < task_sorts and None in task_sorts
    limits = collections.Counter(repr(r.get("limit", "absent")) for r in reads)
    offsets = collections.Counter(repr(r.get("offset", "absent")) for r in reads)
    for value in ("'absent'", "None", "0", "1", "100000"):
        assert limits[value], value
    for value in ("'absent'", "None", "0", "1", "50000"):
        assert offsets[value], value
    text = json.dumps([c["request"] for c in seed1])
    assert '"any_": []' in text and '"all_": []' in text and '"startswith_": []' in text
    assert '"operator": "or_"' in text and '"operator": "and_"' in text
    assert re.search(r'"(before|after)_": "\d{4}-\d\d-\d\d"', text)  # a bare date
    assert re.search(r'"(before|after)_": "[^"]*[+-](0[1-9]|10):\d\d"', text)  # another offset
    assert re.search(r'"(before|after)_": "[^"]*\.\d{6}', text)  # microseconds
    assert re.search(r'"(before|after)_": "[^"]*Z"', text)


def test_about_five_percent_ask_for_dependencies_of_no_flow_run(seed1, corpus):
    dataset = json.loads(corpus[0])["dataset"]
    flow_runs = {r["id"] for r in dataset["flow_runs"]}
    deps = [c["request"]["flow_run_id"] for c in seed1 if c["op"] == "read_task_run_dependencies"]
    missing = [i for i in deps if i.lower() not in flow_runs]
    assert 30 <= len(missing) <= 80
    answered = [json.loads(line) for line in VARIANTS.read_text().splitlines()]
    errors = [c for c in answered if "error" in c["expected"]]
    assert len(errors) == len(missing)
    assert {c["expected"]["error"]["type"] for c in errors} == {"ObjectNotFoundError"}


def test_mutants_change_recorded_requests_within_what_their_op_accepts(qv, corpus):
    line, recorded = corpus
    gen = qv.Gen(qv.Pools(json.loads(line)["dataset"]), 3, recorded)
    for op, keys in (("read_flow_runs", set(FILTER_PATHS) | {"sort", "limit", "offset"}),
                     ("count_task_runs", {"flows", "flow_runs", "task_runs", "deployments"})):
        cases = [c for c in recorded if c["op"] == op][:40]
        assert cases, op  # (else the share below holds of nothing)
        changed = 0
        for case in cases:
            mutant = gen.mutant(case)
            assert set(mutant) <= keys
            changed += mutant != case["request"]
        assert changed >= 0.9 * len(cases)
