"""What a cold index's first build costs at 200,000 flow runs, with the collector
paused for it (the engine's way for tables of BULK_BUILD_ROWS rows or more) and
without (every build left to run with the collector on).

    python -m benchmarks.cold_builds [RUNS]

A diagnostic, not a test: each round builds a fresh engine of RUNS flow runs
(default 200,000; half COMPLETED, half RUNNING), then times the first read of a
name order (the global sorted index), the first state-filtered read of it (the
per-state-type lists) and 20,000 creates after them. Best of two rounds each.
"""
from __future__ import annotations

import datetime as dt
import sys
import time

import engine.store as store_module
from engine import Completed, Engine, ManualClock, Running

T = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)


def one_round(runs: int, paused: bool) -> tuple[float, float, float]:
    saved = store_module.BULK_BUILD_ROWS
    store_module.BULK_BUILD_ROWS = saved if paused else 10**18
    try:
        engine = Engine(ManualClock(T, tick=dt.timedelta(microseconds=1)))
        flow = engine.create_flow("cold-builds")
        for i in range(runs):
            engine.create_flow_run(flow_id=flow.id, state=Running() if i % 2 else Completed())
        running = {"state": {"type": {"any_": ["RUNNING"]}}, "name": {"like_": "no such name"}}
        start = time.perf_counter()
        engine.read_flow_runs(sort="NAME_ASC", limit=10)
        global_order = time.perf_counter() - start
        start = time.perf_counter()
        engine.read_flow_runs(flow_run_filter=running, sort="NAME_ASC", limit=10)
        per_state = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(20_000):
            engine.create_flow_run(flow_id=flow.id, state=Completed())
        after = time.perf_counter() - start
        return global_order, per_state, after
    finally:
        store_module.BULK_BUILD_ROWS = saved


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"seconds at {runs:,} flow runs, best of 2 rounds")
    print(f"{'collector':<22}{'name order':>12}{'per-state lists':>17}{'20,000 creates after':>22}")
    for paused in (True, False):
        best = [min(x) for x in zip(*(one_round(runs, paused) for _ in range(2)))]
        label = "paused for the build" if paused else "on throughout"
        print(f"{label:<22}{best[0]:>12.2f}{best[1]:>17.2f}{best[2]:>22.2f}")


if __name__ == "__main__":
    main()
