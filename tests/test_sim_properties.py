"""Random small workloads: whatever the draws, the simulator's bookkeeping matches the
engine and no concurrency limit is ever exceeded."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings, strategies as st

from engine import TERMINAL_STATES, StateType
from engine.sim import Simulation, parse_workload
from sim_support import TERMINATED

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
    uptime=st.sampled_from([None, "2m", "10m"]),
    outage=st.booleans(),
    down_runs=st.sampled_from(["continue", "crash", "lost"]),
)
def test_random_workloads_keep_their_invariants(seed, tag_limit, pool_limit, fail, crash, cancel, fanout,
                                                uptime, outage, down_runs):
    data = {
        "simulation": {"seed": seed, "until": "40m"},
        "tag_limits": [{"tag": "t", "limit": tag_limit}],
        "work_pools": [{"name": "p", "concurrency_limit": pool_limit}],
        "workers": [{"pool": "p", "count": 2, "poll_interval": "6s",
                     **({"failures": {"mean_uptime": uptime, "repair": {"dist": "exponential", "mean": "1m"},
                                      "runs": down_runs}}
                        if uptime else {}),
                     **({"outages": [{"at": "12m", "duration": "5m", "runs": down_runs}]} if outage else {})}],
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
    # Workers: each one's down stretches follow one another inside the run, and no
    # run is taken (PENDING) while every worker is down.
    windows = result.metrics.down_windows
    by_worker: dict[str, list] = {}
    for name, start, end in windows:
        by_worker.setdefault(name, []).append((start, end))
    for spans in by_worker.values():
        assert all(0 <= a < b <= result.end_seconds for a, b in spans)
        assert all(x[1] <= y[0] for x, y in zip(spans, spans[1:]))
    if outage:
        assert set(by_worker) == {"p-worker-0-0", "p-worker-0-1"}
    elif not uptime:
        assert not windows
    start = result.start
    for fr in flow_runs:
        for state in engine.read_flow_run_states(fr.id):
            if state.type is StateType.PENDING:
                t = (state.timestamp - start).total_seconds()
                # (state timestamps are whole µs: a pickup as a worker comes back may read
                # a hair before the float its window ends at)
                assert any(not any(a + 0.001 < t < b - 0.001 for a, b in by_worker.get(name, []))
                           for name in ("p-worker-0-0", "p-worker-0-1"))
    # Runs taken down with a worker: a crashed one ends CRASHED by the termination
    # signal's message, its last state; a lost one is no longer driven, is never
    # final, and writes no state after the last time some worker went down (which
    # worker took it the store does not say: tests/test_sim_workers.py pins the
    # exact moment in set scenarios). A requeued one runs again.
    counters = result.metrics.counters
    if down_runs != "crash" or not (uptime or outage):
        assert counters["worker_runs_crashed"] == 0
    if down_runs == "continue" or not (uptime or outage):
        assert counters["worker_runs_lost"] == counters["worker_runs_requeued"] == 0
    if down_runs == "crash":   # (only runs still starting are lost: no flow engine to catch the signal)
        assert counters["worker_runs_requeued"] == 0
        assert all(run.rec.state_type is StateType.PENDING for run in result.runs if run.dead) \
            or counters["flow_aborts"]
    terminated = [run for run in result.runs
                  if any(s.message == TERMINATED
                         for s in engine.read_flow_run_states(run.rec.id))]
    assert all(run.rec.state_type is StateType.CRASHED for run in terminated)
    assert len(terminated) == counters["worker_runs_crashed"]
    lost = [run for run in result.runs if run.dead]
    assert len(lost) == counters["worker_runs_lost"] + counters["flow_aborts"]
    downs = sorted(start for _, start, _ in windows)
    for run in lost:
        assert run.rec.state_type not in TERMINAL_STATES
        if not counters["flow_aborts"]:   # (an aborted proposal also leaves a run undriven, at any time)
            last = (engine.read_flow_run_states(run.rec.id)[-1].timestamp - start).total_seconds()
            assert any(last <= t + 0.001 for t in downs)
