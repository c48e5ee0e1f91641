"""`set_flow_run_state` / `set_task_run_state`: choose the policy, nest the rules and
global transforms around validation, and answer (spec orchestration.md §5,
operations.md §1.10, §2.9).

Called by the Engine inside an open transaction: raising rolls everything back.
Cost per transition: O(applicable rules + global transforms) plus the store's
writes; the applicable rules are compiled once per (policy, from, to).
"""
from __future__ import annotations

import datetime as _dt
import operator
import uuid
from typing import Any, Mapping

import attrs

from ..errors import ObjectNotFoundError, ValidationError
from ..states import State, StateDetails, StateType
from .context import FlowOrchestrationContext, OrchestrationContext, TaskOrchestrationContext
from .policies import (
    BackgroundTaskPolicy,
    GlobalFlowPolicy,
    GlobalTaskPolicy,
    MinimalFlowPolicy,
    MinimalTaskPolicy,
)
from .responses import OrchestrationResult
from .rules import BaseOrchestrationPolicy, BaseUniversalTransform
from .versions import parse_api_version

__all__ = ["set_flow_run_state", "set_task_run_state", "orchestrate"]

_new = object.__new__
_set = object.__setattr__
_SCHEDULED = StateType.SCHEDULED
_DETAIL_FIELDS = tuple(f.name for f in attrs.fields(StateDetails))
# Run columns the global transforms may change before validation; restored if
# validation fails so a failed write leaves the run as it was.
_RUN_COLUMNS = (
    "state_type", "state_name", "state_timestamp", "start_time", "end_time", "total_run_time",
    "expected_start_time", "next_scheduled_start_time", "run_count",
)
_run_columns = operator.attrgetter(*_RUN_COLUMNS)


def _resolve_policy(policy: Any, what: str) -> Any:
    if policy is None:
        return None
    if isinstance(policy, type) and issubclass(policy, BaseOrchestrationPolicy):
        return policy
    if isinstance(policy, BaseOrchestrationPolicy):
        return policy
    raise ValidationError(
        f"{what} must be an orchestration policy class or instance (e.g. CoreFlowPolicy), got {policy!r}"
    )


def _parameters(parameters: Any) -> dict:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ValidationError(f"orchestration_parameters must be a dict, got {parameters!r}")
    params = dict(parameters)
    if "api-version" in params:
        parse_api_version(params["api-version"])  # fail fast on a malformed version
    return params


def _compile_copier(cls: type, names: tuple[str, ...]) -> Any:
    # Straight-line field copies (no loop, no getattr): the hottest copy in the engine.
    lines = ["def copy(src):", "    new = _new(cls)"]
    lines += [f"    _set(new, {n!r}, src.{n})" for n in names]
    lines.append("    return new")
    namespace = {"_new": _new, "_set": _set, "cls": cls}
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from attrs field names only
    return namespace["copy"]


_copy_details_fields = _compile_copier(StateDetails, _DETAIL_FIELDS)


def _copy_details(details: StateDetails) -> StateDetails:
    new = _copy_details_fields(details)
    if details.run_input_keyset is not None:
        _set(new, "run_input_keyset", dict(details.run_input_keyset))
    return new


def _submitted(state: State, now: _dt.datetime) -> State:
    """The engine's own copy of a submitted state (the caller's object is never
    mutated, so it may be proposed again), stamped with `now` where the client left
    time unset. O(1)."""
    if type(state) is not State and not isinstance(state, State):
        raise ValidationError(f"state must be a State, got {type(state).__name__} {state!r}")
    new = _new(State)
    _set(new, "id", state.id)
    _set(new, "type", state.type)
    _set(new, "name", state.name)
    _set(new, "message", state.message)
    _set(new, "data", state.data)
    timestamp = state.timestamp
    _set(new, "timestamp", now if timestamp is None else timestamp)
    details = _copy_details(state.state_details)
    if details.scheduled_time is None and state.type is _SCHEDULED:
        _set(details, "scheduled_time", now)
    _set(new, "state_details", details)
    return new


def _stamp(state: State, now: _dt.datetime) -> None:
    # States built by rules without a time get the transition's now.
    if state.timestamp is None:
        state.timestamp = now
    if state.type is _SCHEDULED and state.state_details.scheduled_time is None:
        state.state_details.scheduled_time = now


_plan_cache: dict = {}


def _entry(cls: type) -> Any:
    # A transform whose hooks keep no per-instance state runs as plain functions:
    # (before or None, after or None, signature); anything else stays a class.
    if getattr(cls, "_stateless", False):
        before = None if cls.before_transition is BaseUniversalTransform.before_transition else cls.before_transition
        after = None if cls.after_transition is BaseUniversalTransform.after_transition else cls.after_transition
        return (before, after, cls._signature)
    return cls


def _compile_plan(policy: Any, global_policy: Any, from_type: Any, to_type: Any) -> tuple[tuple, tuple]:
    """(policy entries, global entries) applicable to the intended transition, in
    nesting order. Compiled once per (policies, from, to). O(1) when cached."""
    # Enum hashing is Python-level; the members' plain string values hash in C.
    key = (policy, global_policy, None if from_type is None else from_type._value_, to_type._value_)
    try:
        return _plan_cache[key]
    except KeyError:
        pass
    plan = (
        tuple(_entry(c) for c in policy.compile_transition_rules(from_type, to_type)),
        tuple(_entry(c) for c in global_policy.compile_transition_rules(from_type, to_type)),
    )
    if len(_plan_cache) < 10_000:  # policy instances are keys too: stay bounded
        _plan_cache[key] = plan
    return plan


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
            elif error is None:
                manager.__exit__(None, None, None)
            else:
                manager.__exit__(type(error), error, error.__traceback__)
        except BaseException as exc:  # noqa: BLE001
            error = exc
    return error


def _enter(entries: tuple, ctx: OrchestrationContext, from_type: Any, to_type: Any, append: Any) -> None:
    signature_append = ctx.rule_signature.append
    for entry in entries:
        if entry.__class__ is tuple:
            before = entry[0]
            if before is not None:
                before(None, ctx)
            signature_append(entry[2])
            append(entry)
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
    ctx = context_cls(engine, run, initial, proposed, parameters, now)
    from_type = None if initial is None else initial.type
    to_type = proposed.type
    rules, transforms = _compile_plan(policy, global_policy, from_type, to_type)

    entered: list = []
    try:
        _enter(rules, ctx, from_type, to_type, entered.append)
        final = ctx.proposed_state
        saved = None
        if final is not None:
            if final is not proposed:  # a rule's replacement may lack times
                _stamp(final, now)
            saved = _run_columns(run)
            resuming = getattr(run.empirical_policy, "resuming", None)
        _enter(transforms, ctx, from_type, to_type, entered.append)
        ctx.validate_proposed_state()
        if saved is not None and ctx.proposed_state is None:
            # Validation failed: undo the bookkeeping done for the lost state.
            for column, value in zip(_RUN_COLUMNS, saved):
                setattr(run, column, value)
            if kind == "flow_run":
                run.empirical_policy.resuming = resuming
    except BaseException as exc:
        raise _exit_all(entered, ctx, exc)
    error = _exit_all(entered, ctx, None)
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
    policy = _resolve_policy(flow_policy, "flow_policy")
    if force or policy is None:
        policy = MinimalFlowPolicy
    return orchestrate(
        engine, FlowOrchestrationContext, run, state, policy, GlobalFlowPolicy,
        _parameters(orchestration_parameters),
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
    policy = _resolve_policy(task_policy, "task_policy")
    if isinstance(state, State) and state.state_details.deferred:
        policy = BackgroundTaskPolicy
    elif force or policy is None:
        policy = MinimalTaskPolicy
    return orchestrate(
        engine, TaskOrchestrationContext, run, state, policy, GlobalTaskPolicy,
        _parameters(orchestration_parameters),
    )
