"""Shared by the replays of the work-pool corpora (tests/test_workers_oracle.py,
tests/test_foreman_oracle.py) and the tests that pin the oracle generators: the
answers' time origin and error form, and loading a generator script from
tests/oracle/ (standard library only, so no Prefect is needed)."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import pathlib
import sys
import uuid
from types import ModuleType
from typing import Any

T0 = dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc)   # what the workers' and foreman's oracles call 0 ms


def ms_of(t: dt.datetime | None) -> int | None:
    return None if t is None else round((t - T0).total_seconds() * 1000)


# The id a replay passes for a label its scenario never created.
MISSING = uuid.UUID("00000000-0000-0000-0000-000000000001")


def id_of(table: dict, key: Any) -> uuid.UUID:
    """The id of the record the replay made for `key`, or MISSING."""
    return table[key].id if key in table else MISSING


def is_error(answer: Any) -> bool:
    """Whether an oracle answer is Prefect's error ({"error": "<Class>: <message>"})."""
    return isinstance(answer, dict) and set(answer) == {"error"}


def errors_as_one(value):
    # Any error answer is "error" (Prefect's classes are its own), also inside a list.
    if is_error(value):
        return "error"
    if isinstance(value, list):
        return [errors_as_one(v) for v in value]
    return value


DATA = pathlib.Path(__file__).parent / "data"


def read_answers(file_name: str) -> list[dict]:
    """The lines of a committed oracle answer file (tests/data/FILE_NAME), parsed."""
    return [json.loads(line) for line in (DATA / file_name).read_text(encoding="utf-8").splitlines()]


def load_oracle_script(name: str) -> ModuleType:
    """The module tests/oracle/<name>.py, loaded by path (tests/oracle is no package)."""
    path = pathlib.Path(__file__).parent / "oracle" / f"{name}.py"
    if str(path.parent) not in sys.path:  # the scripts import each other, as when run there
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)   # type: ignore[union-attr]
    return module


def generator_writes(script: str, args: list[str], out: pathlib.Path) -> list[str]:
    """The scenarios tests/oracle/<script>.py writes with `args` into `out`, each as
    one compact JSON text (a JSON list's items re-dumped; a JSON-lines file's lines
    as written), so a pin compares them text for text."""
    load_oracle_script(script).main([f"{script}.py", *args, str(out)])
    text = out.read_text(encoding="utf-8")
    if out.suffix == ".json":
        return [compact(item) for item in json.loads(text)]
    return text.splitlines()


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
