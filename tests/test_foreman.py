"""Prefect's foreman service as `Engine.run_foreman_once`, and the queue-poll marks
(`mark_work_queues_ready` / `_not_ready`) its deployment and queue steps read.

Semantics from Prefect 3.1.0's services/foreman.py and models/work_queues.py: strict
"older than" comparisons, a worker's own heartbeat interval or the fallback, the raw
worker UPDATE leaving `updated` alone, pools going through update_work_pool (a new
status event id and transition time), a deployment judged with its queue's poll when
that queue was ever polled.
"""
from __future__ import annotations

import datetime as dt

import pytest

from engine import Engine, ForemanPass, ManualClock, ValidationError

T = dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T)


@pytest.fixture
def e(clock) -> Engine:
    return Engine(clock)


def worker(engine: Engine, pool, name: str):
    return next(w for w in engine.read_workers(pool.id) if w.name == name)


def test_a_worker_goes_offline_after_three_of_its_own_intervals_and_not_at_the_boundary(e, clock):
    pool = e.create_work_pool("p")
    e.worker_heartbeat(pool.id, "fast", 10)
    e.worker_heartbeat(pool.id, "default")  # no interval: the 30 s fallback
    clock.advance(30)
    assert e.run_foreman_once() == ForemanPass()  # 30 s is not *more* than 3 x 10 s
    assert not e.run_foreman_once()
    clock.advance(0.001)
    result = e.run_foreman_once()
    assert result.workers_offline == ((pool.id, "fast"),)
    assert (worker(e, pool, "fast").status, worker(e, pool, "default").status) == ("OFFLINE", "ONLINE")
    assert worker(e, pool, "fast").updated == T  # Prefect's raw UPDATE skips `updated`
    clock.advance(60)
    assert e.run_foreman_once().workers_offline == ((pool.id, "default"),)
    assert e.run_foreman_once().workers_offline == ()  # already OFFLINE
    e.worker_heartbeat(pool.id, "fast")
    assert worker(e, pool, "fast").status == "ONLINE"


def test_settings_change_the_multiple_and_the_fallback(e, clock):
    pool = e.create_work_pool("p")
    e.worker_heartbeat(pool.id, "w")
    clock.advance(11)
    assert not e.run_foreman_once(inactivity_heartbeat_multiple=1, fallback_heartbeat_interval_seconds=12)
    assert e.run_foreman_once(inactivity_heartbeat_multiple=1, fallback_heartbeat_interval_seconds=10)


def test_a_ready_pool_without_an_online_worker_goes_not_ready_with_a_status_event(e, clock):
    lonely = e.create_work_pool("lonely")
    staffed = e.create_work_pool("staffed")
    paused = e.create_work_pool("paused", is_paused=True)
    for pool, name in ((lonely, "a"), (staffed, "b"), (paused, "c")):
        e.worker_heartbeat(pool.id, name, 10, mark_pool_ready=True)
    assert (lonely.status, staffed.status, paused.status) == ("READY", "READY", "PAUSED")
    event = lonely.last_status_event_id
    clock.advance(20)
    e.worker_heartbeat(staffed.id, "b")
    clock.advance(15)
    result = e.run_foreman_once()
    assert result.workers_offline == ((lonely.id, "a"), (paused.id, "c"))
    assert result.work_pools_not_ready == (lonely.id,)
    assert (lonely.status, staffed.status, paused.status) == ("NOT_READY", "READY", "PAUSED")
    assert lonely.last_status_event_id not in (None, event)
    assert lonely.last_transitioned_status_at == lonely.updated == clock.now()
    assert e.run_foreman_once().work_pools_not_ready == ()  # only READY pools are marked
    e.worker_heartbeat(lonely.id, "a", mark_pool_ready=True)
    assert lonely.status == "READY"


def test_a_pool_with_one_online_worker_among_offline_ones_stays_ready(e, clock):
    pool = e.create_work_pool("p")
    e.worker_heartbeat(pool.id, "old", 10, mark_pool_ready=True)
    clock.advance(25)
    e.worker_heartbeat(pool.id, "new", 10)
    clock.advance(10)
    result = e.run_foreman_once()
    assert result.workers_offline == ((pool.id, "old"),) and result.work_pools_not_ready == ()
    assert pool.status == "READY"


def test_queue_polls_mark_queues_polled_and_ready(e, clock):
    pool = e.create_work_pool("p")
    q1 = e.read_work_queue(pool.default_queue_id)
    q2 = e.create_work_queue(pool.id, "q2")
    paused = e.create_work_queue(pool.id, "paused")
    e.update_work_queue(paused.id, is_paused=True)  # (created paused, it would be NOT_READY, as in Prefect)
    clock.advance(5)
    # Prefect's poll route: queues not NOT_READY are "polled", NOT_READY ones "ready".
    e.mark_work_queues_ready(polled_work_queue_ids=[paused.id], ready_work_queue_ids=[q1.id, q2.id])
    assert [(q.status, q.last_polled, q.updated) for q in (q1, q2, paused)] == [
        ("READY", clock.now(), clock.now()), ("READY", clock.now(), clock.now()), ("PAUSED", clock.now(), clock.now())]
    clock.advance(1)
    other = e.read_work_queue(e.create_work_pool("other").default_queue_id)
    e.mark_work_queues_ready(ready_work_queue_ids=[other.id, q1.id])
    assert [(q.status, q.last_polled) for q in (other, q1)] == [("READY", clock.now())] * 2
    before = [(q.status, q.last_polled, q.updated) for q in (q1, q2, paused, other)]
    clock.advance(1)
    e.mark_work_queues_ready()  # nothing named: nothing changes
    assert [(q.status, q.last_polled, q.updated) for q in (q1, q2, paused, other)] == before
    e.mark_work_queues_not_ready([paused.id, q2.id])
    assert [q.status for q in (q1, q2, paused)] == ["READY", "NOT_READY", "NOT_READY"]


def test_queues_and_deployments_not_polled_for_a_minute_go_not_ready(e, clock):
    flow = e.create_flow("f")
    pool = e.create_work_pool("p")
    default = e.read_work_queue(pool.default_queue_id)
    busy = e.create_work_queue(pool.id, "busy")
    never = e.create_work_queue(pool.id, "never")
    in_default = e.create_deployment(flow.id, "in-default", work_queue_id=default.id)
    in_busy = e.create_deployment(flow.id, "in-busy", work_queue_id=busy.id)
    in_never = e.create_deployment(flow.id, "in-never", work_queue_id=never.id)
    queueless = e.create_deployment(flow.id, "queueless")
    unpolled = e.create_deployment(flow.id, "unpolled", work_queue_id=default.id)
    e.mark_work_queues_ready(ready_work_queue_ids=[default.id, busy.id])
    e.mark_deployments_ready(deployment_ids=[in_default.id, in_busy.id, in_never.id, queueless.id])
    assert never.last_polled is None
    unpolled.status = "READY"  # READY but never polled: the foreman leaves it
    clock.advance(60)
    assert not e.run_foreman_once()  # 60 s is not *more* than the timeout
    clock.advance(1)
    e.mark_work_queues_ready(polled_work_queue_ids=[busy.id])  # its deployments' queue is fresh
    result = e.run_foreman_once()
    assert set(result.deployments_not_ready) == {in_default.id, in_never.id, queueless.id}
    assert result.work_queues_not_ready == (default.id,)
    assert [d.status for d in (in_default, in_busy, in_never, queueless, unpolled)] == [
        "NOT_READY", "READY", "NOT_READY", "NOT_READY", "READY"]
    assert (default.status, busy.status, never.status) == ("NOT_READY", "READY", "NOT_READY")
    assert in_default.updated == default.updated == clock.now()
    clock.advance(61)
    result = e.run_foreman_once(deployment_last_polled_timeout_seconds=120, work_queue_last_polled_timeout_seconds=30)
    assert result.deployments_not_ready == () and result.work_queues_not_ready == (busy.id,)


def test_oldest_polled_queues_are_marked_first(e, clock):
    pool = e.create_work_pool("p")
    later = e.create_work_queue(pool.id, "later")
    earlier = e.create_work_queue(pool.id, "earlier")
    e.mark_work_queues_ready(ready_work_queue_ids=[earlier.id])
    clock.advance(1)
    e.mark_work_queues_ready(ready_work_queue_ids=[later.id])
    clock.advance(120)
    assert e.run_foreman_once().work_queues_not_ready == (earlier.id, later.id)


@pytest.mark.parametrize("setting", [
    "inactivity_heartbeat_multiple", "fallback_heartbeat_interval_seconds",
    "deployment_last_polled_timeout_seconds", "work_queue_last_polled_timeout_seconds",
])
@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_settings_are_refused_by_name_and_change_nothing(e, clock, setting, bad):
    pool = e.create_work_pool("p")
    e.worker_heartbeat(pool.id, "w", 1)
    clock.advance(100)
    with pytest.raises(ValidationError, match=setting):
        e.run_foreman_once(**{setting: bad})
    assert worker(e, pool, "w").status == "ONLINE"


def test_bad_queue_ids_are_refused_and_change_nothing(e, clock):
    pool = e.create_work_pool("p")
    clock.advance(5)
    with pytest.raises(ValidationError, match="ready_work_queue_ids"):
        e.mark_work_queues_ready(polled_work_queue_ids=[pool.default_queue_id], ready_work_queue_ids=["nope"])
    assert e.read_work_queue(pool.default_queue_id).last_polled is None
    with pytest.raises(ValidationError, match="work_queue_ids"):
        e.mark_work_queues_not_ready("nope")


def test_a_foreman_pass_inside_a_failed_transaction_is_undone(e, clock):
    pool = e.create_work_pool("p")
    e.worker_heartbeat(pool.id, "w", 1, mark_pool_ready=True)
    clock.advance(10)
    with pytest.raises(RuntimeError):
        with e.transaction():
            assert e.run_foreman_once().workers_offline
            raise RuntimeError("undo")
    assert (worker(e, pool, "w").status, pool.status) == ("ONLINE", "READY")


@pytest.mark.parametrize("scheme", ["sqlite", "json"])
def test_what_a_pass_changes_is_kept_by_the_backends(tmp_path, scheme):
    url = f"{scheme}:///{tmp_path}/store.{'db' if scheme == 'sqlite' else 'json'}"
    clock = ManualClock(T)
    with Engine.open(url, clock=clock) as e:
        pool = e.create_work_pool("p")
        e.worker_heartbeat(pool.id, "w", 1, mark_pool_ready=True)
        e.mark_work_queues_ready(ready_work_queue_ids=[pool.default_queue_id])
        clock.advance(100)
        e.run_foreman_once()
    with Engine.open(url, clock=clock) as e:
        [pool] = e.read_work_pools()
        assert pool.status == "NOT_READY"
        assert [w.status for w in e.read_workers(pool.id)] == ["OFFLINE"]
        assert e.read_work_queue(pool.default_queue_id).status == "NOT_READY"
