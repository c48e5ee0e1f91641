"""Durations ("90s", "1h30m", "7d" or plain seconds) and duration distributions.

A distribution is compiled once into a `Dist` whose `sample(rng)` draws seconds
(never negative) from a seeded `random.Random`: the stream of the run or worker it
is drawn for (streams.py).
"""
from __future__ import annotations

import math
import random
import re
from typing import Any, Callable

from ..errors import shown
from ..validation import is_finite_number
from .errors import WorkloadError

__all__ = ["parse_duration", "Dist", "parse_dist", "format_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any, path: str, kind: str = "non-negative") -> float:
    """Seconds from a non-negative number or a string like "1h30m"; `kind` is what a
    negative one is told it must be ("positive" where zero is refused too). O(len)."""
    if isinstance(value, bool):
        raise WorkloadError(path, f"must be a duration (seconds or a string like '90s'), got {shown(value)}")
    if isinstance(value, (int, float)):
        if not is_finite_number(value) or value < 0:
            raise WorkloadError(path, f"must be a {kind} duration, got {shown(value)}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text.startswith("-"):
            raise WorkloadError(path, f"must be a {kind} duration, got {shown(value)}")
        pos, total = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if text and pos == len(text):
            if not math.isfinite(total):  # digits past float's range
                raise WorkloadError(path, f"must be a finite duration, got {shown(value)}")
            return total
        raise WorkloadError(path, f"is not a duration like '90s', '1h30m' or '7d': {shown(value)}")
    raise WorkloadError(path, f"must be a duration (seconds or a string like '90s'), got {type(value).__name__} "
                              f"{shown(value)}")


def format_duration(seconds: float) -> str:
    """A short human form: "2d03h", "1h05m", "42.0s"."""
    if seconds >= 86400:
        return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.1f}s"


class Dist:
    """A compiled distribution of durations (seconds). `mean` is its nominal mean."""

    __slots__ = ("kind", "params", "mean", "sample")

    def __init__(self, kind: str, params: dict[str, float], mean: float, sample: Callable[[random.Random], float]):
        self.kind = kind
        self.params = params
        self.mean = mean
        self.sample = sample

    def __repr__(self) -> str:
        return f"Dist({self.kind}, {self.params})"


_DIST_KEYS = {
    "constant": ({"value"}, set()),
    "uniform": ({"min", "max"}, set()),
    "exponential": ({"mean"}, {"min", "max"}),
    "normal": ({"mean", "std"}, {"min", "max"}),
    "lognormal": ({"mean", "std"}, {"min", "max"}),
}


def constant(seconds: float) -> Dist:
    return Dist("constant", {"value": seconds}, seconds, lambda rng: seconds)


def parse_dist(value: Any, path: str) -> Dist:
    """A Dist from a duration (constant) or a table ``{dist = "exponential", mean = "2s"}``.

    Kinds: constant(value), uniform(min, max), exponential(mean), normal(mean, std),
    lognormal(mean, std); the last three accept optional `min`/`max` clamps.
    """
    if not isinstance(value, dict):
        return constant(parse_duration(value, path))
    kind = value.get("dist", "constant")
    if not isinstance(kind, str) or kind not in _DIST_KEYS:
        raise WorkloadError(f"{path}.dist", f"unknown distribution {shown(kind)}; expected one of {sorted(_DIST_KEYS)}")
    required, optional = _DIST_KEYS[kind]
    for key in value:
        if key != "dist" and key not in required | optional:
            raise WorkloadError(f"{path}.{key}", f"unknown key for a {kind} distribution (allowed: {sorted(required | optional)})")
    for key in sorted(required):
        if key not in value:
            raise WorkloadError(f"{path}.{key}", f"is required for a {kind} distribution")
    p = {k: parse_duration(value[k], f"{path}.{k}") for k in value if k != "dist"}
    lo, hi = p.get("min", 0.0), p.get("max", math.inf)
    if lo > hi:
        raise WorkloadError(f"{path}.min", f"must not exceed max ({lo} > {hi})")

    def clamp(draw: Callable[[random.Random], float]) -> Callable[[random.Random], float]:
        if "min" not in p and "max" not in p:
            return lambda rng: max(0.0, draw(rng))
        return lambda rng: min(hi, max(lo, draw(rng)))

    if kind == "constant":
        return constant(p["value"])
    if kind == "uniform":
        a, b = p["min"], p["max"]
        return Dist(kind, p, (a + b) / 2, lambda rng: rng.uniform(a, b))
    if kind == "exponential":
        mean = p["mean"]
        if mean <= 0:
            return Dist(kind, p, 0.0, lambda rng: lo)
        rate = 1.0 / mean
        return Dist(kind, p, mean, clamp(lambda rng: rng.expovariate(rate)))
    mean, std = p["mean"], p["std"]
    if kind == "normal":
        return Dist(kind, p, mean, clamp(lambda rng: rng.gauss(mean, std)))
    if mean <= 0:
        raise WorkloadError(f"{path}.mean", f"must be > 0 for a lognormal distribution, got {shown(value['mean'])}")
    # Parameters of the underlying normal giving this mean and standard deviation.
    ratio = std / mean
    sigma2 = math.log(1.0 + ratio * ratio)
    if not math.isfinite(sigma2):  # (a float's ** raises on overflow, its * gives inf)
        raise WorkloadError(f"{path}.std", f"is too large for a lognormal distribution of mean {shown(value['mean'])}: "
                                           f"got {shown(value['std'])}")
    mu, sigma = math.log(mean) - sigma2 / 2, math.sqrt(sigma2)
    return Dist(kind, p, mean, clamp(lambda rng: rng.lognormvariate(mu, sigma)))
