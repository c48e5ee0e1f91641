"""Answer triggers_scenarios.py's scenarios with Prefect 3.1.0's own trigger code.

usage: $PREFECT_VENV/bin/python tests/oracle/prefect_triggers.py IN.json OUT.jsonl [--db PATH]

Each scenario's trigger is saved as an automation in a fresh SQLite database and
loaded into prefect.server.events.triggers; its events go through
`reactive_evaluation` and the proactive-triggers service's passes through
`proactive_evaluation`, at virtual times (2024-01-01T00:00:00Z plus the script's
seconds). A pass runs, as `evaluate_proactive_triggers` runs it, only for a
proactive trigger and only once the time the previous pass returned has come; the
consumer's `periodic_evaluation` (which sweeps expired buckets) runs every 5 s. `fire` is replaced by a recorder and the
events-clock offset is held at 0 (the scripted times lie in the past). One line per
scenario: {"id": ..., "firings": [[second, run label], ...]}, the label being that of
the run a flow-run action would act on: the bucket's run (for_each on the run's id),
else the run of the firing's event (its triggering event, else its bucket's last
one), null when there is none.
"""
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import prefect_sandbox as sb  # noqa: E402  (must come before any Prefect import)

# (off: creating an automation would otherwise ask the running service to reload)
os.environ["PREFECT_API_SERVICES_TRIGGERS_ENABLED"] = "false"

import uuid  # noqa: E402
from datetime import timedelta  # noqa: E402

import pendulum  # noqa: E402
import prefect  # noqa: E402
from prefect.server.database.dependencies import provide_database_interface  # noqa: E402
from prefect.server.events import triggers  # noqa: E402
from prefect.server.events.actions import DoNothing  # noqa: E402
from prefect.server.events.models.automations import create_automation  # noqa: E402
from prefect.server.events.schemas.automations import Automation, EventTrigger, Posture  # noqa: E402
from prefect.server.events.schemas.events import ReceivedEvent  # noqa: E402

assert prefect.__version__ == "3.1.0", prefect.__version__

T0 = pendulum.datetime(2024, 1, 1, tz="UTC")
FIRED: list = []
NOW = {"t": 0}


async def record_firing(session, firing) -> None:
    # the run a flow-run action would act on (FlowRunAction.flow_run): the bucket's
    # run, else the run of the firing's event
    event = firing.triggering_event
    FIRED.append((NOW["t"], firing.triggering_labels.get("prefect.resource.id") or (event and event.resource.id)))


async def no_offset() -> float:
    return 0.0


triggers.fire = record_firing
triggers.get_events_clock_offset = no_offset


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


async def answer(scenario: dict) -> dict:
    trigger = EventTrigger(
        posture=Posture(scenario.get("posture", "Proactive")),
        for_each=set(scenario.get("for_each", ["prefect.resource.id"])), threshold=scenario["threshold"],
        match={"prefect.resource.id": "prefect.flow-run.*"}, after=set(scenario["after"]),
        expect=set(scenario["expect"]), within=timedelta(seconds=scenario["within"]),
    )
    automation = Automation(name=scenario["id"], trigger=trigger, actions=[DoNothing()])
    async with triggers.automations_session(begin_transaction=True) as session:
        automation = await create_automation(session, automation)
    await triggers.reset()
    triggers.load_automation(automation)
    [loaded] = triggers.triggers.values()
    runs = {label: uuid.uuid4() for _, _, label in scenario["events"]}
    labels = {f"prefect.flow-run.{rid}": label for label, rid in runs.items()}
    labels[None] = None
    # (second, 0 = event / 1 = sweep / 2 = pass, ...): at one second, events first,
    # then the consumer's periodic sweep (every 5 s), then the service's pass
    timeline = [(t, 0, name, label) for t, name, label in scenario["events"]]
    timeline += [(t, 1, None, None) for t in range(0, scenario["until"] + 1, 5)]
    timeline += [(t, 2, None, None) for t in range(0, scenario["until"] + 1, scenario["every"])]
    timeline.sort(key=lambda item: (item[0], item[1]))
    FIRED.clear()
    next_pass = None
    for t, kind, name, label in timeline:
        NOW["t"] = t
        if kind == 0:
            await triggers.reactive_evaluation(ReceivedEvent(
                occurred=at(t), received=at(t), event=f"prefect.flow-run.{name}",
                resource={"prefect.resource.id": f"prefect.flow-run.{runs[label]}"}, id=uuid.uuid4()))
        elif kind == 1:
            await triggers.periodic_evaluation(at(t))
        elif loaded.posture == Posture.Proactive and (next_pass is None or at(t) >= next_pass):
            next_pass = await triggers.proactive_evaluation(loaded, at(t))
    return {"id": scenario["id"], "firings": [[t, labels[rid]] for t, rid in FIRED]}


async def answer_file(inp: str, out: str) -> None:
    with open(inp, encoding="utf-8") as fh:
        scenarios = json.load(fh)
    await provide_database_interface().create_db()
    with open(out, "w", encoding="utf-8") as fh:
        for scenario in scenarios:
            fh.write(json.dumps(await answer(scenario)) + "\n")


if __name__ == "__main__":
    sys.exit(sb.answer_from_command_line(
        answer_file, "Answer automation-trigger scenarios with Prefect 3.1.0",
        "scenario JSON list (triggers_scenarios.py format)", "JSON lines {id, firings}"))
