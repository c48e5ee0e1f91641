"""Benchmark sizing: full sizes on demand, small ones when run as plain tests in CI.

Measure for real with:  RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks -p no:randomly
"""
import os

import pytest

FULL = os.environ.get("RUNSTATE_BENCH_FULL") == "1"


def scaled(n: int) -> int:
    """`n` at full scale; n/100 (at least 10) otherwise."""
    return n if FULL else max(10, n // 100)


@pytest.fixture(scope="session")
def bench_full() -> bool:
    return FULL
