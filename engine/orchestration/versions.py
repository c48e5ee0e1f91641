"""The `api-version` orchestration parameter: parsed without `packaging`.

Accepted forms: None (latest client), a version string like "0.8.4" (PEP 440
pre-, post- and dev-releases too: "0.8.4rc1"), a tuple of ints, or any object with
a `release` tuple (e.g. packaging's Version). A pre-release sorts below its
release, as packaging compares them: "0.8.4rc1" is an older client than "0.8.4".
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError, shown

__all__ = ["parse_api_version", "api_version_of", "V0_8_3", "V0_8_4"]

V0_8_3 = (0, 8, 3)
V0_8_4 = (0, 8, 4)

_cache: dict[Any, tuple[int, ...] | None] = {}

# PEP 440's public version form (packaging's spellings of pre/post/dev segments).
_PEP440 = re.compile(
    r"v?(?P<release>\d+(?:\.\d+)*)"
    r"(?P<pre>[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"
    r"(?P<post>-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?"
    r"(?P<dev>[-_.]?dev[-_.]?\d*)?"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?",   # a local label: sorts with its release here
    re.IGNORECASE | re.ASCII,
)
# Past every part a release can have: (0, 8, 3, _ABOVE) sits between 0.8.3.x and 0.8.4.
_ABOVE = 1 << 62


def _just_below(parts: tuple[int, ...]) -> tuple[int, ...]:
    """A tuple that compares below `parts` (normalised) and above every release
    before it: where a pre-release of `parts` sorts."""
    parts = tuple(parts)
    while parts and parts[-1] == 0:
        parts = parts[:-1]
    if not parts:
        return (-1,)   # a pre-release of 0: below every release
    return parts[:-1] + (parts[-1] - 1, _ABOVE)


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
        match = _PEP440.fullmatch(value.strip())
        if match is None:
            raise ValidationError(f"api-version must look like '0.8.4', got {shown(raw)}")
        parts = tuple(int(p) for p in match["release"].split("."))
        below = match["pre"] is not None or (match["dev"] is not None and match["post"] is None)
    elif isinstance(value, tuple) and value and all(isinstance(p, int) and not isinstance(p, bool) for p in value):
        parts, below = value, False
    elif isinstance(getattr(value, "release", None), tuple):
        parts = tuple(value.release)
        below = getattr(value, "pre", None) is not None or (
            getattr(value, "dev", None) is not None and getattr(value, "post", None) is None)
    else:
        raise ValidationError(f"api-version must be None, a 'X.Y.Z' string or a tuple of ints, got {shown(raw)}")
    if any(p < 0 for p in parts):
        raise ValidationError(f"api-version parts must be non-negative, got {shown(raw)}")
    result = _just_below(parts) if below else _normalise(parts)
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
