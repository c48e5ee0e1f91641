"""Rules used by both flow and task policies: scheduled-time handling
(spec orchestration.md §8.12, §8.13)."""
from __future__ import annotations

import math

from ..states import StateType
from .common import CoreRule

__all__ = ["CopyScheduledTime", "WaitForScheduledTime"]

S = StateType


class CopyScheduledTime(CoreRule):
    """SCHEDULED -> PENDING keeps the scheduled time when the proposal has none."""

    FROM_STATES = (S.SCHEDULED,)
    TO_STATES = (S.PENDING,)

    def before_transition(self, initial_state, proposed_state, context):
        details = proposed_state.state_details
        if not details.scheduled_time:
            # Writes through the shared details object: the stored state gets it.
            details.scheduled_time = initial_state.state_details.scheduled_time


class WaitForScheduledTime(CoreRule):
    """Do not start before the scheduled time: WAIT for the remaining seconds."""

    FROM_STATES = (S.SCHEDULED, S.PENDING)
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        scheduled = initial_state.state_details.scheduled_time
        if not scheduled:
            return
        delta = (scheduled - context.now).total_seconds()
        whole = math.trunc(delta)
        # Nearest second, Python rounding of the fraction (±0.5 rounds toward zero).
        delay = whole + round(delta - whole)
        if delay > 0:
            self.delay_transition(delay, "Scheduled time is in the future")
