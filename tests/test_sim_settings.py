"""`--set PATH=VALUE` (engine/sim/settings.py): changing workload keys before validation."""
from __future__ import annotations

import copy
import json

import pytest

from engine.__main__ import main
from engine.sim import WorkloadError, apply_settings, default_workload, load_workload, parse_workload

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


def _report(folder, *options):
    assert main(["simulate", "--runs", "60", "--no-charts", "--no-rule-stats", "--report", str(folder), *options]) == 0
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
