"""Simulation speed: flow runs (10 task runs each) simulated per wall-clock second on
the built-in default workload, stopping after 10,000 flow runs (scaled).

Target (issue 5): >= 2,000 flow runs/s. Measure with
    RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_sim.py --benchmark-only
The figure is printed and stored in the benchmark's extra_info ("flow_runs_per_s").
"""
import gc
import time

import pytest

from benchmarks.conftest import scaled
from engine.sim import Simulation, default_workload


@pytest.mark.parametrize("rule_stats", [False, True], ids=["plain", "rule-stats"])
def test_default_workload_flow_runs_per_second(benchmark, rule_stats):
    runs = scaled(10_000)
    workload = default_workload().with_overrides(runs=runs)
    results = []
    gc.collect()  # start clean: an earlier test's engine must not slow this one's GC

    def simulate():
        t = time.perf_counter()
        result = Simulation(workload, rule_stats=rule_stats).run()
        results.append((result, time.perf_counter() - t))

    benchmark.pedantic(simulate, rounds=1, iterations=1)
    result, wall = results[-1]
    counters = result.metrics.counters
    assert counters["flow_runs_finished"] == runs
    # The default workload's flows have 10 task runs each (cache hits and skips aside).
    assert counters["task_runs_created"] >= 9 * runs
    rate = runs / wall
    benchmark.extra_info["flow_runs_per_s"] = round(rate, 1)
    benchmark.extra_info["task_runs_per_s"] = round(counters["task_runs_created"] / wall, 1)
    print(f"\n{runs} flow runs in {wall:.2f} s: {rate:,.0f} flow runs/s "
          f"({counters['task_runs_created'] / wall:,.0f} task runs/s, rule stats {'on' if rule_stats else 'off'})")
    results.clear()  # the closure outlives the test (pytest-benchmark keeps it): drop the engine
