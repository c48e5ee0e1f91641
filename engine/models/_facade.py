"""Shared plumbing of the async facade: argument checking and conversions.

Each facade function is an `async def` whose body makes exactly one synchronous
engine call (atomic on its own, see session.py). `facade` turns Python's binding
TypeError (an unknown or missing parameter) into a ValidationError that names the
function, the culprit and the accepted parameters; calling an `async def` only
binds its arguments, so no engine code has run when that error is raised.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any, Callable, TypeVar

from ..errors import ValidationError, shown
from .session import Session

__all__ = ["facade", "engine_of", "as_mapping", "given_fields", "as_filter"]

F = TypeVar("F", bound=Callable[..., Any])


def facade(fn: F) -> F:
    """Wrap an async facade function so bad parameters raise ValidationError. O(1) per call."""
    module = fn.__module__.rsplit(".", 1)[-1]
    label = f"{module}.{fn.__name__}"
    params = tuple(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        # An `async def` wrapper keeps inspect.iscoroutinefunction() true, as for
        # Prefect's functions; binding happens at the inner call, before any work.
        try:
            coro = fn(*args, **kwargs)
        except TypeError as exc:
            unknown = [k for k in kwargs if k not in params]
            if unknown:
                what = f"unknown parameter(s) {', '.join(map(repr, unknown))}"
            else:
                what = str(exc).split(") ", 1)[-1]
            raise ValidationError(f"{label}(): {what}; accepted parameters: {', '.join(params)}") from None
        return await coro

    wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def engine_of(session: Any) -> Any:
    """The engine behind an open session (TransactionError if closed). O(1)."""
    if not isinstance(session, Session):
        raise ValidationError(
            f"session must be a runstate Session (from `async with engine.session() as session`), "
            f"got {type(session).__name__}"
        )
    engine = session.engine
    session.calls += 1
    return engine


def as_mapping(value: Any, what: str) -> dict:
    """A dict of explicitly given fields from a mapping or a pydantic-style object
    (`model_dump(exclude_unset=True)`, so Prefect schema objects work too)."""
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dict(dump(exclude_unset=True))
    raise ValidationError(f"{what} must be a mapping of fields, got {type(value).__name__} {shown(value)}")


def given_fields(value: Any, what: str, function: str, required: tuple[str, ...] = (),
                 allowed: tuple[str, ...] | None = None) -> dict:
    """`as_mapping(value, what)` for a create call: ValidationError naming `function`
    (e.g. "flows.create_flow") if a `required` field is missing or, with `allowed`,
    if any other field is given."""
    fields = as_mapping(value, what)
    if allowed is not None:
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise ValidationError(f"{function}(): unknown {what} field(s) {unknown}; accepted: {', '.join(allowed)}")
    for name in required:
        if name not in fields:
            raise ValidationError(f"{function}(): {what} needs a {name}")
    return fields


def as_filter(value: Any) -> Any:
    """Filters pass through (the engine takes typed filters or JSON dicts);
    pydantic filter objects are dumped to their JSON shape."""
    if value is None or isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not hasattr(value, "__attrs_attrs__"):
        return dump(exclude_unset=True, mode="json")
    return value
