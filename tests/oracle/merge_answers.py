#!/usr/bin/env python3
"""Merge a scenario list with the answers an oracle script wrote for it.

usage: python tests/oracle/merge_answers.py SCENARIOS.json ANSWERS.json OUT.jsonl

SCENARIOS.json is a JSON list of scenarios (each with an "id"); ANSWERS.json the
oracle's JSON list of {"id", "expected"}. OUT.jsonl gets one compact line per
scenario, in the scenarios' order: the scenario with its answer under "expected".
A scenario without an answer stops the merge (KeyError) before OUT is written.
Standard library only.
"""
import json
import sys


def merged_lines(scenarios: list, answers: list) -> list[str]:
    expected = {a["id"]: a["expected"] for a in answers}
    return [json.dumps({**case, "expected": expected[case["id"]]}, separators=(",", ":")) + "\n"
            for case in scenarios]


def main(argv: list[str]) -> None:
    scenarios_path, answers_path, out = argv
    with open(scenarios_path) as f:
        scenarios = json.load(f)
    with open(answers_path) as f:
        answers = json.load(f)
    lines = merged_lines(scenarios, answers)
    with open(out, "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
