"""Benchmark sizing: full sizes on demand, small ones when run as plain tests in CI.

Measure for real with:  RUNSTATE_BENCH_FULL=1 python -m pytest benchmarks -p no:randomly
"""
import contextlib
import gc
import os
from typing import Iterator

import pytest

from engine.states import State, StateType

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


# Finished runs' state types, mostly COMPLETED (the query benchmarks' datasets).
PAST = [StateType.COMPLETED] * 8 + [StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]


def load_with_state(store, run, kind, row_cls, key, state_type, when) -> None:
    """Load `run` into the store with a proper current state (State object, state row,
    denormalised columns), as a forced first state would leave it."""
    state = State(type=state_type, timestamp=when)
    row = row_cls(type=state.type, timestamp=when, name=state.name, state_details=state.state_details,
                  id=state.id, **{key: run.id})
    run.state, run.state_id, run.state_type, run.state_name, run.state_timestamp = (
        state, state.id, state.type, state.name, when)
    store.load(kind, run)
    store.load(kind + "_state", row)
