"""Rule benchmarking: per-rule counts are consistent, instrumentation does not
change outcomes, recorded streams replay, users' own policies and rules work."""
from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import pathlib
import re
import textwrap
import uuid
from datetime import datetime, timedelta, timezone

import attrs
import pytest

from engine import (
    Completed, Engine, Failed, FlowRunPolicy, ManualClock, Parameter, Paused, Pending, Running, State,
    StateDetails, StateType, TaskRunPolicy, ValidationError,
)
from engine import rulebench
from engine.orchestration import ALL_STATES, POLICIES, CoreFlowPolicy, CoreTaskPolicy
from engine.orchestration import pipeline as _pipeline
from engine.orchestration.rules import BaseOrchestrationPolicy, BaseOrchestrationRule, BaseUniversalTransform
from engine.rulebench import (
    BaselineMismatchError, _bench_engine, _Replayer, bench_rules, benchmark_rule, main, read_stream, synthetic_stream,
)

N = 400


def _check_consistent(report) -> None:
    for r in report.rules:
        if r.role == "rule":
            assert r.calls == r.skip + r.accept + r.reject + r.wait + r.abort + r.error, r
            assert r.after + r.cleanup <= r.calls - r.skip, r
        assert r.seconds >= 0 and (r.calls > 0 or r.seconds == 0)
    assert sum(report.statuses.values()) == report.transitions


@pytest.mark.parametrize("policy,kind", [("CoreTaskPolicy", "task"), ("CoreFlowPolicy", "flow")])
def test_synthetic_run_reports_every_rule(policy, kind):
    report = bench_rules(policy, transitions=N, seed=1)
    assert (report.policy, report.kind, report.transitions) == (policy, kind, N)
    names = [r.name for r in report.rules if r.role != "global"]
    assert names == [cls.__name__ for cls in POLICIES[policy].priority()]
    assert any(r.role == "global" and r.calls == N for r in report.rules)
    _check_consistent(report)
    waits = sum(r.wait for r in report.rules)
    assert report.statuses.get("WAIT", 0) > 0 and waits >= report.statuses["WAIT"]
    rejects = {r.name: r.reject for r in report.rules if r.reject}
    if kind == "task":
        assert rejects.get("CacheRetrieval") and rejects.get("RetryFailedTasks")
    else:
        assert rejects.get("SecureFlowConcurrencySlots") and rejects.get("RetryFailedFlows")
    text = report.format()
    assert f"{N} transitions" in text and "other (validation" in text
    assert json.loads(json.dumps(report.as_dict()))["transitions"] == N


def test_instrumentation_does_not_change_outcomes(tmp_path):
    stream = tmp_path / "task.jsonl"
    timed = bench_rules("CoreTaskPolicy", transitions=N, seed=3, record=str(stream))
    plain = _Replayer(Engine(clock=ManualClock(tick=timedelta(microseconds=1))), CoreTaskPolicy, "task")
    for op in read_stream(str(stream)):
        plain.apply(op)
    assert dict(plain.statuses) == timed.statuses
    replayed = bench_rules("CoreTaskPolicy", stream=str(stream))
    assert replayed.statuses == timed.statuses and replayed.stream == str(stream)
    assert [(r.name, r.calls, r.reject, r.wait) for r in replayed.rules] == \
        [(r.name, r.calls, r.reject, r.wait) for r in timed.rules]


def test_global_policies_are_restored_even_after_an_error(tmp_path):
    saved = (_pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"op": "propose", "run": "ghost", "state": {"type": "RUNNING"}}\n')
    with pytest.raises(ValidationError, match="unknown run 'ghost'"):
        bench_rules("CoreTaskPolicy", stream=str(bad))
    assert (_pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy) == saved


def test_users_own_policy_by_module_path(tmp_path, monkeypatch):
    (tmp_path / "my_rules.py").write_text(textwrap.dedent('''
        from engine.orchestration import ALL_STATES, BaseOrchestrationPolicy, BaseOrchestrationRule
        from engine.states import StateType

        class NoUntaggedRuns(BaseOrchestrationRule):
            FROM_STATES = ALL_STATES
            TO_STATES = [StateType.RUNNING]

            def before_transition(self, initial, proposed, context):
                if not context.run.tags:
                    self.abort_transition("untagged")

        class MyPolicy(BaseOrchestrationPolicy):
            @staticmethod
            def priority():
                return [NoUntaggedRuns]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    report = bench_rules("my_rules:MyPolicy", transitions=200, kind="task")
    rule = report.rules[0]
    assert rule.name == "NoUntaggedRuns" and rule.abort > 0 and rule.accept > 0
    assert report.statuses["ABORT"] == rule.abort


@pytest.mark.parametrize("policy", [object(), "NoSuchPolicy", "no_such_module:Policy", "engine.records:FlowRun", 42])
def test_foreign_policies_are_refused(policy):
    saved = (_pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy)
    with pytest.raises(ValidationError, match="policy"):
        bench_rules(policy, transitions=10)
    assert (_pipeline.GlobalFlowPolicy, _pipeline.GlobalTaskPolicy) == saved


def test_a_kind_neither_flow_nor_task_is_refused():
    with pytest.raises(ValidationError, match="kind must be 'flow' or 'task', got 'both'"):
        bench_rules(kind="both")


def test_bad_stream_lines_name_the_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"op": "advance", "seconds": 1}\nnot json\n')
    with pytest.raises(ValidationError, match=r"s.jsonl:2: not JSON"):
        read_stream(str(path))
    path.write_text('{"op": "explode"}\n')
    with pytest.raises(ValidationError, match=r"s.jsonl:1: expected an object with op"):
        read_stream(str(path))
    with pytest.raises(ValidationError, match="cannot read stream"):
        read_stream(str(tmp_path / "missing.jsonl"))
    # A label defined twice, on line 4 of the file (a blank line before it), is named
    # by that line, by read_stream and by a benchmark of the file, before anything runs.
    path.write_text('{"op": "task_run", "id": "t"}\n\n{"op": "advance", "seconds": 1}\n'
                    '{"op": "flow_run", "id": "t"}\n')
    with pytest.raises(ValidationError, match=r"s.jsonl:4: id 't' is already the label of an earlier run"):
        read_stream(str(path))
    with pytest.raises(ValidationError, match=r"s.jsonl:4: id 't'"):
        bench_rules("CoreTaskPolicy", stream=str(path))


@pytest.mark.parametrize("ops, message", [
    ([{"op": "bogus"}], r"stream operation 1: expected an object with op in"),
    ([{"op": "advance", "seconds": 1}, "x"], r"stream operation 2: expected an object with op in .* got x"),
    ([{"op": "advance", "seconds": "abc"}], r"seconds must be a number, got 'abc'"),
    ([{"op": "flow_run", "id": "f", "state": {"type": "RUNNING"}},
      {"op": "task_run", "id": "t", "state": {"type": "PENDING"}},
      {"op": "propose", "run": "f", "state": {"type": "COMPLETED"}},
      {"op": "propose", "run": "t", "state": {"type": "RUNNING"}}], "both flow runs and task runs"),
    ([{"op": "flow_run", "state": {"type": "RUNNING"}}], r"^stream operation 1: missing key 'id'"),
    ([{"op": "flow_run", "id": "f", "fields": {"tags": ["x" * 1000]}, "state": {"type": "PENDING"}},
      {"op": "propose", "run": "g", "state": {"type": "RUNNING"}}], r"^stream operation 2: unknown run 'g'"),
    ([{"op": "flow_run", "fields": {"tags": ["x" * 1000]}}], r"^stream operation 1: missing key 'id' .{,80}$"),
    # what a replay would find only on reaching it, found before anything runs
    ([{"op": "flow_run", "id": "f"}, {"op": "task_run", "id": "f"}],
     r"^stream operation 2: id 'f' is already the label of an earlier run"),
    ([{"op": "deployment", "id": "d"}, {"op": "deployment", "id": "d"}],
     r"^stream operation 2: id 'd' is already the label of an earlier deployment"),
    ([{"op": "task_run", "id": "t"}, {"op": "task_run", "id": "u", "flow_run": "t"}],
     r"^stream operation 2: unknown flow run 't' \(the label of a task run\)"),
    ([{"op": "flow_run", "id": "f", "deployment": "nope"}], r"^stream operation 1: unknown deployment 'nope'"),
    ([{"op": "task_run", "id": "t"}, {"op": "advance", "seconds": 1},
      {"op": "propose", "run": "t", "state": {"type": "DONE"}}], r"^stream operation 3: propose.state.type"),
    ([{"op": "task_run", "id": ["t"]}], r"^stream operation 1: id must be a string or a number, got \['t'\]"),
])
def test_bad_operations_given_from_python_are_named(ops, message):
    # (an unknown op used to be skipped: a benchmark of nothing)
    with pytest.raises(ValidationError, match=message):
        bench_rules(stream=ops, kind=None)


def test_benchmark_rule_warns_when_its_rule_never_applies_and_names_a_lone_class(benchmark):
    with pytest.warns(UserWarning, match=r"RejectEveryStart does not apply to PENDING -> COMPLETED"):
        stats = benchmark_rule(benchmark, RejectEveryStart, Completed(), initial=Pending(), kind="task")
    assert stats.calls == stats.skip
    with pytest.raises(ValidationError, match="after must be a list of rule classes"):
        benchmark_rule(None, CountsItsCleanups, Running(), initial=Pending(), after=RejectEveryStart)


def test_cli(capsys, tmp_path):
    assert main(["--policy", "CoreTaskPolicy", "--transitions", "50"]) == 0
    out = capsys.readouterr().out
    assert "CoreTaskPolicy (task runs), 50 transitions" in out and "SecureTaskConcurrencySlots" in out
    assert main(["--policy", "CoreFlowPolicy", "--transitions", "30", "--json", "--no-global"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["transitions"] == 30 and all(r["role"] != "global" for r in data["rules"])
    assert main(["--policy", "nope"]) == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err
    assert main(["--policy", ":X"]) == 2
    assert "cannot load policy ':X': write 'module:Class'" in capsys.readouterr().err
    assert main(["--transitions", "0"]) == 2


class DelayEveryStart(BaseOrchestrationRule):
    FROM_STATES = ALL_STATES
    TO_STATES = [StateType.RUNNING]

    def before_transition(self, initial, proposed, context):
        self.delay_transition(5, "not yet")


def test_benchmark_rule_helper(benchmark):
    stats = benchmark_rule(benchmark, DelayEveryStart, Running(), initial=Pending(), kind="task")
    assert stats.calls >= 1 and stats.wait == stats.calls and stats.accept == 0
    assert benchmark.extra_info["status"] == "WAIT" and benchmark.extra_info["rule"] == "DelayEveryStart"


class CountsItsCleanups(BaseOrchestrationRule):
    FROM_STATES = ALL_STATES
    TO_STATES = ALL_STATES
    cleanups = 0

    def cleanup(self, initial, validated, context):
        CountsItsCleanups.cleanups += 1  # type(self) is the benchmark's timed subclass


class RejectEveryStart(BaseOrchestrationRule):
    FROM_STATES = ALL_STATES
    TO_STATES = [StateType.RUNNING]

    def before_transition(self, initial, proposed, context):
        self.reject_transition(None, "no")


@pytest.mark.parametrize("kind", ["task", "flow"])
def test_benchmark_rule_measures_the_cleanup_a_later_rule_causes(benchmark, kind):
    CountsItsCleanups.cleanups = 0
    stats = benchmark_rule(benchmark, CountsItsCleanups, Running(), initial=Pending(), kind=kind,
                           after=[RejectEveryStart])
    assert stats.calls >= 1 and stats.cleanup == stats.calls == CountsItsCleanups.cleanups
    assert stats.after == 0 and benchmark.extra_info["status"] == "REJECT"
    assert benchmark.extra_info["cleanup"] == stats.calls


def test_benchmark_rule_names_a_non_rule_among_the_later_rules():
    with pytest.raises(ValidationError, match="not_a_rule"):
        benchmark_rule(None, CountsItsCleanups, Running(), initial=Pending(), after=["not_a_rule"])


class BoomEveryThird(BaseOrchestrationRule):
    FROM_STATES = ALL_STATES
    TO_STATES = ALL_STATES
    calls = 0

    def before_transition(self, initial, proposed, context):
        type(self).calls += 1
        if type(self).calls % 3 == 0:
            raise RuntimeError("boom")


class BoomPolicy(BaseOrchestrationPolicy):
    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [BoomEveryThird, *CoreTaskPolicy.priority()]


def test_a_rule_that_sometimes_raises_is_measured_and_its_errors_counted(capsys):
    BoomEveryThird.calls = 0
    report = bench_rules(BoomPolicy, transitions=90, seed=1, baseline=True)  # the baseline agrees
    boom = report.rules[0]
    assert report.transitions == 90 and report.statuses["ERROR"] == boom.error == boom.calls // 3
    assert sum(report.statuses.values()) == 90
    # what was raised is shown, not only counted
    assert boom.errors == {"RuntimeError('boom')": boom.error}
    assert f"BoomEveryThird: RuntimeError('boom') x{boom.error}" in report.format()
    assert json.loads(json.dumps(report.as_dict()))["rules"][0]["errors"] == boom.errors
    # an exception that is not a rule's still ends the run
    with pytest.raises(ValidationError, match="unknown run"):
        bench_rules(BoomPolicy, stream=[{"op": "propose", "run": "ghost", "state": {"type": "RUNNING"}}])


class TransformBoomsEveryThird(BaseUniversalTransform):
    calls = 0

    def before_transition(self, context):
        type(self).calls += 1
        if type(self).calls % 3 == 0:
            raise ValueError("transform before failed")


class StatelessTransformBoomsAfter(BaseUniversalTransform):
    _STATELESS_HOOKS = True  # the pipeline calls its hooks as plain functions
    calls = [0]

    def after_transition(self, context):
        StatelessTransformBoomsAfter.calls[0] += 1
        if StatelessTransformBoomsAfter.calls[0] % 4 == 0:
            raise ValueError("transform after failed")


@pytest.mark.parametrize("transform, text", [(TransformBoomsEveryThird, "ValueError('transform before failed')"),
                                             (StatelessTransformBoomsAfter, "ValueError('transform after failed')")])
def test_a_transform_that_raises_is_an_error_outcome_and_the_run_goes_on(transform, text):
    class TransformPolicy(BaseOrchestrationPolicy):
        RUN_KIND = "task"

        @staticmethod
        def priority():
            return [*CoreTaskPolicy.priority(), transform]

    report = bench_rules(TransformPolicy, transitions=60, seed=1)
    stats = next(r for r in report.rules if r.name == transform.__name__)
    assert report.transitions == 60 and sum(report.statuses.values()) == 60
    assert report.statuses["ERROR"] == stats.error > 0 and stats.errors == {text: stats.error}


def test_benchmark_rule_counts_a_hook_that_raises(benchmark):
    BoomEveryThird.calls = 2  # the first round raises (one round with --benchmark-disable)
    stats = benchmark_rule(benchmark, BoomEveryThird, Running(), initial=Pending(), kind="task")
    assert stats.error >= 1 and stats.error + stats.accept == stats.calls


class RaisesAfter(BaseOrchestrationRule):
    FROM_STATES = ALL_STATES
    TO_STATES = ALL_STATES

    def after_transition(self, initial, validated, context):
        raise RuntimeError("after")


class RaisesInCleanup(BaseOrchestrationRule):
    FROM_STATES = ALL_STATES
    TO_STATES = ALL_STATES

    def cleanup(self, initial, validated, context):
        raise RuntimeError("cleanup")


@pytest.mark.parametrize("rule, after, counted", [(RaisesAfter, [], "after"),
                                                  (RaisesInCleanup, [RejectEveryStart], "cleanup")])
def test_a_hook_that_raises_on_exit_is_counted_under_the_hook_it_was(benchmark, rule, after, counted):
    stats = benchmark_rule(benchmark, rule, Running(), initial=Pending(), kind="task", after=after)
    other = "cleanup" if counted == "after" else "after"
    assert stats.calls >= 1 and stats.error == stats.calls == getattr(stats, counted)
    assert getattr(stats, other) == 0


class SeesTheLiveProposal(BaseOrchestrationRule):
    SAFE_COPIES = False
    FROM_STATES = ALL_STATES
    TO_STATES = ALL_STATES
    seen: list = []

    def before_transition(self, initial, proposed, context):
        type(self).seen.append(proposed is context.proposed_state)


def test_benchmark_rule_keeps_a_rules_opt_out_of_safe_copies(benchmark):
    # Measured as it runs in production: handed the live objects, not copies.
    SeesTheLiveProposal.seen.clear()
    benchmark_rule(benchmark, SeesTheLiveProposal, Running(), initial=Pending(), kind="task")
    assert SeesTheLiveProposal.seen and all(SeesTheLiveProposal.seen)


def test_benchmark_rule_rejects_non_rules():
    with pytest.raises(ValidationError, match="not a rule class"):
        benchmark_rule(None, CoreFlowPolicy(), Running())


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_builtin_policy_runs_on_its_synthetic_stream(name):
    report = bench_rules(name, transitions=60, seed=2)
    assert report.transitions == 60
    _check_consistent(report)


def test_baseline_replays_the_same_stream_uninstrumented(capsys):
    report = bench_rules("CoreFlowPolicy", transitions=150, seed=4, baseline=True)  # raises if outcomes differ
    assert report.baseline_seconds > 0
    assert "baseline (same stream, uninstrumented)" in report.format()
    assert main(["--transitions", "40", "--baseline"]) == 0
    assert "baseline" in capsys.readouterr().out


class CountsCalls(BaseOrchestrationRule):
    """A rule whose answer depends on how often it was called, across benchmark
    passes: not a rule a benchmark can repeat. `calls` is one list per subclass, [calls
    so far], so the benchmark's instrumented subclass of it counts in the same one."""

    FROM_STATES = ALL_STATES
    TO_STATES = ALL_STATES
    calls: list

    def before_transition(self, initial, proposed, context):
        self.calls[0] += 1
        self.answer(self.calls[0])

    def answer(self, call: int) -> None:
        raise NotImplementedError


class RaisesOnSecondCall(CountsCalls):
    calls = [0]

    def answer(self, call):
        if call == 2:  # the measured run's first proposal passes, the baseline's fails
            raise ValueError("flaky")


class FlakyPolicy(BaseOrchestrationPolicy):
    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [RaisesOnSecondCall]


def test_a_baseline_that_raises_where_the_measured_run_did_not_is_a_named_mismatch(capsys, tmp_path):
    ops = [{"op": "task_run", "id": "a", "state": {"type": "PENDING"}},
           {"op": "propose", "run": "a", "state": {"type": "RUNNING"}}]
    RaisesOnSecondCall.calls[0] = 1  # the measured proposal is call 2: it raises, the baseline's does not
    with pytest.raises(BaselineMismatchError, match="the baseline .* answered differently .* keeps state between runs"):
        bench_rules(FlakyPolicy, stream=ops, baseline=True)
    RaisesOnSecondCall.calls[0] = 0  # the measured proposal passes, the baseline's raises
    with pytest.raises(BaselineMismatchError, match=r"proposal 0 raised ValueError\('flaky'\)") as caught:
        bench_rules(FlakyPolicy, stream=ops, baseline=True)
    assert isinstance(caught.value, RuntimeError)  # what the docstring promised before it had a name
    # The command line says so and exits 2, rather than a traceback.
    path = tmp_path / "ops.jsonl"
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    RaisesOnSecondCall.calls[0] = 0
    assert main(["--policy", f"{__name__}:FlakyPolicy", "--stream", str(path), "--baseline"]) == 2
    assert "error: the baseline's proposal 0 raised" in capsys.readouterr().err


def test_a_python_stream_holding_state_objects_gets_a_baseline():
    ops = [{"op": "task_run", "id": "a", "state": Pending()}, {"op": "propose", "run": "a", "state": Running()}]
    report = bench_rules("CoreTaskPolicy", stream=ops, baseline=True)
    assert report.statuses == {"ACCEPT": 1} and report.baseline_seconds > 0


def test_the_operations_kept_for_a_baseline_are_invisible_to_the_collector(monkeypatch):
    # The collector's passes are charged to whichever rule runs; the operations kept
    # for the baseline must not lengthen them (--baseline made every rule look slower).
    apply, kept = _Replayer.apply, []

    def watch(self, op):
        result = apply(self, op)
        if self.record:
            kept.append(gc.is_tracked(self.record[-1]))
        return result

    monkeypatch.setattr(_Replayer, "apply", watch)
    bench_rules("CoreTaskPolicy", transitions=50, seed=1, baseline=True)
    assert kept and not any(kept)


def test_a_recorded_stream_decides_the_run_kind_and_the_default_policy(tmp_path):
    stream = tmp_path / "flows.jsonl"
    recorded = bench_rules("CoreFlowPolicy", transitions=150, seed=5, record=str(stream))
    replayed = bench_rules(stream=str(stream))  # no policy, no kind: the stream's flow runs decide
    assert (replayed.kind, replayed.policy) == ("flow", "CoreFlowPolicy")
    assert replayed.statuses == recorded.statuses
    assert any(r.role == "global" and r.calls for r in replayed.rules)  # the flow globals were timed
    ops = read_stream(str(stream))
    assert bench_rules("MinimalFlowPolicy", stream=ops).kind == "flow"  # an iterable of ops too


@pytest.mark.parametrize("policy, kind, says", [
    ("CoreTaskPolicy", None, "CoreTaskPolicy is a task-run policy, but the runs are flow runs"),
    ("CoreFlowPolicy", "task", "kind='task', but the stream proposes states for flow runs"),
])
def test_a_policy_or_kind_contradicting_the_stream_is_refused(tmp_path, policy, kind, says):
    stream = tmp_path / "flows.jsonl"
    bench_rules("CoreFlowPolicy", transitions=20, record=str(stream))
    with pytest.raises(ValidationError, match=says):
        bench_rules(policy, stream=str(stream), kind=kind)


def test_a_synthetic_stream_gives_its_run_kind():
    report = bench_rules(None, stream=synthetic_stream("flow", 50, 0))
    assert report.kind == "flow" and report.policy == "CoreFlowPolicy"
    with pytest.raises(ValidationError, match="CoreTaskPolicy is a task-run policy, but the runs are flow runs"):
        bench_rules("CoreTaskPolicy", stream=synthetic_stream("flow", 50, 0))


def test_a_policy_whose_name_says_nothing_needs_a_kind_and_one_that_says_is_checked():
    class Neutral(BaseOrchestrationPolicy):
        priority = staticmethod(CoreTaskPolicy.priority)

    class Derived(CoreTaskPolicy):  # a built-in policy's subclass keeps its RUN_KIND
        pass

    with pytest.raises(ValidationError, match="cannot tell whether Neutral is for flow or task runs"):
        bench_rules(Neutral, transitions=10)
    assert bench_rules(Neutral, transitions=10, kind="task").kind == "task"
    assert bench_rules(Derived, transitions=10).kind == "task"
    with pytest.raises(ValidationError, match="Derived is a task-run policy, but the runs are flow runs"):
        bench_rules(Derived, transitions=10, kind="flow")
    with pytest.raises(ValidationError, match="CoreFlowPolicy is a flow-run policy, but the runs are task runs"):
        bench_rules("CoreFlowPolicy", transitions=10, kind="task")


def test_an_unwritable_record_path_is_refused_before_the_run(tmp_path, capsys):
    missing = tmp_path / "no_such_dir" / "stream.jsonl"
    assert main(["--transitions", "10", "--record", str(missing)]) == 2
    assert "cannot write the stream to" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_repeated_passes_replay_the_same_transitions_and_keep_each_least_time(capsys):
    single = bench_rules("CoreTaskPolicy", transitions=N, seed=3)
    report = bench_rules("CoreTaskPolicy", transitions=N, seed=3, repeat=3, baseline=True)
    assert report.repeat == 3 and report.statuses == single.statuses
    assert [(r.name, r.calls, r.accept, r.reject, r.wait) for r in report.rules] == \
        [(r.name, r.calls, r.accept, r.reject, r.wait) for r in single.rules]
    assert all(r.spread >= 0 for r in report.rules) and report.baseline_seconds > 0
    assert report.as_dict()["repeat"] == 3 and "spread" in report.as_dict()["rules"][0]
    text = report.format()
    assert "(best of 3 passes)" in text and "spread" in text.splitlines()[3]
    assert "spread" not in single.format()
    assert main(["--transitions", "30", "--repeat", "2"]) == 0
    assert "best of 2 passes" in capsys.readouterr().out
    assert main(["--transitions", "30", "--repeat", "0"]) == 2
    assert "repeat must be a positive integer, got 0" in capsys.readouterr().err


def test_each_figure_is_its_least_over_the_passes_and_its_spread_the_rest():
    from engine.rulebench import RuleStats, _keep_best

    replayer = _Replayer(Engine(clock=ManualClock()), CoreTaskPolicy, "task")
    rules = [RuleStats("a", "rule"), RuleStats("b", "rule")]
    _keep_best(replayer, rules, [(3.0, [1.0, 0.5]), (2.5, [1.5, 0.25]), (4.0, [1.25, 0.75])])
    assert replayer.seconds == 2.5
    assert [(r.seconds, r.spread) for r in rules] == [(1.0, 0.5), (0.25, 0.5)]


class AcceptsOnlyOnce(CountsCalls):
    # The second pass answers differently.
    calls = [0]

    def answer(self, call):
        if call > 1:
            self.reject_transition(None, "seen before")


class OncePolicy(BaseOrchestrationPolicy):
    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [AcceptsOnlyOnce]


def test_a_pass_answering_differently_from_the_first_is_a_named_mismatch():
    from engine.rulebench import ReplayMismatchError

    ops = [{"op": "task_run", "id": "a", "state": {"type": "PENDING"}},
           {"op": "propose", "run": "a", "state": {"type": "RUNNING"}}]
    AcceptsOnlyOnce.calls[0] = 0
    with pytest.raises(ReplayMismatchError, match="pass 2 answered differently from the first"):
        bench_rules(OncePolicy, stream=ops, repeat=2)


class AfterOnly(BaseUniversalTransform):
    _STATELESS_HOOKS = True

    def after_transition(self, context):
        pass


class RaisesOnRunning(BaseOrchestrationRule):
    FROM_STATES = ALL_STATES
    TO_STATES = [StateType.RUNNING]

    def before_transition(self, initial, proposed, context):
        raise ValueError("no")


class AfterOnlyPolicy(BaseOrchestrationPolicy):
    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [RaisesOnRunning, AfterOnly]


def test_a_transform_with_only_an_after_hook_counts_every_transition_it_entered():
    # Its after-hook does not run for the proposal a rule's error ends; it was
    # entered all the same.
    ops = [{"op": "task_run", "id": "a", "state": {"type": "PENDING"}},
           {"op": "propose", "run": "a", "state": {"type": "RUNNING"}},
           {"op": "propose", "run": "a", "state": {"type": "COMPLETED"}}]
    report = bench_rules(AfterOnlyPolicy, stream=ops)
    assert report.statuses == {"ERROR": 1, "ACCEPT": 1}
    [after_only] = [r for r in report.rules if r.name == "AfterOnly"]
    assert (after_only.calls, after_only.after) == (2, 1)


class ProposesForItsSibling(BaseOrchestrationRule):
    # A rule that calls the engine: starting run "a" also starts its sibling.
    FROM_STATES = ALL_STATES
    TO_STATES = [StateType.RUNNING]
    sibling = None

    def before_transition(self, initial, proposed, context):
        if context.run.id != ProposesForItsSibling.sibling:
            context.session.set_task_run_state(ProposesForItsSibling.sibling, Running(), force=True)


class SiblingPolicy(BaseOrchestrationPolicy):
    RUN_KIND = "task"

    @staticmethod
    def priority():
        return [ProposesForItsSibling, AfterOnly]


def test_a_rules_nested_engine_calls_are_its_own_time_not_more_calls(monkeypatch):
    # The nested proposal runs the policy and the global transforms again, inside
    # the rule's hook: counted there, it would show one stream proposal as two.
    apply = _Replayer.apply

    def remember_sibling(self, op):
        result = apply(self, op)
        if op.get("id") == "b":
            ProposesForItsSibling.sibling = self.runs["b"].id
        return result

    monkeypatch.setattr(_Replayer, "apply", remember_sibling)
    ops = [{"op": "task_run", "id": "b", "state": {"type": "PENDING"}},
           {"op": "task_run", "id": "a", "state": {"type": "PENDING"}},
           {"op": "propose", "run": "a", "state": {"type": "RUNNING"}}]
    report = bench_rules(SiblingPolicy, stream=ops)
    assert report.transitions == 1 and report.statuses == {"ACCEPT": 1}
    by_name = {r.name: r for r in report.rules}
    assert by_name["ProposesForItsSibling"].calls == 1 and by_name["AfterOnly"].calls == 1
    assert [(r.name, r.calls) for r in report.rules if r.role == "global" and r.calls != 1] == []


# Recording a stream given from Python ----------------------------------------------------------------------
class PydanticStyleState:
    """What a client's (pydantic) state gives as_state: its explicitly set fields."""

    def model_dump(self, exclude_unset: bool) -> dict:
        return {"type": StateType.COMPLETED, "message": "from a client"}


HOST, T1 = uuid.UUID(int=7), uuid.UUID(int=8)


def _python_ops() -> list[dict]:
    # A task stream as Python code writes one: the engine's objects and types
    # wherever its calls take them (labels, run fields, states and their details).
    plus_two = timezone(timedelta(hours=2))
    return [
        {"op": "tag_limit", "tag": "db", "limit": 1},
        {"op": "flow_run", "id": HOST, "state": Running(), "fields": {
            "expected_start_time": datetime(2024, 1, 1, 12, tzinfo=plus_two), "parameters": {"x": 1},
            "tags": ("a",), "empirical_policy": FlowRunPolicy(retries=1, pause_keys={"k2", "k1"})}},
        {"op": "task_run", "id": "t1", "flow_run": HOST, "state": {"type": StateType.PENDING}, "fields": {
            "id": T1, "tags": ("db",), "empirical_policy": TaskRunPolicy(retries=1, retry_delay=[0]),
            "task_inputs": {"p": [Parameter(name="p")]}, "total_run_time": timedelta(seconds=1.5),
            "expected_start_time": datetime(2024, 1, 1, 10)}},  # no offset: UTC, as the engine reads it
        {"op": "task_run", "id": "t2", "flow_run": HOST, "state": Pending(), "fields": {"tags": ["db"]}},
        {"op": "propose", "run": "t1", "state": Running(state_details=StateDetails(cache_key="k"))},
        {"op": "propose", "run": "t2", "state": Running()},  # WAIT: the tag's one slot is t1's
        {"op": "advance", "seconds": 30},
        {"op": "propose", "run": "t1", "state": Failed(message="boom", data={"k": (1, 2)})},  # retried
        {"op": "propose", "run": "t1", "state": State(type=StateType.RUNNING, name="Again",
                                                      timestamp=datetime(2030, 1, 1, tzinfo=timezone.utc))},
        {"op": "propose", "run": "t1", "state": Completed(state_details=StateDetails(
            cache_key="k", cache_expiration=datetime(2031, 1, 1, tzinfo=plus_two)))},
        {"op": "propose", "run": "t2", "state": Running()},
        {"op": "propose", "run": "t2", "state": PydanticStyleState()},
    ]


def _histories(ops: list[dict], given_ids: set) -> dict:
    """Each run's fields and state history after a plain replay of `ops`, by label
    (as text), with run ids as labels: the ids the engine draws itself (of runs and
    states not in `given_ids`: made by rules, given without one) differ every time."""
    replayer = _Replayer(_bench_engine(0), CoreTaskPolicy, "task")
    for op in ops:
        replayer.apply(op)
    label_of = {run.id: str(label) for label, run in replayer.runs.items()}
    out = {}
    for label, run in replayer.runs.items():
        flow = "FlowRun" in type(run).__name__
        states = (replayer.engine.read_flow_run_states if flow else replayer.engine.read_task_run_states)(run.id)
        fields = {name: getattr(run, name, None) for name in (
            "expected_start_time", "tags", "empirical_policy", "parameters", "task_inputs", "total_run_time")}
        fields["id"] = run.id if run.id in given_ids else None
        fields["flow_run_id"] = label_of.get(getattr(run, "flow_run_id", None))
        out[str(label)] = (fields, [
            (s.type, s.name, s.timestamp, s.message, s.data, s.id if s.id in given_ids else None,
             {**attrs.asdict(s.state_details), "flow_run_id": label_of.get(s.state_details.flow_run_id),
              "task_run_id": label_of.get(s.state_details.task_run_id)})
            for s in states])
    return out


def test_a_python_stream_is_recorded_in_the_engines_json_forms_and_replays_identically(tmp_path):
    # Before: the whole benchmark ran, then the write raised json's "TypeError:
    # Object of type FlowRunPolicy is not JSON serializable", the file cut to one line.
    ops, stream = _python_ops(), tmp_path / "python.jsonl"
    report = bench_rules("CoreTaskPolicy", stream=ops, record=str(stream), baseline=True)
    assert report.statuses == {"ACCEPT": 5, "WAIT": 1, "REJECT": 1}
    lines = [json.loads(line) for line in stream.read_text().splitlines()]
    assert len(lines) == len(ops)
    assert lines[1]["id"] == str(HOST) and lines[2]["flow_run"] == str(HOST)
    assert lines[1]["fields"]["expected_start_time"] == "2024-01-01T10:00:00+00:00"  # 12:00+02:00, in UTC
    assert lines[1]["fields"]["empirical_policy"]["pause_keys"] == ["k1", "k2"]
    assert lines[2]["state"] == {"type": "PENDING"} and lines[2]["fields"]["total_run_time"] == 1.5
    assert lines[3]["state"]["id"] == str(ops[3]["state"].id)
    assert lines[9]["state"]["state_details"] == {"cache_key": "k", "cache_expiration": "2030-12-31T22:00:00+00:00"}
    assert lines[11]["state"] == {"type": "COMPLETED", "message": "from a client"}
    # What the replay reads back is what was run: the same outcomes, runs and histories.
    replayed = bench_rules(stream=str(stream))
    assert replayed.statuses == report.statuses
    assert [(r.name, r.calls, r.accept, r.reject, r.wait) for r in replayed.rules] == \
        [(r.name, r.calls, r.accept, r.reject, r.wait) for r in report.rules]
    given_ids = {T1} | {op["state"].id for op in ops if isinstance(op.get("state"), State)}
    assert _histories(read_stream(str(stream)), given_ids) == _histories(ops, given_ids)


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


@pytest.mark.parametrize("op, says", [
    ({"op": "task_run", "id": Opaque(), "flow_run": "host", "fields": {"dynamic_key": "t3"}},
     r"\(task_run\): id is a [\w.]*Opaque \(Opaque\(\)\): a recorded stream holds JSON values and the engine's"),
    ({"op": "task_run", "id": ("t", 3), "flow_run": "host", "fields": {"dynamic_key": "t3"}},
     r"\(task_run\): id is a tuple \(\('t', 3\)\): a run's or deployment's label is recorded only as"),
    ({"op": "propose", "run": "t1", "state": Paused(timeout_seconds=30)},
     r"\(propose\): state\.state_details\.pause_timeout is a datetime\.timedelta "
     r"\(datetime\.timedelta\(seconds=30\)\): a pause timeout relative to when the state is proposed"),
    ({"op": "propose", "run": "t1", "state": Failed(data={"why": Opaque()})},
     r"\(propose\): state\.data\.why is a [\w.]*Opaque \(Opaque\(\)\)"),
    ({"op": "propose", "run": "t1", "state": Failed(data={"a": {Opaque(): 1}})},
     r"\(propose\): state\.data\.a\[Opaque\(\)\] is a [\w.]*Opaque \(Opaque\(\)\): a key of a recorded dict"),
], ids=["object as a label", "tuple as a label", "relative pause timeout", "object in state data", "object as a key"])
def test_a_value_no_line_can_hold_is_refused_before_the_run(tmp_path, monkeypatch, op, says):
    # Before: the whole run, then a TypeError from json with the file truncated to
    # the lines before the op; a tuple label was written as a list, which the
    # replay cannot look up.
    passes = []
    timed_pass = rulebench._timed_pass
    monkeypatch.setattr(rulebench, "_timed_pass", lambda *args, **kw: passes.append(1) or timed_pass(*args, **kw))
    ops = [{"op": "flow_run", "id": "host", "state": {"type": "RUNNING"}},
           {"op": "task_run", "id": "t1", "flow_run": "host", "state": {"type": "PENDING"}},
           {"op": "propose", "run": "t1", "state": {"type": "RUNNING"}},
           {"op": "task_run", "id": "t2", "flow_run": "host", "state": {"type": "PENDING"}},
           op,
           {"op": "propose", "run": "t2", "state": {"type": "RUNNING"}}]
    stream = tmp_path / "python.jsonl"
    stream.write_text("a previous stream\n")
    with pytest.raises(ValidationError, match=f"^cannot record stream operation 5 {says}"):
        bench_rules("CoreTaskPolicy", stream=ops, record=str(stream))
    assert passes == []  # refused before any work
    assert stream.read_text() == "a previous stream\n" and os.listdir(tmp_path) == ["python.jsonl"]


def test_a_run_that_fails_leaves_no_record_and_a_previous_one_whole(tmp_path):
    # Before: checking the path created an empty file, left there when the run failed.
    ops = [{"op": "task_run", "id": "a", "state": Pending()}, {"op": "propose", "run": "ghost", "state": Running()}]
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    old.write_text("a previous stream\n")
    for path in (new, old):
        with pytest.raises(ValidationError, match="unknown run 'ghost'"):
            bench_rules("CoreTaskPolicy", stream=ops, record=str(path))
    assert sorted(os.listdir(tmp_path)) == ["old.jsonl"] and old.read_text() == "a previous stream\n"


def test_a_write_failing_midway_leaves_the_previous_stream_whole(tmp_path, monkeypatch, capsys):
    # A full disk after two lines: before, the stream was left truncated to them.
    real_open = open

    class FullDisk:
        def __init__(self, fh):
            self.fh, self.lines = fh, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.lines += 1
            if self.lines > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(text)

    def opens_onto_a_full_disk(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return FullDisk(fh) if "w" in mode else fh

    stream = tmp_path / "task.jsonl"
    stream.write_text("a previous stream\n")
    stream.chmod(0o640)
    monkeypatch.setattr("engine.recorded_streams.open", opens_onto_a_full_disk, raising=False)
    with pytest.raises(ValidationError, match="cannot write the stream to .*: No space left on device"):
        bench_rules("CoreTaskPolicy", transitions=20, record=str(stream))
    assert stream.read_text() == "a previous stream\n" and os.listdir(tmp_path) == ["task.jsonl"]
    assert main(["--transitions", "20", "--record", str(stream)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    monkeypatch.undo()
    bench_rules("CoreTaskPolicy", transitions=20, record=str(stream))  # replaced whole, permissions kept
    assert len(read_stream(str(stream))) > 20 and stream.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_device_is_written_to_not_replaced(tmp_path):
    # /dev/null, say: renaming a new file over it would replace the device (for root).
    import stat
    import threading

    pipe, got, done = tmp_path / "pipe", [], threading.Event()
    os.mkfifo(pipe)

    def read_until_done():
        while not done.is_set():
            got.append(pipe.read_text())

    reader = threading.Thread(target=read_until_done, daemon=True)
    reader.start()
    bench_rules("CoreTaskPolicy", transitions=20, record=str(pipe))
    done.set()
    with contextlib.suppress(OSError):  # wake a reader waiting for a writer (ENXIO: none is)
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(timeout=10)
    assert stat.S_ISFIFO(pipe.stat().st_mode) and os.listdir(tmp_path) == ["pipe"]
    assert sum(json.loads(line)["op"] == "propose" for line in "".join(got).splitlines()) == 20


def test_the_readme_stream_example_replays_as_documented(tmp_path):
    # The README's recorded-stream block: the tag limit, deployment, runs and clock
    # move set things up; its one propose line is the one transition counted.
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(r"A recorded stream is one JSON object a line.*?```\n(.*?)```", readme, re.S)
    assert block, "README.md lost its recorded-stream example"
    path = tmp_path / "readme.jsonl"
    path.write_text(block.group(1))
    report = bench_rules(stream=str(path))
    assert report.transitions == 1 and report.statuses == {"ACCEPT": 1}
    assert report.kind == "task"


def test_a_stateless_transform_with_no_after_hook_shows_no_after_count():
    # Its exit is never observed (the pipeline calls its before-hook as a plain
    # function), so "after" is unknown, not 0; a transform with an after-hook counts.
    report = bench_rules("CoreTaskPolicy", transitions=200)
    by_name = {r.name: r for r in report.rules}
    assert by_name["SetRunStateType"].after is None and by_name["SetRunStateType"].calls == 200
    assert by_name["ReleaseTaskConcurrencySlots"].after == 200
    assert by_name["CacheRetrieval"].after is not None
    line = next(line for line in report.format().splitlines() if line.startswith("SetRunStateType [global]"))
    assert line.split()[3:11] == ["0", "0", "0", "0", "0", "0", "-", "0"]
    assert report.as_dict()["rules"][[r.name for r in report.rules].index("SetRunStateType")]["after"] is None
