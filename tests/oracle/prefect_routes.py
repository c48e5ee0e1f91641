"""Prefect 3.1.0 API routes that the oracle scripts replay on a models-layer session:
what the route does around the models function, step by step. Prefect is imported at
call time, after prefect_sandbox has set up the environment."""
from __future__ import annotations

from typing import Any


async def worker_heartbeat_route(session: Any, pool_name: str, worker_name: str, interval: int | None) -> bool:
    """POST /work_pools/{name}/workers/heartbeat: read the pool by name (the route
    answers 404 if there is none: LookupError here), record the heartbeat, then set a
    NOT_READY pool READY with the route's status-event callback."""
    import prefect.server.schemas.internal  # noqa: F401  (not loaded by the package itself)
    from prefect.server import models, schemas
    from prefect.server.models.workers import emit_work_pool_status_event

    pool = await models.workers.read_work_pool_by_name(session, pool_name)
    if pool is None:
        raise LookupError(f"work pool {pool_name!r} not found")
    await models.workers.worker_heartbeat(session, pool.id, worker_name, heartbeat_interval_seconds=interval)
    if pool.status == schemas.statuses.WorkPoolStatus.NOT_READY:
        await models.workers.update_work_pool(
            session, pool.id, schemas.internal.InternalWorkPoolUpdate(status=schemas.statuses.WorkPoolStatus.READY),
            emit_status_change=emit_work_pool_status_event)
    return True
