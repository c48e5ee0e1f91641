"""Crash tests: a child process drives a seeded workload against a durable engine and
reports every call that returned; the parent SIGKILLs it at a random moment, reopens
the file and replays the workload in memory.

The reopened engine must equal the replay after exactly the reported calls, or after
one more (the call in flight may have committed before its report was written), and
its indexes must agree with a brute-force scan. The child is a fork of the test process.
"""
from __future__ import annotations

import fcntl
import itertools
import os
import random
import signal
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_backends_support import (  # noqa: E402
    Workload, check_indexes, dump, make_clock, names_in_the_file_alone, seed_engine_ids,
)

from engine import Engine  # noqa: E402
from engine.records import seed_slugs  # noqa: E402
from engine.states import seed_ids  # noqa: E402

KILLS = 22


def _child(url: str, seed: int, options: dict, out: int) -> None:
    """The workload driver: reports each returned call on fd `out`; runs until killed."""
    seed_engine_ids(seed)
    engine = Engine.open(url, clock=make_clock(), **options)
    workload = Workload(seed)
    os.write(out, b"open\n")
    n = 0
    while True:
        workload.step(engine)
        n += 1
        os.write(out, b"%d\n" % n)  # unbuffered: the parent sees it as soon as the call returned


def _spawn(url: str, seed: int, options: dict) -> tuple[int, "object"]:
    """Fork a child running `_child`; returns (pid, reader of its reports)."""
    return _fork(lambda out: _child(url, seed, options, out))


def _fork(run) -> tuple[int, "object"]:
    """Fork a child running `run(fd it reports on)`; returns (pid, reader of its
    reports). A fork starts in a millisecond with everything imported, where a fresh
    interpreter takes a third of a second; 40+ kills per run make that the difference."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_fd)
            run(write_fd)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(write_fd)
    return pid, os.fdopen(read_fd, "rb")


def _kill(pid: int) -> int:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return status


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


def _kill_loop(tmp_path, scheme: str, options: dict, kills: int, longest: int,
               mid_save: list | None = None) -> list[int]:
    """Kill `kills` children at random points; returns how many calls each had made
    durable. Kills that interrupted a JSON save are listed in `mid_save`."""
    mid_save = [] if mid_save is None else mid_save
    rng = random.Random(os.getpid() ^ int(time.time()))
    counts = []
    for i in range(kills):
        path = tmp_path / f"crash-{i}.{scheme}"
        url = f"{scheme}:///{path}"
        seed = rng.randrange(1 << 30)
        target = rng.choice([0, 1, rng.randrange(2, longest // 6), rng.randrange(longest // 6, longest)])
        pid, lines = _spawn(url, seed, options)
        reported = 0
        first = lines.readline()
        assert first == b"open\n", "child failed to open (see stderr)"
        while reported < target:
            line = lines.readline()
            if not line:
                break
            reported = int(line)
        # A random extra pause so the kill lands anywhere inside a call (or a save).
        time.sleep(rng.random() * 0.003)
        status = _kill(pid)
        for line in lines.read().split():  # reports written before the kill still count
            reported = int(line)
        lines.close()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "child died on its own"
        if any(name.startswith(f".{path.name}.") and name.endswith(".tmp") for name in os.listdir(tmp_path)):
            mid_save.append(i)  # the kill interrupted a snapshot save
        counts.append(_replay_matches(url, seed, reported))
    return counts


def test_sqlite_write_through_survives_sigkill(tmp_path):
    counts = _kill_loop(tmp_path, "sqlite", {}, KILLS, longest=400)
    assert len(counts) >= 20
    assert max(counts) > 10  # the kills did land in the middle of real workloads


def test_sqlite_batched_survives_sigkill_at_a_batch_boundary(tmp_path):
    # Batched mode promises a consistent state as of some commit, not every call.
    for i in range(4):
        path = tmp_path / f"batched-{i}.db"
        url = f"sqlite:///{path}"
        seed = 1000 + i
        pid, lines = _spawn(url, seed, {"batch": 10})
        assert lines.readline() == b"open\n"
        reported = 0
        while reported < 95 + 7 * i:
            reported = int(lines.readline())
        _kill(pid)
        for line in lines.read().split():
            reported = int(line)
        lines.close()
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
    # Each call fsyncs a whole snapshot, so runs are kept shorter.
    mid_save: list[int] = []
    counts = _kill_loop(tmp_path, "json", {"save_every": 1}, KILLS, longest=120, mid_save=mid_save)
    assert len(counts) >= 20
    assert max(counts) > 10
    assert mid_save, "no kill landed inside a save"
    # A kill mid-save may leave a temporary file; the next open removed it.
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def _closing_child(path: str, out: int) -> None:
    """Open, commit three flows and close, over and over, reporting each commit that
    returned. Every other close is under a reader's lock (held on a descriptor kept
    open: closing one would drop the writer's locks), so it leaves the -wal for the
    next open; every third cycle a read-only open follows, removing what stayed."""
    from backends.sqlite import _range_lock, _shared_lock

    url = f"sqlite:///{path}"
    fd = os.open(path, os.O_RDONLY)
    n = 0
    for cycle in itertools.count():
        engine = Engine.open(url)
        for _ in range(3):
            engine.create_flow(f"flow-{n}")
            n += 1
            os.write(out, b"%d\n" % n)
        if cycle % 2:
            _shared_lock(fd, path)
        engine.close()
        _range_lock(fd, fcntl.F_UNLCK, 0, 0)
        if cycle % 3 == 0:
            Engine.open(url, read_only=True).close()


def test_sqlite_close_survives_sigkill(tmp_path):
    """Killed anywhere in opening, committing, emptying the -wal into the file, closing
    (under a reader or not) or a read-only open removing what a close left: every
    reported commit is there, for a reader and for the writer reopening, and that
    writer's close leaves the file alone."""
    rng = random.Random(os.getpid() ^ int(time.time()))
    counts = []
    for i in range(KILLS):
        (tmp_path / str(i)).mkdir()
        path = tmp_path / str(i) / "runs.db"
        with Engine.open(f"sqlite:///{path}"):
            pass
        pid, lines = _fork(lambda out: _closing_child(str(path), out))
        target = rng.randrange(60)
        reported = 0
        while reported < target:
            line = lines.readline()
            assert line, "the child died (see stderr)"
            reported = int(line)
        time.sleep(rng.random() * 0.01)  # a cycle takes a few milliseconds: land anywhere in it
        status = _kill(pid)
        for line in lines.read().split():
            reported = int(line)
        lines.close()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "child died on its own"
        with Engine.open(f"sqlite:///{path}", read_only=True) as reader:
            names = {f.name for f in reader.read_flows()}
        assert names in ({f"flow-{n}" for n in range(reported)}, {f"flow-{n}" for n in range(reported + 1)})
        with Engine.open(f"sqlite:///{path}") as writer:
            check_indexes(writer)
            assert {f.name for f in writer.read_flows()} == names
        assert sorted(os.listdir(path.parent)) == ["runs.db", "runs.db.lock"]
        assert names_in_the_file_alone(path) == names
        counts.append(len(names))
    assert max(counts) > 20
