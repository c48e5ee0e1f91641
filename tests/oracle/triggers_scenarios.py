#!/usr/bin/env python3
"""Scenarios for automation event triggers over flow-run state events.

usage: python3 tests/oracle/triggers_scenarios.py SEED N OUT.json

No Prefect import. Writes a JSON list: the hand-written proactive scenarios below,
N random proactive ones with one bucket per run (ids "trig<SEED>-<i>"), then the
hand-written scenarios of MORE and 2N random ones of either posture, bucketed per
run or not at all, with or without `after` (ids "any<SEED>-<i>"). A scenario is one
event trigger and a script of flow-run events:

    {"id": ..., "posture": "Proactive" | "Reactive" (default Proactive),
     "for_each": [] or ["prefect.resource.id"] (default the latter),
     "after": [pattern, ...], "expect": [pattern, ...], "within": seconds,
     "threshold": n, "every": seconds between the service's passes (from 0),
     "until": last second, "events": [[second, state name, run label], ...]}

prefect_triggers.py answers each with the seconds at which Prefect 3.1.0 fired and
the run a flow-run action would act on (null when none); tests/test_sim_automations.py
replays them through the simulator's buckets. At one second, scripted events come
before the service's pass.
"""
import json
import random
import sys

RUNNING, ANY = "prefect.flow-run.Running", "prefect.flow-run.*"


def _fixed(sid, within, until, events, after=(RUNNING,), expect=(ANY,), threshold=1, every=5):
    """A hand-written proactive scenario; most open on Running and expect any event."""
    return {"id": sid, "after": list(after), "expect": list(expect), "within": within, "threshold": threshold,
            "every": every, "until": until, "events": events}


FIXED = [
    # zombie recipe: fires on the first pass at or after the window's end
    _fixed("running-alone", 3600, 3800, [[100, "Running", "R"]]),
    _fixed("running-then-completed", 3600, 3800, [[100, "Running", "R"], [200, "Completed", "R"]]),
    # one trigger after Pending or Running: the Running event counts in the Pending window
    _fixed("pending-or-running", 3600, 8000, [[100, "Pending", "R"], [105, "Running", "R"]],
           after=("prefect.flow-run.Pending", RUNNING)),
    # an expected event long after the window's end, before the next pass: the window
    # was swept a minute after its end (the consumer's periodic sweep), so nothing fires
    _fixed("late-event-closes", 1200, 3600, [[0, "Running", "R"], [1500, "Completed", "R"]], every=1800),
    _fixed("threshold-two", 600, 700, [[0, "Running", "R"], [300, "Completed", "R"]],
           expect=("prefect.flow-run.Completed",), threshold=2),
    _fixed("second-after-event-counts", 600, 1500, [[0, "Running", "R"], [100, "Running", "R"]]),
    # a negated expect pattern: Prefect's first filter (a regular expression of the
    # patterns) never matches it, so the Completed event is not even looked at
    _fixed("negated-expect", 600, 700, [[0, "Running", "R"], [100, "Completed", "R"]],
           expect=("!prefect.flow-run.Late",)),
    _fixed("one-window-per-run", 3600, 3700,
           [[0, "Running", "R1"], [10, "Running", "R2"], [20, "Completed", "R2"]]),
]

STATES = ["Scheduled", "Late", "Pending", "Running", "Completed", "Failed", "Crashed", "Cancelling",
          "Cancelled", "Paused", "AwaitingRetry", "Retrying"]
PATTERNS = [f"prefect.flow-run.{s}" for s in STATES] + ["prefect.flow-run.*", "prefect.flow-run.C*",
                                                        "!prefect.flow-run.Late", "prefect.flow-run.Re*"]


def random_events(rng: random.Random, span: int, within: int, most: int) -> list:
    """Events of one to three runs, by time: each run's first within `span`, then
    fewer than `most` in all, apart by gaps around the window (none, a second,
    inside it, its length: at its end, often on a pass, and after it)."""
    events = []
    for label in [f"R{k}" for k in range(rng.choice([1, 2, 3]))]:
        t = rng.randrange(0, span)
        for _ in range(rng.randrange(1, most)):
            events.append([t, rng.choice(STATES), label])
            t += rng.choice([0, 1, rng.randrange(1, span + 1), within, span + rng.randrange(1, 2 * span)])
    events.sort(key=lambda e: e[0])
    return events


def random_scenario(rng: random.Random, ident: str) -> dict:
    after = rng.sample(PATTERNS[:len(STATES)] + ["prefect.flow-run.*"], rng.choice([1, 1, 2]))
    expect = [] if rng.random() < 0.15 else rng.sample(PATTERNS, rng.choice([1, 1, 2, 3]))
    within = rng.choice([10, 30, 60, 90, 300, 600])
    every = rng.choice([5, 5, 5, 10, 60, 120])
    until = within * rng.choice([3, 5, 8]) + 60
    events = random_events(rng, within, within, 8)
    return {"id": ident, "after": after, "expect": expect, "within": within,
            "threshold": rng.choice([0, 1, 1, 1, 2, 3]), "every": every, "until": max(until, events[-1][0] + 1),
            "events": events}


# Either posture, one bucket per run or one for all runs, with or without `after`.
MORE = [
    # a bucket that reached its threshold is dropped at the next pass (a gated one: the
    # service comes back only when the trigger's earliest bucket may end), so a later
    # `after` event opens a new window
    _fixed("full-bucket-dropped-at-pass", 600, 2000,
           [[0, "Running", "A"], [300, "Running", "B"], [310, "Completed", "B"], [700, "Running", "B"]]),
    # the circuit breaker: three crashes of any runs within ten minutes
    {"id": "three-crashes-any-run", "posture": "Reactive", "for_each": [], "after": [],
     "expect": ["prefect.flow-run.Crashed"], "within": 600, "threshold": 3, "every": 5, "until": 3000,
     "events": [[0, "Crashed", "A"], [100, "Crashed", "B"], [200, "Completed", "C"], [300, "Crashed", "C"],
                [400, "Crashed", "A"], [500, "Crashed", "B"], [700, "Crashed", "C"], [1300, "Crashed", "A"]]},
    # every failure, at once
    {"id": "each-failure", "posture": "Reactive", "after": [], "expect": ["prefect.flow-run.Failed"],
     "within": 0, "threshold": 1, "every": 5, "until": 100,
     "events": [[0, "Failed", "A"], [0, "Failed", "B"], [10, "Completed", "A"], [20, "Failed", "A"]]},
    # a run that took more than a minute from Running to Completed... or never did
    {"id": "slow-or-never", "posture": "Reactive", "after": ["prefect.flow-run.Running"],
     "expect": ["prefect.flow-run.Completed"], "within": 60, "threshold": 1, "every": 5, "until": 300,
     "events": [[0, "Running", "A"], [0, "Running", "B"], [30, "Completed", "A"], [90, "Completed", "B"]]},
    # a proactive bucket's expected event that came after it counts in the next bucket
    {"id": "late-event-carried-over", "for_each": [], "after": [], "expect": ["prefect.flow-run.Completed"],
     "within": 90, "threshold": 2, "every": 60, "until": 700, "events": [[100, "Completed", "A"], [150, "Completed", "A"]]},
    # buckets that ended a minute ago are swept, every 5 s, whatever the posture: a
    # stale reactive window goes, so a later `after` event opens a new one ...
    {"id": "stale-window-swept", "posture": "Reactive", "after": ["prefect.flow-run.Running"],
     "expect": ["prefect.flow-run.Completed"], "within": 60, "threshold": 1, "every": 5, "until": 400,
     "events": [[0, "Running", "A"], [300, "Running", "A"], [310, "Completed", "A"]]},
    # ... a count with no window is forgotten ...
    {"id": "count-swept", "posture": "Reactive", "after": [], "expect": ["prefect.flow-run.Failed"],
     "within": 0, "threshold": 2, "every": 5, "until": 300, "events": [[0, "Failed", "A"], [200, "Failed", "A"]]},
    # ... and a proactive window can go before a slow service's pass
    {"id": "swept-before-pass", "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.Completed"],
     "within": 30, "threshold": 1, "every": 120, "until": 500, "events": [[0, "Running", "A"]]},
    # no run completed for five minutes (one bucket, made by the service's passes)
    {"id": "nothing-completed", "for_each": [], "after": [], "expect": ["prefect.flow-run.Completed"],
     "within": 300, "threshold": 1, "every": 5, "until": 1000,
     "events": [[100, "Completed", "A"], [200, "Running", "B"], [700, "Completed", "B"]]},
]


def random_any_scenario(rng: random.Random, ident: str) -> dict:
    reactive = rng.random() < 0.6
    after = [] if rng.random() < 0.5 else rng.sample(PATTERNS[:len(STATES)] + ["prefect.flow-run.*"],
                                                     rng.choice([1, 1, 2]))
    expect = [] if rng.random() < 0.1 else rng.sample(PATTERNS, rng.choice([1, 1, 2, 3]))
    within = rng.choice([0, 0, 10, 30, 60, 300] if reactive else [10, 30, 60, 300, 600])
    span = max(within, 60)
    events = random_events(rng, span, within, 9)
    return {"id": ident, "posture": "Reactive" if reactive else "Proactive",
            "for_each": rng.choice([[], ["prefect.resource.id"]]), "after": after, "expect": expect,
            "within": within, "threshold": rng.choice([0, 1, 1, 1, 2, 3]), "every": rng.choice([5, 5, 10, 60]),
            "until": max(span * rng.choice([3, 5, 8]) + 60, events[-1][0] + 1), "events": events}


def scenarios(seed: int, n: int) -> list:
    rng = random.Random(seed)
    proactive = FIXED + [random_scenario(rng, f"trig{seed}-{i}") for i in range(n)]
    rng = random.Random(f"any-{seed}")
    return proactive + MORE + [random_any_scenario(rng, f"any{seed}-{i}") for i in range(2 * n)]


def main(argv: list) -> None:
    seed, n, out = int(argv[1]), int(argv[2]), argv[3]
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(scenarios(seed, n), fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv)
