"""Rule benchmarking: run a policy over a transition stream and report, per rule,
the time it cost and how it answered.

    python -m engine bench-rules --policy CoreTaskPolicy --transitions 10000
    python -m engine bench-rules --policy mypkg.rules:MyPolicy --stream runs.jsonl
    report = bench_rules("CoreFlowPolicy", transitions=5000); print(report.format())

How it measures without touching engine/orchestration: each rule class of the
policy is replaced by a same-named subclass whose `__enter__`/`__exit__` are
timed (so a rule's time includes the framework's validity checks and safe copies
made for it) and whose effect on the context is classified:

  skip     invalid on entry (no hook ran)        accept  before-hook ran, outcome unchanged
  reject / wait / abort  the rule set that status  error   a hook of the rule raised
  after    still valid at exit (its after-hook, if any, ran); "-" for a stateless
           transform with no after-hook: the pipeline calls its before-hook as a
           plain function and has no exit to observe
  cleanup  fizzled (its cleanup, if any, ran)

A proposal that a rule's exception ends (the engine undoes it) is an "ERROR" outcome
and the run goes on. A hook that calls the engine (proposing a state for another
run) has the nested proposal's rules and transforms inside its own time; they are
not counted again.

The global policies (GlobalFlowPolicy / GlobalTaskPolicy) are instrumented the same
way by swapping the pipeline's references for the duration of the run (process-wide;
do not run two benchmarks at once). "other" is the rest of each call: validation,
storage, the engine's transaction.

Streams: a synthetic stream (seeded, reactive: the next proposal for a run depends
on how the last one was answered) or a recorded one, JSON lines of operations:

  {"op": "tag_limit", "tag": "db", "limit": 4}
  {"op": "deployment", "id": "d", "limit": 4, "collision_strategy": "ENQUEUE"}
  {"op": "flow_run", "id": "f1", "deployment": "d", "fields": {...}, "state": {"type": "SCHEDULED"}}
  {"op": "task_run", "id": "t1", "flow_run": "f1", "fields": {...}, "state": {"type": "PENDING"}}
  {"op": "propose", "run": "t1", "state": {"type": "RUNNING", "state_details": {"cache_key": "k"}}}
  {"op": "advance", "seconds": 30}

Only "propose" lines are orchestrated by the policy under test and counted as
transitions; `--record FILE` writes the stream in this format (operations given
from Python with the engine's types in its JSON forms: see engine/recorded_streams.py).
"""
from __future__ import annotations

import argparse
import collections
import gc
import json
import random
import sys
import time
import warnings
from datetime import timedelta
from typing import Any, Callable, Iterable, Iterator, Sequence

import attrs

from .clock import ManualClock
from .engine import Engine
from .errors import RunstateError, ValidationError, shown
from .orchestration import POLICIES, BaseOrchestrationPolicy, BaseUniversalTransform, resolve_policy
from .orchestration.rules import check_rule_classes, rules_of
from .orchestration import pipeline as _pipeline
from .recorded_streams import check_writable, encoded_op, write_stream
from .validation import as_state

__all__ = ["RuleStats", "BenchReport", "bench_rules", "resolve_policy", "instrument_policy",
           "synthetic_stream", "read_stream", "benchmark_rule", "BaselineMismatchError", "ReplayMismatchError", "main"]

_perf = time.perf_counter
# Exceptions the instrumented rules saw raised (by a hook of theirs) since the
# replayer last looked: a proposal failing with one of these counts as an error
# outcome and the benchmark goes on. (Benchmarks never run concurrently.)
_RULE_ERRORS: list = []


def _raised_by_a_rule(exc: BaseException) -> bool:
    return any(exc is seen for seen in _RULE_ERRORS)


_ERROR_KINDS_KEPT = 5


@attrs.define(slots=True)
class RuleStats:
    """Counts and time of one rule (or transform) over a benchmark."""

    name: str
    role: str  # "rule", "transform" (inside the policy) or "global"
    calls: int = 0
    skip: int = 0
    accept: int = 0
    reject: int = 0
    wait: int = 0
    abort: int = 0
    error: int = 0
    after: int | None = 0   # None: a stateless transform with no after-hook (not observed)
    cleanup: int = 0
    seconds: float = 0.0
    # With repeated passes, `seconds` is the least and this the worst minus it.
    spread: float = 0.0
    # What the rule's hooks raised: repr of the exception -> times (the first few kinds).
    errors: dict = attrs.field(factory=dict)

    def count_error(self, exc: BaseException) -> None:
        self.error += 1
        _RULE_ERRORS.append(exc)
        text = repr(exc)
        if text in self.errors or len(self.errors) < _ERROR_KINDS_KEPT:
            self.errors[text] = self.errors.get(text, 0) + 1

    @property
    def mean_us(self) -> float:
        return self.seconds / self.calls * 1e6 if self.calls else 0.0


@attrs.define(slots=True)
class BenchReport:
    """Result of `bench_rules`: totals, outcome counts, per-rule stats in policy order."""

    policy: str
    kind: str
    stream: str
    transitions: int
    seconds: float
    statuses: dict
    rules: list
    # Same stream through the plain (uninstrumented) policy, when asked for.
    baseline_seconds: float | None = None
    # Passes over the stream; above 1, each time is its least (see bench_rules).
    repeat: int = 1

    @property
    def per_second(self) -> float:
        return self.transitions / self.seconds if self.seconds else 0.0

    @property
    def other_seconds(self) -> float:
        return max(0.0, self.seconds - sum(r.seconds for r in self.rules))

    def as_dict(self) -> dict:
        return {
            "policy": self.policy, "kind": self.kind, "stream": self.stream,
            "transitions": self.transitions, "seconds": self.seconds, "per_second": self.per_second,
            "statuses": dict(self.statuses), "other_seconds": self.other_seconds,
            "rules": [{**attrs.asdict(r), "mean_us": r.mean_us} for r in self.rules],
            "baseline_seconds": self.baseline_seconds, "repeat": self.repeat,
        }

    def format(self) -> str:
        """A plain-text table, one line per rule."""
        total = self.seconds or 1e-12
        repeated = self.repeat > 1
        lines = [
            f"bench-rules: {self.policy} ({self.kind} runs), {self.transitions} transitions in "
            f"{self.seconds:.3f} s = {self.per_second:,.0f}/s"
            + (f" (best of {self.repeat} passes)" if repeated else "") + f"; stream: {self.stream}",
            "outcomes: " + "  ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
            "",
            f"{'rule':<44}{'calls':>8}{'skip':>7}{'accept':>8}{'reject':>8}{'wait':>6}{'abort':>6}"
            f"{'error':>6}{'after':>7}{'cleanup':>8}{'ms':>9}{'µs/call':>9}{'share':>7}"
            + (f"{'spread':>8}" if repeated else ""),
        ]
        for r in self.rules:
            label = r.name if r.role == "rule" else f"{r.name} [{r.role}]"
            lines.append(
                f"{label:<44}{r.calls:>8}{r.skip:>7}{r.accept:>8}{r.reject:>8}{r.wait:>6}{r.abort:>6}"
                f"{r.error:>6}{'-' if r.after is None else r.after:>7}{r.cleanup:>8}{r.seconds * 1e3:>9.2f}{r.mean_us:>9.2f}"
                f"{r.seconds / total:>7.1%}"
                # worst pass over best, as a share of the best
                + (f"{r.spread / r.seconds if r.seconds else 0.0:>+8.0%}" if repeated else "")
            )
        other = self.other_seconds
        lines.append(f"{'other (validation, storage, transaction)':<44}{'':>73}{other * 1e3:>9.2f}{'':>9}{other / total:>7.1%}")
        raised = [(r, text, times) for r in self.rules for text, times in r.errors.items()]
        if raised:
            lines += ["", "what the hooks raised:"]
            lines += [f"  {r.name}: {text} x{times}" for r, text, times in raised]
        if self.baseline_seconds:
            lines.append(
                f"baseline (same stream, uninstrumented): {self.baseline_seconds:.3f} s = "
                f"{self.transitions / self.baseline_seconds:,.0f}/s; measuring cost "
                f"{(self.seconds - self.baseline_seconds) / self.transitions * 1e6:+.1f} µs per transition"
            )
        return "\n".join(lines)


# instrumentation ----------------------------------------------------------------------------------------
# True while a timed hook runs. A hook that calls the engine (a rule proposing a
# state for another run) runs rules and transforms again, nested: their time is
# already the outer hook's, and their proposals are not the stream's, so nested
# entries are neither timed nor counted.
_inside_hook = False
_STATUS_FIELD = {"ACCEPT": "accept", "REJECT": "reject", "WAIT": "wait", "ABORT": "abort"}


def _instrument(rule_cls: type, stats: RuleStats) -> type:
    """A same-named subclass of `rule_cls` whose enter/exit are timed and classified."""
    transform = issubclass(rule_cls, BaseUniversalTransform)
    base_enter, base_exit = rule_cls.__enter__, rule_cls.__exit__

    def __enter__(self: Any) -> Any:
        global _inside_hook
        if _inside_hook:  # a nested proposal: part of the outer hook's time
            return base_enter(self)
        ctx = self.context
        details, error, signed = ctx.response_details, ctx.orchestration_error, len(ctx.rule_signature)
        _inside_hook = True
        start = _perf()
        try:
            return base_enter(self)
        except Exception as hook_error:  # a transform's before-hook (a rule's is caught by base_enter)
            stats.count_error(hook_error)
            raise
        finally:
            stats.seconds += _perf() - start
            _inside_hook = False
            stats.calls += 1
            if transform:
                pass
            elif ctx.orchestration_error is not error:
                stats.count_error(ctx.orchestration_error)
            elif len(ctx.rule_signature) == signed:
                stats.skip += 1
            elif ctx.response_details is not details:
                field = _STATUS_FIELD.get(getattr(ctx.response_status, "value", ""), "accept")
                setattr(stats, field, getattr(stats, field) + 1)
            else:
                stats.accept += 1

    def __exit__(self: Any, *exc: Any) -> Any:
        global _inside_hook
        if _inside_hook:
            return base_exit(self, *exc)
        ctx = self.context
        finished = len(ctx.finalization_signature)
        _inside_hook = True
        start = _perf()
        raised = False
        try:
            return base_exit(self, *exc)
        except Exception as hook_error:  # its after-hook or cleanup raised
            raised = True
            stats.count_error(hook_error)
            raise
        finally:
            stats.seconds += _perf() - start
            _inside_hook = False
            if raised:
                # No signature was left to tell; the rule's own state says which hook ran.
                if not transform and self.fizzled():
                    stats.cleanup += 1
                else:
                    stats.after += 1
            elif len(ctx.finalization_signature) > finished:
                stats.after += 1
            elif not transform and getattr(self, "_invalid_on_entry", True) is False:
                stats.cleanup += 1

    namespace = {"__enter__": __enter__, "__exit__": __exit__,
                 "__module__": rule_cls.__module__, "__qualname__": rule_cls.__qualname__}
    if not transform:
        # Declared in the subclass's own body, or a user rule's `SAFE_COPIES = False`
        # would be reset to True (rules.py) and the copies it saves would be timed.
        namespace["SAFE_COPIES"] = rule_cls.SAFE_COPIES
    return type(rule_cls.__name__, (rule_cls,), namespace)


def _timed_hook(hook: Callable, stats: RuleStats, counter: str) -> Callable:
    """`hook` (a stateless transform's, called as a plain function) timed into
    `stats`, counted under `counter` and under error when it raises; a call nested in
    another timed hook (a proposal made from a hook) runs untimed, part of the outer."""
    def timed(self: Any, context: Any) -> Any:
        global _inside_hook
        if _inside_hook:
            return hook(self, context)
        _inside_hook = True
        start = _perf()
        try:
            return hook(self, context)
        except Exception as hook_error:
            stats.count_error(hook_error)
            raise
        finally:
            stats.seconds += _perf() - start
            _inside_hook = False
            setattr(stats, counter, getattr(stats, counter) + 1)
    return timed


def _instrument_hooks(rule_cls: type, stats: RuleStats) -> type:
    """For stateless transforms the pipeline may call the hook functions directly
    (with no instance): time those functions instead of enter/exit."""
    base_before = BaseUniversalTransform.before_transition
    base_after = BaseUniversalTransform.after_transition
    before_fn, after_fn = rule_cls.before_transition, rule_cls.after_transition
    # Keep the pipeline's fast path: it calls a stateless transform's hooks as plain
    # functions, and the flag is declared per class (not inherited).
    namespace: dict = {"__module__": rule_cls.__module__, "__qualname__": rule_cls.__qualname__,
                       "_STATELESS_HOOKS": True}
    if before_fn is not base_before:
        namespace["before_transition"] = _timed_hook(before_fn, stats, "calls")
    elif after_fn is not base_after:
        # An after-hook alone does not run for a proposal a rule's exception ends:
        # count entries with a before-hook of our own (untimed, a no-op).
        def before_transition(self: Any, context: Any) -> Any:
            if not _inside_hook:
                stats.calls += 1
        namespace["before_transition"] = before_transition
    if after_fn is not base_after:
        namespace["after_transition"] = _timed_hook(after_fn, stats, "after")
    else:
        stats.after = None
    return type(rule_cls.__name__, (rule_cls,), namespace)


def instrument_policy(policy: Any, role_of_transforms: str = "transform") -> tuple[type, list[RuleStats]]:
    """(a timed subclass of `policy`, its per-rule stats in priority order). O(rules)."""
    stats: list[RuleStats] = []
    wrapped = []
    for rule in rules_of(policy):
        role = role_of_transforms if issubclass(rule, BaseUniversalTransform) else "rule"
        s = RuleStats(rule.__name__, role)
        stats.append(s)
        if role != "rule" and getattr(rule, "_stateless", False):
            wrapped.append(_instrument_hooks(rule, s))
        else:
            wrapped.append(_instrument(rule, s))
    cls = policy if isinstance(policy, type) else type(policy)
    timed = type(cls.__name__, (cls,), {
        "priority": staticmethod(lambda: list(wrapped)),
        "__module__": cls.__module__, "__qualname__": cls.__qualname__,
    })
    return timed, stats


def _policy_kind(policy: type) -> str | None:
    """The run kind a policy is for: its RUN_KIND (the built-in policies and their
    subclasses), else as far as its name tells ("Task" or "Flow" in it); None for
    a name that doesn't."""
    if policy.RUN_KIND is not None:
        return policy.RUN_KIND
    name = policy.__name__
    if "Task" in name:
        return "task"
    if "Flow" in name:
        return "flow"
    return None


def _stream_kind(ops: list[dict]) -> str | None:
    """The kind of the runs a recorded stream proposes states for (None: no
    proposals); a stream proposing to both kinds is a ValidationError."""
    created = {op.get("id"): op["op"] for op in ops if op.get("op") in ("flow_run", "task_run")}
    kinds = {created.get(op.get("run")) for op in ops if op.get("op") == "propose"} - {None}
    if len(kinds) > 1:
        raise ValidationError("the stream proposes states to both flow runs and task runs, and a policy "
                              "governs one kind: benchmark each kind's proposals in a stream of its own")
    return kinds.pop().partition("_")[0] if kinds else None


def _resolve_kind(policy: Any, kind: str | None, stream_kind: str | None) -> tuple[type, str]:
    """The policy class and the run kind, from what was given: an explicit kind, the
    stream's runs, the policy's name. Contradictions are refused, not guessed past."""
    if kind is not None:
        _checked_kind(kind)
        if stream_kind is not None and stream_kind != kind:
            raise ValidationError(f"kind={shown(kind)}, but the stream proposes states for {stream_kind} runs")
    kind = kind or stream_kind
    if policy is None:
        policy = "CoreFlowPolicy" if kind == "flow" else "CoreTaskPolicy"
    cls = resolve_policy(policy)
    named = _policy_kind(cls)
    if kind is None:
        if named is None:
            raise ValidationError(f"cannot tell whether {cls.__name__} is for flow or task runs: "
                                  "give kind='flow' or kind='task' (--kind)")
        kind = named
    elif named is not None and named != kind:
        raise ValidationError(f"{cls.__name__} is a {named}-run policy, but the runs are {kind} runs "
                              f"(choose a {kind}-run policy, e.g. Core{kind.title()}Policy)")
    return cls, kind


def _checked_kind(kind: str) -> str:
    if kind not in ("flow", "task"):
        raise ValidationError(f"kind must be 'flow' or 'task', got {shown(kind)}")
    return kind


def _bench_engine(seed: int | None = None) -> Engine:
    """A fresh in-memory engine on a 1 µs-tick manual clock (its random draws seeded
    when `seed` is given)."""
    engine = Engine(clock=ManualClock(tick=timedelta(microseconds=1)))
    if seed is not None:
        engine.random.seed(seed)
    return engine


# streams --------------------------------------------------------------------------------------------------
def _state_json(type_: str, name: str | None = None, **details: Any) -> dict:
    out: dict = {"type": type_}
    if name:
        out["name"] = name
    details = {k: v for k, v in details.items() if v is not None}
    if details:
        out["state_details"] = details
    return out


@attrs.define(slots=True)
class _Plan:
    label: str
    fails: int = 0  # failures still to happen (each followed by a retry)
    cache_key: str | None = None
    pause: bool = False
    cancel: bool = False


class _Synthetic:
    """Reactive synthetic workload: a pool of concurrent runs, each advanced one
    proposal at a time in random order, replacing finished runs with new ones."""

    POOL = 16

    def __init__(self, kind: str, transitions: int, seed: int) -> None:
        self.kind, self.transitions, self.rng = kind, transitions, random.Random(seed)
        self.count = 0
        self.active: list[_Plan] = []
        self.last: dict[str, Any] = {}  # label -> last OrchestrationResult
        self.created = 0

    def setup(self) -> Iterator[dict]:
        if self.kind == "task":
            yield {"op": "tag_limit", "tag": "db", "limit": 4}
            yield {"op": "flow_run", "id": "host", "state": _state_json("RUNNING")}
        else:
            yield {"op": "deployment", "id": "d", "limit": 4, "collision_strategy": "ENQUEUE"}

    def _new_run(self) -> Iterator[dict]:
        rng, n = self.rng, self.created
        self.created += 1
        plan = _Plan(label=f"r{n}")
        roll = rng.random()
        if roll < 0.2:
            plan.fails = 1
        if self.kind == "task":
            if 0.2 <= roll < 0.4:
                plan.cache_key = f"k{rng.randrange(8)}"
            tags = ["db"] if rng.random() < 0.5 else []
            yield {"op": "task_run", "id": plan.label, "flow_run": "host", "state": _state_json("PENDING"),
                   "fields": {"task_key": "bench", "dynamic_key": plan.label, "tags": tags,
                              "empirical_policy": {"retries": plan.fails}}}
        else:
            plan.pause = 0.4 <= roll < 0.45
            plan.cancel = 0.45 <= roll < 0.5
            op = {"op": "flow_run", "id": plan.label, "state": _state_json("SCHEDULED"),
                  "fields": {"empirical_policy": {"retries": plan.fails}, "infrastructure_pid": "bench"}}
            if rng.random() < 0.5:
                op["deployment"] = "d"
            yield op
        self.active.append(plan)

    def _next_state(self, plan: _Plan, run: Any) -> dict | None:
        t = run.state_type.value if run.state_type is not None else None
        if self.kind == "task":
            if t in ("PENDING", "SCHEDULED"):
                return _state_json("RUNNING", cache_key=plan.cache_key)
            if t == "RUNNING":
                if plan.fails:
                    plan.fails -= 1
                    return _state_json("FAILED")
                return _state_json("COMPLETED", cache_key=plan.cache_key)
            return None
        if t == "SCHEDULED":
            return _state_json("PENDING")
        if t == "PENDING":
            return _state_json("RUNNING")
        if t == "RUNNING":
            if plan.fails:
                plan.fails -= 1
                return _state_json("FAILED")
            if plan.pause:
                plan.pause = False
                return _state_json("PAUSED", pause_key=f"{plan.label}-pause")
            if plan.cancel:
                return _state_json("CANCELLING")
            return _state_json("COMPLETED")
        if t == "PAUSED":
            return _state_json("RUNNING")
        if t == "CANCELLING":
            return _state_json("CANCELLED")
        return None

    def ops(self, runs: dict) -> Iterator[dict]:
        """Operations, reading the runs' current states (filled by the replayer)."""
        yield from self.setup()
        while self.count < self.transitions:
            while len(self.active) < self.POOL:
                yield from self._new_run()
            plan = self.active[self.rng.randrange(len(self.active))]
            run = runs[plan.label]
            last = self.last.get(plan.label)
            if last is not None and last.status.value == "WAIT":
                yield {"op": "advance", "seconds": last.details.delay_seconds}
            state = self._next_state(plan, run)
            if state is None or (last is not None and last.status.value == "ABORT"):
                self.active.remove(plan)
                continue
            self.count += 1
            yield {"op": "propose", "run": plan.label, "state": state}
            yield {"op": "advance", "seconds": 0.01}


def synthetic_stream(kind: str = "task", transitions: int = 1000, seed: int = 0) -> _Synthetic:
    """A seeded synthetic stream of `transitions` proposals for flow or task runs
    (pass it to `bench_rules(stream=...)`)."""
    return _Synthetic(_checked_kind(kind), transitions, seed)


def read_stream(path: str) -> list[dict]:
    """Operations of a recorded stream (JSON lines), checked whole before anything
    runs (see _check_stream); a bad line raises ValidationError naming it. O(lines)."""
    ops, wheres = _read_stream(path)
    _check_stream(ops, wheres)
    return ops


def _read_stream(path: str) -> tuple[list[dict], list[str]]:
    ops, wheres = [], []
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    op = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValidationError(f"{path}:{number}: not JSON ({exc.msg})") from None
                ops.append(_checked_op(op, f"{path}:{number}", line.strip()))
                wheres.append(f"{path}:{number}")
    except OSError as exc:
        raise ValidationError(f"cannot read stream {path}: {exc.strerror}") from None
    return ops, wheres


# Keys each operation needs, and the labels it refers to: (key, namespace, what).
_NEEDS = {"tag_limit": ("tag", "limit"), "deployment": ("id",), "flow_run": ("id",), "task_run": ("id",),
          "propose": ("run", "state"), "advance": ("seconds",)}
_READS_STATE = ("propose", "flow_run", "task_run")
_REFERS = {"propose": ("run", "runs", "run"), "task_run": ("flow_run", "flow_runs", "flow run"),
           "flow_run": ("deployment", "deployments", "deployment")}


def _holds(labels: set, label: Any) -> bool:
    try:
        return label in labels
    except TypeError:  # an unhashable value is no label
        return False


def _check_stream(ops: list[dict], wheres: list[str]) -> None:
    """What a replay would refuse only on reaching it, refused before anything runs,
    naming the line or operation: a missing key, a label defined twice or used
    before it is defined (or of the wrong kind), a state that is not one, seconds
    that are not a number. (What the engine checks of the fields, it checks at
    replay.) O(operations)."""
    labels: dict[str, set] = {"runs": set(), "flow_runs": set(), "deployments": set()}
    for op, where in zip(ops, wheres):
        name = op["op"]
        missing = [key for key in _NEEDS[name] if key not in op]
        if missing:
            raise ValidationError(f"{where}: missing key {missing[0]!r} (a {name} operation needs "
                                  f"{', '.join(map(repr, _NEEDS[name]))})")
        refers = _REFERS.get(name)
        if refers is not None and (name == "propose" or refers[0] in op):
            key, namespace, what = refers
            if not _holds(labels[namespace], op[key]):
                hint = ("the label of a task run" if namespace == "flow_runs" and _holds(labels["runs"], op[key])
                        else "no earlier operation defines it")
                raise ValidationError(f"{where}: unknown {what} {shown(op[key])} ({hint})")
        if name in _READS_STATE and op.get("state") is not None:
            try:
                as_state(op["state"], f"{name}.state")
            except ValidationError as exc:
                raise ValidationError(f"{where}: {exc}") from None
        if name == "advance" and (isinstance(op["seconds"], bool) or not isinstance(op["seconds"], (int, float))):
            raise ValidationError(f"{where}: seconds must be a number, got {shown(op['seconds'])}")
        if name in ("flow_run", "task_run", "deployment"):
            label = op["id"]
            namespace = "deployments" if name == "deployment" else "runs"
            try:
                hash(label)
            except TypeError:  # a list or a dict: not a label
                raise ValidationError(f"{where}: id must be a string or a number, got {shown(label)}") from None
            if label in labels[namespace]:
                raise ValidationError(f"{where}: id {shown(label)} is already the label of an earlier "
                                      f"{'deployment' if name == 'deployment' else 'run'}")
            labels[namespace].add(label)
            if name == "flow_run":
                labels["flow_runs"].add(label)


_OPS = {"tag_limit", "deployment", "flow_run", "task_run", "propose", "advance"}


def _checked_op(op: Any, where: str, shown: Any = None) -> dict:
    if not isinstance(op, dict) or op.get("op") not in _OPS:
        text = str(op if shown is None else shown)
        raise ValidationError(f"{where}: expected an object with op in {sorted(_OPS)}, got {text[:80]}")
    return op


# replay --------------------------------------------------------------------------------------------------------
def _recorded(op: dict) -> str | dict:
    # JSON text when the operation is JSON (always, for a synthetic stream's own
    # operations); anything else is kept as it is (an op of a subclass's stream).
    try:
        return json.dumps(op, sort_keys=True)
    except (TypeError, ValueError):
        return op


class _Replayer:
    def __init__(self, engine: Engine, policy: type, kind: str) -> None:
        self.engine, self.policy, self.kind = engine, policy, kind
        self.flow = engine.create_flow(name="bench-rules")
        self.runs: dict[str, Any] = {}
        self.deployments: dict[str, Any] = {}
        self.statuses: collections.Counter = collections.Counter()
        self.transitions = 0
        self.seconds = 0.0
        # Operations as JSON text: strings are not tracked by the cyclic GC, so a
        # long record does not lengthen the collections timed inside the rules.
        self.record: list[str | dict] | None = None
        # Which proposals (numbered by `transitions`) a rule's exception ended; a
        # baseline replay is given the measured run's, as it cannot tell itself.
        self.failed_ops: set[int] = set()
        self.expected_failures: set[int] | None = None

    def _need(self, op: dict, key: str, where: dict, what: str) -> Any:
        label = op.get(key)
        if label not in where:
            raise ValidationError(f"stream op {shown(op)}: unknown {what} {shown(label)}")
        return where[label]

    def apply(self, op: dict) -> Any:
        if self.record is not None:
            self.record.append(_recorded(op))
        engine, name = self.engine, op["op"]
        try:
            if name == "propose":
                run = self._need(op, "run", self.runs, "run")
                state = as_state(op["state"], "propose.state")
                start = _perf()
                try:
                    if "TaskRun" in type(run).__name__:
                        result = engine.set_task_run_state(run.id, state, task_policy=self.policy)
                    else:
                        result = engine.set_flow_run_state(run.id, state, flow_policy=self.policy)
                except Exception as exc:
                    # A rule raised (the engine undid the call): an outcome like any
                    # other. Anything else is the stream's or the benchmark's fault.
                    expected = self.expected_failures
                    if expected is None:
                        if not _raised_by_a_rule(exc):
                            raise
                    elif self.transitions not in expected:
                        # The same proposal went through in the measured run.
                        raise BaselineMismatchError(
                            f"the baseline's proposal {self.transitions} raised {shown(exc)}, the measured run's did "
                            "not: a rule that raises at random (or depends on timing) cannot have a baseline"
                        ) from exc
                    result = None
                finally:
                    _RULE_ERRORS.clear()
                self.seconds += _perf() - start
                if result is None:
                    self.failed_ops.add(self.transitions)
                    self.statuses["ERROR"] += 1
                else:
                    self.statuses[result.status.value] += 1
                self.transitions += 1
                return result
            if name == "advance":
                seconds = op["seconds"]
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                    raise ValidationError(f"stream op {shown(op)}: seconds must be a number, got {shown(seconds)}")
                engine.clock.advance(seconds)
            elif name == "tag_limit":
                engine.create_concurrency_limit(op["tag"], op["limit"])
            elif name == "deployment":
                self.deployments[op["id"]] = engine.create_deployment(
                    self.flow.id, f"bench-{op['id']}", concurrency_limit=op.get("limit"),
                    concurrency_options={"collision_strategy": op.get("collision_strategy", "ENQUEUE")})
            elif name == "flow_run":
                fields = dict(op.get("fields") or {})
                if "deployment" in op:
                    fields["deployment_id"] = self._need(op, "deployment", self.deployments, "deployment").id
                state = as_state(op["state"]) if op.get("state") else None
                self.runs[op["id"]] = engine.create_flow_run(flow_id=self.flow.id, state=state, **fields)
            elif name == "task_run":
                fields = dict(op.get("fields") or {})
                if "flow_run" in op:
                    fields["flow_run_id"] = self._need(op, "flow_run", self.runs, "flow run").id
                fields.setdefault("task_key", "bench")
                fields.setdefault("dynamic_key", op["id"])
                state = as_state(op["state"]) if op.get("state") else None
                self.runs[op["id"]] = engine.create_task_run(state=state, **fields)
        except KeyError as exc:
            raise ValidationError(f"stream op {shown(op)}: missing key {exc}") from None
        return None


class ReplayMismatchError(RunstateError, RuntimeError):
    """A replay of the measured run's operations had other outcomes than it (a
    rule that keeps state between runs, or depends on the real clock)."""


class BaselineMismatchError(ReplayMismatchError):
    """The uninstrumented replay of a stream had other outcomes than the measured run."""


def bench_rules(
    policy: Any = None,
    transitions: int = 10_000,
    stream: str | Iterable[dict] | _Synthetic | None = None,
    *,
    seed: int = 0,
    kind: str | None = None,
    include_global: bool = True,
    record: str | None = None,
    baseline: bool = False,
    repeat: int = 1,
) -> BenchReport:
    """Run `policy` (class, instance, POLICIES name or "module:Class") over a stream
    and return per-rule time and outcome counts. `stream`: None (synthetic, seeded
    by `seed`, `transitions` proposals), a path to a recorded JSON-lines stream, an
    iterable of operation dicts, or `synthetic_stream(...)`.

    The run kind is `kind`, else that of the runs a recorded stream proposes to,
    else what the policy's name says ("Task"/"Flow"); a contradiction between them
    is a ValidationError. No policy means CoreTaskPolicy, or CoreFlowPolicy for flow
    runs. `record` writes the operations replayed to a file (checked writable
    before the run; written whole or not at all). Operations given from Python are
    encoded before the run: the engine's own types (states, datetimes, UUIDs, enums,
    ...) in the JSON forms its replay reads back as they were, and any other value
    a ValidationError naming the operation, the value's path in it and its type.
    `baseline` replays the same operations through the plain
    policy too and reports its time (the measuring overhead); a baseline whose
    outcomes differ raises BaselineMismatchError (a RuntimeError). `repeat` N replays
    the same operations N times (a fresh engine each) and keeps each figure's least
    time, with its spread (worst minus best) in `RuleStats.spread`; the baseline
    is then its least over N too. Cost: O(repeat · transitions · rules)."""
    transitions = _positive_int(transitions, "transitions")
    source = None
    stream_kind = None
    if isinstance(stream, _Synthetic):
        stream_kind = stream.kind
    elif stream is not None:
        description = stream if isinstance(stream, str) else "given operations"
        if isinstance(stream, str):
            ops, wheres = _read_stream(stream)
        else:
            ops = [_checked_op(op, f"stream operation {number}") for number, op in enumerate(stream, 1)]
            wheres = [f"stream operation {number}" for number in range(1, len(ops) + 1)]
        _check_stream(ops, wheres)
        stream_kind = _stream_kind(ops)  # type: ignore[arg-type]
    repeat = _positive_int(repeat, "repeat")
    cls, kind = _resolve_kind(policy, kind, stream_kind)
    if record is not None:
        check_writable(record)
    if stream is None:
        stream = synthetic_stream(kind, transitions, seed)
    if isinstance(stream, _Synthetic):
        description = f"synthetic (seed {seed})"
        source = stream
    lines = None
    if record is not None and source is None:
        # A given stream is encoded before it is run: what no line can hold is
        # refused before any work rather than found at the write, after all of it.
        lines = [encoded_op(op, f"stream operation {number}") for number, op in enumerate(ops, 1)]

    def first_ops(replayer: _Replayer) -> Iterable[dict]:
        return source.ops(replayer.runs) if source is not None else ops

    replayer, rules = _timed_pass(cls, kind, seed, include_global, first_ops, source,
                                  keep_ops=source is not None and (record is not None or baseline or repeat > 1))
    # A given stream was replayed whole and in order (or the pass raised): its
    # operations are the ones done; a synthetic stream's were kept as they came.
    ops_done, replayer.record = (replayer.record or []) if source is not None else ops, None
    if record is not None:
        write_stream(record, lines if lines is not None else _lines_of(ops_done))
    # Free each pass's engine before the next: its rows would slow the next's GC.
    replayer.engine = replayer.runs = replayer.deployments = None  # type: ignore[assignment]
    passes = [(replayer.seconds, [r.seconds for r in rules])]
    for number in range(2, repeat + 1):
        # Later passes replay the first one's operations, so a reactive synthetic
        # stream proposes the same transitions again.
        again, again_rules = _timed_pass(cls, kind, seed, include_global, lambda _: map(_op_of, ops_done), None,
                                         keep_ops=False)
        if again.statuses != replayer.statuses:
            raise ReplayMismatchError(f"pass {number} answered differently from the first: "
                               f"{dict(again.statuses)} != {dict(replayer.statuses)}")
        passes.append((again.seconds, [r.seconds for r in again_rules]))
        del again
    if repeat > 1:
        _keep_best(replayer, rules, passes)
    baseline_seconds = None
    if baseline:
        baselines = []
        for _ in range(repeat):
            gc.collect()
            plain = _Replayer(_bench_engine(seed), cls, kind)
            plain.expected_failures = replayer.failed_ops
            for entry in ops_done:
                plain.apply(_op_of(entry))
            if plain.statuses != replayer.statuses:
                raise BaselineMismatchError(
                    f"the baseline (uninstrumented) replay answered differently from the measured run: "
                    f"{dict(plain.statuses)} != {dict(replayer.statuses)}; a rule that keeps state between runs "
                    "(a class attribute, a module global) or reads the real clock or a random draw does this")
            baselines.append(plain.seconds)
            del plain
        baseline_seconds = min(baselines)
    return BenchReport(
        policy=cls.__name__, kind=kind, stream=description, transitions=replayer.transitions,
        seconds=replayer.seconds, statuses=dict(replayer.statuses), rules=rules,
        baseline_seconds=baseline_seconds, repeat=repeat,
    )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {shown(value)}")
    return value


def _lines_of(ops_done: list) -> Iterator[str]:
    # A synthetic stream's operations as lines (kept as JSON text as they came).
    for number, entry in enumerate(ops_done, 1):
        yield entry if entry.__class__ is str else encoded_op(entry, f"operation {number}")


def _op_of(entry: str | dict) -> dict:
    # A recorded operation (JSON text, see _Replayer.record) as the dict it was.
    return json.loads(entry) if entry.__class__ is str else entry  # type: ignore[return-value]


def _timed_pass(cls: type, kind: str, seed: int, include_global: bool, ops_for: Callable[[Any], Iterable[dict]],
                source: _Synthetic | None, keep_ops: bool) -> tuple["_Replayer", list[RuleStats]]:
    """One measured replay: the replayer (totals, outcomes, recorded operations if
    `keep_ops`) and the stats of the policy's rules, then the global transforms'."""
    timed, stats = instrument_policy(cls)
    replayer = _Replayer(_bench_engine(seed), timed, kind)
    if keep_ops:
        replayer.record = []
    ops = ops_for(replayer)
    gc.collect()  # start every pass (measured and baseline) from a clean heap
    global_stats: list[RuleStats] = []
    saved = (_pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy)
    if include_global:
        timed_flow, flow_stats = instrument_policy(saved[0], "global")
        timed_task, task_stats = instrument_policy(saved[1], "global")
        _pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy = timed_flow, timed_task
        global_stats = flow_stats if kind == "flow" else task_stats
    try:
        for op in ops:
            if global_stats and op.get("op") in ("flow_run", "task_run"):
                # Creating a run with a state runs the global transforms too; keep
                # that out of the figures, which cover proposals only.
                before = [attrs.astuple(g) for g in global_stats]
                replayer.apply(op)
                for g, values in zip(global_stats, before):
                    for field, value in zip(attrs.fields(RuleStats), values):
                        setattr(g, field.name, value)
                continue
            result = replayer.apply(op)
            if result is not None and source is not None:
                source.last[op["run"]] = result
    finally:
        _pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy = saved
    return replayer, stats + global_stats


def _keep_best(replayer: "_Replayer", rules: list[RuleStats], passes: list[tuple[float, list[float]]]) -> None:
    """Each figure becomes its best (least) over the passes, and its spread the
    difference between its worst and best: one garbage collection or scheduler
    hiccup lengthens a pass, and the least time is the one least disturbed."""
    totals = [total for total, _ in passes]
    replayer.seconds = min(totals)
    for i, rule in enumerate(rules):
        times = [per_rule[i] for _, per_rule in passes]
        rule.seconds = min(times)
        rule.spread = max(times) - rule.seconds


# pytest-benchmark helper -------------------------------------------------------------------------------------
class _Rollback(Exception):
    pass


def _warn_if_never_entered(rule: type, initial: Any, proposed: Any) -> None:
    if issubclass(rule, BaseUniversalTransform):
        return
    from_type = None if initial is None else getattr(initial, "type", None)
    to_type = getattr(proposed, "type", None)
    if from_type not in rule.FROM_STATES or to_type not in rule.TO_STATES:
        show = lambda t: "no state" if t is None else getattr(t, "value", t)  # noqa: E731
        warnings.warn(f"{rule.__name__} does not apply to {show(from_type)} -> {show(to_type)} (its FROM_STATES "
                      "and TO_STATES): every round skips it, so only the transition around it is timed",
                      stacklevel=3)


def benchmark_rule(
    benchmark: Any,
    rule: type,
    proposed: Any,
    *,
    initial: Any = None,
    kind: str = "task",
    run_fields: dict | None = None,
    before: Sequence[type] = (),
    after: Sequence[type] = (),
    setup: Callable[[Engine], None] | None = None,
) -> RuleStats:
    """Benchmark one transition `initial` → `proposed` through a policy made of
    `before` rules, then `rule`, then `after` rules, with pytest-benchmark's
    `benchmark` fixture. Each round runs in a transaction that is rolled back, so
    every round starts from the same state. The timed function is the whole
    transition; the rule's own share is returned and put in `benchmark.extra_info`
    (rule_mean_us, rule outcomes). An `after` rule that changes the outcome makes
    `rule` fizzle, which measures its cleanup path (the `cleanup` count).

        def test_my_rule(benchmark):
            stats = benchmark_rule(benchmark, MyRule, Running(), initial=Pending())
            assert stats.accept == stats.calls
    """
    _checked_kind(kind)
    for name, rules in (("before", before), ("after", after)):
        if isinstance(rules, (type, str)):
            raise ValidationError(f"benchmark_rule's {name} must be a list of rule classes, got {shown(rules)}")
    check_rule_classes([rule, *before, *after], "benchmark_rule was given")
    _warn_if_never_entered(rule, initial, proposed)
    stats = RuleStats(rule.__name__, "transform" if issubclass(rule, BaseUniversalTransform) else "rule")
    timed_rule = _instrument(rule, stats)
    rules = [*before, timed_rule, *after]
    policy = type("BenchmarkedRulePolicy", (BaseOrchestrationPolicy,), {"priority": staticmethod(lambda: list(rules))})
    engine = _bench_engine()
    if setup is not None:
        setup(engine)
    flow = engine.create_flow(name="benchmark-rule")
    fields = dict(run_fields or {})
    if kind == "flow":
        run = engine.create_flow_run(flow_id=flow.id, state=initial, **fields)
        setter = lambda: engine.set_flow_run_state(run.id, proposed, flow_policy=policy)  # noqa: E731
    else:
        if "flow_run_id" not in fields:
            fields["flow_run_id"] = engine.create_flow_run(flow_id=flow.id, state=_running()).id
        fields.setdefault("task_key", "benchmark-rule")
        fields.setdefault("dynamic_key", "0")
        run = engine.create_task_run(state=initial, **fields)
        setter = lambda: engine.set_task_run_state(run.id, proposed, task_policy=policy)  # noqa: E731
    outcome: list = []

    def one_round() -> None:
        try:
            with engine.transaction():
                try:
                    outcome.append(setter().status.value)
                except Exception as exc:
                    # A hook of the measured rules raised: the error column counts it.
                    if not _raised_by_a_rule(exc):
                        raise
                    outcome.append("ERROR")
                finally:
                    _RULE_ERRORS.clear()
                raise _Rollback
        except _Rollback:
            pass

    benchmark(one_round)
    extra = getattr(benchmark, "extra_info", None)
    if isinstance(extra, dict):
        extra.update({"rule": stats.name, "rule_mean_us": round(stats.mean_us, 3), "rule_calls": stats.calls,
                      "status": outcome[-1] if outcome else None,
                      **{k: getattr(stats, k) for k in ("skip", "accept", "reject", "wait", "abort", "error", "after", "cleanup")}})
    return stats


def _running() -> Any:
    from .states import Running

    return Running()


# CLI --------------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine bench-rules",
        description="Run an orchestration policy over a transition stream; report per-rule time and outcomes.",
    )
    p.add_argument("--policy",
                   help=f"a policy name ({', '.join(POLICIES)}) or module:Class for your own "
                        "(default CoreTaskPolicy, or CoreFlowPolicy for flow runs)")
    p.add_argument("--transitions", type=int, default=10_000, help="synthetic stream length (default 10000; a recorded --stream is replayed whole)")
    p.add_argument("--stream", metavar="FILE", help="replay a recorded JSON-lines stream instead of a synthetic one")
    p.add_argument("--record", metavar="FILE", help="write the replayed stream (JSON lines) to FILE")
    p.add_argument("--kind", choices=("flow", "task"),
                   help="run kind (default: the kind of the stream's runs, else what the policy's name says)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic stream and of the engine's random draws (default 0)")
    p.add_argument("--no-global", action="store_true", help="do not time the global transforms separately")
    p.add_argument("--baseline", action="store_true",
                   help="also replay the stream through the plain policy to show the measuring overhead")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="replay the stream N times and keep each figure's least time, with its spread (default 1)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m engine bench-rules ...`; returns the exit code (2 on bad input)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        report = bench_rules(args.policy, args.transitions, args.stream, seed=args.seed, kind=args.kind,
                             include_global=not args.no_global, record=args.record,
                             baseline=args.baseline, repeat=args.repeat)
    except RunstateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.format())
    return 0
