"""Per-rule statistics without touching the orchestration package: a policy is
re-declared with every rule subclassed so its hooks are timed and its mutators
counted.

For an orchestration rule, each run of `before_transition` is one *call*; it counts
as `accept` unless the hook rejected, delayed or aborted (seen by wrapping
`reject_transition`, `delay_transition`, `abort_transition`), and then once, as its
last such response: the one the proposal gets (a tag rule finding two tags full
delays twice, but answers one WAIT). Universal transforms
only count calls. `ns` is the wall time of all hooks (before, after, cleanup).
The wrapper keeps the rule's name, module and qualname, so reasons and signatures
that mention the class read exactly as without it.
"""
from __future__ import annotations

from time import perf_counter_ns
from typing import Any

__all__ = ["RuleStats"]

# LAST: the response kind (REJECT, WAIT or ABORT) a running before_transition has
# given last, ACCEPT for none yet, OUTSIDE when no before_transition is running.
CALLS, ACCEPT, REJECT, WAIT, ABORT, NS, LAST = range(7)
OUTSIDE = -1


class RuleStats:
    """Counters per rule name: [calls, accept, reject, wait, abort, ns, responses]."""

    __slots__ = ("table", "transforms", "_wrapped")

    def __init__(self) -> None:
        self.table: dict[str, list[int]] = {}
        self.transforms: set[str] = set()
        self._wrapped: dict[type, type] = {}

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """Deterministic part (counts), rules sorted by name."""
        out: dict[str, dict[str, Any]] = {}
        for name, r in sorted(self.table.items()):
            if name in self.transforms:
                out[name] = {"kind": "transform", "calls": r[CALLS]}
            else:
                out[name] = {"kind": "rule", "calls": r[CALLS], "accept": r[ACCEPT], "reject": r[REJECT],
                             "wait": r[WAIT], "abort": r[ABORT]}
        return out

    def timings(self) -> dict[str, dict[str, float]]:
        """Wall-clock part: total and mean microseconds per rule."""
        out = {}
        for name, r in sorted(self.table.items()):
            total_us = r[NS] / 1000.0
            out[name] = {"total_ms": round(total_us / 1000.0, 3),
                         "mean_us": round(total_us / r[CALLS], 3) if r[CALLS] else 0.0}
        return out

    def wrap_rule(self, rule: type) -> type:
        """A timed subclass of `rule` (cached per rule class). O(1)."""
        done = self._wrapped.get(rule)
        if done is not None:
            return done
        from ..orchestration import BaseUniversalTransform

        rec = self.table.setdefault(rule.__name__, [0, 0, 0, 0, 0, 0, OUTSIDE])
        ns: dict[str, Any] = {"__module__": rule.__module__, "__qualname__": rule.__qualname__,
                              "__doc__": rule.__doc__}
        if issubclass(rule, BaseUniversalTransform):
            self.transforms.add(rule.__name__)
            ns.update(_transform_hooks(rule, rec))
            # The wrappers only pass `self` through, so a transform the pipeline may call
            # as plain functions stays callable that way (its fast path).
            if getattr(rule, "_stateless", False):
                ns["_STATELESS_HOOKS"] = True
        else:
            ns.update(_rule_hooks(rule, rec))
        wrapped = type(rule.__name__, (rule,), ns)
        self._wrapped[rule] = wrapped
        return wrapped

    def instrument(self, policy: type) -> type:
        """`policy` re-declared with timed rules (same name). O(rules)."""
        rules = [self.wrap_rule(r) for r in policy.priority()]
        ns = {"__module__": policy.__module__, "__qualname__": policy.__qualname__,
              "priority": staticmethod(lambda: list(rules))}
        return type(policy.__name__, (policy,), ns)


def _overrides(rule: type, name: str, base: type) -> bool:
    return getattr(rule, name) is not getattr(base, name)


def _transform_hooks(rule: type, rec: list[int]) -> dict[str, Any]:
    # Only hooks the transform defines are wrapped: the pipeline skips the others.
    from ..orchestration import BaseUniversalTransform as base

    hooks: dict[str, Any] = {}
    has_before = _overrides(rule, "before_transition", base)
    if has_before:
        hooks["before_transition"] = _timed_transform_hook(rule.before_transition, rec, 1)
    if _overrides(rule, "after_transition", base):
        # Calls are counted on entry when there is a before-hook.
        hooks["after_transition"] = _timed_transform_hook(rule.after_transition, rec, 0 if has_before else 1)
    return hooks


def _timed_transform_hook(hook: Any, rec: list[int], calls: int) -> Any:
    """`hook` timed into `rec`, counting `calls` (0 or 1) per run."""
    def timed(self: Any, context: Any) -> None:
        t = perf_counter_ns()
        try:
            hook(self, context)
        finally:
            rec[NS] += perf_counter_ns() - t
            rec[CALLS] += calls

    return timed


def _rule_hooks(rule: type, rec: list[int]) -> dict[str, Any]:
    from ..orchestration import BaseOrchestrationRule as base

    base_before = rule.before_transition
    base_reject, base_delay, base_abort = rule.reject_transition, rule.delay_transition, rule.abort_transition

    # Runs once per rule per proposal and counts one outcome: the last response the
    # hook gave (see LAST), or accept. (Saved and restored: a hook could propose to
    # another run under the same rule.)
    def before_transition(self: Any, initial: Any, proposed: Any, context: Any) -> None:
        outer = rec[LAST]
        rec[LAST] = ACCEPT
        t = perf_counter_ns()
        try:
            base_before(self, initial, proposed, context)
        finally:
            rec[NS] += perf_counter_ns() - t
            rec[CALLS] += 1
            rec[rec[LAST]] += 1
            rec[LAST] = outer

    def respond(kind: int) -> None:
        if rec[LAST] == OUTSIDE:
            rec[kind] += 1  # a response from another hook: counted as it comes
        else:
            rec[LAST] = kind

    def reject_transition(self: Any, state: Any, reason: str) -> None:
        respond(REJECT)
        base_reject(self, state, reason)

    def delay_transition(self: Any, delay_seconds: int, reason: str) -> None:
        respond(WAIT)
        base_delay(self, delay_seconds, reason)

    def abort_transition(self: Any, reason: str) -> None:
        respond(ABORT)
        base_abort(self, reason)

    hooks: dict[str, Any] = {
        "before_transition": before_transition, "reject_transition": reject_transition,
        "delay_transition": delay_transition, "abort_transition": abort_transition,
    }
    for name in ("after_transition", "cleanup"):
        if _overrides(rule, name, base):
            hooks[name] = _timed_exit_hook(getattr(rule, name), rec)
    return hooks


def _timed_exit_hook(hook: Any, rec: list[int]) -> Any:
    def timed(self: Any, initial: Any, validated: Any, context: Any) -> None:
        t = perf_counter_ns()
        try:
            hook(self, initial, validated, context)
        finally:
            rec[NS] += perf_counter_ns() - t

    return timed
