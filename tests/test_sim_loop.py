"""The simulator's shortcuts read the same as the straightforward computations they replace:
the lazily forwarded SimClock and the scheduler's memo of its last cron date."""
from __future__ import annotations

import datetime as dt
import random

from engine.sim import Simulation, parse_workload
from engine.sim.loop import EventLoop, SimClock

START = dt.datetime(2024, 1, 1, 0, 0, 0, 300001, tzinfo=dt.timezone.utc)
TICK = dt.timedelta(microseconds=1)


def test_lazy_clock_reads_like_an_eagerly_forwarded_one():
    rng = random.Random(3)
    clock = SimClock(start=START, tick=TICK)
    loop = EventLoop(clock, START)
    expected = START   # the eager model: forward to every event's time, tick on each read
    readings: list[tuple[dt.datetime, dt.datetime]] = []

    def handler(reads: int) -> None:
        nonlocal expected
        when = START + dt.timedelta(seconds=loop.now)
        expected = max(expected, when)
        for _ in range(reads):
            readings.append((clock.now(), expected))
            expected += TICK

    for _ in range(2000):
        # many events share an instant or lie within a microsecond of each other
        t = rng.choice([rng.uniform(0, 500), round(rng.uniform(0, 500)), rng.uniform(0, 1e-5)])
        loop.at(t, handler, rng.choice([0, 0, 1, 3]))
    loop.run(float("inf"))
    assert readings and all(got == want for got, want in readings)


def test_lazy_clock_catches_up_before_other_uses():
    clock = SimClock(start=START, tick=TICK)
    loop = EventLoop(clock, START)
    loop.at(10.0, lambda _: None)
    loop.run(20.0)
    assert clock.now() == START + dt.timedelta(seconds=20)

    clock = SimClock(start=START, tick=TICK)
    clock.due = 5.0
    assert clock.advance(1.0) == START + dt.timedelta(seconds=6)
    clock.due = 50.0
    clock.set(START)   # a jump drops the pending move
    assert clock.now() == START
    clock.due = 7.0
    assert START.replace(second=7).isoformat() in repr(clock)


def test_scheduler_cron_memo_gives_the_fresh_answer():
    wl = parse_workload({
        "simulation": {"seed": 1, "until": "1d", "start": "2024-01-01T00:00:00.300001Z"},
        "work_pools": [{"name": "p"}],
        "workers": [{"pool": "p"}],
        "flows": [{"name": "f", "tasks": [{"name": "a"}]}],
        "deployments": [
            {"name": "office", "flow": "f", "pool": "p", "schedule": {"cron": "*/7 9-17 * * 1-5"}},
            {"name": "often", "flow": "f", "pool": "p", "schedule": {"cron": "*/2 * * * *"}},
        ],
    })
    sim = Simulation(wl, rule_stats=False)
    sim._setup()
    services = sim.services
    rng = random.Random(11)
    for dep in sim.deployments:
        after, checked = 0.0, 0
        for _ in range(3000):
            after += rng.choice([0.0, 1e-7, 0.5, 30.0, 60.0, 3600.0 * rng.random()])
            if rng.random() < 0.1:
                dep.cursor = after + rng.choice([0.0, 120.0, 7 * 60.0])
            got = services._next_date(dep, after)
            memo, dep.next_memo = dep.next_memo, None
            assert got == services._next_date(dep, after), (dep.spec.name, after, dep.cursor)
            dep.next_memo = memo
            checked += 1
        assert checked == 3000
