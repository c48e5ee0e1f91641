"""Where a transition's time goes: µs per task-run transition (Pending -> Running ->
Completed) under each policy, with the cyclic garbage collector on and off.

    python -m benchmarks.breakdown [RUNS]

A diagnostic, not a test: the difference between policies is the rules' cost, the
difference between GC on and off is what full collections add at this heap size.
Best of three rounds of RUNS task runs (default 30,000) each.
"""
from __future__ import annotations

import datetime as dt
import gc
import sys
import time

from engine import Completed, Engine, ManualClock, Pending, Running
from benchmarks.conftest import collector
from engine.orchestration import CoreTaskPolicy, MinimalTaskPolicy

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)


def per_transition(policy: type, runs: int, collect: bool) -> float:
    """Best µs per transition over three rounds of `runs` task-run lifecycles."""
    engine = Engine(ManualClock(T, tick=dt.timedelta(microseconds=1)))
    flow = engine.create_flow("breakdown")
    flow_run = engine.create_flow_run(flow_id=flow.id, state=Running())
    set_state = engine.set_task_run_state
    best = float("inf")
    for round_ in range(3):
        task_runs = [engine.create_task_run(flow_run_id=flow_run.id, task_key="t", dynamic_key=f"{round_}-{i}",
                                            state=Pending()) for i in range(runs)]
        steps = [[(tr.id, make()) for tr in task_runs] for make in (Running, Completed)]
        gc.collect()
        with collector(collect):
            start = time.perf_counter()
            for step in steps:
                for run_id, state in step:
                    set_state(run_id, state, task_policy=policy)
            best = min(best, (time.perf_counter() - start) / (2 * runs) * 1e6)
    return best


def main(argv: list[str]) -> None:
    runs = int(argv[0]) if argv else 30_000
    print(f"µs per task-run transition, best of 3 rounds of {runs:,} lifecycles")
    for policy in (CoreTaskPolicy, MinimalTaskPolicy):
        on, off = per_transition(policy, runs, True), per_transition(policy, runs, False)
        print(f"  {policy.__name__:18} GC on {on:6.2f}   GC off {off:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
