"""Rule machinery: orchestration rules (stateful context managers that can veto or
replace a proposal), universal transforms (bookkeeping that always runs), and the
policy base that orders them (spec orchestration.md §3, §4, §5).

Custom rules are first-class: subclass `BaseOrchestrationRule`, set FROM_STATES and
TO_STATES, override the hooks, list the class in a policy's `priority()`.
"""
from __future__ import annotations

import abc
import inspect
import types
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

from ..errors import OrchestrationError, ValidationError, shown
from ..states import ALL_ORCHESTRATION_STATES, State, StateType, TERMINAL_STATES
from .responses import (
    SetStateStatus,
    StateAbortDetails,
    StateRejectDetails,
    StateWaitDetails,
)

if TYPE_CHECKING:  # pragma: no cover
    from .context import OrchestrationContext

__all__ = [
    "ALL_STATES",
    "TERMINAL",
    "BaseOrchestrationRule",
    "BaseUniversalTransform",
    "BaseOrchestrationPolicy",
    "rules_of",
    "check_rule_classes",
]

ALL_STATES: frozenset = ALL_ORCHESTRATION_STATES
TERMINAL: frozenset = TERMINAL_STATES

_ABORT = SetStateStatus.ABORT
_REJECT = SetStateStatus.REJECT
_WAIT = SetStateStatus.WAIT
_UNKNOWN = None  # tri-state flag: None (unknown) / True / False


def _as_state_set(cls: type, attr: str, values: Any) -> frozenset:
    # A lone state type (an enum member is a str) would be read letter by letter.
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{cls.__qualname__}.{attr} must be a collection of state types (None for "
            f"\"no state\"), got {shown(values)}; write [{shown(values)}] for one"
        )
    try:
        return frozenset(None if v is None else StateType(v) for v in values)
    except ValueError as exc:
        raise TypeError(f"{cls.__qualname__}.{attr}: {exc}") from None


def _is_async(hook: Any) -> bool:
    # (through functools.wraps decorators too: the wrapper of a coroutine function
    # returns a coroutine all the same)
    try:
        hook = inspect.unwrap(hook)
    except ValueError:  # a cycle of __wrapped__
        pass
    return inspect.iscoroutinefunction(hook)


def _refuse_async(cls: type, name: str, hook: Any) -> None:
    # Hooks ported from Prefect are often `async def`: called here they would return
    # an unawaited coroutine and silently do nothing.
    if _is_async(hook):
        raise TypeError(
            f"{cls.__qualname__}.{name} is async; runstate calls hooks synchronously: "
            "define it with plain `def` (and drop the `await`s on the mutators)"
        )


def _refuse_async_hooks(cls: type, names: tuple[str, ...]) -> None:
    for name in names:
        _refuse_async(cls, name, getattr(cls, name))


# The package whose rule classes may inherit SAFE_COPIES = False (the built-in
# rules, known not to assign to what they are handed); a class elsewhere must
# declare it in its own body.
_OWN_PACKAGE = __name__.rpartition(".")[0] + "."


def abort_for_error(ctx: "OrchestrationContext", rule: Any, exc: Exception) -> None:
    """A rule's before-hook raised: ABORT now; the pipeline re-raises `exc` once every
    rule has exited."""
    ctx.proposed_state = None
    ctx.response_status = _ABORT
    ctx.response_details = StateAbortDetails(
        reason=f"Aborting orchestration due to error in {type(rule)!r}: !{exc!r}"
    )
    ctx.orchestration_error = exc


_set = type.__setattr__
_RULE_HOOKS = ("before_transition", "after_transition", "cleanup")
_TRANSFORM_HOOKS = _RULE_HOOKS[:2]  # (a transform has no cleanup)
# What the pipeline reads off a rule or transform class once, when it is defined.
_READ_AT_DEFINITION = frozenset({
    *_RULE_HOOKS, "FROM_STATES", "TO_STATES", "SAFE_COPIES", "__init__", "__enter__", "__exit__", "_exit_args",
})


class _RuleType(abc.ABCMeta):
    """Metaclass of rules and transforms. Assigning or deleting a hook, FROM_STATES,
    TO_STATES or SAFE_COPIES on a defined class (mock.patch.object, pytest's
    monkeypatch) derives again what was read off it at definition, for the class
    and its subclasses, and drops every compiled rule list and plan: the next
    transition runs what the class says now, as in Prefect, which looks them up on
    every transition. (ABCMeta, as Prefect's rules are abstract context managers: a
    rule may mix in abc.ABC.) Costs nothing per transition."""

    def __setattr__(cls, name: str, value: Any) -> None:
        if name in _READ_AT_DEFINITION:
            if name in _RULE_HOOKS:
                _refuse_async(cls, name, value)
            if name in ("FROM_STATES", "TO_STATES") and issubclass(cls, BaseOrchestrationRule):
                value = _as_state_set(cls, name, value)
        super().__setattr__(name, value)
        if name in _READ_AT_DEFINITION:
            _derive_again(cls)

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        if name in _READ_AT_DEFINITION:
            _derive_again(cls)


def _derive_again(cls: type) -> None:
    stack = [cls]
    while stack:
        klass = stack.pop()
        if issubclass(klass, BaseOrchestrationRule):
            _derive_rule(klass)
        elif issubclass(klass, BaseUniversalTransform):
            _derive_transform(klass)
        stack.extend(klass.__subclasses__())
    _forget_compiled()


def _derive_rule(cls: type) -> None:
    # Default hooks do nothing: skip calling (and copying for) them.
    base = BaseOrchestrationRule
    hooks = [getattr(cls, name) for name in _RULE_HOOKS]
    _set(cls, "_has_before", hooks[0] is not base.before_transition)
    _set(cls, "_has_after", hooks[1] is not base.after_transition)
    _set(cls, "_has_cleanup", hooks[2] is not base.cleanup)
    # The pipeline may build instances without calling an unchanged __init__.
    _set(cls, "_plain_init", cls.__init__ is base.__init__)
    # Unchanged lifecycle, no defensive copies and hooks that are plain functions (a
    # mock is called through the instance, as Prefect calls it): the pipeline does
    # what __enter__/__exit__ would do without calling them (two frames less per rule).
    _set(cls, "_fast", (
        cls._plain_init and not cls.SAFE_COPIES
        and cls.__enter__ is base.__enter__ and cls.__exit__ is base.__exit__
        and cls._exit_args is base._exit_args
        and all(hook.__class__ is types.FunctionType for hook in hooks)
    ))


def _derive_transform(cls: type) -> None:
    # Stateless only with the hooks it was declared stateless with.
    hooks = cls._stateless_hooks
    _set(cls, "_stateless", hooks is not None and cls.before_transition is hooks[0]
         and cls.after_transition is hooks[1])


class BaseOrchestrationRule(metaclass=_RuleType):
    """A stateful rule bound to one transition.

    Built with (context, from_state_type, to_state_type) = the intended transition.
    Entering runs `before_transition` unless the rule is invalid; exiting runs
    `after_transition` (still valid), `cleanup` (fizzled: the transition changed
    under it) or nothing (invalid). Hooks get shallow copies of the states and
    context; change the outcome only through the mutators.
    """

    FROM_STATES: ClassVar[frozenset] = frozenset()
    TO_STATES: ClassVar[frozenset] = frozenset()
    # Built-in rules never assign to the objects they are handed, so they can skip
    # the defensive copies; user rules get them (spec §1 "safe copies"), also when
    # they subclass a built-in rule, unless their own class body sets it to False.
    SAFE_COPIES: ClassVar[bool] = True

    __slots__ = ("context", "from_state_type", "to_state_type", "_invalid_on_entry", "__dict__")

    _signature: ClassVar[str] = ""
    _has_before: ClassVar[bool] = False
    _has_after: ClassVar[bool] = False
    _has_cleanup: ClassVar[bool] = False
    _plain_init: ClassVar[bool] = True
    # True when the pipeline may run the rule inline (see __init_subclass__).
    _fast: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr in ("FROM_STATES", "TO_STATES"):
            if attr in cls.__dict__:  # (inherited ones are sets already)
                _set(cls, attr, _as_state_set(cls, attr, cls.__dict__[attr]))
        _refuse_async_hooks(cls, _RULE_HOOKS)
        if "SAFE_COPIES" not in cls.__dict__ and not cls.__module__.startswith(_OWN_PACKAGE):
            _set(cls, "SAFE_COPIES", True)  # a user's subclass of a built-in rule
        _set(cls, "_signature", str(cls))
        _derive_rule(cls)

    def __init__(
        self,
        context: "OrchestrationContext",
        from_state_type: StateType | None,
        to_state_type: StateType | None,
    ) -> None:
        self.context = context
        self.from_state_type = from_state_type
        self.to_state_type = to_state_type
        self._invalid_on_entry: bool | None = _UNKNOWN

    # lifecycle ------------------------------------------------------------------------
    # __enter__/__exit__ inline the checks of invalid()/fizzled() (same logic, no
    # extra calls): they run for every rule of every transition.
    def __enter__(self) -> "OrchestrationContext":
        ctx = self.context
        from_type = self.from_state_type
        to_type = self.to_state_type
        if from_type not in self.FROM_STATES or to_type not in self.TO_STATES:
            self._invalid_on_entry = True
            return ctx
        flag = self._invalid_on_entry
        if flag is None:
            initial = ctx.initial_state
            proposed = ctx.proposed_state
            flag = self._invalid_on_entry = from_type != (None if initial is None else initial.type) or (
                to_type != (None if proposed is None else proposed.type)
            )
        if flag:
            return ctx
        if self.SAFE_COPIES:
            entry = ctx.entry_context()
        else:
            entry = (ctx.initial_state, ctx.proposed_state, ctx)
        try:
            self.before_transition(*entry)
        except Exception as exc:  # noqa: BLE001 - swallowed here, re-raised by the pipeline
            abort_for_error(ctx, self, exc)
        else:
            ctx.rule_signature.append(self._signature)
        return ctx

    def __exit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        ctx = self.context
        from_type = self.from_state_type
        to_type = self.to_state_type
        if from_type not in self.FROM_STATES or to_type not in self.TO_STATES:
            self._invalid_on_entry = True
            return None
        initial = ctx.initial_state
        proposed = ctx.proposed_state
        changed = from_type != (None if initial is None else initial.type) or (
            to_type != (None if proposed is None else proposed.type)
        )
        flag = self._invalid_on_entry
        if flag is None:
            flag = self._invalid_on_entry = changed
        if flag:
            return None
        if changed:  # fizzled
            if self._has_cleanup:
                self.cleanup(*self._exit_args(ctx))
        else:
            if self._has_after:
                self.after_transition(*self._exit_args(ctx))
            ctx.finalization_signature.append(self._signature)
        return None

    def _exit_args(self, ctx: "OrchestrationContext") -> tuple:
        if self.SAFE_COPIES:
            return ctx.exit_context()
        return ctx.initial_state, ctx.validated_state, ctx

    # hooks ------------------------------------------------------------------------------
    def before_transition(self, initial_state: State | None, proposed_state: State | None,
                          context: "OrchestrationContext") -> None:
        """Runs on entry if the rule is valid. May call the mutators."""

    def after_transition(self, initial_state: State | None, validated_state: State | None,
                         context: "OrchestrationContext") -> None:
        """Runs on exit if the transition still is the one this rule expected."""

    def cleanup(self, initial_state: State | None, validated_state: State | None,
                context: "OrchestrationContext") -> None:
        """Runs on exit if the rule fizzled: undo what before_transition did."""

    # validity -----------------------------------------------------------------------------
    def invalid(self) -> bool:
        """True if the rule does not apply: its transition left FROM/TO, or (decided
        once) the context no longer matches it. O(1)."""
        if self.from_state_type not in self.FROM_STATES or self.to_state_type not in self.TO_STATES:
            self._invalid_on_entry = True
        elif self._invalid_on_entry is None:
            self._invalid_on_entry = self.invalid_transition()
        return self._invalid_on_entry

    def invalid_transition(self) -> bool:
        """True iff the context's transition differs from the rule's own. O(1)."""
        ctx = self.context
        initial = ctx.initial_state
        proposed = ctx.proposed_state
        return self.from_state_type != (None if initial is None else initial.type) or (
            self.to_state_type != (None if proposed is None else proposed.type)
        )

    def fizzled(self) -> bool:
        """True if the rule was entered but the transition changed afterwards. O(1)."""
        if self._invalid_on_entry:
            return False
        return self.invalid_transition()

    # mutators (before_transition only) ------------------------------------------------------
    def _check_not_validated(self) -> None:
        if self.context.validated_state is not None:
            raise RuntimeError("The transition is already validated")

    def reject_transition(self, state: State | None, reason: str) -> None:
        """Replace the proposal by `state`, or with None keep the current state."""
        self._check_not_validated()
        ctx = self.context
        if state is None:
            if self.from_state_type is None:
                raise OrchestrationError(
                    "The current run has no state; this transition cannot be rejected "
                    "without providing a new state."
                )
            self.to_state_type = None
            ctx.proposed_state = None
        else:
            if not isinstance(state, State):
                raise ValidationError(f"reject_transition needs a State or None, got {shown(state)}")
            self.to_state_type = state.type
            ctx.proposed_state = state
        ctx.response_status = _REJECT
        ctx.response_details = StateRejectDetails(reason=reason)

    def delay_transition(self, delay_seconds: int, reason: str) -> None:
        """Write nothing; tell the client to retry after `delay_seconds`."""
        self._check_not_validated()
        ctx = self.context
        self.to_state_type = None
        ctx.proposed_state = None
        ctx.response_status = _WAIT
        ctx.response_details = StateWaitDetails(delay_seconds=delay_seconds, reason=reason)

    def abort_transition(self, reason: str) -> None:
        """Write nothing; tell the client to stop trying."""
        self._check_not_validated()
        ctx = self.context
        self.to_state_type = None
        ctx.proposed_state = None
        ctx.response_status = _ABORT
        ctx.response_details = StateAbortDetails(reason=reason)

    def rename_state(self, state_name: str) -> None:
        """Rename the proposed state (its type is kept, so nothing fizzles). After
        validation (in an after-hook) it renames only the context's proposal, as in
        Prefect: what was stored and returned keeps its name."""
        ctx = self.context
        proposed = ctx.proposed_state
        if proposed is not None:
            if ctx.validated_state is not None:
                # The proposal was stored as is: rename a copy, not the stored state.
                proposed = ctx.proposed_state = proposed.shallow_copy()
            proposed.name = state_name

    def update_context_parameters(self, key: str, value: Any) -> None:
        """Set a context parameter visible to the rules that follow."""
        self.context.parameters[key] = value


class BaseUniversalTransform(metaclass=_RuleType):
    """Bookkeeping applied to every transition (FROM/TO = all states). Hooks receive
    the real context; each transform checks for a nullified proposal itself."""

    FROM_STATES: ClassVar[frozenset] = ALL_STATES
    TO_STATES: ClassVar[frozenset] = ALL_STATES

    __slots__ = ("context", "from_state_type", "to_state_type", "__dict__")

    _signature: ClassVar[str] = ""
    _plain_init: ClassVar[bool] = False  # always built through __init__
    _fast: ClassVar[bool] = False  # always entered through __enter__
    # True only for classes that declare `_STATELESS_HOOKS = True` in their own body
    # (not inherited): their hooks ignore `self`, so the pipeline may call them as
    # plain functions instead of building an object per transition.
    _stateless: ClassVar[bool] = False
    _stateless_hooks: ClassVar[tuple | None] = None  # (before, after) as declared stateless

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _refuse_async_hooks(cls, _TRANSFORM_HOOKS)
        _set(cls, "_signature", str(cls))
        declared = bool(cls.__dict__.get("_STATELESS_HOOKS", False))
        _set(cls, "_stateless_hooks", (cls.before_transition, cls.after_transition) if declared else None)
        _derive_transform(cls)

    def __init__(self, context: "OrchestrationContext", from_state_type: Any = None,
                 to_state_type: Any = None) -> None:
        self.context = context
        self.from_state_type = from_state_type
        self.to_state_type = to_state_type

    def __enter__(self) -> "OrchestrationContext":
        ctx = self.context
        self.before_transition(ctx)
        ctx.rule_signature.append(self._signature)
        return ctx

    def __exit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        ctx = self.context
        if ctx.orchestration_error is None:
            self.after_transition(ctx)
            ctx.finalization_signature.append(self._signature)
        return None

    def before_transition(self, context: "OrchestrationContext") -> None:
        """Runs on entry, always."""

    def after_transition(self, context: "OrchestrationContext") -> None:
        """Runs on exit unless a rule raised."""

    def nullified_transition(self) -> bool:
        return self.context.proposed_state is None

    def exception_in_transition(self) -> bool:
        return self.context.orchestration_error is not None


# Called when a policy's `priority` or what a rule class was read for changes (the
# pipeline's plan cache).
_ON_RULES_CHANGE: list = []


class _PolicyType(type):
    """Metaclass of policies: reassigning `priority` on a policy class (say, with
    pytest's monkeypatch) drops every compiled rule list, which would otherwise go
    on running the old rules. Costs nothing per transition."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "priority":
            _forget_compiled()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        if name == "priority":
            _forget_compiled()


def _forget_compiled() -> None:
    stack = [BaseOrchestrationPolicy]
    while stack:
        cls = stack.pop()
        type.__setattr__(cls, "_compiled", {})
        stack.extend(cls.__subclasses__())
    for forget in _ON_RULES_CHANGE:
        forget()


def rules_of(policy: Any) -> list:
    """`policy.priority()`, checked: every entry a rule or transform class.
    ValidationError naming the policy and the entry otherwise. O(rules)."""
    name = getattr(policy, "__name__", None) or type(policy).__name__
    try:
        rules = policy.priority()
    except TypeError as exc:  # most often `def priority(self)` without @staticmethod
        raise ValidationError(f"policy {name}: priority() must be a staticmethod taking no arguments: {exc}") from None
    if not isinstance(rules, (list, tuple)):
        raise ValidationError(f"policy {name}: priority() must return a list of rule classes, got {shown(rules)}")
    return check_rule_classes(rules, f"policy {name}: priority() lists")


def check_rule_classes(rules: Iterable, where: str) -> list:
    """`rules` as a list, each entry checked to be a rule or transform class;
    ValidationError "`where` <entry>, which is not a rule class" otherwise. O(rules)."""
    rules = list(rules)
    for rule in rules:
        if not (isinstance(rule, type) and issubclass(rule, (BaseOrchestrationRule, BaseUniversalTransform))):
            raise ValidationError(
                f"{where} {shown(rule)}, which is not a rule class (a subclass of "
                "BaseOrchestrationRule or BaseUniversalTransform)"
            )
    return rules


class BaseOrchestrationPolicy(metaclass=_PolicyType):
    """An ordered list of rules. Subclass and override `priority()`.

    The rules that apply to a (from, to) pair are compiled once per policy class and
    cached, so choosing rules costs one dict lookup per transition.
    """

    _compiled: ClassVar[dict] = {}
    # "flow" or "task" for the built-in policies and their subclasses: the engine
    # refuses a policy of the other kind (Prefect fails inside a rule instead).
    RUN_KIND: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._compiled = {}  # own cache per class: priority() differs per class

    @staticmethod
    def priority() -> list[type]:
        """Rule and transform classes, outermost first."""
        return []

    @classmethod
    def compile_transition_rules(cls, from_state: StateType | None = None,
                                 to_state: StateType | None = None) -> tuple[type, ...]:
        """The rules of `priority()` whose FROM/TO sets contain the transition, in
        order. O(1) after the first call for a pair."""
        key = (from_state, to_state)
        rules = cls._compiled.get(key)
        if rules is None:
            rules = tuple(
                r for r in rules_of(cls) if from_state in r.FROM_STATES and to_state in r.TO_STATES
            )
            cls._compiled[key] = rules
        return rules
