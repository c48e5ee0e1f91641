"""Orchestration conformance runner: replay recorded Prefect 3.1.0 state transitions.

Each line of an orchestration corpus is one scenario (README §1 of the corpus):
objects to create, states to apply, a proposed state, and what Prefect answered.
`run_case` replays one scenario on a fresh engine with a manual clock
(`_orch_replay`) and compares the read-back with the recording (`_orch_compare`);
`run_file` does that for a whole file and returns a `Report`.

    >>> report = run_file("tests/data/orchestration.jsonl")   # doctest: +SKIP
    >>> print(report.summary())                               # doctest: +SKIP

Deliberate differences from Prefect go in `KNOWN_DIFFERENCES` (KnownDifference: case-id glob or a
predicate on the case, the explanation, and optionally a check of runstate's
answer): cases where Prefect 3.1.0 crashes or turns its own internal error into an
answer, and runstate does the sensible thing listed in README "Differences from
Prefect". Such a case is never counted as passed: it is reported as a known
difference when runstate's documented behaviour holds (the check; without one, the
comparison, which for these cases checks only the status, or that the call failed
and changed nothing), and as a failure otherwise.
"""
from __future__ import annotations

import collections
import fnmatch
import json
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Union

from ..errors import ValidationError
from . import Report
from ._orch_compare import compare
from ._orch_replay import replay

__all__ = [
    "KNOWN_DIFFERENCES",
    "KnownDifference",
    "run_case",
    "run_cases",
    "run_file",
    "load_cases",
    "format_mismatches",
    "group_summary",
]

Matcher = Union[str, Callable[[dict], bool]]

def _prefect_crashed(case: dict) -> bool:
    outcome = case["outcome"]
    return outcome["status"] == "ERROR" and (outcome.get("error") or {}).get("type") == "AttributeError"


def _prefect_internal_abort(case: dict) -> bool:
    return bool((case["outcome"].get("details") or {}).get("internal_error"))


def _steps(case: dict) -> list[tuple[dict, dict]]:
    """(the state submitted, what Prefect answered as {"status", "error_type"}) for
    every step of a scenario: its history, then the proposal."""
    out: list[tuple[dict, dict]] = []
    for step in case["history"]:
        result = step.get("result") or {}
        out.append((step["state"], {"status": result.get("status"), "error_type": result.get("error_type")}))
    outcome = case["outcome"]
    out.append((case["proposed"], {"status": outcome["status"],
                                   "error_type": (outcome.get("error") or {}).get("type")}))
    return out


def _first_crash(case: dict, error_types: frozenset, submitted: Callable[[dict], bool]) -> int | None:
    """The step (index into _steps: the proposal is last) where Prefect first raised
    one of `error_types` on a state that `submitted` accepts; None if nowhere."""
    for n, (state, answer) in enumerate(_steps(case)):
        if answer["status"] == "ERROR":
            return n if answer["error_type"] in error_types and submitted(state) else None
    return None


def _answered_there(error_types: frozenset, submitted: Callable[[dict], bool]) -> Callable[[dict, dict], bool]:
    """The documented behaviour of a case where Prefect crashed and runstate does
    not: runstate answers that step (with any status but an error). The steps after
    it start from different states, so nothing later is compared."""
    def holds(case: dict, observed: dict) -> bool:
        n = _first_crash(case, error_types, submitted)
        got = observed["outcome"] if n == len(case["history"]) else observed["history"][n]  # type: ignore[index]
        return got["status"] != "ERROR"
    return holds


def _degenerate_retry_delay(case: dict) -> bool:
    """A task run whose retry delay Prefect cannot compute: an empty list, or jitter
    on a zero base delay."""
    policy = ((case["setup"].get("task_run") or {}).get("empirical_policy")) or {}
    delay = policy.get("retry_delay")
    if delay == []:
        return True
    delays = delay if isinstance(delay, list) else [delay or 0]
    return bool(policy.get("retry_jitter_factor")) and 0 in delays


def _deferred_with_result(state: dict) -> bool:
    data = state.get("data")
    return (state.get("type") == "SCHEDULED" and bool((state.get("state_details") or {}).get("deferred"))
            and isinstance(data, dict) and data.get("type") != "unpersisted")


_RETRY_DELAY_ERRORS = frozenset({"ZeroDivisionError", "IndexError"})
_ATTRIBUTE_ERRORS = frozenset({"AttributeError"})
_DEFERRED_RESULT_ERRORS = frozenset({"ValidationError"})


def _truthy_non_dict_data(state: dict) -> bool:
    data = state.get("data")
    return bool(data) and not isinstance(data, dict)


def _non_dict_result_crash(case: dict) -> bool:
    """Prefect's terminal-state rules call `.get` on a state's result data: a run
    whose state holds truthy data that is not a dict crashes the next transition
    leaving it."""
    return (any(_truthy_non_dict_data(step["state"]) for step in case["history"])
            and _first_crash(case, _ATTRIBUTE_ERRORS, lambda state: True) is not None)


def _negative_tag_limit(case: dict) -> bool:
    return any(limit.get("limit", 0) < 0 for limit in case["setup"].get("task_concurrency_limits") or ())


def _retry_delay_crash(case: dict) -> bool:
    return (case.get("kind") == "task" and _degenerate_retry_delay(case)
            and _first_crash(case, _RETRY_DELAY_ERRORS, lambda state: True) is not None)


def _deferred_result_crash(case: dict) -> bool:
    return _first_crash(case, _DEFERRED_RESULT_ERRORS, _deferred_with_result) is not None


class KnownDifference(NamedTuple):
    """A case Prefect 3.1.0 gets wrong and runstate answers on purpose: which cases
    (`matches`), why, and `holds(case, observed)`, runstate's documented answer
    where Prefect crashed (None: the comparison itself checks it). With
    `refuses_setup`, runstate refuses the scenario's setup (a ValidationError) on
    purpose: input Prefect stores and runstate does not."""

    matches: Matcher
    why: str
    holds: Callable[[dict, dict], bool] | None = None
    refuses_setup: bool = False


KNOWN_DIFFERENCES: list[KnownDifference] = [
    KnownDifference(
        _non_dict_result_crash,
        "Prefect 3.1.0 crashes (AttributeError: ... has no attribute 'get') leaving a terminal state "
        "whose result data is truthy but not a dict (a string, a list); runstate reads such data as a "
        "persisted result and answers the transition.",
        _answered_there(_ATTRIBUTE_ERRORS, lambda state: True),
    ),
    KnownDifference(
        _negative_tag_limit,
        "Prefect 3.1.0 stores a tag concurrency limit below zero (every task run with the tag then "
        "waits for ever); runstate refuses to create one.",
        refuses_setup=True,
    ),
    KnownDifference(
        _prefect_crashed,
        "Prefect 3.1.0 crashes with AttributeError when a rule reads the missing state of a "
        "run that has none (e.g. proposing Late to a stateless run); runstate raises "
        "OrchestrationError naming the problem. Both fail the call and change nothing.",
    ),
    KnownDifference(
        _prefect_internal_abort,
        "Prefect 3.1.0 answers ABORT 'Error validating state: AttributeError(...)' (its own "
        "internal error) when a transition of a stateless run is nullified; runstate answers "
        "the same ABORT with a reason naming why nothing could be kept.",
    ),
    KnownDifference(
        _retry_delay_crash,
        "Prefect 3.1.0's RetryFailedTasks raises (IndexError, ZeroDivisionError) computing the "
        "retry delay of a task run whose retry_delay is an empty list or whose jitter has a zero "
        "base delay, on every RUNNING -> FAILED, retry due or not; runstate answers the "
        "transition, a retry with no delay.",
        _answered_there(_RETRY_DELAY_ERRORS, lambda state: True),
    ),
    KnownDifference(
        _deferred_result_crash,
        "Prefect 3.1.0 fails (pydantic ValidationError on state.data: the new state row's result "
        "is not loaded yet) when a deferred SCHEDULED task state carries a persisted result (also "
        "one a subflow mirrors onto its parent task run); "
        "runstate accepts it and queues the task run.",
        _answered_there(_DEFERRED_RESULT_ERRORS, _deferred_with_result),
    ),
]


def _known(case: dict) -> KnownDifference | None:
    """The KNOWN_DIFFERENCES entry that `case` matches, or None."""
    for entry in KNOWN_DIFFERENCES:
        matcher = entry.matches
        if callable(matcher):
            hit = matcher(case)
        else:
            hit = fnmatch.fnmatchcase(case["id"], matcher)
        if hit:
            return entry
    return None


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def format_mismatches(mismatches: Iterable[tuple[str, Any, Any]]) -> str:
    """One line per mismatch: ``<path>: expected X, got Y`` (the report pairs the
    message with its case id)."""
    return "\n".join(f"{path}: expected {_show(exp)}, got {_show(got)}" for path, exp, got in mismatches)


def run_case(case: dict, policies: dict | None = None) -> tuple[Union[bool, str], str]:
    """Replay one scenario; returns (True, "") on a match, (False, message) on a
    mismatch or a crash of the replay, ("known", message) for a listed known difference
    whose documented behaviour holds (a listed case that mismatches is a failure).

    `policies` maps policy names to policy classes (default: engine.orchestration.POLICIES).
    Cost: one fresh engine plus the scenario's steps, about a millisecond.
    """
    try:
        observed = replay(case, policies)
    except Exception as exc:  # the harness itself could not replay: report, never hide
        known = _known(case)
        if known is not None and known.refuses_setup and isinstance(exc, ValidationError):
            return "known", f"known difference: {known.why} ({exc})"
        message = f"replay: raised {type(exc).__name__}: {exc}"
        mismatches = None
    else:
        mismatches = compare(case, observed)
        known = _known(case)
        if known is not None and known.holds is not None:  # Prefect crashed where runstate answers
            if known.holds(case, observed):
                return "known", f"known difference: {known.why}"
            mismatches = mismatches or [("documented behaviour", known.why, "not observed")]
        elif not mismatches:
            if known is not None:  # matches only as far as the documented difference allows
                return "known", f"known difference: {known.why}"
            return True, ""
        message = format_mismatches(mismatches)
    return False, message


def load_cases(path: str) -> Iterator[dict]:
    """The scenarios of a JSONL file (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def run_cases(cases: Iterable[dict], policies: dict | None = None) -> Report:
    """Replay every scenario; returns a Report. O(total steps)."""
    if policies is None:
        from ..orchestration import POLICIES as policies  # noqa: N811
    report = Report()
    for case in cases:
        ok, message = run_case(case, policies)
        if ok is True:
            report.passed += 1
        elif ok == "known":
            report.known.append((case["id"], message))
        else:
            report.failed.append((case.get("id", "<no id>"), message))
    return report


def run_file(path: str) -> Report:
    """Replay every scenario of an orchestration corpus file."""
    return run_cases(load_cases(path))


def _group_of(case_id: str) -> str:
    kind, _, rest = case_id.partition(".")
    return f"{kind}.{rest.rpartition('.')[0] or rest}"


def group_summary(report: Report, total_by_group: dict[str, int] | None = None) -> str:
    """Per-group failure counts, worst first, each with one representative failure line."""
    failed: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for case_id, message in report.failed:
        failed[_group_of(case_id)].append((case_id, message))
    lines = [report.summary() + (f", {len(report.known)} known" if report.known else "")]
    for group, messages in sorted(failed.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        total = f"/{total_by_group[group]}" if total_by_group and group in total_by_group else ""
        case_id, message = messages[0]
        lines.append(f"  {group}: {len(messages)}{total} failed; e.g. {case_id}: {message.splitlines()[0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.conformance.orchestration FILE [-v]`: print the group summary."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args
    paths = [a for a in args if a != "-v"]
    if len(paths) != 1:
        print("usage: python -m engine.conformance.orchestration FILE.jsonl [-v]", file=sys.stderr)
        return 2
    cases = list(load_cases(paths[0]))
    totals = collections.Counter(_group_of(c["id"]) for c in cases)
    report = run_cases(cases)
    if verbose:
        for _, message in report.failed:
            print(message)
    print(group_summary(report, totals))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
