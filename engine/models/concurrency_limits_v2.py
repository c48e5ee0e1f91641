"""`prefect.server.models.concurrency_limits_v2` (global limits), awaitable: the parts
the run layer uses (create, read, update, delete, slot arithmetic)."""
from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..queries import window
from ..records import ConcurrencyLimitV2
from ._facade import engine_of, facade, given_fields

__all__ = [
    "create_concurrency_limit", "read_concurrency_limit", "read_all_concurrency_limits",
    "delete_concurrency_limit", "bulk_increment_active_slots", "bulk_decrement_active_slots",
    "update_concurrency_limit", "bulk_update_denied_slots", "bulk_read_or_create_concurrency_limits",
]


@facade
async def create_concurrency_limit(session: Any, concurrency_limit: Any) -> ConcurrencyLimitV2:
    """Create a global limit (`name` and `limit` required; names are unique). O(1)."""
    engine = engine_of(session)
    fields = given_fields(concurrency_limit, "concurrency_limit", "concurrency_limits_v2.create_concurrency_limit",
                          required=("name", "limit"))
    return engine.create_concurrency_limit_v2(**fields)


@facade
async def read_concurrency_limit(session: Any, concurrency_limit_id: Any = None,
                                 name: str | None = None) -> ConcurrencyLimitV2 | None:
    """The limit with this id, or else this name; None if there is none. O(1)."""
    limit_id = _id_or_name(concurrency_limit_id, name, "read_concurrency_limit")
    return engine_of(session).read_concurrency_limit_v2(limit_id, name)


@facade
async def read_all_concurrency_limits(session: Any, limit: int | None, offset: int | None) -> list[ConcurrencyLimitV2]:
    """Global limits ordered by name, paginated. O(n log n)."""
    page = window(offset, limit)
    engine = engine_of(session)
    with engine._lock:
        return sorted(engine._table("concurrency_limit_v2").values(), key=lambda c: c.name)[page]


@facade
async def delete_concurrency_limit(session: Any, concurrency_limit_id: Any = None, name: str | None = None) -> bool:
    """Delete the limit with this id, or else this name (deployments linked to it
    lose the link); True iff it existed. O(indexes)."""
    limit_id = _id_or_name(concurrency_limit_id, name, "delete_concurrency_limit")
    engine = engine_of(session)
    with engine._lock:  # the lookup and the delete see the same limit
        found = engine.read_concurrency_limit_v2(limit_id, name)
        return found is not None and engine.delete_concurrency_limit_v2(found.id)


@facade
async def bulk_increment_active_slots(session: Any, concurrency_limit_ids: list, slots: int) -> bool:
    """Take `slots` on every given active limit, all or none. O(ids)."""
    return engine_of(session).bulk_increment_active_slots(concurrency_limit_ids, slots)


@facade
async def bulk_decrement_active_slots(session: Any, concurrency_limit_ids: list, slots: int,
                                      occupancy_seconds: float | None = None) -> bool:
    """Give `slots` back on every given active limit. O(ids)."""
    return engine_of(session).bulk_decrement_active_slots(concurrency_limit_ids, slots, occupancy_seconds)


@facade
async def update_concurrency_limit(session: Any, concurrency_limit: Any, concurrency_limit_id: Any = None,
                                   name: str | None = None) -> bool:
    """Set the explicitly given fields (Prefect's ConcurrencyLimitV2Update) of the
    limit with this id, or else this name; False if there is none. O(1)."""
    limit_id = _id_or_name(concurrency_limit_id, name, "update_concurrency_limit")
    fields = given_fields(concurrency_limit, "concurrency_limit", "concurrency_limits_v2.update_concurrency_limit")
    engine = engine_of(session)
    with engine._lock:  # the lookup and the update see the same limit
        found = engine.read_concurrency_limit_v2(limit_id, name)
        if found is None:
            return False
        return engine.update_concurrency_limit_v2(found.id, fields)


@facade
async def bulk_update_denied_slots(session: Any, concurrency_limit_ids: list, slots: int) -> bool:
    """Add `slots` to the denied slots of every given active limit. O(ids)."""
    return engine_of(session).bulk_update_denied_slots(concurrency_limit_ids, slots)


@facade
async def bulk_read_or_create_concurrency_limits(session: Any, names: list,
                                                 create_if_missing: bool | None = None) -> list[ConcurrencyLimitV2]:
    """The limits with these names; with `create_if_missing`, the missing ones are
    created inactive with a limit of 1. O(k log k) for k names."""
    return engine_of(session).bulk_read_or_create_concurrency_limits(names, create_if_missing)


def _id_or_name(limit_id: Any, name: Any, function: str) -> Any:
    """The id to look up by, None to look up by name. As in Prefect, a falsy id or
    name counts as not given, and the id wins when both are."""
    if not limit_id and not name:
        raise ValidationError(f"concurrency_limits_v2.{function}(): give a concurrency_limit_id or a name")
    return limit_id or None
