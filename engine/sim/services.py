"""Server-side services and workers of a simulated deployment.

* Scheduler: every `loop` seconds (first at the start), creates auto-scheduled flow
  runs for interval and cron deployments as Prefect's scheduler does: walking the
  schedule's dates from now, it stops after the first date that is at least
  `min_scheduled_time` ahead once `min_runs` dates are counted (the runs already
  created for those dates count), and never goes past `max_runs` dates or
  `max_scheduled_time` ahead (that date itself included). Each run gets the
  idempotency key ``scheduled <deployment id> <date>`` (the date as Python prints
  an aware datetime, in a cron's timezone if it has one, else UTC:
  ``2024-01-01 00:05:00+00:00``), the tags
  ``["auto-scheduled", *deployment tags]`` and the state
  ``Scheduled(message="Flow run scheduled")``. Poisson and explicit ("at")
  arrivals create runs scheduled for the moment they arrive, with the deployment's
  tags and a plain Scheduled state, like a run created from a deployment by hand.
  A paused deployment's schedule and arrivals create nothing; resumed, its
  schedule is served within 5 s (Prefect's RecentDeploymentsScheduler).
* Late runs: every `loop` seconds, runs stored SCHEDULED and named "Scheduled"
  more than `mark_late_after` past their scheduled time are proposed
  `Late(scheduled_time=next_scheduled_start_time)` under MarkLateRunsPolicy, as
  Prefect's query finds them: those no worker will take (their PENDING proposal
  was aborted) included.
* Pause expirations (FailExpiredPauses, every `loop` seconds from the start): each
  accepted pause books one event, the first pass after its timeout, which forces
  a still-PAUSED run to Failed (`Client._expire_pause`); no periodic events.
* Workers: poll their pool every `poll_interval`; take due runs (scheduled up to
  `prefetch` ahead) queue by queue in the order of the priorities the engine
  stored, within the pool's and queue's concurrency limits (counted, as Prefect's
  worker query counts them, from runs in PENDING or RUNNING) and the worker's own
  limit (runs it submitted that are still driven); propose PENDING; start the
  infrastructure, which proposes RUNNING after a drawn startup time. With a
  `heartbeat` interval a worker also heartbeats as it starts and every interval
  after (`worker_heartbeat` with `mark_pool_ready`, as Prefect's API route does),
  so the store holds its worker and a NOT_READY pool turns READY. During one of its
  `outages` a worker neither polls nor heartbeats (by default the runs it already
  submitted go on: their infrastructure does not need it); it starts again when the
  outage ends.
  With `failures`, each worker also fails at random: after an exponentially
  distributed up time (mean `mean_uptime`, counted from the simulation's start and
  then from each restart) it goes down as in an outage for a drawn `repair` time.
  An outage voids the failure a worker had coming (the next is drawn when it
  restarts); an outage that begins during a repair keeps the worker down until
  both are over. An outage's or the failures' `runs` says what becomes of the
  runs the worker submitted as it goes down: they go on ("continue"), are
  reported CRASHED ("crash") or are left in their states ("lost"); see
  `Client.terminate` and `Client.lose`.
* Foreman (when enabled, every `loop` seconds from the start): one
  `Engine.run_foreman_once` pass with the workload's settings, so quiet workers go
  OFFLINE and their pools NOT_READY. Worker polls then also record themselves as
  Prefect's poll route does (`mark_work_queues_ready` for the pool's queues, then
  `mark_deployments_ready` for their deployments), which is what keeps queues and
  deployments READY.
"""
from __future__ import annotations

import datetime as _dt
import heapq
from typing import TYPE_CHECKING, Any

from ..states import TERMINAL_STATES as _FINAL, Late, Pending, Scheduled, StateType
from .model import DeploymentRT, PoolRT, QueueRT, RunSim, WorkerRT
from .streams import Streams, seed_run_name, stream

if TYPE_CHECKING:  # pragma: no cover
    from .simulation import Simulation

__all__ = ["Services"]

_INF = float("inf")
_ONE_US = _dt.timedelta(microseconds=1)
_SCHEDULED = StateType.SCHEDULED


class Services:
    """Scheduler, late-runs service, foreman and workers of one simulation."""

    def __init__(self, sim: "Simulation") -> None:
        self.sim = sim
        self.loop = sim.loop
        self.engine = sim.engine
        self.client = sim.client
        self.metrics = sim.metrics
        self.counters = sim.metrics.counters
        self.late_heap: list[tuple[float, int, RunSim]] = []
        # Polls record themselves only for the foreman: two engine calls per poll.
        self.record_polls = sim.workload.foreman.enabled
        self._seq = 0

    # run creation -------------------------------------------------------------------------------
    def create_run(self, dep: DeploymentRT, t: float, identity: str, auto: bool,
                   parameters: dict[str, Any] | None = None, key: str | None = None,
                   job_variables: dict[str, Any] | None = None) -> RunSim | None:
        """Create a SCHEDULED flow run of `dep` for virtual time `t`, auto-scheduled (as
        Prefect's scheduler does) or not (as its create_flow_run_from_deployment route
        does, with `parameters` over the deployment's, an idempotency `key` and
        `job_variables`); None once the simulation stopped creating runs. `identity`
        seeds the run's random stream (Streams): its name, its cancellation and all
        that its client draws come from it."""
        sim = self.sim
        if not sim.accepting_runs():
            return None
        spec = dep.spec
        rng = stream(identity)
        seed_run_name(rng)
        when = self.loop.to_datetime(t)
        queue = dep.queue
        if auto:
            # What Prefect's scheduler inserts (models/deployments.py,
            # _generate_scheduled_flow_runs): f"scheduled {id} {date}" prints the
            # date with a space between date and time, in the schedule's timezone
            # (a cron's own, else UTC). It leaves job_variables to the column's
            # default ({}) and does not hydrate parameters.
            cron = spec.schedule.cron if spec.schedule is not None else None
            date = when if cron is None or cron.zone is None else when.astimezone(cron.zone)
            rec = self.engine.create_flow_run(
                flow_id=dep.plan.flow_id, deployment_id=dep.id, work_queue_id=queue.id,
                work_queue_name=queue.spec.name, parameters=spec.parameters,  # (copied by the engine)
                tags=["auto-scheduled", *spec.tags], idempotency_key=f"scheduled {dep.id} {date.isoformat(' ')}",
                auto_scheduled=True, empirical_policy=dep.plan.policy,
                state=Scheduled(scheduled_time=when, message="Flow run scheduled"),
            )
        else:
            # Through the deployment's create_flow_run route, as a client's call or
            # Prefect's run-deployment action goes (hydration and checks included).
            rec = self.engine.create_flow_run_from_deployment(
                dep.id, parameters=parameters or {}, idempotency_key=key, job_variables=job_variables,
                empirical_policy=dep.plan.policy, state=Scheduled(scheduled_time=when),
            )
        run = RunSim(rec, dep.plan, dep, identity, rng)
        self.client.flow_created(run)
        dep.created += 1
        self.metrics.deployment(spec.name)["created"] += 1
        self.counters["flow_runs_created"] += 1
        sim.run_created(run)
        self.enqueue(run, t)
        self._watch_late(run)
        cancel = dep.plan.spec.cancel
        if cancel is not None and cancel.probability and rng.random() < cancel.probability:
            # `after` counts from the run's scheduled start, not from its creation: the
            # scheduler makes runs an hour or more ahead, and a cancel due before the
            # start would find the run still SCHEDULED whatever `after` says.
            self.loop.at(max(self.loop.now, t) + cancel.after.sample(rng), self.client.cancel, run)
        return run

    def enqueue(self, run: RunSim, t: float) -> None:
        """(Re)file a SCHEDULED run in its work queue for time `t`; older entries go stale."""
        run.token += 1
        run.sched_t = t
        self._seq += 1
        heapq.heappush(run.queue.heap, (t, self._seq, run.token, run))  # type: ignore[union-attr]

    def enqueue_at(self, run: RunSim, when: _dt.datetime | None) -> None:
        """(Re)file a SCHEDULED run for its scheduled time `when` (None: now)."""
        self.enqueue(run, self.loop.to_seconds(when) if when is not None else self.loop.now)

    def requeue(self, run: RunSim) -> None:
        """`run` is SCHEDULED again in its work queue (a server-side change): filed for
        its next scheduled start, where polls and the late-runs service find it."""
        self.enqueue_at(run, run.rec.next_scheduled_start_time)
        self._watch_late(run)

    def _watch_late(self, run: RunSim) -> None:
        """The late-runs service looks at `run` once its scheduled time (as filed) is
        `mark_late_after` past."""
        self._seq += 1
        heapq.heappush(self.late_heap, (run.sched_t, self._seq, run))

    # scheduler -----------------------------------------------------------------------------------
    def scheduler_tick(self, _: Any = None) -> None:
        """Prefect's scheduler service: every `loop` seconds, each unpaused scheduled
        deployment's runs."""
        sim = self.sim
        for dep in sim.scheduled_deployments:
            if not dep.paused:
                self._schedule(dep)
        if sim.accepting_runs():
            self.loop.after(sim.workload.scheduler.loop, self.scheduler_tick)

    def recent_scheduler_pass(self, dep: DeploymentRT) -> None:
        """Prefect's RecentDeploymentsScheduler, for one deployment: every 5 s it
        schedules the unpaused deployments updated in the last 6 s (here: resumed)."""
        if not dep.paused and self.sim.accepting_runs():
            self._schedule(dep)

    def _schedule(self, dep: DeploymentRT) -> None:
        """The runs `dep`'s schedule needs now (models.deployments.schedule_runs as
        the scheduler services call it)."""
        sim = self.sim
        spec = sim.workload.scheduler
        now = self.loop.now
        horizon_min = now + spec.min_scheduled_time
        horizon_max = now + spec.max_scheduled_time
        stop_at = sim.until if sim.until is not None else _INF
        min_runs, max_runs = spec.min_runs, spec.max_runs
        future = dep.future
        while future and future[0] <= now:
            future.pop(0)
        # Prefect walks the dates from now, those already created included, and
        # stops right after the first one with at least `min_runs` dates counted
        # and at least `min_scheduled_time` ahead: the created ones are
        # consecutive dates, so the walk goes on past them iff the last does not
        # satisfy both.
        if future and len(future) >= min_runs and future[-1] >= horizon_min:
            return
        t = self._next_date(dep, now)
        while len(future) < max_runs and t <= horizon_max and t <= stop_at:
            if self.create_run(dep, t, Streams.scheduled_run(dep.run_prefix, t), auto=True) is None:
                break
            future.append(t)
            dep.cursor = t
            if len(future) >= min_runs and t >= horizon_min:
                break
            t = self._next_date(dep, t)

    def _next_date(self, dep: DeploymentRT, after: float) -> float:
        """First schedule date at or after `after` and strictly after the last one
        created. O(1) for intervals, a cron walk otherwise."""
        sched = dep.spec.schedule
        base = dep.cursor
        if sched.kind == "interval":  # type: ignore[union-attr]
            step, anchor = sched.interval, sched.anchor  # type: ignore[union-attr]
            lo = after if base is None else max(after, base + step)
            k = max(0.0, -(-(lo - anchor) // step))
            return anchor + k * step
        # The scheduler asks every tick with a later `after` and, until it creates a
        # run, the same cursor: the last answer stands while it is not before `after`
        # (no date lies between the earlier `after` and it), saving a cron walk.
        memo = dep.next_memo
        if memo is not None and memo[1] == base and memo[0] <= after <= memo[2]:
            return memo[2]
        start = self.loop.to_datetime(after) - _ONE_US
        if base is not None:
            start = max(start, self.loop.to_datetime(base))
        when = sched.cron.next_after(start)  # type: ignore[union-attr]
        # (None: no date left before the end of datetime's range; never in the period
        # the simulation checked at its start, but a look-ahead may go past it)
        t = _INF if when is None else self.loop.to_seconds(when)
        dep.next_memo = (after, base, t)
        return t

    def book_arrival(self, dep: DeploymentRT) -> None:
        """`dep`'s next Poisson arrival (its process runs while it is not paused), its
        gap drawn from the deployment's own stream."""
        dep.arriving = True
        rng = dep.arrival_rng
        if rng is None:
            rng = dep.arrival_rng = self.sim.streams.arrivals(dep.spec.name)
        self.loop.after(rng.expovariate(1.0 / dep.spec.schedule.interval), self.arrival, dep)  # type: ignore[union-attr]

    def arrival(self, dep: DeploymentRT) -> None:
        """A Poisson arrival: a run scheduled now, then the next arrival; none once
        paused (resuming books the next: the process is memoryless). The run is
        identified by the arrival's ordinal."""
        dep.arriving = False
        k = dep.arrivals
        dep.arrivals += 1
        if dep.paused:
            return
        identity = Streams.arrival_run(dep.run_prefix, k)
        if self.create_run(dep, self.loop.now, identity, auto=False) is not None and self.sim.accepting_runs():
            self.book_arrival(dep)

    def fixed_arrival(self, booking: tuple[DeploymentRT, int]) -> None:
        """The arrival at `at[k]` of a deployment: a run scheduled now, identified by `k`."""
        dep, k = booking
        if not dep.paused:
            self.create_run(dep, self.loop.now, Streams.arrival_run(dep.run_prefix, k), auto=False)

    # late runs -------------------------------------------------------------------------------------
    def late_runs_tick(self, _: Any = None) -> None:
        spec = self.sim.workload.late_runs
        threshold = self.loop.now - spec.mark_late_after
        heap = self.late_heap
        client = self.client
        policy = self.sim.late_policy
        while heap and heap[0][0] <= threshold:
            _, _, run = heapq.heappop(heap)
            rec = run.rec
            # What Prefect's query selects is what is stored: a run SCHEDULED and named
            # "Scheduled", whether or not a client still drives it (one whose PENDING
            # proposal was aborted stays so, and is marked Late as any other); not one
            # a deployment's pause deleted.
            if run.deleted or rec.state_type is not _SCHEDULED or rec.state_name != "Scheduled" \
                    or rec.next_scheduled_start_time is None:
                continue
            # As Prefect's query, by the run's next scheduled start: an entry filed for
            # an earlier time (the run was re-filed since) is filed again for this one.
            due = self.loop.to_seconds(rec.next_scheduled_start_time)
            if due > threshold:
                self._seq += 1
                heapq.heappush(heap, (due, self._seq, run))
                continue
            client.flow_call(run, Late(scheduled_time=rec.next_scheduled_start_time), policy=policy)
            if rec.state_name == "Late":
                self.counters["late_marked"] += 1
        self.loop.after(spec.loop, self.late_runs_tick)

    # workers -----------------------------------------------------------------------------------------
    def start_worker(self, worker: WorkerRT, delay: float) -> None:
        """The worker's first poll (and heartbeat) `delay` seconds from now."""
        ticket = (worker, worker.epoch)
        loop = self.loop
        loop.after(delay, self.poll, ticket)
        if worker.heartbeat is not None:
            loop.after(delay, self.heartbeat, ticket)

    def book_failure(self, worker: WorkerRT) -> None:
        """With `failures`, the worker's next failure after a drawn up time from now.
        Only its own stream and its own down times decide when: the start offset
        (drawn from the worker's other stream) does not, so other workload changes
        leave its failures alone."""
        failures = worker.spec.failures
        if failures is not None:
            uptime = worker.failure_rng.expovariate(1.0 / failures.mean_uptime)  # type: ignore[union-attr]
            self.loop.after(uptime, self.failure, (worker, worker.epoch))

    def outage_start(self, booking: tuple[WorkerRT, Any]) -> None:
        worker, outage = booking
        self.counters["worker_outages"] += 1
        self._go_down(worker, outage.duration, outage.runs)

    def failure(self, ticket: tuple[WorkerRT, int]) -> None:
        worker, epoch = ticket
        if epoch != worker.epoch:
            return   # it went down (an outage) before this failure came: drawn again at its restart
        self.counters["worker_failures"] += 1
        failures = worker.spec.failures
        self._go_down(worker, failures.repair.sample(worker.failure_rng), failures.runs)  # type: ignore[union-attr]

    def _go_down(self, worker: WorkerRT, duration: float, runs: str) -> None:
        if worker.down == 0:
            worker.epoch += 1   # its booked polls, heartbeats and failure are void
            worker.down_since = self.loop.now
        worker.down += 1
        self.loop.after(duration, self.outage_end, worker)
        if runs != "continue":
            self._take_runs_down(worker, runs)

    def _take_runs_down(self, worker: WorkerRT, runs: str) -> None:
        """The runs the worker submitted die with it ("crash" or "lost"), oldest
        submission first. A run whose infrastructure is still starting (its flow
        engine not yet running, so nothing catches the signal) is lost even with
        "crash". A run waiting in-process for its retry (SCHEDULED, AwaitingRetry)
        is not lost: a worker's poll finds it as any scheduled run of the queue, so
        it goes back there (re-filing bumps its token: its retry event goes stale).
        A run being cancelled is left to its cancellation: it ends CANCELLED after
        its cancel latency, as without the failure (in Prefect the restarted worker
        finds it CANCELLING and, its process gone, marks it so)."""
        client = self.client
        for run in [r for r in worker.runs if not r.cancelling]:
            if runs == "crash" and run.booted:
                client.terminate(run)
            elif run.type is _SCHEDULED:
                self.counters["worker_runs_requeued"] += 1
                client.release_worker(run)
                self.enqueue_at(run, run.rec.next_scheduled_start_time)
            else:
                client.lose(run)

    def outage_end(self, worker: WorkerRT) -> None:
        worker.down -= 1
        if worker.down == 0:
            self.sim.metrics.worker_down(worker.name, worker.down_since, self.loop.now)
            self.start_worker(worker, 0.0)   # (nothing was booked while it was down)
            self.book_failure(worker)

    def poll(self, ticket: tuple[WorkerRT, int]) -> None:
        worker, epoch = ticket
        if epoch != worker.epoch:
            return   # booked before an outage
        loop = self.loop
        wspec = worker.spec
        loop.after(wspec.poll_interval, self.poll, ticket)
        pool = worker.pool
        if self.record_polls:
            self._record_poll(pool)
        pspec = pool.spec
        if pool.paused:
            return
        horizon = loop.now + wspec.prefetch
        cap = _INF if pspec.concurrency_limit is None else pspec.concurrency_limit - pool.active
        wcap = _INF if wspec.limit is None else wspec.limit - len(worker.runs)
        for queue in pool.queues:
            heap = queue.heap
            if not heap or heap[0][0] > horizon:
                continue   # most polls: nothing due in this queue
            if queue.paused:
                continue
            limit = queue.spec.concurrency_limit
            qcap = cap if limit is None else min(cap, limit - queue.active)
            while heap and heap[0][0] <= horizon:
                _, _, token, run = heap[0]
                if token != run.token or run.final or run.dead or run.type is not _SCHEDULED:
                    heapq.heappop(heap)
                    continue
                if qcap <= 0 or wcap <= 0:
                    self.counters["worker_limit_deferrals" if wcap <= 0 < qcap else "pool_limit_deferrals"] += 1
                    break
                heapq.heappop(heap)
                if self._submit(worker, queue, run):
                    qcap -= 1
                    cap -= 1
                    wcap -= 1

    def _record_poll(self, pool: PoolRT) -> None:
        # What Prefect's poll route does after reading: the pool's queues are polled
        # (the NOT_READY ones become READY, the others keep their status), then their
        # deployments READY. Here a queue is NOT_READY or READY unless an automation
        # paused it (a queue created paused is NOT_READY, as in Prefect), and marking a
        # READY queue READY again writes what a poll writes: so every queue but those
        # goes in the "ready" list, without reading its status.
        ids = pool.queue_ids
        if any(queue.held for queue in pool.queues):
            self.engine.mark_work_queues_ready(polled_work_queue_ids=[q.id for q in pool.queues if q.held],
                                               ready_work_queue_ids=[q.id for q in pool.queues if not q.held])
        else:
            self.engine.mark_work_queues_ready(ready_work_queue_ids=ids)
        self.engine.mark_deployments_ready(work_queue_ids=ids)

    def heartbeat(self, ticket: tuple[WorkerRT, int]) -> None:
        worker, epoch = ticket
        if epoch != worker.epoch:
            return
        interval = worker.heartbeat
        self.loop.after(interval, self.heartbeat, ticket)
        self.engine.worker_heartbeat(worker.pool.id, worker.name, heartbeat_interval_seconds=max(1, round(interval)),
                                     mark_pool_ready=True)

    # foreman ---------------------------------------------------------------------------------------------
    def foreman_tick(self, _: Any = None) -> None:
        spec = self.sim.workload.foreman
        done = self.engine.run_foreman_once(
            inactivity_heartbeat_multiple=spec.inactivity_heartbeat_multiple,
            fallback_heartbeat_interval_seconds=spec.fallback_heartbeat_interval,
            deployment_last_polled_timeout_seconds=spec.deployment_last_polled_timeout,
            work_queue_last_polled_timeout_seconds=spec.work_queue_last_polled_timeout,
        )
        if done:
            counters = self.counters
            counters["workers_marked_offline"] += len(done.workers_offline)
            counters["pools_marked_not_ready"] += len(done.work_pools_not_ready)
            counters["deployments_marked_not_ready"] += len(done.deployments_not_ready)
            counters["queues_marked_not_ready"] += len(done.work_queues_not_ready)
        self.loop.after(spec.loop, self.foreman_tick)

    def _submit(self, worker: WorkerRT, queue: QueueRT, run: RunSim) -> bool:
        client = self.client
        result = client.flow_call(run, Pending())
        status = result.status
        if status == "ACCEPT":
            run.worker = worker
            worker.runs[run] = None
            run.booted = False
            wait = self.loop.now - run.sched_t
            self.metrics.queue_waits.append(wait if wait > 0 else 0.0)
            # (A ticket: the run may be sent back to its queue before its infrastructure is up.)
            # Its start-up is drawn from the run's stream: a run boots in the same time
            # whenever, and by whichever worker of a group, it is taken.
            self.loop.after(worker.spec.startup.sample(run.rng), client._running_due, (run, run.token))
            return True
        if status == "REJECT":
            returned = result.state
            if run.type in _FINAL:
                self.counters["deployment_cancel_new"] += 1
                client._finalize(run)
            elif returned is not None and returned.type is _SCHEDULED:
                self.counters["deployment_slot_waits"] += 1
                self.enqueue_at(run, returned.state_details.scheduled_time)
        elif status == "WAIT":
            self.enqueue(run, self.loop.now + result.details.delay_seconds)
        else:
            client._abandon_run(run)
        return False

