"""The Engine facade: one object, no I/O, whose operations carry the names and
semantics of Prefect's server models layer (spec operations.md).

Every public call is atomic (it runs in a transaction that rolls back on any
exception) and `with engine.transaction():` groups calls. Calls are serialised by
one re-entrant lock, so an engine may be shared between threads.

Records returned by reads are the engine's live rows: treat them as read-only and
change them only through engine calls.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import operator
import random
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, TypeVar

import attrs

from . import concurrency as _concurrency
from . import deployment_runs as _deployment_runs
from . import deployments as _deployments
from . import foreman as _foreman
from . import pagination as _pagination
from . import ui as _ui
from . import workers as _workers
from .clock import Clock, ManualClock, SystemClock, checked_clock
from .deployments import _UNSET
from .foreman import ForemanPass
from .pagination import PaginationResponse
from .ui import SimpleFlowRun, SimpleNextFlowRun, TaskRunCount
from .errors import BackendError, ObjectNotFoundError, UniquenessError, ValidationError, shown
from .records import (
    Artifact,
    ArtifactCollection,
    ConcurrencyLimit,
    ConcurrencyLimitV2,
    Deployment,
    DeploymentSchedule,
    Flow,
    FlowRun,
    FlowRunInput,
    FlowRunStateRow,
    TaskRun,
    TaskRunStateRow,
    Worker,
    WorkerFlowRunResponse,
    WorkPool,
    WorkQueue,
    estimated_run_time,
    estimated_start_time_delta,
    random_slug,
)
from .states import State, StateDetails, StateType, compile_maker, make_state
from .tables import build_store
from .validation import (
    as_bool, as_count, as_field_mapping, as_name, as_state, as_str, as_str_list, as_text, as_uuid, as_uuid_list,
    coerce_fields, is_finite_number, merged_fields, as_slot_holders, storable_text,
)

__all__ = ["Engine"]

F = TypeVar("F", bound=Callable[..., Any])

# State rows are built once per transition from already-checked values.
_make_flow_row = compile_maker(FlowRunStateRow)
_make_task_row = compile_maker(TaskRunStateRow)
# All of a StateDetails' fields as one tuple (C-level): two details compare equal
# exactly when these tuples do (identity first, so shared UUIDs cost nothing).
_details_values = operator.attrgetter(*(f.name for f in attrs.fields(StateDetails)))

_RUN_STATE_COLUMNS = {"state_id", "state_type", "state_name", "state_timestamp", "state", "created", "updated"}


def _fields_of(cls: type, exclude: set[str]) -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(cls) if f.name not in exclude)


_FLOW_RUN_CREATE = _fields_of(FlowRun, _RUN_STATE_COLUMNS)
_TASK_RUN_CREATE = _fields_of(TaskRun, _RUN_STATE_COLUMNS)
# Given to create_*, Prefect leaves these out of the insert: dropped unchecked, as
# there. (The state columns and `updated` are refused instead: the engine keeps them.)
_FLOW_RUN_DROPPED = ("created", "estimated_run_time", "estimated_start_time_delta")
_TASK_RUN_DROPPED = ("created",)
_FLOW_RUN_UPDATE = frozenset(
    {"name", "flow_version", "parameters", "empirical_policy", "tags", "infrastructure_pid", "job_variables"}
)
_TASK_RUN_UPDATE = frozenset({"name"})
_FLOW_UPDATE = frozenset({"tags"})
_CONCURRENCY_LIMIT_V2_FIELDS = _fields_of(ConcurrencyLimitV2, {"name", "limit", "created", "updated"})


def atomic(fn: F) -> F:
    """Run a public write in its own transaction (a savepoint when nested)."""

    @functools.wraps(fn)
    def wrapper(self: "Engine", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            store = self._store
            store.begin()
            try:
                result = fn(self, *args, **kwargs)
            except BaseException:
                store.rollback()
                raise
            store.commit()
            return result

    return wrapper  # type: ignore[return-value]


def locked(fn: F) -> F:
    """Serialise a read with writers."""

    @functools.wraps(fn)
    def wrapper(self: "Engine", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _as_run(run: Any) -> FlowRun | TaskRun:
    if not isinstance(run, (FlowRun, TaskRun)):
        raise ValidationError(f"run must be a FlowRun or TaskRun, got {type(run).__name__} {shown(run)}")
    return run


def _create_fields(given: Any, fields: dict, state: Any, what: str, dropped: tuple[str, ...]) -> tuple[dict, Any]:
    """create_*'s fields and state: the mapping `given` (its `state` taken out)
    under the keywords (a keyword, `state` too, wins over the mapping's value), less
    the `dropped` fields Prefect leaves out of the insert."""
    if as_field_mapping(given, what) is not None:
        fields = {**dict(given), **fields}
        if "state" in fields:
            given_state = fields.pop("state")
            if state is None:
                state = given_state
    for name in dropped:  # a copy only when there is something to drop: rarely
        if name in fields:
            return {k: v for k, v in fields.items() if k not in dropped}, state
    return fields, state


def _artifact_field(data: dict, name: str) -> str | None:
    """Pop `name` from a result dict: None when falsy (Prefect drops 0, False, [] and
    {} unread), else it must be a string, as Prefect's Artifact schema has it (its
    refusal, inside state validation, ABORTs the transition with nothing stored)."""
    value = data.pop(name, None)
    return as_str(value, f"state.data.{name}") if value else None


class Engine:
    """An in-memory Prefect run layer.

    >>> from engine import Engine, Scheduled
    >>> e = Engine()
    >>> flow = e.create_flow(name="etl")
    >>> run = e.create_flow_run(flow_id=flow.id, state=Scheduled())
    >>> run.state_type.value
    'SCHEDULED'
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._given_clock: Clock
        self._clock: Clock
        self._set_clock(clock if clock is not None else SystemClock())
        self._store = build_store()
        self._lock = threading.RLock()
        self._backend: Any = None
        # Per-task-key in-memory queues of background task runs (EnqueueScheduledTasks).
        self.task_queues: dict[str, dict[str, list]] = {}
        # Randomness of orchestration (retry jitter); seed it for reproducible runs.
        self.random = random.Random()

    # durability (backends/) -------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, clock: Clock | None = None, **options: Any) -> "Engine":
        """An engine backed by `url` ("sqlite:///runs.db", "json:///runs.json",
        "memory://"), rebuilt from what is stored there. See backends.open_engine.
        O(n log n) for the n records stored there; O(1) for "memory://"."""
        from backends import open_engine

        return open_engine(url, clock=clock, **options)

    @property
    def backend(self) -> Any:
        """The attached durability backend, or None for a memory-only engine."""
        return self._backend

    def flush(self) -> None:
        """Make every committed call durable now (batched SQLite: write the batch;
        JSON: save a snapshot). A no-op without a backend. Cost by backend: O(1)
        without one or for write-through SQLite, O(records changed in the pending
        batch) for batched SQLite (one SQLite transaction), O(n) for JSON (all n
        records are written again)."""
        if self._backend is not None:
            self._backend.flush()

    def close(self) -> None:
        """Flush and release the backend; afterwards reads still work, writes raise
        BackendError. A no-op without a backend. Idempotent. O(1) plus the backend's
        flush (see flush; a JSON snapshot is saved only if something changed since
        the last save)."""
        if self._backend is not None:
            with self._lock:
                if self._store.in_transaction:
                    raise BackendError("close() inside an open transaction: close after the "
                                       "`with engine.transaction():` block, which commits or undoes its calls")
                self._backend.close()

    def __repr__(self) -> str:
        # What a failing test's output should show: where the runs live, the clock,
        # and how many there are. O(1).
        backend = self._backend
        where = "memory" if backend is None else str(getattr(backend, "url", type(backend).__name__))
        if getattr(backend, "read_only", False):
            where += " (read-only)"
        tables = self._store.tables
        return (f"<Engine {where}, {self._clock!r}, flow runs: {len(tables['flow_run'].rows)}, "
                f"task runs: {len(tables['task_run'].rows)}>")

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # time ------------------------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        """The clock the engine was given."""
        return self._given_clock

    def _set_clock(self, clock: Clock) -> None:
        # (`_clock` is what the engine reads: a user's clock behind a check of each reading.)
        self._clock = checked_clock(clock)
        self._given_clock = clock

    def now(self) -> _dt.datetime:
        """The engine's current time (from its clock). O(1)."""
        return self._clock.now()

    def estimated_run_time(self, run: FlowRun | TaskRun) -> _dt.timedelta:
        """Total run time plus the current RUNNING stretch, at the engine's now. O(1)."""
        return estimated_run_time(_as_run(run), self._clock.now())

    def estimated_start_time_delta(self, run: FlowRun | TaskRun) -> _dt.timedelta:
        """How late the run started (or is, if not started yet). O(1)."""
        return estimated_start_time_delta(_as_run(run), self._clock.now())

    # transactions ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator["Engine"]:
        """Group calls atomically: an exception inside undoes all of them.

        Nested use creates a savepoint. The lock is held for the whole block.
        Entering is O(1) and so is closing a savepoint; the block's calls cost what
        they cost alone. The outermost commit is O(records changed) (its undo log
        dropped and, with a backend listening, its changes handed over, plus that
        backend's write). A rollback is O(changes undone): each restored, removed
        or re-inserted record is refiled, O(indexes) plus O(log n) per sorted
        index it moves in (a deleted catalog row also goes back to its place,
        O(rows of its table)).
        """
        with self._lock:
            self._store.begin()
            try:
                yield self
            except BaseException:
                self._store.rollback()
                raise
            self._store.commit()

    def session(self) -> Any:
        """`async with engine.session() as session:` for the Prefect-shaped facade
        (engine.models). Each call through it is atomic on its own; the lock is
        never held across an await (see engine/models/session.py). O(1) to make;
        each call through it costs what the engine call it makes costs."""
        from .models.session import SessionContext

        return SessionContext(self)

    # generic helpers ---------------------------------------------------------------------------
    def _table(self, kind: str) -> dict:
        return self._store.tables[kind].rows

    def _stamp(self, rec: Any, now: _dt.datetime) -> None:
        rec.created = now
        rec.updated = now

    def _insert(self, kind: str, rec: Any) -> Any:
        # (an explicit id already taken: DuplicateIdError, as Prefect's integrity error)
        self._store.insert(kind, rec)
        return rec

    def _unique(self, kind: str, index: str, key: Any) -> Any:
        """The record under `key` in a unique-key hash index (a name, a tag, an
        upsert key), or None. O(1)."""
        bucket = self._store.tables[kind].by_name[index].get(key)
        return next(iter(bucket.values())) if bucket else None

    def _require(self, kind: str, rec_id: Any, label: str, field: str | None = None) -> Any:
        """The record, or ObjectNotFoundError; `field` names the argument that gave
        the id when it is a reference inside another record."""
        rec = self._store.tables[kind].rows.get(rec_id)
        if rec is None:
            where = f"{field}: " if field else ""
            raise ObjectNotFoundError(f"{where}{label} with id {rec_id} not found")
        return rec

    # flows ------------------------------------------------------------------------------------
    @atomic
    def create_flow(self, name: str, tags: list[str] | None = None, id: Any = None) -> Flow:
        """Create a flow, or return the existing one with that name unchanged. O(1)."""
        name = as_name(name, "flow name")
        existing = self._unique("flow", "name", name)
        if existing is not None:
            return existing
        fields = coerce_fields("flow", {"tags": tags or [], **({"id": id} if id is not None else {})},
                               frozenset({"tags", "id"}))
        flow = Flow(name=name, **fields)
        self._stamp(flow, self._clock.now())
        return self._insert("flow", flow)

    @locked
    def read_flow(self, flow_id: Any) -> Flow | None:
        """The flow with this id, or None. O(1)."""
        return self._table("flow").get(as_uuid(flow_id, "flow_id"))

    @locked
    def read_flow_by_name(self, name: str) -> Flow | None:
        """The flow with this name, or None. O(1) (a hash index on the name)."""
        return self._unique("flow", "name", as_str(name, "name", False))

    @locked
    def read_flows(self, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                   deployment_filter: Any = None, work_pool_filter: Any = None, sort: Any = "NAME_ASC",
                   offset: int | None = None, limit: int | None = None) -> list[Flow]:
        """Flows matching every given filter (engine/listings.py), in `sort` order
        (a FlowSort: NAME_ASC by default), after `offset`, at most `limit`. O(n log n)."""
        return _listings.read_flows(self, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
                                    work_pool_filter, sort, offset, limit)

    @locked
    def count_flows(self, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                    deployment_filter: Any = None, work_pool_filter: Any = None) -> int:
        """Number of flows matching every given filter. O(1) without filters, else O(n)."""
        return _listings.count_flows(self, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
                                     work_pool_filter)

    @locked
    def paginate_flows(self, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                       deployment_filter: Any = None, work_pool_filter: Any = None, limit: int | None = None,
                       page: int = 1, sort: Any = "NAME_ASC") -> PaginationResponse:
        """Page `page` (from 1) of `limit` flows (None: 200, at most 200) as
        read_flows gives them, with the count and number of pages (Prefect's
        POST /flows/paginate). O(read_flows)."""
        filters = (flow_filter, flow_run_filter, task_run_filter, deployment_filter, work_pool_filter)
        return _pagination.paginate(
            lambda offset, size: _listings.page(self, "flow", filters, sort, offset, size), limit, page)

    @atomic
    def update_flow(self, flow_id: Any, flow: Mapping[str, Any] | None = None, **fields: Any) -> bool:
        """Replace the given fields (tags, as Prefect's FlowUpdate). True iff the flow
        exists. O(1)."""
        return self._update_fields("flow", flow_id, flow, fields, _FLOW_UPDATE)

    @atomic
    def delete_flow(self, flow_id: Any) -> bool:
        """Delete a flow with its deployments and flow runs (cascade). True iff it existed.

        As Prefect's one DELETE with the schema's cascades: none of delete_deployment's
        or delete_flow_run's own steps run, so a deployment's concurrency limit stays
        (the foreign key points from the deployment to it) and no slot is given back.

        O(d + s) for its d deployments and their s schedules, + as delete_flow_run
        (without the slot) for each of its runs (see README, Operations and their
        cost); each catalog row deleted (the flow, a deployment, a schedule) also
        saves its place for a rollback, O(rows of its table)."""
        flow = self._table("flow").get(as_uuid(flow_id, "flow_id"))
        if flow is None:
            return False
        for dep in list(self._store.tables["deployment"].by_name["flow_id"].get(flow.id).values()):
            _deployments.delete_deployment_row(self, dep)
        for run in list(self._store.tables["flow_run"].by_name["flow_id"].get(flow.id).values()):
            self._delete_flow_run_cascade(run)
        self._store.delete("flow", flow)
        return True

    # deployments ------------------------------------------------------------------------------
    @atomic
    def create_deployment(
        self,
        flow_id: Any,
        name: str,
        *,
        concurrency_limit: Any = _UNSET,
        **fields: Any,
    ) -> Deployment:
        """Create a deployment, or update the one with the same (flow_id, name).

        `concurrency_limit` links a ConcurrencyLimitV2 named ``deployment:<id>``
        (models.md §6). `concurrency_options` is a ConcurrencyOptions, a mapping
        of its fields, or None. Upserting sets the fields given (an explicit None
        included) and deletes the deployment's auto-scheduled, never-run SCHEDULED
        flow runs, as Prefect does.

        O(1) to create, + O(s) for its s `schedules`; an upsert also O(min(runs of
        the deployment, SCHEDULED runs)) to find the runs it deletes (each deleted
        as by delete_flow_run), + O(s) for the schedules it replaces.
        """
        return _deployments.create_deployment(self, flow_id, name, concurrency_limit, fields)

    @atomic
    def mark_deployments_ready(self, deployment_ids: Any = None, work_queue_ids: Any = None) -> None:
        """Deployments with these ids or in these queues become READY, polled now
        (what Prefect does when a worker polls them). O(ids + the deployments of
        the queues)."""
        _deployments.mark_deployments(self, deployment_ids, work_queue_ids, True)

    @atomic
    def mark_deployments_not_ready(self, deployment_ids: Any = None, work_queue_ids: Any = None) -> None:
        """Deployments with these ids or in these queues become NOT_READY. O(ids +
        the deployments of the queues)."""
        _deployments.mark_deployments(self, deployment_ids, work_queue_ids, False)

    @atomic
    def update_deployment(self, deployment_id: Any, deployment: Mapping[str, Any] | None = None,
                          **fields: Any) -> bool:
        """Set the given fields of a deployment (Prefect's DeploymentUpdate: version,
        description, paused, parameters, tags, work_queue_name, path, job_variables,
        entrypoint, enforce_parameter_schema, concurrency_limit, concurrency_options;
        and work_queue_id, as create_deployment takes it). True iff it exists.

        As Prefect: `work_pool_name` points the deployment at that pool's queue
        `work_queue_name` (created if missing) or, without a queue name, at the
        pool's default queue; an empty `job_variables` is ignored; the deployment's
        never-run auto-scheduled SCHEDULED runs are deleted; `concurrency_limit`
        creates, changes or (None) deletes its ConcurrencyLimitV2. O(runs of the
        deployment)."""
        return _deployments.update_deployment(self, deployment_id, deployment, fields)

    @atomic
    def pause_deployment(self, deployment_id: Any) -> bool:
        """Prefect's pause_deployment route: set `paused` (Prefect's scheduler services
        then skip the deployment; `schedule_runs` does not look) and delete its
        never-run auto-scheduled runs still SCHEDULED (Late ones too). True iff it
        exists. O(min(runs of the deployment, SCHEDULED runs))."""
        return _deployments.set_deployment_paused(self, deployment_id, True)

    @atomic
    def resume_deployment(self, deployment_id: Any) -> bool:
        """Prefect's resume_deployment route: unpause the deployment (no run is
        deleted). True iff it exists. O(1)."""
        return _deployments.set_deployment_paused(self, deployment_id, False)

    @locked
    def read_deployment(self, deployment_id: Any) -> Deployment | None:
        """The deployment with this id, or None. O(1)."""
        return self._table("deployment").get(as_uuid(deployment_id, "deployment_id"))

    @locked
    def read_deployments(self, offset: int | None = None, limit: int | None = None, flow_filter: Any = None,
                         flow_run_filter: Any = None, task_run_filter: Any = None, deployment_filter: Any = None,
                         work_pool_filter: Any = None, work_queue_filter: Any = None,
                         sort: Any = "NAME_ASC") -> list[Deployment]:
        """Deployments matching every given filter (engine/listings.py), in `sort`
        order (a DeploymentSort: NAME_ASC by default), paginated. O(n log n)."""
        return _listings.read_deployments(self, offset, limit, flow_filter, flow_run_filter, task_run_filter,
                                          deployment_filter, work_pool_filter, work_queue_filter, sort)

    @locked
    def count_deployments(self, flow_filter: Any = None, flow_run_filter: Any = None, task_run_filter: Any = None,
                          deployment_filter: Any = None, work_pool_filter: Any = None,
                          work_queue_filter: Any = None) -> int:
        """Number of deployments matching every given filter. O(1) without filters, else O(n)."""
        return _listings.count_deployments(self, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
                                           work_pool_filter, work_queue_filter)

    @locked
    def count_deployments_by_flow(self, flow_ids: Iterable[Any]) -> dict[uuid.UUID, int]:
        """{flow id: number of its deployments} for each of at most 200 ids (0 for an
        unknown flow; Prefect's POST /ui/flows/count-deployments). O(ids)."""
        return _ui.count_deployments_by_flow(self, flow_ids)

    @locked
    def paginate_deployments(self, flow_filter: Any = None, flow_run_filter: Any = None,
                             task_run_filter: Any = None, deployment_filter: Any = None,
                             work_pool_filter: Any = None, work_queue_filter: Any = None,
                             limit: int | None = None, page: int = 1, sort: Any = "NAME_ASC") -> PaginationResponse:
        """Page `page` (from 1) of `limit` deployments (None: 200, at most 200) as
        read_deployments gives them, with the count and number of pages (Prefect's
        POST /deployments/paginate). O(read_deployments)."""
        filters = (flow_filter, flow_run_filter, task_run_filter, deployment_filter, work_pool_filter,
                   work_queue_filter)
        return _pagination.paginate(
            lambda offset, size: _listings.page(self, "deployment", filters, sort, offset, size), limit, page)

    @atomic
    def delete_deployment(self, deployment_id: Any) -> bool:
        """Delete a deployment with its schedules, its never-run SCHEDULED runs and
        its concurrency limit. True iff it existed. O(min(runs of the deployment,
        SCHEDULED runs)) to find those runs (each deleted as by delete_flow_run),
        + O(s) for its s schedules; each catalog row deleted (the deployment, a
        schedule, the limit) also saves its place for a rollback, O(rows of its table)."""
        return _deployments.delete_deployment(self, deployment_id)

    # deployment schedules (engine/deployments.py, the types in engine/schedules.py) ------------
    @atomic
    def create_deployment_schedules(self, deployment_id: Any, schedules: Any) -> list[DeploymentSchedule]:
        """Add schedules to a deployment, each a DeploymentScheduleCreate (a mapping
        or object with `schedule`, `active` = True, `max_scheduled_runs` = None, at
        most 50) or a bare IntervalSchedule / CronSchedule / RRuleSchedule (or its
        JSON). ObjectNotFoundError for an unknown deployment. O(s)."""
        return _deployments.create_deployment_schedules(self, deployment_id, schedules)

    @locked
    def read_deployment_schedules(self, deployment_id: Any,
                                  deployment_schedule_filter: Any = None) -> list[DeploymentSchedule]:
        """The deployment's schedules under a DeploymentScheduleFilter (typed or
        JSON: `active.eq_`), most recently updated first. O(s log s)."""
        return _deployments.read_deployment_schedules(self, deployment_id, deployment_schedule_filter)

    @atomic
    def update_deployment_schedule(self, deployment_id: Any, deployment_schedule_id: Any, schedule: Any = None,
                                   **fields: Any) -> bool:
        """Set the given, non-None fields of a DeploymentScheduleUpdate (`active`,
        `schedule`, `max_scheduled_runs`; a mapping or keywords) and stamp `updated`.
        True iff the deployment has that schedule. O(1)."""
        return _deployments.update_deployment_schedule(self, deployment_id, deployment_schedule_id, schedule, fields)

    @atomic
    def delete_schedules_for_deployment(self, deployment_id: Any) -> bool:
        """Delete every schedule of a deployment; True iff it had one. O(s)."""
        return _deployments.delete_schedules_for_deployment(self, deployment_id)

    @atomic
    def delete_deployment_schedule(self, deployment_id: Any, deployment_schedule_id: Any) -> bool:
        """Delete one schedule of a deployment; True iff it had it. O(1)."""
        return _deployments.delete_deployment_schedule(self, deployment_id, deployment_schedule_id)

    @atomic
    def schedule_runs(self, deployment_id: Any, start_time: Any = None, end_time: Any = None, min_time: Any = None,
                      min_runs: int | None = None, max_runs: int | None = None,
                      auto_scheduled: bool = True) -> list[uuid.UUID]:
        """Create the SCHEDULED runs of the deployment's active schedules, as
        Prefect's schedule_runs (engine/deployments.py has the rules); returns the
        new runs' ids. Defaults: start now, end start + 100 days, min_time 1 hour,
        min_runs 3, max_runs 100. O(schedules · dates · indexes · log n)."""
        return _deployments.schedule_runs(self, deployment_id, start_time, end_time, min_time, min_runs, max_runs,
                                          auto_scheduled)

    @locked
    def check_work_queues_for_deployment(self, deployment_id: Any) -> list[WorkQueue]:
        """The work queues whose legacy `filter` (tags, deployment_ids) lets them
        pick the deployment up, in creation order. ObjectNotFoundError for an
        unknown deployment. O(queues)."""
        return _deployments.check_work_queues_for_deployment(self, deployment_id)

    # work pools and queues ------------------------------------------------------------------------
    @atomic
    def create_work_pool(self, name: str, type: str = "process", **fields: Any) -> WorkPool:
        """Create a work pool with its "default" queue. Names are unique. O(1)
        (a hash index on the name), + O(size of the fields given) to check them."""
        return _workers.create_work_pool(self, name, type, fields)

    @locked
    def read_work_pool(self, work_pool_id: Any) -> WorkPool | None:
        """The work pool with this id, or None. O(1)."""
        return self._table("work_pool").get(as_uuid(work_pool_id, "work_pool_id"))

    @locked
    def read_work_pool_by_name(self, name: str) -> WorkPool | None:
        """The work pool with this name, or None. O(1) (a hash index on the name)."""
        return self._unique("work_pool", "name", as_str(name, "name", False))

    @locked
    def read_work_pools(self, work_pool_filter: Any = None, offset: int | None = None,
                        limit: int | None = None) -> list[WorkPool]:
        """Pools matching `work_pool_filter` (typed or Prefect's JSON shape), ordered
        by name, paginated. O(p log p) for p pools."""
        return _workers.read_work_pools(self, work_pool_filter, offset, limit)

    @locked
    def count_work_pools(self, work_pool_filter: Any = None) -> int:
        """Number of pools matching `work_pool_filter`. O(1) without one, else O(p)."""
        return _workers.count_work_pools(self, work_pool_filter)

    @atomic
    def update_work_pool(self, work_pool_id: Any, work_pool: Mapping[str, Any] | None = None, **fields: Any) -> bool:
        """Set the given fields (description, is_paused, base_job_template,
        concurrency_limit). Pausing sets the status PAUSED, unpausing READY if one of
        the pool's workers is ONLINE, else NOT_READY (not for "prefect-agent" pools).
        Raises ObjectNotFoundError for an unknown pool, as Prefect does. O(1), O(w)
        for w workers when unpausing."""
        return _workers.update_work_pool(self, work_pool_id, work_pool, fields)

    @atomic
    def delete_work_pool(self, work_pool_id: Any) -> bool:
        """Delete a pool with its workers and queues (their runs and deployments
        lose the queue). True iff it existed. O(w + q + d + r) for its w workers,
        q queues, and the d deployments and r runs of those queues; each catalog row
        deleted (the pool, a worker, a queue) also saves its place for a rollback,
        O(rows of its table)."""
        return _workers.delete_work_pool(self, work_pool_id)

    @atomic
    def worker_heartbeat(self, work_pool_id: Any, worker_name: str, heartbeat_interval_seconds: int | None = None,
                         *, mark_pool_ready: bool = False) -> bool:
        """Record a heartbeat of the pool's worker `worker_name`, creating it on the
        first one: last_heartbeat_time = now, status ONLINE, the interval only when
        given. True, as Prefect answers. `mark_pool_ready=True` also sets a
        NOT_READY pool READY, as Prefect's API route does. ObjectNotFoundError for
        an unknown pool. O(1)."""
        return _workers.worker_heartbeat(self, work_pool_id, worker_name, heartbeat_interval_seconds,
                                         mark_pool_ready)

    @locked
    def read_workers(self, work_pool_id: Any, worker_filter: Any = None, limit: int | None = None,
                     offset: int | None = None) -> list[Worker]:
        """The pool's workers matching `worker_filter` (a WorkerFilter or Prefect's
        JSON shape), latest heartbeat first (ties: newest worker first), paginated.
        Prefect's parameter order: limit before offset. O(w log w) for w workers."""
        return _workers.read_workers(self, work_pool_id, worker_filter, limit, offset)

    @atomic
    def delete_worker(self, work_pool_id: Any, worker_name: str) -> bool:
        """Delete the pool's worker `worker_name`; True iff it existed. O(1)."""
        return _workers.delete_worker(self, work_pool_id, worker_name)

    @atomic
    def run_foreman_once(
        self,
        *,
        inactivity_heartbeat_multiple: int = _foreman.INACTIVITY_HEARTBEAT_MULTIPLE,
        fallback_heartbeat_interval_seconds: int = _foreman.FALLBACK_HEARTBEAT_INTERVAL_SECONDS,
        deployment_last_polled_timeout_seconds: int = _foreman.DEPLOYMENT_LAST_POLLED_TIMEOUT_SECONDS,
        work_queue_last_polled_timeout_seconds: int = _foreman.WORK_QUEUE_LAST_POLLED_TIMEOUT_SECONDS,
    ) -> ForemanPass:
        """One pass of Prefect's foreman service, with its settings' defaults: ONLINE
        workers silent for more than `inactivity_heartbeat_multiple` heartbeat
        intervals (their own, else the fallback) go OFFLINE; READY pools left with no
        ONLINE worker go NOT_READY; READY deployments polled more than the timeout
        ago (and their queue too, if it was ever polled) and READY queues polled
        more than the timeout ago go NOT_READY. Returns what changed. O(workers +
        pools + deployments + queues)."""
        return _foreman.run_foreman_once(
            self, inactivity_heartbeat_multiple, fallback_heartbeat_interval_seconds,
            deployment_last_polled_timeout_seconds, work_queue_last_polled_timeout_seconds,
        )

    @atomic
    def mark_work_queues_ready(self, polled_work_queue_ids: Any = None, ready_work_queue_ids: Any = None) -> None:
        """What Prefect's worker-poll route records after a poll: the polled queues
        get `last_polled` = now, the ready ones (those that were NOT_READY) also
        status READY. Unknown ids are ignored. O(ids)."""
        _foreman.mark_work_queues_ready(self, polled_work_queue_ids, ready_work_queue_ids)

    @atomic
    def mark_work_queues_not_ready(self, work_queue_ids: Any = None) -> None:
        """These queues become NOT_READY, whatever their status was. Unknown ids are
        ignored. O(ids)."""
        _foreman.mark_work_queues_not_ready(self, work_queue_ids)

    @atomic
    def create_work_queue(self, work_pool_id: Any, name: str, **fields: Any) -> WorkQueue:
        """Create a queue in a pool; (pool, name) is unique. O(q²) for the q queues of
        the pool, which are renumbered by priority as Prefect does (pools hold a handful)."""
        return _workers.create_work_queue(self, work_pool_id, name, fields)

    @locked
    def read_work_queue(self, work_queue_id: Any) -> WorkQueue | None:
        """The work queue with this id, or None. O(1)."""
        return self._table("work_queue").get(as_uuid(work_queue_id, "work_queue_id"))

    @locked
    def read_work_queues(self, work_pool_id: Any, work_queue_filter: Any = None, offset: int | None = None,
                         limit: int | None = None) -> list[WorkQueue]:
        """A pool's queues matching `work_queue_filter` (typed or Prefect's JSON
        shape), ordered by priority (equal ones oldest first, as in Prefect),
        paginated. O(q log q) for q queues."""
        return _workers.read_work_queues(self, work_pool_id, work_queue_filter, offset, limit)

    @atomic
    def update_work_queue(self, work_queue_id: Any, work_queue: Mapping[str, Any] | None = None, *,
                          default_status: str = "NOT_READY", **fields: Any) -> bool:
        """Set the given fields (name, description, is_paused, concurrency_limit,
        priority, last_polled, filter). A priority is placed as at creation (the
        others move down as little as needed); pausing sets PAUSED, unpausing a
        PAUSED queue READY if polled in the last 60 s, else `default_status`. True
        iff the queue exists. O(queues in the pool)."""
        return _workers.update_work_queue(self, work_queue_id, work_queue, fields, default_status)

    @atomic
    def bulk_update_work_queue_priorities(self, work_pool_id: Any, new_priorities: Mapping[Any, int]) -> None:
        """Give the pool's queues in `new_priorities` ({queue id: priority}) those
        priorities, the others moving down only as needed, by Prefect's algorithm
        (its quirks included: see engine/workers.py). Ids outside the pool are
        ignored; duplicate targets raise ValidationError. O(q²) for q queues."""
        _workers.bulk_update_work_queue_priorities(self, work_pool_id, new_priorities)

    @locked
    def get_scheduled_flow_runs(self, work_pool_ids: Any = None, work_queue_ids: Any = None,
                                scheduled_before: Any = None, scheduled_after: Any = None,
                                limit: int | None = None,
                                respect_queue_priorities: bool | None = None) -> list[WorkerFlowRunResponse]:
        """The SCHEDULED runs a worker polling these pools/queues may submit, within
        pool and queue concurrency limits, as Prefect's worker query picks and orders
        them (engine/workers.py). O(Q·k log n) for Q queues and k runs taken from each."""
        return _workers.get_scheduled_flow_runs(self, work_pool_ids, work_queue_ids, scheduled_before,
                                                scheduled_after, limit, respect_queue_priorities)

    @atomic
    def delete_work_queue(self, work_queue_id: Any) -> bool:
        """Delete a queue: its flow runs and deployments lose it and the pool's
        priorities are renumbered; a pool's default queue raises ValidationError.
        True iff it existed. O(d + r + q log q) for the d deployments and r runs of
        the queue and the q queues of the pool, + O(rows of the queue table) to save
        its place for a rollback."""
        return _workers.delete_work_queue(self, work_queue_id)

    # concurrency limits ---------------------------------------------------------------------------------
    @atomic
    def create_concurrency_limit(self, tag: str, concurrency_limit: int, active_slots: list | None = None) -> ConcurrencyLimit:
        """Create a tag limit, or update `concurrency_limit` of the existing one (slots kept).
        O(S) for the S active slots given or, on an update, held (saved for a rollback)."""
        if not isinstance(tag, str) or not tag:
            raise ValidationError(f"concurrency limit tag must be a non-empty string, got {shown(tag)}")
        tag = storable_text(tag, "concurrency limit tag")
        as_count(concurrency_limit, "concurrency_limit")
        slots = as_slot_holders(active_slots, "active_slots")
        now = self._clock.now()
        limit = self._unique("concurrency_limit", "tag", tag)
        if limit is not None:
            self._store.touch("concurrency_limit", limit)
            limit.concurrency_limit = concurrency_limit
            limit.updated = now
            return limit
        limit = ConcurrencyLimit(tag=tag, concurrency_limit=concurrency_limit, active_slots=list(dict.fromkeys(slots)))
        self._stamp(limit, now)
        return self._insert("concurrency_limit", limit)

    @locked
    def read_concurrency_limit_by_tag(self, tag: str) -> ConcurrencyLimit | None:
        """The tag limit of `tag`, or None. O(1) (a hash index on the tag)."""
        return self._unique("concurrency_limit", "tag", as_str(tag, "tag", False))

    @locked
    def read_concurrency_limits(self, limit: int | None = None, offset: int = 0) -> list[ConcurrencyLimit]:
        """The tag limits ordered by tag, after `offset`, at most `limit` (None: all).
        O(L log L) for the L tag limits (all sorted, then sliced)."""
        page = _queries.window(offset, limit)
        return sorted(self._table("concurrency_limit").values(), key=lambda c: c.tag)[page]

    @atomic
    def reset_concurrency_limit_by_tag(self, tag: str, slot_override: list | None = None) -> ConcurrencyLimit | None:
        """Replace the active slots of `tag`'s limit with `slot_override` (None: none);
        the limit, or None if there is none. O(S) for the S slots held before
        (saved for a rollback) and given."""
        slots = as_slot_holders(slot_override, "slot_override")
        limit = self.read_concurrency_limit_by_tag(tag)
        if limit is None:
            return None
        self._store.touch("concurrency_limit", limit)
        limit.active_slots = slots
        limit.updated = self._clock.now()
        return limit

    @atomic
    def delete_concurrency_limit_by_tag(self, tag: str) -> bool:
        """Delete `tag`'s limit; True iff there was one. O(L + S) for the L tag limits
        (its place among them is saved for a rollback) and the S slots it holds."""
        limit = self.read_concurrency_limit_by_tag(tag)
        if limit is None:
            return False
        self._store.delete("concurrency_limit", limit)
        return True

    @atomic
    def create_concurrency_limit_v2(self, name: str, limit: int, **fields: Any) -> ConcurrencyLimitV2:
        """Create a global (v2) limit; names are unique. O(1) (a hash index on the name)."""
        name = as_name(name, "concurrency_limit_v2.name")
        if self._store.tables["concurrency_limit_v2"].by_name["name"].get(name):
            raise UniquenessError(f"a concurrency limit named {shown(name)} already exists")
        as_count(limit, "limit")
        values = coerce_fields("concurrency_limit_v2", fields, _CONCURRENCY_LIMIT_V2_FIELDS)
        gcl = ConcurrencyLimitV2(name=name, limit=limit, **values)
        self._stamp(gcl, self._clock.now())
        return self._insert("concurrency_limit_v2", gcl)

    @locked
    def read_concurrency_limit_v2(self, concurrency_limit_id: Any = None, name: str | None = None) -> ConcurrencyLimitV2 | None:
        """The limit with this id, or else (no id given) this name. O(1)."""
        if concurrency_limit_id is None and name is not None:
            return self._unique("concurrency_limit_v2", "name", as_str(name, "name"))
        return self._table("concurrency_limit_v2").get(as_uuid(concurrency_limit_id, "concurrency_limit_id"))

    @atomic
    def delete_concurrency_limit_v2(self, concurrency_limit_id: Any) -> bool:
        """Delete the limit with this id; a deployment it limited keeps no limit (the
        foreign key's ON DELETE SET NULL). False if there is no such limit. O(indexes)."""
        gcl = self._table("concurrency_limit_v2").get(as_uuid(concurrency_limit_id, "concurrency_limit_id"))
        if gcl is None:
            return False
        self._delete_limit_v2(gcl)
        return True

    def _delete_limit_v2(self, gcl: ConcurrencyLimitV2) -> None:
        # The deployment's foreign key is ON DELETE SET NULL, then the limit goes.
        self._store.set_null("deployment", "concurrency_limit_id", gcl.id)
        self._store.delete("concurrency_limit_v2", gcl)

    @atomic
    def update_concurrency_limit_v2(self, concurrency_limit_id: Any, concurrency_limit: Mapping[str, Any] | None = None,
                                    **fields: Any) -> bool:
        """Set the given fields (active, name, limit, active_slots, denied_slots,
        slot_decay_per_second) of the limit with this id; `updated` becomes now.
        False if there is no such limit (the facade also finds one by name). O(1)."""
        given = merged_fields(concurrency_limit, fields, "concurrency_limit")
        found = self._table("concurrency_limit_v2").get(as_uuid(concurrency_limit_id, "concurrency_limit_id"))
        return _concurrency.update_concurrency_limit_v2(self, found, given)

    @atomic
    def bulk_update_denied_slots(self, concurrency_limit_ids: list, slots: int) -> bool:
        """Add `slots` to the decayed denied slots of every listed active limit. True
        iff every listed id was updated. O(ids)."""
        return _concurrency.bulk_update_denied_slots(
            self, as_uuid_list(concurrency_limit_ids, "concurrency_limit_ids"), as_count(slots, "slots"))

    @atomic
    def bulk_read_or_create_concurrency_limits(self, names: list, create_if_missing: bool | None = None) -> list:
        """The global limits with these names (name order); with
        `create_if_missing`, the missing ones are created inactive with a limit of 1
        and follow. O(k log k) for k names."""
        checked = as_str_list(names, "names")
        create = False if create_if_missing is None else as_bool(create_if_missing, "create_if_missing")
        return _concurrency.bulk_read_or_create_concurrency_limits(self, checked, create)

    @atomic
    def bulk_increment_active_slots(self, concurrency_limit_ids: list, slots: int) -> bool:
        """Take `slots` (after decay) on every listed active limit that has room for
        them. True iff every listed id was updated. O(ids)."""
        return _concurrency.bulk_increment_active_slots(self, as_uuid_list(concurrency_limit_ids, "concurrency_limit_ids"), as_count(slots, "slots"))

    @atomic
    def bulk_decrement_active_slots(self, concurrency_limit_ids: list, slots: int, occupancy_seconds: float | None = None) -> bool:
        """Give back `slots` (after decay, clamped at 0) on every listed active limit;
        `occupancy_seconds` also updates each one's average slot occupancy. True iff
        every listed id was updated. O(ids)."""
        if occupancy_seconds is not None and not is_finite_number(occupancy_seconds):
            raise ValidationError(f"occupancy_seconds must be a finite number or None, got {shown(occupancy_seconds)}")
        slots = as_count(slots, "slots")
        if occupancy_seconds and not slots:
            # Prefect divides by the slots before anything else (ZeroDivisionError).
            raise ValidationError("occupancy_seconds needs at least one slot given back (slots is 0)")
        return _concurrency.bulk_decrement_active_slots(self, as_uuid_list(concurrency_limit_ids, "concurrency_limit_ids"), slots, occupancy_seconds)

    # flow runs ---------------------------------------------------------------------------------------------
    @atomic
    def create_flow_run(
        self,
        flow_run: Mapping[str, Any] | None = None,
        *,
        state: State | Mapping | None = None,
        orchestration_parameters: dict | None = None,
        **fields: Any,
    ) -> FlowRun:
        """Create a flow run from explicitly given fields (a mapping and/or keywords).

        With a truthy `idempotency_key`, an existing run of the same flow with that key
        is returned unchanged. A new run given a `state` gets it through the forced
        orchestration path. O(indexes · log n).
        """
        fields, state = _create_fields(flow_run, fields, state, "flow_run", _FLOW_RUN_DROPPED)
        if "flow_id" not in fields:
            raise ValidationError("create_flow_run needs a flow_id")
        values = coerce_fields("flow_run", fields, _FLOW_RUN_CREATE)
        if state is not None:
            state = as_state(state)
        flow_id = values["flow_id"]
        if flow_id not in self._store.tables["flow"].rows:
            raise ValidationError(f"flow_run.flow_id: flow {flow_id} does not exist")
        key = values.get("idempotency_key")
        if key is not None:
            # Before the other references are checked: Prefect's insert skips on the
            # key's conflict, so the first run comes back whatever else was given.
            bucket = self._store.tables["flow_run"].by_name["idempotency"].get((flow_id, key))
            if bucket:
                if key:
                    return next(iter(bucket.values()))
                raise UniquenessError(f"a flow run of flow {flow_id} already has idempotency_key {shown(key)}")
        if not key and "job_variables" in values and values["job_variables"] is None:
            # Prefect's ORM insert (no idempotency key) lets the column default {}
            # stand in for None; its insert for a key writes the None.
            values["job_variables"] = {}
        if values.get("parent_task_run_id") is not None and values["parent_task_run_id"] not in self._table("task_run"):
            raise ValidationError(f"flow_run.parent_task_run_id: task run {values['parent_task_run_id']} does not exist")
        if values.get("work_queue_id") is not None and values["work_queue_id"] not in self._table("work_queue"):
            raise ValidationError(f"flow_run.work_queue_id: work queue {values['work_queue_id']} does not exist")
        return self._insert_new_run("flow_run", FlowRun, values, state, orchestration_parameters)

    @atomic
    def create_flow_run_from_deployment(
        self,
        deployment_id: Any,
        flow_run: Mapping[str, Any] | None = None,
        *,
        state: State | Mapping | None = None,
        **fields: Any,
    ) -> FlowRun:
        """Create a flow run of a deployment as Prefect's create_flow_run_from_deployment
        route does: the deployment's parameters overlaid with `parameters`, hydrated
        and (if enforced) validated against its schema; job variables validated
        against its pool's template; a `work_queue_name` looked up (or created) in its
        pool; tags, version, queue and flow from the deployment; Scheduled unless
        `state` is given; idempotent on `idempotency_key`. Fields are those of
        Prefect's DeploymentFlowRunCreate. ObjectNotFoundError for an unknown
        deployment, ValidationError (Prefect's message) for a refusal.
        O(size of parameters, job variables and schemas) + create_flow_run."""
        given = merged_fields(flow_run, fields, "flow_run")
        if state is not None:
            given["state"] = state
        return _deployment_runs.create_flow_run_from_deployment(self, deployment_id, given)

    def _insert_new_run(self, kind: str, cls: type, values: dict, state: State | None,
                        parameters: dict | None) -> Any:
        """The end of create_flow_run / create_task_run, once `values` are checked:
        default name, id uniqueness, then insert the run and give it its first state
        through the forced path (already inside this call's transaction: no
        savepoint of its own).

        The run is filed in the indexes once, after the state is set, instead of
        filed then moved; event listeners may query mid-transition, so with any
        registered the run is filed up front as before."""
        if not values.get("name"):
            values["name"] = random_slug()
        store = self._store
        run = cls(**values)
        run.created = run.updated = self._clock.now()
        if state is None:
            store.insert(kind, run)
            return run
        store.insert(kind, run, file=bool(_instrumentation.EVENT_LISTENERS))
        # Orchestration ends by re-indexing the run, which files it; it returns no
        # other way (a failure raises and the call's transaction rolls back).
        if kind == "flow_run":
            _orchestration.set_flow_run_state(self, run.id, state, True, None, parameters)
        else:
            _orchestration.set_task_run_state(self, run.id, state, True, None, parameters)
        return run

    @locked
    def read_flow_run(self, flow_run_id: Any) -> FlowRun | None:
        """The flow run with this id, or None. O(1)."""
        return self._table("flow_run").get(as_uuid(flow_run_id, "flow_run_id"))

    @atomic
    def update_flow_run(self, flow_run_id: Any, flow_run: Mapping[str, Any] | None = None, **fields: Any) -> bool:
        """Replace the explicitly given fields (name, flow_version, parameters,
        empirical_policy, tags, infrastructure_pid, job_variables). True iff the run exists.
        O(changed indexed fields · log n) (name and tags are indexed), + O(size of the
        values given) to check them; see README, Operations and their cost."""
        return self._update_fields("flow_run", flow_run_id, flow_run, fields, _FLOW_RUN_UPDATE)

    def _update_fields(self, kind: str, rec_id: Any, given: Mapping | None, fields: dict,
                       allowed: frozenset) -> bool:
        """update_flow / update_flow_run / update_task_run: `given` and `fields` are
        merged, keywords winning. True iff the record exists."""
        values = coerce_fields(kind, merged_fields(given, fields, kind), allowed)
        rec = self._table(kind).get(as_uuid(rec_id, f"{kind}_id"))
        if rec is None:
            return False
        if "name" in values and not values["name"]:
            values["name"] = random_slug()
        self._write(kind, rec, values)
        return True

    def _write(self, kind: str, rec: Any, values: Mapping[str, Any], now: _dt.datetime | None = None) -> None:
        """Set `values` on a stored record, stamp `updated` (`now` or the clock's) and
        refile it, undoably. O(indexes), O(log n) per sorted index that moved."""
        self._store.touch(kind, rec)
        for key, value in values.items():
            setattr(rec, key, value)
        rec.updated = self._clock.now() if now is None else now
        self._store.reindex(kind, rec)

    @atomic
    def delete_flow_run(self, flow_run_id: Any) -> bool:
        """Delete a run with its states and task runs; releases a held deployment slot.
        O((its states + its task runs and their states + subflows made top-level)
        · log n) per live sorted index, + O(i²) for its i inputs (each one's place
        among the rest is saved for a rollback); see README, Operations and their cost."""
        run = self._table("flow_run").get(as_uuid(flow_run_id, "flow_run_id"))
        if run is None:
            return False
        self._cleanup_flow_run_concurrency_slots(run)
        self._delete_flow_run_cascade(run)
        return True

    def _cleanup_flow_run_concurrency_slots(self, run: FlowRun) -> None:
        if run.deployment_id is None or run.state is None or run.state_id is None:
            return
        if run.state.type not in (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING):
            return
        dep = self._table("deployment").get(run.deployment_id)
        if dep is not None and dep.concurrency_limit_id is not None:
            _concurrency.bulk_decrement_active_slots(self, [dep.concurrency_limit_id], 1)

    def _delete_flow_run_cascade(self, run: FlowRun) -> None:
        store = self._store
        for task_run in list(store.tables["task_run"].by_name["flow_run_id"].get(run.id).values()):
            self._delete_task_run_cascade(task_run)
        store.delete_where("flow_run_state", "run_id", run.id)
        store.delete_where("flow_run_input", "flow_run_id", run.id)
        store.delete("flow_run", run)

    # task runs ------------------------------------------------------------------------------------------------
    @atomic
    def create_task_run(
        self,
        task_run: Mapping[str, Any] | None = None,
        *,
        state: State | Mapping | None = None,
        orchestration_parameters: dict | None = None,
        **fields: Any,
    ) -> TaskRun:
        """Create a task run, or return the existing one with the same
        (flow_run_id, task_key, dynamic_key) unchanged (NULL flow run included).
        O(log n) per live sorted index + O(1) per hash index, with or without a
        first state (see README, Operations and their cost); O(1) for an existing one."""
        fields, state = _create_fields(task_run, fields, state, "task_run", _TASK_RUN_DROPPED)
        for required in ("task_key", "dynamic_key"):
            if required not in fields:
                raise ValidationError(f"create_task_run needs a {required}")
            if not isinstance(fields[required], str):
                raise ValidationError(f"task_run.{required} must be a string, got {shown(fields[required])}")
        values = coerce_fields("task_run", fields, _TASK_RUN_CREATE)
        if state is not None:
            state = as_state(state)
        cache_key = values.get("cache_key")
        if cache_key is not None and (not isinstance(cache_key, str) or len(cache_key) > 2000):
            raise ValidationError("Cache key exceeded maximum allowed length of 2000 characters.")
        flow_run_id = values.get("flow_run_id")
        if flow_run_id is not None and flow_run_id not in self._table("flow_run"):
            raise ValidationError(f"task_run.flow_run_id: flow run {flow_run_id} does not exist")
        upsert_key = (flow_run_id, values["task_key"], values["dynamic_key"])
        # Inline rather than _unique: every create_task_run makes this lookup.
        bucket = self._store.tables["task_run"].by_name["upsert_key"].get(upsert_key)
        if bucket:
            return next(iter(bucket.values()))
        return self._insert_new_run("task_run", TaskRun, values, state, orchestration_parameters)

    @locked
    def read_task_run(self, task_run_id: Any) -> TaskRun | None:
        """The task run with this id, or None. O(1)."""
        return self._table("task_run").get(as_uuid(task_run_id, "task_run_id"))

    @atomic
    def update_task_run(self, task_run_id: Any, task_run: Mapping[str, Any] | None = None, **fields: Any) -> bool:
        """Replace the explicitly given fields (only `name`). True iff the run exists.
        O(indexes), + O(log n) per live name order (global, per state type) a new
        name moves it in."""
        return self._update_fields("task_run", task_run_id, task_run, fields, _TASK_RUN_UPDATE)

    @atomic
    def delete_task_run(self, task_run_id: Any) -> bool:
        """Delete a task run and its states; subflows it wrapped become top-level.
        O(h + subflows · indexes) for its h states and the subflows it wrapped
        (refiled in hash indexes only), + O(log n) per live sorted index of task runs."""
        run = self._table("task_run").get(as_uuid(task_run_id, "task_run_id"))
        if run is None:
            return False
        self._delete_task_run_cascade(run)
        return True

    def _delete_task_run_cascade(self, run: TaskRun) -> None:
        store = self._store
        store.set_null("flow_run", "parent_task_run_id", run.id)  # its subflows become top-level
        store.delete_where("task_run_state", "run_id", run.id)
        store.delete("task_run", run)

    # states ---------------------------------------------------------------------------------------------------
    def _row_to_state(self, row: FlowRunStateRow | TaskRunStateRow, share_details: bool = False) -> State:
        """The State a row describes; its details are a copy unless `share_details`
        (a run's current state shares them with its row, as `_store_state` makes it)."""
        data = row.data
        if not data and row.result_artifact_id is not None:
            artifact = self._table("artifact").get(row.result_artifact_id)
            data = artifact.data if artifact is not None else None
        details = row.state_details
        # make_state skips __init__; a nameless row needs it to get the default name.
        build = make_state if row.name is not None else State
        return build(
            id=row.id,
            type=row.type,
            name=row.name,
            timestamp=row.timestamp,
            message=row.message,
            data=data,
            state_details=details if share_details else details.copy(),
        )

    @locked
    def read_flow_run_state(self, flow_run_state_id: Any) -> State | None:
        """The flow-run state with this id (its details copied), or None. O(1)."""
        row = self._table("flow_run_state").get(as_uuid(flow_run_state_id, "flow_run_state_id"))
        return None if row is None else self._row_to_state(row)

    @locked
    def read_task_run_state(self, task_run_state_id: Any) -> State | None:
        """The task-run state with this id (its details copied), or None. O(1)."""
        row = self._table("task_run_state").get(as_uuid(task_run_state_id, "task_run_state_id"))
        return None if row is None else self._row_to_state(row)

    @locked
    def read_flow_run_states(self, flow_run_id: Any) -> list[State]:
        """A flow run's states by timestamp ascending. O(h log h) for h states."""
        return self._read_history("flow_run_state", as_uuid(flow_run_id, "flow_run_id"))

    @locked
    def read_task_run_states(self, task_run_id: Any) -> list[State]:
        """A task run's states by timestamp ascending. O(h log h) for h states."""
        return self._read_history("task_run_state", as_uuid(task_run_id, "task_run_id"))

    def _read_history(self, kind: str, run_id: uuid.UUID) -> list[State]:
        rows = self._store.tables[kind].by_name["run_id"].get(run_id)
        return [self._row_to_state(r) for r in sorted(rows.values(), key=lambda r: r.timestamp)]

    @atomic
    def delete_flow_run_state(self, flow_run_state_id: Any) -> bool:
        """Delete one flow-run state row; True iff it existed. A run whose current
        state it was keeps no current state (its state columns stay). O(1)."""
        return self._delete_state_row("flow_run_state", "flow_run", as_uuid(flow_run_state_id, "flow_run_state_id"))

    @atomic
    def delete_task_run_state(self, task_run_state_id: Any) -> bool:
        """Delete one task-run state row; True iff it existed. A run whose current
        state it was keeps no current state (its state columns stay). O(1)."""
        return self._delete_state_row("task_run_state", "task_run", as_uuid(task_run_state_id, "task_run_state_id"))

    def _delete_state_row(self, kind: str, run_kind: str, row_id: uuid.UUID) -> bool:
        row = self._table(kind).get(row_id)
        if row is None:
            return False
        run_id = row.flow_run_id if run_kind == "flow_run" else row.task_run_id
        run = self._table(run_kind).get(run_id)
        if run is not None and run.state_id == row.id:
            # FK ON DELETE SET NULL: the denormalised type/name/timestamp stay (stale).
            self._store.touch(run_kind, run)
            run.state_id = None
            run.state = None
        self._store.delete(kind, row)
        return True

    def _frozen_clock_hint(self, timestamp: _dt.datetime) -> str:
        # The usual way to meet the unique (run, timestamp) index in a test: a manual
        # clock that never moves, stamping every state with the same time.
        clock = self._given_clock
        if isinstance(clock, ManualClock) and not clock.tick and clock.time == timestamp:
            return ("; this engine's ManualClock has no tick, so states stamped by it share one time: "
                    "give it one (ManualClock(start, tick=timedelta(microseconds=1))) or advance it between transitions")
        return ""

    def _store_state(self, run_kind: str, run: FlowRun | TaskRun, state: State,
                     now: _dt.datetime | None = None) -> State:
        """Write `state` as `run`'s new current state (the storage half of
        validate_proposed_state): artifact for a persisted result, state row, run's
        `state_id`. Returns the validated state. Caller has touched `run`. `now`
        stamps the row (default: the clock's reading)."""
        store = self._store
        if now is None:
            now = self._clock.now()
        row_kind = "flow_run_state" if run_kind == "flow_run" else "task_run_state"
        # (run, timestamp) is unique, as in Prefect's schema (HistoryTable.holds_time).
        timestamp = state.timestamp
        history = store.tables[row_kind]
        # (The same state again, already stored, is left to the insert below, whose
        # DuplicateIdError names its id rather than its time.)
        if history.holds_time(run.id, timestamp) and state.id not in history.rows:
            raise UniquenessError(
                f"{run_kind.replace('_', ' ')} {run.id} already has a state at {timestamp.isoformat()}"
                + self._frozen_clock_hint(timestamp)
            )
        data = state.data
        artifact_id = None
        if data is not None and not (isinstance(data, dict) and data.get("type") == "unpersisted"):
            artifact_id = self._store_result_artifact(run_kind, run, data, now)
        details, state_id = state.state_details, state.id
        current = run.state
        if current is not None and run.state_id is not None:
            # Consecutive states of a run often carry identical details (the run's
            # ids, nothing else): share the current state's object rather than keep
            # one more for the garbage collector to walk on every collection.
            shared = current.state_details
            if shared is not details and _details_values(shared) == _details_values(details):
                details = shared
        if run_kind == "flow_run":
            row = _make_flow_row(
                type=state.type, timestamp=timestamp, name=state.name, message=state.message,
                state_details=details, data=None, result_artifact_id=artifact_id, id=state_id,
                created=now, updated=now, flow_run_id=run.id,
            )
        else:
            row = _make_task_row(
                type=state.type, timestamp=timestamp, name=state.name, message=state.message,
                state_details=details, data=None, result_artifact_id=artifact_id, id=state_id,
                created=now, updated=now, task_run_id=run.id,
            )
        store.insert(row_kind, row)  # a taken id: DuplicateIdError, nothing changed (the call's rollback drops any artifact)
        if state.__class__ is State:
            # The proposed state is the engine's own (the pipeline copies what callers
            # submit): it becomes the validated state instead of being copied once more.
            state.state_details = details  # a plain slot store (State validates in __init__ only)
            validated = state
        else:
            validated = make_state(
                id=state_id, type=state.type, name=state.name, timestamp=timestamp, message=state.message,
                data=data, state_details=details,
            )
        run.state_id = row.id
        run.state = validated
        return validated

    def _store_result_artifact(self, run_kind: str, run: Any, data: Any, now: _dt.datetime) -> uuid.UUID:
        key = type_ = description = None
        if isinstance(data, dict):
            key, type_, description = (_artifact_field(data, name)
                                       for name in ("artifact_key", "artifact_type", "artifact_description"))
        if run_kind == "flow_run":
            task_run_id, flow_run_id = None, run.id
        else:
            task_run_id, flow_run_id = run.id, run.flow_run_id
        artifact = Artifact(key=key, type=type_, description=description, data=data,
                            task_run_id=task_run_id, flow_run_id=flow_run_id)
        artifact.created = artifact.updated = now
        self._store.insert("artifact", artifact)
        if key:
            coll = self._unique("artifact_collection", "key", key)
            if coll is not None:
                self._store.touch("artifact_collection", coll)
            else:
                coll = ArtifactCollection(key=key, latest_id=artifact.id)
                coll.created = now
                self._store.insert("artifact_collection", coll)
            # Prefect upserts only the columns the artifact set: its data and runs
            # always (a task run's flow run only when it has one), its type and
            # description when truthy; the others keep the previous artifact's.
            coll.latest_id, coll.updated, coll.data = artifact.id, now, data
            if task_run_id is not None:
                coll.task_run_id = task_run_id
            if flow_run_id is not None:
                coll.flow_run_id = flow_run_id
            if type_ is not None:
                coll.type = type_
            if description is not None:
                coll.description = description
        return artifact.id

    @locked
    def read_artifact(self, artifact_id: Any) -> Artifact | None:
        """The artifact with this id (a state's `result_artifact_id`), or None. O(1)."""
        return self._table("artifact").get(as_uuid(artifact_id, "artifact_id"))

    @locked
    def read_latest_artifact(self, key: str) -> ArtifactCollection | None:
        """The artifact collection of `key` (`latest_id` names the newest artifact
        under it), or None. O(1)."""
        return self._unique("artifact_collection", "key", as_text(key, "key"))

    # queries (engine/queries.py) ---------------------------------------------------------------------------------
    @locked
    def read_flow_runs(
        self,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
        work_pool_filter: Any = None,
        work_queue_filter: Any = None,
        offset: int | None = None,
        limit: int | None = None,
        sort: Any = "ID_DESC",
    ) -> list[FlowRun]:
        """Flow runs matching every given filter, in `sort` order, after `offset`,
        at most `limit`. Filters may be typed objects or Prefect's JSON shapes.
        With a limit, O(k) for k = offset + limit when matches are dense in the sort
        order, at most O(c + m log m) from the smallest candidate set; without one,
        O(c log c) or O(n); + cross-entity filters, and O(n log n) once for a sort
        order's first use (see README, Operations and their cost)."""
        return _queries.read_flow_runs(
            self, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
            work_pool_filter, work_queue_filter, offset, limit, sort,
        )

    @locked
    def count_task_runs_by_flow_run(self, flow_run_ids: Iterable[Any]) -> dict[uuid.UUID, int]:
        """{flow run id: number of its task runs}, leaving out task runs that are a
        subflow's parent, for each of at most 200 ids (0 for an unknown run; Prefect's
        POST /ui/flow_runs/count-task-runs). O(task runs of those flow runs)."""
        return _ui.count_task_runs_by_flow_run(self, flow_run_ids)

    @locked
    def next_runs_by_flow(self, flow_ids: Iterable[Any]) -> dict[uuid.UUID, SimpleNextFlowRun | None]:
        """{flow id: its SCHEDULED run with the earliest next_scheduled_start_time
        (ties: the one created last), or None}, for each of at most 200 ids (Prefect's
        POST /ui/flows/next-runs). O(runs of those flows)."""
        return _ui.next_runs_by_flow(self, flow_ids)

    @locked
    def read_flow_run_history(
        self,
        sort: Any = "EXPECTED_START_TIME_DESC",
        limit: int | None = 1000,
        offset: int = 0,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
        work_pool_filter: Any = None,
    ) -> list[SimpleFlowRun]:
        """The UI's scatter plot (Prefect's POST /ui/flow_runs/history): the flow runs
        read_flow_runs gives (limit at most 1000; None: 1000), each as a SimpleFlowRun (id, state
        type, start or expected start time, estimated run time, lateness). Not the
        bucketed `flow_run_history`. Cost: that read's + O(limit)."""
        return _ui.read_flow_run_history(self, sort, limit, offset, flow_filter, flow_run_filter, task_run_filter,
                                         deployment_filter, work_pool_filter, None)

    @locked
    def read_dashboard_task_run_counts(
        self,
        task_run_filter: Any,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        deployment_filter: Any = None,
        work_pool_filter: Any = None,
        work_queue_filter: Any = None,
    ) -> list[TaskRunCount]:
        """The UI's task-run chart (Prefect's POST /ui/task_runs/dashboard/counts):
        matching task runs in a final state counted as completed or failed in 20
        buckets of start time; `task_run_filter` needs `start_time.after_`. See
        engine/ui.py for the arithmetic. Cost: O(log n + task runs started in the window)."""
        return _ui.read_dashboard_task_run_counts(self, task_run_filter, flow_filter, flow_run_filter,
                                                  deployment_filter, work_pool_filter, work_queue_filter)

    @locked
    def paginate_flow_runs(
        self,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
        work_pool_filter: Any = None,
        work_queue_filter: Any = None,
        limit: int | None = None,
        page: int = 1,
        sort: Any = "ID_DESC",
    ) -> PaginationResponse:
        """Page `page` (from 1) of `limit` flow runs (None: 200, at most 200) as
        read_flow_runs gives them, with the count and number of pages (Prefect's
        POST /flow_runs/paginate). A read with offset (page - 1) * limit, plus a count of
        the same query plan: O(read_flow_runs with k = page · limit + count_flow_runs)."""
        filters = (flow_filter, flow_run_filter, task_run_filter, deployment_filter, work_pool_filter,
                   work_queue_filter)
        return _pagination.paginate(
            lambda offset, size: _queries.page_flow_runs(self, filters, offset, size, sort), limit, page)

    @locked
    def count_flow_runs(
        self,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
        work_pool_filter: Any = None,
        work_queue_filter: Any = None,
    ) -> int:
        """Number of flow runs matching every given filter. O(1) without filters,
        O(keys) or O(log n) for one index-covered criterion, else O(c); + cross-entity
        filters (see README, Operations and their cost)."""
        return _queries.count_flow_runs(
            self, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
            work_pool_filter, work_queue_filter,
        )

    @locked
    def read_task_runs(
        self,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
        offset: int | None = None,
        limit: int | None = None,
        sort: Any = "ID_DESC",
    ) -> list[TaskRun]:
        """Task runs matching every given filter, sorted, offset and limited. Costs
        as read_flow_runs: with a limit, O(k) for k = offset + limit when matches are
        dense, at most O(c + m log m); without one, O(c log c) or O(n) (see README)."""
        return _queries.read_task_runs(
            self, flow_filter, flow_run_filter, task_run_filter, deployment_filter, offset, limit, sort
        )

    @locked
    def count_task_runs(
        self,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
    ) -> int:
        """Number of task runs matching every given filter. As count_flow_runs: O(1)
        without filters, O(keys) or O(log n) for one index-covered criterion, else
        O(c); + cross-entity filters (see README, Operations and their cost)."""
        return _queries.count_task_runs(self, flow_filter, flow_run_filter, task_run_filter, deployment_filter)

    @locked
    def count_task_runs_by_state(
        self,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
    ) -> "CountByState":
        """Matching task runs counted per state type. O((state type, name) pairs)
        without filters (× g for a filter of g state types alone), else O(c), e.g. the
        task runs of the given flow runs; + cross-entity filters."""
        return _queries.count_task_runs_by_state(self, flow_filter, flow_run_filter, task_run_filter, deployment_filter)

    # run history (engine/history.py) ------------------------------------------------------------------------------
    @locked
    def flow_run_history(
        self,
        history_start: Any,
        history_end: Any,
        history_interval: Any,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
        work_pool_filter: Any = None,
        work_queue_filter: Any = None,
    ) -> list:
        """Matching flow runs bucketed by expected start time into intervals of
        `history_interval` (a timedelta or seconds, at least 1 s) from `history_start`
        to `history_end`, each interval's runs counted per state (POST /flow_runs/history).
        O(log n + r) for the r runs whose expected start time lies in the intervals, or
        O(c) when the smallest candidate set is smaller; + cross-entity filters +
        O(N + s log s) for N intervals and s (interval, state) groups."""
        return _history.run_history(
            self, "flow_run", history_start, history_end, history_interval, flow_filter, flow_run_filter,
            task_run_filter, deployment_filter, work_pool_filter, work_queue_filter,
        )

    @locked
    def task_run_history(
        self,
        history_start: Any,
        history_end: Any,
        history_interval: Any,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
    ) -> list:
        """As flow_run_history, for task runs (POST /task_runs/history). O(log n + r) or
        O(c), + cross-entity filters + O(N + s log s), as there."""
        return _history.run_history(
            self, "task_run", history_start, history_end, history_interval, flow_filter, flow_run_filter,
            task_run_filter, deployment_filter, None, None,
        )

    @locked
    def average_flow_run_lateness(
        self,
        flow_filter: Any = None,
        flow_run_filter: Any = None,
        task_run_filter: Any = None,
        deployment_filter: Any = None,
        work_pool_filter: Any = None,
        work_queue_filter: Any = None,
    ) -> float | None:
        """Mean lateness in seconds of the matching flow runs, or None if none match
        (POST /flow_runs/lateness). O(c), O(n) without filters; + cross-entity filters."""
        return _history.average_flow_run_lateness(
            self, flow_filter, flow_run_filter, task_run_filter, deployment_filter,
            work_pool_filter, work_queue_filter,
        )

    # graphs (engine/graph.py) -------------------------------------------------------------------------------------
    @locked
    def read_task_run_dependencies(self, flow_run_id: Any) -> list:
        """Each task run of the flow run with its upstream task runs. O(t log t + inputs)
        for its t task runs and their task inputs."""
        return _graph.read_task_run_dependencies(self, as_uuid(flow_run_id, "flow_run_id"))

    @locked
    def read_flow_run_graph(self, flow_run_id: Any, since: _dt.datetime | None = None) -> Any:
        """The flow run graph (nodes, edges, artifacts, states) as Prefect's graph v2.
        O(t log t + inputs + a log a + h log h) for its t task runs, their inputs, its
        a artifacts and h states."""
        return _graph.read_flow_run_graph(self, as_uuid(flow_run_id, "flow_run_id"), since)

    # orchestration (engine/orchestration/) ----------------------------------------------------------------------
    @atomic
    def set_flow_run_state(
        self,
        flow_run_id: Any,
        state: State | Mapping,
        force: bool = False,
        flow_policy: Any = None,
        orchestration_parameters: dict | None = None,
    ) -> Any:
        """Propose `state` for a flow run and orchestrate it; returns an OrchestrationResult.

        No policy (or `force`) means MinimalFlowPolicy; GlobalFlowPolicy always runs.
        Raises ObjectNotFoundError for an unknown run.

        O(applicable rules + global transforms) + O(changed indexed fields · log n) to
        refile the run (none when nothing indexed changes); the new state's time is
        checked against the run's h earlier ones, O(h) for h < 16, else O(1) unless it
        is no later than the latest. A legacy client's (< 0.8.3) retry also resets the
        run's FAILED task runs, O(t) for its t task runs. See README, Operations and
        their cost.
        """
        return _orchestration.set_flow_run_state(
            self, as_uuid(flow_run_id, "flow_run_id"), as_state(state), force, flow_policy, orchestration_parameters
        )

    @atomic
    def resume_flow_run(
        self,
        flow_run_id: Any,
        run_input: Mapping[str, Any] | None = None,
        flow_policy: Any = None,
        orchestration_parameters: dict | None = None,
    ) -> Any:
        """Prefect's resume_flow_run route; returns an OrchestrationResult. A PAUSED run
        is proposed RUNNING, a suspended one (`pause_reschedule`) SCHEDULED "Resuming"
        for now, under `flow_policy` (default CoreFlowPolicy, as the route); any other
        run is answered ABORT "Cannot resume a flow run that is not paused.". A pause
        waiting for input (`run_input_keyset`) needs `run_input` valid under the
        schema input the run stored, or is answered REJECT with the reason; an
        accepted resume stores the input under the keyset's "response" key. Raises
        ObjectNotFoundError for an unknown run. O(rules + input size)."""
        return _orchestration.resume_flow_run(
            self, as_uuid(flow_run_id, "flow_run_id"), run_input, flow_policy, orchestration_parameters
        )

    # flow-run inputs (engine/inputs.py) -----------------------------------------------------------------------
    @atomic
    def create_flow_run_input(self, flow_run_id: Any, key: str, value: str | bytes,
                              sender: str | None = None) -> FlowRunInput:
        """Store text `value` under `key` (lowercase letters, digits, dashes) for the
        flow run. ObjectNotFoundError for an unknown run, UniquenessError for a key
        the run already has. O(1)."""
        return _inputs.create_flow_run_input(self, flow_run_id, key, value, sender)

    @locked
    def read_flow_run_input(self, flow_run_id: Any, key: str) -> FlowRunInput | None:
        """The flow run's input under `key`, or None. O(1)."""
        return _inputs.read_flow_run_input(self, flow_run_id, key)

    @locked
    def filter_flow_run_input(self, flow_run_id: Any, prefix: str, limit: int | None = 1,
                              exclude_keys: Iterable[str] = ()) -> list[FlowRunInput]:
        """The flow run's inputs whose key starts with `prefix` (SQLite LIKE: case-
        insensitive, `%` and `_` are wildcards), less `exclude_keys`, oldest first,
        at most `limit` (Prefect's default 1; None: all). O(k log k), k the run's inputs."""
        return _inputs.filter_flow_run_input(self, flow_run_id, prefix, limit, exclude_keys)

    @atomic
    def delete_flow_run_input(self, flow_run_id: Any, key: str) -> bool:
        """Delete the flow run's input under `key`; True iff there was one. O(1)."""
        return _inputs.delete_flow_run_input(self, flow_run_id, key)

    @atomic
    def set_task_run_state(
        self,
        task_run_id: Any,
        state: State | Mapping,
        force: bool = False,
        task_policy: Any = None,
        orchestration_parameters: dict | None = None,
    ) -> Any:
        """Propose `state` for a task run; deferred states use BackgroundTaskPolicy.

        As set_flow_run_state: O(applicable rules + global transforms) + O(changed
        indexed fields · log n), + O(1) per limited tag (taking or giving back a slot
        copies the list, O(S) for S slots held) and an O(1) cache lookup, usually;
        see README, Operations and their cost.
        """
        return _orchestration.set_task_run_state(
            self, as_uuid(task_run_id, "task_run_id"), as_state(state), force, task_policy, orchestration_parameters
        )


from . import graph as _graph  # noqa: E402  (these modules import Engine's helpers)
from . import inputs as _inputs  # noqa: E402
from . import history as _history  # noqa: E402
from . import orchestration as _orchestration  # noqa: E402
from .orchestration import instrumentation as _instrumentation  # noqa: E402
from . import listings as _listings  # noqa: E402
from . import queries as _queries  # noqa: E402
from .states import CountByState  # noqa: E402,F401
