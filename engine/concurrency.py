"""Concurrency-slot arithmetic: tag limits (v1, sets of run ids) and global limits
(v2, counters with decay), as the orchestration rules and deletes use them
(spec operations.md §4.1, §4.3). All functions run inside an engine transaction."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

from .errors import UniquenessError, shown
from .records import ConcurrencyLimitV2
from .validation import as_name, coerce_fields

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = ["bulk_increment_active_slots", "bulk_decrement_active_slots", "bulk_update_denied_slots",
           "bulk_read_or_create_concurrency_limits", "update_concurrency_limit_v2", "decayed", "limits_for_tags"]


def decayed(limit: "ConcurrencyLimitV2", now) -> tuple[int, int]:
    """(active, denied) slots after decay since the limit's last update."""
    elapsed = (now - limit.updated).total_seconds()
    rate = limit.slot_decay_per_second
    active = max(0, limit.active_slots - math.floor(rate * elapsed))
    denied_rate = rate if rate > 0 else 1.0 / limit.avg_slot_occupancy_seconds
    denied = max(0, limit.denied_slots - math.floor(denied_rate * elapsed))
    return active, denied


def _active_limits(engine: "Engine", ids: list) -> Iterator["ConcurrencyLimitV2"]:
    # The listed limits that exist and are active, each once: Prefect's bulk updates
    # are one UPDATE ... WHERE id IN (ids) AND active, so a listed id is updated
    # once, and a list with repeats can never report all of its entries updated.
    return (limit for limit in engine._store.tables["concurrency_limit_v2"].existing(ids) if limit.active)


def bulk_increment_active_slots(engine: "Engine", limit_ids: Iterable, slots: int) -> bool:
    """Take `slots` on every listed active limit that has room; True iff all did."""
    store, now = engine._store, engine._clock.now()
    ids = list(limit_ids)
    updated = 0
    for limit in _active_limits(engine, ids):
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
    ids = list(limit_ids)
    updated = 0
    for limit in _active_limits(engine, ids):
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


# Prefect's ConcurrencyLimitV2Update (checked by coerce_fields: no NULLs, nothing negative).
_UPDATABLE = frozenset({"active", "name", "limit", "active_slots", "denied_slots", "slot_decay_per_second"})


def update_concurrency_limit_v2(engine: "Engine", limit: "ConcurrencyLimitV2 | None", fields: Mapping) -> bool:
    """Set the given fields of a global limit (Prefect's ConcurrencyLimitV2Update:
    active, name, limit, active_slots, denied_slots, slot_decay_per_second), and
    `updated` (as Prefect's UPDATE does; the slots are not decayed first). False if
    `limit` is None. Names stay unique. O(1)."""
    # (None is refused: Prefect would write the NULL and fail on the NOT NULL column)
    values = coerce_fields("concurrency_limit_v2", fields, _UPDATABLE)
    if limit is None:
        return False
    if "name" in values and values["name"] != limit.name and \
            engine._unique("concurrency_limit_v2", "name", values["name"]) is not None:
        raise UniquenessError(f"a concurrency limit named {shown(values['name'])} already exists")
    engine._write("concurrency_limit_v2", limit, values, engine._clock.now())
    return True


def bulk_update_denied_slots(engine: "Engine", limit_ids: list, slots: int) -> bool:
    """Add `slots` to the (decayed) denied slots of every listed active limit, as
    Prefect's UPDATE does (only the denied slots: the active ones keep their value,
    and `updated` becomes now). True iff every listed id was updated."""
    store, now = engine._store, engine._clock.now()
    updated = 0
    for limit in _active_limits(engine, limit_ids):
        _, denied = decayed(limit, now)
        store.touch("concurrency_limit_v2", limit)
        limit.denied_slots = denied + slots
        limit.updated = now
        updated += 1
    return updated == len(limit_ids)


def bulk_read_or_create_concurrency_limits(engine: "Engine", names: list, create_if_missing: bool) -> list:
    """The global limits with these names, in name order (Prefect reads them through
    its unique name index); with `create_if_missing`, the missing ones are created
    inactive with a limit of 1 and follow, in name order too (Prefect: set order)."""
    existing = {name: engine._unique("concurrency_limit_v2", "name", name) for name in sorted(set(names))}
    found = [limit for limit in existing.values() if limit is not None]
    if create_if_missing:
        now = engine._clock.now()
        for name, limit in existing.items():
            if limit is None:
                limit = ConcurrencyLimitV2(name=as_name(name, "concurrency_limit_v2.name"), limit=1, active=False)
                engine._stamp(limit, now)
                found.append(engine._insert("concurrency_limit_v2", limit))
    return found


def limits_for_tags(engine: "Engine", tags: Iterable[str]) -> list:
    """Tag limits of `tags`, ordered by tag (Prefect's order). O(tags log tags)."""
    if not tags:
        return []
    by_tag = engine._store.tables["concurrency_limit"].by_name["tag"]
    found = []
    for tag in sorted(set(tags)):
        bucket = by_tag.get(tag)
        if bucket:
            found.extend(bucket.values())
    return found
