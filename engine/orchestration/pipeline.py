"""`set_flow_run_state` / `set_task_run_state`: choose the policy, nest the rules and
global transforms around validation, and answer (spec orchestration.md §5,
operations.md §1.10, §2.9).

Called by the Engine inside an open transaction: raising rolls everything back.
Cost per transition: O(applicable rules + global transforms) plus the store's
writes; the applicable rules are compiled once per (policy, from, to).

Fast paths (same answers, fewer frames; tests/test_orchestration_fastpath.py checks
them against the ordinary path): rules with the stock lifecycle and no defensive
copies (`_fast`: the built-in rules) are entered and exited inline, and global
transforms that are all stateless run fused, skipping the before-hooks that cannot
act on the actual (from, to) (global_rules.STATIC_FILTERS, exact classes only, so
instrumented or user subclasses are always called).
"""
from __future__ import annotations

import datetime as _dt
import operator
import uuid
from collections.abc import Mapping
from typing import Any


from .. import inputs as _inputs
from ..errors import ObjectNotFoundError, ValidationError, shown
from ..states import Running, Scheduled, State, StateType, as_state_details, as_state_type, compile_copier
from ..validation import as_datetime, as_json_value, as_str, as_uuid, checked_details
from .context import _UNSET, FlowOrchestrationContext, OrchestrationContext, TaskOrchestrationContext, detached_state_copy
from .policies import (
    BackgroundTaskPolicy,
    CoreFlowPolicy,
    GlobalFlowPolicy,
    GlobalTaskPolicy,
    MinimalFlowPolicy,
    MinimalTaskPolicy,
    resolve_policy,
)
from .global_rules import STATIC_FILTERS
from .responses import ACCEPT_DETAILS, OrchestrationResult, SetStateStatus, StateAbortDetails
from .rules import _ON_RULES_CHANGE, BaseOrchestrationPolicy, BaseUniversalTransform, _PolicyType, abort_for_error
from .versions import parse_api_version

__all__ = ["set_flow_run_state", "set_task_run_state", "orchestrate"]

_new = object.__new__
_set = object.__setattr__
_TIMEDELTA = _dt.timedelta
_SCHEDULED = StateType.SCHEDULED
_DATETIME = _dt.datetime
_UTC = _dt.timezone.utc
_UUID = uuid.UUID
_ACCEPT = SetStateStatus.ACCEPT
# Run columns the global transforms may change before validation; restored if
# validation fails so a failed write leaves the run as it was.
_RUN_COLUMNS = (
    "state_type", "state_name", "state_timestamp", "start_time", "end_time", "total_run_time",
    "expected_start_time", "next_scheduled_start_time", "run_count",
)
_run_columns = operator.attrgetter(*_RUN_COLUMNS)


def _resolve_policy(policy: Any, what: str) -> Any:
    # The callers have already let None and plain policy classes through. An
    # instance runs as it is; anything else is what resolve_policy makes of it (a
    # POLICIES name, "module:Class", a class with a metaclass), naming the argument.
    if isinstance(policy, BaseOrchestrationPolicy):
        return policy
    try:
        return resolve_policy(policy)
    except ValidationError as exc:
        raise ValidationError(f"{what}={shown(policy)}: {exc}") from None


def _parameters(parameters: Any) -> dict:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ValidationError(f"orchestration_parameters must be a dict, got {shown(parameters)}")
    params = dict(parameters)
    if "api-version" in params:
        parse_api_version(params["api-version"])  # fail fast on a malformed version
    return params


_copy_state_fields = compile_copier(State)


def _submitted(state: State, now: _dt.datetime) -> State:
    """The engine's own copy of a submitted state (the caller's object is never
    mutated, so it may be proposed again), checked field by field (a State built in
    Python is not validated: see validation.checked_details) and stamped with `now`
    where the client left time unset. O(fields)."""
    if type(state) is not State and not isinstance(state, State):
        raise ValidationError(f"state must be a State, got {type(state).__name__} {shown(state)}")
    new = _copy_state_fields(state)
    if new.type.__class__ is not StateType:
        new.type = as_state_type(new.type, "state.type")
    stamp = new.timestamp
    if stamp is None:
        new.timestamp = now
    elif stamp.__class__ is not _DATETIME or stamp.tzinfo is not _UTC:  # (stores hold UTC)
        new.timestamp = as_datetime(stamp, "state.timestamp")
    name = new.name
    if name.__class__ is not str or not name.isascii():
        new.name = as_str(name, "state.name", False)
    message = new.message
    if message is not None and (message.__class__ is not str or not message.isascii()):
        new.message = as_str(message, "state.message")
    if new.id.__class__ is not _UUID:
        new.id = as_uuid(new.id, "state.id")
    if new.data is not None:
        # As Prefect's JSON column holds a result: a JSON copy (NaN None, tuples
        # lists), so what is kept in memory is what any store gives back.
        new.data = as_json_value(new.data, "state.data")
    # The details are the client's too: copied.
    details = new.state_details = checked_details(as_state_details(state.state_details, "state.state_details"),
                                                  "state.state_details")
    if details.scheduled_time is None and new.type is _SCHEDULED:
        details.scheduled_time = now
    if details.pause_timeout.__class__ is _TIMEDELTA:  # Paused(timeout_seconds=…) without now
        try:
            details.pause_timeout = now + details.pause_timeout
        except OverflowError:
            raise ValidationError(
                f"state.state_details.pause_timeout: a timeout of {details.pause_timeout} from now is past the "
                "last datetime (9999-12-31)"
            ) from None
    return new


def _stamp(state: State, now: _dt.datetime) -> None:
    # States built by rules without a time get the transition's now.
    if state.timestamp is None:
        state.timestamp = now
    if state.type is _SCHEDULED and state.state_details.scheduled_time is None:
        state.state_details.scheduled_time = now


_plan_cache: dict = {}
_ON_RULES_CHANGE.append(_plan_cache.clear)  # a reassigned priority() or rule hook: recompile


def _entry(cls: type) -> Any:
    # A transform whose hooks keep no per-instance state runs as plain functions:
    # (before or None, after or None, signature, class); anything else stays a class.
    if getattr(cls, "_stateless", False):
        before = None if cls.before_transition is BaseUniversalTransform.before_transition else cls.before_transition
        after = None if cls.after_transition is BaseUniversalTransform.after_transition else cls.after_transition
        return (before, after, cls._signature, cls)
    return cls


class _Plan:
    """What runs for one intended transition under (policy, global policy): the policy
    entries and global entries in nesting order, and the fused global transforms per
    actual proposed type (the intended one precomputed)."""

    __slots__ = ("rules", "transforms", "from_type", "to_type", "fused", "fused_by_type")

    def __init__(self, rules: tuple, transforms: tuple, from_type: Any, to_type: Any) -> None:
        self.rules = rules
        self.transforms = transforms
        self.from_type = from_type
        self.to_type = to_type
        self.fused_by_type: dict = {}
        self.fused = self.fused_for(to_type)

    def fused_for(self, to_type: Any) -> "_FusedTransforms | None":
        """The global transforms fused for an actual proposal of `to_type` (None:
        nullified), or None when one of them is a class (run the ordinary way)."""
        key = None if to_type is None else to_type._value_
        try:
            return self.fused_by_type[key]
        except KeyError:
            pass
        fused = None
        if all(entry.__class__ is tuple for entry in self.transforms):
            fused = _FusedTransforms(self.transforms, self.from_type, to_type)
        self.fused_by_type[key] = fused
        return fused


def _compile_plan(policy: Any, global_policy: Any, from_type: Any, to_type: Any) -> _Plan:
    """The plan of the intended transition. Compiled once per (policies, from, to).
    O(1) when cached."""
    # Enum hashing is Python-level; the members' plain string values hash in C.
    key = (policy, global_policy, None if from_type is None else from_type._value_, to_type._value_)
    try:
        return _plan_cache[key]
    except KeyError:
        pass
    kind, other = getattr(policy, "RUN_KIND", None), global_policy.RUN_KIND
    if kind is not None and other is not None and kind != other:
        name = policy.__name__ if isinstance(policy, type) else type(policy).__name__
        raise ValidationError(
            f"{other}_policy={name}: {name} is a {kind}-run policy; a {other} run needs a "
            f"{other}-run policy (e.g. Core{other.title()}Policy)"
        )
    plan = _Plan(
        tuple(_entry(c) for c in policy.compile_transition_rules(from_type, to_type)),
        tuple(_entry(c) for c in global_policy.compile_transition_rules(from_type, to_type)),
        from_type,
        to_type,
    )
    if len(_plan_cache) < 10_000:  # policy instances are keys too: stay bounded
        _plan_cache[key] = plan
    return plan


class _FusedTransforms:
    """Global transforms that are all stateless, run as one step: the before-hooks
    that can act on the actual (from, to) in order, every signature in one extend,
    the after-hooks in reverse. Built once per (transforms, from, actual to)."""

    __slots__ = ("befores", "rule_sigs", "afters", "final_sigs")

    def __init__(self, entries: tuple, from_type: Any, to_type: Any) -> None:
        befores = []
        for entry in entries:
            before = entry[0]
            if before is None:
                continue
            applies = STATIC_FILTERS.get(entry[3])
            if applies is None or applies(from_type, to_type):
                befores.append(before)
        self.befores = tuple(befores)
        self.rule_sigs = tuple(entry[2] for entry in entries)
        self.afters = tuple(entry[1] for entry in reversed(entries) if entry[1] is not None)
        self.final_sigs = tuple(entry[2] for entry in reversed(entries))

    def enter(self, ctx: OrchestrationContext) -> None:
        for before in self.befores:
            before(None, ctx)
        ctx.rule_signature.extend(self.rule_sigs)

    def exit(self, ctx: OrchestrationContext, error: BaseException | None) -> BaseException | None:
        """Every after-hook runs even if one raises; returns the error to raise."""
        if ctx.orchestration_error is None:
            for after in self.afters:
                try:
                    after(None, ctx)
                except BaseException as exc:  # noqa: BLE001
                    error = exc
            ctx.finalization_signature.extend(self.final_sigs)
        return error


def _exit_all(entered: list, ctx: OrchestrationContext, error: BaseException | None) -> BaseException | None:
    """Exit in reverse nesting order; every exit runs even while an error propagates.
    Returns the error to raise (the last one raised, as nested `with` blocks do)."""
    final_append = ctx.finalization_signature.append
    for manager in reversed(entered):
        try:
            if manager.__class__ is tuple:
                if ctx.orchestration_error is None:
                    after = manager[1]
                    if after is not None:
                        after(None, ctx)
                    final_append(manager[2])
            elif manager._fast:
                # BaseOrchestrationRule.__exit__ for a rule valid on entry, inlined.
                cls = manager.__class__
                from_type = manager.from_state_type
                to_type = manager.to_state_type
                if from_type not in cls.FROM_STATES or to_type not in cls.TO_STATES:
                    continue
                initial = ctx.initial_state
                proposed = ctx.proposed_state
                if from_type != (None if initial is None else initial.type) or (
                    to_type != (None if proposed is None else proposed.type)
                ):
                    if cls._has_cleanup:  # fizzled
                        manager.cleanup(initial, ctx.validated_state, ctx)
                else:
                    if cls._has_after:
                        manager.after_transition(initial, ctx.validated_state, ctx)
                    final_append(cls._signature)
            elif error is None:
                manager.__exit__(None, None, None)
            else:
                manager.__exit__(type(error), error, error.__traceback__)
        except BaseException as exc:  # noqa: BLE001
            error = exc
    return error


def _enter(entries: tuple, ctx: OrchestrationContext, from_type: Any, to_type: Any, append: Any) -> None:
    signature_append = ctx.rule_signature.append
    initial = ctx.initial_state
    for entry in entries:
        if entry.__class__ is tuple:
            before = entry[0]
            if before is not None:
                before(None, ctx)
            signature_append(entry[2])
            append(entry)
        elif entry._fast:
            # BaseOrchestrationRule.__enter__, inlined. The plan only holds rules whose
            # FROM/TO contain the intended transition; one that an earlier rule has
            # already changed is invalid: no hook runs and its exit does nothing.
            proposed = ctx.proposed_state
            if to_type != (None if proposed is None else proposed.type):
                continue
            rule = _new(entry)
            rule.context = ctx
            rule.from_state_type = from_type
            rule.to_state_type = to_type
            rule._invalid_on_entry = False
            if entry._has_before:
                try:
                    entry.before_transition(rule, initial, proposed, ctx)
                except Exception as exc:  # noqa: BLE001 - re-raised after every exit
                    abort_for_error(ctx, rule, exc)
                else:
                    signature_append(entry._signature)
            else:
                signature_append(entry._signature)
            append(rule)
        else:
            if entry._plain_init:
                # Same as entry(ctx, from_type, to_type) without the __init__ call.
                rule = _new(entry)
                rule.context = ctx
                rule.from_state_type = from_type
                rule.to_state_type = to_type
                rule._invalid_on_entry = None
            else:
                rule = entry(ctx, from_type, to_type)
            rule.__enter__()
            append(rule)


def _new_context(context_cls: type, engine: Any, run: Any, initial: Any, proposed: State,
                 parameters: dict, now: _dt.datetime) -> OrchestrationContext:
    # OrchestrationContext.__init__ without the call.
    ctx = _new(context_cls)
    ctx.session = engine
    ctx.run = run
    ctx.initial_state = initial
    ctx.proposed_state = proposed
    ctx.validated_state = None
    ctx.rule_signature = []
    ctx.finalization_signature = []
    ctx.response_status = _ACCEPT
    ctx.response_details = ACCEPT_DETAILS
    ctx.orchestration_error = None
    ctx.parameters = parameters
    ctx.now = now
    ctx._flow_run = _UNSET
    ctx._detached = False
    return ctx


def orchestrate(
    engine: Any,
    context_cls: type[OrchestrationContext],
    run: Any,
    state: State,
    policy: Any,
    global_policy: Any,
    parameters: dict,
) -> OrchestrationResult:
    """Run one transition of `run` through `policy` and `global_policy`."""
    store = engine._store
    kind = context_cls.run_kind
    now = engine._clock.now()
    proposed = _submitted(state, now)
    initial = run.state if run.state_id is not None else None
    store.touch(kind, run)
    ctx = _new_context(context_cls, engine, run, initial, proposed, parameters, now)
    from_type = None if initial is None else initial.type
    to_type = proposed.type
    plan = _compile_plan(policy, global_policy, from_type, to_type)

    entered: list = []
    fused = None
    try:
        _enter(plan.rules, ctx, from_type, to_type, entered.append)
        final = ctx.proposed_state
        saved = None
        if final is not None:
            if final is not proposed:
                # A rule's replacement: stored as the engine's own copy (as Prefect
                # stores a row), since the rule may hand the same state to many runs,
                # or another run's stored one; missing times are stamped on the copy.
                final = ctx.proposed_state = detached_state_copy(final)
                _stamp(final, now)
            saved = _run_columns(run)
            resuming = getattr(run.empirical_policy, "resuming", None)
        if final is not None and final.type is to_type:
            fused = plan.fused
        else:
            fused = plan.fused_for(None if final is None else final.type)
        if fused is None:
            _enter(plan.transforms, ctx, from_type, to_type, entered.append)
        else:
            fused.enter(ctx)
        ctx.validate_proposed_state()
        if saved is not None and ctx.proposed_state is None:
            # Validation failed: undo the bookkeeping done for the lost state.
            for column, value in zip(_RUN_COLUMNS, saved):
                setattr(run, column, value)
            if kind == "flow_run":
                run.empirical_policy.resuming = resuming
    except BaseException as exc:
        error = exc if fused is None else fused.exit(ctx, exc)
        raise _exit_all(entered, ctx, error)
    error = None if fused is None else fused.exit(ctx, None)
    error = _exit_all(entered, ctx, error)
    if error is not None:
        raise error
    if ctx.orchestration_error is not None:
        raise ctx.orchestration_error
    store.reindex(kind, run)
    result = _new(OrchestrationResult)
    _set(result, "state", ctx.validated_state)
    _set(result, "status", ctx.response_status)
    _set(result, "details", ctx.response_details)
    return result


def set_flow_run_state(
    engine: Any,
    flow_run_id: uuid.UUID,
    state: State,
    force: bool = False,
    flow_policy: Any = None,
    orchestration_parameters: Mapping[str, Any] | None = None,
) -> OrchestrationResult:
    """Propose `state` for a flow run. MinimalFlowPolicy when `force` or no policy;
    GlobalFlowPolicy always. Raises ObjectNotFoundError for an unknown run and
    re-raises any exception a rule raised (after all rules have exited)."""
    run = engine._store.tables["flow_run"].rows.get(flow_run_id)
    if run is None:
        raise ObjectNotFoundError(f"Flow run with id {flow_run_id} not found")
    policy = flow_policy
    if policy is not None and not (policy.__class__ is _PolicyType):
        policy = _resolve_policy(policy, "flow_policy")
    if force or policy is None:
        policy = MinimalFlowPolicy
    return orchestrate(
        engine, FlowOrchestrationContext, run, state, policy, GlobalFlowPolicy,
        {} if orchestration_parameters is None else _parameters(orchestration_parameters),
    )


def set_task_run_state(
    engine: Any,
    task_run_id: uuid.UUID,
    state: State,
    force: bool = False,
    task_policy: Any = None,
    orchestration_parameters: Mapping[str, Any] | None = None,
) -> OrchestrationResult:
    """Propose `state` for a task run. BackgroundTaskPolicy for deferred states (even
    when forced); else MinimalTaskPolicy when `force` or no policy; GlobalTaskPolicy
    always."""
    run = engine._store.tables["task_run"].rows.get(task_run_id)
    if run is None:
        raise ObjectNotFoundError(f"Task run with id {task_run_id} not found")
    policy = task_policy
    if policy is not None and not (policy.__class__ is _PolicyType):
        policy = _resolve_policy(policy, "task_policy")
    # (read before _submitted checks the state, the way it will read the details)
    if isinstance(state, State) and as_state_details(state.state_details, "state.state_details").deferred:
        policy = BackgroundTaskPolicy
    elif force or policy is None:
        policy = MinimalTaskPolicy
    return orchestrate(
        engine, TaskOrchestrationContext, run, state, policy, GlobalTaskPolicy,
        {} if orchestration_parameters is None else _parameters(orchestration_parameters),
    )


def resume_flow_run(
    engine: Any,
    flow_run_id: uuid.UUID,
    run_input: Any = None,
    flow_policy: Any = None,
    orchestration_parameters: Mapping[str, Any] | None = None,
) -> OrchestrationResult:
    """Prefect's resume_flow_run route: a run that is not PAUSED is answered ABORT
    (no state); a suspended one (`pause_reschedule`) is proposed SCHEDULED "Resuming"
    for now, a paused one RUNNING, under `flow_policy` (default CoreFlowPolicy, the
    route's). A pause that waits for input (`run_input_keyset`) first hydrates
    `run_input` and validates it against the schema input the run stored (a REJECT
    with the route's reason otherwise: engine/inputs.py); once the resume is
    accepted, a non-empty input is stored under the keyset's "response" key.
    Raises ObjectNotFoundError for an unknown run. O(rules + input size)."""
    if run_input is not None and not isinstance(run_input, Mapping):
        raise ValidationError(f"run_input must be a dict or None, got {shown(run_input)}")
    run = engine._require("flow_run", flow_run_id, "Flow run")
    state = run.state if run.state_id is not None else None
    if state is None or state.type is not StateType.PAUSED:
        return OrchestrationResult(state=None, status=SetStateStatus.ABORT,
                                   details=StateAbortDetails(reason="Cannot resume a flow run that is not paused."))
    details = state.state_details
    keyset = details.run_input_keyset
    answer = None
    if keyset:
        refusal, answer = _inputs.run_input_refusal(engine, flow_run_id, keyset, run_input)
        if refusal is not None:
            # (Prefect answers REJECT with abort details here.)
            return OrchestrationResult(state=state, status=SetStateStatus.REJECT,
                                       details=StateAbortDetails(reason=refusal))
    if details.pause_reschedule:
        proposed = Scheduled(name="Resuming", scheduled_time=engine._clock.now())
    else:
        proposed = Running()
    result = set_flow_run_state(engine, flow_run_id, proposed, False,
                                CoreFlowPolicy if flow_policy is None else flow_policy, orchestration_parameters)
    if answer is not None and result.status is SetStateStatus.ACCEPT:
        _inputs.store_run_input_answer(engine, flow_run_id, keyset, answer)
    return result
