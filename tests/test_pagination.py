"""Page-numbered reads (paginate_flows, paginate_flow_runs, paginate_deployments):
Prefect's paginate routes, a read at offset (page - 1) * limit plus a count."""
from __future__ import annotations

import datetime as dt

import pytest

from engine import Completed, Engine, ManualClock, PaginationResponse, Scheduled, ValidationError

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine() -> Engine:
    e = Engine(ManualClock(T0, tick=dt.timedelta(seconds=1)))
    for f in range(3):
        flow = e.create_flow(f"flow-{f}")
        for d in range(2):
            e.create_deployment(flow.id, f"dep-{f}-{d}")
        for r in range(7):
            e.create_flow_run(flow_id=flow.id, name=f"run-{f}-{r}", state=Completed() if r % 2 else Scheduled())
    return e


def pages(paginate, limit: int, **filters) -> list[PaginationResponse]:
    first = paginate(limit=limit, **filters)
    return [first] + [paginate(limit=limit, page=p, **filters) for p in range(2, first.pages + 2)]


@pytest.mark.parametrize("limit", [1, 2, 5, 21, 200])
def test_flow_run_pages_cover_the_read_in_order(engine, limit):
    everything = engine.read_flow_runs(sort="NAME_DESC")
    got = pages(engine.paginate_flow_runs, limit, sort="NAME_DESC")
    assert [r for p in got for r in p.results] == everything
    assert {(p.count, p.limit, p.pages) for p in got} == {(21, limit, -(-21 // limit))}
    assert [p.page for p in got] == list(range(1, got[0].pages + 2))
    assert got[-1].results == []  # the page after the last is empty, not an error


def test_flow_run_pages_apply_every_filter_to_results_and_count(engine):
    completed = {"state": {"type": {"any_": ["COMPLETED"]}}}
    flow_1 = {"name": {"any_": ["flow-1"]}}
    page = engine.paginate_flow_runs(flow_filter=flow_1, flow_run_filter=completed, limit=2, page=2)
    expected = engine.read_flow_runs(flow_filter=flow_1, flow_run_filter=completed)
    assert page.count == len(expected) == 3 and page.pages == 2 and page.results == expected[2:]


def test_flow_runs_default_to_id_descending_and_200(engine):
    page = engine.paginate_flow_runs()
    assert page.results == engine.read_flow_runs(sort="ID_DESC") and page.limit == 200 and page.pages == 1


def test_flows_and_deployments_paginate_by_name(engine):
    flows = pages(engine.paginate_flows, 2)
    assert [f.name for p in flows for f in p.results] == ["flow-0", "flow-1", "flow-2"]
    assert (flows[0].count, flows[0].pages) == (3, 2)
    deps = engine.paginate_deployments(flow_filter={"name": {"any_": ["flow-2"]}}, limit=1, page=2)
    assert [d.name for d in deps.results] == ["dep-2-1"] and (deps.count, deps.pages) == (2, 2)
    by_name_desc = engine.paginate_deployments(limit=3, sort="NAME_DESC")
    assert [d.name for d in by_name_desc.results] == ["dep-2-1", "dep-2-0", "dep-1-1"]


def test_no_matches_is_one_empty_page_count_of_zero(engine):
    page = engine.paginate_flow_runs(flow_run_filter={"name": {"any_": ["nothing"]}})
    assert (page.results, page.count, page.pages, page.page) == ([], 0, 0, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 201}, "Invalid limit: must be less than or equal to 200."),
    ({"limit": -1}, "Invalid limit: must be greater than or equal to 0."),
    ({"limit": 0}, "limit must be at least 1"),       # Prefect divides by it: a 500
    ({"limit": "10"}, "limit must be an integer"),
    ({"page": 0}, "page must be >= 1"),
    ({"page": 1.5}, "page must be an integer"),
    ({"sort": "SIDEWAYS"}, "SIDEWAYS"),
    ({"flow_run_filter": {"nmae": {}}}, "nmae"),
])
def test_bad_arguments_name_the_problem(engine, kwargs, message):
    for paginate in (engine.paginate_flow_runs, engine.paginate_flows, engine.paginate_deployments):
        with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
            paginate(**kwargs)
