"""Deployments: create (an upsert on flow and name), update and delete, with the
ConcurrencyLimitV2 named ``deployment:<id>`` that carries a deployment's
concurrency limit and the never-run auto-scheduled runs a changed deployment
leaves stale (Prefect 3.1.0 models/deployments.py).

Functions take the Engine and run inside the caller's transaction; the Engine's
methods of the same names are the public API.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ObjectNotFoundError, ValidationError
from .records import ConcurrencyLimitV2, ConcurrencyOptions, Deployment, DeploymentStatus
from .states import StateType
from .validation import as_count, as_str, as_uuid, as_uuid_list, coerce_fields, merged_fields
from .workers import queue_named

__all__ = ["create_deployment", "update_deployment", "delete_deployment", "mark_deployments"]

_UNSET: Any = object()  # "argument not given", distinct from an explicit None

# Not fields a caller sets: the timestamps, and the limit and options, which have arguments of their own.
_DEPLOYMENT_FIELDS = frozenset(attrs.fields_dict(Deployment)) - {"created", "updated", "concurrency_limit_id",
                                                                 "concurrency_options"}
# Prefect's DeploymentUpdate fields the engine keeps (work_queue_id: as create_deployment takes it).
_DEPLOYMENT_UPDATE = frozenset({"version", "description", "paused", "parameters", "tags", "work_queue_name",
                                "work_queue_id", "path", "job_variables", "entrypoint", "enforce_parameter_schema"})


def create_deployment(engine: Any, flow_id: Any, name: str, concurrency_limit: Any, concurrency_options: Any,
                      fields: dict) -> Deployment:
    """Create a deployment, or update the one with the same (flow_id, name): the
    fields given are set and its never-run auto-scheduled SCHEDULED runs deleted.
    `concurrency_limit` and `concurrency_options` count only when not _UNSET (an
    explicit None removes them). O(1) to create; an upsert O(runs of the deployment)."""
    flow_id = as_uuid(flow_id, "deployment.flow_id")
    engine._require("flow", flow_id, "Flow")
    if not isinstance(name, str) or any(c in name for c in "/%&><"):
        raise ValidationError(f"deployment name must be a string without / % & > <, got {name!r}")
    set_limit = concurrency_limit is not _UNSET  # an explicit None removes the limit
    values = coerce_fields("deployment", fields, _DEPLOYMENT_FIELDS - {"name", "flow_id"})
    set_options = concurrency_options is not _UNSET
    options = _as_concurrency_options(concurrency_options) if set_options else None
    now = engine._clock.now()
    dep = engine._unique("deployment", "flow_name", (flow_id, name))
    if dep is not None:
        values.pop("id", None)
        _set_deployment_fields(engine, dep, values, set_options, options, now)
    else:
        dep = Deployment(name=name, flow_id=flow_id, concurrency_options=options, **values)
        engine._stamp(dep, now)
        engine._insert("deployment", dep)
    if set_limit:
        _apply_deployment_limit(engine, dep, concurrency_limit)
    return dep


def _set_deployment_fields(engine: Any, dep: Deployment, values: dict, set_options: bool,
                           options: ConcurrencyOptions | None, now: _dt.datetime) -> None:
    # An upsert or update: the fields given, then the never-run auto-scheduled
    # runs go, as they were made from the old configuration.
    engine._write("deployment", dep, {**values, "concurrency_options": options} if set_options else values, now)
    _delete_auto_scheduled_runs(engine, dep)


def update_deployment(engine: Any, deployment_id: Any, given: Any, fields: dict) -> bool:
    """Set the given fields of a deployment (Prefect's DeploymentUpdate, plus
    work_queue_id), `given` a mapping of them under the keywords `fields`. True iff
    it exists. `work_pool_name` points it at that pool's queue `work_queue_name`
    (created if missing) or the pool's default queue; an empty `job_variables` is
    ignored; `concurrency_limit` creates, changes or (None) deletes its limit; the
    never-run auto-scheduled SCHEDULED runs are deleted. O(runs of the deployment),
    plus O(queues in the pool) with a `work_queue_name`."""
    values = merged_fields(given, fields, "deployment")
    limit = values.pop("concurrency_limit", _UNSET)
    set_options = "concurrency_options" in values
    options = _as_concurrency_options(values.pop("concurrency_options")) if set_options else None
    pool_name = values.pop("work_pool_name", None)
    if pool_name is not None:
        pool_name = as_str(pool_name, "deployment.work_pool_name", False)
    if limit is not _UNSET and limit is not None and as_count(limit, "deployment concurrency_limit") == 0:
        # Prefect's DeploymentUpdate wants > 0 (its create path, core.Deployment, takes 0).
        raise ValidationError("deployment concurrency_limit must be a positive integer or None, got 0")
    values = coerce_fields("deployment", values, _DEPLOYMENT_UPDATE)
    if not values.get("job_variables", True):
        del values["job_variables"]
    dep = engine._table("deployment").get(as_uuid(deployment_id, "deployment_id"))
    if dep is None:
        return False
    if pool_name:
        pool = engine._unique("work_pool", "name", pool_name)
        if pool is None:
            raise ObjectNotFoundError(f"Work pool {pool_name!r} not found")
        queue_name = values.get("work_queue_name")
        if queue_name:
            queue = queue_named(engine, pool.id, queue_name) or engine.create_work_queue(pool.id, queue_name)
            values["work_queue_id"] = queue.id
        else:
            values["work_queue_id"] = pool.default_queue_id
    elif values.get("work_queue_id") is not None:
        engine._require("work_queue", values["work_queue_id"], "Work queue")
    _set_deployment_fields(engine, dep, values, set_options, options, engine._clock.now())
    if limit is not _UNSET:
        _apply_deployment_limit(engine, dep, limit)
    return True


def _as_concurrency_options(value: Any) -> ConcurrencyOptions | None:
    if value is None or isinstance(value, ConcurrencyOptions):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"collision_strategy"}
        if unknown:
            raise ValidationError(f"concurrency_options has unknown key(s) {sorted(unknown)}")
        try:
            return ConcurrencyOptions(**value)
        except ValueError:
            raise ValidationError(
                f"concurrency_options.collision_strategy must be ENQUEUE or CANCEL_NEW, got {value.get('collision_strategy')!r}"
            ) from None
    raise ValidationError(f"concurrency_options must be a dict or ConcurrencyOptions, got {value!r}")


def _apply_deployment_limit(engine: Any, dep: Deployment, limit: int | None) -> None:
    if limit is not None:
        as_count(limit, "deployment concurrency_limit")
    limits = engine._table("concurrency_limit_v2")
    current = limits.get(dep.concurrency_limit_id) if dep.concurrency_limit_id else None
    if current is None and limit is None:
        return
    if current is not None and current.limit == limit:
        return
    if limit is None:
        engine._store.delete("concurrency_limit_v2", current)
        engine._store.touch("deployment", dep)
        dep.concurrency_limit_id = None
    elif current is not None:
        engine._write("concurrency_limit_v2", current, {"limit": limit})
    else:
        gcl = ConcurrencyLimitV2(name=f"deployment:{dep.id}", limit=limit)
        engine._stamp(gcl, engine._clock.now())
        engine._insert("concurrency_limit_v2", gcl)
        engine._store.touch("deployment", dep)
        dep.concurrency_limit_id = gcl.id


def _delete_auto_scheduled_runs(engine: Any, dep: Deployment, auto_only: bool = True) -> None:
    runs = engine._store.tables["flow_run"].by_name["deployment_id"].get(dep.id)
    for run in list(runs.values()):
        if run.state_type is StateType.SCHEDULED and run.run_count == 0 and (run.auto_scheduled or not auto_only):
            engine._delete_flow_run_cascade(run)


def delete_deployment(engine: Any, deployment_id: Any) -> bool:
    """Delete a deployment with its never-run SCHEDULED flow runs (auto-scheduled or
    not) and its ConcurrencyLimitV2. True iff it existed. O(runs of the deployment)."""
    dep = engine._table("deployment").get(as_uuid(deployment_id, "deployment_id"))
    if dep is None:
        return False
    _delete_auto_scheduled_runs(engine, dep, auto_only=False)
    gcl = engine._table("concurrency_limit_v2").get(dep.concurrency_limit_id) if dep.concurrency_limit_id else None
    if gcl is not None:
        engine._store.delete("concurrency_limit_v2", gcl)
    engine._store.delete("deployment", dep)
    return True


def mark_deployments(engine: Any, deployment_ids: Any, work_queue_ids: Any, ready: bool) -> None:
    """Prefect's mark_deployments_ready / mark_deployments_not_ready: the deployments
    with these ids or in these queues become READY (and polled now) or NOT_READY,
    each stamped `updated`, whatever their status was. Nothing given: a no-op.
    O(ids), plus O(deployments) when queue ids are given."""
    dep_ids = as_uuid_list(deployment_ids or [], "deployment_ids")
    queue_ids = as_uuid_list(work_queue_ids or [], "work_queue_ids")
    if not dep_ids and not queue_ids:
        return
    now = engine._clock.now()
    values: dict = {"status": DeploymentStatus.READY, "last_polled": now} if ready else \
        {"status": DeploymentStatus.NOT_READY}
    rows = engine._store.tables["deployment"].rows
    wanted = set(queue_ids)
    chosen = {i: rows[i] for i in dep_ids if i in rows}
    if wanted:  # (deployments keep no index by queue: a handful per engine)
        chosen.update((d.id, d) for d in rows.values() if d.work_queue_id in wanted)
    for dep in chosen.values():
        engine._write("deployment", dep, values, now)
