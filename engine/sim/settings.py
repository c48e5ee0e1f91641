"""`--set PATH=VALUE`: change keys of a workload before it is validated, for what-if
runs without editing the file (``--set 'work_pools[gpu-pool].concurrency_limit=1'``).

PATH is written as validation errors write it: keys joined by dots, list items
selected by ``[index]`` or ``[name]`` (a table whose ``name``, or ``tag`` for tag
limits, or ``pool`` for workers, equals it; more than one such item is an error).
A quoted name, ``["etl [v2]"]`` or ``['7']``, may hold brackets or be all digits.
Missing tables on the way are created; list items are not.
VALUE is a TOML value (``5``, ``true``, ``"5m"``, ``[1, 2]``, ``{ dist = "constant",
value = "5s" }``); anything that does not parse as one is taken as a string, so
``--set deployments[etl].schedule.interval=5m`` needs no quotes. The result is
validated as a whole afterwards, so a bad value is reported at its path like any
other workload error.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable

from ..errors import shown
from .errors import WorkloadError

__all__ = ["apply_settings", "parse_setting", "parse_path", "parse_value"]


def apply_settings(data: Any, settings: Iterable[str]) -> Any:
    """A deep copy of the raw workload `data` (the parsed TOML/JSON) with each
    ``PATH=VALUE`` setting applied in order; `data` itself is left alone. Raises
    WorkloadError naming the setting's path when it cannot be applied.
    O(size of data + total path length)."""
    settings = list(settings)
    if not settings:
        return data
    out = copy.deepcopy(data)
    for setting in settings:
        steps, value = parse_setting(setting)
        _assign(out, steps, value)
    return out


def parse_setting(setting: str) -> tuple[list[tuple[str, Any]], Any]:
    """``PATH=VALUE`` as (steps, value): steps are ("key", name) and ("item", index or
    name). O(len(setting))."""
    if not isinstance(setting, str) or "=" not in setting:
        raise WorkloadError("", f"a setting must look like PATH=VALUE (e.g. simulation.seed=7), got {shown(setting)}")
    path, _, text = setting.partition("=")
    return parse_path(path.strip(), setting), parse_value(text.strip())


def parse_path(path: str, setting: str) -> list[tuple[str, Any]]:
    """PATH as steps, ("key", name) or ("item", index or name); `setting` is what
    errors quote. O(len(path))."""
    steps: list[tuple[str, Any]] = []
    i, n = 0, len(path)
    key_expected = True
    while i < n:
        c = path[i]
        if c == "[":
            quote = path[i + 1:i + 2]
            if quote in ("'", '"'):  # a quoted name: ends at the quote before "]"
                end = path.find(quote + "]", i + 2)
                selector: Any = path[i + 2:end]
                end += 1
            else:
                end = path.find("]", i)
                selector = path[i + 1:end].strip()
                if selector.isdigit():
                    selector = int(selector)
            if end < 1 or not steps:
                raise WorkloadError(path, f"cannot read the path of setting {shown(setting)}: "
                                          "'[' must follow a key and be closed by ']'")
            if selector == "":
                raise WorkloadError(path, f"empty [] in setting {shown(setting)}: give an index or a name")
            steps.append(("item", selector))
            i = end + 1
            key_expected = False
        elif c == ".":
            if key_expected:
                raise WorkloadError(path, f"empty key in setting {shown(setting)}")
            i += 1
            key_expected = True
        else:
            if not key_expected:
                raise WorkloadError(path, f"cannot read the path of setting {shown(setting)}: "
                                          "a key must follow '.'")
            end = i
            while end < n and path[end] not in ".[":
                end += 1
            steps.append(("key", path[i:end].strip()))
            i = end
            key_expected = False
    if not steps or key_expected:
        raise WorkloadError(path, f"setting {shown(setting)} names no key")
    return steps


def parse_value(text: str) -> Any:
    """A setting's VALUE: a TOML value, or a bare word taken as a string."""
    from .workload import _toml  # (workload imports this module)

    try:
        return _toml.loads(f"value = {text}")["value"]
    except ValueError:
        return text  # a bare word: 5m, CoreTaskPolicy, my-pool


def _where(steps: list[tuple[str, Any]], upto: int) -> str:
    # The path of the first `upto` steps, as validation errors write it.
    out = ""
    for kind, name in steps[:upto]:
        out = (f"{out}.{name}" if out else name) if kind == "key" else f"{out}[{name}]"
    return out


def _label(item: Any) -> Any:
    # What names a list item: tag limits have a tag, workers only their pool.
    if isinstance(item, dict):
        return item.get("name", item.get("tag", item.get("pool")))
    return None


def _assign(data: Any, steps: list[tuple[str, Any]], value: Any) -> None:
    node = data
    last = len(steps) - 1
    for k, (kind, name) in enumerate(steps):
        if kind == "key":
            if not isinstance(node, dict):
                hint = ""
                if isinstance(node, list):   # `deployments.etl.paused`: meant an item
                    hint = (f" (pick an item by index or name: {_where(steps, k)}[0] or "
                            f"{_where(steps, k)}[{name}], in quotes if the name holds brackets)")
                raise WorkloadError(_where(steps, k), f"is a {type(node).__name__}, not a table: cannot set "
                                                      f"{shown(name)} in it{hint}")
            if k == last:
                node[name] = value
                return
            if name not in node:
                if steps[k + 1][0] == "item":
                    raise WorkloadError(_where(steps, k + 1), "no such list in the workload: a setting can change list items, not add them")
                node[name] = {}
            node = node[name]
            continue
        if not isinstance(node, list):
            raise WorkloadError(_where(steps, k), f"is a {type(node).__name__}, not a list: cannot select [{name}]")
        if isinstance(name, int):
            if name >= len(node):
                raise WorkloadError(_where(steps, k + 1), f"no such item: the list has {len(node)}")
            index = name
        else:
            matches = [i for i, item in enumerate(node) if _label(item) == name]
            if not matches:
                names = [_label(item) for item in node if _label(item) is not None]
                raise WorkloadError(_where(steps, k + 1), f"no item named {shown(name)} (named: "
                                                          f"{', '.join(map(repr, names)) or 'none'})")
            if len(matches) > 1:  # (workers of one pool; a duplicate name is reported by validation too)
                raise WorkloadError(_where(steps, k + 1), f"{len(matches)} items are named {shown(name)} "
                                                          f"(items {', '.join(map(str, matches))}): select one by index")
            index = matches[0]
        if k == last:
            node[index] = value
            return
        node = node[index]
