"""The query corpus recorded from Prefect 3.1.0 replays cleanly, and the runner's
command line reports failures the documented way."""
from __future__ import annotations

import json
import pathlib

import pytest

from engine.conformance.__main__ import main
from engine.conformance.queries import run_file

CORPUS = pathlib.Path(__file__).parent / "data" / "queries.jsonl"
# More cases in the corpus format, over the same dataset, whose expected answers come
# from Prefect 3.1.0's own models layer on SQLite (same pinned dependencies as the
# corpus), answered by tests/oracle/prefect_queries.py (see its README). They cover forms no
# recorded case shows: every field and operator alone, random and_/or_ combinations
# across entities, windows, and edge forms (empty lists under or_, `startswith_=[]`,
# times without an offset, bare dates). Cases only: the dataset is the corpus's line 1.
ORACLE_CASES = pathlib.Path(__file__).parent / "data" / "queries_prefect_oracle.jsonl"
# 1,000 more, answered the same way: tests/oracle/query_variants.py --seed 1 --count 1000
# (every op, every entity filter, field and criterion, and_/or_ at every level, values
# from the dataset, near it and matching nothing, every sort and window, mutants of
# recorded requests, and ~5% dependencies of ids that are no flow run). Cases only.
VARIANTS = pathlib.Path(__file__).parent / "data" / "queries_variants_prefect_oracle.jsonl"


def test_every_recorded_query_case_passes():
    report = run_file(str(CORPUS))
    assert report.failed == []
    assert report.passed == 567


@pytest.mark.parametrize("path, size", [(ORACLE_CASES, 539), (VARIANTS, 1000)], ids=["extra", "variants"])
def test_every_prefect_answered_extra_case_passes(tmp_path, path, size):
    dataset = CORPUS.read_text().split("\n", 1)[0]
    cases = path.read_text()
    corpus = tmp_path / "extra.jsonl"
    corpus.write_text(dataset + "\n" + cases)
    report = run_file(str(corpus))
    assert report.failed == []
    assert report.passed == len(cases.splitlines()) == size


def _tampered(tmp_path, n_cases=20):
    lines = CORPUS.read_text().splitlines()[: n_cases + 1]
    bad = json.loads(lines[1])
    first_id = bad["id"]
    if "count" in bad["expected"]:
        bad["expected"]["count"] += 1
    else:
        bad["expected"]["ids"] = bad["expected"]["ids"][1:]
    lines[1] = json.dumps(bad)
    path = tmp_path / "tampered.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, first_id, n_cases


def test_cli_reports_a_failure_with_its_case_id_and_exits_1(tmp_path, capsys):
    path, bad_id, n = _tampered(tmp_path)
    assert main([str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("FAIL " + bad_id) for line in out)
    assert out[-1] == f"{n - 1} passed, 1 failed"


def test_cli_exits_0_on_a_clean_corpus(tmp_path, capsys):
    path = tmp_path / "ok.jsonl"
    path.write_text("\n".join(CORPUS.read_text().splitlines()[:30]) + "\n")
    assert main([str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "29 passed, 0 failed"


def test_error_cases_compare_type_and_message(tmp_path):
    lines = CORPUS.read_text().splitlines()
    missing = '00000000-0000-4000-8000-000000000001'
    case = {"id": "deps.x", "op": "read_task_run_dependencies", "request": {"flow_run_id": missing},
            "expected": {"error": {"type": "ObjectNotFoundError", "message": f"Flow run with id {missing} not found"}}}
    wrong = dict(case, id="deps.y", expected={"error": {"type": "ObjectNotFoundError", "message": "nope"}})
    path = tmp_path / "errors.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(case), json.dumps(wrong)]) + "\n")
    report = run_file(str(path))
    assert report.passed == 1
    assert [cid for cid, _ in report.failed] == ["deps.y"]


def test_cli_replays_query_cases_on_the_dataset_of_the_corpus_named_before_them(tmp_path, capsys):
    # The Prefect-answered extras carry no dataset line, as committed.
    assert main([str(CORPUS), str(ORACLE_CASES)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{567 + 539} passed, 0 failed"
    cases = tmp_path / "cases.jsonl"
    lines = ORACLE_CASES.read_text().splitlines()[:5]
    bad = json.loads(lines[1])
    bad["expected"] = {"count": -1} if "count" in bad["expected"] else {**bad["expected"], "ids": []}
    lines[1] = json.dumps(bad)
    cases.write_text("\n".join(lines) + "\n")
    assert main([str(CORPUS), str(cases)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"FAIL {bad['id']}: ") and line.count(bad["id"]) == 1 for line in out)


@pytest.mark.parametrize("content, says", [
    (None, "No such file"),
    ("not json\n", "first line is not JSON"),
    ("[1, 2]\n", "not a corpus"),
    ('{"something": "else"}\n', "unrecognised corpus format"),
    ('{"id": "c", "op": "count_flow_runs", "request": {}, "expected": {"count": 1}}\n', "without a dataset"),
])
def test_cli_refuses_what_is_not_a_corpus_with_exit_2(tmp_path, capsys, content, says):
    path = tmp_path / "input.jsonl"
    if content is not None:
        path.write_text(content)
    assert main([str(path)]) == 2
    captured = capsys.readouterr()
    assert says in captured.err and str(path) in captured.err
    assert captured.out == ""
