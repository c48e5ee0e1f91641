"""Compare a replayed scenario (from `_orch_replay`) with its recorded expectation.

Rules (corpus README §1.9 step 5):

* history: each step's status, reason and returned state (label/type/name); an
  internal-error ABORT reason (a Python repr) is compared by status only;
* status, details type/reason exactly (reason skipped when `internal_error`),
  `delay_seconds` within ±1;
* returned state: label, type, name, message, data and every listed state detail;
  `*_offset_s` within ±1 s (±2 s with `timing_warning`; `tolerances` ranges where
  given, ±1 s around them);
* run fields and the listed side effects exactly (offsets ±1 s);
* ERROR: only that the call failed with one of runstate's documented errors (a
  RunstateError: a crash of ours is a failure even where Prefect crashed) and left
  the run unchanged (plus the run and side effects, which then describe the
  untouched objects).

Auto-generated pause keys are compared by count: `auto-pause-key-N` numbering
depends on UUID order, which differs between engines.

Every mismatch is a (path, expected, got) triple; paths look like
`outcome.state.state_details.pause_key` or `history[2].result.status`.
"""
from __future__ import annotations

from typing import Any

__all__ = ["compare", "Mismatch", "INTERNAL_ERROR_PREFIXES"]

Mismatch = tuple[str, Any, Any]

INTERNAL_ERROR_PREFIXES = ("Error validating state:", "Aborting orchestration due to error")
_MISSING = object()


def _norm_pause_key(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("auto-pause-key-"):
        return "auto-pause-key"
    return value


class _Comparer:
    __slots__ = ("out", "tolerances", "slack")

    def __init__(self, tolerances: dict, timing_warning: bool) -> None:
        self.out: list[Mismatch] = []
        self.tolerances = tolerances
        self.slack = 2.0 if timing_warning else 1.0

    def diff(self, path: str, exp: Any, got: Any) -> None:
        self.out.append((path, exp, got))

    def offset(self, path: str, exp: Any, got: Any) -> None:
        if exp is None or got is None or isinstance(got, bool) or not isinstance(got, (int, float)):
            if exp is not got and exp != got:
                self.diff(path, exp, got)
            return
        bounds = self.tolerances.get(path)
        lo, hi = (bounds[0] - 1, bounds[1] + 1) if bounds else (exp - self.slack, exp + self.slack)
        if not lo <= got <= hi:
            self.diff(path, exp, round(got, 3))

    def value(self, path: str, exp: Any, got: Any, check_extra: bool = True) -> None:
        """Deep comparison with the offset, pause-key and bool rules."""
        if got is _MISSING:
            self.diff(path, exp, "<absent>")
            return
        leaf = path.rsplit(".", 1)[-1]
        if leaf.endswith("_offset_s"):
            self.offset(path, exp, got)
        elif leaf == "pause_key":
            if _norm_pause_key(exp) != _norm_pause_key(got):
                self.diff(path, exp, got)
        elif leaf == "pause_keys" and isinstance(exp, list) and isinstance(got, list):
            if sorted(map(_norm_pause_key, exp)) != sorted(map(_norm_pause_key, got)):
                self.diff(path, exp, got)
        elif isinstance(exp, dict):
            if not isinstance(got, dict):
                self.diff(path, exp, got)
                return
            for key, sub in exp.items():
                self.value(f"{path}.{key}", sub, got.get(key, _MISSING))
            if check_extra:
                for key in got.keys() - exp.keys():
                    self.diff(f"{path}.{key}", "<absent>", got[key])
        elif isinstance(exp, list):
            if not isinstance(got, list) or len(got) != len(exp):
                self.diff(path, exp, got)
                return
            for i, (e, g) in enumerate(zip(exp, got)):
                self.value(f"{path}[{i}]", e, g)
        elif isinstance(exp, bool) or isinstance(got, bool):
            if exp is not got:
                self.diff(path, exp, got)
        elif exp != got:
            self.diff(path, exp, got)


def _is_internal(reason: Any) -> bool:
    return isinstance(reason, str) and reason.startswith(INTERNAL_ERROR_PREFIXES)


def _compare_history(c: _Comparer, case: dict, observed: list) -> None:
    steps = case["history"]
    if len(observed) != len(steps):
        c.diff("history", f"{len(steps)} steps", f"{len(observed)} steps")
    for i, (step, got) in enumerate(zip(steps, observed)):
        exp = step["result"]
        path = f"history[{i}].result"
        if exp["status"] != got["status"]:
            extra = f" ({got.get('error_type')}: {got.get('error')})" if got["status"] == "ERROR" else ""
            c.diff(f"{path}.status", exp["status"], f"{got['status']}{extra}")
            continue
        if exp["status"] == "ERROR":
            if not got.get("documented", True):  # Prefect's crash is not a licence for ours
                c.diff(f"{path}.error", "one of runstate's documented errors", f"{got['error_type']}: {got['error']}")
            continue
        if not _is_internal(exp.get("reason")) and exp.get("reason") != got.get("reason"):
            c.diff(f"{path}.reason", exp.get("reason"), got.get("reason"))
        c.value(f"{path}.state", exp.get("state"), got.get("state"))


def compare(case: dict, observed: dict) -> list[Mismatch]:
    """Mismatches between the recorded `case` and a replay `observed`. O(size of case)."""
    expected = case["outcome"]
    c = _Comparer(expected.get("tolerances") or {}, bool(expected.get("timing_warning")))
    _compare_history(c, case, observed["history"])
    got = observed["outcome"]
    status = expected["status"]
    if got["status"] != status:
        extra = ""
        if got["status"] == "ERROR" and got.get("error"):
            extra = f" ({got['error']['type']}: {got['error']['message']})"
        c.diff("outcome.status", status, f"{got['status']}{extra}")
    if status == "ERROR":
        if got["status"] == "ERROR" and not got.get("unchanged", True):
            c.diff("outcome.run", "unchanged after the error", "modified")
        if got["status"] == "ERROR" and not got.get("documented", True):
            error = got.get("error") or {}
            c.diff("outcome.error", "one of runstate's documented errors", f"{error.get('type')}: {error.get('message')}")
    elif got["status"] != "ERROR":
        exp_details = expected.get("details") or {}
        got_details = got.get("details") or {}
        if exp_details.get("type") != got_details.get("type"):
            c.diff("outcome.details.type", exp_details.get("type"), got_details.get("type"))
        if not exp_details.get("internal_error") and exp_details.get("reason") != got_details.get("reason"):
            c.diff("outcome.details.reason", exp_details.get("reason"), got_details.get("reason"))
        if "delay_seconds" in exp_details:
            e, g = exp_details["delay_seconds"], got_details.get("delay_seconds")
            if (e is None) != (g is None) or (e is not None and abs(g - e) > 1):
                c.diff("outcome.details.delay_seconds", e, g)
        c.value("outcome.state", expected.get("state"), got.get("state"))
        if expected.get("state_is_new") != got.get("state_is_new"):
            c.diff("outcome.state_is_new", expected.get("state_is_new"), got.get("state_is_new"))
        if expected.get("new_state_rows") != got.get("new_state_rows"):
            c.diff("outcome.new_state_rows", expected.get("new_state_rows"), got.get("new_state_rows"))
    c.value("outcome.run", expected.get("run"), got.get("run"))
    got_effects = got.get("side_effects") or {}
    for key, exp in (expected.get("side_effects") or {}).items():
        c.value(f"outcome.side_effects.{key}", exp, got_effects.get(key, _MISSING))
    return c.out
