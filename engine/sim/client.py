"""The simulated Prefect client: it drives flow runs and their task runs through the
engine's orchestration the way Prefect's flow and task engines do.

Every state change is a `set_flow_run_state` / `set_task_run_state` call under the
configured policies, and the answer is honoured like a client would: ACCEPT —
carry on; WAIT — propose again after `delay_seconds`; REJECT — continue from the
returned state (AwaitingRetry: propose RUNNING at its scheduled time; Cached:
the task is done; Paused "NotReady": hold the task until the flow resumes);
ABORT — stop driving that run.

A flow body is its plan's task graph: a task run is created (PENDING) when all its
upstream task runs completed, then proposed RUNNING, then COMPLETED or FAILED
after a drawn duration. A failed task skips everything downstream and fails the
flow attempt; flow retries re-drive the same task runs and, as Prefect's flow
engine does, load the subflow run of a parent task run that is COMPLETED (or
final, on a first attempt) and propose RUNNING for it instead of creating another.
Crashes, pauses and cancellations are drawn per run from the flow spec; a pause
whose timeout passes is failed by the server's pause-expiration service on its
next pass (a later resume finds the run no longer paused and asks nothing).

Every draw about a run comes from its own stream (`run.rng`, streams.py): at the
start of each attempt its crash point, its pause and each task node's first try
(duration, failure, cache choice; FlowPlan.draw_attempt); task retries draw from
it as they come, in the run's own order.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable

from ..records import TaskRunResult
from ..states import (
    TERMINAL_STATES, Cancelled, Cancelling, Completed, Crashed, Failed, Paused, Pending, Running, State,
    StateDetails, StateType,
)
from .loop import service_pass_at
from .metrics import Metrics
from .model import ACTIVE, DONE, FAILED, SKIPPED, WAITING, FlowPlan, RunSim
from .streams import seed_run_name, stream, subflow_key

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from .loop import EventLoop

__all__ = ["Client"]

_SCHEDULED = StateType.SCHEDULED
_PENDING = StateType.PENDING
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_PAUSED = StateType.PAUSED
_CANCELLING = StateType.CANCELLING
_FINAL = TERMINAL_STATES
# What counts against pool and queue limits: Prefect's worker query counts flow runs
# in RUNNING or PENDING only (a CANCELLING run no longer holds a slot).
_OCCUPYING = frozenset({_PENDING, _RUNNING})
# What a deployment's concurrency limit counts: its slots are taken on entering
# PENDING and given back on leaving these states.
_HOLDING_DEPLOYMENT_SLOT = frozenset({_PENDING, _RUNNING, _CANCELLING})
# `result.status` is a str enum: it is compared to plain strings (its `.value` is a
# comparatively slow enum property, read on every engine call otherwise).


class Client:
    """Drives runs. `on_final(run)` is told when a top-level run is no longer driven:
    it reached a final state, or it was left where it was (`run.dead`: an aborted
    proposal, a process lost with its worker). `on_final_state(run)` is told when
    such a left run reaches a final state later all the same (the pause-expiration
    service fails it). `on_rescheduled(run)` is told when a server-side change sends
    a top-level run back to SCHEDULED, so that workers take it again; it is told
    before the run is driven afresh (`final` and `dead` still say whether it had been
    counted finished)."""

    def __init__(self, engine: "Engine", loop: "EventLoop", metrics: Metrics,
                 flow_policy: Any, task_policy: Any, on_final: Callable[[RunSim], None],
                 on_final_state: Callable[[RunSim], None], on_rescheduled: Callable[[RunSim], None]) -> None:
        self.engine = engine
        self.loop = loop
        self.metrics = metrics
        self.flow_policy = flow_policy
        self.task_policy = task_policy
        self.on_final = on_final
        self.on_final_state = on_final_state
        self.on_rescheduled = on_rescheduled
        self._set_flow = engine.set_flow_run_state
        self._set_task = engine.set_task_run_state
        self._counters = metrics.counters
        self._task_counts = metrics.task_counts
        self._after = loop.after   # bound once: called for every task attempt
        self.children_runs: list[RunSim] = []
        self._subflow_sims: dict[Any, RunSim] = {}   # subflow run id -> its RunSim
        # Seconds between two passes of the server's pause-expiration service (its
        # passes start with the simulation); None: the service is off.
        self.pause_expirations_loop: float | None = None
        # Told of every new state of a flow run (Prefect's state-change event): the
        # automations, when the workload has some. None keeps flow calls lean.
        self.on_flow_state: Callable[[RunSim], None] | None = None
        self._resume_route = engine.resume_flow_run
        # Per tag with a concurrency limit: the most task runs RUNNING at once (the
        # simulation enters each limited tag at 0; empty: nothing to count).
        self.tag_peaks: dict[str, int] = {}
        self._tags_running: dict[str, int] = {}

    # engine calls with bookkeeping ------------------------------------------------------------
    def flow_call(self, run: RunSim, state: State, policy: Any = None, force: bool = False) -> Any:
        """Propose `state` for `run`'s flow run (`force`: as the server's services force
        one); keeps state counts and queue occupancy and tells `on_flow_state` of a
        new state. O(rules)."""
        rec = run.rec
        before = rec.state_id
        result = self._set_flow(rec.id, state, flow_policy=policy or self.flow_policy, force=force)
        self._observe(run, before)
        return result

    def _observe(self, run: RunSim, before: Any) -> None:
        """Bookkeeping after an engine call on `run`'s flow run, whose state id was
        `before`: state counts, queue occupancy, the parent task run, the event."""
        rec = run.rec
        new = rec.state_type
        old = run.type
        if new is not old:
            self.flow_moved(run, old, new)
        if run.parent is not None:
            self._sync_parent_task(run)
        if self.on_flow_state is not None and rec.state_id != before:
            self.on_flow_state(run)

    def server_call(self, run: RunSim, state: State) -> Any:
        """A state change the server makes for `run` on its own (an automation's
        action), whether or not a client drives the run. A run in its process learns
        of it from its next proposal's answer, as a Prefect client does, except that
        CANCELLING is seen by its worker, which kills it after the cancel latency as
        for a user's cancellation. A run still in its work queue that this makes
        final is done (no poll takes it); so is a run no client drives any more
        (lost with its worker), counted as finished then. One sent back to SCHEDULED
        is taken again by workers (`_server_moved`). O(rules)."""
        return self._by_server(run, self._set_flow, state, flow_policy=self.flow_policy)

    def server_resume(self, run: RunSim) -> Any:
        """Prefect's resume_flow_run route for `run` (an automation's resume action):
        a PAUSED run is proposed RUNNING, a suspended one SCHEDULED "Resuming"; what
        follows is as for `server_call`. O(rules)."""
        return self._by_server(run, self._resume_route, flow_policy=self.flow_policy)

    def _by_server(self, run: RunSim, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`call(flow run id, *args, **kwargs)` (an engine call), then its bookkeeping
        and what follows from it (`_server_moved`)."""
        queued = run.worker is None and run.type is _SCHEDULED and run.parent is None
        before = run.rec.state_id
        result = call(run.rec.id, *args, **kwargs)
        self._observe(run, before)
        self._server_moved(run, queued, before)
        return result

    def _server_moved(self, run: RunSim, queued: bool, before: Any) -> None:
        """What follows a server-side change of `run`'s state (`queued`: it waited in
        its work queue before). Back in SCHEDULED, a top-level run is in its work
        queue again and workers take it: its process, if any, exits (as at its next
        call's ABORT: the enclosing flow must be running), and a run already let go
        is driven again. A process holding task runs for a pause sees any other
        change at their next poll: RUNNING resumes them, a final state ends it. A
        PAUSED state with a timeout books the pause-expiration service's pass."""
        stype = run.type
        if run.rec.state_id == before:
            return   # refused: nothing changed
        if stype is _PAUSED:
            self._book_expiration(run)
        if stype is _SCHEDULED and run.queue is not None and not queued:
            self._counters["flow_runs_rescheduled"] += 1
            if run.worker is not None:
                # Its process exits (at its next call, which the server aborts): its
                # in-flight subflows are left in their states, its worker slot is free.
                self._leave_children(run)
                self.release_worker(run)
            self.on_rescheduled(run)
            run.drive_again()
            run.gen += 1   # its process's events, if any, are stale
            return
        if run.dead:
            self._left_run_final(run)
        elif not run.final:
            if queued and stype in _FINAL:
                self._finalize(run)   # (polls drop a final run's queue entry)
            elif queued and stype is _SCHEDULED:
                self.on_rescheduled(run)   # re-filed for its new scheduled time
            elif stype is _CANCELLING and not run.cancelling:
                self._cancelling(run)
            elif (run.paused or run.held) and stype is not _PAUSED:
                # Paused by its process (`paused`, maybe holding nothing) or holding
                # task runs an action's PAUSED stopped: a RUNNING or final state the
                # process did not ask for lets it go on, or ends it.
                if stype is _RUNNING:
                    self._resumed(run)
                elif stype in _FINAL:
                    self._end(run)

    def _left_run_final(self, run: RunSim) -> None:
        """A run no client drives (`dead`) that the server moved to a final state is
        counted as finished, once (`final` marks it counted)."""
        if not run.final and run.type in _FINAL:
            run.final = True
            if run.parent is None:
                self.on_final_state(run)

    def flow_created(self, run: RunSim) -> None:
        """`run` was just created with its first state: counted, and an event."""
        rec = run.rec
        self.metrics.flow_counts[rec.state_type] += 1
        run.type = rec.state_type
        if self.on_flow_state is not None:
            self.on_flow_state(run)

    def flow_deleted(self, run: RunSim) -> None:
        """`run`'s flow run (top-level, SCHEDULED) was deleted from the store: it
        leaves the counts by state and, unless already let go (lost with its
        worker), is done, finished in no final state."""
        run.deleted = True
        self.metrics.flow_counts[run.type] -= 1
        if run.dead:
            self._counters["flow_runs_deleted"] += 1
        else:
            self._abandon_run(run, "flow_runs_deleted")

    def flow_moved(self, run: RunSim, old: StateType | None, new: StateType | None) -> None:
        counts = self.metrics.flow_counts
        counts[old] -= 1
        counts[new] += 1
        run.type = new
        queue = run.queue
        if queue is not None:
            was, now = old in _OCCUPYING, new in _OCCUPYING
            if was != now:
                step = 1 if now else -1
                pool = queue.pool
                queue.active += step
                pool.active += step
                if now:
                    if queue.active > queue.peak:
                        queue.peak = queue.active
                    if pool.active > pool.peak:
                        pool.peak = pool.active
            dep = run.dep
            was, now = old in _HOLDING_DEPLOYMENT_SLOT, new in _HOLDING_DEPLOYMENT_SLOT
            if was != now:
                dep.active += 1 if now else -1
                if dep.active > dep.peak:
                    dep.peak = dep.active

    def task_call(self, run: RunSim, i: int, state: State) -> Any:
        result = self._set_task(run.trs[i].id, state, task_policy=self.task_policy)
        self._recount_task(run, i)
        return result

    def _recount_task(self, run: RunSim, i: int) -> None:
        """Move task node `i` of `run` to its task run's current state type in the counts."""
        new = run.trs[i].state_type
        ttypes = run.ttypes
        old = ttypes[i]
        if new is not old:
            counts = self._task_counts
            counts[old] -= 1
            counts[new] += 1
            ttypes[i] = new
            if (old is _RUNNING or new is _RUNNING) and self.tag_peaks:
                self._count_running_tags(run.plan.nodes[i].tags, 1 if new is _RUNNING else -1)

    def _count_running_tags(self, tags: Any, step: int) -> None:
        """A task run with `tags` entered (`step` 1) or left (-1) RUNNING: the count of
        task runs RUNNING per tag that has a concurrency limit, and its peak. O(tags)."""
        running, peaks = self._tags_running, self.tag_peaks
        for tag in tags:
            if tag in peaks:
                n = running[tag] = running.get(tag, 0) + step
                if n > peaks[tag]:
                    peaks[tag] = n

    def _sync_parent_task(self, run: RunSim) -> None:
        # The engine mirrors a subflow's states onto its parent task run (forced).
        parent, i, _ = run.parent
        self._recount_task(parent(), i)

    def t_of(self, when: Any) -> float:
        return self.loop.to_seconds(when)

    # flow runs ---------------------------------------------------------------------------------
    def propose_flow_running(self, run: RunSim) -> None:
        """Infrastructure started (or a retry/resume is due): propose RUNNING."""
        if run.final or run.dead or run.cancelling:
            return
        run.booted = True
        result = self.flow_call(run, Running())
        status = result.status
        if status == "ACCEPT":
            if run.resuming:
                run.resuming = False
                self._resumed(run)
            else:
                self._begin_attempt(run)
        elif status == "WAIT":
            self._counters["scheduled_time_waits"] += 1
            self._after(result.details.delay_seconds, self._running_due, (run, run.token))
        elif status == "REJECT":
            self._follow_flow(run, result.state)
        else:
            self._abandon_run(run)

    def _running_due(self, ticket: tuple[RunSim, int]) -> None:
        """A wait or a retry delay is over: propose RUNNING, unless the run went back
        to its work queue meanwhile (its process was lost: `lose`)."""
        run, token = ticket
        if token == run.token:
            self.propose_flow_running(run)

    def _follow_flow(self, run: RunSim, state: State | None) -> None:
        """Continue from a state the engine returned instead of the proposal."""
        stype = run.type if state is None else state.type
        resuming, run.resuming = run.resuming, False
        if stype in _FINAL:
            if resuming and stype is StateType.FAILED:
                self._counters["pause_timeouts"] += 1
            self._end(run)
        elif stype is _SCHEDULED and state is not None and state.state_details.scheduled_time is not None:
            self.loop.at(self.t_of(state.state_details.scheduled_time), self._running_due, (run, run.token))
        elif stype is _CANCELLING:
            pass  # a cancellation is under way: the worker finishes it
        else:
            # Kept in a state this client cannot move on from (a custom rule, say): a
            # Prefect client would raise here; stop driving the run.
            self._abandon_run(run)

    def _begin_attempt(self, run: RunSim) -> None:
        run.attempt += 1
        run.gen += 1
        plan = run.plan
        n = len(plan.nodes)
        run.status = [WAITING] * n
        run.left = list(plan.indegree)
        run.outstanding = n
        run.failed = 0
        run.held = []
        run.cache_keys = {}
        rng = run.rng
        spec = plan.spec
        run.crash_at = rng.randrange(n) if n and spec.crash_probability and rng.random() < spec.crash_probability else -1
        run.pause_armed = bool(run.attempt == 1 and spec.pause and rng.random() < spec.pause.probability)
        if run.pause_armed:
            run.pause_for = spec.pause.duration.sample(rng)  # type: ignore[union-attr]
        run.pause_left = len(plan.pause_nodes)
        run.draws = plan.draw_attempt(rng)
        run.fails = [None] * n
        if not n:
            self._finish_flow(run)
            return
        gen = run.gen
        for i in plan.roots:
            if run.gen != gen or run.final:
                break
            self._start_node(run, i)

    def _finish_flow(self, run: RunSim) -> None:
        if run.failed:
            state = Failed(message=f"{run.failed} task run(s) failed")
        else:
            state = Completed()
        run.pending_final = state
        self._propose_final(run)

    def _propose_final(self, run: RunSim) -> None:
        if run.final or run.dead or run.cancelling:
            return
        state = run.pending_final
        result = self.flow_call(run, State(type=state.type, name=state.name, message=state.message))
        status = result.status
        if status == "ACCEPT":
            self._finalize(run)
        elif status == "REJECT":
            returned = result.state
            if returned is not None and returned.type is _SCHEDULED:
                self._counters["flow_retries"] += 1
                when = returned.state_details.scheduled_time
                self.loop.at(self.t_of(when) if when is not None else self.loop.now, self._running_due,
                             (run, run.token))
            else:
                self._follow_flow(run, returned)
        elif status == "WAIT":
            self._after(result.details.delay_seconds, self._propose_final_due, (run, run.gen))
        else:
            self._abandon_run(run)

    def _propose_final_due(self, ticket: tuple[RunSim, int]) -> None:
        run, gen = ticket
        if gen == run.gen:   # (else its process is gone: the run went back to its queue)
            self._propose_final(run)

    def _end(self, run: RunSim) -> None:
        """Its process ends: the attempt's task runs and subflows cancelled, the run done."""
        self._stop_attempt(run, Cancelled)
        self._finalize(run)

    def _finalize(self, run: RunSim) -> None:
        if run.final:
            return
        run.final = True
        run.gen += 1   # any event of the last attempt still queued is now stale
        self._let_go(run, run.type is _COMPLETED)

    def _abandon_run(self, run: RunSim, counter: str = "flow_aborts") -> None:
        """ABORT on a flow proposal (or its process is gone): stop driving it (it keeps
        its current state)."""
        self._counters[counter] += 1
        run.dead = True
        run.gen += 1
        self._let_go(run, False)

    def _let_go_as_is(self, run: RunSim, counter: str = "flow_aborts") -> bool:
        """Stop driving `run` in the state it has: done if that is final (True), else
        left there (`_abandon_run`, counted under `counter`)."""
        if run.type in _FINAL:
            self._finalize(run)
            return True
        self._abandon_run(run, counter)
        return False

    def release_worker(self, run: RunSim) -> None:
        """The worker that submitted `run` no longer counts it against its limit."""
        worker = run.worker
        if worker is not None:
            del worker.runs[run]
            run.worker = None

    def _let_go(self, run: RunSim, ok: bool) -> None:
        """`run` is no longer driven: free its worker slot and tell whoever waits on it
        (the simulation, or the parent's task node, as succeeded if `ok`). Its stream
        and draws go (~3.5 KB a run): nothing draws for a run no longer driven
        (drive_again makes another stream, its next attempt new draws)."""
        self.release_worker(run)
        run.rng = None
        run.draws, run.fails = [], []
        parent = run.parent
        if parent is None:
            self.on_final(run)
            return
        prun_ref, i, pgen = parent
        prun = prun_ref()
        if pgen == prun.gen and prun.status[i] == ACTIVE:
            self._node_done(prun, i, ok)

    # task graph ---------------------------------------------------------------------------------
    def _start_node(self, run: RunSim, i: int) -> None:
        run.status[i] = ACTIVE
        if run.plan.nodes[i].subflow is not None:
            self._start_subflow(run, i)
            return
        if run.trs[i] is None:
            self._create_task_run(run, i)
        self._propose_task_running((run, i, run.gen))

    def _create_task_run(self, run: RunSim, i: int) -> Any:
        node = run.plan.nodes[i]
        refs = run.refs   # set with trs[u] for every u that has downstream nodes
        inputs = {"upstream": [refs[u] for u in node.upstream if refs[u] is not None]} if node.upstream else {}
        tr = self.engine.create_task_run(
            flow_run_id=run.rec.id, task_key=node.task_key, dynamic_key=node.dynamic_key, name=node.name,
            tags=node.tags, empirical_policy=node.policy, task_inputs=inputs, state=Pending(),
        )
        run.trs[i] = tr
        if node.downstream:
            # One (frozen, so shareable) input reference for all downstream task runs
            # instead of one per edge.
            refs[i] = TaskRunResult(id=tr.id)
        stype = tr.state_type
        self._task_counts[stype] += 1
        run.ttypes[i] = stype
        self._counters["task_runs_created"] += 1
        return tr

    def _cache_details(self, run: RunSim, i: int, completed: bool) -> StateDetails | None:
        """The task's cache key (computed once per flow attempt, as a client computes it
        once per task call) and, on completion, its expiration."""
        node = run.plan.nodes[i]
        cache = node.cache
        if cache is None:
            return None
        t = self.loop.now
        key = run.cache_keys.get(i)
        if key is None:
            key = run.cache_keys[i] = cache.key.format(
                flow=run.plan.spec.name, task=node.task.name, index=node.dynamic_key,
                deployment=run.dep.spec.name if run.dep is not None else "",
                day=int(t // 86400), hour=int(t // 3600),
                choice=run.draws[i][2],  # type: ignore[index]
            )
        expiration = None
        if completed and cache.expiration is not None:
            expiration = self.loop.to_datetime(t + cache.expiration)
        return StateDetails(cache_key=key, cache_expiration=expiration)

    def _propose_task_running(self, arg: tuple[RunSim, int, int]) -> None:
        run, i, gen = arg
        if gen != run.gen or run.cancelling:
            return
        node = run.plan.nodes[i]
        state = Running() if node.cache is None else Running(state_details=self._cache_details(run, i, False))
        result = self.task_call(run, i, state)
        status = result.status
        counters = self._counters
        if status == "ACCEPT":
            counters["task_attempts"] += 1
            self._after(self._start_try(run, i), self._finish_task, arg)
        elif status == "WAIT":
            delay = result.details.delay_seconds
            if (result.details.reason or "").startswith("Concurrency limit"):
                counters["tag_slot_waits"] += 1
                self.metrics.tag_wait_seconds += delay
                if len(node.tags) > 1:
                    self._give_back_tag_slots(run, i)
            else:
                counters["scheduled_time_waits"] += 1
            self._after(delay, self._propose_task_running, arg)
        elif status == "REJECT":
            returned = result.state
            stype = returned.type if returned is not None else run.ttypes[i]
            if stype is _COMPLETED:
                if returned is not None and returned.name == "Cached":
                    counters["cache_hits"] += 1
                self._node_done(run, i, True)
            elif stype is _PAUSED:
                counters["task_not_ready"] += 1
                run.held.append(i)
            elif stype is _SCHEDULED and returned is not None and returned.state_details.scheduled_time:
                self.loop.at(self.t_of(returned.state_details.scheduled_time), self._propose_task_running, arg)
            elif stype in _FINAL:
                self._node_done(run, i, False)
            elif stype is _RUNNING:
                # Rejected to its current RUNNING state: it runs after all.
                self._after(self._start_try(run, i), self._finish_task, arg)
            else:
                self._node_done(run, i, False)
        else:
            counters["task_aborts"] += 1
            self._node_done(run, i, False)

    def _give_back_tag_slots(self, run: RunSim, i: int) -> None:
        """Told to wait for a tag slot, a task holds none. Prefect 3.1.0's server rule
        keeps the slots it took on tags sorted after the full one (spec §8.19), so a
        task with two limited tags could wait forever on a slot it holds itself; its
        client, though, takes a task's tag slots all or nothing (the
        concurrency_limits/increment route gives back what it took when a tag is
        full). The simulated client does the same: it gives back any slot the rule
        left it. O(tags + slots held on them)."""
        engine = self.engine
        run_id = str(run.trs[i].id)
        with engine.transaction():
            for tag in run.plan.nodes[i].tags:
                limit = engine.read_concurrency_limit_by_tag(tag)
                if limit is not None and run_id in limit.active_slots:
                    engine.reset_concurrency_limit_by_tag(
                        tag, slot_override=[slot for slot in limit.active_slots if slot != run_id])
                    self._counters["tag_slots_given_back"] += 1

    def _start_try(self, run: RunSim, i: int) -> float:
        """A try of node `i` starts running: its duration, and whether it fails kept for
        its end. The attempt's first try takes what the attempt drew up front; a later
        one (a task retry, a rejected end) draws afresh from the run's stream."""
        fails = run.fails
        if fails[i] is None:
            duration, fails[i], _ = run.draws[i]  # type: ignore[misc]
        else:
            duration, fails[i] = run.plan.nodes[i].draw_try(run.rng)  # type: ignore[arg-type]
        return duration

    def _finish_task(self, arg: tuple[RunSim, int, int]) -> None:
        run, i, gen = arg
        if gen != run.gen:
            return
        node = run.plan.nodes[i]
        if run.fails[i]:
            state = Failed(message="simulated task failure")
        elif node.cache is not None:
            state = Completed(state_details=self._cache_details(run, i, True))
        else:
            state = Completed()
        if node.jitter and run.fails[i]:
            result = self._retriable_failure(run, i, state)
        else:
            result = self.task_call(run, i, state)
        status = result.status
        if status == "ACCEPT":
            self._node_done(run, i, state.type is _COMPLETED)
        elif status == "REJECT":
            returned = result.state
            stype = returned.type if returned is not None else run.ttypes[i]
            if stype is _SCHEDULED and returned is not None:
                self._counters["task_retries"] += 1
                when = returned.state_details.scheduled_time
                self.loop.at(self.t_of(when) if when is not None else self.loop.now, self._propose_task_running, arg)
            elif stype is _RUNNING:
                self._after(self._start_try(run, i), self._finish_task, arg)
            else:
                self._node_done(run, i, stype is _COMPLETED)
        elif status == "WAIT":
            self._after(result.details.delay_seconds, self._finish_task, arg)
        else:
            self._counters["task_aborts"] += 1
            self._node_done(run, i, False)

    def _retriable_failure(self, run: RunSim, i: int, state: State) -> Any:
        """Propose the failure `state` of node `i`, whose retries are jittered: the
        engine's RetryFailedTasks draws the delay from `engine.random`, lent the run's
        stream for the call so that the delay is the run's own draw."""
        engine = self.engine
        own = engine.random
        engine.random = run.rng
        try:
            return self.task_call(run, i, state)
        finally:
            engine.random = own

    def _node_done(self, run: RunSim, i: int, ok: bool) -> None:
        status = run.status
        if status[i] != ACTIVE:
            return
        status[i] = DONE if ok else FAILED
        run.outstanding -= 1
        plan = run.plan
        gen = run.gen
        if not ok:
            run.failed += 1
            self._skip_downstream(run, i)
        if i == run.crash_at:
            # A subflow runs in its top-level run's process: the crash takes that
            # process, so the top-level run crashes, and with it every run in flight
            # under it (Prefect's flow engine reports the crash and re-raises it into
            # the parent's). Counted only if the engine took it (a CANCELLING run, or
            # one an automation made final meanwhile, is refused): the report's
            # injected crashes.
            root = run
            while root.parent is not None:
                root = root.parent[0]()
            if self._crash(root, "simulated infrastructure crash"):
                self._counters["crashes"] += 1
            return
        if run.pause_armed and i in plan.pause_nodes:
            run.pause_left -= 1
            if run.pause_left == 0:
                run.pause_armed = False
                self._pause(run)
                if run.gen != gen or run.final:
                    return
        if ok:
            left = run.left
            for d in plan.nodes[i].downstream:
                left[d] -= 1
                if left[d] == 0 and status[d] == WAITING:
                    self._start_node(run, d)
                    if run.gen != gen or run.final:
                        return
        if run.outstanding == 0 and not run.paused:
            self._finish_flow(run)

    def _skip_downstream(self, run: RunSim, i: int) -> None:
        status, nodes = run.status, run.plan.nodes
        stack = list(nodes[i].downstream)
        while stack:
            d = stack.pop()
            if status[d] == WAITING:
                status[d] = SKIPPED
                run.outstanding -= 1
                stack.extend(nodes[d].downstream)

    # subflows -------------------------------------------------------------------------------------
    def _start_subflow(self, run: RunSim, i: int) -> None:
        node = run.plan.nodes[i]
        plan: FlowPlan = node.subflow  # type: ignore[assignment]
        tr = run.trs[i]
        if tr is None:
            tr = self._create_task_run(run, i)
        else:
            # The subflow call of a later attempt finds the parent task run of the
            # earlier one (same dynamic key). Prefect's flow engine (load_subflow_run)
            # then loads the subflow run instead of creating one when that task run
            # is final, unless the parent is re-running and it is not COMPLETED.
            stype = tr.state_type
            if stype in _FINAL and (stype is _COMPLETED or run.rec.run_count <= 1):
                loaded = self._load_subflow(tr.id)
                if loaded is not None and (loaded.final or loaded.dead):
                    self._rerun_subflow(run, i, loaded)
                    return
        key = subflow_key(run.key, run.attempt, i)
        rng = stream(key)
        seed_run_name(rng)
        rec = self.engine.create_flow_run(
            flow_id=plan.flow_id, parent_task_run_id=tr.id, tags=list(plan.spec.tags),
            empirical_policy=plan.policy, state=Pending(),
        )
        child = RunSim(rec, plan, None, key, rng, parent=(weakref.ref(run), i, run.gen))
        run.children[i] = child
        self.children_runs.append(child)
        self._subflow_sims[rec.id] = child
        self.flow_created(child)
        self._sync_parent_task(child)
        self._counters["subflow_runs_created"] += 1
        self.propose_flow_running(child)

    def _load_subflow(self, parent_task_run_id: Any) -> RunSim | None:
        """The subflow run Prefect's engine loads for a parent task run: the first by
        expected start time (the query load_subflow_run makes)."""
        found = self.engine.read_flow_runs(
            flow_run_filter={"parent_task_run_id": {"any_": [parent_task_run_id]}},
            sort="EXPECTED_START_TIME_ASC", limit=1,
        )
        return self._subflow_sims.get(found[0].id) if found else None

    def _rerun_subflow(self, run: RunSim, i: int, child: RunSim) -> None:
        """Drive a loaded subflow run again. Like Prefect's flow engine, propose RUNNING
        for it: the engine keeps a COMPLETED run with a persisted result as it is
        (REJECT: the node is done with its earlier result); otherwise (no result is
        persisted here) the subflow runs again in the same flow run."""
        self._counters["subflow_runs_loaded"] += 1
        child.parent = (weakref.ref(run), i, run.gen)
        child.drive_again()
        run.children[i] = child
        self.propose_flow_running(child)

    # crashes, pauses, cancellations ------------------------------------------------------------------
    def _stop_attempt(self, run: RunSim, make_state: Callable[..., State],
                      child_message: str = "parent flow run stopped") -> None:
        """End the current attempt: its in-flight task runs (and subflows, with
        `child_message`) get `make_state`."""
        run.gen += 1
        status, nodes, trs = run.status, run.plan.nodes, run.trs
        for i, st in enumerate(status):
            if st != ACTIVE:
                continue
            status[i] = FAILED
            tr = trs[i]
            if nodes[i].subflow is not None:
                child = run.children.get(i)
                if child is not None and not child.final and not child.dead:
                    self._stop_attempt(child, make_state, child_message)
                    self.flow_call(child, make_state(message=child_message))
                    self._finalize(child)
                continue
            if tr is not None and run.ttypes[i] not in _FINAL:
                self.task_call(run, i, make_state(message="flow run stopped"))
        run.held = []

    def _crash(self, run: RunSim, message: str) -> bool:
        """Report the run CRASHED and stop it; True if the engine took the crash. A run
        being cancelled is refused the crash (CANCELLING may only become CANCELLED)
        and left to its cancellation: its process is gone, so its worker slot is free,
        and the kill due after the cancel latency finds no process and marks it
        CANCELLED, as Prefect's worker does on InfrastructureNotFound."""
        self._stop_attempt(run, Crashed, message)  # one process: its subflows crash alike
        result = self.flow_call(run, Crashed(message=message))
        if run.cancelling and run.type is _CANCELLING:
            # (not let go here: `_kill` ends it, counted as a cancellation, not an abort)
            self.release_worker(run)
            return False
        self._let_go_as_is(run)
        return result.status == "ACCEPT"

    def _pause(self, run: RunSim) -> None:
        now = self.loop.now
        timeout = run.plan.spec.pause.timeout  # type: ignore[union-attr]
        expires = self.loop.to_datetime(now + timeout)
        state = Paused(pause_expiration_time=expires, pause_key=f"sim-pause-{run.attempt}")
        result = self.flow_call(run, state)
        if result.status == "ACCEPT":
            self._counters["pauses"] += 1
            run.paused = True
            self._after(run.pause_for, self._resume, (run, run.gen))
            self._book_expiration(run)

    def _book_expiration(self, run: RunSim) -> None:
        """Book the pause-expiration service's first pass that finds the timeout of
        `run`'s PAUSED state passed (it fails a run only once `pause_timeout < now`);
        nothing without a timeout or with the service off."""
        loop_seconds = self.pause_expirations_loop
        expires = run.rec.state.state_details.pause_timeout
        if loop_seconds is None or expires is None:
            return
        t = service_pass_at(self.loop.to_seconds(expires), loop_seconds)
        while self.loop.to_datetime(t) <= expires:
            t += loop_seconds
        self.loop.at(t, self._expire_pause, run)

    def _expire_pause(self, run: RunSim) -> None:
        """A pass of the server's pause-expiration service (FailExpiredPauses): a flow
        run still PAUSED whose pause timeout has passed is forced to Failed, as the
        service does (forced, so under the minimal policy), whether or not a client
        still drives it."""
        rec = run.rec
        if rec.state_type is not _PAUSED:
            return   # resumed, cancelled or finished meanwhile
        timeout = rec.state.state_details.pause_timeout
        now = self.loop.now
        if timeout is None or not timeout < self.loop.to_datetime(now):
            return   # paused again since, with a later timeout: that pause has its own event
        self.flow_call(run, Failed(message="The flow was paused and never resumed."), force=True)
        new = rec.state_type
        if new is _PAUSED:
            # Still paused (a global rule kept it): the service tries again next pass.
            self.loop.at(now + self.pause_expirations_loop, self._expire_pause, run)  # type: ignore[operator]
            return
        if new not in _FINAL:
            return
        self._counters["pause_timeouts"] += 1
        if run.dead:
            # No client drives it any more (lost with its worker, say); the service
            # failed it all the same.
            self._left_run_final(run)
            return
        if run.final:
            return
        # The flow run is over: the simulated process stops (its held task runs are
        # cancelled) and gives back its worker slot.
        run.paused = False
        self._end(run)

    def _resume(self, arg: tuple[RunSim, int]) -> None:
        run, gen = arg
        if gen != run.gen or run.final or run.dead or run.cancelling or run.type is not _PAUSED:
            # No longer paused (e.g. failed by the pause-expiration service, or resumed
            # by an automation): Prefect's resume_flow_run finds it not paused.
            return
        run.resuming = True
        self.propose_flow_running(run)

    def _resumed(self, run: RunSim) -> None:
        self._counters["resumes"] += 1
        run.paused = False
        held, run.held = run.held, []
        gen = run.gen
        for i in held:
            if run.gen != gen or run.final:
                return
            self._propose_task_running((run, i, gen))
        if run.outstanding == 0 and not run.paused and run.gen == gen and not run.final:
            self._finish_flow(run)

    def cancel(self, run: RunSim) -> None:
        """A user asks to cancel: propose CANCELLING; the worker kills the infrastructure
        after the flow's cancel latency and reports CANCELLED."""
        if run.final or run.dead or run.cancelling:
            return
        self._counters["cancellations_requested"] += 1
        result = self.flow_call(run, Cancelling())
        if run.type is StateType.CANCELLED:
            # SCHEDULED runs without infrastructure are cancelled at once.
            self._counters["cancellations"] += 1
            self._end(run)
        elif result.status == "ACCEPT":
            self._cancelling(run)
        # (else refused: an automation made it final meanwhile, say; its process goes on)

    def _cancelling(self, run: RunSim) -> None:
        """`run` went CANCELLING: its worker kills it after the flow's cancel latency."""
        run.cancelling = True
        latency = run.plan.spec.cancel.latency if run.plan.spec.cancel else 0.0
        self._after(latency, self._kill, (run, run.token))

    def _kill(self, ticket: tuple[RunSim, int]) -> None:
        run, token = ticket
        if run.final or run.dead or not run.cancelling or token != run.token:
            return   # (sent back to its work queue meanwhile: no longer this cancellation's)
        self._stop_attempt(run, Cancelled)
        if run.type is not _CANCELLING:
            # An action moved it on meanwhile (unforced, CANCELLING may only become
            # CANCELLED): the worker, which looks only for cancelling runs, no longer
            # sees it, and its process, idle since the request, learns its state and
            # ends. Not the worker's cancellation, so not counted as one.
            self._let_go_as_is(run)
            return
        self.flow_call(run, Cancelled(message="cancelled by the simulated user"))
        if self._let_go_as_is(run):
            self._counters["cancellations"] += 1

    # a worker that dies with its runs --------------------------------------------------------------
    def terminate(self, run: RunSim) -> None:
        """The run's process got a termination signal with its worker's: as Prefect's
        flow engine does, the flow run is reported CRASHED ("Execution was aborted by
        a termination signal."), and its task runs and subflows in flight with it.
        Counted if the engine took the crash."""
        if self._crash(run, "Execution was aborted by a termination signal."):
            self._counters["worker_runs_crashed"] += 1

    def lose(self, run: RunSim) -> None:
        """The run's process was killed without a word (SIGKILL, a lost machine).
        Prefect 3.1.0 has no flow-run heartbeats: nothing notices, and the run, its
        subflows and task runs keep their states for good, holding their pool, queue,
        deployment and tag slots (only the server's own services still act: a lost
        PAUSED run is failed when its pause times out)."""
        self._leave_children(run)
        # (Already final, by an automation's action while it ran: nothing is lost but
        # its process; it is done, as it would have learnt at its next call.)
        self._let_go_as_is(run, "worker_runs_lost")

    def _leave_children(self, run: RunSim) -> None:
        """The subflow runs still driven under `run` (at any depth) are no longer: they
        keep their states."""
        stack = list(run.children.values())
        while stack:
            child = stack.pop()
            if not child.final and not child.dead:
                child.dead = True
                child.gen += 1
                stack.extend(child.children.values())
