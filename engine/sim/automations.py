"""Prefect's automations over flow-run state events: event triggers of either
posture, and the actions that change a run's state (suspend and resume it
included), run, pause or resume a deployment, or pause and resume pools and queues.

Every new state of a flow run (its first one included, forced ones too) is an
event named ``prefect.flow-run.<state name>``, as Prefect's server emits it, with
the run as its resource and its flow, deployment, work queue, work pool, parent
task run and tags as related resources. Each enabled automation whose trigger
covers the event (its `match` and `match_related`, and Prefect's first filter on
event names) counts it in a *bucket*, one per distinct value of the trigger's
`for_each` labels (one bucket for all events without any), by Prefect 3.1.0's
rules (prefect.server.events.triggers):

* an `after` event starts the bucket [now, now + within) if there is none; its
  count starts at -1 when the event is also expected, as it then counts itself;
* without `after`, the first expected event starts it, 15 minutes back (Prefect's
  look-back for events arriving out of order);
* an expected event counts while the bucket lasts (always, for a reactive trigger
  with a window of 0); one that comes before the bucket's start is ignored;
* a *reactive* trigger fires as soon as the count reaches `threshold`. A *proactive*
  one fires when its bucket has ended with fewer; an expected event after the end
  evaluates it, else the proactive-triggers service's next pass does;
* a bucket that fired, or ended without firing, is dropped when the trigger has
  `after` (the next `after` event starts another) and otherwise replaced by the next
  one, [max(end, now), + within). A reactive bucket whose event came after its end
  is replaced first and then counts the event;
* the service (proactive triggers only) makes a pass every `services.triggers.loop`
  seconds from the start, but for each trigger only once the time its previous
  pass named has come: `within` later, or the earliest end of its buckets. A pass
  starts the one bucket of a trigger without `for_each`, drops the buckets that
  reached the threshold, then evaluates the buckets that have ended, oldest first;
* every 5 s from the start, whatever the posture, buckets that ended a minute ago
  or more are dropped (at one instant, before a pass).

Firing runs the automation's actions right after the current event, as Prefect's
actions service does. A flow-run action acts on the bucket's run when `for_each`
holds the run's id, else on the run of the firing's event (the triggering one, or
the bucket's last), and fails without one. Its state goes through the flow policy
unforced (Prefect's set_state route with ``force: false``); the action counts as
executed if the engine accepted it, as failed otherwise (or if the run is gone).
Deployment, pool and queue actions act on the one they name, or (source
"inferred") on the deployment, pool or queue of the run of the firing's event,
failing when there is none. `suspend-flow-run` proposes Prefect's Suspended state
(an hour's timeout); `resume-flow-run` calls the engine's resume_flow_run route and
fails unless it accepted (Client.server_resume). `run-deployment` creates a run as Prefect's
create_flow_run_from_deployment route does (Services.create_run);
`pause-deployment` and `resume-deployment` are Simulation.pause_deployment.

Not modelled: Prefect's pass reads a trigger's buckets in pages of 500 while it
drops and moves them, so with more than 500 buckets one pass may skip some until
the next; here a pass evaluates every bucket that has ended.
"""
from __future__ import annotations

import heapq
import re
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError, shown
from ..states import State, StateType, Suspended
from .errors import WorkloadError
from .loop import service_pass_at
from .model import DeploymentRT, PoolRT, QueueRT, RunSim
from .streams import Streams
from .workload import (DEPLOYMENT_ACTIONS, FLOW_RUN_EVENT, POOL_ACTIONS, QUEUE_ACTIONS, ActionSpec, AutomationSpec,
                       matches)

if TYPE_CHECKING:  # pragma: no cover
    from .simulation import Simulation

__all__ = ["Automations"]

# Automation ids are derived from their names, so that reports (which quote them in
# default messages) are the same for the same workload.
_NAMESPACE = uuid.UUID("6f1c3a52-9a1e-4d9b-8a53-5d0f2b8c7e41")
# Prefect's PRECEDING_EVENT_LOOKBACK: how far back a bucket that an expected event
# starts (a trigger without `after`) begins, to catch events arriving out of order.
# Here events come in order, so it only places such buckets first at a pass.
_LOOKBACK = 900.0
# The timeout of the state Prefect's suspend-flow-run action proposes.
_SUSPEND_TIMEOUT = 3600.0
# Prefect's triggers service also sweeps, every 5 s from its start, the buckets of
# every trigger that ended a minute ago or more (PREFECT_EVENTS_EXPIRED_BUCKET_BUFFER),
# whatever their count: a reactive bucket is never evaluated at its end.
_SWEEP_EVERY = 5.0
_EXPIRED_AFTER = 60.0
# Firings of one automation at one instant beyond which its actions must be setting
# its trigger off again and again: virtual time would never move on.
_MAX_FIRINGS_AT_ONCE = 10_000


def _includes(spec: dict[str, list[str]], resources: list[dict[str, str]]) -> bool:
    """Prefect's ResourceSpecification.includes: any resource matching every label."""
    if not spec:
        return True
    return any(all(any(matches(p, resource.get(label)) for p in patterns) for label, patterns in spec.items())
               for resource in resources)


class _Bucket:
    """Events counted for one value of the trigger's `for_each` labels, over
    [start, end). `last` is the run of the last event counted or starting it (None
    in a bucket the service or a replacement started); `serial` orders buckets
    started at one instant as Prefect reads them (by insertion)."""

    __slots__ = ("start", "end", "count", "last", "serial")

    def __init__(self, start: float, end: float, count: int, last: RunSim | None, serial: int) -> None:
        self.start = start
        self.end = end
        self.count = count
        self.last = last
        self.serial = serial


class _Automation:
    """One enabled automation: its spec, its buckets by key, what it did."""

    __slots__ = ("spec", "index", "id", "reactive", "after", "within", "threshold", "immediate", "for_each",
                 "subject", "buckets", "ends", "full", "serials", "pattern", "names", "triggered", "executed",
                 "failed", "fired_at", "fired_now")

    def __init__(self, spec: AutomationSpec, index: int, workload_name: str) -> None:
        self.spec = spec
        self.index = index
        self.id = uuid.uuid5(_NAMESPACE, f"{workload_name}/{spec.name}")
        trigger = spec.trigger
        self.reactive = trigger.posture == "Reactive"
        self.after = bool(trigger.after)
        self.within = trigger.within
        self.threshold = trigger.threshold
        self.immediate = self.reactive and trigger.within == 0
        # (related role or None for the run's own, label) per `for_each` label, sorted
        # as Prefect orders a bucket's key
        self.for_each = [(None, label) if not label.startswith("related:") else tuple(label.split(":", 2)[1:])
                         for label in trigger.for_each]
        # Where the run itself is in a key (its id label holds the RunSim: equal
        # exactly when the ids are), for the flow-run actions to act on.
        self.subject = trigger.for_each.index("prefect.resource.id") if "prefect.resource.id" in trigger.for_each \
            else None
        self.buckets: dict[tuple[Any, ...], _Bucket] = {}
        # the buckets by end, for sweeps and passes: (end, serial of the entry, bucket,
        # key), stale once the bucket is gone or has moved on (see `live`); and, for a
        # proactive trigger's passes, the keys whose count reached the threshold
        self.ends: list[tuple[float, int, _Bucket, tuple[Any, ...]]] = []
        self.full: set[tuple[Any, ...]] = set()
        self.serials = 0
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
        self.fired_at = -1.0
        self.fired_now = 0

    def live(self, entry: tuple[float, int, _Bucket, tuple[Any, ...]]) -> bool:
        """An entry of `ends` still stands for its key's bucket and that bucket's end."""
        end, _, bucket, key = entry
        return self.buckets.get(key) is bucket and bucket.end == end

    def meaning(self, event: str) -> tuple[bool, bool] | None:
        """(starts a bucket, is expected) for the event name `event`, or None when it
        can change nothing for this trigger (Prefect does not look at it, or it
        neither starts a bucket nor is expected). O(1) once seen."""
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
        self.sim = sim
        self.loop = sim.loop
        self.client = sim.client
        self.engine = sim.engine
        self.every = sim.workload.triggers.loop
        self.automations = [_Automation(spec, i, sim.workload.name) for i, spec in enumerate(sim.workload.automations)
                            if spec.enabled]
        # Related resources by what a run references (flow, deployment, queue, parent
        # task run, tags): the runs of one deployment share an entry.
        self._related: dict[tuple[Any, ...], list[dict[str, str]]] = {}
        self._deployments: dict[str, DeploymentRT] = {}   # by name, once set up

    def start(self) -> None:
        """Book the service's first sweep, and first pass of each proactive
        automation, now."""
        for dep in self.sim.deployments:
            self._deployments[dep.spec.name] = dep
        now = self.loop.now
        self.loop.at(now, self._sweep)
        for auto in self.automations:
            if not auto.reactive:
                self.loop.at(service_pass_at(now, self.every), self._pass, auto)

    def outcomes(self) -> dict[str, dict[str, int]]:
        """What each enabled automation did, in workload order."""
        return {a.spec.name: {"triggered": a.triggered, "actions_executed": a.executed, "actions_failed": a.failed}
                for a in self.automations}

    # events ------------------------------------------------------------------------------------
    def flow_event(self, run: RunSim) -> None:
        """`run`'s flow run has a new state: its event, for every automation.
        O(automations), O(log buckets) more for a proactive one."""
        state = run.rec.state
        event = FLOW_RUN_EVENT + (state.name or "")
        now = self.loop.now
        # The event's own labels and its related resources, each built once if asked for.
        resource: list[dict[str, Any]] = []
        related: list[list[dict[str, str]]] = []
        for auto in self.automations:
            meaning = auto.meaning(event)
            if meaning is None or not self._covers(auto, run, state, resource, related):
                continue
            opens, expected = meaning   # (one of them at least)
            key = self._key(auto, run, state, resource, related)
            if opens:
                bucket = self._ensure(auto, key, now, -1 if expected else 0, run)
            elif not auto.after:
                bucket = self._ensure(auto, key, now - _LOOKBACK, 0, run)
            else:
                bucket = auto.buckets.get(key)   # only an `after` event starts one
                if bucket is None:
                    continue
            if expected:
                self._evaluate(auto, key, bucket, run)

    @staticmethod
    def _resource(run: RunSim, state: State, memo: list[dict[str, Any]]) -> dict[str, Any]:
        """The labels of the event of `run`'s `state` (kept in `memo`, empty at first)."""
        if not memo:
            memo.append({"prefect.resource.id": f"prefect.flow-run.{run.rec.id}", "prefect.resource.name": run.rec.name,
                         "prefect.state-name": state.name or "", "prefect.state-type": state.type.value,
                         "prefect.state-message": state.message or ""})
        return memo[0]

    def _related_of(self, run: RunSim, memo: list[list[dict[str, str]]]) -> list[dict[str, str]]:
        """The related resources of `run`'s event (kept in `memo`, empty at first)."""
        if not memo:
            rec = run.rec
            refs = (rec.flow_id, rec.deployment_id, rec.work_queue_id, rec.parent_task_run_id, *rec.tags)
            related = self._related.get(refs)
            if related is None:
                related = self._related[refs] = self._related_resources(run)
            memo.append(related)
        return memo[0]

    def _covers(self, auto: _Automation, run: RunSim, state: State, resource: list[dict[str, Any]],
                related: list[list[dict[str, str]]]) -> bool:
        """The trigger's `match` and `match_related` hold for this event of `run`."""
        trigger = auto.spec.trigger
        if trigger.match and not _includes(trigger.match, [self._resource(run, state, resource)]):
            return False
        return not trigger.match_related or _includes(trigger.match_related, self._related_of(run, related))

    def _key(self, auto: _Automation, run: RunSim, state: State, resource: list[dict[str, Any]],
             related: list[list[dict[str, str]]]) -> tuple[Any, ...]:
        """The event's bucket key: the value of each `for_each` label, "" if it has
        none (the run's id label is the run itself)."""
        key: list[Any] = []
        for role, label in auto.for_each:
            if role is None:
                key.append(run if label == "prefect.resource.id" else self._resource(run, state, resource)[label])
            else:
                found = next((r for r in self._related_of(run, related) if r.get("prefect.resource.role") == role),
                             None)
                key.append((found.get(label) or "") if found is not None else "")
        return tuple(key)

    # buckets -------------------------------------------------------------------------------------
    def _track(self, auto: _Automation, key: tuple[Any, ...], bucket: _Bucket) -> None:
        """A bucket's end (new or moved) for the sweeps and passes, and a proactive
        one's count (new) for the passes."""
        auto.serials += 1
        heapq.heappush(auto.ends, (bucket.end, auto.serials, bucket, key))
        if not auto.reactive and bucket.count >= auto.threshold:
            auto.full.add(key)

    def _new(self, auto: _Automation, key: tuple[Any, ...], start: float, end: float, count: int,
             last: RunSim | None) -> _Bucket:
        auto.serials += 1
        bucket = auto.buckets[key] = _Bucket(start, end, count, last, auto.serials)
        self._track(auto, key, bucket)
        return bucket

    def _ensure(self, auto: _Automation, key: tuple[Any, ...], start: float, count: int,
                last: RunSim | None) -> _Bucket:
        """The key's bucket, started at `start` (ending `within` after now) if there is
        none; an existing one only learns of the event's run."""
        bucket = auto.buckets.get(key)
        if bucket is None:
            return self._new(auto, key, start, self.loop.now + auto.within, count, last)
        if last is not None:
            bucket.last = last
        return bucket

    def _replace(self, auto: _Automation, key: tuple[Any, ...], start: float, count: int) -> _Bucket:
        """Prefect's start_new_bucket: the key's bucket becomes [start, start + within)
        with `count` (a new one, with no last run, if it was dropped)."""
        bucket = auto.buckets.get(key)
        if bucket is None:
            return self._new(auto, key, start, start + auto.within, count, None)
        bucket.start, bucket.end, bucket.count = start, start + auto.within, count
        self._track(auto, key, bucket)
        return bucket

    def _evaluate(self, auto: _Automation, key: tuple[Any, ...], bucket: _Bucket, run: RunSim | None) -> None:
        """Prefect's evaluate of the key's bucket, for an event of `run` or (None) a
        pass of the service."""
        now = self.loop.now
        unspent = run is not None
        if now < bucket.start:
            return   # an event from before the bucket (one after a reactive firing)
        if unspent and (auto.immediate or bucket.start <= now < bucket.end):
            bucket.count += 1
            bucket.last = run
            unspent = False
            if not auto.reactive and bucket.count >= auto.threshold:
                auto.full.add(key)
        if auto.reactive:
            fires = bucket.count >= auto.threshold
        else:
            fires = bucket.end <= now and bucket.count < auto.threshold
        if fires:
            self._fire(auto, key, run if run is not None else bucket.last)
            del auto.buckets[key]
        elif now < bucket.end:
            return
        if auto.after:
            auto.buckets.pop(key, None)   # the next `after` event starts another
            return
        if auto.immediate:
            return
        start = max(bucket.end, now)
        if auto.reactive and unspent:
            # The event came after the bucket: it counts in the next one.
            self._evaluate(auto, key, self._replace(auto, key, start, 0), run)
        else:
            # (a proactive bucket's event that came after it counts in the next one)
            self._replace(auto, key, start, 1 if unspent else 0)

    # the proactive-triggers service --------------------------------------------------------------
    def _sweep(self, _: Any = None) -> None:
        """Prefect's sweep_closed_buckets: drop every bucket that ended a minute ago or
        more. O(buckets dropped · log buckets)."""
        for auto in self.automations:
            self._sweep_buckets(auto)
        self.loop.after(_SWEEP_EVERY, self._sweep)

    def _sweep_buckets(self, auto: _Automation) -> None:
        older = self.loop.now - _EXPIRED_AFTER
        ends = auto.ends
        while ends and ends[0][0] <= older:
            entry = heapq.heappop(ends)
            if auto.live(entry):
                del auto.buckets[entry[3]]

    def _pass(self, auto: _Automation) -> None:
        now = self.loop.now
        buckets, ends = auto.buckets, auto.ends
        # (a sweep due at this instant comes first: the same order as the oracle's)
        self._sweep_buckets(auto)
        if not auto.for_each:
            self._ensure(auto, (), now, 0, None)
        for key in auto.full:
            bucket = buckets.get(key)
            if bucket is not None and bucket.count >= auto.threshold:
                del buckets[key]
        auto.full.clear()
        due = []
        while ends and ends[0][0] <= now:
            entry = heapq.heappop(ends)
            if auto.live(entry):
                _, _, bucket, key = entry
                due.append((bucket.start, bucket.serial, key, bucket))
        due.sort(key=lambda item: (item[0], item[1]))
        for _, _, key, bucket in due:
            self._evaluate(auto, key, bucket, None)
        # Back `within` from now, or when the earliest bucket left may end.
        again = now + auto.within
        while ends and not auto.live(ends[0]):
            heapq.heappop(ends)
        if ends and now < ends[0][0] < again:
            again = ends[0][0]
        self.loop.at(service_pass_at(again, self.every), self._pass, auto)

    # firing and actions ---------------------------------------------------------------------------
    def _fire(self, auto: _Automation, key: tuple[Any, ...], run: RunSim | None) -> None:
        now = self.loop.now
        if auto.fired_at == now:
            auto.fired_now += 1
            if auto.fired_now > _MAX_FIRINGS_AT_ONCE:
                raise WorkloadError(f"automations[{auto.index}]", f"{shown(auto.spec.name)} fired over "
                                    f"{_MAX_FIRINGS_AT_ONCE:,} times at one instant: its own actions set it off "
                                    "again and again")
        else:
            auto.fired_at, auto.fired_now = now, 1
        auto.triggered += 1
        # A flow-run action acts on the bucket's run, else the event's; a pool or queue
        # is inferred from the event's run alone (Prefect: "No event to infer ...").
        subject = key[auto.subject] if auto.subject is not None else run
        self.loop.at(now, self._act, (auto, subject, run, auto.triggered))

    def _act(self, arg: tuple[_Automation, RunSim | None, RunSim | None, int]) -> None:
        auto, subject, event_run, firing = arg
        for index, action in enumerate(auto.spec.actions):
            if self._do(auto, action, subject, event_run, (firing, index)):
                auto.executed += 1
            else:
                auto.failed += 1

    def _do(self, auto: _Automation, action: ActionSpec, run: RunSim | None, event_run: RunSim | None,
            invocation: tuple[int, int]) -> bool:
        """Carry out one action (`invocation`: the automation's firing, the action's
        index); whether it succeeded."""
        kind = action.type
        if kind == "do-nothing":
            return True
        if kind in DEPLOYMENT_ACTIONS:
            dep = self._deployment(action, event_run)
            if dep is None:
                return False   # Prefect: "No deployment could be inferred"
            if kind == "run-deployment":
                return self._run_deployment(auto, action, dep, invocation)
            self.sim.pause_deployment(dep, kind == "pause-deployment")
            return True
        if kind in POOL_ACTIONS:
            pool = self._pool(action, event_run)
            if pool is not None:
                self.sim.pause_pool(pool, kind == "pause-work-pool")
            return pool is not None
        if kind in QUEUE_ACTIONS:
            queue = self._queue(action, event_run)
            if queue is not None:
                self.sim.pause_queue(queue, kind == "pause-work-queue")
            return queue is not None
        if run is None:
            return False   # Prefect: "No flow run could be inferred"
        if run.deleted:
            return False   # Prefect's route: 404, the run is gone
        if kind == "resume-flow-run":
            return self.client.server_resume(run).status == "ACCEPT"
        if kind == "cancel-flow-run":
            state = State(type=StateType.CANCELLING, message=f"Cancelled by Automation {auto.id}")
        elif kind == "suspend-flow-run":
            # Prefect's Suspended(timeout_seconds=3600): the pause-expiration service
            # fails the run an hour on unless something resumes it.
            state = Suspended(pause_expiration_time=self.loop.to_datetime(self.loop.now + _SUSPEND_TIMEOUT),
                              message=f"Suspended by Automation {auto.id}")
        else:
            state = State(type=action.state, name=action.name,
                          message=action.message or f"State changed by Automation {auto.id}")
        return self.client.server_call(run, state).status == "ACCEPT"

    def _run_deployment(self, auto: _Automation, action: ActionSpec, dep: DeploymentRT,
                        invocation: tuple[int, int]) -> bool:
        """Prefect's run-deployment action: a flow run of `dep` SCHEDULED now, through
        the deployment's create_flow_run route (its tags and queue; the action's
        parameters over its own), keyed as Prefect keys the action's invocation (its
        id drawn from the workload, not at random). Fails once the simulation
        creates no more runs (`runs` reached)."""
        firing, index = invocation
        invocation_id = uuid.uuid5(auto.id, f"{firing}/{index}")
        key = f"automation {auto.id}, action {index}, invocation {invocation_id}"
        # The run's identity (its random stream): its ordinal among the runs automations
        # created of `dep`.
        identity = Streams.action_run(dep.run_prefix, dep.actions)
        dep.actions += 1
        try:
            created = self.sim.services.create_run(dep, self.loop.now, identity, auto=False,
                                                   parameters=action.parameters, key=key,
                                                   job_variables=action.job_variables)
        except WorkloadError:
            raise   # (a ValidationError too) the runaway guard, from an automation this run set off
        except ValidationError:
            return False   # Prefect: the route's 4xx fails the action (e.g. unhydratable parameters)
        return created is not None

    def _deployment(self, action: ActionSpec, run: RunSim | None) -> DeploymentRT | None:
        if action.source == "selected":
            return self._deployments[action.deployment]
        return run.dep if run is not None else None

    def _pool(self, action: ActionSpec, run: RunSim | None) -> PoolRT | None:
        if action.source == "selected":
            return self.sim.pools[action.work_pool]
        queue = run.queue if run is not None else None
        return queue.pool if queue is not None else None

    def _queue(self, action: ActionSpec, run: RunSim | None) -> QueueRT | None:
        if action.source == "selected":
            return self.sim.pools[action.work_pool].queue_named(action.work_queue)
        return run.queue if run is not None else None

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
