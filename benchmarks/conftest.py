"""Benchmark sizing: full sizes on demand, small ones when run as plain tests in CI.

Measure for real with:  RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks -p no:randomly
"""
import contextlib
import gc
import os
from typing import Iterator

import pytest

FULL = os.environ.get("RUNSTATE_BENCH_FULL") == "1"


def scaled(n: int) -> int:
    """`n` at full scale; n/100 (at least 10) otherwise."""
    return n if FULL else max(10, n // 100)


@contextlib.contextmanager
def collector(on: bool) -> Iterator[None]:
    """The cyclic garbage collector on, or paused, for the block; restored as found
    (a measured batch with GC off shows how much of it is the collector's)."""
    was_enabled = gc.isenabled()
    if not on:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.fixture(scope="session")
def bench_full() -> bool:
    return FULL
