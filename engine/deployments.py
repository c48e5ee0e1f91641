"""Deployments: create (an upsert on flow and name), update and delete, with the
ConcurrencyLimitV2 named ``deployment:<id>`` that carries a deployment's
concurrency limit and the never-run auto-scheduled runs a changed deployment
leaves stale; a deployment's schedules (DeploymentSchedule records holding the
types of engine/schedules.py), the runs schedule_runs makes from them, and the
queues that could pick a deployment up (Prefect 3.1.0 models/deployments.py).

Functions take the Engine and run inside the caller's transaction; the Engine's
methods of the same names are the public API.
"""
from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ObjectNotFoundError, ValidationError, shown
from .filters import DeploymentScheduleFilter, matching
from .records import (
    ConcurrencyLimitV2, Deployment, DeploymentSchedule, DeploymentStatus, FlowRun,
    WorkQueue,
)
from .schedules import _KEYS as _SCHEDULE_KINDS, _add, _dates, as_schedule
from .states import State, StateDetails, StateType
from .validation import (
    as_bool, as_count, as_int, as_name, as_route_seconds, as_str, as_uuid, as_uuid_list, coerce_fields,
    merged_fields,
)
from .workers import ensure_work_queue_exists, queue_named_or_created

__all__ = [
    "create_deployment", "update_deployment", "delete_deployment", "mark_deployments",
    "create_deployment_schedules",
    "read_deployment_schedules", "update_deployment_schedule", "delete_schedules_for_deployment",
    "delete_deployment_schedule", "schedule_runs", "check_work_queues_for_deployment",
    "SCHEDULER_MIN_RUNS", "SCHEDULER_MAX_RUNS", "SCHEDULER_MIN_SCHEDULED_TIME", "SCHEDULER_MAX_SCHEDULED_TIME",
    "MAX_SCHEDULED_RUNS_LIMIT",
]

_UNSET: Any = object()  # "argument not given", distinct from an explicit None

# Not fields a caller sets: the timestamps, and the limit, which has an argument of its own
# (so do the options, which create_deployment files with the fields).
# Nor the status, which Prefect's create_deployment has no field for (it starts NOT_READY;
# mark_deployments_ready and polls change it).
_DEPLOYMENT_FIELDS = frozenset(attrs.fields_dict(Deployment)) - {"created", "updated", "concurrency_limit_id", "status"}
# Prefect's DeploymentUpdate fields the engine keeps (work_queue_id: as create_deployment takes it).
_DEPLOYMENT_UPDATE = frozenset({"version", "description", "paused", "parameters", "tags", "work_queue_name",
                                "work_queue_id", "path", "job_variables", "entrypoint", "enforce_parameter_schema",
                                "concurrency_options", "storage_document_id", "infrastructure_document_id"})


def create_deployment(engine: Any, flow_id: Any, name: str, concurrency_limit: Any, fields: dict) -> Deployment:
    """Create a deployment, or update the one with the same (flow_id, name): the
    fields given are set and its never-run auto-scheduled SCHEDULED runs deleted.
    `concurrency_limit` counts only when not _UNSET (an explicit None removes it), as
    the fields do only when given (`concurrency_options` among them). O(1) to create; an upsert O(min(runs of the deployment, SCHEDULED runs))."""
    flow_id = as_uuid(flow_id, "deployment.flow_id")
    engine._require("flow", flow_id, "Flow", "deployment.flow_id")
    name = as_name(name, "deployment name", allow_empty=True)
    set_limit = concurrency_limit is not _UNSET  # an explicit None removes the limit
    fields = dict(fields)
    schedules = _schedule_items(fields.pop("schedules", None) or [], "deployment.schedules", _CORE_SCHEDULE_KEYS)
    values = coerce_fields("deployment", fields, _DEPLOYMENT_FIELDS - {"name", "flow_id"})
    if "job_variables" in values and values["job_variables"] is None:
        raise ValidationError("deployment.job_variables must be a dict (empty for none), got None")
    if values.get("work_queue_id") is not None:  # a foreign key, as in Prefect's schema
        engine._require("work_queue", values["work_queue_id"], "Work queue", "deployment.work_queue_id")
    now = engine._clock.now()
    dep = engine._unique("deployment", "flow_name", (flow_id, name))
    if dep is not None:
        values.pop("id", None)
        values.pop("created_by", None)   # an upsert keeps the creator, as Prefect's does
        if not values.get("job_variables", True):
            del values["job_variables"]  # an empty one keeps the old, as Prefect's upsert
        _set_deployment_fields(engine, dep, values, now)
    else:
        dep = Deployment(name=name, flow_id=flow_id, **values)
        engine._stamp(dep, now)
        engine._insert("deployment", dep)
    # As Prefect: the old schedules always go (an upsert without `schedules` too).
    _replace_schedules(engine, dep.id, schedules, now)
    if set_limit:
        _apply_deployment_limit(engine, dep, concurrency_limit)
    return dep


def _set_deployment_fields(engine: Any, dep: Deployment, values: dict, now: _dt.datetime) -> None:
    # An upsert or update: the fields given, then the never-run auto-scheduled
    # runs go, as they were made from the old configuration.
    engine._write("deployment", dep, values, now)
    _delete_auto_scheduled_runs(engine, dep)


def update_deployment(engine: Any, deployment_id: Any, given: Any, fields: dict) -> bool:
    """Set the given fields of a deployment (Prefect's DeploymentUpdate, plus
    work_queue_id), `given` a mapping of them under the keywords `fields`. True iff
    it exists. `work_pool_name` points it at that pool's queue `work_queue_name`
    (created if missing) or the pool's default queue; a `work_queue_name` alone at
    the queue workers.ensure_work_queue_exists finds or makes; an empty `job_variables` is
    ignored; `concurrency_limit` creates, changes or (None) deletes its limit; the
    never-run auto-scheduled SCHEDULED runs are deleted. O(min(runs of the deployment,
    SCHEDULED runs)),
    plus O(queues in the pool) with a `work_queue_name`."""
    values = merged_fields(given, fields, "deployment")
    schedules = values.pop("schedules", None)
    if schedules is not None:
        schedules = _schedule_items(schedules, "deployment.schedules", _CREATE_SCHEDULE_KEYS)
    limit = values.pop("concurrency_limit", _UNSET)
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
            raise ObjectNotFoundError(f"Work pool {shown(pool_name)} not found")
        queue_name = values.get("work_queue_name")
        if queue_name:
            values["work_queue_id"] = queue_named_or_created(engine, pool.id, queue_name).id
        else:
            values["work_queue_id"] = pool.default_queue_id
    elif values.get("work_queue_name"):  # a queue name alone: found or made, as Prefect's update does
        values["work_queue_id"] = ensure_work_queue_exists(engine, values["work_queue_name"]).id
    elif values.get("work_queue_id") is not None:
        engine._require("work_queue", values["work_queue_id"], "Work queue", "deployment.work_queue_id")
    now = engine._clock.now()
    _set_deployment_fields(engine, dep, values, now)
    if schedules is not None:  # given (an empty list too): they replace the old ones
        _replace_schedules(engine, dep.id, schedules, now)
    if limit is not _UNSET:
        _apply_deployment_limit(engine, dep, limit)
    return True


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
        engine._delete_limit_v2(current)   # (as delete_concurrency_limit_v2)
    elif current is not None:
        engine._write("concurrency_limit_v2", current, {"limit": limit})
    else:
        gcl = ConcurrencyLimitV2(name=f"deployment:{dep.id}", limit=limit)
        engine._stamp(gcl, engine._clock.now())
        engine._insert("concurrency_limit_v2", gcl)
        engine._store.touch("deployment", dep)
        dep.concurrency_limit_id = gcl.id
        engine._store.reindex("deployment", dep)


def _delete_auto_scheduled_runs(engine: Any, dep: Deployment, auto_only: bool = True) -> None:
    """Delete the deployment's never-run SCHEDULED runs (only auto-scheduled ones if
    `auto_only`). O(its SCHEDULED runs) once a query has built the runs' (deployment,
    state type) index, else O(min(its runs, SCHEDULED runs)): a deployment's finished
    runs pile up (a run a minute is 64,000 in 45 days), and every update or upsert
    comes here."""
    by_name = engine._store.tables["flow_run"].by_name
    joined = by_name["deployment_id+state_type"]
    runs = by_name["deployment_id"].get(dep.id)
    scheduled = by_name["state_type"]
    if joined.live:  # (not built for this: it would tax every later write)
        candidates = list(joined.get((dep.id, StateType.SCHEDULED)).values())
    elif scheduled.count(StateType.SCHEDULED) < len(runs):
        candidates = [r for r in scheduled.get(StateType.SCHEDULED).values() if r.deployment_id == dep.id]
    else:
        candidates = [r for r in runs.values() if r.state_type is StateType.SCHEDULED]
    for run in candidates:
        if run.run_count == 0 and (run.auto_scheduled or not auto_only):
            engine._delete_flow_run_cascade(run)


def set_deployment_paused(engine: Any, deployment_id: Any, paused: bool) -> bool:
    """Prefect's pause_deployment / resume_deployment routes: set `paused` (stamping
    `updated` only if it changes, as an ORM attribute write does) and, on a pause,
    delete the never-run auto-scheduled SCHEDULED runs, Late ones included, whether
    or not it was paused already. True iff the deployment exists."""
    dep = engine._table("deployment").get(as_uuid(deployment_id, "deployment_id"))
    if dep is None:
        return False
    if dep.paused != paused:
        engine._write("deployment", dep, {"paused": paused})
    if paused:
        _delete_auto_scheduled_runs(engine, dep)
    return True


def delete_deployment(engine: Any, deployment_id: Any) -> bool:
    """Delete a deployment with its never-run SCHEDULED flow runs (auto-scheduled or
    not) and its ConcurrencyLimitV2. True iff it existed. O(runs of the deployment)."""
    dep = engine._table("deployment").get(as_uuid(deployment_id, "deployment_id"))
    if dep is None:
        return False
    _delete_auto_scheduled_runs(engine, dep, auto_only=False)
    # The row first: its limit's ON DELETE SET NULL then has no row left to write.
    delete_deployment_row(engine, dep)
    _apply_deployment_limit(engine, dep, None)
    return True


def mark_deployments(engine: Any, deployment_ids: Any, work_queue_ids: Any, ready: bool) -> None:
    """Prefect's mark_deployments_ready / mark_deployments_not_ready: the deployments
    with these ids or in these queues become READY (and polled now) or NOT_READY,
    each stamped `updated`, whatever their status was. Nothing given: a no-op.
    O(ids + the deployments of the queues)."""
    dep_ids = as_uuid_list(deployment_ids or [], "deployment_ids")
    queue_ids = as_uuid_list(work_queue_ids or [], "work_queue_ids")
    if not dep_ids and not queue_ids:
        return
    now = engine._clock.now()
    values: dict = {"status": DeploymentStatus.READY, "last_polled": now} if ready else \
        {"status": DeploymentStatus.NOT_READY}
    table = engine._store.tables["deployment"]
    chosen = {dep.id: dep for dep in table.existing(dep_ids)}
    for queue_id in queue_ids:
        chosen.update(table.by_name["work_queue_id"].get(queue_id))
    for dep in chosen.values():
        engine._write("deployment", dep, values, now)


# Schedules --------------------------------------------------------------------------------

# Prefect 3.1.0's settings: PREFECT_API_SERVICES_SCHEDULER_MIN_RUNS, _MAX_RUNS,
# _MIN_SCHEDULED_TIME, _MAX_SCHEDULED_TIME (schedule_runs' defaults), and
# PREFECT_DEPLOYMENT_SCHEDULE_MAX_SCHEDULED_RUNS (the most max_scheduled_runs may be).
SCHEDULER_MIN_RUNS = 3
SCHEDULER_MAX_RUNS = 100
SCHEDULER_MIN_SCHEDULED_TIME = _dt.timedelta(hours=1)
SCHEDULER_MAX_SCHEDULED_TIME = _dt.timedelta(days=100)
MAX_SCHEDULED_RUNS_LIMIT = 50

# Keys of one schedule entry: DeploymentScheduleCreate's, and the core
# DeploymentSchedule's that create_deployment takes (which may also carry its ids).
_CREATE_SCHEDULE_KEYS = ("schedule", "active", "max_scheduled_runs")
_CORE_SCHEDULE_KEYS = _CREATE_SCHEDULE_KEYS + ("deployment_id", "id", "created", "updated")


def _max_scheduled_runs(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{field} must be a positive integer or None, got {shown(value)}")
    if value > MAX_SCHEDULED_RUNS_LIMIT:
        raise ValidationError(f"{field} must be less than or equal to {MAX_SCHEDULED_RUNS_LIMIT}, got {value}")
    return value


def _schedule_entry(value: Any, field: str, keys: tuple[str, ...], partial: bool = False) -> dict:
    """One schedule entry as a dict of checked values: a DeploymentSchedule record
    (its schedule, active, max_scheduled_runs), a bare schedule (active), or a
    mapping / pydantic object with `keys`. `partial` (an update): every key optional,
    and None means "not given", as Prefect's exclude_none."""
    if isinstance(value, DeploymentSchedule):
        value = {"schedule": value.schedule, "active": value.active, "max_scheduled_runs": value.max_scheduled_runs}
    elif isinstance(value, Mapping):
        if not partial and "schedule" not in value and any(k in value for k in _SCHEDULE_KINDS):
            value = {"schedule": value}  # a bare schedule's JSON
    else:
        dump = getattr(value, "model_dump", None)
        if callable(dump) and not any(hasattr(value, k) for k in _SCHEDULE_KINDS):
            value = dump(exclude_unset=True)
        else:
            value = {"schedule": value}
    unknown = sorted(str(k) for k in value if k not in keys)
    if unknown:
        raise ValidationError(f"{field}.{unknown[0]}: unknown key (allowed: {', '.join(keys)})")
    out: dict = {}
    if value.get("schedule") is not None:
        out["schedule"] = as_schedule(value["schedule"], f"{field}.schedule")
    elif not partial:
        raise ValidationError(f"{field}.schedule is required")
    if value.get("active") is not None:
        out["active"] = as_bool(value["active"], f"{field}.active")
    elif not partial:
        if "active" in value:
            raise ValidationError(f"{field}.active must be a boolean, got None")
        out["active"] = True
    if value.get("max_scheduled_runs") is not None or not partial:
        out["max_scheduled_runs"] = _max_scheduled_runs(value.get("max_scheduled_runs"), f"{field}.max_scheduled_runs")
    if "deployment_id" in value and value["deployment_id"] is not None:
        as_uuid(value["deployment_id"], f"{field}.deployment_id")
    return out


def _schedule_items(values: Any, field: str, keys: tuple[str, ...]) -> list[dict]:
    # Each entry: its schedule, active and max_scheduled_runs.
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ValidationError(f"{field} must be a list of schedules, got {type(values).__name__} {shown(values)}")
    return [_schedule_entry(value, f"{field}[{i}]", keys) for i, value in enumerate(values)]


def _schedules_of(engine: Any, deployment_id: Any) -> list[DeploymentSchedule]:
    return list(engine._store.tables["deployment_schedule"].by_name["deployment_id"].get(deployment_id).values())


def _delete_schedules(engine: Any, deployment_id: Any) -> bool:
    return engine._store.delete_where("deployment_schedule", "deployment_id", deployment_id) > 0


def delete_deployment_row(engine: Any, dep: Deployment) -> None:
    """The deployment's row and what the schema cascades to: its schedules."""
    _delete_schedules(engine, dep.id)
    engine._store.delete("deployment", dep)


def _replace_schedules(engine: Any, deployment_id: Any, entries: list[dict], now: _dt.datetime) -> None:
    # A deployment's create or update: its schedules become `entries`, each keeping
    # only its schedule and `active` (Prefect drops max_scheduled_runs there).
    _delete_schedules(engine, deployment_id)
    _insert_schedules(engine, deployment_id, [{**e, "max_scheduled_runs": None} for e in entries], now)


def _insert_schedules(engine: Any, deployment_id: Any, entries: list[dict], now: _dt.datetime) -> list:
    out = []
    for entry in entries:
        rec = DeploymentSchedule(deployment_id=deployment_id, schedule=entry["schedule"].anchored(now),
                                 active=entry["active"], max_scheduled_runs=entry["max_scheduled_runs"])
        engine._stamp(rec, now)
        engine._insert("deployment_schedule", rec)
        out.append(rec)
    return out


def create_deployment_schedules(engine: Any, deployment_id: Any, schedules: Any) -> list[DeploymentSchedule]:
    """Add schedules to a deployment: each a DeploymentScheduleCreate (mapping or
    object: `schedule`, `active` True, `max_scheduled_runs` None, at most 50) or a
    bare schedule. An interval schedule without an anchor gets the engine's now.
    ObjectNotFoundError for an unknown deployment (Prefect: a foreign-key error).
    O(s)."""
    dep_id = as_uuid(deployment_id, "deployment_id")
    entries = _schedule_items(schedules, "schedules", _CREATE_SCHEDULE_KEYS)
    engine._require("deployment", dep_id, "Deployment")
    return _insert_schedules(engine, dep_id, entries, engine._clock.now())


def read_deployment_schedules(engine: Any, deployment_id: Any, deployment_schedule_filter: Any) -> list:
    """The deployment's schedules matching the filter, most recently updated first
    (equal times: in creation order, as SQLite reads Prefect's index). An unknown
    deployment has none. O(s log s)."""
    dep_id = as_uuid(deployment_id, "deployment_id")
    schedules = matching(DeploymentScheduleFilter, deployment_schedule_filter, "deployment_schedule_filter",
                         _schedules_of(engine, dep_id), engine._store.tables)
    schedules.sort(key=operator.attrgetter("updated"), reverse=True)  # stable: ties stay in creation order
    return schedules


def update_deployment_schedule(engine: Any, deployment_id: Any, deployment_schedule_id: Any, given: Any,
                               fields: dict) -> bool:
    """Set the given (not None) fields of DeploymentScheduleUpdate: `active`,
    `schedule`, `max_scheduled_runs`; `updated` becomes now even when none is given.
    True iff the deployment has that schedule. O(1)."""
    dep_id = as_uuid(deployment_id, "deployment_id")
    schedule_id = as_uuid(deployment_schedule_id, "deployment_schedule_id")
    # (DeploymentScheduleUpdate's keys are the create's; the facade dumps Prefect's object)
    values = _schedule_entry(merged_fields(given, fields, "schedule"), "schedule", _CREATE_SCHEDULE_KEYS,
                             partial=True)
    rec = engine._table("deployment_schedule").get(schedule_id)
    if rec is None or rec.deployment_id != dep_id:
        return False
    now = engine._clock.now()
    if "schedule" in values:
        values["schedule"] = values["schedule"].anchored(now)
    engine._write("deployment_schedule", rec, values, now)
    return True


def delete_schedules_for_deployment(engine: Any, deployment_id: Any) -> bool:
    """Delete all of a deployment's schedules; True iff there was one. O(s)."""
    return _delete_schedules(engine, as_uuid(deployment_id, "deployment_id"))


def delete_deployment_schedule(engine: Any, deployment_id: Any, deployment_schedule_id: Any) -> bool:
    """Delete one schedule of a deployment; True iff the deployment had it. O(1)."""
    dep_id = as_uuid(deployment_id, "deployment_id")
    rec = engine._table("deployment_schedule").get(as_uuid(deployment_schedule_id, "deployment_schedule_id"))
    if rec is None or rec.deployment_id != dep_id:
        return False
    engine._store.delete("deployment_schedule", rec)
    return True


def _as_time(value: Any, field: str) -> _dt.datetime:
    if not isinstance(value, _dt.datetime):
        raise ValidationError(f"{field} must be a datetime, got {type(value).__name__} {shown(value)}")
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)


def schedule_runs(engine: Any, deployment_id: Any, start_time: Any, end_time: Any, min_time: Any, min_runs: Any,
                  max_runs: Any, auto_scheduled: Any) -> list:
    """Prefect's schedule_runs: for each active schedule of the deployment (most
    recently updated first), its dates from `start_time` (default: now) on, at most
    `max_runs` (100) and none after `end_time` (default: start + 100 days), stopping
    once there are `min_runs` (3) and one is at or after start + `min_time` (1 h).
    Each date becomes a SCHEDULED flow run ("Flow run scheduled") of the deployment,
    with its flow, version, queue, parameters and tags ("auto-scheduled" first when
    `auto_scheduled`), `idempotency_key` "scheduled <deployment id> <date>" (the
    date in the schedule's timezone, as str() writes it); a key the flow already
    has is skipped. The deployment's `paused` is not looked at (Prefect's scheduler
    service skips paused deployments before calling this). Returns the ids of the
    runs inserted, in date order per schedule. An unknown deployment gives [].
    O(schedules · dates · indexes · log n)."""
    dep_id = as_uuid(deployment_id, "deployment_id")
    min_runs = SCHEDULER_MIN_RUNS if min_runs is None else as_int(min_runs, "min_runs")
    max_runs = SCHEDULER_MAX_RUNS if max_runs is None else as_int(max_runs, "max_runs")
    if min_time is None:
        min_time = SCHEDULER_MIN_SCHEDULED_TIME
    else:
        min_time = as_route_seconds(min_time, "min_time")
    auto_scheduled = as_bool(auto_scheduled, "auto_scheduled")
    start = engine._clock.now() if start_time is None else _as_time(start_time, "start_time")
    # (pendulum adds a timedelta as elapsed seconds, whatever the timezone)
    end = (_add_or_last(start, SCHEDULER_MAX_SCHEDULED_TIME) if end_time is None
           else _as_time(end_time, "end_time"))
    dep = engine._table("deployment").get(dep_id)
    if dep is None:
        return []
    enough_at = _add_or_last(start, min_time)
    planned: list[_dt.datetime] = []
    for rec in read_deployment_schedules(engine, dep_id, None):
        if not rec.active:
            continue
        dates = []
        for date in _dates(rec.schedule, max_runs, start, end):
            dates.append(date)
            if len(dates) >= min_runs and date >= enough_at:
                break
        planned.extend(dates)
    return _insert_scheduled_runs(engine, dep, planned, auto_scheduled)


_UTC = _dt.timezone.utc


def _add_or_last(start: _dt.datetime, span: _dt.timedelta) -> _dt.datetime:
    """`start` + `span` (as pendulum adds: elapsed seconds), or the last datetime
    when that is past year 9999: a limit there is no limit."""
    try:
        return _add(start, seconds=span.total_seconds())
    except OverflowError:
        return _dt.datetime.max.replace(tzinfo=_UTC)


def _insert_scheduled_runs(engine: Any, dep: Deployment, planned: list, auto_scheduled: bool) -> list:
    """Insert the planned runs that are new, each with its SCHEDULED state row
    (bypassing orchestration, as Prefect's bulk insert does: the run's
    `state_timestamp` stays None and the state's details carry only the scheduled
    time)."""
    store = engine._store
    now = engine._clock.now()
    tags = ["auto-scheduled", *dep.tags] if auto_scheduled else dep.tags
    inserted = []
    for date in planned:
        key = f"scheduled {dep.id} {date}"
        if engine._unique("flow_run", "idempotency", (dep.flow_id, key)) is not None:
            continue
        when = date.astimezone(_UTC)
        state = State(type=StateType.SCHEDULED, name="Scheduled", timestamp=now,
                           message="Flow run scheduled", state_details=StateDetails(scheduled_time=when))
        run = FlowRun(flow_id=dep.flow_id, deployment_id=dep.id, deployment_version=dep.version,
                      work_queue_name=dep.work_queue_name, work_queue_id=dep.work_queue_id,
                      parameters=dict(dep.parameters), idempotency_key=key, tags=list(tags),
                      infrastructure_document_id=dep.infrastructure_document_id,
                      auto_scheduled=auto_scheduled, state_type=StateType.SCHEDULED, state_name="Scheduled",
                      next_scheduled_start_time=when, expected_start_time=when)
        engine._stamp(run, now)
        store.insert("flow_run", run)
        engine._store_state("flow_run", run, state, now)  # its row, state_id and state (a new run: nothing to touch)
        inserted.append(run.id)
    return inserted


def check_work_queues_for_deployment(engine: Any, deployment_id: Any) -> list[WorkQueue]:
    """The work queues that could pick the deployment up, in creation order: those
    whose `filter` (Prefect's legacy QueueFilter) has no tags or only tags the
    deployment carries, and no deployment_ids or the deployment's among them (a
    queue without a filter qualifies). ObjectNotFoundError for an unknown
    deployment. O(queues)."""
    dep = engine._require("deployment", as_uuid(deployment_id, "deployment_id"), "Deployment")
    tags = set(dep.tags)
    dep_text = str(dep.id)
    out = []
    for queue in engine._table("work_queue").values():
        flt = queue.filter if isinstance(queue.filter, Mapping) else {}
        wanted = flt.get("tags") or []
        ids = flt.get("deployment_ids") or []
        if not set(wanted) <= tags:
            continue
        if ids and dep_text not in {str(i) for i in ids}:
            continue
        out.append(queue)
    return out
