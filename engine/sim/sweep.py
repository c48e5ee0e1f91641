"""`--sweep PATH=V1,V2,...`: one workload and seed simulated once per value (the
product of several sweeps), and the headline figures of the runs side by side
(also for reports written earlier: `python -m engine compare`).

A sweep is a `--set` (engine/sim/settings.py) with several values: commas split
them except inside brackets, braces or quotes, so TOML lists and tables work as
values (``--sweep 'flows[etl].tasks[a].retry_delay=[1, 2],[5, 10]'``).
"""
from __future__ import annotations

import itertools
import json
import os
from typing import Any, Callable, Sequence

from .durations import format_duration
from ..errors import shown
from .errors import WorkloadError
from .metrics import peak_entries
from .settings import parse_path

__all__ = ["parse_sweep", "sweep_variants", "comparison_text", "read_reports"]


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """``PATH=V1,V2,...`` as (PATH, ["V1", "V2", ...]); checks the path's syntax.
    O(len(text))."""
    if not isinstance(text, str) or "=" not in text:
        raise WorkloadError("", f"a sweep must look like PATH=V1,V2,... (e.g. simulation.seed=1,2,3), got "
                                f"{shown(text)}")
    path, _, values = text.partition("=")
    path = path.strip()
    parse_path(path, text)  # the path's syntax, reported as for --set
    parts, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(values):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(values[start:i].strip())
            start = i + 1
    parts.append(values[start:].strip())
    if any(not p for p in parts):
        raise WorkloadError(path, f"empty value in sweep {shown(text)}")
    if len(set(parts)) != len(parts):
        raise WorkloadError(path, f"a value is repeated in sweep {shown(text)}")
    return path, parts


def sweep_variants(sweeps: Sequence[str]) -> list[tuple[str, ...]]:
    """The ``PATH=VALUE`` settings of every variant: the product of the sweeps, the
    first sweep varying slowest. O(variants · sweeps)."""
    parsed = [parse_sweep(sweep) for sweep in sweeps]
    paths = [path for path, _ in parsed]
    if len(set(paths)) != len(paths):
        raise WorkloadError(paths[0], "the same path is swept twice: give its values in one --sweep")
    axes = [[f"{path}={value}" for value in values] for path, values in parsed]
    return [tuple(combo) for combo in itertools.product(*axes)]


def _pct(key: str, which: str) -> Callable[[dict], str]:
    def get(report: dict) -> str:
        p = report[key]
        return "-" if not p.get("count") else format_duration(p[which])
    return get


def _count(*keys: str) -> Callable[[dict], str]:
    def get(report: dict) -> str:
        value: Any = report
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return "-"  # (a report written before this figure was)
        return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    return get


def _top_level(state: str) -> Callable[[dict], str]:
    # Top-level runs in `state` at the end, as the "flow runs created" row above
    # counts them. A report written before they were counted apart has only all
    # flow runs' counts: the same figure when it made no subflow runs, else "-".
    def get(report: dict) -> str:
        runs = report["flow_runs"]
        counts = runs.get("top_level_by_state")
        if counts is None:
            counts = runs["by_state"] if not runs.get("subflow_runs") else {}
        value = counts.get(state)
        return "-" if value is None else f"{value:,}"
    return get


def _workers(key: str) -> Callable[[dict], str]:
    # Reports written before workers were reported on show "-" here.
    def get(report: dict) -> str:
        value = report.get("workers", {}).get(key)
        if value is None:
            return "-"
        return f"{100 * value:.2f}%" if key == "availability" else f"{value:,}"
    return get


def _automations(key: str) -> Callable[[dict], str]:
    # Summed over the report's automations; "-" for reports without any.
    def get(report: dict) -> str:
        rows = report.get("automations")
        return f"{sum(row[key] for row in rows.values()):,}" if rows else "-"
    return get


def _flow_runs_by_actions(key: str) -> Callable[[dict], str]:
    # Runs deleted by a deployment's pause, or sent back to their work queue (only
    # automations' actions do either here); "-" for none, so that the row can go.
    def get(report: dict) -> str:
        value = report["flow_runs"].get(key)
        return f"{value:,}" if value else "-"
    return get


def _target_missed(report: dict) -> str:
    # Runs created of the run target, for a run that stopped short of it (runs that
    # met theirs, or had none, and reports from before `stopped_by` existed show "-").
    target = report.get("workload", {}).get("runs")
    if target is None or report.get("simulated", {}).get("stopped_by") not in ("until", "max_time"):
        return "-"
    return f"{report['flow_runs']['created']:,} of {target:,}"


_ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("flow runs created", _count("flow_runs", "created")),
    ("  finished", _count("flow_runs", "finished")),
    ("  completed", _top_level("COMPLETED")),
    ("  failed", _top_level("FAILED")),
    ("  crashed", _top_level("CRASHED")),
    ("  cancelled", _top_level("CANCELLED")),
    ("completed / simulated hour", _count("throughput", "completed_flow_runs_per_hour")),
    ("lateness p50", _pct("lateness_seconds", "p50")),
    ("  p90", _pct("lateness_seconds", "p90")),
    ("  p99", _pct("lateness_seconds", "p99")),
    ("  max", _pct("lateness_seconds", "max")),
    ("queue wait p90", _pct("queue_wait_seconds", "p90")),
    ("  p99", _pct("queue_wait_seconds", "p99")),
    ("flow run time p50", _pct("flow_run_time_seconds", "p50")),
    ("  p90", _pct("flow_run_time_seconds", "p90")),
    ("runs marked late", _count("events", "late_marked")),
    ("task retries", _count("retries", "task")),
    ("cache hits", _count("cache_hits")),
    ("tag-slot waits", _count("concurrency", "tag_slot_waits")),
    ("deployment-slot waits", _count("concurrency", "deployment_slot_waits")),
    ("pool/queue-limit deferrals", _count("concurrency", "pool_or_queue_limit_deferrals")),
    ("worker-limit deferrals", _count("concurrency", "worker_limit_deferrals")),
    ("worker outages", _workers("outages")),
    ("  failures", _workers("failures")),
    ("  availability", _workers("availability")),
    ("  runs crashed with them", _workers("runs_crashed")),
    ("  runs lost with them", _workers("runs_lost")),
]
# Rows of a feature: left out when none of the reports compared used it.
_OPTIONAL_ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("run target NOT reached", _target_missed),
    ("automations triggered", _automations("triggered")),
    ("  actions failed", _automations("actions_failed")),
    ("  runs deleted by pauses", _flow_runs_by_actions("deleted")),
    ("  runs rescheduled", _flow_runs_by_actions("rescheduled")),
]


def _peaks_of(report: Any) -> dict[tuple[str, str], dict[str, Any]]:
    # A report's peak entries by (kind, name); none for a report from before peaks
    # were kept, or for what is not a report (its _ROWS cells raise).
    peak = report.get("concurrency", {}).get("peak") if isinstance(report, dict) else None
    return {(kind, name): row for kind, name, row in peak_entries(peak)} if isinstance(peak, dict) else {}


def _peak_rows(reports: Sequence[dict]) -> list[tuple[str, Callable[[dict], str]]]:
    # "peak <kind> <name>" for each pool, queue, deployment or tag that has a limit
    # in some report compared: "n of limit" ("-" where a report has no such entry).
    # A limit swept shows beside how much of it was used.
    keys = {key: None for report in reports for key, row in _peaks_of(report).items() if row["limit"] is not None}

    def getter(key: tuple[str, str]) -> Callable[[dict], str]:
        def get(report: dict) -> str:
            row = _peaks_of(report).get(key)
            return f"{row['peak']:,} of {row['limit']}" if row else "-"
        return get
    return [(f"peak {kind} {name}", getter((kind, name))) for kind, name in keys]


def _column(report: dict, rows: list[tuple[str, Callable[[dict], str]]] | None = None) -> list[str]:
    # One report's cells, row by row (by default its own rows); KeyError or
    # TypeError if it is not a report.
    if rows is None:
        rows = _ROWS + _OPTIONAL_ROWS + _peak_rows([report])
    return [get(report) for _, get in rows]


def comparison_text(labels: Sequence[str], reports: Sequence[dict]) -> str:
    """The headline figures of each report in a column of its own, under a legend
    of the `labels` (a variant's settings, a report's path). Raises KeyError or
    TypeError for a dict that is not a report. O(reports · rows)."""
    names = [f"#{i + 1}" for i in range(len(reports))]
    rows = _ROWS + _OPTIONAL_ROWS + _peak_rows(reports)
    columns = [_column(report, rows) for report in reports]
    table = [(label, [column[r] for column in columns]) for r, (label, _) in enumerate(rows)]
    table = table[:len(_ROWS)] + [(label, cells) for label, cells in table[len(_ROWS):] if set(cells) != {"-"}]
    lines = ["Compared:"] + [f"  {name}  {label}" for name, label in zip(names, labels)]
    widths = [max(len(name), *(len(cells[i]) for _, cells in table)) for i, name in enumerate(names)]
    first = max(28, *(len(label) for label, _ in table))   # (peak rows carry the workload's names)
    lines += ["", f"  {'':<{first}}" + "".join(f" {name:>{w}}" for name, w in zip(names, widths))]
    for label, cells in table:
        lines.append(f"  {label:<{first}}" + "".join(f" {cell:>{w}}" for cell, w in zip(cells, widths)))
    return "\n".join(lines)


def read_reports(paths: Sequence[str]) -> list[tuple[str, dict]]:
    """(label, report) for each path: a report.json, a folder holding one, or a sweep's
    folder (its variants, in order). The label names the file, the workload, its
    seed and settings. Raises WorkloadError naming a path that holds no report.
    O(size of the files)."""
    out: list[tuple[str, dict]] = []
    for path in paths:
        index = os.path.join(path, "sweep.json")
        if os.path.isdir(path) and os.path.isfile(index) and not os.path.isfile(os.path.join(path, "report.json")):
            try:
                with open(index, encoding="utf-8") as fh:
                    folders = [v["folder"] for v in json.load(fh)["variants"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise WorkloadError(index, f"is not a sweep index: {exc}") from None
            out += read_reports([os.path.join(path, folder) for folder in folders])
            continue
        file = os.path.join(path, "report.json") if os.path.isdir(path) else path
        try:
            with open(file, encoding="utf-8") as fh:
                report = json.load(fh)
            wl = report["workload"]
            label = f"{file}: {wl['name']} (seed {wl['seed']})"
            if wl.get("settings"):
                label += " with " + ", ".join(wl["settings"])
            _column(report)  # every figure the table reads is there
        except OSError as exc:
            raise WorkloadError(file, f"cannot read a report: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkloadError(file, f"is not a simulation report.json ({type(exc).__name__}: {exc})") from None
        out.append((label, report))
    return out
