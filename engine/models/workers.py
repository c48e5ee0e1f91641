"""`prefect.server.models.workers`, awaitable: work pools and their queues (create,
read, update, delete), the worker's poll (get_scheduled_flow_runs) and the workers
themselves (worker_heartbeat, read_workers, delete_worker). No status events:
emit_work_pool_status_event is not offered."""
from __future__ import annotations

from typing import Any

import attrs

from ..records import Worker, WorkerFlowRunResponse, WorkPool, WorkQueue
from ..workers import queue_named
from ._facade import as_filter, as_mapping, engine_of, facade, given_fields

__all__ = [
    "create_work_pool", "read_work_pool", "read_work_pool_by_name", "read_work_pools", "count_work_pools",
    "update_work_pool", "delete_work_pool",
    "create_work_queue", "read_work_queue", "read_work_queue_by_name", "read_work_queues",
    "update_work_queue", "delete_work_queue", "get_scheduled_flow_runs", "bulk_update_work_queue_priorities",
    "worker_heartbeat", "read_workers", "delete_worker",
]


@facade
async def create_work_pool(session: Any, work_pool: Any) -> WorkPool:
    """Create a work pool (`name` required; names are unique) with its "default"
    queue; without a `type`, a "prefect-agent" pool, as Prefect's WorkPoolCreate
    defaults it (the engine's own default is "process"). O(1)."""
    engine = engine_of(session)
    fields = given_fields(work_pool, "work_pool", "workers.create_work_pool", required=("name",))
    fields.setdefault("type", "prefect-agent")
    return engine.create_work_pool(fields.pop("name"), **fields)


@facade
async def read_work_pool(session: Any, work_pool_id: Any) -> WorkPool | None:
    """The pool with this id, or None. O(1)."""
    return engine_of(session).read_work_pool(work_pool_id)


@facade
async def read_work_pool_by_name(session: Any, work_pool_name: str) -> WorkPool | None:
    """The pool with this name, or None. O(1)."""
    return engine_of(session).read_work_pool_by_name(work_pool_name)


@facade
async def read_work_pools(session: Any, work_pool_filter: Any = None, offset: int | None = None,
                          limit: int | None = None) -> list[WorkPool]:
    """Pools matching the filter, ordered by name, paginated. O(p log p)."""
    return engine_of(session).read_work_pools(as_filter(work_pool_filter), offset, limit)


@facade
async def count_work_pools(session: Any, work_pool_filter: Any = None) -> int:
    """Number of pools matching the filter. O(1) without one, else O(p)."""
    return engine_of(session).count_work_pools(as_filter(work_pool_filter))


@facade
async def update_work_pool(session: Any, work_pool_id: Any, work_pool: Any,
                           emit_status_change: Any = None) -> bool:
    """Set the explicitly given fields (Prefect's WorkPoolUpdate); pausing and
    unpausing set the status (unpausing: READY with an ONLINE worker, else
    NOT_READY). ObjectNotFoundError for an unknown pool. O(1).

    When the status was set, `emit_status_change` (if given) is awaited as Prefect
    awaits it: with keywords event_id, occurred, pre_update_work_pool (a copy of the
    pool before) and work_pool."""
    engine = engine_of(session)
    values = as_mapping(work_pool, "work_pool")
    with engine._lock:  # the copy is of the pool the update changes
        pool = engine.read_work_pool(work_pool_id) if emit_status_change is not None else None
        before = None if pool is None else attrs.evolve(pool)
        updated = engine.update_work_pool(work_pool_id, values)
    if before is not None:
        # (`pool` is the live record: it now holds the update)
        if pool.last_status_event_id != before.last_status_event_id:
            await emit_status_change(event_id=pool.last_status_event_id, occurred=pool.last_transitioned_status_at,
                                     pre_update_work_pool=before, work_pool=pool)
    return updated


@facade
async def delete_work_pool(session: Any, work_pool_id: Any) -> bool:
    """Delete a pool with its workers and queues (their runs and deployments lose
    the queue); True iff it existed."""
    return engine_of(session).delete_work_pool(work_pool_id)


@facade
async def create_work_queue(session: Any, work_pool_id: Any, work_queue: Any) -> WorkQueue:
    """Create a queue in a pool (`name` required; unique in the pool). O(queues of the pool)."""
    engine = engine_of(session)
    fields = given_fields(work_queue, "work_queue", "workers.create_work_queue", required=("name",))
    return engine.create_work_queue(work_pool_id, fields.pop("name"), **fields)


@facade
async def read_work_queue(session: Any, work_queue_id: Any) -> WorkQueue | None:
    """The queue with this id, or None. O(1)."""
    return engine_of(session).read_work_queue(work_queue_id)


@facade
async def read_work_queue_by_name(session: Any, work_pool_name: str, work_queue_name: str) -> WorkQueue | None:
    """The queue `work_queue_name` of the pool `work_pool_name`, or None. O(queues of the pool)."""
    engine = engine_of(session)
    with engine._lock:
        pool = engine.read_work_pool_by_name(work_pool_name)
        if pool is None:
            return None
        return queue_named(engine, pool.id, work_queue_name)


@facade
async def read_work_queues(session: Any, work_pool_id: Any, work_queue_filter: Any = None,
                           offset: int | None = None, limit: int | None = None) -> list[WorkQueue]:
    """A pool's queues by priority (ties oldest first), filtered, paginated. O(q log q)."""
    return engine_of(session).read_work_queues(work_pool_id, as_filter(work_queue_filter), offset, limit)


@facade
async def update_work_queue(session: Any, work_queue_id: Any, work_queue: Any, emit_status_change: Any = None,
                            default_status: Any = "NOT_READY") -> bool:
    """Set the explicitly given fields (Prefect's WorkQueueUpdate): a priority moves
    the others down as little as needed; pausing and unpausing set the status
    (unpausing a queue not polled in the last minute: `default_status`). True iff
    the queue exists. O(queues of the pool).

    When the status changed, `emit_status_change` (if given) is awaited with the
    queue, as Prefect does."""
    engine = engine_of(session)
    values = as_mapping(work_queue, "work_queue")
    with engine._lock:  # the status read is the one the update changes
        queue = engine.read_work_queue(work_queue_id) if emit_status_change is not None else None
        status = None if queue is None else queue.status
        updated = engine.update_work_queue(work_queue_id, values, default_status=default_status)
    if queue is not None and queue.status != status:
        await emit_status_change(queue)
    return updated


@facade
async def bulk_update_work_queue_priorities(session: Any, work_pool_id: Any, new_priorities: Any) -> None:
    """Set the priorities of the queues named in `new_priorities` ({queue id:
    priority}), moving the pool's others only as needed, as Prefect does."""
    engine_of(session).bulk_update_work_queue_priorities(work_pool_id, new_priorities)


@facade
async def get_scheduled_flow_runs(session: Any, work_pool_ids: Any = None, work_queue_ids: Any = None,
                                  scheduled_before: Any = None, scheduled_after: Any = None,
                                  limit: int | None = None,
                                  respect_queue_priorities: bool | None = None) -> list[WorkerFlowRunResponse]:
    """SCHEDULED runs of unpaused queues in unpaused pools that a worker may submit,
    within pool and queue concurrency limits, in Prefect's order. See
    Engine.get_scheduled_flow_runs."""
    return engine_of(session).get_scheduled_flow_runs(work_pool_ids, work_queue_ids, scheduled_before,
                                                      scheduled_after, limit, respect_queue_priorities)


@facade
async def delete_work_queue(session: Any, work_queue_id: Any) -> bool:
    """Delete a queue (its runs and deployments lose it); True iff it existed."""
    return engine_of(session).delete_work_queue(work_queue_id)


@facade
async def worker_heartbeat(session: Any, work_pool_id: Any, worker_name: str,
                           heartbeat_interval_seconds: int | None = None) -> bool:
    """Record a heartbeat of the pool's worker `worker_name` (created on its first):
    last heartbeat now, status ONLINE, the interval only when given. True, as
    Prefect answers; the pool's status is left alone, as in Prefect's models layer
    (its API route also sets a NOT_READY pool READY: Engine.worker_heartbeat's
    `mark_pool_ready`). ObjectNotFoundError for an unknown pool. O(1)."""
    return engine_of(session).worker_heartbeat(work_pool_id, worker_name, heartbeat_interval_seconds)


@facade
async def read_workers(session: Any, work_pool_id: Any, worker_filter: Any = None, limit: int | None = None,
                       offset: int | None = None) -> list[Worker]:
    """The pool's workers matching the filter, latest heartbeat first, paginated.
    O(w log w) for w workers of the pool."""
    return engine_of(session).read_workers(work_pool_id, as_filter(worker_filter), limit, offset)


@facade
async def delete_worker(session: Any, work_pool_id: Any, worker_name: str) -> bool:
    """Delete the pool's worker `worker_name`; True iff it existed. O(1)."""
    return engine_of(session).delete_worker(work_pool_id, worker_name)
