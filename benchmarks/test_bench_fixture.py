"""Cost of the pytest plugin's engine fixture (setup + teardown).

Measure:  RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks/test_bench_fixture.py --benchmark-only -s

Two figures: the raw cost of what the fixture builds (a ManualClock and an empty
Engine), timed by pytest-benchmark, and the cost as a test sees it, through pytest's
fixture machinery: an inner pytest session runs N tests that take `runstate_engine`
N that take two trivial fixtures of the same shape, and N that take nothing; the
differences of their median setup + teardown durations (pytest's own reports)
give the fixture's cost and the part of it that is runstate's own work.
"""
from __future__ import annotations

import statistics

from benchmarks.conftest import FULL
from engine.testing.plugin import new_clock, new_engine

pytest_plugins = ["pytester"]


def test_bench_engine_fixture_objects(benchmark):
    engine = benchmark(lambda: new_engine(new_clock()))
    assert engine.read_flows() == []


INNER = '''
import pytest

@pytest.fixture
def plain_clock():
    return object()

@pytest.fixture
def plain_engine(request, plain_clock):
    return object()

@pytest.mark.parametrize("i", range({n}))
def test_with_engine(runstate_engine, i):
    pass

@pytest.mark.parametrize("i", range({n}))
def test_with_plain(plain_engine, i):
    pass

@pytest.mark.parametrize("i", range({n}))
def test_without(i):
    pass
'''


def test_bench_fixture_through_pytest(pytester, benchmark):
    n = 2_000 if FULL else 200
    pytester.makepyfile(INNER.format(n=n))
    per_test: dict = {}

    class Collect:
        def pytest_runtest_logreport(self, report):
            if report.when in ("setup", "teardown"):
                per_test[report.nodeid] = per_test.get(report.nodeid, 0.0) + report.duration

    def inner():
        per_test.clear()
        result = pytester.inline_run("-p", "no:cacheprovider", "-q", plugins=[Collect()])
        result.assertoutcome(passed=3 * n)

    benchmark.pedantic(inner, rounds=1, iterations=1)

    def median_us(group: str) -> float:
        return statistics.median(v for k, v in per_test.items() if f"::{group}[" in k) * 1e6

    with_engine, plain, without = median_us("test_with_engine"), median_us("test_with_plain"), median_us("test_without")
    figures = {"tests_per_group": n, "setup_teardown_with_engine_us": round(with_engine, 1),
               "setup_teardown_with_two_trivial_fixtures_us": round(plain, 1),
               "setup_teardown_without_fixtures_us": round(without, 1),
               "fixture_cost_us": round(with_engine - without, 1),
               "runstate_part_us": round(with_engine - plain, 1)}
    benchmark.extra_info.update(figures)
    print(f"\nrunstate_engine fixture (median setup+teardown per test, {n} tests per group): "
          f"{with_engine:.0f} µs; two trivial fixtures of the same shape {plain:.0f} µs; no fixture {without:.0f} µs "
          f"=> fixture cost {with_engine - without:.0f} µs, of which runstate's own {with_engine - plain:.0f} µs")
    if FULL:
        assert with_engine - without < 1000, "the fixture must cost well under a millisecond"
