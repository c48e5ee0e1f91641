"""`prefect.server.models.concurrency_limits` (tag limits, "v1"), awaitable."""
from __future__ import annotations

from typing import Any

from ..concurrency import limits_for_tags
from ..records import ConcurrencyLimit
from ..validation import as_str_list, as_uuid
from ._facade import engine_of, facade, given_fields

__all__ = [
    "create_concurrency_limit", "read_concurrency_limit", "read_concurrency_limit_by_tag",
    "read_concurrency_limits", "reset_concurrency_limit_by_tag", "delete_concurrency_limit",
    "delete_concurrency_limit_by_tag", "filter_concurrency_limits_for_orchestration",
]


@facade
async def create_concurrency_limit(session: Any, concurrency_limit: Any) -> ConcurrencyLimit:
    """Create a tag limit, or update the limit of the existing one for that tag. O(1)."""
    engine = engine_of(session)
    fields = given_fields(concurrency_limit, "concurrency_limit", "concurrency_limits.create_concurrency_limit",
                          required=("tag", "concurrency_limit"), allowed=("tag", "concurrency_limit", "active_slots"))
    return engine.create_concurrency_limit(**fields)


@facade
async def read_concurrency_limit(session: Any, concurrency_limit_id: Any) -> ConcurrencyLimit | None:
    """The tag limit with this id, or None. O(1)."""
    engine = engine_of(session)
    key = as_uuid(concurrency_limit_id, "concurrency_limit_id")
    with engine._lock:
        return engine._table("concurrency_limit").get(key)


@facade
async def read_concurrency_limit_by_tag(session: Any, tag: str) -> ConcurrencyLimit | None:
    """The limit for `tag`, or None. O(1)."""
    return engine_of(session).read_concurrency_limit_by_tag(tag)


@facade
async def read_concurrency_limits(session: Any, limit: int | None = None, offset: int | None = None) -> list[ConcurrencyLimit]:
    """Tag limits ordered by tag, paginated. O(n log n)."""
    return engine_of(session).read_concurrency_limits(limit=limit, offset=offset or 0)


@facade
async def reset_concurrency_limit_by_tag(session: Any, tag: str, slot_override: list | None = None) -> ConcurrencyLimit | None:
    """Empty (or replace) the active slots of `tag`'s limit; None if no such limit."""
    return engine_of(session).reset_concurrency_limit_by_tag(tag, slot_override)


@facade
async def delete_concurrency_limit(session: Any, concurrency_limit_id: Any) -> bool:
    """Delete a tag limit by id; True iff it existed. O(1)."""
    engine = engine_of(session)
    key = as_uuid(concurrency_limit_id, "concurrency_limit_id")
    with engine.transaction():
        rec = engine._table("concurrency_limit").get(key)
        if rec is None:
            return False
        engine._store.delete("concurrency_limit", rec)
        return True


@facade
async def delete_concurrency_limit_by_tag(session: Any, tag: str) -> bool:
    """Delete the limit for `tag`; True iff it existed."""
    return engine_of(session).delete_concurrency_limit_by_tag(tag)


@facade
async def filter_concurrency_limits_for_orchestration(session: Any, tags: list) -> list[ConcurrencyLimit]:
    """The tag limits of these tags, ordered by tag (Prefect also locks the rows;
    each engine call is atomic already). O(k log k) for k tags."""
    engine = engine_of(session)
    wanted = as_str_list(tags, "tags")
    with engine._lock:
        return limits_for_tags(engine, wanted)
