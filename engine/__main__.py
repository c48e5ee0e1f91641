"""Command line: ``python -m engine simulate [...]`` (also the ``runstate`` script),
``python -m engine compare REPORT...`` and ``python -m engine bench-rules [...]``.

Exit codes: 0 success, 2 bad input (arguments or workload), 1 other failures
(e.g. a store that cannot be opened), 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    # The console script says its own name in usage lines; `python -m engine` otherwise.
    prog = "runstate" if os.path.basename(sys.argv[0]) == "runstate" else "python -m engine"
    parser = argparse.ArgumentParser(prog=prog, description="runstate command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sim = sub.add_parser(
        "simulate", help="simulate a Prefect-style deployment on the engine",
        description="Run a workload in virtual time through the engine's orchestration and report "
                    "on it. Without --workload the built-in default workload runs (12 simulated hours).",
    )
    sim.add_argument("--workload", metavar="FILE", help="workload file (TOML or JSON); default: built in")
    sim.add_argument("--seed", type=int, help="random seed (overrides the workload's)")
    sim.add_argument("--until", metavar="DURATION",
                     help="simulated duration, e.g. 12h, 7d (replaces the workload's stop conditions, "
                          "its until and its runs)")
    sim.add_argument("--runs", type=int, metavar="N",
                     help="stop creating flow runs after N and run until they finish, within simulation.max_time "
                          "(30 simulated days unless set; a warning says when it came first) "
                          "(replaces the workload's stop conditions, its runs and its until; "
                          "--set simulation.runs=N keeps its until)")
    sim.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="settings",
                     help="change one key of the workload before it runs, e.g. "
                          "'work_pools[default-pool].concurrency_limit=2' (repeatable; see examples/README.md)")
    sim.add_argument("--sweep", action="append", default=[], metavar="PATH=V1,V2,...", dest="sweeps",
                     help="run once per value (the product of several --sweep) with the same seed and print "
                          "the runs' figures side by side; with --report, one folder per run")
    sim.add_argument("--store", metavar="URL", default="memory",
                     help="memory (default), sqlite:///path.db or json:///path.json to keep the result")
    sim.add_argument("--report", metavar="DIR", help="write report.json, timings.json and PNG charts into DIR")
    sim.add_argument("--no-charts", action="store_true", help="with --report: skip the PNG charts")
    sim.add_argument("--no-rule-stats", action="store_true", help="do not time and count each orchestration rule")
    sim.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                     help="progress bar on stderr (auto: only on a terminal)")
    sim.add_argument("--print-workload", action="store_true", help="print the built-in workload (TOML) and exit")
    sub.add_parser("bench-rules", help="benchmark orchestration rules (see: bench-rules --help)", add_help=False)
    compare = sub.add_parser(
        "compare", help="the headline figures of simulation reports side by side",
        description="Print the headline figures of simulation reports side by side: each REPORT is a "
                    "report.json, a --report folder, or a --sweep's --report folder (all its variants).",
    )
    compare.add_argument("reports", nargs="+", metavar="REPORT")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m engine` and the `runstate` console script."""
    try:
        return _command(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # Output piped into e.g. `head`, which has stopped reading: stop quietly, as
        # Unix tools do (stdout to /dev/null, so the exit's flush cannot fail again).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _command(args_list: list[str]) -> int:
    if args_list and args_list[0] == "bench-rules":
        # Lazily imported: the rule benchmark lives in its own module.
        from . import rulebench

        return int(rulebench.main(args_list[1:]) or 0)
    parser = _build_parser()
    args = parser.parse_args(args_list)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "compare":
        from .sim.errors import WorkloadError
        from .sim.sweep import comparison_text, read_reports

        try:
            loaded = read_reports(args.reports)
        except WorkloadError as exc:
            return _error(str(exc))
        print(comparison_text([label for label, _ in loaded], [report for _, report in loaded]))
        return 0
    parser.print_help()
    return 2


def _note_stop_set_aside(workload: Any, until: float | None, runs: int | None) -> None:
    """Tell on stderr when --runs / --until sets aside the file's other stop condition."""
    from .sim.durations import format_duration

    spec = workload.simulation
    if runs is not None and spec.until is not None:
        print(f"note: --runs {runs} replaces the workload's stop conditions: its simulation.until "
              f"({format_duration(spec.until)}) is set aside (--set simulation.runs={runs} keeps it)",
              file=sys.stderr)
    elif until is not None and spec.runs is not None:
        print(f"note: --until replaces the workload's stop conditions: its simulation.runs ({spec.runs:,}) "
              "is set aside (--set simulation.until=... keeps it)", file=sys.stderr)


# The simulation keys each command-line option sets. --until and --runs each replace
# both stop conditions (the other one is set aside, i.e. set to none), so either
# clashes with a --set or --sweep of either key.
_OPTION_KEYS = {"--seed": ("seed",), "--until": ("until", "runs"), "--runs": ("runs", "until")}
_SETS = {"seed": "the seed", "until": "the simulated duration", "runs": "the run target"}


def _option_conflict(args: argparse.Namespace, until: float | None) -> str | None:
    """The usage error when --seed, --until or --runs sets a simulation key that a
    --set or --sweep also sets, else None. The option would win silently, while the
    summary and a sweep's labels named the setting's value, never used."""
    options = [option for option, value in (("--seed", args.seed), ("--until", until), ("--runs", args.runs))
               if value is not None]
    if not options:
        return None
    for kind, text in [*(("--set", s) for s in args.settings), *(("--sweep", s) for s in args.sweeps)]:
        for key, name in _simulation_keys(kind, text):
            for option in options:
                own, *aside = _OPTION_KEYS[option]
                if key == own:
                    return f"{option} and {kind} {name} both set {_SETS[key]}: give one"
                if key in aside:
                    value = args.runs if option == "--runs" else args.until
                    return (f"{option} and {kind} {name} both set the stop conditions ({option} sets the "
                            f"workload's simulation.{key} aside): give one, or keep both with "
                            f"--set simulation.{own}={value} in place of {option}")
    return None


def _simulation_keys(kind: str, text: str) -> list[tuple[str, str]]:
    """(key, name as the error says it) of each simulation key a --set or --sweep
    `text` sets: `simulation.KEY=...`, or the keys of a table given for `simulation`
    as a whole. A malformed `text` raises the WorkloadError the workload would."""
    from .sim.settings import parse_path, parse_setting, parse_value
    from .sim.sweep import parse_sweep

    if kind == "--set":
        steps, value = parse_setting(text)
        values = [value]
    else:
        path, texts = parse_sweep(text)
        steps, values = parse_path(path, text), [parse_value(v) for v in texts]
    if not steps or steps[0] != ("key", "simulation"):
        return []
    if len(steps) == 2 and steps[1][0] == "key":
        return [(steps[1][1], f"simulation.{steps[1][1]}")]
    if len(steps) == 1:
        keys = sorted({key for v in values if isinstance(v, dict) for key in v})
        return [(key, f"simulation (its {key})") for key in keys]
    return []


def _error(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _simulate(args: argparse.Namespace) -> int:
    from .errors import BackendError, RunstateError, ValidationError
    from .sim import DEFAULT_WORKLOAD_TOML, Simulation, default_workload, load_workload
    from .sim.errors import WorkloadError
    from .sim.progress import Progress
    from .sim.report import (build_report, build_timings, clear_report_folder, dumps, report_folder_problem,
                             summary_text, write_report)
    from .sim.settings import parse_value
    from .sim.workload import _positive_duration as positive_duration
    from .sim.sweep import comparison_text, sweep_variants

    # The options first, then the workload, then the report folder: all before the run.
    until = None
    if args.until is not None:
        try:
            # Read as a --set value: a bare number is seconds, as in a workload file.
            until = positive_duration(parse_value(args.until.strip()), "--until")
        except WorkloadError:
            return _error(f"--until: must be a positive duration like 90 (seconds), 90s, 1h30m or 7d, "
                          f"got {args.until!r}")
    if args.runs is not None and args.runs < 1:
        return _error(f"--runs: must be >= 1, got {args.runs}")
    if args.seed is not None and args.seed < 0:
        return _error(f"--seed: must be >= 0, got {args.seed}")
    if args.print_workload and (args.workload or args.settings or args.sweeps or args.seed is not None
                                or until is not None or args.runs is not None):
        return _error("--print-workload prints the built-in workload as it is: "
                      "drop --workload, --set, --sweep, --seed, --until and --runs")
    if args.print_workload:
        sys.stdout.write(DEFAULT_WORKLOAD_TOML)
        return 0
    if args.sweeps and args.store != "memory":
        return _error("--sweep runs several simulations: it keeps them in memory (drop --store)")
    variant = ""   # which sweep variant a workload error is in (said when there are several)
    try:
        variants = sweep_variants(args.sweeps) if args.sweeps else [()]
        conflict = _option_conflict(args, until)
        if conflict is not None:
            return _error(conflict)
        simulations = []
        for k, extra in enumerate(variants):
            if len(variants) > 1:
                variant = f" (sweep variant {k + 1} of {len(variants)}: {', '.join(extra)})"
            settings = [*args.settings, *extra]
            workload = (load_workload(args.workload, settings=settings) if args.workload
                        else default_workload(settings=settings))
            if k == 0:  # (said once, not per variant: no variant sets the stop conditions then)
                _note_stop_set_aside(workload, until, args.runs)
            workload = workload.with_overrides(seed=args.seed, until=until, runs=args.runs)
            simulations.append(Simulation(workload, store_url=args.store, rule_stats=not args.no_rule_stats))
    except WorkloadError as exc:
        return _error(f"invalid workload: {exc}{variant}")
    except ValidationError as exc:
        return _error(f"{exc}{variant}")
    except (BackendError, OSError) as exc:
        return _error(f"cannot open store {args.store!r}: {exc}", 1)
    if args.report:
        # (checked, not created: write_report makes it when there is a report to write)
        problem = report_folder_problem(args.report)
        if problem is not None:
            _close(simulations)
            return _error(f"--report: cannot write the report to {args.report!r}: {problem}")

    enabled = {"auto": None, "always": True, "never": False}[args.progress]
    sweeping = bool(args.sweeps)  # even of one value: a table and variant folders, as asked
    reports: list[dict] = []
    interrupted = False
    try:
        for k, simulation in enumerate(simulations):
            spec = simulation.workload.simulation
            if sweeping:
                print(f"[{k + 1}/{len(simulations)}] {', '.join(variants[k])}", file=sys.stderr)
            progress = Progress(spec.until, spec.runs, enabled=enabled)
            try:
                try:
                    result = simulation.run(on_progress=progress.update)
                finally:
                    progress.close()
            except Exception as exc:  # (not KeyboardInterrupt: it has its own way out, below)
                if not simulation.started:
                    raise   # refused before it ran (a store already used): as the other bad inputs
                return _simulation_failed(simulation, exc)
            report, timings = build_report(result), build_timings(result)
            if not sweeping:
                print(summary_text(report, timings))
            # Also on stderr: seen when the summary goes to a file, and in a sweep, which
            # prints no summary. (Exit status 0 all the same: the figures hold for the
            # time simulated.)
            variant = f"[{k + 1}/{len(simulations)}] " if sweeping else ""
            for text in report["warnings"]:
                print(f"warning: {variant}{text}", file=sys.stderr)
            reports.append(report)
            if args.report:
                folder = os.path.join(args.report, f"variant-{k + 1}") if sweeping else args.report
                try:
                    if sweeping and k == 0:
                        # An earlier report's files and variant folders (write_report
                        # clears the folder it writes into: here, each variant's own).
                        clear_report_folder(args.report)
                    paths = write_report(result, folder, charts=not args.no_charts, report=report, timings=timings)
                except OSError as exc:
                    return _error(f"cannot write the report to {folder!r}: {exc}", 1)
                if not sweeping:
                    print(f"\nReport written to {folder}: " + ", ".join(p.rsplit("/", 1)[-1] for p in paths))
                    if not args.no_charts and not any(p.endswith(".png") for p in paths):
                        print("(charts skipped: install the 'charts' extra, e.g. pip install -e '.[charts]' in a checkout)")
            del result
            _close([simulation])
            simulations[k] = None  # its engine holds every run: free it before the next variant
            if report["simulated"]["interrupted"]:
                interrupted = True
                break
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except ValidationError as exc:
        return _error(str(exc))
    except RunstateError as exc:
        return _error(f"simulation failed: {exc}", 1)
    finally:
        _close(simulations)
    if sweeping and reports:
        print(comparison_text([", ".join(v) for v in variants[:len(reports)]], reports))
        if args.report:
            index = {"variants": [{"settings": list(v), "folder": f"variant-{k + 1}"}
                                  for k, v in enumerate(variants[:len(reports)])]}
            with open(os.path.join(args.report, "sweep.json"), "w", encoding="utf-8") as fh:
                fh.write(dumps(index))
            print(f"\nReports written to {args.report}: sweep.json and variant-1 ... variant-{len(reports)}")
    if interrupted:
        print(f"\ninterrupted: the {'figures' if sweeping else 'summary'} above cover{'' if sweeping else 's'} "
              "the simulated time before Ctrl-C", file=sys.stderr)
        return 130
    return 0


def _simulation_failed(simulation: Any, exc: Exception) -> int:
    """Exit 1 with what failed during a simulation (most often a custom rule): when,
    on which run, in which rule, and the traceback's frames in the user's code. (The
    caller closes the store: each engine call is atomic, so it stays consistent.)"""
    from .sim.failure import failure_text, user_traceback

    code = _error(failure_text(simulation, exc), 1)
    print(user_traceback(exc), end="", file=sys.stderr)
    return code


def _close(simulations: list) -> None:
    # Closing twice is harmless: a backend's close is idempotent, memory has none;
    # None stands for a simulation already closed and dropped.
    for simulation in simulations:
        if simulation is None:
            continue
        close = getattr(simulation.engine, "close", None)
        if close is not None:
            close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
