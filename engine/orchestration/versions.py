"""The `api-version` orchestration parameter: parsed without `packaging`.

Accepted forms: None (latest client), a dotted string like "0.8.4", a tuple of
ints, or any object with a `release` tuple (e.g. packaging's Version).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError, shown

__all__ = ["parse_api_version", "api_version_of", "V0_8_3", "V0_8_4"]

V0_8_3 = (0, 8, 3)
V0_8_4 = (0, 8, 4)

_cache: dict[Any, tuple[int, ...] | None] = {}


def _normalise(parts: tuple[int, ...]) -> tuple[int, ...]:
    # "0.8" == "0.8.0" and "0.8.4.0" == "0.8.4", as version comparison expects.
    parts = tuple(parts) + (0,) * max(0, 3 - len(parts))
    while len(parts) > 3 and parts[-1] == 0:
        parts = parts[:-1]
    return parts


def parse_api_version(value: Any) -> tuple[int, ...] | None:
    """A comparable tuple for an api-version value, or None. O(len) (cached for strings)."""
    if value is None:
        return None
    try:
        return _cache[value]
    except (KeyError, TypeError):
        pass
    raw = value
    if isinstance(value, str):
        text = value.strip()
        if text.lower().startswith("v"):
            text = text[1:]
        try:
            parts = tuple(int(p) for p in text.split("."))
        except ValueError:
            raise ValidationError(f"api-version must look like '0.8.4', got {shown(raw)}") from None
    elif isinstance(value, tuple) and value and all(isinstance(p, int) and not isinstance(p, bool) for p in value):
        parts = value
    elif isinstance(getattr(value, "release", None), tuple):
        parts = tuple(value.release)
    else:
        raise ValidationError(f"api-version must be None, a 'X.Y.Z' string or a tuple of ints, got {shown(raw)}")
    if any(p < 0 for p in parts):
        raise ValidationError(f"api-version parts must be non-negative, got {shown(raw)}")
    result = _normalise(parts)
    try:
        _cache[raw] = result
    except TypeError:
        pass
    return result


def api_version_of(parameters: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The parsed "api-version" of a context's parameters (None when absent)."""
    return parse_api_version(parameters.get("api-version"))


def is_latest_client(parameters: Mapping[str, Any]) -> bool:
    """True when the api-version is absent or >= 0.8.4 (pause/resuming semantics)."""
    version = api_version_of(parameters)
    return version is None or version >= V0_8_4
