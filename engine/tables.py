"""Which tables the engine keeps and which indexes each one maintains.

Every index here is updated incrementally by the store on insert, delete and
`reindex`; queries (engine/queries.py) pick among them.
"""
from __future__ import annotations

from .sorting import GroupedSortedIndex
from .store import Store

__all__ = ["KINDS", "build_store"]

KINDS = (
    "flow",
    "deployment",
    "work_pool",
    "work_queue",
    "concurrency_limit",
    "concurrency_limit_v2",
    "flow_run",
    "task_run",
    "flow_run_state",
    "task_run_state",
    "task_run_state_cache",
    "artifact",
    "artifact_collection",
)


def _coalesced_start(run):
    return run.start_time if run.start_time is not None else run.expected_start_time


def _state_type(run):
    return run.state_type


def _sorted_with_state_groups(table, keys: dict) -> None:
    """For each sort key: a global sorted index and a per-state-type one.

    State types correlate with the sort keys (old runs finished, future ones
    scheduled), so a state-filtered read walking the global order could pass most
    of the table before its first match; the per-state lists, merged, cannot. Both
    start cold: writers pay only for orders that some read has used.
    """
    for name, key in keys.items():
        table.sorted_index(name, key)
        table._register(GroupedSortedIndex("state_type+" + name, _state_type, key, table))


def build_store() -> Store:
    store = Store(KINDS)
    t = store.tables

    t["flow"].hash_index("name", lambda r: r.name)
    t["deployment"].hash_index("flow_id", lambda r: r.flow_id)
    t["deployment"].hash_index("flow_name", lambda r: (r.flow_id, r.name))
    t["work_pool"].hash_index("name", lambda r: r.name)
    t["work_queue"].hash_index("work_pool_id", lambda r: r.work_pool_id)
    t["concurrency_limit"].hash_index("tag", lambda r: r.tag)
    t["concurrency_limit_v2"].hash_index("name", lambda r: r.name)

    fr = t["flow_run"]
    fr.hash_index("state_type", lambda r: r.state_type)
    fr.hash_index("state_name", lambda r: r.state_name)
    fr.hash_index("flow_id", lambda r: r.flow_id)
    fr.hash_index("deployment_id", lambda r: r.deployment_id)
    fr.hash_index("work_queue_id", lambda r: r.work_queue_id)
    fr.hash_index("work_queue_name", lambda r: r.work_queue_name)
    fr.hash_index("parent_task_run_id", lambda r: r.parent_task_run_id)
    fr.hash_index("idempotency", lambda r: (r.flow_id, r.idempotency_key))
    fr.multi_index("tags", lambda r: frozenset(r.tags))
    _sorted_with_state_groups(fr, {
        "id": lambda r: r.id.int,
        "start_time": _coalesced_start,
        "expected_start_time": lambda r: r.expected_start_time,
        "name": lambda r: r.name,
        "next_scheduled_start_time": lambda r: r.next_scheduled_start_time,
        "end_time": lambda r: r.end_time,
    })

    tr = t["task_run"]
    tr.hash_index("state_type", lambda r: r.state_type)
    tr.hash_index("state_name", lambda r: r.state_name)
    tr.hash_index("flow_run_id", lambda r: r.flow_run_id)
    tr.hash_index("flow_run_state_type", lambda r: (r.flow_run_id, r.state_type))
    tr.hash_index("upsert_key", lambda r: (r.flow_run_id, r.task_key, r.dynamic_key))
    tr.hash_index("task_key", lambda r: r.task_key)
    tr.multi_index("tags", lambda r: frozenset(r.tags))
    _sorted_with_state_groups(tr, {
        "id": lambda r: r.id.int,
        "expected_start_time": lambda r: r.expected_start_time,
        "name": lambda r: r.name,
        "next_scheduled_start_time": lambda r: r.next_scheduled_start_time,
        "end_time": lambda r: r.end_time,
    })

    t["flow_run_state"].hash_index("run_id", lambda r: r.flow_run_id)
    t["task_run_state"].hash_index("run_id", lambda r: r.task_run_id)
    t["task_run_state_cache"].hash_index("cache_key", lambda r: r.cache_key)
    t["artifact"].hash_index("flow_run_id", lambda r: r.flow_run_id)
    t["artifact_collection"].hash_index("key", lambda r: r.key)
    return store
