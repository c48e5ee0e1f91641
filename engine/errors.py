"""The engine's exception hierarchy.

Every error the engine raises on purpose derives from `RunstateError`, so callers can
catch one base class. A failed call leaves the engine exactly as it was. `shown(value)`
is how a message shows a caller's value: repr(), kept short.
"""
from __future__ import annotations

from typing import Any, Iterator

__all__ = [
    "RunstateError",
    "ObjectNotFoundError",
    "ValidationError",
    "UniquenessError",
    "DuplicateIdError",
    "OrchestrationError",
    "FlowRunGraphTooLarge",
    "TransactionError",
    "BackendError",
]


class RunstateError(Exception):
    """Base class of every error raised deliberately by runstate."""


class ObjectNotFoundError(RunstateError, LookupError):
    """A referenced object (run, state, flow, ...) does not exist."""


class ValidationError(RunstateError, ValueError):
    """Bad input: unknown keys, wrong types, impossible values. The message names the culprit."""


class UniquenessError(RunstateError):
    """A write would break a uniqueness constraint (e.g. two states of one run at one timestamp)."""


class DuplicateIdError(UniquenessError, KeyError):
    """A record with that id already exists (the store's insert refuses it, changing
    nothing; a KeyError too, as for a mapping)."""

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


class OrchestrationError(RunstateError):
    """Raised by the orchestration framework itself (e.g. rejecting with no state to keep)."""


class FlowRunGraphTooLarge(RunstateError):
    """A flow run graph has more nodes than allowed."""


class TransactionError(RunstateError):
    """Misuse of transactions or sessions (e.g. using a closed session)."""


class BackendError(RunstateError):
    """A durability backend failed, refused a location, or found a bad file."""


# How messages show a caller's value ------------------------------------------------------

_SHOWN_CHARS = 300  # of a value in a message; the rest is elided ("...")
_SHOWN_DEPTH = 8  # levels of nested lists, tuples, sets and dicts shown
_BRACKETS = {list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})"), dict: ("{", "}")}


def shown(value: Any) -> str:
    """`value` as an error message shows it: its repr(), cut after about 300
    characters, with lists, tuples, sets and dicts shown 8 levels deep, so a
    message is short and always works. (repr() itself recurses through deep
    nesting, str() refuses an int of over 4300 digits, and a caller's __repr__ can
    raise.) O(what is shown): a huge container is not walked past the cut."""
    out: list[str] = []
    size = 0
    for chunk in _chunks(value, _SHOWN_DEPTH):
        out.append(chunk)
        size += len(chunk)
        if size > _SHOWN_CHARS:
            return "".join(out)[:_SHOWN_CHARS] + "..."
    return "".join(out)


def _chunks(value: Any, depth: int) -> Iterator[str]:
    kind = type(value)
    brackets = _BRACKETS.get(kind)
    if brackets is None:
        yield _repr(value)
        return
    if not value:
        yield {set: "set()", frozenset: "frozenset()"}.get(kind) or repr(value)
        return
    opening, closing = brackets
    yield opening
    if depth == 0:
        yield "..."
    else:
        for i, item in enumerate(value.items() if kind is dict else value):
            if i:
                yield ", "
            if kind is dict:
                key, item = item
                yield from _chunks(key, depth - 1)
                yield ": "
            yield from _chunks(item, depth - 1)
        if kind is tuple and len(value) == 1:
            yield ","
    yield closing


def _repr(value: Any) -> str:
    if type(value) is int:
        try:
            return repr(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits()
            return f"<int of {value.bit_length()} bits>"
    if type(value) is str and len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS])  # (the cut follows)
    try:
        return repr(value)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 -- a caller's __repr__ may raise anything, or recurse
        return f"<{type(value).__name__} object>"
