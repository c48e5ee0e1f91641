"""What the cyclic garbage collector costs per stored run, by record representation.

    python -m benchmarks.gc_records [RUNS]

A diagnostic for issue 2's create target, not a test. It keeps RUNS flow runs with
their first state, three rounds over, in two representations and with the collector
on and off:

* "records": what `Engine.create_flow_run` keeps per run, built directly (no engine,
  no indexes): a slotted attrs FlowRun with its FlowRunPolicy, tags list and
  pause-keys set, the State with its StateDetails, the state row and the run's
  history dict. Eleven objects the collector tracks, as in the engine.
* "tuples": the same values as tuples of atoms (ids as ints, tags and pause keys as
  tuples). The collector stops tracking such a tuple at its first young collection,
  so full collections never walk it.
* "untracked": the records, each of the eleven objects taken off the collector's
  lists as soon as it is kept (CPython's PyObject_GC_UnTrack, through ctypes). Safe
  only because stored records form no reference cycles; shown to price that option
  (the call itself costs a few µs per run), not used by the engine.

"GC on" minus "GC off" is the collector's share of a create for that representation.
"""
from __future__ import annotations

import datetime as dt
import gc
import sys
import time
import uuid
from typing import Any, Callable

import attrs

from benchmarks.conftest import collector
from engine.records import FlowRun, FlowRunPolicy, FlowRunStateRow
from engine.states import State, StateDetails, StateType

T = dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc)
_RUN_WIDTH = len(attrs.fields(FlowRun))
_DETAILS_WIDTH = len(attrs.fields(StateDetails))


def keep_records(n: int, store: dict, flow_id: uuid.UUID, untrack: Callable[[Any], None] | None = None) -> None:
    """Keep `n` runs as the engine does; with `untrack`, each of a run's eleven
    objects is handed to it once kept."""
    for i in range(n):
        state_id = uuid.uuid4()
        details = StateDetails(flow_run_id=None, scheduled_time=T)
        state = State(type=StateType.SCHEDULED, name="Scheduled", timestamp=T, id=state_id,
                      state_details=details)
        policy = FlowRunPolicy(pause_keys=set())
        run = FlowRun(flow_id=flow_id, id=uuid.uuid4(), name=f"run-{i}", tags=[],
                      empirical_policy=policy)
        run.state = state
        row = FlowRunStateRow(id=state_id, type=state.type, timestamp=T, name=state.name,
                              state_details=details, flow_run_id=run.id)
        history: dict = {state_id: row}
        kept: list = []
        store[run.id] = (run, history, kept)
        if untrack is not None:
            for obj in (run, policy, run.tags, policy.pause_keys, state, details, run.id,
                        state_id, row, history, kept):
                untrack(obj)


def keep_untracked(n: int, store: dict, flow_id: uuid.UUID) -> None:
    keep_records(n, store, flow_id, _untrack())


def _untrack():
    """CPython's PyObject_GC_UnTrack as a Python callable."""
    import ctypes

    untrack = ctypes.pythonapi.PyObject_GC_UnTrack
    untrack.argtypes = [ctypes.py_object]
    untrack.restype = None
    return untrack


def keep_tuples(n: int, store: dict, flow_id: uuid.UUID) -> None:
    flow = flow_id.int
    details_pad = (None,) * (_DETAILS_WIDTH - 2)
    run_pad = (None,) * (_RUN_WIDTH - 6)
    for i in range(n):
        run_id, state_id = uuid.uuid4().int, uuid.uuid4().int
        details = (None, T) + details_pad
        state = (state_id, "SCHEDULED", "Scheduled", T, None, details, None)
        policy = (0, 0.0, None, None, (), False)
        store[run_id] = ((run_id, flow, f"run-{i}", (), policy, state) + run_pad, state, ())


def per_create(keep, runs: int, collect: bool) -> float:
    """Best µs per kept run over three rounds of `runs`."""
    store: dict = {}
    flow_id = uuid.uuid4()
    best = float("inf")
    gc.collect()
    for _ in range(3):
        with collector(collect):
            start = time.perf_counter()
            keep(runs, store, flow_id)
            best = min(best, (time.perf_counter() - start) / runs * 1e6)
    return best


def main(argv: list[str]) -> None:
    runs = int(argv[0]) if argv else 100_000
    print(f"µs per kept run, best of 3 rounds of {runs:,}")
    shapes = [("records", keep_records), ("tuples", keep_tuples)]
    if sys.implementation.name == "cpython":
        shapes.append(("untracked", keep_untracked))
    for name, keep in shapes:
        on, off = per_create(keep, runs, True), per_create(keep, runs, False)
        print(f"  {name:9} GC on {on:6.2f}   GC off {off:6.2f}   collector {on - off:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
