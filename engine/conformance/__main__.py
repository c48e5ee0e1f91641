"""`python -m engine.conformance FILE.jsonl [FILE.jsonl ...]`: replay corpora.

A file whose first line holds a "dataset" record is a query corpus; any other file
is an orchestration corpus. Prints one line per failure (with its case id), the
known differences, then a line ``K known differences`` (only when K > 0) and the
closing line ``N passed, M failed``. Exit status 1 when any case failed.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import Report


def _is_query_corpus(path: str) -> bool:
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    try:
        head = json.loads(first)
    except ValueError:
        return False
    return isinstance(head, dict) and "dataset" in head


def run_path(path: str) -> Report:
    """Replay one corpus file with the runner its first line calls for."""
    if _is_query_corpus(path):
        from .queries import run_file
    else:
        from .orchestration import run_file  # written alongside; imported only when needed
    return run_file(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="corpus files (.jsonl)")
    args = parser.parse_args(argv)
    total = Report()
    for path in args.files:
        report = run_path(path)
        total.passed += report.passed
        total.failed.extend(report.failed)
        total.known.extend(report.known)
    for case_id, message in total.failed:
        print(f"FAIL {case_id}: {message}")
    for case_id, message in total.known:
        print(f"KNOWN {case_id}: {message}")
    if total.known:
        print(f"{len(total.known)} known differences")
    print(total.summary())
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
