"""Conformance runners: replay corpora recorded from Prefect 3.1.0 against the engine.

`python -m engine.conformance FILE.jsonl` picks the runner from the file's first
record (a "dataset" line starts a query corpus, a case with an "op" is a query-case
file replayed on the last dataset named before it, a scenario with a "kind" is an
orchestration corpus; anything else exits 2: see __main__). Every runner returns a
`Report`.
"""
from __future__ import annotations

import dataclasses

__all__ = ["Report"]


@dataclasses.dataclass
class Report:
    """Outcome of replaying one corpus.

    `failed` and `known` hold (case id, message) pairs; `known` lists documented
    differences from Prefect, which do not count as failures.
    """

    passed: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    known: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no case failed (known differences are allowed)."""
        return not self.failed

    def summary(self) -> str:
        """The closing line: exactly ``N passed, M failed``."""
        return f"{self.passed} passed, {len(self.failed)} failed"
