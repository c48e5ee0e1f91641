"""Which tables the engine keeps and which indexes each one maintains.

Every index here is updated incrementally by the store on insert, delete and
`reindex`; queries (engine/queries.py) pick among them.
"""
from __future__ import annotations

import functools
import operator

from .sorting import GroupedSortedIndex
from .store import Store

__all__ = ["KINDS", "build_store"]

KINDS = (
    "flow",
    "deployment",
    "deployment_schedule",
    "work_pool",
    "work_queue",
    "worker",
    "concurrency_limit",
    "concurrency_limit_v2",
    "flow_run",
    "task_run",
    "flow_run_state",
    "task_run_state",
    "task_run_state_cache",
    "artifact",
    "artifact_collection",
    "flow_run_input",
)

# Small tables listed whole: deletes may cost O(n) (see build_store).
CATALOG_KINDS = ("flow", "deployment", "deployment_schedule", "work_pool", "work_queue", "worker",
                 "concurrency_limit", "concurrency_limit_v2", "artifact_collection")


# Extractors: an attrgetter names its columns, so the generated filing code
# (engine/refile.py) reads them inline, and a multi-field one returns the same tuple
# a lambda would. One getter per field list for the whole process (not per engine):
# the generated code is cached per layout of these objects.
_attr = functools.lru_cache(maxsize=None)(operator.attrgetter)
_NO_TAGS: frozenset = frozenset()


def _tag_keys(run) -> frozenset:
    # Most runs have no tags: share one empty set instead of a new object per run.
    tags = run.tags
    return frozenset(tags) if tags else _NO_TAGS


def _idempotency(run):
    # Only looked up with a key (create_flow_run): runs without one share the None
    # bucket instead of each holding a (flow_id, None) tuple.
    key = run.idempotency_key
    return None if key is None else (run.flow_id, key)


@functools.lru_cache(maxsize=None)
def _with_state_type(field: str):
    """Key extractor for a "<field>+state_type" index: (run.<field>, run.state_type),
    None (unfiled: the index is sparse) when the field is None. Runs share one key
    object per pair instead of each holding a tuple for the garbage collector to
    walk; that table of keys is only an optimisation, so it is simply emptied if it
    ever grows large (queues or deployments made and deleted). One extractor per
    field for the process, so engines share the code compiled for their layouts
    (engine/refile.py)."""
    shared_keys: dict = {}
    get_field = _attr(field)

    def key(run):
        value = get_field(run)
        if value is None:
            return None
        pair = (value, run.state_type)
        shared = shared_keys.get(pair)
        if shared is None:
            if len(shared_keys) >= 65536:
                shared_keys.clear()
            shared = shared_keys[pair] = pair
        return shared

    return key


def _id_int(run):
    return run.id.int


def _coalesced_start(run):
    return run.start_time if run.start_time is not None else run.expected_start_time


def _sorted_with_state_groups(table, keys: dict) -> None:
    """For each sort key: a global sorted index and a per-state-type one.

    State types correlate with the sort keys (old runs finished, future ones
    scheduled), so a state-filtered read walking the global order could pass most
    of the table before its first match; the per-state lists, merged, cannot. Both
    start cold: writers pay only for orders that some read has used.
    """
    for name, key in keys.items():
        table.sorted_index(name, key)
        table._register(GroupedSortedIndex("state_type+" + name, _attr("state_type"), key, table))


def _state_index(table) -> None:
    """Runs by (state type, state name) in one index, read through views named
    "state_type" and "state_name": a transition changes both columns, and moves
    the run between buckets once instead of twice (a task transition: 16.5 -> 14.2 µs)."""
    state = table.hash_index("state", _attr("state_type", "state_name"), shared_keys=True)
    table.column_views(state, {"state_type": _attr("state_type"), "state_name": _attr("state_name")})


def build_store() -> Store:
    store = Store(KINDS)
    t = store.tables
    # Where creation order decides ties in reads, so a rolled-back delete must
    # restore it (Table.order_shown). Runs and states sort ties by id instead.
    for kind in CATALOG_KINDS:
        t[kind].order_shown = "everywhere"
    t["flow_run_input"].order_shown = "buckets"  # a run's inputs, oldest first

    t["flow"].hash_index("name", _attr("name"))
    t["deployment"].hash_index("flow_id", _attr("flow_id"))
    t["deployment"].hash_index("flow_name", _attr("flow_id", "name"))
    # A queue's deployments: marked ready when it is polled, let go when it is deleted.
    t["deployment"].hash_index("work_queue_id", _attr("work_queue_id"), sparse=True)
    # A global limit's deployment: let go when the limit is deleted.
    t["deployment"].hash_index("concurrency_limit_id", _attr("concurrency_limit_id"), sparse=True)
    # A deployment's schedules: read, replaced and deleted by deployment.
    t["deployment_schedule"].hash_index("deployment_id", _attr("deployment_id"))
    t["work_pool"].hash_index("name", _attr("name"))
    t["work_queue"].hash_index("work_pool_id", _attr("work_pool_id"))
    # A heartbeat upserts on (pool, name); read_workers and a pool's delete take
    # the pool's bucket. Neither key changes after insert: a heartbeat moves nothing.
    t["worker"].hash_index("work_pool_id", _attr("work_pool_id"))
    t["worker"].hash_index("pool_name", _attr("work_pool_id", "name"))
    t["concurrency_limit"].hash_index("tag", _attr("tag"))
    t["concurrency_limit_v2"].hash_index("name", _attr("name"))

    fr = t["flow_run"]
    _state_index(fr)
    fr.hash_index("flow_id", _attr("flow_id"))
    fr.hash_index("deployment_id", _attr("deployment_id"), sparse=True)
    fr.hash_index("work_queue_id", _attr("work_queue_id"), sparse=True)
    fr.hash_index("work_queue_name", _attr("work_queue_name"), sparse=True)
    fr.hash_index("parent_task_run_id", _attr("parent_task_run_id"), sparse=True)
    fr.hash_index("idempotency", _idempotency, sparse=True)
    fr.multi_index("tags", _tag_keys)
    # Runs by (work queue | deployment | flow, state type): a worker poll's busy
    # counts (engine/workers.py), and the counts and reads of a state filter joined
    # with one of those restrictions (engine/queries.py). Cold until such a use.
    for field in ("work_queue_id", "deployment_id", "flow_id"):
        fr.cold_hash_index(field + "+state_type", _with_state_type(field))
    # A start_time filter's range. The START_TIME sort orders by start time or else
    # expected start time, so its index cannot answer the filter (cold until used).
    fr.sorted_index("start_time_range", _attr("start_time"))
    _sorted_with_state_groups(fr, {
        "id": _id_int,
        "start_time": _coalesced_start,
        "expected_start_time": _attr("expected_start_time"),
        "name": _attr("name"),
        "next_scheduled_start_time": _attr("next_scheduled_start_time"),
        "end_time": _attr("end_time"),
    })

    tr = t["task_run"]
    _state_index(tr)
    tr.hash_index("flow_run_id", _attr("flow_run_id"))
    tr.hash_index("upsert_key", _attr("flow_run_id", "task_key", "dynamic_key"))
    tr.hash_index("task_key", _attr("task_key"))
    tr.multi_index("tags", _tag_keys)
    # Not a sort key of task runs, but the UI's task-run chart filters by a window of
    # start times (cold until such a filter is first used).
    tr.sorted_index("start_time", _attr("start_time"))
    _sorted_with_state_groups(tr, {
        "id": _id_int,
        "expected_start_time": _attr("expected_start_time"),
        "name": _attr("name"),
        "next_scheduled_start_time": _attr("next_scheduled_start_time"),
        "end_time": _attr("end_time"),
    })

    # A state row never changes run: its tables keep no per-row index keys.
    store.use_history_table("flow_run_state").hash_index("run_id", _attr("flow_run_id"))
    store.use_history_table("task_run_state").hash_index("run_id", _attr("task_run_id"))
    t["task_run_state_cache"].newest_index("cache_key", _attr("cache_key"), _attr("created"), _attr("cache_expiration"))
    t["artifact"].hash_index("flow_run_id", _attr("flow_run_id"))
    t["artifact_collection"].hash_index("key", _attr("key"))
    # Looked up by (run, key), unique; a run's inputs are filtered and cascade-deleted.
    t["flow_run_input"].hash_index("run_key", _attr("flow_run_id", "key"))
    t["flow_run_input"].hash_index("flow_run_id", _attr("flow_run_id"))
    return store
