"""What the simulator's tests share: running a workload, and reading when things
happened from the engine's state histories."""
from __future__ import annotations

import copy
import datetime as dt

from engine import StateType
from engine.sim import Simulation, parse_workload

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

# One deployment, a 25-minute run every 10 minutes on a pool of two, whose worker
# is down from 30 to 40 minutes (taking its runs along as each test says).
DYING = {
    "simulation": {"seed": 5, "until": "3h", "start": START.isoformat()},
    "work_pools": [{"name": "p", "concurrency_limit": 2}],
    "workers": [{"pool": "p", "poll_interval": "10s", "outages": [{"at": "30m", "duration": "10m"}]}],
    "flows": [{"name": "f", "tasks": [{"name": "t", "duration": "25m"}]}],
    "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "10m"}}],
}
# The message of a run crashed by a termination signal (Prefect's flow engine).
TERMINATED = "Execution was aborted by a termination signal."


def simulate(data: dict, *settings: str, **overrides):
    """Run the workload `data` (a copy), with ``PATH=VALUE`` `settings` and the CLI's
    overrides (seed, until, runs); the result and its engine."""
    wl = parse_workload(copy.deepcopy(data), settings=settings)
    if overrides:
        wl = wl.with_overrides(**overrides)
    result = Simulation(wl).run()
    return result, result.engine


def seconds(when: dt.datetime) -> float:
    # (The simulation's clock ticks 1 µs per reading: whole milliseconds say when.)
    return round((when - START).total_seconds(), 3)


def flow_states(engine):
    for rec in engine.read_flow_runs():
        yield from ((rec, state) for state in engine.read_flow_run_states(rec.id))


def pickups(engine) -> list[float]:
    """When the worker took runs (their PENDING states), in seconds from the start."""
    return sorted(seconds(s.timestamp) for _, s in flow_states(engine) if s.type is StateType.PENDING)


def in_flight_at(engine, t: float) -> list:
    """Flow runs PENDING or RUNNING at `t` seconds (by their state histories)."""
    found = []
    for rec in engine.read_flow_runs():
        states = engine.read_flow_run_states(rec.id)
        before = [s for s in states if seconds(s.timestamp) < t]
        if before and before[-1].type in (StateType.PENDING, StateType.RUNNING):
            found.append(rec)
    return found
