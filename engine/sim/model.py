"""Runtime objects of a simulation: compiled flow plans (task graphs expanded by
fan-out), and the mutable per-run, per-queue, per-worker bookkeeping the client
and services keep beside the engine's records."""
from __future__ import annotations

import random
import uuid
import weakref
from typing import Any

from ..records import FlowRunPolicy, TaskRunPolicy
from ..states import StateType
from .streams import revived_key, stream
from .workload import DeploymentSpec, FlowSpec, PoolSpec, QueueSpec, TaskSpec, WorkerSpec

__all__ = ["Node", "FlowPlan", "RunSim", "QueueRT", "PoolRT", "WorkerRT", "DeploymentRT", "compile_plan"]

# Node status within one attempt of a flow run.
WAITING, ACTIVE, DONE, FAILED, SKIPPED = range(5)


class Node:
    """One task run of a flow body: a task spec instance (fan-out index `dynamic_key`)."""

    __slots__ = ("index", "task", "task_key", "dynamic_key", "name", "upstream", "downstream",
                 "tags", "policy", "duration", "fail_p", "cache", "choices", "jitter", "subflow")

    def __init__(self, index: int, flow: FlowSpec, task: TaskSpec, k: int) -> None:
        self.index = index
        self.task = task
        self.task_key = f"{flow.name}.{task.name}"
        self.dynamic_key = str(k)
        self.name = f"{task.name}-{k}"
        self.upstream: tuple[int, ...] = ()
        self.downstream: list[int] = []
        self.tags = list(task.tags)
        delay = task.retry_delay
        self.policy = TaskRunPolicy(
            retries=task.retries,
            retry_delay=list(delay) if isinstance(delay, list) else delay,
            retry_jitter_factor=task.retry_jitter_factor,
        )
        self.duration = task.duration
        self.fail_p = task.failure_probability
        self.cache = task.cache
        self.choices = task.cache.choices if task.cache is not None else 1
        # RetryFailedTasks draws a jittered retry delay from the engine's generator
        # when this node's failure is retried (the client lends it the run's stream).
        self.jitter = bool(task.retries and task.retry_jitter_factor)
        self.subflow: "FlowPlan | None" = None

    def draw_try(self, rng: random.Random) -> tuple[float, bool]:
        """What a try of this node draws: its duration, then whether it fails."""
        p = self.fail_p
        return self.duration.sample(rng), p > 0.0 and rng.random() < p

    def draw(self, rng: random.Random) -> "tuple[float, bool, int] | None":
        """What the first try of this node in an attempt draws: draw_try's, then its
        cache choice (None for a subflow call, which draws nothing)."""
        if self.subflow is not None:
            return None
        return (*self.draw_try(rng), rng.randrange(self.choices) if self.choices > 1 else 0)


class FlowPlan:
    """A flow spec compiled once: nodes in declaration order with their edges."""

    __slots__ = ("spec", "flow_id", "nodes", "indegree", "roots", "policy", "pause_nodes")

    def __init__(self, spec: FlowSpec) -> None:
        self.spec = spec
        self.flow_id: uuid.UUID | None = None
        self.nodes: list[Node] = []
        by_task: dict[str, list[int]] = {}
        for task in spec.tasks:
            for k in range(task.count):
                node = Node(len(self.nodes), spec, task, k)
                self.nodes.append(node)
                by_task.setdefault(task.name, []).append(node.index)
        for node in self.nodes:
            up = [i for dep in node.task.depends_on for i in by_task[dep]]
            node.upstream = tuple(up)
            for i in up:
                self.nodes[i].downstream.append(node.index)
        self.indegree = [len(n.upstream) for n in self.nodes]
        self.roots = [n.index for n in self.nodes if not n.upstream]
        self.policy = FlowRunPolicy(retries=spec.retries, retry_delay=int(spec.retry_delay) or None)
        self.pause_nodes = frozenset(by_task.get(spec.pause.after, ())) if spec.pause else frozenset()

    def draw_attempt(self, rng: random.Random) -> "list[tuple[float, bool, int] | None]":
        """Each node's first-try draws for one attempt of a run, in node order (Node.draw).
        Drawn up front so that a run's draws do not depend on the order its task runs
        start in, nor on whether a task run is a cache hit (which draws nothing): that
        order can depend on other runs (tag slots, caches they filled)."""
        return [node.draw(rng) for node in self.nodes]


def compile_plan(spec: FlowSpec, plans: dict[str, FlowPlan], specs: dict[str, FlowSpec]) -> FlowPlan:
    """The plan of `spec`, compiling subflows first (the workload has no subflow cycles)."""
    plan = plans.get(spec.name)
    if plan is not None:
        return plan
    plan = FlowPlan(spec)
    plans[spec.name] = plan
    for node in plan.nodes:
        if node.task.subflow is not None:
            node.subflow = compile_plan(specs[node.task.subflow], plans, specs)
    return plan


class QueueRT:
    __slots__ = ("spec", "pool", "id", "heap", "active", "peak", "paused", "held")

    def __init__(self, spec: QueueSpec, pool: "PoolRT") -> None:
        self.spec = spec
        self.pool = pool
        self.id: uuid.UUID | None = None
        self.heap: list[tuple[float, int, int, "RunSim"]] = []   # (scheduled t, seq, token, run)
        self.active = 0   # runs of this queue in PENDING/RUNNING (what Prefect's worker query counts)
        self.peak = 0     # the most `active` has been
        self.paused = spec.paused   # now (an automation's action may change it)
        self.held = False           # paused by an update since: its status is PAUSED


class PoolRT:
    __slots__ = ("spec", "id", "queues", "queue_ids", "active", "peak", "paused", "__weakref__")

    def __init__(self, spec: PoolSpec) -> None:
        self.spec = spec
        self.id: uuid.UUID | None = None
        # (each queue reaches its pool through a weak proxy: no reference cycle)
        self.queues = [QueueRT(q, weakref.proxy(self)) for q in spec.queues]   # in creation order until sort_queues()
        self.queue_ids: list[Any] = []   # the queues' ids, in the same order
        self.active = 0   # its queues' runs in PENDING/RUNNING (what its limit counts)
        self.peak = 0     # the most `active` has been
        self.paused = spec.paused   # now (an automation's action may change it)

    def queue_named(self, name: str) -> "QueueRT":
        """The pool's queue of that name (the workload checked that it exists). O(queues)."""
        return next(q for q in self.queues if q.spec.name == name)

    def sort_queues(self, order: list[Any]) -> None:
        """Order the queues as workers poll them: as the engine lists the pool's
        queues (`order`, their ids: by stored priority, ties oldest first)."""
        rank = {queue_id: i for i, queue_id in enumerate(order)}
        self.queues.sort(key=lambda q: rank[q.id])
        self.queue_ids = [q.id for q in self.queues]


class WorkerRT:
    __slots__ = ("spec", "pool", "name", "runs", "heartbeat", "epoch", "down", "down_since", "failure_rng")

    def __init__(self, spec: WorkerSpec, pool: PoolRT, name: str, heartbeat: float | None) -> None:
        self.spec = spec
        self.pool = pool
        self.name = name
        # The flow runs it submitted that are still driven, in submission order (a dict:
        # a set's order would vary from run to run); what its `limit` counts.
        self.runs: dict["RunSim", None] = {}
        self.heartbeat = heartbeat   # seconds between heartbeats, None: sends none
        # Bumped when the worker goes down: its poll, heartbeat and failure events carry
        # the epoch they were booked in, and stale ones do nothing (nor book again).
        self.epoch = 0
        self.down = 0   # outages and failures under way (an outage may begin during a repair)
        self.down_since = 0.0
        # Its own stream, keyed by the seed and its name: its failures stay the same
        # whatever else the workload changes (unless it gains outages or is renamed).
        self.failure_rng: random.Random | None = None


class DeploymentRT:
    __slots__ = ("spec", "plan", "id", "queue", "future", "cursor", "created", "next_memo", "paused", "arriving",
                 "run_prefix", "arrival_rng", "arrivals", "actions", "active", "peak")

    def __init__(self, spec: DeploymentSpec, plan: FlowPlan, queue: QueueRT, run_prefix: str) -> None:
        self.spec = spec
        self.plan = plan
        self.queue = queue
        self.id: uuid.UUID | None = None
        self.future: list[float] = []   # scheduled times of auto-scheduled runs not yet due
        self.cursor: float | None = None   # last auto-scheduled time created
        self.created = 0
        self.next_memo: tuple[float, float | None, float] | None = None   # Services._next_date's last cron answer
        self.paused = spec.paused   # now (an automation's action may change it)
        self.arriving = False       # its Poisson arrivals are booked
        # Random streams (see streams.py): its runs' identities start with `run_prefix`;
        # its Poisson gaps come from `arrival_rng`; `arrivals` and `actions` count its
        # arrivals and the runs automations created of it (ordinals of their identities).
        self.run_prefix = run_prefix
        self.arrival_rng: random.Random | None = None
        self.arrivals = 0
        self.actions = 0
        # its runs in PENDING, RUNNING or CANCELLING (the states its concurrency limit's
        # slots are held in), and the most there have been
        self.active = 0
        self.peak = 0


class RunSim:
    """Client-side bookkeeping of one flow run (top-level or subflow)."""

    __slots__ = (
        "rec", "plan", "dep", "queue", "parent", "worker", "type", "token", "sched_t", "final", "dead",
        "gen", "attempt", "status", "left", "trs", "ttypes", "outstanding", "failed", "held",
        "paused", "pause_armed", "pause_left", "crash_at", "cancelling", "pending_final", "resuming",
        "children", "cache_keys", "refs", "booted", "deleted", "recorded",
        "key", "rng", "lives", "draws", "fails", "pause_for", "__weakref__",
    )

    def __init__(self, rec: Any, plan: FlowPlan, dep: DeploymentRT | None, key: str, rng: random.Random,
                 parent: Any = None) -> None:
        self.rec = rec
        self.plan = plan
        self.dep = dep
        self.queue = dep.queue if dep is not None else None
        # (a weak reference to the parent RunSim, node index, parent gen) for subflows:
        # the parent holds the child in `children`, and a strong link back would
        # make every subflow pair a reference cycle
        self.parent = parent
        self.worker: WorkerRT | None = None
        self.type: StateType | None = None
        self.token = 0
        self.sched_t = 0.0
        self.final = False
        self.dead = False
        self.deleted = False   # its flow run is gone from the store (a deployment's pause deleted it)
        # (virtual time, final state type) it was counted finished with; None: not counted
        self.recorded: tuple[float, str] | None = None
        self.gen = 0
        self.attempt = 0
        n = len(plan.nodes)
        self.status = [WAITING] * n
        self.left = list(plan.indegree)
        self.trs: list[Any] = [None] * n
        self.refs: list[Any] = [None] * n    # TaskRunResult of trs[i], for downstream task_inputs
        self.ttypes: list[StateType | None] = [None] * n
        self.outstanding = n
        self.failed = 0
        self.held: list[int] = []
        self.paused = False
        self.pause_armed = False
        self.pause_left = 0
        self.crash_at = -1
        self.cancelling = False
        self.pending_final: Any = None
        self.resuming = False
        # Its flow engine is running (it proposed RUNNING since its last submission):
        # from then on a termination signal is caught and reported as a crash.
        self.booted = False
        self.children: dict[int, "RunSim"] = {}
        self.cache_keys: dict[int, str] = {}
        # Its random stream (streams.py) and the identity it was seeded from; dropped
        # when the run is let go (a Random holds 2.5 KB), made anew if it is driven again.
        self.key = key
        self.rng: random.Random | None = rng
        self.lives = 0
        # The current attempt's first-try draws per node (FlowPlan.draw_attempt), and
        # whether each node's current try fails (None: no try yet in this attempt).
        self.draws: list[tuple[float, bool, int] | None] = []
        self.fails: list[bool | None] = []
        self.pause_for = 0.0   # how long an armed pause lasts (drawn with the attempt)

    def drive_again(self) -> None:
        """It is driven afresh (a subflow run loaded by a flow retry, a run back in its
        work queue): no longer done, left, cancelling, paused or holding task runs."""
        self.final = self.dead = self.cancelling = self.paused = self.resuming = False
        self.held = []
        if self.rng is None:
            self.lives += 1
            self.rng = stream(revived_key(self.key, self.lives))
