"""`python -m engine simulate`: options, exit codes, report files, reproducibility."""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import weakref

import pytest

from engine import Engine
from engine.__main__ import main
from engine.sim import parse_workload
from engine.sim.workload import _toml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_simulate_writes_report_and_prints_summary(tmp_path, capsys):
    code = main(["simulate", "--until", "2h", "--report", str(tmp_path), "--no-charts"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Simulation of workload 'default' (seed 42), 2h00m simulated" in out
    assert "lateness (start delay)" in out and "Orchestration rules" in out
    report = json.loads((tmp_path / "report.json").read_text())
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert report["simulated"]["duration_seconds"] == 7200
    assert report["flow_runs"]["created"] > 50
    assert "wall_seconds" in timings and "wall" not in json.dumps(report)
    assert timings["rules"]["WaitForScheduledTime"]["total_ms"] >= 0
    # peak memory: the process's, at least what the interpreter itself takes
    assert timings["peak_memory_mib"] > 10 and "memory" not in json.dumps(report)
    assert f"peak memory {timings['peak_memory_mib']:.0f} MiB" in out


def test_runs_option_and_seed(tmp_path, capsys):
    assert main(["simulate", "--runs", "40", "--seed", "3", "--report", str(tmp_path), "--no-charts"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["flow_runs"]["created"] == report["flow_runs"]["finished"] == 40
    assert report["workload"]["seed"] == 3


def test_a_command_line_stop_condition_says_which_of_the_files_it_sets_aside(tmp_path, capsys):
    # --runs / --until replace both of a file's stop conditions (so that --runs is not
    # cut at a file's until); the one set aside is named, with how to keep it.
    path = tmp_path / "w.toml"
    path.write_text('[simulation]\nuntil = "20m"\nruns = 500\n[[work_pools]]\nname = "p"\n[[workers]]\npool = "p"\n'
                    '[[flows]]\nname = "f"\n[[flows.tasks]]\nname = "t"\n'
                    '[[deployments]]\nname = "d"\nflow = "f"\npool = "p"\nschedule = { interval = "5m" }\n')
    assert main(["simulate", "--workload", str(path), "--runs", "3", "--no-charts"]) == 0
    err = capsys.readouterr().err
    assert "note: --runs 3 replaces the workload's stop conditions: its simulation.until (20m" in err
    assert "--set simulation.runs=3 keeps it" in err
    assert main(["simulate", "--workload", str(path), "--until", "10m", "--no-charts"]) == 0
    assert "its simulation.runs (500) is set aside" in capsys.readouterr().err
    assert main(["simulate", "--workload", str(path), "--no-charts"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_the_built_in_workload_says_which_stop_condition_it_sets_aside_as_a_file_does(capsys):
    # (Said for files only before, and for a sweep never: once, for its first variant.)
    assert main(["simulate", "--runs", "3", "--no-rule-stats"]) == 0
    err = capsys.readouterr().err
    assert ("note: --runs 3 replaces the workload's stop conditions: its simulation.until (12h00m) is set aside "
            "(--set simulation.runs=3 keeps it)") in err
    assert main(["simulate", "--runs", "3", "--no-rule-stats", "--sweep", "simulation.seed=1,2"]) == 0
    assert capsys.readouterr().err.count("note: --runs 3 replaces") == 1


def test_bad_workload_exits_2_with_the_key_path(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[work_pools]]\nname = "p"\n[[flows]]\nname = "f"\n[[flows.tasks]]\nname = "t"\n'
        'duration = { dist = "exponential", mean = "-3s" }\n'
    )
    assert main(["simulate", "--workload", str(path)]) == 2
    err = capsys.readouterr().err
    assert "flows[0].tasks[0].duration.mean" in err and "non-negative" in err


def test_bad_options_exit_2(capsys):
    assert main(["simulate", "--until", "soon"]) == 2
    assert "--until" in capsys.readouterr().err
    assert main(["simulate", "--runs", "0"]) == 2
    assert capsys.readouterr().err == "error: --runs: must be >= 1, got 0\n"
    assert main(["simulate", "--until=0s"]) == 2
    assert "--until: must be a positive duration" in capsys.readouterr().err
    assert main(["simulate", "--print-workload", "--workload", "w.toml"]) == 2
    assert "--print-workload" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--bogus"])
    assert info.value.code == 2


def test_the_command_line_dispatches_bench_rules_and_shows_help_without_a_command(capsys):
    assert main(["bench-rules", "--policy", "CoreFlowPolicy", "--transitions", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == "CoreFlowPolicy"
    assert main(["bench-rules", "--policy", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main([]) == 2
    assert "simulate" in capsys.readouterr().out
    assert main(["simulate", "--seed", "-1"]) == 2
    assert capsys.readouterr().err == "error: --seed: must be >= 0, got -1\n"


def test_unknown_store_scheme_is_a_clear_error(capsys):
    code = main(["simulate", "--until", "1h", "--store", "postgres://nope"])
    assert code in (1, 2)
    assert "postgres://nope" in capsys.readouterr().err


def test_sqlite_store_option(tmp_path, capsys):
    if not hasattr(Engine, "open"):
        pytest.skip("durability backends not available")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["simulate", "--until", "30m", "--store", url, "--no-rule-stats"]) == 0
    with Engine.open(url) as engine:
        assert engine.count_flow_runs() > 10


def test_print_workload_round_trips(capsys):
    assert main(["simulate", "--print-workload"]) == 0
    text = capsys.readouterr().out
    assert parse_workload(_toml.loads(text)).name == "default"


def test_same_seed_gives_identical_report_json_across_processes(tmp_path):
    """Byte-identical report.json from two processes with different hash seeds."""
    stores = hasattr(Engine, "open")
    outputs, dumps = [], []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        store = ["--store", f"sqlite:///{tmp_path / hash_seed}.db"] if stores else []
        proc = subprocess.run(
            [sys.executable, "-m", "engine", "simulate", "--workload",
             str(ROOT / "examples" / "retries-caching-subflows" / "workload.json"),
             "--until", "3h", "--report", str(out), "--no-charts", *store],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "\r[" not in proc.stderr  # no progress bar when not on a terminal
        outputs.append((out / "report.json").read_bytes())
        if stores:
            with Engine.open(store[1]) as engine:
                dumps.append(_store_dump(engine))
    assert outputs[0] == outputs[1]
    assert dumps[0] == dumps[1]  # the stores too, row for row


def _store_dump(engine) -> dict:
    from engine.serialization import unstructure_record

    return {kind: sorted(json.dumps(unstructure_record(kind, rec), sort_keys=True, default=str)
                         for rec in table.rows.values())
            for kind, table in engine._store.tables.items()}


def test_refuses_a_store_that_already_holds_data(tmp_path, capsys):
    if not hasattr(Engine, "open"):
        pytest.skip("durability backends not available")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["simulate", "--until", "10m", "--store", url, "--no-rule-stats"]) == 0
    capsys.readouterr()
    assert main(["simulate", "--until", "10m", "--store", url]) == 2
    assert "empty store" in capsys.readouterr().err


def test_progress_bar_draws_only_when_enabled():
    import io

    from engine.sim.progress import Progress

    quiet = io.StringIO()
    Progress(3600.0, None, stream=quiet).draw(1800.0, 10, 12)  # explicit draw always writes
    bar = io.StringIO()
    progress = Progress(3600.0, None, stream=bar, enabled=True)
    progress.draw(1800.0, 10, 12)
    text = bar.getvalue()
    assert "50.0%" in text and "runs 10 done of 12 created  " in text and text.startswith("\r[")
    by_runs = io.StringIO()
    Progress(None, 40, stream=by_runs, enabled=True).draw(1800.0, 10, 12)
    assert "25.0%" in by_runs.getvalue() and "runs 10 done of 12 created (of 40)" in by_runs.getvalue()

    class FakeSim:
        class loop:
            now = 10.0
        finished, runs = 1, [1]

    silent = io.StringIO()
    Progress(3600.0, None, stream=silent).update(FakeSim)  # StringIO is not a TTY
    assert silent.getvalue() == ""


def test_progress_bar_keeps_within_the_terminal_width():
    # A line reaching the last column wraps, and each redraw would leave a stale
    # line above: the bar narrows first, then the line is cut one short of the width.
    import io

    from engine.sim.progress import Progress

    for columns in (40, 80, 120):
        out = io.StringIO()
        progress = Progress(43200.0, 10_000, stream=out, enabled=True, columns=columns)
        progress.draw(13080.0, 1740, 2100)
        progress.draw(13180.0, 1750, 2100)
        progress.close()
        lines = out.getvalue().split("\r")[1:-1]
        assert all(len(line) == columns - 1 for line in lines), (columns, lines)
        assert lines[0].startswith("[") and lines[-1].strip() == ""
    wide = io.StringIO()
    Progress(43200.0, None, stream=wide, enabled=True, columns=200).draw(13080.0, 174, 210)
    assert wide.getvalue().startswith("\r[" + "#" * 9 + "." * 21 + "]")  # room for the whole bar
    # A shorter line blanks what the longer one before it left.
    out = io.StringIO()
    progress = Progress(None, None, stream=out, enabled=True)
    progress.draw(10.0, 10_000, 10_000)
    progress.draw(20.0, 1, 1)
    first, second = out.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip() != first.rstrip()


def test_a_closed_output_pipe_ends_every_command_quietly(tmp_path):
    # As Unix tools do when the reader (head, less) stops reading: no traceback, exit 0.
    assert main(["simulate", "--until", "10m", "--no-rule-stats", "--report", str(tmp_path)]) == 0
    for command in (["compare", str(tmp_path), str(tmp_path)], ["bench-rules", "--transitions", "50"],
                    ["simulate", "--until", "10m", "--no-rule-stats"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        proc = subprocess.run([sys.executable, "-m", "engine", *command], cwd=ROOT, stdout=write_end,
                              stderr=subprocess.PIPE)
        os.close(write_end)
        assert (proc.returncode, proc.stderr) == (0, b""), command


def _png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_charts_are_drawn_when_matplotlib_is_installed(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["simulate", "--until", "1h", "--report", str(tmp_path)]) == 0
    for name in ("states_over_time.png", "throughput.png", "latency.png", "rules.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A third panel of workers down, only when some were: the chart grows from 7 to 9 inches.
    assert _png_size(tmp_path / "states_over_time.png")[1] == 700
    # (one run for both:) the workers panel, and without rule stats nothing to draw
    # rules.png from, while the other charts still come.
    downed = tmp_path / "downed"
    assert main(["simulate", "--until", "1h", "--no-rule-stats", "--report", str(downed),
                 "--set", 'workers[0].outages=[{ at = "10m", duration = "10m" }]']) == 0
    assert _png_size(downed / "states_over_time.png")[1] == 900
    assert sorted(p.name for p in downed.glob("*.png")) == ["latency.png", "states_over_time.png", "throughput.png"]


def test_without_matplotlib_the_summary_still_works(tmp_path, capsys, monkeypatch):
    import engine.sim.charts as charts

    monkeypatch.setattr(charts, "charts_available", lambda: False)
    assert main(["simulate", "--until", "1h", "--report", str(tmp_path)]) == 0
    assert "charts skipped" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "timings.json"]


def test_sigint_stops_cleanly_and_the_store_reopens(tmp_path):
    """A real Ctrl-C (SIGINT) mid-run: exit 130, summary printed, SQLite store consistent."""
    if not hasattr(Engine, "open"):
        pytest.skip("durability backends not available")
    import signal

    db = tmp_path / "runs.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "simulate", "--until", "60d", "--store", f"sqlite:///{db}",
         "--progress", "always", "--no-rule-stats"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        # Wait for the first progress line: the simulation loop is running.
        seen = b""
        while b"\r[" not in seen:
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"simulation ended early: {proc.stdout.read()!r}"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out, err = out.decode(), err.decode()
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out and "interrupted" in err
    with Engine.open(f"sqlite:///{db}") as engine:
        runs = engine.read_flow_runs()
        assert runs
        for run in runs:
            states = engine.read_flow_run_states(run.id)
            assert states[-1].id == run.state_id and states[-1].type is run.state_type


def test_a_bare_number_for_until_is_seconds(capsys):
    assert main(["simulate", "--until", "90", "--no-rule-stats"]) == 0
    assert "1m30s simulated" in capsys.readouterr().out


def test_a_report_folder_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys):
    taken = tmp_path / "a_file"
    taken.write_text("")
    assert main(["simulate", "--until", "7d", "--report", str(taken)]) == 2
    captured = capsys.readouterr()
    assert "--report: cannot write the report to" in captured.err
    assert captured.out == ""  # refused before anything ran


def test_a_run_target_cut_short_by_the_time_limit_is_warned_of_and_recorded(tmp_path, capsys):
    assert main(["simulate", "--runs", "300", "--set", "simulation.max_time=1h", "--no-rule-stats",
                 "--report", str(tmp_path), "--no-charts"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "WARNING: the run target was not reached: " in out and "simulation.max_time (1h00m here" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["simulated"]["stopped_by"] == "max_time" and report["workload"]["runs"] == 300
    assert report["flow_runs"]["created"] < 300 and report["warnings"][0] in out
    # the summary says what each timing figure is taken over
    assert "(n=" in out and "finished runs)" in out and "completed task runs)" in out
    # the warning goes to stderr too (the summary may go to a file), the exit status stays 0
    [line] = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert line.startswith("warning: the run target was not reached: ") and line[len("warning: "):] in out


def test_a_period_outside_pythons_dates_and_an_unreachable_target_are_refused_before_the_run(tmp_path, capsys):
    folder = tmp_path / "out"
    assert main(["simulate", "--set", 'simulation.start="9999-12-31T00:00:00Z"', "--until", "2d",
                 "--report", str(folder)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: invalid workload: simulation: the simulation does not fit in Python's "
                                   "dates") and captured.out == ""
    assert main(["simulate", "--until", "99999999w"]) == 2
    assert "9999-12-31" in capsys.readouterr().err
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["simulate", "--workload", str(empty), "--runs", "5", "--report", str(folder)]) == 2
    assert "can never be reached: nothing in this workload creates flow runs (it has no deployments)" in \
        capsys.readouterr().err
    assert not folder.exists()


def test_a_report_written_over_an_earlier_one_leaves_none_of_its_charts(tmp_path, capsys):
    (tmp_path / "rules.png").write_bytes(b"old")
    (tmp_path / "variant-3").mkdir()
    (tmp_path / "variant-3" / "report.json").write_text("{}")
    (tmp_path / "mine.txt").write_text("kept")
    assert main(["simulate", "--until", "30m", "--no-rule-stats", "--report", str(tmp_path), "--no-charts"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt", "report.json", "timings.json"]


def test_print_workload_refuses_every_option_that_would_change_the_workload(capsys):
    for extra in (["--seed", "3"], ["--until", "2h"], ["--runs", "5"], ["--set", "simulation.seed=3"]):
        assert main(["simulate", "--print-workload", *extra]) == 2
        captured = capsys.readouterr()
        assert captured.err == ("error: --print-workload prints the built-in workload as it is: "
                                "drop --workload, --set, --sweep, --seed, --until and --runs\n")
        assert captured.out == ""


def test_a_sweeps_warnings_name_their_variant(capsys):
    assert main(["simulate", "--runs", "300", "--sweep", "simulation.max_time=1h,7d", "--no-rule-stats"]) == 0
    captured = capsys.readouterr()
    assert "warning: [1/2] the run target was not reached" in captured.err and "[2/2] the run" not in captured.err
    assert "run target NOT reached" in captured.out


def test_a_sweep_over_an_earlier_report_folder_leaves_none_of_its_files(tmp_path, capsys):
    assert main(["simulate", "--until", "20m", "--no-rule-stats", "--report", str(tmp_path), "--no-charts",
                 "--sweep", "simulation.seed=1,2,3"]) == 0
    (tmp_path / "variant-2" / "throughput.png").write_bytes(b"an earlier run's chart")  # (drawing one is slow)
    (tmp_path / "mine.txt").write_text("kept")
    (tmp_path / "report.json").write_text("{}")   # (as a single run would have left it)
    assert main(["simulate", "--until", "20m", "--no-rule-stats", "--report", str(tmp_path), "--no-charts",
                 "--sweep", "simulation.seed=4,5"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt", "sweep.json", "variant-1", "variant-2"]
    assert sorted(p.name for p in (tmp_path / "variant-2").iterdir()) == ["report.json", "timings.json"]


def test_a_sweep_frees_each_variants_engine_before_the_next_runs(monkeypatch, capsys):
    # Dropped after its report, each variant's simulation (its engine, every run) is
    # freed before the next runs: a sweep's memory stays that of one run. (It grew by
    # a whole run per variant while engines were reference cycles that each run's
    # freezes hid from the collector.)
    from engine.sim import Simulation

    engines: list = []
    alive_when_next_ran: list = []
    run = Simulation.run

    def watched(self, *args, **kwargs):
        alive_when_next_ran.extend(ref() is not None for ref in engines)
        engines.append(weakref.ref(self.engine))
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Simulation, "run", watched)
    assert main(["simulate", "--until", "20m", "--no-rule-stats", "--sweep", "simulation.seed=1,2,3"]) == 0
    assert len(engines) == 3 and alive_when_next_ran == [False, False, False]


FAILING_POLICY = '''
from engine.orchestration import POLICIES, BaseOrchestrationRule
from engine.states import StateType

class Fails(BaseOrchestrationRule):
    FROM_STATES = [StateType.SCHEDULED]
    TO_STATES = [StateType.PENDING]

    def before_transition(self, initial_state, proposed_state, context):
        raise RuntimeError("a bug in a user's rule")

class FailingFlowPolicy(POLICIES["CoreFlowPolicy"]):
    @staticmethod
    def priority():
        return [Fails, *POLICIES["CoreFlowPolicy"].priority()]
'''


def test_a_run_that_fails_leaves_no_report_folder_behind(tmp_path, monkeypatch, capsys):
    (tmp_path / "failing_policy.py").write_text(FAILING_POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = tmp_path / "out" / "report"
    assert main(["simulate", "--until", "1h", "--set", "policies.flow=failing_policy:FailingFlowPolicy",
                 "--report", str(folder)]) == 1
    assert "a bug in a user's rule" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # (a folder that cannot be made is still refused before the run)
    (tmp_path / "file").write_text("")
    assert main(["simulate", "--until", "1h", "--report", str(tmp_path / "file" / "report")]) == 2
    assert "not a directory" in capsys.readouterr().err


# A task policy whose rule raises, beside a workload that names it (no PYTHONPATH).
RAISING_TASK_POLICY = '''
from engine.orchestration import POLICIES, BaseOrchestrationRule
from engine.states import StateType

class Explodes(BaseOrchestrationRule):
    FROM_STATES = [StateType.PENDING]
    TO_STATES = [StateType.RUNNING]

    def before_transition(self, initial_state, proposed_state, context):
        raise ValueError("no RUNNING for " + context.run.name)

class ExplodingTaskPolicy(POLICIES["CoreTaskPolicy"]):
    @staticmethod
    def priority():
        return [Explodes, *POLICIES["CoreTaskPolicy"].priority()]
'''
ONE_FLOW = ('[simulation]\nuntil = "1h"\n[[work_pools]]\nname = "p"\n[[workers]]\npool = "p"\n'
            '[[flows]]\nname = "f"\n[[flows.tasks]]\nname = "t"\n'
            '[[deployments]]\nname = "d"\nflow = "f"\npool = "p"\nschedule = { interval = "10m", anchor = "1m" }\n')


def _beside(tmp_path, module: str, policy: str = "") -> pathlib.Path:
    """A workload file in its own folder, with `module`.py beside it holding the
    policies above (a module name of its own: imported modules are reused)."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / f"{module}.py").write_text(CUSTOM_TASK_POLICY + RAISING_TASK_POLICY)
    path = folder / "w.toml"
    path.write_text(ONE_FLOW + (f'[policies]\ntask = "{module}:{policy}"\n' if policy else ""))
    return path


CUSTOM_TASK_POLICY = '''
from engine.orchestration import POLICIES, BaseOrchestrationRule
from engine.states import StateType

class CountsStarts(BaseOrchestrationRule):
    FROM_STATES = [StateType.PENDING]
    TO_STATES = [StateType.RUNNING]

class CountingTaskPolicy(POLICIES["CoreTaskPolicy"]):
    @staticmethod
    def priority():
        return [CountsStarts, *POLICIES["CoreTaskPolicy"].priority()]
'''


def test_a_policy_module_beside_the_workload_file_is_found_without_pythonpath(tmp_path, capsys):
    path = _beside(tmp_path, "policies_beside_a", "CountingTaskPolicy")
    path_before = list(sys.path)
    report = tmp_path / "report"
    assert main(["simulate", "--workload", str(path), "--report", str(report), "--no-charts"]) == 0
    assert json.loads((report / "report.json").read_text())["rules"]["CountsStarts"]["calls"] == 6
    assert sys.path == path_before   # (its folder was on it for the import only)
    # and by a setting (the module already imported is reused)
    assert main(["simulate", "--workload", str(path),
                 "--set", "policies.task=policies_beside_a:CountingTaskPolicy"]) == 0
    capsys.readouterr()
    # a module in neither place: the error says where it looked
    assert main(["simulate", "--workload", str(path), "--set", "policies.task=policies_nowhere:P"]) == 2
    assert capsys.readouterr().err == (
        "error: invalid workload: policies.task: cannot load policy 'policies_nowhere:P': No module named "
        f"'policies_nowhere' (looked beside the workload, in {path.parent}, then on sys.path)\n")
    assert sys.path == path_before


def test_a_rule_that_raises_is_reported_with_when_and_where_and_the_store_closed(tmp_path, capsys):
    path = _beside(tmp_path, "policies_beside_b", "ExplodingTaskPolicy")
    options = ["simulate", "--workload", str(path)]
    if hasattr(Engine, "open"):
        options += ["--store", f"sqlite:///{tmp_path / 'runs.db'}"]
    assert main(options) == 1
    first, *frames = capsys.readouterr().err.splitlines()
    assert re.fullmatch(
        r"error: simulation failed at 1m\d\ds simulated \(2024-01-01 00:01:\d\d UTC\), on task run 't-0' "
        r"\(task key 'f\.t', flow run '[a-z-]+'\), PENDING -> RUNNING: rule policies_beside_b\.Explodes raised "
        r"ValueError: no RUNNING for t-0", first), first
    # the traceback's frames in the user's code, not the engine's
    assert frames[0].startswith("Traceback") and "policies_beside_b.py" in frames[1]
    assert 'raise ValueError("no RUNNING for "' in frames[2] and len(frames) == 3
    if hasattr(Engine, "open"):   # the store was closed consistent: the first run's proposal undone
        with Engine.open(f"sqlite:///{tmp_path / 'runs.db'}") as engine:
            task_runs = engine.read_task_runs()
            assert [tr.state_type.value for tr in task_runs] == ["PENDING"]
