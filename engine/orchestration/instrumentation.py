"""InstrumentFlowRunStateTransitions: observability only (spec orchestration.md §8.25).

Prefect emits an event per stored flow-run state. We have no event bus; callables
appended to `EVENT_LISTENERS` receive the same event as a dict (none by default,
so the transform costs one check per transition)."""
from __future__ import annotations

from typing import Any, Callable

from .rules import BaseUniversalTransform

__all__ = ["InstrumentFlowRunStateTransitions", "EVENT_LISTENERS", "MAX_EVENT_MESSAGE"]

EVENT_LISTENERS: list[Callable[[dict[str, Any]], None]] = []
MAX_EVENT_MESSAGE = 100_000


class InstrumentFlowRunStateTransitions(BaseUniversalTransform):
    _STATELESS_HOOKS = True

    def after_transition(self, context):
        if not EVENT_LISTENERS:
            return
        proposed, validated = context.proposed_state, context.validated_state
        if proposed is None or validated is None:
            return
        initial = context.initial_state
        run = context.run
        event = {
            "event": f"prefect.flow-run.{validated.name}",
            "occurred": validated.timestamp,
            "resource": {"prefect.resource.id": f"prefect.flow-run.{run.id}",
                         "prefect.resource.name": run.name},
            "payload": {
                "intended": {
                    "from": None if initial is None else initial.type.value,
                    "to": proposed.type.value,
                },
                "initial_state": None if initial is None else {
                    "type": initial.type.value, "name": initial.name,
                    "message": (initial.message or "")[:MAX_EVENT_MESSAGE],
                },
                "validated_state": {
                    "type": validated.type.value, "name": validated.name,
                    "message": (validated.message or "")[:MAX_EVENT_MESSAGE],
                },
            },
        }
        for listener in EVENT_LISTENERS:
            listener(event)
