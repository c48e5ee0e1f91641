#!/usr/bin/env python
"""Dump the call signatures of Prefect 3.1.0's server models functions as JSON.

usage: "$PREFECT_VENV/bin/python" tests/oracle/prefect_signatures.py OUT.json [MODULE ...]

For each module of `prefect.server.models` that runstate's facade mirrors (default:
the ten in MODULES; or the MODULE names given), OUT gets every public function that
is defined in that module and returns a coroutine:

    {module: {function: [[name, kind, has_default, default_repr_or_null], ...]}}

`kind` is the `inspect.Parameter` kind name (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY, ...),
`default_repr_or_null` is `repr(default)` when there is a default, else null. Keys are
sorted and parameters keep their order, so the output is stable; the committed copy
is tests/data/prefect_model_signatures.json (read by tests/test_facade_signatures.py).

The parameters recorded are the ones a *caller* passes:

* `@db_injector` (prefect.server.database.dependencies) wraps with functools.wraps and
  calls `func(provide_database_interface(), *args, **kwargs)`, so inspect.signature
  (which follows `__wrapped__`) still shows a leading `db` that callers never pass.
  Each wrapper layer made by db_injector drops the first parameter of the layer below.
  The layers are recognised by their code object (that of db_injector's own wrappers),
  not by the parameter's name.
* Other wrappers made with functools.wraps pass arguments through unchanged (e.g.
  `@deprecated_parameter` on concurrency_limits_v2.bulk_read_or_create_concurrency_limits,
  whose wrapper is a plain `def` returning the coroutine: the function counts as a
  coroutine function because its innermost function is one).
* A parameter left named `db` after that (a different injection) stops the dump with
  an error rather than being recorded silently.

Prefect is imported inside a throwaway PREFECT_HOME (prefect_sandbox), so ~/.prefect
is neither read nor written. No database is used. The engine is never imported.
"""
from __future__ import annotations

import importlib
import inspect
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import prefect_sandbox  # noqa: E402,F401  (must come before any Prefect import)

# The modules of prefect.server.models that engine/models/ mirrors.
MODULES = (
    "concurrency_limits", "concurrency_limits_v2", "deployments", "flow_run_input", "flow_run_states",
    "flow_runs", "flows", "task_run_states", "task_runs", "workers",
)


def _db_injector_codes() -> set:
    """Code objects of the wrappers db_injector returns (async and sync)."""
    from prefect.server.database.dependencies import db_injector

    async def probe_async(db, x):  # pragma: no cover - never called
        pass

    def probe_sync(db, x):  # pragma: no cover - never called
        pass

    return {db_injector(probe_async).__code__, db_injector(probe_sync).__code__}


def caller_parameters(fn, injector_codes: set) -> list[inspect.Parameter]:
    """The parameters a caller passes to `fn`, db_injector's `db` removed (see above)."""
    layers = [fn]
    while hasattr(layers[-1], "__wrapped__"):
        layers.append(layers[-1].__wrapped__)
    params = list(inspect.signature(layers[-1], follow_wrapped=False).parameters.values())
    # Walk back out: each db_injector layer hides the first parameter of what it wraps.
    for layer in reversed(layers[:-1]):
        if getattr(layer, "__code__", None) in injector_codes:
            first = params.pop(0)
            assert first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD), (fn, first)
    params = [p for p in params if p.name != "self"]
    if any(p.name == "db" for p in params):
        raise SystemExit(f"{fn.__module__}.{fn.__name__}: a `db` parameter not injected by db_injector")
    return params


def dump_module(name: str, injector_codes: set) -> dict:
    module = importlib.import_module(f"prefect.server.models.{name}")
    out = {}
    for attr, fn in vars(module).items():
        if attr.startswith("_") or not callable(fn) or inspect.isclass(fn):
            continue
        inner = inspect.unwrap(fn)
        if getattr(inner, "__module__", None) != module.__name__ or not inspect.iscoroutinefunction(inner):
            continue  # imported from elsewhere, or not awaitable
        out[attr] = [
            [p.name, p.kind.name, p.default is not p.empty, None if p.default is p.empty else repr(p.default)]
            for p in caller_parameters(fn, injector_codes)
        ]
    return out


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    out_path, modules = argv[0], argv[1:] or MODULES
    import prefect

    codes = _db_injector_codes()
    data = {name: dump_module(name, codes) for name in modules}
    with open(out_path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    count = sum(map(len, data.values()))
    print(f"prefect {prefect.__version__}: {count} functions in {len(data)} modules -> {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
