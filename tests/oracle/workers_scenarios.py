#!/usr/bin/env python3
"""Random work-pool / work-queue / get_scheduled_flow_runs scenarios.

usage: python3 tests/oracle/workers_scenarios.py SEED N OUT.json
       python3 tests/oracle/workers_scenarios.py --priorities SEED N OUT.json
       python3 tests/oracle/workers_scenarios.py --heartbeats SEED N OUT.json

No Prefect import; the scenario format is described in prefect_workers.py.

--priorities draws a different kind of scenario (ids "prio<SEED>-<i>"): one or two
pools of 2-6 queues (the default included) whose creation priorities collide often,
then 3-8 priority ops (update_work_queue priority, bulk_update_work_queue_priorities
with 1-4 targets, delete_work_queue, create_work_queue) with targets mostly in 1..n+1
for n queues, else 1..8 or 9..12. Nearly half the bulk updates are shaped (with a model
of Prefect's algorithm, _renumber) so that Prefect's walk leaves a duplicate priority,
which later ops may repair. Such scenarios set "track_priorities", so their answers
record every priority after each step. Without the option the output is what it always
was (same seed, same bytes).

--heartbeats draws worker scenarios (ids "hb<SEED>-<i>"): one to three pools (some
paused, a few "prefect-agent"), then 8-24 `worker_steps` on a manual clock that only
`advance` steps move (by 0-90 s, often 0, so heartbeats share times): heartbeats (new
and repeated workers, with or without an interval, now and then through the API route's
extra step that sets a NOT_READY pool READY), delete_worker, read_workers (random
WorkerFilter JSON, limit, offset), pausing and unpausing pools, deleting and re-creating
pools; unknown pools and the empty worker name turn up too.
"""
import json
import random
import sys

STATE_WEIGHTS = [("SCHEDULED", 50), ("LATE", 10), ("PENDING", 10), ("RUNNING", 10),
                 ("COMPLETED", 8), ("CANCELLING", 6), ("PAUSED", 6)]


def pick_state(rng):
    names, weights = zip(*STATE_WEIGHTS)
    return rng.choices(names, weights)[0]


def maybe_limit(rng, lo=0, hi=3, p_null=0.5):
    return None if rng.random() < p_null else rng.randint(lo, hi)


def _id_list(rng, p_none, p_empty, some):
    # A call's pool or queue list: None below p_none, [] up to p_empty, else some().
    u = rng.random()
    return None if u < p_none else [] if u < p_empty else some()


def gen_scenario(rng, sid):
    pools = []
    for i in range(rng.randint(1, 3)):
        pools.append({
            "name": f"p{i + 1}",
            "type": "prefect-agent" if rng.random() < 0.08 else "process",
            "concurrency_limit": maybe_limit(rng),
            "is_paused": rng.random() < 0.12,
        })
    queues = []
    for p in pools:
        for j in range(rng.randint(0, 3)):
            queues.append({
                "pool": p["name"], "name": f"q{j + 1}",
                "priority": None if rng.random() < 0.4 else rng.randint(1, 5),
                "concurrency_limit": maybe_limit(rng),
                "is_paused": rng.random() < 0.1,
            })
    all_queues = [(p["name"], "default") for p in pools] + [(q["pool"], q["name"]) for q in queues]

    deployments = []
    for k in range(rng.choice([0, 0, 1, 1, 2, 3])):
        if rng.random() < 0.15:
            pool, queue = None, None
        else:
            pool, queue = rng.choice(all_queues)
            if queue == "default" and rng.random() < 0.5:
                queue = None  # pool only -> pool's default queue
        deployments.append({"name": f"d{k + 1}", "pool": pool, "queue": queue,
                            "concurrency_limit": maybe_limit(rng, 1, 3)})

    n_runs = max(rng.randint(0, 15), rng.randint(0, 15))
    offsets = rng.sample(range(-600, 601), n_runs)
    runs = []
    for r, off in enumerate(offsets):
        pool, queue = rng.choice(all_queues)
        dep = None
        if deployments and rng.random() < 0.35:
            dep = rng.choice(deployments)["name"]
        runs.append({"name": f"r{r + 1}", "pool": pool, "queue": queue, "state": pick_state(rng),
                     "offset_s": off, "deployment": dep,
                     "auto_scheduled": dep is not None and rng.random() < 0.5})

    updates = []
    for _ in range(rng.randint(0, 3)):
        ops = ["update_work_queue", "update_work_pool"] + (["update_deployment"] if deployments else [])
        op = rng.choice(ops)
        if op == "update_work_queue":
            pool, queue = rng.choice(all_queues)
            if rng.random() < 0.05:
                queue = "nosuchqueue"
            fields = {}
            while not fields:
                if rng.random() < 0.45:
                    fields["priority"] = None if rng.random() < 0.05 else rng.randint(1, 5)
                if rng.random() < 0.45:
                    fields["is_paused"] = rng.random() < 0.4
                if rng.random() < 0.45:
                    fields["concurrency_limit"] = maybe_limit(rng, p_null=0.3)
            updates.append({"op": op, "pool": pool, "queue": queue, "fields": fields})
        elif op == "update_work_pool":
            pool = rng.choice(pools)["name"]
            if rng.random() < 0.05:
                pool = "nosuchpool"
            fields = {}
            while not fields:
                if rng.random() < 0.5:
                    fields["is_paused"] = rng.random() < 0.4
                if rng.random() < 0.5:
                    fields["concurrency_limit"] = maybe_limit(rng, p_null=0.3)
                if rng.random() < 0.1:
                    fields["description"] = rng.choice([None, "desc"])
            updates.append({"op": op, "pool": pool, "fields": fields})
        else:
            d = rng.choice(deployments)["name"]
            fields = {}
            if rng.random() < 0.5:
                fields["concurrency_limit"] = None if rng.random() < 0.35 else (
                    0 if rng.random() < 0.08 else rng.randint(1, 3))
            if rng.random() < 0.4:
                fields["paused"] = rng.random() < 0.5
            if rng.random() < 0.12:
                pool, queue = rng.choice(all_queues)
                fields["work_pool_name"] = pool
                if rng.random() < 0.7:
                    # sometimes a queue that does not exist yet: Prefect creates it
                    fields["work_queue_name"] = queue if rng.random() < 0.7 else "qnew"
            updates.append({"op": op, "deployment": d, "fields": fields})

    calls = []
    for _ in range(rng.randint(3, 6)):
        wp = _id_list(rng, 0.45, 0.5, lambda: sorted(rng.sample([p["name"] for p in pools], rng.randint(1, len(pools)))))
        wq = _id_list(rng, 0.6, 0.63,
                      lambda: [list(x) for x in rng.sample(all_queues, rng.randint(1, min(3, len(all_queues))))])
        before = None if rng.random() < 0.5 else rng.randint(-300, 600)
        after = None if rng.random() < 0.6 else rng.randint(-600, 300)
        if runs and rng.random() < 0.25:
            # pin a bound exactly on a run's scheduled time (inclusive bounds)
            off = rng.choice(runs)["offset_s"]
            if rng.random() < 0.5:
                before = off
            else:
                after = off
        if before is not None and after is not None and after > before and rng.random() < 0.85:
            before, after = after, before  # mostly a non-empty window
        calls.append({"work_pools": wp, "work_queues": wq,
                      "scheduled_before_offset_s": before, "scheduled_after_offset_s": after,
                      "limit": None if rng.random() < 0.5 else rng.randint(1, 6),
                      "respect_queue_priorities": rng.choice([None, True, False])})
    return {"id": sid, "pools": pools, "queues": queues, "deployments": deployments,
            "runs": runs, "updates": updates, "calls": calls}


QUEUE_NAMES = "abcdefgh"  # drawn out of order, so name order is not creation order


def _renumber(queues, new):
    """A model of Prefect's bulk_update_work_queue_priorities on `queues` ([name,
    priority] in creation order, changed in place; `new` {name: priority}). It only
    steers the draws below (where duplicates can be made); the answers are Prefect's."""
    ordered = sorted(queues, key=lambda q: q[1])  # ties in creation order, as SQLite's index gives
    walk = [q for q in ordered if q[0] not in new]
    for q in sorted((q for q in ordered if q[0] in new), key=lambda q: new[q[0]]):
        q[1] = new[q[0]]
        i = next((i for i, w in enumerate(walk) if w[1] >= q[1]), None)
        if i is not None:  # a target above every priority is left out of the walk
            walk.insert(i, q)
    last = 0
    for q in walk:
        last = q[1] = last + 1 if q[1] <= last else q[1]


def _create(queues, name, priority):
    if priority is None:
        taken = sorted(q[1] for q in queues)
        priority = next((i + 1 for i, p in enumerate(taken) if p != i + 1), max(taken, default=0) + 1)
        queues.append([name, priority])
    else:
        queues.append([name, priority])
        _renumber(queues, {name: priority})


def _target(rng, n):
    # a priority to ask for in a pool of n queues: mostly 1..n+1, else 1..8 or far above
    u = rng.random()
    return rng.randint(9, 12) if u < 0.1 else rng.randint(1, n + 1) if u < 0.7 else rng.randint(1, 8)


def _bulk_targets(rng, queues, names):
    """Targets for `names` (queues of the pool `queues`, as _renumber models it)."""
    others = sorted(q[1] for q in queues if q[0] not in names)
    u = rng.random()
    if u < 0.55 and len(names) > 1 and others:
        # Prefect's quirk on purpose: one target lands in the top run of consecutive
        # priorities of the other queues, the rest just above them, so the walk bumps
        # that run onto a target it leaves out: a duplicate.
        run = len(others) - 1
        while run > 0 and others[run - 1] >= others[run] - 1:
            run -= 1
        top = others[-1]
        targets = [rng.choice(others[run:])] + list(range(top + 1, top + len(names)))
        rng.shuffle(targets)
        return targets
    if u < 0.7:
        return [_target(rng, 8) for _ in names]  # may repeat: Prefect refuses those
    return rng.sample(range(1, max(len(queues) + 2, len(names)) + 1), len(names))


def gen_priority_scenario(rng, sid):
    pools = [{"name": f"p{i + 1}", "type": "process", "concurrency_limit": maybe_limit(rng, p_null=0.7),
              "is_paused": False} for i in range(rng.choice([1, 1, 2]))]
    queues = []
    model = {p["name"]: [["default", 1]] for p in pools}
    for p in pools:
        for j, name in enumerate(rng.sample(QUEUE_NAMES, rng.randint(1, 5))):
            # mostly a number already taken (j + 1 queues exist), so creation collides
            priority = None if rng.random() < 0.25 else rng.randint(1, j + 2 if rng.random() < 0.8 else 8)
            _create(model[p["name"]], name, priority)
            queues.append({"pool": p["name"], "name": name, "priority": priority,
                           "concurrency_limit": maybe_limit(rng, p_null=0.7), "is_paused": rng.random() < 0.1})
    all_queues = [(p["name"], "default") for p in pools] + [(q["pool"], q["name"]) for q in queues]

    deployments = []
    if rng.random() < 0.4:
        pool, queue = rng.choice(all_queues)
        deployments.append({"name": "d1", "pool": pool, "queue": queue, "concurrency_limit": None})
    runs = []
    for r, off in enumerate(rng.sample(range(-600, 601), rng.randint(0, 6))):
        pool, queue = rng.choice(all_queues)
        runs.append({"name": f"r{r + 1}", "pool": pool, "queue": queue,
                     "state": rng.choice(["SCHEDULED", "SCHEDULED", "SCHEDULED", "LATE", "RUNNING"]),
                     "offset_s": off, "deployment": None, "auto_scheduled": False})

    updates, gone, created = [], [], 0
    for _ in range(rng.randint(3, 8)):
        op = rng.choices(["update_work_queue", "bulk_update_work_queue_priorities", "delete_work_queue",
                          "create_work_queue"], [3, 4, 2, 1])[0]
        pool = rng.choice(pools)["name"]
        live = model[pool]
        names = [q[0] for q in live]
        if op == "update_work_queue":
            queue = rng.choice(names)
            fields = {"priority": _target(rng, len(live))}
            if rng.random() < 0.15:
                fields["is_paused"] = rng.random() < 0.5
            _renumber(live, {queue: fields["priority"]})
            updates.append({"op": op, "pool": pool, "queue": queue, "fields": fields})
        elif op == "bulk_update_work_queue_priorities":
            chosen = rng.sample(names, rng.randint(1, min(4, len(names))))
            new = dict(zip(chosen, _bulk_targets(rng, live, chosen)))
            if rng.random() < 0.1:  # a name not in the pool: Prefect ignores it
                new[rng.choice(gone) if gone and rng.random() < 0.5 else "nosuchqueue"] = _target(rng, 8)
            if rng.random() < 0.03:
                pool = "nosuchpool"
            elif len(set(new.values())) == len(new):
                _renumber(live, {k: v for k, v in new.items() if k in names})
            updates.append({"op": op, "pool": pool, "priorities": new})
        elif op == "delete_work_queue":
            u = rng.random()
            queue = ("nosuchqueue" if u < 0.05 else rng.choice(gone) if gone and u < 0.15 else
                     "default" if u < 0.25 or len(names) == 1 else rng.choice(names[1:]))  # default: refused
            if queue != "default" and queue in names:
                live[:] = [q for q in live if q[0] != queue]
                _renumber(live, {})
                gone.append(queue)
            updates.append({"op": op, "pool": pool, "queue": queue})
        else:
            created += 1
            queue, priority = f"n{created}", None if rng.random() < 0.5 else _target(rng, len(live))
            _create(live, queue, priority)
            updates.append({"op": op, "pool": pool, "queue": queue, "priority": priority})

    calls = [{"work_pools": None, "work_queues": None, "scheduled_before_offset_s": None,
              "scheduled_after_offset_s": None, "limit": None, "respect_queue_priorities": True}]
    if rng.random() < 0.5:
        calls.append({"work_pools": None, "work_queues": None, "scheduled_before_offset_s": rng.randint(-300, 600),
                      "scheduled_after_offset_s": None, "limit": rng.randint(1, 4),
                      "respect_queue_priorities": rng.choice([True, False])})
    return {"id": sid, "track_priorities": True, "pools": pools, "queues": queues,
            "deployments": deployments, "runs": runs, "updates": updates, "calls": calls}


WORKER_NAMES = ["w1", "w2", "w3", "w4", "w5"]


def _worker_filter(rng, beats):
    """A random WorkerFilter JSON: `beats` are the heartbeat times (ms offsets) so far,
    which the time bounds often hit exactly (they are inclusive)."""
    flt = {}
    if rng.random() < 0.3:
        flt["operator"] = rng.choice(["and_", "or_"])
    if rng.random() < 0.6:
        bounds = {}
        for key in ("before_", "after_"):
            if rng.random() < 0.6:
                bounds[key] = rng.choice(beats) if beats and rng.random() < 0.6 else rng.randint(-5, 400) * 1000
        flt["last_heartbeat_time"] = bounds  # sometimes {}: no bound at all
    if rng.random() < 0.5:
        status = {}
        for key in ("any_", "not_any_"):
            if rng.random() < 0.55:
                status[key] = rng.sample(["ONLINE", "OFFLINE"], rng.randint(0, 2))
        flt["status"] = status
    return flt


def gen_heartbeat_scenario(rng, sid):
    pools = [{"name": f"p{i + 1}", "type": "prefect-agent" if rng.random() < 0.08 else "process",
              "concurrency_limit": None, "is_paused": rng.random() < 0.15} for i in range(rng.randint(1, 3))]
    live = [p["name"] for p in pools]
    gone = []
    steps, beats = [], []
    clock = 0
    for _ in range(rng.randint(8, 24)):
        u = rng.random()
        pool = rng.choice(live) if live and rng.random() < 0.95 else rng.choice(gone or ["nosuchpool"])
        if u < 0.2:
            seconds = rng.choice([0, 0, 1, 5, 30, 90]) if rng.random() < 0.85 else rng.randint(1, 999) / 1000
            clock += int(seconds * 1000)
            steps.append({"op": "advance", "seconds": seconds})
        elif u < 0.55:
            worker = rng.choice(WORKER_NAMES[:rng.randint(1, 5)]) if rng.random() < 0.97 else ""
            interval = None if rng.random() < 0.55 else rng.choice([0, 5, 10, 30, 60, 3600])
            steps.append({"op": "worker_heartbeat", "pool": pool, "worker": worker, "interval": interval,
                          "route": rng.random() < 0.2})
            beats.append(clock)
        elif u < 0.65:
            steps.append({"op": "delete_worker", "pool": pool,
                          "worker": rng.choice(WORKER_NAMES) if rng.random() < 0.97 else ""})
        elif u < 0.85:
            steps.append({"op": "read_workers", "pool": pool,
                          "filter": None if rng.random() < 0.35 else _worker_filter(rng, beats),
                          "limit": None if rng.random() < 0.6 else rng.randint(0, 4),
                          "offset": None if rng.random() < 0.7 else rng.randint(0, 3)})
        elif u < 0.93:
            steps.append({"op": "update_work_pool", "pool": pool, "fields": {"is_paused": rng.random() < 0.4}})
        elif u < 0.97 and live:
            victim = rng.choice(live)
            live.remove(victim)
            gone.append(victim)
            steps.append({"op": "delete_work_pool", "pool": victim})
        elif gone:
            again = gone.pop(rng.randrange(len(gone)))
            live.append(again)
            steps.append({"op": "create_work_pool", "pool": again,
                          "type": "prefect-agent" if rng.random() < 0.2 else "process"})
    # Every pool's workers, unfiltered, at the end.
    steps += [{"op": "read_workers", "pool": p["name"], "filter": None, "limit": None, "offset": None}
              for p in pools]
    return {"id": sid, "pools": pools, "queues": [], "deployments": [], "runs": [], "updates": [], "calls": [],
            "worker_steps": steps}


def main(argv):
    gen, prefix = gen_scenario, "s"
    if len(argv) == 5 and argv[1] == "--priorities":
        gen, prefix = gen_priority_scenario, "prio"
        argv = argv[:1] + argv[2:]
    elif len(argv) == 5 and argv[1] == "--heartbeats":
        gen, prefix = gen_heartbeat_scenario, "hb"
        argv = argv[:1] + argv[2:]
    if len(argv) != 4:
        raise SystemExit(__doc__)
    seed, n, out = int(argv[1]), int(argv[2]), argv[3]
    rng = random.Random(seed)
    scenarios = [gen(rng, f"{prefix}{seed}-{i + 1}") for i in range(n)]
    with open(out, "w") as f:
        json.dump(scenarios, f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
