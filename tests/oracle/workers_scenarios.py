#!/usr/bin/env python3
"""Random work-pool / work-queue / get_scheduled_flow_runs scenarios.

usage: python3 tests/oracle/workers_scenarios.py SEED N OUT.json

No Prefect import; the scenario format is described in prefect_workers.py.
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


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    seed, n, out = int(argv[1]), int(argv[2]), argv[3]
    rng = random.Random(seed)
    scenarios = [gen_scenario(rng, f"s{seed}-{i + 1}") for i in range(n)]
    with open(out, "w") as f:
        json.dump(scenarios, f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
