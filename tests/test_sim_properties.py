"""Random small workloads: whatever the draws, the simulator's bookkeeping matches the
engine and no concurrency limit is ever exceeded."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings, strategies as st

from engine import StateType
from engine.sim import Simulation, parse_workload

# What Prefect's worker query counts against pool and queue limits (not CANCELLING).
OCCUPYING = {StateType.PENDING, StateType.RUNNING}
END = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def _spans(states, types):
    return [(s.timestamp, states[k + 1].timestamp if k + 1 < len(states) else END)
            for k, s in enumerate(states) if s.type in types]


def _max_overlap(spans):
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = cur = 0
    for _, step in events:
        cur += step
        best = max(best, cur)
    return best


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    tag_limit=st.integers(1, 3),
    pool_limit=st.integers(1, 4),
    fail=st.sampled_from([0.0, 0.2, 0.6]),
    crash=st.sampled_from([0.0, 0.2]),
    cancel=st.sampled_from([0.0, 0.3]),
    fanout=st.integers(1, 5),
)
def test_random_workloads_keep_their_invariants(seed, tag_limit, pool_limit, fail, crash, cancel, fanout):
    data = {
        "simulation": {"seed": seed, "until": "40m"},
        "tag_limits": [{"tag": "t", "limit": tag_limit}],
        "work_pools": [{"name": "p", "concurrency_limit": pool_limit}],
        "workers": [{"pool": "p", "count": 2, "poll_interval": "6s"}],
        "flows": [{
            "name": "f", "crash_probability": crash,
            "cancel": {"probability": cancel, "after": {"dist": "exponential", "mean": "40s"}},
            "tasks": [
                {"name": "a", "count": fanout, "tags": ["t"], "failure_probability": fail, "retries": 1,
                 "retry_delay": "3s", "duration": {"dist": "exponential", "mean": "8s"}},
                {"name": "b", "depends_on": ["a"], "cache": {"key": "b-{choice}", "choices": 3}},
            ],
        }],
        "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"poisson": "45s"},
                         "concurrency_limit": 2}],
    }
    result = Simulation(parse_workload(data)).run()
    engine = result.engine
    flow_runs = engine.read_flow_runs()
    task_runs = engine.read_task_runs()
    for rows, counts in ((flow_runs, result.metrics.flow_counts), (task_runs, result.metrics.task_counts)):
        scanned = {t: 0 for t in StateType}
        for rec in rows:
            scanned[rec.state_type] += 1
        assert {t: counts[t] for t in StateType} == scanned
    tagged = [s for tr in task_runs if "t" in tr.tags
              for s in _spans(engine.read_task_run_states(tr.id), {StateType.RUNNING})]
    assert _max_overlap(tagged) <= tag_limit
    occupying = [s for fr in flow_runs for s in _spans(engine.read_flow_run_states(fr.id), OCCUPYING)]
    assert _max_overlap(occupying) <= pool_limit
    assert sum(tr.state_name == "Cached" for tr in task_runs) == result.metrics.counters["cache_hits"]
