"""Prefect's automations over flow-run state events: proactive event triggers with
one window per flow run, and the change-flow-run-state action.

Every new state of a flow run (its first one included, forced ones too) is an
event named ``prefect.flow-run.<state name>``, as Prefect's server emits it, with
the run as its resource and its flow, deployment, work queue, work pool, parent
task run and tags as related resources. For each enabled automation whose trigger
covers the event (its `match` and `match_related`, and an `expect` or `after`
pattern), Prefect 3.1.0's bucket rules are followed, one bucket ("window") per run:

* an `after` event opens the run's window, [now, now + within), unless one is open;
  its count starts at 0, or at -1 when the event is also expected (so that it
  does not count itself);
* an expected event counts in the open window while it lasts; one that comes at or
  after the window's end closes it instead, firing if the count is below the
  threshold;
* the proactive-triggers service (a pass every `services.triggers.loop` seconds from
  the start) closes each window on its first pass at or after its end, firing if
  fewer than `threshold` expected events came.

Firing runs the automation's actions right after the current event, as Prefect's
actions service does: each proposes its state for the run through the flow
policy, unforced (Prefect's set_state route with ``force: false``), and counts as
executed if the engine accepted it, as failed otherwise. A typical use is Prefect's
recipe for zombie runs, whose process died without a word (a worker's ``runs =
"lost"``): after ``prefect.flow-run.Running``, expect ``prefect.flow-run.*``
within an hour, else change the run's state to CRASHED.
"""
from __future__ import annotations

import math
import re
import uuid
from typing import TYPE_CHECKING, Any

from ..states import State
from .model import RunSim
from .workload import FLOW_RUN_EVENT, AutomationSpec, matches

if TYPE_CHECKING:  # pragma: no cover
    from .simulation import Simulation

__all__ = ["Automations"]

# Automation ids are derived from their names, so that reports (which quote them in
# default messages) are the same for the same workload.
_NAMESPACE = uuid.UUID("6f1c3a52-9a1e-4d9b-8a53-5d0f2b8c7e41")


def _includes(spec: dict[str, list[str]], resources: list[dict[str, str]]) -> bool:
    """Prefect's ResourceSpecification.includes: any resource matching every label."""
    if not spec:
        return True
    return any(all(any(matches(p, resource.get(label)) for p in patterns) for label, patterns in spec.items())
               for resource in resources)


class _Window:
    """A run's open window: it ends at `end` (it began with the event that opened
    it: events come in order, so none can precede it) and has counted `count`."""

    __slots__ = ("end", "count")

    def __init__(self, end: float, count: int) -> None:
        self.end = end
        self.count = count


class _Automation:
    """One enabled automation: its spec, its open windows by run, what it did."""

    __slots__ = ("spec", "id", "windows", "pattern", "names", "triggered", "executed", "failed")

    def __init__(self, spec: AutomationSpec, workload_name: str) -> None:
        self.spec = spec
        self.id = uuid.uuid5(_NAMESPACE, f"{workload_name}/{spec.name}")
        self.windows: dict[RunSim, _Window] = {}
        trigger = spec.trigger
        # Prefect's first filter on event names (EventTrigger.event_pattern): any
        # name when nothing is expected, else a prefix match of an expect or after
        # pattern with * standing for one or more characters.
        if trigger.expect:
            self.pattern: re.Pattern[str] | None = re.compile("|".join(
                re.escape(p).replace("\\*", ".+") for p in sorted({*trigger.expect, *trigger.after})))
        else:
            self.pattern = None
        # What an event name means to this trigger, by name (it depends on the name
        # alone, and runs take a handful of names): see `meaning`.
        self.names: dict[str, tuple[bool, bool] | None] = {}
        self.triggered = self.executed = self.failed = 0

    def meaning(self, event: str) -> tuple[bool, bool] | None:
        """(opens a window, is expected) for the event name `event`, or None when it
        can change nothing for this trigger (Prefect does not look at it, or it
        neither opens a window nor is expected). O(1) once seen."""
        try:
            return self.names[event]
        except KeyError:
            trigger = self.spec.trigger
            opens = any(matches(p, event) for p in trigger.after)
            expected = not trigger.expect or any(matches(p, event) for p in trigger.expect)
            seen = self.pattern is None or self.pattern.match(event) is not None
            meaning = self.names[event] = (opens, expected) if seen and (opens or expected) else None
            return meaning


class Automations:
    """The workload's enabled automations, fed every flow-run state event."""

    def __init__(self, sim: "Simulation") -> None:
        self.loop = sim.loop
        self.client = sim.client
        self.engine = sim.engine
        self.every = sim.workload.triggers.loop
        self.automations = [_Automation(spec, sim.workload.name) for spec in sim.workload.automations
                            if spec.enabled]
        # A run's related resources do not change: built once, at its first event.
        self._related: dict[RunSim, list[dict[str, str]]] = {}

    def outcomes(self) -> dict[str, dict[str, int]]:
        """What each enabled automation did, in workload order."""
        return {a.spec.name: {"triggered": a.triggered, "actions_executed": a.executed, "actions_failed": a.failed}
                for a in self.automations}

    # events ------------------------------------------------------------------------------------
    def flow_event(self, run: RunSim) -> None:
        """`run`'s flow run has a new state: its event, for every automation. O(automations)."""
        state = run.rec.state
        event = FLOW_RUN_EVENT + (state.name or "")
        now = self.loop.now
        for auto in self.automations:
            meaning = auto.meaning(event)
            if meaning is None or not self._covers(auto, run, state):
                continue
            opens, expected = meaning
            windows = auto.windows
            window = windows.get(run)
            if window is None and opens:
                window = _Window(now + auto.spec.trigger.within, -1 if expected else 0)
                windows[run] = window
                self.loop.at(self._pass_at(window.end), self._evaluate, (auto, run, window))
            if window is None or not expected:
                continue
            if now < window.end:
                window.count += 1
            else:
                # Came after the window but before the service's pass: Prefect
                # evaluates the window then, and it fires if too few events came.
                self._close(auto, run, window)

    def _covers(self, auto: _Automation, run: RunSim, state: State) -> bool:
        """The trigger's `match` and `match_related` hold for this event of `run`."""
        trigger = auto.spec.trigger
        if trigger.match:
            resource = {
                "prefect.resource.id": f"prefect.flow-run.{run.rec.id}", "prefect.resource.name": run.rec.name,
                "prefect.state-name": state.name or "", "prefect.state-type": state.type.value,
                "prefect.state-message": state.message or "",
            }
            if not _includes(trigger.match, [resource]):
                return False
        if trigger.match_related:
            related = self._related.get(run)
            if related is None:
                related = self._related[run] = self._related_resources(run)
            if not _includes(trigger.match_related, related):
                return False
        return True

    def _pass_at(self, end: float) -> float:
        """The service's first pass at or after `end` (passes every `every` seconds from 0)."""
        every = self.every
        t = math.ceil(end / every) * every
        return t if t >= end else t + every

    def _evaluate(self, arg: tuple[_Automation, RunSim, _Window]) -> None:
        auto, run, window = arg
        if auto.windows.get(run) is window:   # (else closed by a late event already)
            self._close(auto, run, window)

    def _close(self, auto: _Automation, run: RunSim, window: _Window) -> None:
        del auto.windows[run]
        if window.count < auto.spec.trigger.threshold:
            auto.triggered += 1
            self.loop.at(self.loop.now, self._act, (auto, run))

    # actions --------------------------------------------------------------------------------------
    def _act(self, arg: tuple[_Automation, RunSim]) -> None:
        auto, run = arg
        for action in auto.spec.actions:
            state = State(type=action.state, name=action.name,
                          message=action.message or f"State changed by Automation {auto.id}")
            if self.client.server_call(run, state).status == "ACCEPT":
                auto.executed += 1
            else:
                auto.failed += 1

    def _related_resources(self, run: RunSim) -> list[dict[str, str]]:
        """The related resources of `run`'s events, as Prefect lists them: flow,
        deployment, work queue, work pool and parent task run (id, role, name),
        then one ``prefect.tag.<tag>`` (role "tag") per tag of the run, its flow,
        its deployment and its parent task run, sorted."""
        engine = self.engine
        rec = run.rec
        out: list[dict[str, str]] = []
        tags = set(rec.tags)

        def add(kind: str, obj: Any) -> None:
            tags.update(getattr(obj, "tags", None) or ())
            out.append({"prefect.resource.id": f"prefect.{kind}.{obj.id}", "prefect.resource.role": kind,
                        "prefect.resource.name": obj.name})

        add("flow", engine.read_flow(rec.flow_id))
        if rec.deployment_id is not None:
            add("deployment", engine.read_deployment(rec.deployment_id))
        if rec.work_queue_id is not None:
            queue = engine.read_work_queue(rec.work_queue_id)
            add("work-queue", queue)
            add("work-pool", engine.read_work_pool(queue.work_pool_id))
        if rec.parent_task_run_id is not None:
            add("task-run", engine.read_task_run(rec.parent_task_run_id))
        out += [{"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
                for tag in sorted(tags)]
        return out
