"""The engine's exception hierarchy.

Every error the engine raises on purpose derives from `RunstateError`, so callers can
catch one base class. A failed call leaves the engine exactly as it was.
"""
from __future__ import annotations

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
