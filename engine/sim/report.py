"""The simulation report: `build_report` (simulated results only — deterministic,
written as report.json), `build_timings` (wall-clock costs, timings.json) and
`summary_text` (the readable summary the CLI prints)."""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from typing import Any

from ..states import TERMINAL_STATES as _FINAL, StateType
from .charts import CHART_FILES
from .durations import format_duration
from .metrics import STATE_ORDER, peak_entries
from .simulation import SimulationResult

__all__ = ["build_report", "build_timings", "summary_text", "write_report", "percentiles", "clear_report_folder",
           "report_folder_problem", "REPORT_FILES"]

# The files the simulator writes into a report folder (a sweep's index, sweep.json,
# by the command line), and the pattern of a sweep's variant folders.
REPORT_FILES = frozenset({"report.json", "timings.json", "sweep.json", *CHART_FILES})
_VARIANT = re.compile(r"variant-[0-9]+")


def _r(x: float) -> float:
    # Fixed rounding keeps report.json byte-identical across platforms' float printing.
    return round(float(x), 3)


def percentiles(values: list[float]) -> dict[str, float | int]:
    """count, mean, p50/p90/p95/p99 (nearest rank) and max of `values`. O(n log n)."""
    if not values:
        return {"count": 0}
    data = sorted(values)
    n = len(data)

    def rank(p: float) -> float:
        return data[min(n - 1, max(0, math.ceil(p * n) - 1))]

    return {"count": n, "mean": _r(math.fsum(data) / n), "p50": _r(rank(0.50)), "p90": _r(rank(0.90)),
            "p95": _r(rank(0.95)), "p99": _r(rank(0.99)), "max": _r(data[-1])}


def _all_runs(result: SimulationResult) -> list[Any]:
    return [*result.runs, *result.subflow_runs]


def _by_state(runs: list[Any]) -> dict[str, int]:
    """The runs' current state types, counted as Metrics.flow_counts counts them (a
    deleted run is in no state): so the top-level and the subflow counts add up to
    `flow_runs.by_state`. O(runs)."""
    counts = dict.fromkeys(STATE_ORDER, 0)
    for run in runs:
        if not run.deleted and run.type in counts:
            counts[run.type] += 1
    return {s.value: counts[s] for s in STATE_ORDER}


def build_report(result: SimulationResult) -> dict[str, Any]:
    """Every simulated figure of a run, JSON-ready and deterministic. O(runs + task runs)."""
    wl, m = result.workload, result.metrics
    c = m.counters
    duration = result.end_seconds
    hours = duration / 3600.0 if duration > 0 else 0.0
    top = result.runs

    lateness, run_times = [], []
    late_by_deployment: dict[str, list[float]] = {}
    end = result.start + _dt.timedelta(seconds=duration)
    for run in top:
        rec = run.rec
        expected = rec.expected_start_time
        if expected is None or run.deleted:
            continue
        late = None
        if rec.start_time is not None:
            late = max(0.0, (rec.start_time - expected).total_seconds())
        elif rec.state_type not in _FINAL and expected < end:
            # Not started by the end: late by at least this much (Prefect's estimate).
            late = (end - expected).total_seconds()
        if late is not None:
            lateness.append(late)
            if run.dep is not None:
                late_by_deployment.setdefault(run.dep.spec.name, []).append(late)
        if rec.state_type in _FINAL and rec.start_time is not None:
            run_times.append(rec.total_run_time.total_seconds())
    task_times = []
    for run in _all_runs(result):
        for i, tr in enumerate(run.trs):
            if tr is not None and tr.state_type is StateType.COMPLETED and run.plan.nodes[i].subflow is None \
                    and tr.start_time is not None:
                task_times.append(tr.total_run_time.total_seconds())

    downtime = math.fsum(end - start for _, start, end in m.down_windows)
    workers = sum(w.count for w in wl.workers)
    completed_top = sum(1 for r in top if r.type is StateType.COMPLETED)
    # One bucket per started simulated hour: a 12 h run has 12, not a 13th empty one.
    per_hour = [0] * max(1, math.ceil(duration / 3600))
    for t in m.completed_at:
        per_hour[min(len(per_hour) - 1, int(t // 3600))] += 1

    columns = ["t"] + [f"flow_{s.value}" for s in STATE_ORDER] + [f"task_{s.value}" for s in STATE_ORDER]
    return {
        "workload": {
            "name": wl.name, "seed": wl.simulation.seed, "start": wl.simulation.start.isoformat(),
            "until_seconds": wl.simulation.until, "runs": wl.simulation.runs,
            # the time limit of a simulation that has only a run target (None otherwise)
            "max_time_seconds": wl.simulation.max_time if wl.simulation.until is None else None,
            "flow_policy": wl.policies.flow, "task_policy": wl.policies.task,
            "settings": list(wl.settings),
        },
        "simulated": {
            "duration_seconds": _r(duration), "end": end.isoformat(), "events": result.events,
            "interrupted": result.interrupted,
            # "until" (the simulated duration ran out), "runs" (the run target was
            # reached), "max_time" (a run target's time limit came first) or "interrupted"
            "stopped_by": result.stopped_by,
        },
        # what the summary warns of: a run target not reached, a workload that creates no runs
        "warnings": list(result.warnings),
        "flow_runs": {
            "created": c["flow_runs_created"], "finished": c["flow_runs_finished"],
            # runs no longer driven, in a final state or not (lost, aborted, deleted): what
            # a run target (`workload.runs`) counts
            "done": result.done,
            "subflow_runs": c["subflow_runs_created"],
            "subflow_runs_loaded": c["subflow_runs_loaded"],   # by flow retries, then proposed RUNNING again
            "deleted": c["flow_runs_deleted"],   # never run, deleted by a deployment's pause
            # sent back to SCHEDULED by an automation (or a resume) after being taken: taken again
            "rescheduled": c["flow_runs_rescheduled"],
            # Every flow run's state at the end, subflow runs included (the older key,
            # kept): the sum of the two below. `created`, `finished` and `done` count
            # top-level runs only; `subflow_runs` the subflow runs created.
            "by_state": {s.value: m.flow_counts[s] for s in STATE_ORDER},
            "top_level_by_state": _by_state(top),   # deleted runs left out
            "subflow_runs_by_state": _by_state(result.subflow_runs),
        },
        "task_runs": {
            "created": c["task_runs_created"], "attempts": c["task_attempts"],
            "by_state": {s.value: m.task_counts[s] for s in STATE_ORDER},
        },
        "throughput": {
            "completed_flow_runs_per_hour": _r(completed_top / hours) if hours else 0.0,
            "finished_flow_runs_per_hour": _r(c["flow_runs_finished"] / hours) if hours else 0.0,
            "finished_per_hour": per_hour,
        },
        "lateness_seconds": percentiles(lateness),
        "queue_wait_seconds": percentiles(m.queue_waits),
        "flow_run_time_seconds": percentiles(run_times),
        "task_run_time_seconds": percentiles(task_times),
        "retries": {"task": c["task_retries"], "flow": c["flow_retries"]},
        "cache_hits": c["cache_hits"],
        "concurrency": {
            "tag_slot_waits": c["tag_slot_waits"], "tag_slot_wait_seconds": _r(m.tag_wait_seconds),
            # slots the server's tag rule kept while answering WAIT, given back by the client
            "tag_slots_given_back": c["tag_slots_given_back"],
            "deployment_slot_waits": c["deployment_slot_waits"],
            "deployment_cancel_new": c["deployment_cancel_new"],
            "pool_or_queue_limit_deferrals": c["pool_limit_deferrals"],
            "worker_limit_deferrals": c["worker_limit_deferrals"],
            # the most runs at once beside each limit (None: unlimited): flow runs
            # PENDING or RUNNING per work pool and queue, PENDING, RUNNING or
            # CANCELLING per deployment, task runs RUNNING per tag with a limit
            "peak": m.peaks,
        },
        "events": {
            **{k: c[k] for k in (
                "late_marked", "scheduled_time_waits", "pauses", "resumes", "pause_timeouts", "task_not_ready",
                "cancellations_requested", "cancellations", "task_aborts", "flow_aborts",
            )},
            # Crashes a flow's crash_probability injected (into top-level or subflow
            # runs) that the engine took; not every run that ended CRASHED (worker
            # terminations, automations, a crashed parent's subflows): see the
            # CRASHED counts of flow_runs. `crashes` is its older name, kept.
            "injected_crashes": c["crashes"], "crashes": c["crashes"],
        },
        "workers": {
            "outages": c["worker_outages"],
            "failures": c["worker_failures"],
            # flow runs a worker took down with it ("crash": reported CRASHED; "lost":
            # left in their states; "requeued": lost while waiting for a retry, taken again)
            "runs_crashed": c["worker_runs_crashed"],
            "runs_lost": c["worker_runs_lost"],
            "runs_requeued": c["worker_runs_requeued"],
            "downtime_seconds": _r(downtime),
            # (share of worker time up: six places, as three would round a few minutes away)
            "availability": round(1.0 - downtime / (workers * duration), 6) if workers and duration > 0 else None,
            # workers down at each row of state_counts_over_time
            "down_over_time": m.workers_down_samples,
            "foreman": wl.foreman.enabled,
            "marked_offline": c["workers_marked_offline"],
            "pools_marked_not_ready": c["pools_marked_not_ready"],
            "queues_marked_not_ready": c["queues_marked_not_ready"],
            "deployments_marked_not_ready": c["deployments_marked_not_ready"],
        },
        # per deployment: its runs' outcomes and their lateness (the population of
        # lateness_seconds above, split by deployment)
        "deployments": {name: {**row, "lateness_seconds": percentiles(late_by_deployment.get(name, []))}
                        for name, row in sorted(m.by_deployment.items())},
        # per enabled automation: times its trigger fired, and its actions the engine
        # accepted (executed) or not (failed), as Prefect's action events count them
        "automations": result.automations,
        "rules": result.rule_stats.outcomes() if result.rule_stats is not None else {},
        "state_counts_over_time": {"columns": columns, "rows": m.samples},
    }


def build_timings(result: SimulationResult) -> dict[str, Any]:
    """Wall-clock costs: simulation speed and per-rule time (not deterministic)."""
    wall = result.wall_seconds or 1e-9
    c = result.metrics.counters
    return {
        "wall_seconds": round(wall, 3),
        "events": result.events,
        "events_per_second": round(result.events / wall, 1),
        "flow_runs_finished_per_second": round(c["flow_runs_finished"] / wall, 1),
        "task_runs_created_per_second": round(c["task_runs_created"] / wall, 1),
        "simulated_seconds_per_wall_second": round(result.end_seconds / wall, 1),
        "peak_memory_mib": (round(result.peak_memory_bytes / 2**20, 1)
                            if result.peak_memory_bytes is not None else None),
        "rules": result.rule_stats.timings() if result.rule_stats is not None else {},
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def clear_report_folder(directory: str) -> None:
    """Remove what an earlier report left in `directory` (if it exists): the files
    named in REPORT_FILES, and a sweep's variant-N folders, emptied of those files,
    then removed if nothing else is left in them. Nothing else is touched: a file of
    another name, a folder of another name or a symbolic link to a folder stays.
    O(entries)."""
    if not os.path.isdir(directory):
        return
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name in REPORT_FILES and (os.path.isfile(path) or os.path.islink(path)):
            os.remove(path)
        elif _VARIANT.fullmatch(name) and os.path.isdir(path) and not os.path.islink(path):
            clear_report_folder(path)
            if not os.listdir(path):
                os.rmdir(path)


def report_folder_problem(directory: str) -> str | None:
    """Why a report cannot be written to `directory`, or None. Creates nothing (so a
    run that fails leaves no empty folder behind): it looks at the folder, or at the
    nearest folder above it that exists, which write_report will create it in."""
    target = os.path.abspath(directory)
    path = target
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    where = "" if path == target else f" ({path})"
    if not os.path.isdir(path):
        return f"not a directory{where}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"not writable{where}"
    return None


def write_report(result: SimulationResult, directory: str, charts: bool = True,
                 report: dict[str, Any] | None = None, timings: dict[str, Any] | None = None) -> list[str]:
    """Write report.json, timings.json and (matplotlib permitting) PNG charts; returns
    paths. `directory` is created if missing; what an earlier report left there is
    removed first (clear_report_folder), so its charts or a longer sweep's variant
    folders are not taken for this one's. `report` / `timings`: the result's, when
    the caller has built them already."""
    os.makedirs(directory, exist_ok=True)
    clear_report_folder(directory)
    if report is None:
        report = build_report(result)
    if timings is None:
        timings = build_timings(result)
    paths = []
    for name, data in (("report.json", report), ("timings.json", timings)):
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(dumps(data))
        paths.append(path)
    if charts:
        from .charts import draw_charts

        paths.extend(draw_charts(report, directory))
    return paths


def _pct_line(label: str, p: dict[str, Any], population: str) -> str:
    # `population`: what the figures are taken over, said beside their count.
    if not p.get("count"):
        return f"  {label:<22} (none: no {population})"
    return (f"  {label:<22} p50 {format_duration(p['p50']):>7}  p90 {format_duration(p['p90']):>7}  "
            f"p99 {format_duration(p['p99']):>7}  max {format_duration(p['max']):>7}  (n={p['count']} {population})")


def summary_text(report: dict[str, Any], timings: dict[str, Any] | None = None) -> str:
    """The human-readable summary of a report (and, if given, its timings)."""
    wl, sim, fr, tr = report["workload"], report["simulated"], report["flow_runs"], report["task_runs"]
    lines = [
        f"Simulation of workload {wl['name']!r} (seed {wl['seed']}), "
        f"{format_duration(sim['duration_seconds'])} simulated from {wl['start']}"
        + (" — INTERRUPTED" if sim["interrupted"] else ""),
        *(["  with " + ", ".join(wl["settings"])] if wl.get("settings") else []),
        "",
        f"Flow runs: {fr['created']} top-level + {fr['subflow_runs']} subflow runs created, "
        f"{fr['finished']} top-level finished"
        + (f" ({fr['subflow_runs_loaded']} subflow runs loaded again by flow retries)"
           if fr.get("subflow_runs_loaded") else "")
        + (f", {fr['deleted']} deleted by deployment pauses" if fr.get("deleted") else "")
        + (f", {fr['rescheduled']} sent back to their queues and taken again" if fr.get("rescheduled") else ""),
        *_flow_state_lines(fr),
        (f"Task runs: {tr['created']} created (of top-level and subflow runs), "
         f"{tr['attempts']} attempts (accepted RUNNING proposals)"),
        "  by state: " + _states(tr["by_state"]),
        f"Throughput: {report['throughput']['completed_flow_runs_per_hour']:.1f} completed flow runs / simulated hour",
        *_state_table(report, "flow_", "flow runs, top-level and subflow"),
        *_state_table(report, "task_", "task runs"),
        "",
        "Timing (simulated):",
        # The populations of build_report: lateness of every top-level run due by the
        # end (one never started is late until the end), queue wait of each time a
        # worker took a run, run times of finished flow runs and COMPLETED task runs.
        _pct_line("lateness (start delay)", report["lateness_seconds"], "runs due, started or not"),
        _pct_line("queue wait", report["queue_wait_seconds"], "pickups by workers"),
        _pct_line("flow run time", report["flow_run_time_seconds"], "finished runs"),
        _pct_line("task run time", report["task_run_time_seconds"], "completed task runs"),
        "",
        f"Retries: {report['retries']['task']} task, {report['retries']['flow']} flow;  "
        f"cache hits: {report['cache_hits']}",
    ]
    cc = report["concurrency"]
    lines.append(
        f"Concurrency waits: {cc['tag_slot_waits']} tag-slot waits ({format_duration(cc['tag_slot_wait_seconds'])} total"
        + (f"; {cc['tag_slots_given_back']} slots the tag rule kept given back" if cc.get("tag_slots_given_back") else "")
        + "), "
        f"{cc['deployment_slot_waits']} deployment-slot waits, {cc['deployment_cancel_new']} cancelled by CANCEL_NEW, "
        f"{cc['pool_or_queue_limit_deferrals']} pool/queue-limit deferrals, "
        f"{cc['worker_limit_deferrals']} worker-limit deferrals"
    )
    lines += _peak_lines(cc.get("peak") or {})  # (reports written before peaks were kept have none)
    ev = report["events"]
    lines.append(
        f"Events: {ev['late_marked']} marked late, {ev['pauses']} pauses ({ev['pause_timeouts']} timed out), "
        f"{ev['cancellations']} cancellations, {ev['task_aborts'] + ev['flow_aborts']} aborted proposals"
    )
    crashes = _crashes_line(ev, fr)
    if crashes:
        lines.append(crashes)
    wk = report.get("workers")
    if wk and (wk["outages"] or wk.get("failures") or wk["foreman"]):
        parts = [f"{wk[key]} {key}" for key in ("outages", "failures") if wk.get(key)]
        line = "Workers: " + (", ".join(parts) or "no outages or failures")
        if wk.get("downtime_seconds") and wk.get("availability") is not None:
            line += f", {format_duration(wk['downtime_seconds'])} down in all (availability {100 * wk['availability']:.1f}%)"
        taken = [f"{wk[f'runs_{key}']} {key}" for key in ("crashed", "lost", "requeued") if wk.get(f"runs_{key}")]
        if taken:
            line += "; flow runs taken down with them: " + ", ".join(taken)
        if wk["foreman"]:
            line += (f"; the foreman marked {wk['marked_offline']} workers offline and "
                     f"{wk['pools_marked_not_ready']} pools, {wk['queues_marked_not_ready']} queues, "
                     f"{wk['deployments_marked_not_ready']} deployments not ready")
        lines.append(line)
    for name, row in (report.get("automations") or {}).items():
        lines.append(f"Automation {name!r}: triggered {row['triggered']} times, "
                     f"{row['actions_executed']} actions executed, {row['actions_failed']} failed")
    if report["deployments"]:
        lines += ["", "Per deployment:"]
        for name, row in report["deployments"].items():
            late = row.get("lateness_seconds") or {}  # (reports written before it was kept have none)
            lines.append(f"  {name:<24} created {row['created']:>6}  completed {row['COMPLETED']:>6}  "
                         f"failed {row['FAILED']:>4}  crashed {row['CRASHED']:>4}  cancelled {row['CANCELLED']:>4}")
            if late.get("count"):
                lines.append(f"  {'':<24} lateness p50 {format_duration(late['p50'])}  p90 {format_duration(late['p90'])}"
                             f"  max {format_duration(late['max'])}  (n={late['count']})")
    rules = report["rules"]
    if rules:
        rule_times = (timings or {}).get("rules", {})
        lines += ["", f"Orchestration rules{' (wall time)' if rule_times else ''}:",
                  f"  {'rule':<40} {'calls':>8} {'accept':>8} {'reject':>7} {'wait':>6} {'abort':>6}"
                  + (f" {'total ms':>9} {'mean µs':>8}" if rule_times else "")]
        for name, row in rules.items():
            if not row["calls"]:
                continue
            if row["kind"] == "transform":
                line = f"  {name:<40} {row['calls']:>8} {'(transform: always applies)':>30}"
            else:
                line = (f"  {name:<40} {row['calls']:>8} {row['accept']:>8} {row['reject']:>7} "
                        f"{row['wait']:>6} {row['abort']:>6}")
            if name in rule_times:
                line += f" {rule_times[name]['total_ms']:>9.1f} {rule_times[name]['mean_us']:>8.2f}"
            lines.append(line)
    if timings:
        lines += ["", f"Wall clock: {timings['wall_seconds']:.2f} s, {timings['events_per_second']:.0f} events/s, "
                      f"{timings['flow_runs_finished_per_second']:.0f} flow runs/s, "
                      f"{timings['simulated_seconds_per_wall_second']:.0f}x real time"
                      + _peak_memory(timings.get("peak_memory_mib"))]
    # Last, where they are seen (reports written before warnings existed have none).
    warnings = report.get("warnings") or []
    if warnings:
        lines.append("")
        lines += [f"WARNING: {text}" for text in warnings]
    return "\n".join(lines)


def _peak_lines(peaks: dict[str, Any]) -> list[str]:
    """'Peak at once' lines: every pool and tag, and the queues and deployments that
    have a limit (an unlimited queue or deployment adds little beside its pool)."""
    entries = peak_entries(peaks)
    shown = []
    for kind, title in (("pool", "work pools"), ("queue", "queues"), ("deployment", "deployments"), ("tag", "tags")):
        items = [f"{name} {row['peak']}" + (" (no limit)" if row["limit"] is None else f" of {row['limit']}")
                 for k, name, row in entries
                 if k == kind and (row["limit"] is not None or kind in ("pool", "tag"))]
        if items:
            shown.append(f"  {title:<12} {', '.join(items)}")
    if not shown:
        return []
    lines = ["Peak at once ('of N': the limit; flow runs pending or running, for deployments cancelling too; "
             "task runs running):", *shown]
    if any(kind != "tag" and row["limit"] is not None and row["peak"] > row["limit"] for kind, _, row in entries):
        lines.append("  (flow runs can outnumber a pool's, queue's or deployment's limit, as in Prefect 3.1.0: "
                     "a run that paused or waited for a flow retry runs again with no worker's poll and no "
                     "deployment slot)")
    return lines


def _peak_memory(mib: float | None) -> str:
    if mib is None:
        return ""
    return f", peak memory {mib / 1024:.2f} GiB" if mib >= 1024 else f", peak memory {mib:.0f} MiB"


def _flow_state_lines(fr: dict[str, Any]) -> list[str]:
    # The flow runs' states at the end, top-level and subflow runs apart, so that each
    # line's total is that of the "created" figure beside it (less deleted runs).
    if "top_level_by_state" not in fr:
        # (a report written before they were counted apart)
        return [f"  by state (all {sum(fr['by_state'].values())}, subflow runs included): "
                + _states(fr["by_state"])]
    top, sub = fr["top_level_by_state"], fr["subflow_runs_by_state"]
    deleted = f": {fr['created']} created less {fr['deleted']} deleted" if fr.get("deleted") else ""
    lines = [f"  top-level by state ({sum(top.values())}{deleted}): " + _states(top)]
    if fr.get("subflow_runs") or any(sub.values()):
        lines.append(f"  subflow runs by state ({sum(sub.values())}): " + _states(sub))
    return lines


def _crashes_line(ev: dict[str, Any], fr: dict[str, Any]) -> str:
    # Injected crashes are only some of the runs that end CRASHED (workers'
    # terminations, automations and crashed parents crash runs too), may hit subflow
    # runs and need not stay CRASHED: both figures, each named for what it counts.
    # Nothing when nothing crashed.
    injected = ev.get("injected_crashes", ev["crashes"])
    line = f"Crashes: {injected} injected by crash_probability"
    if "top_level_by_state" in fr:
        top, sub = fr["top_level_by_state"]["CRASHED"], fr["subflow_runs_by_state"]["CRASHED"]
        if not (injected or top or sub):
            return ""
        line += f"; flow runs CRASHED at the end, of any cause: {top} top-level, {sub} subflow runs"
    return line


def _state_table(report: dict[str, Any], prefix: str, what: str, rows_shown: int = 6) -> list[str]:
    """State counts over time as a small table: `rows_shown` samples spread evenly
    from the first to the last, one column per state some sample holds."""
    series = report.get("state_counts_over_time") or {}
    columns, rows = series.get("columns", []), series.get("rows", [])
    if not rows:
        return []
    k = min(rows_shown, len(rows))
    picks = sorted({round(i * (len(rows) - 1) / max(k - 1, 1)) for i in range(k)})
    shown = [(j, name[len(prefix):].lower()) for j, name in enumerate(columns)
             if name.startswith(prefix) and any(row[j] for row in rows)]
    if not shown:
        return []
    widths = [max(len(label), 6) for _, label in shown]
    lines = ["", f"State counts over time ({what}; {len(rows)} samples, {len(picks)} shown):",
             f"  {'time':>8}  " + "  ".join(f"{label:>{w}}" for (_, label), w in zip(shown, widths))]
    for i in picks:
        row = rows[i]
        lines.append(f"  {format_duration(row[0]):>8}  " + "  ".join(f"{row[j]:>{w}}" for (j, _), w in zip(shown, widths)))
    return lines


def _states(counts: dict[str, int]) -> str:
    parts = [f"{k.lower()} {v}" for k, v in counts.items() if v]
    return ", ".join(parts) if parts else "(none)"
