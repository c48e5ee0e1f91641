"""`--set PATH=VALUE` and `--sweep PATH=V1,V2` (engine/sim/settings.py, sweep.py):
changing workload keys before validation, and running one variant per value."""
from __future__ import annotations

import copy
import json

import pytest

from engine.__main__ import main
from engine.sim import WorkloadError, apply_settings, default_workload, load_workload, parse_workload
from engine.sim.sweep import comparison_text, parse_sweep, sweep_variants

RAW = {
    "work_pools": [{"name": "p", "concurrency_limit": 4, "queues": [{"name": "high", "priority": 1}]}],
    "flows": [{"name": "f", "tasks": [{"name": "a"}, {"name": "b", "depends_on": ["a"]}]}],
    "tag_limits": [{"tag": "db", "limit": 2}],
    "deployments": [{"name": "d", "flow": "f", "pool": "p", "schedule": {"interval": "1h"}}],
}


def test_settings_select_items_by_index_or_name_and_parse_toml_values():
    out = apply_settings(RAW, [
        "work_pools[p].concurrency_limit=1",
        "flows[0].tasks[b].duration={ dist = 'constant', value = '5s' }",
        "tag_limits[db].limit=0",
        "deployments[d].schedule.interval=5m",          # a bare word stays a string
        "deployments[d].tags=['x', 'y']",
        "work_pools[p].paused=true",
    ])
    assert out["work_pools"][0]["concurrency_limit"] == 1 and out["work_pools"][0]["paused"] is True
    assert out["flows"][0]["tasks"][1]["duration"] == {"dist": "constant", "value": "5s"}
    assert out["tag_limits"][0]["limit"] == 0
    assert out["deployments"][0]["schedule"] == {"interval": "5m"} and out["deployments"][0]["tags"] == ["x", "y"]
    wl = parse_workload(out)
    assert wl.work_pools[0].concurrency_limit == 1 and wl.deployments[0].schedule.interval == 300.0


def test_quoted_names_may_hold_brackets_or_digits_and_workers_go_by_their_pool():
    raw = copy.deepcopy(RAW)
    raw["deployments"].append({"name": "etl [v2]", "flow": "f", "pool": "p", "schedule": {"interval": "1h"}})
    raw["flows"].append({"name": "7", "tasks": [{"name": "a"}]})
    raw["workers"] = [{"pool": "p", "count": 1}]
    out = apply_settings(raw, ['deployments["etl [v2]"].tags=["x"]', "flows['7'].tasks[a].retries=2",
                               "workers[p].count=3"])
    assert out["deployments"][1]["tags"] == ["x"] and "tags" not in out["deployments"][0]
    assert out["flows"][1]["tasks"][0]["retries"] == 2
    assert out["workers"][0]["count"] == 3
    raw["workers"].append({"pool": "p", "count": 2})
    with pytest.raises(WorkloadError) as info:
        apply_settings(raw, ["workers[p].count=3"])
    assert info.value.path == "workers[p]" and "2 items are named 'p' (items 0, 1): select one by index" in str(info.value)
    with pytest.raises(WorkloadError, match="closed by"):
        apply_settings(raw, ['deployments["etl [v2].tags=1'])


def test_settings_leave_the_given_data_alone_and_apply_in_order():
    before = copy.deepcopy(RAW)
    out = apply_settings(RAW, ["work_pools[0].concurrency_limit=2", "work_pools[0].concurrency_limit=3"])
    assert RAW == before
    assert out["work_pools"][0]["concurrency_limit"] == 3
    assert apply_settings(RAW, []) is RAW


def test_missing_tables_on_the_way_are_created():
    wl = parse_workload(RAW, settings=["services.late_runs.enabled=false", "simulation.runs=5"])
    assert wl.late_runs.enabled is False and wl.simulation.runs == 5
    assert wl.settings == ("services.late_runs.enabled=false", "simulation.runs=5")


@pytest.mark.parametrize("setting, path, words", [
    ("work_pools[3].concurrency_limit=1", "work_pools[3]", "the list has 1"),
    ("work_pools[gpu].concurrency_limit=1", "work_pools[gpu]", "named: 'p'"),
    ("flows[f].name.first=1", "flows[f].name", "not a table"),
    ("work_pools.p.concurrency_limit=1", "work_pools", "pick an item by index or name: work_pools[0] or work_pools[p]"),
    ("flows[f][0]=1", "flows[f]", "not a list"),
    ("workers[0].count=2", "workers", "not add them"),
    ("work_pools..name=x", "work_pools..name", "empty key"),
    ("[0].name=x", "[0].name", "'[' must follow a key"),
    ("flows[f].tasks[]=1", "flows[f].tasks[]", "empty []"),
    ("flows[f]x=1", "flows[f]x", "a key must follow '.'"),
    ("=3", "", "names no key"),
    ("seed 7", "", "PATH=VALUE"),
])
def test_a_setting_that_cannot_be_applied_names_its_path(setting, path, words):
    with pytest.raises(WorkloadError) as info:
        apply_settings(RAW, [setting])
    assert info.value.path == path and words in str(info.value)


def test_a_bad_value_is_reported_by_validation_at_its_path():
    with pytest.raises(WorkloadError) as info:
        parse_workload(RAW, settings=["tag_limits[db].limit=-1"])
    assert info.value.path == "tag_limits[0].limit"
    with pytest.raises(WorkloadError) as info:
        parse_workload(RAW, settings=["flows[f].tasks[a].retries=many"])
    assert info.value.path == "flows[0].tasks[0].retries" and "'many'" in str(info.value)
    with pytest.raises(WorkloadError) as info:
        parse_workload(RAW, settings=["work_pools[p].limit=3"])
    assert info.value.path == "work_pools[0].limit" and "unknown key" in str(info.value)


def test_files_and_the_built_in_workload_take_settings(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(RAW))
    assert load_workload(path, settings=["flows[f].tasks[a].count=7"]).flows[0].tasks[0].count == 7
    pools = {p.name: p for p in default_workload(settings=["work_pools[gpu-pool].concurrency_limit=1"]).work_pools}
    assert pools["gpu-pool"].concurrency_limit == 1
    assert {p.name: p for p in default_workload().work_pools}["gpu-pool"].concurrency_limit != 1


def _simulate(folder, *options, runs: int = 60) -> None:
    assert main(["simulate", "--runs", str(runs), "--no-charts", "--no-rule-stats", "--report", str(folder),
                 *options]) == 0


def _report(folder, *options):
    _simulate(folder, *options)
    return json.loads((folder / "report.json").read_text())


def test_cli_set_matches_the_dedicated_option_and_is_recorded(tmp_path, capsys):
    by_option = _report(tmp_path / "a", "--seed", "7")
    by_setting = _report(tmp_path / "b", "--set", "simulation.seed=7")
    assert by_setting["workload"].pop("settings") == ["simulation.seed=7"]
    assert by_option["workload"].pop("settings") == []
    assert by_setting == by_option
    assert "  with simulation.seed=7" in capsys.readouterr().out


def test_cli_set_changes_what_is_simulated(tmp_path, capsys):
    base = _report(tmp_path / "a")
    starved = _report(tmp_path / "b", "--set", "work_pools[default-pool].concurrency_limit=1")
    assert starved["lateness_seconds"]["p90"] > base["lateness_seconds"]["p90"]


def test_cli_bad_setting_exits_2_before_running(capsys):
    assert main(["simulate", "--set", "work_pools[nope].concurrency_limit=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid workload: work_pools[nope]: no item named 'nope'")
    assert main(["simulate", "--print-workload", "--set", "simulation.seed=1"]) == 2
    assert "--print-workload" in capsys.readouterr().err


@pytest.mark.parametrize("options, says", [
    (["--until", "2h", "--sweep", "simulation.seed=1,2,3", "--seed", "5"],
     "--seed and --sweep simulation.seed both set the seed: give one"),
    (["--sweep", "simulation.until=1h,2h", "--until", "3h"],
     "--until and --sweep simulation.until both set the simulated duration: give one"),
    (["--set", "simulation.until=1h", "--until", "3h"],
     "--until and --set simulation.until both set the simulated duration: give one"),
    (["--set", "simulation.runs=50", "--runs", "60"], "--runs and --set simulation.runs both set the run target"),
    (["--set", "simulation={ seed = 3 }", "--seed", "4"], "--seed and --set simulation (its seed) both set the seed"),
    # --runs and --until each replace both stop conditions: the other's setting would go unused
    (["--set", "simulation.until=1h", "--runs", "60"],
     ("--runs and --set simulation.until both set the stop conditions (--runs sets the workload's "
      "simulation.until aside): give one, or keep both with --set simulation.runs=60 in place of --runs")),
    (["--sweep", "simulation.runs=10,20", "--until", "1h"],
     "--until and --sweep simulation.runs both set the stop conditions"),
])
def test_an_option_and_a_setting_of_the_same_key_are_refused_before_running(options, says, capsys):
    # The option used to win silently while the header and the sweep's labels named
    # the setting's values, never used.
    assert main(["simulate", "--no-rule-stats", *options]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {says}") and err.count("\n") == 1 and out == ""


def test_an_option_and_a_setting_of_other_keys_go_together(tmp_path, capsys):
    # (--runs sets aside the until, not the time limit: README's way to raise it)
    report = _report(tmp_path, "--seed", "3", "--set", "simulation.max_time=2d",
                     "--set", "simulation.sample_interval=5m")
    assert report["workload"]["seed"] == 3 and report["workload"]["max_time_seconds"] == 2 * 86400


# --sweep -------------------------------------------------------------------------------------

def test_sweep_values_split_at_top_level_commas_only():
    assert parse_sweep("simulation.seed=1, 2,3") == ("simulation.seed", ["1", "2", "3"])
    assert parse_sweep("flows[f].tasks[a].retry_delay=[1, 2],[5, 10],3") == (
        "flows[f].tasks[a].retry_delay", ["[1, 2]", "[5, 10]", "3"])
    assert parse_sweep("x.duration={ dist = 'uniform', min = 1, max = 2 },'a,b'") == (
        "x.duration", ["{ dist = 'uniform', min = 1, max = 2 }", "'a,b'"])


@pytest.mark.parametrize("sweep, words", [
    ("simulation.seed", "PATH=V1,V2"),
    ("simulation.seed=1,,2", "empty value"),
    ("simulation.seed=1,2,1", "repeated"),
    ("simulation..seed=1,2", "empty key"),
])
def test_a_bad_sweep_is_refused(sweep, words):
    with pytest.raises(WorkloadError, match=words):
        parse_sweep(sweep)


def test_sweeps_multiply_first_one_slowest():
    assert sweep_variants(["a=1,2", "b.c=x,y,z"]) == [
        ("a=1", "b.c=x"), ("a=1", "b.c=y"), ("a=1", "b.c=z"), ("a=2", "b.c=x"), ("a=2", "b.c=y"), ("a=2", "b.c=z"),
    ]
    with pytest.raises(WorkloadError, match="swept twice"):
        sweep_variants(["a=1,2", "a=3"])


def test_cli_sweep_runs_each_variant_as_a_single_run_would(tmp_path, capsys):
    singles = [_report(tmp_path / f"seed{seed}", "--seed", str(seed)) for seed in (3, 4)]
    capsys.readouterr()
    folder = tmp_path / "sweep"
    _simulate(folder, "--sweep", "simulation.seed=3,4")
    out = capsys.readouterr().out
    index = json.loads((folder / "sweep.json").read_text())
    assert index == {"variants": [{"settings": ["simulation.seed=3"], "folder": "variant-1"},
                                  {"settings": ["simulation.seed=4"], "folder": "variant-2"}]}
    for k, single in enumerate(singles):
        variant = json.loads((folder / f"variant-{k + 1}" / "report.json").read_text())
        assert variant["workload"].pop("settings") == [f"simulation.seed={3 + k}"]
        single["workload"].pop("settings")
        assert variant == single
    assert "#1  simulation.seed=3" in out and "#2  simulation.seed=4" in out
    created = next(line for line in out.splitlines() if line.strip().startswith("flow runs created"))
    assert created.split()[-2:] == ["60", "60"]
    assert "Simulation of workload" not in out  # the table replaces the per-run summaries


def test_cli_sweep_checks_every_variant_before_running_any(tmp_path, capsys):
    folder = tmp_path / "out"
    assert main(["simulate", "--report", str(folder), "--sweep", "tag_limits[0].limit=2,-1"]) == 2
    assert "tag_limits[0].limit: must be >= 0, got -1 (sweep variant 2 of 2: tag_limits[0].limit=-1)" in (
        capsys.readouterr().err)
    assert not folder.exists()
    # With several sweeps, the variant names every setting it combines.
    assert main(["simulate", "--sweep", "tag_limits[0].limit=-1,2", "--sweep", "simulation.seed=1,2"]) == 2
    assert "(sweep variant 1 of 4: tag_limits[0].limit=-1, simulation.seed=1)" in capsys.readouterr().err
    assert main(["simulate", "--store", f"sqlite:///{tmp_path}/x.db", "--sweep", "simulation.seed=1,2"]) == 2
    assert "--sweep" in capsys.readouterr().err and not (tmp_path / "x.db").exists()


def _empty_report(created: int = 0, **more: dict) -> dict:
    """A report.json of a run that finished nothing: what comparison_text reads, plus `more`."""
    return {"flow_runs": {"created": created, "finished": 0, "by_state": dict.fromkeys(
                ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"), 0)},
            "throughput": {"completed_flow_runs_per_hour": 0.0},
            "lateness_seconds": {"count": 0}, "queue_wait_seconds": {"count": 0},
            "flow_run_time_seconds": {"count": 0}, "events": {"late_marked": 0},
            "retries": {"task": 0}, "cache_hits": 0,
            "concurrency": {"tag_slot_waits": 0, "deployment_slot_waits": 0, "pool_or_queue_limit_deferrals": 0},
            **more}


def test_comparison_marks_figures_a_run_does_not_have():
    report = _empty_report()
    text = comparison_text([("a=1",)], [report])
    assert _row(text, "pool/queue-limit deferrals") == ["0"]
    assert _row(text, "worker-limit deferrals") == ["-"]  # (reported since)
    assert _row(text, "lateness p50") == ["-"]
    # A report from before workers were reported on: their rows say "-" too.
    assert _row(text, "worker outages") == _row(text, "availability") == ["-"]
    report["workers"] = {"outages": 2, "failures": 1234, "availability": 0.987654}
    text = comparison_text([("a=1",)], [report])
    assert (_row(text, "worker outages"), _row(text, "failures"), _row(text, "availability")) == (
        ["2"], ["1,234"], ["98.77%"])
    # ... and so do runs taken down with workers, reported since.
    assert _row(text, "runs lost with them") == ["-"]
    report["workers"].update(runs_crashed=3, runs_lost=0)
    text = comparison_text([("a=1",)], [report])
    assert (_row(text, "runs crashed with them"), _row(text, "runs lost with them")) == (["3"], ["0"])


def test_comparison_shows_peaks_beside_the_limits_the_runs_set():
    # A row per pool, queue, deployment or tag with a limit in some report; a report
    # without that entry (or from before peaks were kept) shows "-".
    def peaks(pool_limit, with_tag=True):
        return {"work_pools": {"p": {"limit": pool_limit, "peak": 3}, "free": {"limit": None, "peak": 9}},
                "work_queues": {"p": {"narrow": {"limit": 1, "peak": 1}, "default": {"limit": None, "peak": 2}}},
                "deployments": {"a-long-deployment-name": {"limit": 2, "peak": 3}},
                "tags": {"db": {"limit": 4, "peak": 4}} if with_tag else {}}
    reports = [_empty_report(concurrency={"peak": peaks(4)}), _empty_report(concurrency={"peak": peaks(2, False)}),
               _empty_report()]
    for report in reports:
        report["concurrency"].update(tag_slot_waits=0, deployment_slot_waits=0, pool_or_queue_limit_deferrals=0)
    text = comparison_text([("a",), ("b",), ("c",)], reports)
    assert _row(text, "peak pool p") == ["3", "of", "4", "3", "of", "2", "-"]
    assert _row(text, "peak queue p/narrow") == ["1", "of", "1", "1", "of", "1", "-"]
    assert _row(text, "peak deployment a-long-deployment-name") == ["3", "of", "2", "3", "of", "2", "-"]
    assert _row(text, "peak tag db") == ["4", "of", "4", "-", "-"]
    assert "peak pool free" not in text and "p/default" not in text   # no limit in any report
    # Labels longer than the usual column push the figures right, still aligned.
    header = text.splitlines().index("") + 1
    ends = {len(line) for line in text.splitlines()[header:]}
    assert len(ends) == 1


# python -m engine compare ------------------------------------------------------------------

def _row(out: str, label: str) -> list[str]:
    return next(line for line in out.splitlines() if line.strip().startswith(label)).split()[len(label.split()):]


def test_compare_reads_report_files_folders_and_sweeps(tmp_path, capsys):
    one = _report(tmp_path / "one", "--seed", "5")
    _simulate(tmp_path / "sw", "--sweep", "simulation.seed=6,7")
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "one" / "report.json"), str(tmp_path / "sw")]) == 0
    out = capsys.readouterr().out
    assert f"#1  {tmp_path / 'one' / 'report.json'}: default (seed 5)" in out
    assert f"#3  {tmp_path / 'sw' / 'variant-2' / 'report.json'}: default (seed 7) with simulation.seed=7" in out
    sweep = [json.loads((tmp_path / "sw" / f"variant-{k}" / "report.json").read_text()) for k in (1, 2)]
    assert _row(out, "runs marked late") == [str(r["events"]["late_marked"]) for r in (one, *sweep)]
    assert _row(out, "cache hits") == [f"{r['cache_hits']:,}" for r in (one, *sweep)]


def test_compare_names_what_is_not_a_report(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read a report" in capsys.readouterr().err
    (tmp_path / "x.json").write_text('{"workload": {"name": "w", "seed": 1}}')
    assert main(["compare", str(tmp_path / "x.json")]) == 2
    assert "x.json: is not a simulation report.json (KeyError" in capsys.readouterr().err
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text('{"variants": [{"settings": []}]}')
    assert main(["compare", str(tmp_path / "sw")]) == 2
    assert "sweep.json: is not a sweep index" in capsys.readouterr().err


def test_cli_sweep_of_one_value_still_reports_as_a_sweep(tmp_path, capsys):
    _simulate(tmp_path, "--sweep", "simulation.seed=9", runs=20)
    out = capsys.readouterr().out
    assert "#1  simulation.seed=9" in out and "Simulation of workload" not in out
    assert (tmp_path / "sweep.json").exists() and (tmp_path / "variant-1" / "report.json").exists()
    assert not (tmp_path / "report.json").exists()


def test_comparison_names_the_runs_that_stopped_short_of_their_run_target():
    def report(runs, stopped_by, created):
        return _empty_report(created, workload={"runs": runs}, simulated={"stopped_by": stopped_by})

    text = comparison_text(["a", "b", "c"], [report(2000, "max_time", 1180), report(2000, "runs", 2000),
                                             report(None, "until", 7)])
    assert _row(text, "run target NOT reached") == ["1,180", "of", "2,000", "-", "-"]
    text = comparison_text(["a", "b"], [report(2000, "runs", 2000), report(None, "until", 7)])
    assert "run target" not in text
