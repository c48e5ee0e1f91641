"""A simulation: builds the engine objects a workload describes, wires the client,
services and workers to one event loop over a ManualClock, runs it, and hands back
a `SimulationResult` for the report.

Determinism: every draw comes from a stream seeded from the workload's seed and a
stable identity (a flow run, a deployment's arrivals, a worker: streams.py), the
run-name and id generators are seeded from the same seed, a 1 µs clock tick (so two
states of a run never share a timestamp) and a loop that breaks ties in scheduling
order. Same workload + seed ⇒ same report.json and same store, byte for byte. The
streams also pair what-if runs: the same flow run draws the same numbers when a
setting changes the order of events.
"""
from __future__ import annotations

import bisect
import contextlib
import datetime as _dt
import functools
import gc
import importlib
import math
import random
import signal
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterator

import attrs

from ..clock import ManualClock
from ..engine import Engine
from ..errors import ValidationError, shown
from ..records import seed_slugs
from ..orchestration import resolve_policy as _resolve_policy
from ..schedules import IntervalSchedule
from ..states import seed_ids
from .automations import Automations
from .client import Client
from .durations import format_duration
from .errors import WorkloadError
from .loop import EventLoop, SimClock, service_pass_at
from .metrics import Metrics
from .model import DeploymentRT, FlowPlan, PoolRT, QueueRT, RunSim, WorkerRT, compile_plan
from .rulestats import RuleStats
from .services import Services
from .streams import Streams
from .workload import ScheduleSpec, Workload

__all__ = ["Simulation", "SimulationResult", "resolve_policy", "open_engine", "check_period", "no_run_source",
           "deployment_schedules"]

# Prefect's PREFECT_WORKER_HEARTBEAT_SECONDS default (a worker setting, not the
# foreman's fallback for workers that gave no interval, though both are 30).
WORKER_HEARTBEAT_SECONDS = 30.0
# Prefect's RecentDeploymentsScheduler.loop_seconds: it schedules deployments updated
# since its last pass (a resumed one) within this.
_RECENT_SCHEDULER_EVERY = 5.0
# The last instant a datetime can hold, and the room the simulation keeps past the
# end of its period for the short waits the engine and services add to a time in it
# (WAIT delays, slot waits, the late-runs threshold, an automation's one-hour suspension).
_LAST = _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)
_SLACK = 86400.0
# What stopped a simulation (SimulationResult.stopped_by, report.json's simulated.stopped_by).
STOPPED_BY = ("until", "runs", "max_time", "interrupted")


def _longest_delay(workload: Workload) -> tuple[float, str]:
    """The longest time the engine may add to a time within the period (the delay of
    a retry that can happen, with its jitter; the timeout of a pause that can; a
    cache entry's expiration) and the key that sets it ("" for the services' own
    short waits)."""
    found = [(_SLACK, "")]
    for i, flow in enumerate(workload.flows):
        if flow.retries:
            found.append((flow.retry_delay, f"flows[{i}].retry_delay"))
        if flow.pause is not None and flow.pause.probability:
            found.append((flow.pause.timeout, f"flows[{i}].pause.timeout"))
        for j, task in enumerate(flow.tasks):
            if task.retries:
                delays = task.retry_delay if isinstance(task.retry_delay, list) else [task.retry_delay]
                longest = max(delays, default=0.0) * (1.0 + (task.retry_jitter_factor or 0.0))
                found.append((longest, f"flows[{i}].tasks[{j}].retry_delay"))
            if task.cache is not None and task.cache.expiration is not None:
                # (not a delay, but a time the run's cache entry holds)
                found.append((task.cache.expiration, f"flows[{i}].tasks[{j}].cache.expiration"))
    return max(found, key=lambda pair: pair[0])


def check_period(workload: Workload) -> None:
    """Raise WorkloadError unless the simulated period, and what the simulation may
    schedule past its end, fits in Python's datetimes (which end with year 9999): a
    start near that end or a huge `until` would otherwise run into an OverflowError
    part way, or simulate for ever. O(tasks)."""
    spec = workload.simulation
    if spec.until is not None:
        length, name = spec.until, "simulation.until or --until"
        beyond, why = _longest_delay(workload)
    else:
        # Only a run target: the time limit, and the scheduler's look-ahead past it.
        length, name = spec.max_time, "simulation.max_time, the time limit of a run target"
        beyond, why = max(_longest_delay(workload), (workload.scheduler.max_scheduled_time,
                                                      "services.scheduler.max_scheduled_time"))
    room = (_LAST - spec.start).total_seconds()
    for i, dep in enumerate(workload.deployments):
        sched = dep.schedule
        # (the engine stores an interval schedule with its anchor and interval as datetime and timedelta)
        if sched is not None and sched.kind == "interval" and sched.anchor + sched.interval > room:
            raise WorkloadError(f"deployments[{i}].schedule", (
                f"its anchor ({format_duration(sched.anchor)}) and interval ({format_duration(sched.interval)}) "
                f"reach past Python's dates, which end on 9999-12-31, from the start at {spec.start.isoformat()}"))
    if length + beyond <= room:
        return
    what = why or "the services' waits"
    raise WorkloadError("simulation", (
        f"the simulation does not fit in Python's dates, which end on 9999-12-31: it starts at "
        f"{spec.start.isoformat()}, lasts {format_duration(length)} ({name}) and may schedule up to "
        f"{format_duration(beyond)} past its end ({what}); start earlier or simulate a shorter time"
        + (", or shorten that" if why else "")))


def no_run_source(workload: Workload) -> str | None:
    """Why nothing in `workload` can create a flow run in its simulated period, or None
    if something may: an unpaused deployment (or a paused one an automation may
    resume) with a schedule that has a date in the period, or an automation that
    runs a deployment. O(deployments + actions), one cron search per cron."""
    spec = workload.simulation
    horizon = spec.horizon
    actions = {action.type for auto in workload.automations if auto.enabled and workload.triggers.enabled
               for action in auto.actions}
    if "run-deployment" in actions:
        return None
    for dep in workload.deployments:
        sched = dep.schedule
        if sched is None or (dep.paused and "resume-deployment" not in actions):
            continue
        if sched.kind == "poisson":
            return None
        if sched.kind == "interval":
            first = sched.anchor
        elif sched.kind == "cron":
            when = sched.cron.next_after(spec.start - _dt.timedelta(microseconds=1))  # type: ignore[union-attr]
            first = float("inf") if when is None else (when - spec.start).total_seconds()
        else:
            first = sched.at[0] if sched.at else float("inf")
        if first <= horizon:
            return None
    if not workload.deployments:
        return "it has no deployments"
    return (f"no unpaused deployment has a schedule with a date in the simulated {format_duration(horizon)}, "
            "and no automation runs a deployment")


def deployment_schedules(schedule: ScheduleSpec | None, start: _dt.datetime) -> list[dict[str, Any]]:
    """The schedules Prefect's database holds for a deployment with the workload
    `schedule` (DeploymentScheduleCreate entries, active), stored as the deployment
    is created so that the engine shows them after a simulation; the simulator's
    scheduler walks its own copy of the dates and never reads them. An interval is
    an IntervalSchedule in UTC (where stepping a day or more is stepping elapsed
    time, as the simulator does) anchored where the simulator anchors it, at the
    start plus `anchor`. (Prefect's also has the dates an anchor later than the start
    leaves before it, down to the start, which the simulator does not make: with an
    anchor under one interval the two have the same dates.) A cron is its own
    CronSchedule, with its timezone and day_or. Poisson and `at` arrivals are no
    Prefect schedule (their runs are made as by hand, as a client's would be): none.
    O(1)."""
    if schedule is None:
        return []
    if schedule.kind == "interval":
        stored: Any = IntervalSchedule(_dt.timedelta(seconds=schedule.interval),
                                       start + _dt.timedelta(seconds=schedule.anchor), "UTC")
    elif schedule.kind == "cron":
        stored = schedule.cron.schedule   # type: ignore[union-attr]
    else:
        return []
    return [{"schedule": stored, "active": True}]


def resolve_policy(name: str, path: str, kind: str | None = None, folder: str | None = None) -> type:
    """A policy class from a POLICIES name (e.g. "CoreFlowPolicy") or "module:Class",
    whose module is looked for in `folder` (the workload file's) first, then on
    sys.path; a bad name, or a policy for the other `kind` of runs ("flow" or
    "task"), is a WorkloadError at `path`."""
    try:
        with _importing_from(folder if ":" in name else None):
            policy = _resolve_policy(name)
    except ValidationError as exc:
        raise WorkloadError(path, str(exc) + _where_looked(exc, name, folder)) from None
    declared = getattr(policy, "RUN_KIND", None)
    if kind is not None and declared is not None and declared != kind:
        raise WorkloadError(path, f"{name} is a {declared}-run policy; {path} needs a {kind}-run policy "
                                  f"(e.g. Core{kind.title()}Policy)")
    return policy


@contextlib.contextmanager
def _importing_from(folder: str | None) -> Iterator[None]:
    """`folder` first on sys.path for the while (as a script's own folder is), then
    taken off again: a workload's policy module sits beside it without PYTHONPATH,
    and sys.path is left as it was. A module imported before is reused as it is."""
    if folder is None or folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    importlib.invalidate_caches()   # (a module written since the folder was last listed)
    try:
        yield
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:  # (the module's own code took it off)
            pass


def _where_looked(exc: ValidationError, name: str, folder: str | None) -> str:
    """Where a "module:Class" policy's missing module was looked for ("" when the
    module was found, or when no workload folder was searched)."""
    missing = exc.__context__
    module = name.partition(":")[0]
    if folder is None or not isinstance(missing, ModuleNotFoundError) or missing.name is None:
        return ""
    if not (module == missing.name or module.startswith(missing.name + ".")):
        return ""   # a module the policy's own module imports is missing: not a question of where
    return f" (looked beside the workload, in {folder}, then on sys.path)"


def open_engine(url: str | None, clock: ManualClock) -> Engine:
    """A fresh engine on `clock`: in memory for None/"memory", else `Engine.open(url)`."""
    if url in (None, "", "memory", "memory://"):
        return Engine(clock=clock)
    opener = getattr(Engine, "open", None)
    if opener is None:
        raise ValidationError(f"--store {shown(url)}: this build has no durability backends (Engine.open is missing)")
    return opener(url, clock=clock)


@attrs.define(slots=True)
class SimulationResult:
    workload: Workload
    metrics: Metrics
    rule_stats: RuleStats | None
    runs: list[RunSim]
    subflow_runs: list[RunSim]
    start: _dt.datetime
    end_seconds: float
    events: int
    wall_seconds: float
    interrupted: bool
    engine: Engine
    # what each enabled automation did (Automations.outcomes); empty without any
    automations: dict[str, dict[str, int]] = attrs.field(factory=dict)
    stopped_by: str = "until"    # one of STOPPED_BY
    done: int = 0                # top-level runs no longer driven: what a run target counts
    # what the reader must not miss (a run target not reached, a workload creating no runs)
    warnings: list[str] = attrs.field(factory=list)
    # the process's peak resident memory when the run ended (None where the OS does
    # not tell): what sizing a longer run needs, since every run stays in memory
    peak_memory_bytes: int | None = None


class Simulation:
    """One run of a workload. `run()` may be called once."""

    def __init__(self, workload: Workload, engine: Engine | None = None, store_url: str | None = None,
                 rule_stats: bool = True) -> None:
        self.workload = workload
        spec = workload.simulation
        # Both checks come before the store is opened: a refused workload leaves no file.
        check_period(workload)
        self.no_runs = no_run_source(workload)
        if self.no_runs is not None and spec.runs is not None:
            raise WorkloadError("simulation.runs", (
                f"the target of {spec.runs:,} flow runs (--runs or simulation.runs) can never be reached: "
                f"nothing in this workload creates flow runs ({self.no_runs})"))
        seed = spec.seed
        self.streams = Streams(seed)
        self.clock = SimClock(start=spec.start, tick=_dt.timedelta(microseconds=1))
        if engine is None:
            engine = open_engine(store_url, self.clock)
        else:
            engine._set_clock(self.clock)
        self.engine = engine
        # (The client lends the engine a run's stream for the calls that draw a retry
        # jitter; this seed is for any other draw a custom rule makes.)
        engine_rng = getattr(engine, "random", None)
        if isinstance(engine_rng, random.Random):
            engine_rng.seed(seed ^ 0xE4E)
        self.loop = EventLoop(self.clock, spec.start)
        self.metrics = Metrics()
        self.until = spec.until
        self.max_runs = spec.runs
        self.rule_stats = RuleStats() if rule_stats else None
        flow_policy = resolve_policy(workload.policies.flow, "policies.flow", "flow", workload.folder)
        task_policy = resolve_policy(workload.policies.task, "policies.task", "task", workload.folder)
        late_policy = resolve_policy("MarkLateRunsPolicy", "services.late_runs")
        if self.rule_stats is not None:
            flow_policy = self.rule_stats.instrument(flow_policy)
            task_policy = self.rule_stats.instrument(task_policy)
            late_policy = self.rule_stats.instrument(late_policy)
        self.late_policy = late_policy
        self.runs_by_id: dict[Any, RunSim] = {}   # top-level runs, in creation order
        self.finished = 0
        # The parts reach back to the simulation through a weak proxy: strong
        # references both ways would make a finished simulation, its engine and every
        # run a reference cycle, kept until the collector's next full pass (which the
        # next simulation's freezes put off).
        me = weakref.proxy(self)
        cls = type(self)
        self.client = Client(engine, self.loop, self.metrics, flow_policy, task_policy,
                             functools.partial(cls._on_final, me), functools.partial(cls._record_final, me),
                             functools.partial(cls._rescheduled, me))
        if workload.pause_expirations.enabled:
            self.client.pause_expirations_loop = workload.pause_expirations.loop
        self.services = Services(me)
        self.automations: Automations | None = None
        if workload.triggers.enabled and any(a.enabled for a in workload.automations):
            self.automations = Automations(me)
            self.client.on_flow_state = self.automations.flow_event
        self.pools: dict[str, PoolRT] = {}
        self.deployments: list[DeploymentRT] = []
        self.scheduled_deployments: list[DeploymentRT] = []
        self.workers: list[WorkerRT] = []
        self.plans: dict[str, FlowPlan] = {}
        self._ran = False
        # run() got past its checks of the store: an exception from then on is a
        # failure during the simulation, at a simulated time (engine/sim/failure.py).
        self.started = False

    # bookkeeping hooks ------------------------------------------------------------------------
    def accepting_runs(self) -> bool:
        return self.max_runs is None or len(self.runs_by_id) < self.max_runs

    def run_created(self, run: RunSim) -> None:
        self.runs_by_id[run.rec.id] = run

    def _on_final(self, run: RunSim) -> None:
        # `finished` (the `runs` target, the progress bar) counts every run no longer
        # driven; the metrics only those that reached a final state, not the ones
        # left where they were (an aborted proposal, a process lost with its worker).
        self.finished += 1
        if not run.dead:
            self._record_final(run)
        if self.max_runs is not None and self.finished >= self.max_runs:
            self.loop.stop()

    def _record_final(self, run: RunSim) -> None:
        """A top-level run reached a final state: count it as finished."""
        self.metrics.completed_at.append(self.loop.now)
        key = run.type.value
        run.recorded = (self.loop.now, key)
        self._tally_final(run, key, 1)

    def _tally_final(self, run: RunSim, key: str, step: int) -> None:
        """Add `step` (1 or -1) to the finished runs and to the run's deployment's
        count of final state `key` (the deployment rows count the final types only)."""
        metrics = self.metrics
        metrics.counters["flow_runs_finished"] += step
        if run.dep is not None:
            row = metrics.deployment(run.dep.spec.name)
            if key in row:
                row[key] += step

    def _rescheduled(self, run: RunSim) -> None:
        """A server-side change sent `run` back to SCHEDULED (its process, if it had
        one, gone): it goes into its work queue again, no longer finished if it was
        (done or left: `final` or `dead`, and counted in a final state: `recorded`)."""
        if run.final or run.dead:
            self.finished -= 1
        if run.recorded is not None:
            t, key = run.recorded
            run.recorded = None
            # completed_at is sorted (appended at the loop's time): the last entry at t.
            completed_at = self.metrics.completed_at
            del completed_at[bisect.bisect_right(completed_at, t) - 1]
            self._tally_final(run, key, -1)
        self.services.requeue(run)

    # setup ------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        wl, engine = self.workload, self.engine
        specs = {f.name: f for f in wl.flows}
        for flow in wl.flows:
            compile_plan(flow, self.plans, specs)
        for flow in wl.flows:
            self.plans[flow.name].flow_id = engine.create_flow(name=flow.name, tags=list(flow.tags)).id
        for pool_spec in wl.work_pools:
            pool = PoolRT(pool_spec)
            rec = engine.create_work_pool(pool_spec.name, concurrency_limit=pool_spec.concurrency_limit,
                                          is_paused=pool_spec.paused)
            pool.id = rec.id
            for queue in pool.queues:
                if queue.spec.name == "default":
                    # Created with the pool: its limit and pause are set as a user of
                    # Prefect sets them, by an update (which sets a paused queue PAUSED).
                    queue.id = rec.default_queue_id
                    changes: dict[str, Any] = {}
                    if queue.spec.concurrency_limit is not None:
                        changes["concurrency_limit"] = queue.spec.concurrency_limit
                    if queue.spec.paused:
                        changes["is_paused"] = True
                        queue.held = True
                    if changes:
                        engine.update_work_queue(queue.id, **changes)
                else:
                    # No priority (None): the engine gives the first free number; a given
                    # one is taken and the queues at or after it move down (as in Prefect).
                    queue.id = engine.create_work_queue(
                        rec.id, queue.spec.name, priority=queue.spec.priority,
                        concurrency_limit=queue.spec.concurrency_limit, is_paused=queue.spec.paused,
                    ).id
            # Workers poll queues in the order of the priorities the engine ended up storing.
            pool.sort_queues([q.id for q in engine.read_work_queues(rec.id)])
            self.pools[pool_spec.name] = pool
        for limit in wl.tag_limits:
            engine.create_concurrency_limit(limit.tag, limit.limit)
            self.client.tag_peaks[limit.tag] = 0
        for dep_spec in wl.deployments:
            pool = self.pools[dep_spec.pool]
            queue = pool.queue_named(dep_spec.queue)
            dep = DeploymentRT(dep_spec, self.plans[dep_spec.flow], queue, self.streams.run_prefix(dep_spec.name))
            fields: dict[str, Any] = dict(
                work_queue_id=queue.id, work_queue_name=queue.spec.name, tags=list(dep_spec.tags),
                parameters=dict(dep_spec.parameters), paused=dep_spec.paused,
            )
            if dep_spec.concurrency_limit is not None:
                fields["concurrency_limit"] = dep_spec.concurrency_limit
                fields["concurrency_options"] = {"collision_strategy": dep_spec.collision_strategy}
            schedules = deployment_schedules(dep_spec.schedule, wl.simulation.start)
            if schedules:
                fields["schedules"] = schedules
            dep.id = engine.create_deployment(dep.plan.flow_id, dep_spec.name, **fields).id
            self.deployments.append(dep)
        for k, worker_spec in enumerate(wl.workers):
            pool = self.pools[worker_spec.pool]
            # Prefect's workers heartbeat every 30 s; here only when asked, or for the foreman.
            heartbeat = worker_spec.heartbeat
            if heartbeat is None and wl.foreman.enabled:
                heartbeat = WORKER_HEARTBEAT_SECONDS
            for n in range(worker_spec.count):
                worker = WorkerRT(worker_spec, pool, f"{pool.spec.name}-worker-{k}-{n}", heartbeat)
                if worker_spec.failures is not None:
                    worker.failure_rng = self.streams.failures(worker.name)
                self.workers.append(worker)

    def _start_services(self) -> None:
        loop, services, streams = self.loop, self.services, self.streams
        wl = self.workload
        # A paused deployment's schedule creates no runs (checked as it goes: an
        # automation may pause or resume it).
        for dep in self.deployments:
            sched = dep.spec.schedule
            if sched is None:
                continue
            if sched.kind in ("interval", "cron"):
                self.scheduled_deployments.append(dep)
            elif sched.kind == "poisson":
                if not dep.paused:
                    services.book_arrival(dep)
            else:
                for k, offset in enumerate(sched.at):
                    loop.at(offset, services.fixed_arrival, (dep, k))
        if self.scheduled_deployments:
            loop.at(0.0, services.scheduler_tick)
        if wl.late_runs.enabled:
            loop.at(wl.late_runs.loop, services.late_runs_tick)
        for worker in self.workers:
            # A worker's first heartbeat comes as it starts (its offset from its own stream).
            services.start_worker(worker, streams.worker(worker.name).uniform(0.0, worker.spec.poll_interval))
            services.book_failure(worker)
            for outage in worker.spec.outages:
                loop.at(outage.at, services.outage_start, (worker, outage))
        if wl.foreman.enabled:
            loop.at(0.0, services.foreman_tick)
        if self.automations is not None:
            self.automations.start()
        loop.at(0.0, self._sample)

    # what automations' actions do to pools and queues ------------------------------------------------
    def pause_pool(self, pool: PoolRT, paused: bool) -> None:
        """Pause or resume `pool` as Prefect's work-pool route does (its workers take
        nothing from it at their polls while it is paused; the route succeeds even
        when the pool already is so)."""
        self.engine.update_work_pool(pool.id, is_paused=paused)
        pool.paused = paused

    def pause_queue(self, queue: QueueRT, paused: bool) -> None:
        """Pause or resume `queue` as Prefect's work-queue route does; see pause_pool."""
        self.engine.update_work_queue(queue.id, is_paused=paused)
        queue.paused = paused
        queue.held = paused   # (the update sets PAUSED, or moves it off PAUSED)

    def pause_deployment(self, dep: DeploymentRT, paused: bool) -> None:
        """Pause or resume `dep` as Prefect's deployment routes do. Paused, its
        schedule creates no runs (nor, by the simulator's convention, its Poisson or
        fixed arrivals), and its never-run auto-scheduled runs still SCHEDULED (Late
        ones too) are deleted: no worker takes them, and they count towards `--runs`
        but in no final state. Resumed, Prefect's fast scheduler for recently
        updated deployments schedules it at its next 5 s pass, from then on."""
        if not paused:
            self.engine.resume_deployment(dep.id)
            if dep.paused:
                dep.paused = False
                self._resumed(dep)
            return
        dep.paused = True
        # Only auto-scheduled runs can go, and each carries that tag (the read after
        # the pause has the last word).
        waiting = self.engine.read_flow_runs(flow_run_filter={
            "deployment_id": {"any_": [dep.id]}, "state": {"type": {"any_": ["SCHEDULED"]}},
            "tags": {"all_": ["auto-scheduled"]}})
        self.engine.pause_deployment(dep.id)
        read = self.engine.read_flow_run
        gone = set()
        for rec in waiting:
            if read(rec.id) is None:
                gone.add(rec.expected_start_time)
                self.client.flow_deleted(self.runs_by_id[rec.id])
        if gone:
            # The dates of the deleted runs are free again: after a resume the scheduler
            # creates them anew if they are still ahead (Prefect's walks the dates from
            # now and skips those a run holds).
            dep.future = [t for t in dep.future if self.loop.to_datetime(t) not in gone]
            dep.cursor = dep.future[-1] if dep.future else None
            # (_next_date's memo stays right: it is keyed by the cursor it was made for.)

    def _resumed(self, dep: DeploymentRT) -> None:
        sched = dep.spec.schedule
        if sched is None or not self.accepting_runs():
            return
        if sched.kind == "poisson":
            if not dep.arriving:
                self.services.book_arrival(dep)
        elif sched.kind in ("interval", "cron"):
            self.loop.at(service_pass_at(self.loop.now, _RECENT_SCHEDULER_EVERY), self.services.recent_scheduler_pass,
                         dep)

    def _sample_now(self) -> None:
        self.metrics.sample(self.loop.now, sum(1 for w in self.workers if w.down))

    def _sample(self, _: Any = None) -> None:
        self._sample_now()
        self.loop.after(self.workload.simulation.sample_interval, self._sample)

    # running ------------------------------------------------------------------------------------------
    def run(self, on_progress: Callable[["Simulation"], None] | None = None) -> SimulationResult:
        """Run to the stop condition (or Ctrl-C, which stops between engine calls:
        every call is atomic, so the store stays consistent)."""
        if self._ran:
            raise RuntimeError("a Simulation runs once")
        self._ran = True
        spec = self.workload.simulation
        horizon = spec.horizon
        wall = time.perf_counter()
        interrupted = False
        if self.engine.read_flows():
            raise ValidationError("the store already holds flows: simulate into an empty store (a new file)")
        # Names and ids drawn inside the engine come from generators seeded alike.
        seed_slugs(spec.seed)
        seed_ids(spec.seed ^ 0x5EED)
        # The records a simulation creates live until its end: freezing the survivors
        # every few thousand events keeps the cyclic GC from rescanning them (~35 %
        # faster at 10,000 runs). Undone at the end unless the caller froze objects.
        unfreeze = gc.get_freeze_count() == 0
        # Between two freezes the loop allocates a few thousand container objects and
        # hardly any cyclic garbage (a few hundred objects in 3,000 runs), so young
        # collections only rescan live records: a threshold above that count skips
        # them (~5 % faster). Restored at the end.
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])

        stop_asked: list[bool] = []

        def tick() -> None:
            gc.freeze()
            if stop_asked:
                raise KeyboardInterrupt  # here, between two events: no engine call is cut short
            if on_progress is not None:
                on_progress(self)

        restore = _defer_sigint(stop_asked)
        self.started = True
        try:
            self._setup()
            self._start_services()
            self.loop.run(horizon, on_tick=tick)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self._drop_what_waits()
            if restore is not None:
                signal.signal(signal.SIGINT, restore)
            seed_ids(None)
            gc.set_threshold(*threshold)
            if unfreeze:
                gc.unfreeze()
        if not interrupted:
            self._sample_now()
        for worker in self.workers:
            if worker.down:   # still down at the end: counted up to it
                self.metrics.worker_down(worker.name, worker.down_since, self.loop.now)
        stopped_by = self._stopped_by(interrupted)
        self.metrics.peaks = self._peaks()
        return SimulationResult(
            workload=self.workload, metrics=self.metrics, rule_stats=self.rule_stats, runs=list(self.runs_by_id.values()),
            subflow_runs=self.client.children_runs, start=spec.start, end_seconds=self.loop.now,
            events=self.loop.events, wall_seconds=time.perf_counter() - wall, interrupted=interrupted,
            engine=self.engine,
            automations=self.automations.outcomes() if self.automations is not None else {},
            stopped_by=stopped_by, done=self.finished, warnings=self._warnings(stopped_by),
            peak_memory_bytes=peak_memory_bytes(),
        )

    def _peaks(self) -> dict[str, Any]:
        """The most runs each limit's population reached at once, beside the limit
        the workload sets (None: unlimited): flow runs PENDING or RUNNING per work pool
        and queue, PENDING, RUNNING or CANCELLING per deployment, task runs RUNNING
        per tag with a limit. O(pools + queues + deployments + tags)."""
        def row(limit: int | None, peak: int) -> dict[str, Any]:
            return {"limit": limit, "peak": peak}
        return {
            "work_pools": {name: row(pool.spec.concurrency_limit, pool.peak) for name, pool in self.pools.items()},
            "work_queues": {name: {q.spec.name: row(q.spec.concurrency_limit, q.peak) for q in pool.queues}
                            for name, pool in self.pools.items()},
            "deployments": {dep.spec.name: row(dep.spec.concurrency_limit, dep.peak) for dep in self.deployments},
            "tags": {limit.tag: row(limit.limit, self.client.tag_peaks.get(limit.tag, 0))
                     for limit in self.workload.tag_limits},
        }

    def _drop_what_waits(self) -> None:
        """The run is over: drop what still waits in it (events, runs queued for a
        worker or held by one). Each links back to what holds it, so left in place
        they would keep the finished simulation's runs in reference cycles."""
        self.loop.close()
        for pool in self.pools.values():
            for queue in pool.queues:
                queue.heap.clear()
        for worker in self.workers:
            worker.runs.clear()

    def _stopped_by(self, interrupted: bool) -> str:
        """Which of STOPPED_BY ended the run (a target reached wins over the time
        running out at the same moment)."""
        if interrupted:
            return "interrupted"
        if self.max_runs is not None and self.finished >= self.max_runs:
            return "runs"
        return "until" if self.until is not None else "max_time"

    def _warnings(self, stopped_by: str) -> list[str]:
        """What the summary ends with and report.json lists: a run that simulated
        nothing but workers, a run target the simulation stopped short of (a limit
        the reader may not know was there, and the setting that moves it)."""
        spec = self.workload.simulation
        out = []
        if self.no_runs is not None:
            out.append(f"nothing in this workload creates flow runs ({self.no_runs}): "
                       "only its workers and services were simulated")
        if spec.runs is not None and stopped_by in ("until", "max_time"):
            reached = (f"the run target was not reached: {len(self.runs_by_id):,} of {spec.runs:,} flow runs "
                       f"created and {self.finished:,} done (finished or left undriven) when ")
            if stopped_by == "until":
                out.append(reached + f"the simulated duration, simulation.until ({format_duration(spec.until)}), "
                                     "ran out")
            else:
                days = max(1, math.ceil(2 * spec.max_time / 86400))
                out.append(reached + f"the time limit, simulation.max_time ({format_duration(spec.max_time)} here, "
                                     f"30 days unless set), ran out; raise it, e.g. --set simulation.max_time={days}d, "
                                     "or stop by time with --until")
        return out


def peak_memory_bytes() -> int | None:
    """This process's peak resident set size so far, in bytes; None where the
    `resource` module is missing (Windows). O(1)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024   # macOS counts bytes, Linux KiB


def _defer_sigint(stop_asked: list[bool]) -> Any:
    """Make Ctrl-C ask the loop to stop at its next tick (every 2,048 events: tens of
    ms) rather than raise wherever it lands: a KeyboardInterrupt inside an engine
    call can strike between a transaction's opening and its `try`, or inside a
    rollback or a backend's write, and leave the store half-changed. A second
    Ctrl-C raises at once. Returns the handler to put back, or None where the
    handler cannot be changed (not the main thread) or SIGINT is ignored."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN or previous is None:
        return None

    def on_sigint(signum: int, frame: Any) -> None:
        if stop_asked:
            raise KeyboardInterrupt
        stop_asked.append(True)

    signal.signal(signal.SIGINT, on_sigint)
    return previous
