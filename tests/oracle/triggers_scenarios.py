#!/usr/bin/env python3
"""Scenarios for proactive automation triggers over flow-run state events.

usage: python3 tests/oracle/triggers_scenarios.py SEED N OUT.json

No Prefect import. Writes a JSON list: first the hand-written scenarios below, then
N random ones (ids "trig<SEED>-<i>"). A scenario is one proactive event trigger
with `for_each = ["prefect.resource.id"]` and a script of flow-run events:

    {"id": ..., "after": [pattern, ...], "expect": [pattern, ...], "within": seconds,
     "threshold": n, "every": seconds between the service's passes (from 0),
     "until": last second, "events": [[second, state name, run label], ...]}

prefect_triggers.py answers each with the seconds and runs at which Prefect 3.1.0
fired; tests/test_sim_automations.py replays them through the simulator's windows.
At one second, scripted events come before the service's pass.
"""
import json
import random
import sys

FIXED = [
    # zombie recipe: fires on the first pass at or after the window's end
    {"id": "running-alone", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.*"],
     "within": 3600, "threshold": 1, "every": 5, "until": 3800, "events": [[100, "Running", "R"]]},
    {"id": "running-then-completed", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.*"],
     "within": 3600, "threshold": 1, "every": 5, "until": 3800,
     "events": [[100, "Running", "R"], [200, "Completed", "R"]]},
    # one trigger after Pending or Running: the Running event counts in the Pending window
    {"id": "pending-or-running", "after": ["prefect.flow-run.Pending", "prefect.flow-run.Running"],
     "expect": ["prefect.flow-run.*"], "within": 3600, "threshold": 1, "every": 5, "until": 8000,
     "events": [[100, "Pending", "R"], [105, "Running", "R"]]},
    # an expected event after the window's end, before the next pass, fires at once
    {"id": "late-event-closes", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.*"],
     "within": 1200, "threshold": 1, "every": 1800, "until": 3600,
     "events": [[0, "Running", "R"], [1500, "Completed", "R"]]},
    {"id": "threshold-two", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.Completed"],
     "within": 600, "threshold": 2, "every": 5, "until": 700,
     "events": [[0, "Running", "R"], [300, "Completed", "R"]]},
    {"id": "second-after-event-counts", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.*"],
     "within": 600, "threshold": 1, "every": 5, "until": 1500,
     "events": [[0, "Running", "R"], [100, "Running", "R"]]},
    # a negated expect pattern: Prefect's first filter (a regular expression of the
    # patterns) never matches it, so the Completed event is not even looked at
    {"id": "negated-expect", "after": ["prefect.flow-run.Running"], "expect": ["!prefect.flow-run.Late"],
     "within": 600, "threshold": 1, "every": 5, "until": 700,
     "events": [[0, "Running", "R"], [100, "Completed", "R"]]},
    {"id": "one-window-per-run", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.*"],
     "within": 3600, "threshold": 1, "every": 5, "until": 3700,
     "events": [[0, "Running", "R1"], [10, "Running", "R2"], [20, "Completed", "R2"]]},
]

STATES = ["Scheduled", "Late", "Pending", "Running", "Completed", "Failed", "Crashed", "Cancelling",
          "Cancelled", "Paused", "AwaitingRetry", "Retrying"]
PATTERNS = [f"prefect.flow-run.{s}" for s in STATES] + ["prefect.flow-run.*", "prefect.flow-run.C*",
                                                        "!prefect.flow-run.Late", "prefect.flow-run.Re*"]


def random_scenario(rng: random.Random, ident: str) -> dict:
    after = rng.sample(PATTERNS[:len(STATES)] + ["prefect.flow-run.*"], rng.choice([1, 1, 2]))
    expect = [] if rng.random() < 0.15 else rng.sample(PATTERNS, rng.choice([1, 1, 2, 3]))
    within = rng.choice([10, 30, 60, 90, 300, 600])
    every = rng.choice([5, 5, 5, 10, 60, 120])
    until = within * rng.choice([3, 5, 8]) + 60
    events = []
    for label in [f"R{k}" for k in range(rng.choice([1, 2, 3]))]:
        t = rng.randrange(0, within)
        for _ in range(rng.randrange(1, 8)):
            events.append([t, rng.choice(STATES), label])
            # gaps around the window: inside it, at its end (often on a pass), after it
            t += rng.choice([0, 1, rng.randrange(1, within + 1), within, within + rng.randrange(1, 2 * within)])
    events.sort(key=lambda e: e[0])
    return {"id": ident, "after": after, "expect": expect, "within": within,
            "threshold": rng.choice([0, 1, 1, 1, 2, 3]), "every": every, "until": max(until, events[-1][0] + 1),
            "events": events}


def scenarios(seed: int, n: int) -> list:
    rng = random.Random(seed)
    return FIXED + [random_scenario(rng, f"trig{seed}-{i}") for i in range(n)]


def main(argv: list) -> None:
    seed, n, out = int(argv[1]), int(argv[2]), argv[3]
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(scenarios(seed, n), fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv)
