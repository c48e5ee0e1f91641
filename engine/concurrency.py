"""Concurrency-slot arithmetic: tag limits (v1, sets of run ids) and global limits
(v2, counters with decay), as the orchestration rules and deletes use them
(spec operations.md §4.1, §4.3). All functions run inside an engine transaction."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .records import ConcurrencyLimitV2

__all__ = ["bulk_increment_active_slots", "bulk_decrement_active_slots", "decayed"]


def decayed(limit: "ConcurrencyLimitV2", now) -> tuple[int, int]:
    """(active, denied) slots after decay since the limit's last update."""
    elapsed = (now - limit.updated).total_seconds()
    rate = limit.slot_decay_per_second
    active = max(0, limit.active_slots - math.floor(rate * elapsed))
    denied_rate = rate if rate > 0 else 1.0 / limit.avg_slot_occupancy_seconds
    denied = max(0, limit.denied_slots - math.floor(denied_rate * elapsed))
    return active, denied


def bulk_increment_active_slots(engine: "Engine", limit_ids: Iterable, slots: int) -> bool:
    """Take `slots` on every listed active limit that has room; True iff all did."""
    store, now = engine._store, engine._clock.now()
    table = store.tables["concurrency_limit_v2"]
    ids = list(limit_ids)
    updated = 0
    # One UPDATE ... WHERE id IN (ids) in Prefect: a listed id takes slots once, and a
    # list with repeats can never report all of its entries updated.
    for limit_id in dict.fromkeys(ids):
        limit = table.rows.get(limit_id)
        if limit is None or not limit.active:
            continue
        active, denied = decayed(limit, now)
        if active + slots <= limit.limit:
            store.touch("concurrency_limit_v2", limit)
            limit.active_slots = active + slots
            limit.denied_slots = denied
            limit.updated = now
            updated += 1
    return updated == len(ids)


def bulk_decrement_active_slots(
    engine: "Engine", limit_ids: Iterable, slots: int, occupancy_seconds: float | None = None
) -> bool:
    """Give back `slots` on every listed active limit (clamped at 0); with
    `occupancy_seconds`, fold the per-slot occupancy into the limit's average (a
    limit of 0 has no slots to average over and keeps its average). The caller has
    checked the arguments (Engine.bulk_decrement_active_slots)."""
    store, now = engine._store, engine._clock.now()
    table = store.tables["concurrency_limit_v2"]
    ids = list(limit_ids)
    updated = 0
    for limit_id in dict.fromkeys(ids):  # each listed limit once, as in bulk_increment
        limit = table.rows.get(limit_id)
        if limit is None or not limit.active:
            continue
        active, denied = decayed(limit, now)
        store.touch("concurrency_limit_v2", limit)
        limit.active_slots = max(0, active - slots)
        limit.denied_slots = denied
        if occupancy_seconds and limit.limit:
            sample = max(occupancy_seconds / slots, 0.1)
            limit.avg_slot_occupancy_seconds += (sample - limit.avg_slot_occupancy_seconds) / (limit.limit * 2)
        limit.updated = now
        updated += 1
    return updated == len(ids)
