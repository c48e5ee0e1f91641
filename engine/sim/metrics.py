"""What a simulation measures while it runs (simulated quantities only).

Counters are plain ints bumped by the client and services; state counts per type are
kept incrementally from each transition and sampled on a fixed virtual-time grid.
"""
from __future__ import annotations

from typing import Any

from ..states import StateType

__all__ = ["Metrics", "STATE_ORDER", "peak_entries"]

STATE_ORDER = (
    StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING,
    StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED,
)


class Metrics:
    """Mutable counters of one simulation; `snapshot()` is JSON-ready."""

    def __init__(self) -> None:
        self.flow_counts: dict[Any, int] = {t: 0 for t in STATE_ORDER}
        self.flow_counts[None] = 0
        self.task_counts: dict[Any, int] = {t: 0 for t in STATE_ORDER}
        self.task_counts[None] = 0
        self.samples: list[list[Any]] = []      # [t, flow counts..., task counts...]
        self.completed_at: list[float] = []     # virtual time of each top-level final state
        # ("crashes": those a flow's crash_probability injected and the engine took,
        # the report's injected_crashes; runs crash for other reasons too.)
        self.counters: dict[str, int] = {k: 0 for k in (
            "flow_runs_created", "flow_runs_finished", "flow_runs_deleted", "flow_runs_rescheduled", "subflow_runs_created",
            "subflow_runs_loaded",
            "task_runs_created", "task_attempts", "task_retries", "flow_retries", "cache_hits",
            "tag_slot_waits", "tag_slots_given_back", "deployment_slot_waits", "deployment_cancel_new",
            "pool_limit_deferrals", "worker_limit_deferrals", "late_marked", "scheduled_time_waits",
            "pauses", "resumes", "pause_timeouts", "crashes", "cancellations_requested",
            "cancellations", "task_aborts", "flow_aborts", "task_not_ready",
            "worker_outages", "worker_failures", "worker_runs_crashed", "worker_runs_lost",
            "worker_runs_requeued", "workers_marked_offline", "pools_marked_not_ready",
            "deployments_marked_not_ready", "queues_marked_not_ready",
        )}
        self.tag_wait_seconds = 0.0
        self.queue_waits: list[float] = []      # worker pickup − scheduled time (≥ 0)
        self.by_deployment: dict[str, dict[str, int]] = {}
        # (worker name, went down, came back or the end): one per stretch a worker was
        # down, whether for outages, failures or both at once.
        self.down_windows: list[tuple[str, float, float]] = []
        self.workers_down_samples: list[int] = []  # at each sample's time
        # per work pool, queue, deployment and limited tag: its limit and the most
        # runs it held at once (Simulation._peaks, filled when the run ends)
        self.peaks: dict[str, Any] = {}

    def worker_down(self, name: str, start: float, end: float) -> None:
        self.down_windows.append((name, start, end))

    def sample(self, t: float, workers_down: int) -> None:
        fc, tc = self.flow_counts, self.task_counts
        self.samples.append([round(t, 3), *[fc[s] for s in STATE_ORDER], *[tc[s] for s in STATE_ORDER]])
        self.workers_down_samples.append(workers_down)

    def deployment(self, name: str) -> dict[str, int]:
        row = self.by_deployment.get(name)
        if row is None:
            row = self.by_deployment[name] = {"created": 0, "COMPLETED": 0, "FAILED": 0, "CRASHED": 0, "CANCELLED": 0}
        return row


def peak_entries(peaks: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, name, {"limit", "peak"}) for each entry of a report's `concurrency.peak`
    (Metrics.peaks), in the order the summary shows them: kind "pool", "queue" (named
    "pool/queue"), "deployment" or "tag". O(entries)."""
    out = [("pool", name, row) for name, row in peaks.get("work_pools", {}).items()]
    out += [("queue", f"{pool}/{name}", row) for pool, queues in peaks.get("work_queues", {}).items()
            for name, row in queues.items()]
    out += [("deployment", name, row) for name, row in peaks.get("deployments", {}).items()]
    out += [("tag", name, row) for name, row in peaks.get("tags", {}).items()]
    return out
