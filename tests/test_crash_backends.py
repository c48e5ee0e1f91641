"""Crash tests: a child process drives a seeded workload against a durable engine and
reports every call that returned; the parent SIGKILLs it at a random moment, reopens
the file and replays the workload in memory.

The reopened engine must equal the replay after exactly the reported calls, or after
one more (the call in flight may have committed before its report was written), and
its indexes must agree with a brute-force scan. Run as a script, this file is the child.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_backends_support import Workload, check_indexes, dump, make_clock, seed_engine_ids  # noqa: E402

from engine import Engine  # noqa: E402
from engine.records import seed_slugs  # noqa: E402
from engine.states import seed_ids  # noqa: E402

KILLS = 24


def _child(url: str, seed: int, options: dict) -> None:
    seed_engine_ids(seed)
    engine = Engine.open(url, clock=make_clock(), **options)
    workload = Workload(seed)
    os.write(1, b"open\n")
    n = 0
    while True:
        workload.step(engine)
        n += 1
        os.write(1, b"%d\n" % n)  # unbuffered: the parent sees it as soon as the call returned


def _replay_matches(url: str, seed: int, reported: int) -> int:
    """Reopen `url` and return the number of steps (reported or reported+1) whose
    in-memory replay it equals; fail otherwise."""
    reopened = Engine.open(url, clock=make_clock())
    try:
        check_indexes(reopened)
        got = dump(reopened)
    finally:
        reopened.close()
    seed_engine_ids(seed)
    try:
        replay = Engine(clock=make_clock())
        workload = Workload(seed)
        for _ in range(reported):
            workload.step(replay)
        if dump(replay) == got:
            return reported
        workload.step(replay)
        if dump(replay) == got:
            return reported + 1
    finally:
        seed_ids(None)
        seed_slugs(None)
    raise AssertionError(f"{url}: reopened engine matches neither {reported} nor {reported + 1} replayed calls")


def _kill_loop(tmp_path, scheme: str, options: dict, kills: int) -> list[int]:
    rng = random.Random(os.getpid() ^ int(time.time()))
    counts = []
    for i in range(kills):
        path = tmp_path / f"crash-{i}.{scheme}"
        url = f"{scheme}:///{path}"
        seed = rng.randrange(1 << 30)
        target = rng.choice([0, 1, rng.randrange(2, 60), rng.randrange(60, 400)])
        child = subprocess.Popen(
            [sys.executable, __file__, url, str(seed), json.dumps(options)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=HERE,
        )
        reported = 0
        lines = child.stdout
        first = lines.readline()
        assert first == b"open\n", child.stderr.read().decode()[-2000:]
        while reported < target:
            line = lines.readline()
            if not line:
                break
            reported = int(line)
        # A random extra pause so the kill lands anywhere inside a call (or a save).
        time.sleep(rng.random() * 0.003)
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()  # reports written before the kill still count
        child.wait()
        for line in rest.split():
            reported = int(line)
        assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
        child.stdout.close()
        child.stderr.close()
        counts.append(_replay_matches(url, seed, reported))
    return counts


def test_sqlite_write_through_survives_sigkill(tmp_path):
    counts = _kill_loop(tmp_path, "sqlite", {}, KILLS)
    assert len(counts) >= 20
    assert max(counts) > 10  # the kills did land in the middle of real workloads


def test_sqlite_batched_survives_sigkill_at_a_batch_boundary(tmp_path):
    # Batched mode promises a consistent state as of some commit, not every call.
    for i in range(4):
        path = tmp_path / f"batched-{i}.db"
        url = f"sqlite:///{path}"
        seed = 1000 + i
        child = subprocess.Popen([sys.executable, __file__, url, str(seed), json.dumps({"batch": 10})],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=HERE)
        assert child.stdout.readline() == b"open\n"
        reported = 0
        while reported < 95 + 7 * i:
            reported = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()
        reopened = Engine.open(url, clock=make_clock())
        check_indexes(reopened)
        got = dump(reopened)
        reopened.close()
        seed_engine_ids(seed)
        try:
            replay = Engine(clock=make_clock())
            workload = Workload(seed)
            matched = 0 if dump(replay) == got else None
            for n in range(1, reported + 2):
                workload.step(replay)
                if dump(replay) == got:
                    matched = n
        finally:
            seed_ids(None)
            seed_slugs(None)
        # What survived is the state after some call (a batch boundary), and at most
        # about one batch (10 commits; a call makes at most one) short of the reports.
        assert matched is not None, "the batched file matches no prefix of the workload"
        assert reported - matched <= 12, (reported, matched)


def test_json_snapshot_survives_sigkill_during_save(tmp_path):
    # save_every=1: every call saves, so most kills land inside a save.
    counts = _kill_loop(tmp_path, "json", {"save_every": 1}, KILLS)
    assert len(counts) >= 20
    assert max(counts) > 10
    # A kill mid-save may leave a temporary file; the next open removed it.
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
