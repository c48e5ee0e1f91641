#!/usr/bin/env python3
"""Random scenarios for Prefect's foreman service (one pass: Foreman.run_once) and the
marks it reads: heartbeats, queue and deployment polls, pauses, on a manual clock.

usage: python3 tests/oracle/foreman_scenarios.py [--focused] SEED N OUT.jsonl

Standard library only (no Prefect, no engine). Writes one scenario per line, ids
"fm<SEED>-<i>"; with --focused, the hand-written scenarios of FOCUSED come first. Same
seed and N, same bytes. prefect_foreman.py answers the scenarios, and
tests/test_foreman_oracle.py replays the answers against the engine.

A scenario:

* `pools` [{name, type ("process" or "prefect-agent"), is_paused}], each with its own
  "default" queue; `queues` [{pool, name, is_paused}]; `deployments` [{name, queue}],
  where `queue` is a "pool/queue" label or null (a deployment in no queue). All are
  created at T0 = 2024-06-01T12:00Z, in this order, all deployments of one flow "f".
* `steps`, on a manual clock that starts at T0 and that only `advance` moves:
  - {op: advance, ms}: the clock moves `ms` milliseconds (0 included);
  - {op: heartbeat, pool, worker, interval (int or null), mark_pool_ready}: a worker
    heartbeat; with mark_pool_ready, what Prefect's heartbeat API route adds (the pool,
    read before the heartbeat, is set READY if it was NOT_READY). An unknown pool name
    is an unknown pool id (an error either way);
  - {op: poll, pool, queues (names or null)}: what Prefect's worker-poll route does
    after reading the pool's queues (all of them for null): mark_work_queues_ready with
    the queues that were not NOT_READY as polled and the NOT_READY ones as ready, then
    mark_deployments_ready(work_queue_ids=every one of those queues);
  - {op: mark_work_queues_ready, polled, ready}: "pool/queue" labels (an unknown label
    is an unknown id, which changes nothing);
  - {op: mark_work_queues_not_ready, queues}: labels;
  - {op: mark_deployments_ready, deployments, queues}: deployment names / queue
    labels, each list or null;
  - {op: pause_pool | unpause_pool, pool}: update_work_pool(is_paused=...);
  - {op: pause_queue | unpause_queue, queue}: update_work_queue(is_paused=...);
  - {op: delete_worker, pool, worker};
  - {op: foreman, settings}: one Foreman pass; `settings` holds the constructor
    arguments that are not left to their default (inactivity_heartbeat_multiple,
    fallback_heartbeat_interval_seconds, deployment_last_polled_timeout_seconds,
    work_queue_last_polled_timeout_seconds). Every scenario ends with one.

About half of the foreman steps come right after an advance aimed at a deadline of that
pass (a worker's last heartbeat + multiple x its interval or the fallback; a queue's or
deployment's last poll + its timeout), exactly or 1 ms / 1 s to either side, from the
generator's own rough model of the scenario so far.
"""
import sys

from scenario_files import write_scenarios

SETTINGS_DEFAULTS = {
    "inactivity_heartbeat_multiple": 3,
    "fallback_heartbeat_interval_seconds": 30,
    "deployment_last_polled_timeout_seconds": 60,
    "work_queue_last_polled_timeout_seconds": 60,
}
SETTINGS_CHOICES = {
    "inactivity_heartbeat_multiple": [0, 1, 1, 2, 2, 3, 4, 5],
    "fallback_heartbeat_interval_seconds": [0, 1, 5, 10, 15, 20, 30, 45, 60, 120],
    "deployment_last_polled_timeout_seconds": [0, 1, 10, 30, 45, 60, 90, 120, 180],
    "work_queue_last_polled_timeout_seconds": [0, 1, 10, 30, 45, 60, 90, 120, 180],
}
PLAIN_ADVANCES_S = [0, 0, 1, 5, 10, 15, 29, 30, 31, 45, 59, 60, 61, 89, 90, 91, 119, 120, 121, 180, 181]
INTERVALS = [1, 5, 10, 10, 15, 20, 30, 30, 45, 60]


def _advance_ms(rng):
    u = rng.random()
    if u < 0.7:
        return rng.choice(PLAIN_ADVANCES_S) * 1000
    if u < 0.85:
        return rng.choice(PLAIN_ADVANCES_S[2:]) * 1000 + rng.choice([-1, 1])  # a millisecond off
    return rng.randint(0, 200_000)


def _queue_labels(pools, queues):
    return [f"{p['name']}/default" for p in pools] + [f"{q['pool']}/{q['name']}" for q in queues]


class Model:
    """The generator's rough picture of a scenario (enough to aim at deadlines)."""

    def __init__(self, pools, queues, deployments):
        self.clock = 0
        self.pools = {p["name"]: p for p in pools}
        self.workers = {}  # (pool, name) -> [last heartbeat ms, interval or None]
        self.queue_polled = {}  # label -> ms
        self.dep_polled = {}  # name -> ms
        self.queue_labels = _queue_labels(pools, queues)
        self.dep_queue = {d["name"]: d["queue"] for d in deployments}

    def deadlines(self, settings):
        s = {**SETTINGS_DEFAULTS, **settings}
        out = []
        for last, interval in self.workers.values():
            seconds = s["inactivity_heartbeat_multiple"] * (
                s["fallback_heartbeat_interval_seconds"] if interval is None else interval)
            out.append(last + seconds * 1000)
        out += [t + s["work_queue_last_polled_timeout_seconds"] * 1000 for t in self.queue_polled.values()]
        out += [t + s["deployment_last_polled_timeout_seconds"] * 1000 for t in self.dep_polled.values()]
        return out


def _labels(rng, model, k_max=3):
    labels = rng.sample(model.queue_labels, rng.randint(0, min(k_max, len(model.queue_labels))))
    if rng.random() < 0.05:
        labels.append(rng.choice(list(model.pools)) + "/nosuchqueue")
    return labels


def _foreman_settings(rng):
    if rng.random() < 0.55:
        return {}
    keys = rng.sample(sorted(SETTINGS_CHOICES), rng.randint(1, 4))
    return {k: rng.choice(SETTINGS_CHOICES[k]) for k in sorted(keys)}


def _aimed_advance(rng, model, settings):
    """An advance that puts the clock on one of the pass's deadlines (or 1 ms / 1 s off
    it), or None when no deadline is still ahead."""
    delta = rng.choice([0, 0, 0, 0, -1, 1, -1000, 1000])
    ahead = [d + delta for d in model.deadlines(settings) if d + delta >= model.clock]
    if not ahead:
        return None
    return rng.choice(ahead) - model.clock


def gen_scenario(rng, sid):
    pools = [{"name": f"p{i + 1}", "type": "prefect-agent" if rng.random() < 0.1 else "process",
              "is_paused": rng.random() < 0.15} for i in range(rng.randint(1, 3))]
    queues = [{"pool": p["name"], "name": f"q{j + 1}", "is_paused": rng.random() < 0.1}
              for p in pools for j in range(rng.randint(0, 2))]
    queue_labels = _queue_labels(pools, queues)
    deployments = []
    for k in range(rng.randint(0, 4)):
        queue = None if rng.random() < 0.15 else rng.choice(queue_labels)
        deployments.append({"name": f"d{k + 1}", "queue": queue})
    model = Model(pools, queues, deployments)
    pool_names = [p["name"] for p in pools]

    steps = []

    def foreman():
        settings = _foreman_settings(rng)
        if rng.random() < 0.5:
            ms = _aimed_advance(rng, model, settings)
            if ms is not None:
                model.clock += ms
                steps.append({"op": "advance", "ms": ms})
        steps.append({"op": "foreman", "settings": settings})

    for _ in range(rng.randint(8, 28)):
        u = rng.random()
        if u < 0.22:
            ms = _advance_ms(rng)
            model.clock += ms
            steps.append({"op": "advance", "ms": ms})
        elif u < 0.50:
            pool = rng.choice(pool_names) if rng.random() < 0.96 else "nosuchpool"
            worker = rng.choice(["w1", "w1", "w2", "w3"])
            r = rng.random()
            interval = None if r < 0.45 else rng.choice([0, -5]) if r < 0.48 else rng.choice(INTERVALS)
            steps.append({"op": "heartbeat", "pool": pool, "worker": worker, "interval": interval,
                          "mark_pool_ready": rng.random() < 0.6})
            if pool in model.pools:
                old = model.workers.get((pool, worker), [None, None])
                model.workers[(pool, worker)] = [model.clock, old[1] if interval is None else interval]
        elif u < 0.66:
            foreman()
        elif u < 0.75:
            pool = rng.choice(pool_names)
            own = [lab for lab in model.queue_labels if lab.startswith(pool + "/")]
            names = None if rng.random() < 0.5 else [lab.split("/", 1)[1] for lab in
                                                     rng.sample(own, rng.randint(1, len(own)))]
            steps.append({"op": "poll", "pool": pool, "queues": names})
            polled = own if names is None else [f"{pool}/{n}" for n in names]
            for lab in polled:
                model.queue_polled[lab] = model.clock
            for dep, queue in model.dep_queue.items():
                if queue in polled:
                    model.dep_polled[dep] = model.clock
        elif u < 0.81:
            polled, ready = _labels(rng, model), _labels(rng, model)
            steps.append({"op": "mark_work_queues_ready", "polled": polled, "ready": ready})
            for lab in polled + ready:
                model.queue_polled[lab] = model.clock
        elif u < 0.87:
            deps = None if rng.random() < 0.3 else rng.sample(sorted(model.dep_queue),
                                                              rng.randint(0, len(model.dep_queue)))
            if deps is not None and rng.random() < 0.05:
                deps.append("nosuchdeployment")
            labels = None if rng.random() < 0.5 else _labels(rng, model, 2)
            steps.append({"op": "mark_deployments_ready", "deployments": deps, "queues": labels})
            for dep, queue in model.dep_queue.items():
                if dep in (deps or []) or queue in (labels or []):
                    model.dep_polled[dep] = model.clock
        elif u < 0.91:
            steps.append({"op": rng.choice(["pause_pool", "unpause_pool", "unpause_pool"]),
                          "pool": rng.choice(pool_names)})
        elif u < 0.95:
            steps.append({"op": rng.choice(["pause_queue", "unpause_queue"]),
                          "queue": rng.choice(model.queue_labels)})
        elif u < 0.98:
            pool, worker = rng.choice(pool_names), rng.choice(["w1", "w2", "w3"])
            steps.append({"op": "delete_worker", "pool": pool, "worker": worker})
            model.workers.pop((pool, worker), None)
        else:
            steps.append({"op": "mark_work_queues_not_ready", "queues": _labels(rng, model)})
    foreman()
    return {"id": sid, "pools": pools, "queues": queues, "deployments": deployments, "steps": steps}


def _hand(sid, steps, pools=None, queues=(), deployments=()):
    return {"id": sid, "pools": pools or [{"name": "p1", "type": "process", "is_paused": False}],
            "queues": list(queues), "deployments": list(deployments), "steps": steps}


def _beat(worker, interval=None, ready=True, pool="p1"):
    return {"op": "heartbeat", "pool": pool, "worker": worker, "interval": interval, "mark_pool_ready": ready}


def _advance(ms):
    return {"op": "advance", "ms": ms}


FOREMAN = {"op": "foreman", "settings": {}}

# Hand-written scenarios. The first two only pass if the oracle's SQLite answers
# julianday('now') with the manual clock: T0 is long past, so on the real clock every
# worker would be OFFLINE at once.
FOCUSED = [
    _hand("fm-virtual-online", [_beat("w"), _advance(10_000), FOREMAN, _advance(79_999), FOREMAN]),
    _hand("fm-virtual-offline", [_beat("w", 10), _beat("v"), _advance(29_999), FOREMAN, _advance(2), FOREMAN,
                                 _advance(60_000), FOREMAN]),
    _hand("fm-settings", [_beat("w"), _advance(11_000),
                          {"op": "foreman", "settings": {"inactivity_heartbeat_multiple": 1,
                                                         "fallback_heartbeat_interval_seconds": 12}},
                          {"op": "foreman", "settings": {"inactivity_heartbeat_multiple": 1,
                                                         "fallback_heartbeat_interval_seconds": 10}}]),
    _hand("fm-polls", [{"op": "poll", "pool": "p1", "queues": None}, _advance(30_000),
                       {"op": "poll", "pool": "p1", "queues": ["q1"]}, _advance(30_001), FOREMAN,
                       _advance(30_000), FOREMAN, {"op": "unpause_queue", "queue": "p1/q2"},
                       {"op": "pause_queue", "queue": "p1/default"}, {"op": "poll", "pool": "p1", "queues": None},
                       _advance(61_000), FOREMAN],
          queues=[{"pool": "p1", "name": "q1", "is_paused": False}, {"pool": "p1", "name": "q2", "is_paused": True}],
          deployments=[{"name": "d1", "queue": "p1/default"}, {"name": "d2", "queue": "p1/q1"},
                       {"name": "d3", "queue": None}]),
    _hand("fm-pools", [_beat("a", 10, pool="p1"), _beat("b", 10, pool="p2"), _beat("c", 10, pool="p3"),
                       _advance(20_000), _beat("b", pool="p2", ready=False), _advance(15_000), FOREMAN, FOREMAN,
                       _beat("a", pool="p1"), _beat("a", pool="p1"), FOREMAN, {"op": "unpause_pool", "pool": "p3"},
                       FOREMAN],
          pools=[{"name": "p1", "type": "process", "is_paused": False},
                 {"name": "p2", "type": "process", "is_paused": False},
                 {"name": "p3", "type": "process", "is_paused": True},
                 {"name": "agents", "type": "prefect-agent", "is_paused": False}]),
]


def main(argv):
    write_scenarios(argv, __doc__, FOCUSED, gen_scenario, "fm")


if __name__ == "__main__":
    main(sys.argv)
