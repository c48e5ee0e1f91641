"""`python -m engine.conformance FILE.jsonl [FILE.jsonl ...]`: replay corpora.

Each file's first record says what it is: a {"dataset": ...} line starts a query
corpus; a case with an "op" is a query case file without a dataset (as the
Prefect-answered extras in tests/data/), replayed on the dataset of the last query
corpus named before it; a scenario with a "kind" starts an orchestration corpus.
Prints one line per failure (with its case id), the known differences, then a line
``K known differences`` (only when K > 0) and the closing line ``N passed, M
failed``. Exit status 1 when any case failed, 2 when a file cannot be read as a
corpus.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys

from . import Report


class CorpusError(Exception):
    """A file that is not a corpus this runner can replay."""


def _first_record(path: str) -> tuple[dict, str]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    head = json.loads(line)
                except ValueError as exc:
                    raise CorpusError(f"{path}: its first line is not JSON ({exc})") from None
                if not isinstance(head, dict):
                    break
                return head, line
    raise CorpusError(f"{path}: not a corpus (its first line is not a JSON object)")


def run_path(path: str, dataset_line: str | None = None) -> tuple[Report, str | None]:
    """Replay one corpus file with the runner its first record calls for. Returns
    the report and the dataset line later query-case files replay on."""
    head, line = _first_record(path)
    if "dataset" in head:
        from .queries import run_file

        return run_file(path), line
    if "op" in head:
        if dataset_line is None:
            raise CorpusError(f"{path}: query cases without a dataset: name a query corpus with one "
                              "(e.g. tests/data/queries.jsonl) before it")
        from .queries import run_lines

        with open(path, encoding="utf-8") as fh:
            return run_lines(itertools.chain([dataset_line], fh)), dataset_line
    if "kind" in head:
        from .orchestration import run_file as run_scenarios

        return run_scenarios(path), dataset_line
    raise CorpusError(f"{path}: unrecognised corpus format (the first record has no dataset, op or kind)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="corpus files (.jsonl)")
    args = parser.parse_args(argv)
    total = Report()
    dataset_line = None
    for path in args.files:
        try:
            report, dataset_line = run_path(path, dataset_line)
        except (CorpusError, OSError, ValueError, KeyError) as exc:
            detail = str(exc) if isinstance(exc, CorpusError) else f"{path}: {type(exc).__name__}: {exc}"
            print(f"error: {detail}", file=sys.stderr)
            return 2
        total.passed += report.passed
        total.failed.extend(report.failed)
        total.known.extend(report.known)
    for label, entries in (("FAIL", total.failed), ("KNOWN", total.known)):
        for case_id, message in entries:
            first, *more = message.splitlines() or [""]
            print(f"{label} {case_id}: {first}")
            for line in more:
                print(f"    {line}")
    if total.known:
        print(f"{len(total.known)} known differences")
    print(total.summary())
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
