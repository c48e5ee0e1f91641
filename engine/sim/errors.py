"""The simulator's input error: a ValidationError that knows where in the workload it is."""
from __future__ import annotations

from ..errors import ValidationError

__all__ = ["WorkloadError"]


class WorkloadError(ValidationError):
    """A bad workload: `path` names the offending key, e.g. ``flows[2].tasks[1].duration.mean``."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)
