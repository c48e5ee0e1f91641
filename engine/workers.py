"""Work pools and queues as workers see them: their creation (a pool with its
default queue), updates with Prefect's status and priority bookkeeping, deletion,
`get_scheduled_flow_runs`, the query a worker polls with, and the workers
themselves: heartbeats, listing under a WorkerFilter, deletion (Prefect 3.1.0
models/workers.py and its SQLite query get-runs-from-worker-queues.sql).

Functions take the Engine and run inside the caller's transaction; the Engine's
methods of the same names are the public API.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

import attrs

from .errors import UniquenessError, ValidationError, shown
from .filters import FlowRunFilter, WorkerFilter, WorkPoolFilter, WorkQueueFilter, matching, parse_filter
from .queries import read_flow_runs, window
from .records import Worker, WorkerFlowRunResponse, WorkPool, WorkQueue
from .states import StateType, new_id
from .validation import (
    as_bool, as_count, as_datetime, as_field_mapping, as_int, as_name, as_priority, as_str, as_text, as_uuid,
    as_uuid_list,
    as_work_status, check_base_job_template, coerce_fields, merged_fields,
)

__all__ = [
    "bulk_update_work_queue_priorities", "queue_named", "create_work_pool", "read_work_pools", "count_work_pools", "update_work_pool",
    "delete_work_pool", "create_work_queue", "read_work_queues", "update_work_queue", "delete_work_queue",
    "get_scheduled_flow_runs",
    "worker_heartbeat", "read_workers", "delete_worker",
]

# A queue polled this recently counts as READY when it is unpaused (Prefect's
# WORK_QUEUE_LAST_POLLED_TIMEOUT).
LAST_POLLED_TIMEOUT = _dt.timedelta(seconds=60)
# get_scheduled_flow_runs' caps when none is given (the query's bound defaults).
DEFAULT_LIMIT = 1000
# The states of runs holding a pool or queue slot (a poll counts them per queue).
_BUSY_TYPES = (StateType.PENDING, StateType.RUNNING)
# What create_work_pool / create_work_queue take: not the pool's default queue, which
# creating the pool makes, nor a queue's status, which Prefect's WorkQueueCreate lacks.
_WORK_POOL_FIELDS = frozenset(attrs.fields_dict(WorkPool)) - {"created", "updated", "default_queue_id"}
_WORK_QUEUE_FIELDS = frozenset(attrs.fields_dict(WorkQueue)) - {"created", "updated", "status"}


def bulk_update_work_queue_priorities(engine: Any, work_pool_id: Any, new_priorities: Any) -> None:
    """Give the pool's queues named in `new_priorities` ({queue id: priority}) their
    priorities, moving the others only as needed, by Prefect's algorithm: the named
    queues, by new priority, are each placed before the first queue whose priority
    is at least theirs (one with no such queue keeps its number and is left out of
    the next step, even if that step later reaches it, as in Prefect); then, in
    that order, each queue not above the one before it takes that one's number + 1.
    Ids not in the pool are ignored; an unknown pool is a no-op (as in Prefect).
    Duplicate target priorities raise ValidationError. O(q²) for q queues in the
    pool (Prefect's own cost; pools have a handful)."""
    pool_id = as_uuid(work_pool_id, "work_pool_id")
    wanted: dict = {}
    for key, priority in dict(as_field_mapping(new_priorities, "new_priorities") or {}).items():
        wanted[as_uuid(key, "new_priorities key")] = as_priority(priority, "work_queue.priority")
    if len(set(wanted.values())) != len(wanted):
        raise ValidationError(f"new_priorities: duplicate target priorities {sorted(wanted.values())}")
    _renumber(engine, pool_id, wanted, engine._clock.now())


def queue_named(engine: Any, pool_id: Any, name: str) -> WorkQueue | None:
    """The pool's queue called `name`, or None. O(queues in the pool)."""
    bucket = engine._store.tables["work_queue"].by_name["work_pool_id"].get(pool_id)
    return next((q for q in bucket.values() if q.name == name), None)


def queue_named_or_created(engine: Any, pool_id: Any, name: str) -> WorkQueue:
    """The pool's queue called `name`, created (first free priority) if it has none
    (Prefect's lookup with create_queue_if_not_found). O(q²) for q queues to create."""
    return queue_named(engine, pool_id, name) or create_work_queue(engine, pool_id, name, {})


DEFAULT_AGENT_WORK_POOL_NAME = "default-agent-pool"


def ensure_work_queue_exists(engine: Any, name: str) -> WorkQueue:
    """Prefect's work_queues.ensure_work_queue_exists, for a queue named without a
    pool: the queue called `name` in the "default-agent-pool" when that pool exists,
    else the oldest queue of that name in any pool; failing that, one created with
    priority 1 in the default agent pool (the pool created first if missing, whose own
    queue answers for "default"). O(queues) to look, O(q²) to create."""
    pool = engine._unique("work_pool", "name", DEFAULT_AGENT_WORK_POOL_NAME)
    if pool is not None:
        queue = queue_named(engine, pool.id, name)
    else:
        queue = next((q for q in engine._store.tables["work_queue"].rows.values() if q.name == name), None)
    if queue is not None:
        return queue
    if pool is None:
        pool = create_work_pool(engine, DEFAULT_AGENT_WORK_POOL_NAME, "prefect-agent", {})
    if name == "default":  # the pool's own queue, renamed or not
        return engine._store.tables["work_queue"].rows[pool.default_queue_id]
    return create_work_queue(engine, pool.id, name, {"priority": 1})


def _by_priority(engine: Any, pool_id: Any) -> list[WorkQueue]:
    """A pool's queues by priority, ties oldest first: the order of Prefect's index
    on (work_pool_id, priority), whose ties come in insertion order."""
    bucket = engine._store.tables["work_queue"].by_name["work_pool_id"].get(pool_id)
    return sorted(bucket.values(), key=lambda q: (q.priority, q.created))  # stable beyond that


def _renumber(engine: Any, pool_id: Any, wanted: dict, now: _dt.datetime) -> None:
    # Checked arguments: the body of bulk_update_work_queue_priorities, shared by
    # create_work_queue, update_work_queue and delete_work_queue (as in Prefect).
    store = engine._store
    queues = _by_priority(engine, pool_id)
    placed = [q for q in queues if q.id not in wanted]
    priorities = {q.id: q.priority for q in queues}  # the order's working values
    for queue in sorted((q for q in queues if q.id in wanted), key=lambda q: wanted[q.id]):
        priorities[queue.id] = target = wanted[queue.id]
        at = next((i for i, q in enumerate(placed) if priorities[q.id] >= target), None)
        if at is not None:
            placed.insert(at, queue)
    last = 0
    for q in placed:
        if priorities[q.id] <= last:
            last += 1
            priorities[q.id] = last
        else:
            last = priorities[q.id]
    for q in queues:
        if priorities[q.id] != q.priority:
            store.touch("work_queue", q)
            q.priority, q.updated = priorities[q.id], now


def _update_values(kind: str, given: Any, fields: dict, allowed: frozenset[str]) -> dict:
    # update_*(id, {"field": value}) and update_*(id, field=value), keywords winning.
    return coerce_fields(kind, merged_fields(given, fields, kind), allowed)


def create_work_pool(engine: Any, name: str, type: str, fields: dict) -> WorkPool:
    """Create a work pool with its "default" queue. Names are unique. O(1)."""
    name = as_name(name, "work pool name")
    type = as_text(type, "work pool type")  # (Prefect's WorkPoolCreate: a string, never None)
    if not name.strip("'\" "):  # Prefect's pool names must hold more than quotes and spaces
        raise ValidationError(f"work pool name must be a non-empty string without / % & > <, got {shown(name)}")
    if engine._store.tables["work_pool"].by_name["name"].get(name):
        raise UniquenessError(f"a work pool named {shown(name)} already exists")
    values = coerce_fields("work_pool", fields, _WORK_POOL_FIELDS - {"name", "type"})
    pool = WorkPool(name=name, type=type, **values)
    if pool.type != "prefect-agent":  # Prefect sets these pools' status from is_paused
        pool.status = "PAUSED" if pool.is_paused else "NOT_READY"
    now = engine._clock.now()
    engine._stamp(pool, now)
    engine._insert("work_pool", pool)
    queue = WorkQueue(name="default", work_pool_id=pool.id, description="The work pool's default queue.")
    engine._stamp(queue, now)
    engine._insert("work_queue", queue)
    pool.default_queue_id = queue.id
    return pool


def read_work_pools(engine: Any, work_pool_filter: Any, offset: Any, limit: Any) -> list[WorkPool]:
    """Pools matching the filter (a WorkPoolFilter or its JSON shape), by name,
    paginated. O(p log p) for p pools."""
    page = window(offset, limit)
    pools = list(engine._store.tables["work_pool"].rows.values())
    return sorted(matching(WorkPoolFilter, work_pool_filter, "work_pool_filter", pools, engine._store.tables),
                  key=lambda p: p.name)[page]


def read_work_queues(engine: Any, work_pool_id: Any, work_queue_filter: Any, offset: Any,
                     limit: Any) -> list[WorkQueue]:
    """A pool's queues matching the filter, by priority (equal ones, which Prefect's
    renumbering can leave, oldest first, as Prefect's index gives them), paginated.
    O(q log q) for q queues in the pool."""
    page = window(offset, limit)
    queues = _by_priority(engine, as_uuid(work_pool_id, "work_pool_id"))
    return matching(WorkQueueFilter, work_queue_filter, "work_queue_filter", queues, engine._store.tables)[page]


def count_work_pools(engine: Any, work_pool_filter: Any) -> int:
    """Number of pools matching the filter. O(p) for p pools (O(1) without one)."""
    pools = engine._store.tables["work_pool"].rows
    if work_pool_filter is None:
        return len(pools)
    return len(matching(WorkPoolFilter, work_pool_filter, "work_pool_filter", list(pools.values()),
                        engine._store.tables))


def delete_work_pool(engine: Any, work_pool_id: Any) -> bool:
    """Delete a pool, its workers and its queues (each as delete_work_queue does).
    True iff it existed. O(w + q + d + r) for w workers, q queues, and the d
    deployments and r runs in those queues."""
    pool = engine._table("work_pool").get(as_uuid(work_pool_id, "work_pool_id"))
    if pool is None:
        return False
    store = engine._store
    store.delete_where("worker", "work_pool_id", pool.id)  # Prefect: ON DELETE CASCADE from the pool
    for queue in list(store.tables["work_queue"].by_name["work_pool_id"].get(pool.id).values()):
        _delete_work_queue_row(engine, queue)
    store.delete("work_pool", pool)
    return True


def create_work_queue(engine: Any, work_pool_id: Any, name: str, fields: dict) -> WorkQueue:
    """Create a queue in a pool; (pool, name) is unique. Without a priority (or with
    None) it takes the pool's first free number; with one it is placed as
    bulk_update_work_queue_priorities places it. O(q²) for q queues in the pool."""
    pool = engine._require("work_pool", as_uuid(work_pool_id, "work_queue.work_pool_id"), "Work pool",
                           "work_queue.work_pool_id")
    name = as_name(name, "work queue name")
    if queue_named(engine, pool.id, name) is not None:
        raise UniquenessError(f"work pool {shown(pool.name)} already has a queue named {shown(name)}")
    if "priority" in fields and fields["priority"] is None:  # None: the first free number, as not given
        del fields["priority"]
    if "description" in fields and fields["description"] is None:  # Prefect's insert leaves a None out
        del fields["description"]
    values = coerce_fields("work_queue", fields, _WORK_QUEUE_FIELDS - {"name", "work_pool_id"})
    priority = values.pop("priority", None)
    others = _by_priority(engine, pool.id)
    # Priorities in a pool are unique, as Prefect keeps them: without one a queue
    # takes the first free number; with one it gets it and the queues at or
    # after it move down as little as needed.
    first_free = next((i + 1 for i, q in enumerate(others) if q.priority != i + 1), len(others) + 1)
    queue = WorkQueue(name=name, work_pool_id=pool.id, priority=priority or first_free, **values)
    now = engine._clock.now()
    engine._stamp(queue, now)
    engine._insert("work_queue", queue)
    if priority is not None:
        _renumber(engine, pool.id, {queue.id: priority}, now)
    return queue


def delete_work_queue(engine: Any, work_queue_id: Any) -> bool:
    """Delete a queue, leaving its flow runs and deployments without one, and
    renumber the pool's priorities as bulk_update_work_queue_priorities does with
    no targets. True iff it existed; a pool's default queue raises ValidationError
    (it goes only with its pool). O(d + r + q log q) for d deployments and r
    runs in the queue, q queues in the pool."""
    queue = engine._table("work_queue").get(as_uuid(work_queue_id, "work_queue_id"))
    if queue is None:
        return False
    pool = engine._store.tables["work_pool"].rows.get(queue.work_pool_id)
    if pool is not None and pool.default_queue_id == queue.id:
        # Prefect: a RESTRICT foreign key from the pool, turned into this ValueError.
        raise ValidationError(f"can't delete a pool's default queue ({shown(queue.name)} of pool {shown(pool.name)})")
    _delete_work_queue_row(engine, queue)
    # As Prefect does after a delete: repairs duplicate priorities (gaps stay).
    _renumber(engine, queue.work_pool_id, {}, engine._clock.now())
    return True


def _delete_work_queue_row(engine: Any, queue: WorkQueue) -> None:
    store = engine._store
    store.set_null("flow_run", "work_queue_id", queue.id)
    store.set_null("deployment", "work_queue_id", queue.id)
    store.delete("work_queue", queue)


_POOL_UPDATE = frozenset({"description", "is_paused", "base_job_template", "concurrency_limit"})


def update_work_pool(engine: Any, work_pool_id: Any, given: Any, fields: dict) -> bool:
    """Set the given fields of a pool (Prefect's WorkPoolUpdate). Pausing sets the
    status PAUSED; unpausing sets READY if one of the pool's workers is ONLINE,
    else NOT_READY; "prefect-agent" pools keep their status. Raises
    ObjectNotFoundError for an unknown pool, as Prefect does. O(1), O(w) for w
    workers of the pool when unpausing."""
    values = _update_values("work_pool", given, fields, _POOL_UPDATE)
    if "base_job_template" in values:  # WorkPoolUpdate's validator (create takes a core WorkPool's: unchecked)
        check_base_job_template(values["base_job_template"], "work_pool.base_job_template")
    pool_id = as_uuid(work_pool_id, "work_pool_id")
    pool: WorkPool = engine._require("work_pool", pool_id, "Work pool")
    now = engine._clock.now()
    if pool.type != "prefect-agent" and "is_paused" in values:
        values["status"] = "PAUSED" if values["is_paused"] else "READY" if _has_online_worker(engine, pool.id) \
            else "NOT_READY"
    if "status" in values:
        values.update(_status_change(values["status"], now))
    engine._write("work_pool", pool, values, now)
    return True


_QUEUE_UPDATE = frozenset({"name", "description", "is_paused", "concurrency_limit", "priority", "last_polled",
                           "filter"})


def update_work_queue(engine: Any, work_queue_id: Any, given: Any, fields: dict,
                      default_status: Any = "NOT_READY") -> bool:
    """Set the given fields of a queue (Prefect's WorkQueueUpdate). A new priority is
    placed as bulk_update_work_queue_priorities places it; pausing sets PAUSED unless already so;
    unpausing a PAUSED queue sets READY if it was polled in the last 60 s, else
    `default_status` (NOT_READY unless given, as in Prefect). False for an unknown
    queue. O(q²) for a priority, else O(1)."""
    default_status = as_work_status(default_status, "default_status")  # a status enum or its name
    # (A priority of None is refused as not an integer: Prefect stores the NULL and
    # then fails comparing it while renumbering.)
    values = _update_values("work_queue", given, fields, _QUEUE_UPDATE)
    queue_id = as_uuid(work_queue_id, "work_queue_id")
    if "name" in values:
        values["name"] = as_name(values["name"], "work queue name")
    queue: WorkQueue | None = engine._store.tables["work_queue"].rows.get(queue_id)
    if queue is None:
        return False
    if "name" in values and values["name"] != queue.name and queue_named(engine, queue.work_pool_id, values["name"]):
        raise UniquenessError(f"the work pool already has a queue named {shown(values['name'])}")
    now = engine._clock.now()
    if "is_paused" in values:
        if values["is_paused"] and queue.status != "PAUSED":
            values["status"] = "PAUSED"
        elif not values["is_paused"] and queue.status == "PAUSED":
            polled = values.get("last_polled", queue.last_polled)
            values["status"] = "READY" if polled is not None and now - polled <= LAST_POLLED_TIMEOUT \
                else default_status
    priority = values.pop("priority", None)
    engine._write("work_queue", queue, values, now)
    if priority is not None:  # (not indexed: the queue needs no refiling for it)
        _renumber(engine, queue.work_pool_id, {queue.id: priority}, now)
    return True


def get_scheduled_flow_runs(
    engine: Any,
    work_pool_ids: Any = None,
    work_queue_ids: Any = None,
    scheduled_before: Any = None,
    scheduled_after: Any = None,
    limit: Any = None,
    respect_queue_priorities: bool | None = None,
) -> list[WorkerFlowRunResponse]:
    """SCHEDULED flow runs a worker may submit now, as Prefect's worker query picks them.

    Only unpaused queues of unpaused pools count (narrowed to `work_pool_ids` /
    `work_queue_ids` when given and not empty). From each queue come its runs with
    `scheduled_after <= next_scheduled_start_time <= scheduled_before` (bounds
    optional), earliest first, at most as many as the queue has free slots (its
    concurrency limit less its PENDING and RUNNING runs; 1000 without a limit); from
    each pool at most its free slots (its limit less the PENDING and RUNNING runs in
    all its queues), taken in queue-priority order when `respect_queue_priorities`
    (the default) and by time otherwise. The answer is ordered by each run's rank in
    its pool (with priorities) and then time, and cut at `limit` (default 1000).

    O(Q·k log n) for Q candidate queues and k runs taken from each, plus O(1) per
    queue for the PENDING/RUNNING counts of the queues and pools that have limits
    (the first such poll builds their index in O(n)).
    """
    # An empty list narrows nothing, as in Prefect's query template (`{% if work_pool_ids %}`).
    pool_ids = None if work_pool_ids is None else as_uuid_list(work_pool_ids, "work_pool_ids") or None
    queue_ids = None if work_queue_ids is None else as_uuid_list(work_queue_ids, "work_queue_ids") or None
    before = as_datetime(scheduled_before, "scheduled_before")
    after = as_datetime(scheduled_after, "scheduled_after")
    limit = DEFAULT_LIMIT if limit is None else as_count(limit, "limit")
    if respect_queue_priorities is None:
        respect_queue_priorities = True
    respect = as_bool(respect_queue_priorities, "respect_queue_priorities")

    tables = engine._store.tables
    pools = tables["work_pool"].rows
    queues_of = tables["work_queue"].by_name["work_pool_id"]
    if pool_ids is not None:
        candidate_pools = tables["work_pool"].existing(pool_ids)
    else:
        candidate_pools = list(pools.values())
    wanted_queues = None if queue_ids is None else set(queue_ids)

    by_queue_state = tables["flow_run"].by_name["work_queue_id+state_type"]

    def busy(queue_list: list) -> int:
        # The queues' PENDING and RUNNING runs: O(1) a queue from the index of runs by
        # (queue, state type), however many runs are busy elsewhere or done here.
        count = by_queue_state.count
        return sum(count((q.id, state_type)) for q in queue_list for state_type in _BUSY_TYPES)

    times: dict = {}
    if before is not None:
        times["before_"] = before
    if after is not None:
        times["after_"] = after
    scheduled = {"state": {"type": {"any_": ["SCHEDULED"]}}}
    if times:
        scheduled["next_scheduled_start_time"] = times
    scheduled = parse_filter(FlowRunFilter, scheduled, "flow_runs")  # once, not per queue

    ranked: list = []  # (pool rank, time, response); the stable sort keeps pools' order on ties
    for pool in candidate_pools:
        if pool.is_paused:
            continue
        pool_queues = list(queues_of.get(pool.id).values())
        pool_free = DEFAULT_LIMIT
        if pool.concurrency_limit is not None:
            # (the pool's count covers all of its queues, paused ones included)
            pool_free = min(max(0, pool.concurrency_limit - busy(pool_queues)), DEFAULT_LIMIT)
        taken = []
        for queue in pool_queues:
            if queue.is_paused or (wanted_queues is not None and queue.id not in wanted_queues):
                continue
            free = DEFAULT_LIMIT
            if queue.concurrency_limit is not None:
                free = min(max(0, queue.concurrency_limit - busy([queue])), DEFAULT_LIMIT)
            take = min(free, pool_free, limit)
            if take <= 0:
                continue
            runs = read_flow_runs(engine, None, scheduled, None, None, None, {"id": {"any_": [queue.id]}},
                                  0, take, "NEXT_SCHEDULED_START_TIME_ASC")
            for run in runs:
                taken.append(((queue.priority,) if respect else (), run, queue))
        # Rank within the pool: priority (when respected), then time; ties keep
        # the time order read_flow_runs gave.
        taken.sort(key=lambda item: (item[0], _time_key(item[1])))
        for rank, (_, run, queue) in enumerate(taken[:pool_free], start=1):
            ranked.append(((rank,) if respect else (), _time_key(run),
                           WorkerFlowRunResponse(work_pool_id=pool.id, work_queue_id=queue.id, flow_run=run)))
    ranked.sort(key=lambda item: item[:2])
    return [item[2] for item in ranked[:limit]]


_MIN_TIME = _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)


def _time_key(run: Any) -> _dt.datetime:
    # A SCHEDULED run without a next start time sorts first, as NULL does in SQLite.
    t = run.next_scheduled_start_time
    return _MIN_TIME if t is None else t


# Workers -----------------------------------------------------------------------------------

def _has_online_worker(engine: Any, pool_id: Any) -> bool:
    bucket = engine._store.tables["worker"].by_name["work_pool_id"].get(pool_id)
    return any(w.status == "ONLINE" for w in bucket.values())


def worker_heartbeat(engine: Any, work_pool_id: Any, worker_name: Any, heartbeat_interval_seconds: Any,
                     mark_pool_ready: Any = False) -> bool:
    """Record a heartbeat of the pool's worker `worker_name`, creating the worker on
    its first one (Prefect's upsert on (work_pool_id, name)): `last_heartbeat_time`
    becomes the engine's now and `status` ONLINE; `heartbeat_interval_seconds` is
    set only when given (a later heartbeat without it keeps the old value);
    `updated` keeps the creation time, as Prefect's upsert leaves it. Returns True,
    as Prefect does. An unknown pool raises ObjectNotFoundError (Prefect: a foreign
    key IntegrityError).

    `mark_pool_ready` does what Prefect's heartbeat API route adds to the models
    function: a pool whose status is NOT_READY becomes READY (new status event id
    and transition time). O(1)."""
    pool_id = as_uuid(work_pool_id, "work_pool_id")
    name = as_str(worker_name, "worker_name", False)  # any string, "" included, as in Prefect
    interval = None if heartbeat_interval_seconds is None else as_int(heartbeat_interval_seconds,
                                                                      "heartbeat_interval_seconds")
    mark = as_bool(mark_pool_ready, "mark_pool_ready")
    pool = engine._require("work_pool", pool_id, "Work pool")
    now = engine._clock.now()
    worker = engine._unique("worker", "pool_name", (pool_id, name))
    if worker is None:
        worker = Worker(name=name, work_pool_id=pool_id, last_heartbeat_time=now,
                        heartbeat_interval_seconds=interval, status="ONLINE")
        engine._stamp(worker, now)
        engine._insert("worker", worker)
    else:
        # No reindex: neither indexed column (pool, name) changes.
        engine._store.touch("worker", worker)
        worker.last_heartbeat_time = now
        worker.status = "ONLINE"
        if interval is not None:
            worker.heartbeat_interval_seconds = interval
    if mark and pool.status == "NOT_READY":
        engine._write("work_pool", pool, _status_change("READY", now), now)
    return True


def _status_change(status: str, now: Any) -> dict:
    # A pool's new status, with the event id and time Prefect stamps on every change.
    return {"status": status, "last_status_event_id": new_id(), "last_transitioned_status_at": now}


def _heartbeat_order(worker: Worker) -> tuple:
    return worker.last_heartbeat_time, worker.created


def read_workers(engine: Any, work_pool_id: Any, worker_filter: Any, limit: Any, offset: Any) -> list[Worker]:
    """The pool's workers matching `worker_filter` (a WorkerFilter or its JSON
    shape), latest heartbeat first, paginated. Equal heartbeat times come newest
    worker first, as SQLite walks Prefect's index on last_heartbeat_time backwards
    (rowid order): by creation time, then the order they were filed in. An unknown
    pool has no workers. O(w log w) for w workers of the pool."""
    page = window(offset, limit)
    pool_id = as_uuid(work_pool_id, "work_pool_id")
    tables = engine._store.tables
    workers = matching(WorkerFilter, worker_filter, "worker_filter",
                       list(tables["worker"].by_name["work_pool_id"].get(pool_id).values()), tables)
    workers.reverse()  # filed oldest first: the sort below is stable
    workers.sort(key=_heartbeat_order, reverse=True)
    return workers[page]


def delete_worker(engine: Any, work_pool_id: Any, worker_name: Any) -> bool:
    """Delete the pool's worker `worker_name`. True iff it existed (an unknown pool
    has none). O(1)."""
    pool_id = as_uuid(work_pool_id, "work_pool_id")
    worker = engine._unique("worker", "pool_name", (pool_id, as_str(worker_name, "worker_name", False)))
    if worker is None:
        return False
    engine._store.delete("worker", worker)
    return True
