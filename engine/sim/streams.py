"""Random streams: every source of randomness in a simulation draws from a stream of
its own, seeded from the workload's seed and a stable identity, never from one
shared generator.

Why: a what-if run (same workload and seed, one setting changed) should differ
from the original by the effect of that setting only. With one shared stream, the
first event the setting moves hands every later draw to another run, and the two
reports differ by sampling noise as much as by the setting. With a stream per
identity (common random numbers), the same flow run draws the same name, start-up
time, task durations, failures, crash point, pause, cancellation and cache choices
in both runs, whatever order events come in.

Identities (each stream's seed is the string shown, after the workload's seed):

* a top-level flow run: its deployment (by name) and the date the scheduler made it
  for (``run:'etl':at:<µs from the start>``), or its ordinal among its deployment's
  arrivals (Poisson or `at`: ``arrival:<k>``) or among the runs automations created
  of it (``action:<k>``);
* a subflow run: its parent's identity, the parent's attempt and the task node that
  calls it (``<parent>/<attempt>.<node>``);
* a run driven again after it was let go (sent back to its work queue, a subflow
  loaded by a flow retry): its identity and how many times (``<identity>+<n>``);
* a deployment's arrival process (``arrivals:'name'``), a worker's start
  (``worker:name``) and a worker's failures (``failures:name``).

Seeds are strings: `random.Random` hashes a str with SHA-512, so a stream is the same
in every process whatever PYTHONHASHSEED is (`hash()` of a str would not be). A
stream costs ~5 µs to make: one per flow run is ~0.5 % of a run's simulation.
"""
from __future__ import annotations

import random

from ..records import seed_slugs

__all__ = ["Streams", "stream", "subflow_key", "revived_key", "seed_run_name"]


def stream(key: str) -> random.Random:
    """The stream of identity `key` (a full key, seed included)."""
    return random.Random(key)


def subflow_key(parent_key: str, attempt: int, node: int) -> str:
    """The identity of the subflow run that task node `node` of its parent's attempt
    `attempt` creates (at most one per node and attempt: a later attempt loads it
    or creates its own)."""
    return f"{parent_key}/{attempt}.{node}"


def revived_key(key: str, lives: int) -> str:
    """The identity of a run's `lives`-th stream (driven again after it was let go:
    its first stream was dropped with it, and this one draws afresh)."""
    return f"{key}+{lives}"


def seed_run_name(rng: random.Random) -> None:
    """Make the name the engine draws for the next flow run it creates (a random
    two-word slug) come from `rng`, a run's stream, rather than from the order in
    which runs are created. Costs one draw and a reseed (~3 µs)."""
    seed_slugs(rng.getrandbits(64))


class Streams:
    """The identities of one simulation's streams, under its seed."""

    __slots__ = ("seed",)

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def run_prefix(self, deployment: str) -> str:
        """The common start of the identities of `deployment`'s runs (made once per
        deployment; the name is quoted so that no name can pass for another's key)."""
        return f"{self.seed}:run:{deployment!r}"

    @staticmethod
    def scheduled_run(prefix: str, t: float) -> str:
        """A run the scheduler made for `t` seconds from the start (a deployment never
        has two auto-scheduled runs for one date)."""
        return f"{prefix}:at:{round(t * 1e6)}"

    @staticmethod
    def arrival_run(prefix: str, k: int) -> str:
        """The run of the deployment's `k`-th arrival (Poisson or `at`, from 0)."""
        return f"{prefix}:arrival:{k}"

    @staticmethod
    def action_run(prefix: str, k: int) -> str:
        """The `k`-th run automations created of the deployment (from 0)."""
        return f"{prefix}:action:{k}"

    def arrivals(self, deployment: str) -> random.Random:
        """The gaps of `deployment`'s Poisson arrivals."""
        return stream(f"{self.seed}:arrivals:{deployment!r}")

    def worker(self, name: str) -> random.Random:
        """What is drawn about a worker itself: the offset of its first poll."""
        return stream(f"{self.seed}:worker:{name}")

    def failures(self, name: str) -> random.Random:
        """A worker's up and repair times (the key predates the other streams: kept,
        so that a worker's failures are what they were)."""
        return stream(f"{self.seed}:failures:{name}")
