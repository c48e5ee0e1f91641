"""Prefect's foreman service, one pass at a time, and the queue-poll bookkeeping it
reads (Prefect 3.1.0: services/foreman.py, models/work_queues.py).

A worker that stops heartbeating goes OFFLINE, a READY pool left without an ONLINE
worker goes NOT_READY, and READY deployments and queues that nobody has polled for a
minute go NOT_READY. Polls are what make queues and deployments READY again: Prefect's
worker-poll API route calls `mark_work_queues_ready` and `mark_deployments_ready`
after every `get_scheduled_flow_runs`.

The engine runs no services: `Engine.run_foreman_once` is one pass, for a test or a
simulation to call on its own schedule (Prefect's default loop: every 15 s).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

import attrs

from .records import DeploymentStatus
from .validation import as_count, as_uuid_list
from .workers import _status_change

__all__ = [
    "ForemanPass",
    "INACTIVITY_HEARTBEAT_MULTIPLE",
    "FALLBACK_HEARTBEAT_INTERVAL_SECONDS",
    "DEPLOYMENT_LAST_POLLED_TIMEOUT_SECONDS",
    "WORK_QUEUE_LAST_POLLED_TIMEOUT_SECONDS",
    "run_foreman_once",
    "mark_work_queues_ready",
    "mark_work_queues_not_ready",
]

# Prefect 3.1.0's PREFECT_SERVER_SERVICES_FOREMAN_* defaults.
INACTIVITY_HEARTBEAT_MULTIPLE = 3
FALLBACK_HEARTBEAT_INTERVAL_SECONDS = 30
DEPLOYMENT_LAST_POLLED_TIMEOUT_SECONDS = 60
WORK_QUEUE_LAST_POLLED_TIMEOUT_SECONDS = 60


@attrs.frozen
class ForemanPass:
    """What one foreman pass changed, in the order it changed it: the workers set
    OFFLINE (as (work_pool_id, name)), then the ids of the pools, deployments and
    queues set NOT_READY."""

    workers_offline: tuple[tuple[Any, str], ...] = ()
    work_pools_not_ready: tuple[Any, ...] = ()
    deployments_not_ready: tuple[Any, ...] = ()
    work_queues_not_ready: tuple[Any, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.workers_offline or self.work_pools_not_ready or self.deployments_not_ready
                    or self.work_queues_not_ready)


def run_foreman_once(engine: Any, inactivity_heartbeat_multiple: Any, fallback_heartbeat_interval_seconds: Any,
                     deployment_last_polled_timeout_seconds: Any,
                     work_queue_last_polled_timeout_seconds: Any) -> ForemanPass:
    """Prefect's Foreman.run_once, its four steps in its order. O(workers + pools +
    deployments + queues): these are small tables, scanned."""
    multiple = as_count(inactivity_heartbeat_multiple, "inactivity_heartbeat_multiple")
    fallback = as_count(fallback_heartbeat_interval_seconds, "fallback_heartbeat_interval_seconds")
    deployment_timeout = as_count(deployment_last_polled_timeout_seconds, "deployment_last_polled_timeout_seconds")
    queue_timeout = as_count(work_queue_last_polled_timeout_seconds, "work_queue_last_polled_timeout_seconds")
    now = engine._clock.now()
    store = engine._store
    tables = store.tables

    # 1. ONLINE workers whose last heartbeat is more than `multiple` of their own
    # interval (or the fallback) ago. Prefect's raw UPDATE leaves `updated` alone.
    offline = []
    online_pools = set()  # the pools with a worker still ONLINE after this step
    for worker in tables["worker"].rows.values():
        if worker.status != "ONLINE":
            continue
        interval = worker.heartbeat_interval_seconds
        if worker.last_heartbeat_time < _ago(now, multiple * (fallback if interval is None else interval)):
            store.touch("worker", worker)
            worker.status = "OFFLINE"
            offline.append((worker.work_pool_id, worker.name))
        else:
            online_pools.add(worker.work_pool_id)

    # 2. READY pools with no ONLINE worker (Prefect: update_work_pool with a status,
    # which stamps a new status event id and transition time).
    pools_not_ready = [pool for pool in tables["work_pool"].rows.values()
                       if pool.status == "READY" and pool.id not in online_pools]
    for pool in pools_not_ready:
        engine._write("work_pool", pool, _status_change("NOT_READY", now), now)

    # 3. READY deployments polled before the threshold, whose queue (if it was ever
    # polled) was also polled before it.
    threshold = _ago(now, deployment_timeout)
    queues = tables["work_queue"].rows
    stale = []
    for dep in tables["deployment"].rows.values():
        if dep.status != DeploymentStatus.READY or dep.last_polled is None or not dep.last_polled < threshold:
            continue
        queue = queues.get(dep.work_queue_id)
        queue_polled = None if queue is None else queue.last_polled
        if queue_polled is None or queue_polled < threshold:
            stale.append(dep)
    _write_all(engine, "deployment", stale, {"status": DeploymentStatus.NOT_READY}, now)

    # 4. READY queues polled before their threshold.
    threshold = _ago(now, queue_timeout)
    stale_queues = [q for q in queues.values()
                    if q.status == "READY" and q.last_polled is not None and q.last_polled < threshold]
    stale_queues.sort(key=lambda q: q.last_polled)  # Prefect's order: oldest poll first
    _write_all(engine, "work_queue", stale_queues, {"status": "NOT_READY"}, now)

    return ForemanPass(
        workers_offline=tuple(offline),
        work_pools_not_ready=tuple(pool.id for pool in pools_not_ready),
        deployments_not_ready=tuple(dep.id for dep in stale),
        work_queues_not_ready=tuple(q.id for q in stale_queues),
    )


def _known_queues(engine: Any, ids: Any, what: str) -> list:
    # The queues of `ids` that exist, each once: what an UPDATE ... WHERE id IN (...) updates.
    return engine._store.tables["work_queue"].existing(as_uuid_list(ids or [], what))


def _write_all(engine: Any, kind: str, records: list, values: dict, now: _dt.datetime) -> None:
    for rec in records:
        engine._write(kind, rec, values, now)


def mark_work_queues_ready(engine: Any, polled_work_queue_ids: Any, ready_work_queue_ids: Any) -> None:
    """Prefect's mark_work_queues_ready (what its worker-poll route calls): the
    polled queues get `last_polled` = now; the ready ones also status READY. Unknown
    ids are ignored. Every queue written is stamped `updated`. O(ids)."""
    polled = _known_queues(engine, polled_work_queue_ids, "polled_work_queue_ids")
    ready = _known_queues(engine, ready_work_queue_ids, "ready_work_queue_ids")
    now = engine._clock.now()
    _write_all(engine, "work_queue", polled, {"last_polled": now}, now)
    _write_all(engine, "work_queue", ready, {"last_polled": now, "status": "READY"}, now)


def mark_work_queues_not_ready(engine: Any, work_queue_ids: Any) -> None:
    """Prefect's mark_work_queues_not_ready: these queues become NOT_READY, whatever
    their status was (a PAUSED one included, as Prefect's UPDATE does). O(ids)."""
    queues = _known_queues(engine, work_queue_ids, "work_queue_ids")
    _write_all(engine, "work_queue", queues, {"status": "NOT_READY"}, engine._clock.now())


def _ago(now: _dt.datetime, seconds: float) -> _dt.datetime:
    """`seconds` before `now`, or the first datetime when that is before year 1 (a
    timeout longer than history: nothing is that old)."""
    try:
        return now - _dt.timedelta(seconds=seconds)
    except OverflowError:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
