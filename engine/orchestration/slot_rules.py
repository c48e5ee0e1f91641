"""Concurrency slots: deployment limits for flow runs (v2 counters) and tag limits
for task runs (v1 sets of run ids) (spec orchestration.md §8.7, §8.8, §8.19, §8.20)."""
from __future__ import annotations

import datetime as _dt
import weakref

from ..concurrency import bulk_decrement_active_slots, bulk_increment_active_slots, limits_for_tags
from ..records import CollisionStrategy, ConcurrencyLimit
from ..states import StateType
from .common import CoreRule, make_state
from .rules import ALL_STATES, BaseUniversalTransform

__all__ = [
    "SecureFlowConcurrencySlots",
    "ReleaseFlowConcurrencySlots",
    "SecureTaskConcurrencySlots",
    "ReleaseTaskConcurrencySlots",
    "DEPLOYMENT_SLOT_WAIT_SECONDS",
    "TAG_SLOT_WAIT_SECONDS",
]

S = StateType
# Prefect settings server.deployments.concurrency_slot_wait_seconds and
# server.tasks.tag_concurrency_slot_wait_seconds (defaults).
DEPLOYMENT_SLOT_WAIT_SECONDS = 30
TAG_SLOT_WAIT_SECONDS = 30

_HOLDING = frozenset({S.PENDING, S.RUNNING, S.CANCELLING})
_RUNNING_ISH = frozenset({S.RUNNING, S.CANCELLING})


def _deployment_limit(engine, run):
    """(deployment, linked v2 limit or None) of a flow run; deployment None if missing."""
    tables = engine._store.tables
    deployment = tables["deployment"].rows.get(run.deployment_id)
    if deployment is None or deployment.concurrency_limit_id is None:
        return deployment, None
    return deployment, tables["concurrency_limit_v2"].rows.get(deployment.concurrency_limit_id)


def _release_deployment_slot(engine, run) -> None:
    """Give back the flow run's slot on its deployment's limit, if there is one."""
    if run.deployment_id is None:
        return
    _, limit = _deployment_limit(engine, run)
    if limit is not None:
        bulk_decrement_active_slots(engine, [limit.id], 1)


class SecureFlowConcurrencySlots(CoreRule):
    """Take a deployment concurrency slot on the way to PENDING, or enqueue/cancel."""

    FROM_STATES = ALL_STATES - _HOLDING
    TO_STATES = (S.PENDING,)

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        if run.deployment_id is None:
            return
        engine = context.session
        deployment, limit = _deployment_limit(engine, run)
        if deployment is None:
            self.abort_transition("Deployment not found.")
            return
        if limit is None:
            return
        if limit.limit == 0:
            self.abort_transition(
                "The deployment concurrency limit is 0. The flow will deadlock if submitted again."
            )
            return
        if bulk_increment_active_slots(engine, [limit.id], 1):
            return
        options = deployment.concurrency_options
        strategy = options.collision_strategy if options is not None else CollisionStrategy.ENQUEUE
        now = context.now
        if strategy is CollisionStrategy.CANCEL_NEW:
            self.reject_transition(
                make_state(S.CANCELLED, "Cancelled", now, message="Deployment concurrency limit reached."),
                "Deployment concurrency limit reached.",
            )
        else:
            state = make_state(S.SCHEDULED, "AwaitingConcurrencySlot", now)
            state.state_details.scheduled_time = now + _dt.timedelta(seconds=DEPLOYMENT_SLOT_WAIT_SECONDS)
            self.reject_transition(state, "Deployment concurrency limit reached.")

    def cleanup(self, initial_state, validated_state, context):
        try:
            _release_deployment_slot(context.session, context.run)
        except Exception:  # noqa: BLE001 - Prefect logs and ignores release errors
            pass


class ReleaseFlowConcurrencySlots(BaseUniversalTransform):
    """Give the deployment slot back when a run leaves PENDING/RUNNING/CANCELLING."""

    _STATELESS_HOOKS = True

    def after_transition(self, context):
        proposed = context.proposed_state
        if proposed is None:
            return
        initial = context.initial_state
        if initial is None or initial.type not in _HOLDING or proposed.type in _HOLDING:
            return
        _release_deployment_slot(context.session, context.run)


# A tag limit's slot list is copy-on-write: a change stores a new list, a stored one
# is never mutated. Changing it in place after `touch` would roll back fine (the undo
# snapshot copies it), but reads hand out the live record, so a caller (another
# thread, say) may hold the list outside the engine lock; and the cache below is
# only sound for lists that never change.
#
# By limit, the list last found (or made) here to hold no duplicate, with its slots
# as a set: while the limit still holds that very list, "is this slot held?" is O(1)
# and a change needs no duplicate scan; any other list (an override, a rollback's
# copy, a load) is scanned once. Weak keys: a limit gone from memory takes its entry.
_MEMBERS: "weakref.WeakKeyDictionary[ConcurrencyLimit, tuple[list[str], set[str]]]" = weakref.WeakKeyDictionary()


def _members(limit: ConcurrencyLimit) -> set[str] | None:
    """The limit's slots as a set, or None if its list holds a duplicate. O(1) while
    it keeps the list last seen here, else O(S) (C-level) once."""
    slots = limit.active_slots
    known = _MEMBERS.get(limit)
    if known is not None and known[0] is slots:
        return known[1]
    members = set(slots)
    if len(members) != len(slots):
        return None
    _MEMBERS[limit] = (slots, members)
    return members


def _store_slots(store, limit: ConcurrencyLimit, slots: list[str]) -> None:
    store.touch("concurrency_limit", limit)
    limit.active_slots = slots


# Prefect rewrites a tag limit's slots through a set on every add or removal: a
# duplicate (only `reset_concurrency_limit_by_tag`'s override can store one) goes
# too. Its order is the set's; ours stays first-come, so it is repeatable. Without
# a duplicate that rewrite is an append or a removal (a C-level copy, and a scan to
# find the slot removed), or leaves the list as it is: no new list and no touch.
def _take_slot(store, limit: ConcurrencyLimit, slot: str) -> None:
    members = _members(limit)
    if members is None:
        _store_slots(store, limit, list(dict.fromkeys([*limit.active_slots, slot])))
    elif slot not in members:
        new = limit.active_slots.copy()
        new.append(slot)
        _store_slots(store, limit, new)
        # After the touch (which may raise): the set moves on to the new list.
        members.add(slot)
        _MEMBERS[limit] = (new, members)


def _give_back_slot(store, limit: ConcurrencyLimit, slot: str) -> None:
    members = _members(limit)
    if members is None:
        _store_slots(store, limit, [s for s in dict.fromkeys(limit.active_slots) if s != slot])
    elif slot in members:
        new = limit.active_slots.copy()
        new.remove(slot)
        _store_slots(store, limit, new)
        members.discard(slot)
        _MEMBERS[limit] = (new, members)


def _release(engine, tags, slot: str) -> None:
    store = engine._store
    for limit in limits_for_tags(engine, tags):
        _give_back_slot(store, limit, slot)


class SecureTaskConcurrencySlots(CoreRule):
    """Take a slot on every limited tag before RUNNING; WAIT when one is full."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    # Tags whose slot this rule took (for cleanup); an untagged run, the common case,
    # leaves it unset and costs no per-instance dict.
    _applied: tuple = ()

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        if not run.tags:
            return
        applied: list[str] = []
        self._applied = applied
        engine = context.session
        store = engine._store
        slot = str(run.id)
        # Prefect keeps iterating after a blocking tag (a free tag visited later is
        # taken and never given back); reproduced on purpose (spec §8.19).
        for limit in limits_for_tags(engine, run.tags):
            tag = limit.tag
            if limit.concurrency_limit == 0:
                _release(engine, applied, slot)
                self.abort_transition(
                    f'The concurrency limit on tag "{tag}" is 0 and will deadlock if the task tries to run again.'
                )
            elif len(limit.active_slots) >= limit.concurrency_limit:
                _release(engine, applied, slot)
                self.delay_transition(TAG_SLOT_WAIT_SECONDS, f"Concurrency limit for the {tag} tag has been reached")
            else:
                applied.append(tag)
                _take_slot(store, limit, slot)

    def cleanup(self, initial_state, validated_state, context):
        _release(context.session, self._applied, str(context.run.id))


class ReleaseTaskConcurrencySlots(BaseUniversalTransform):
    """Give tag slots back when a task run lands outside RUNNING/CANCELLING."""

    _STATELESS_HOOKS = True

    def after_transition(self, context):
        if context.proposed_state is None:
            return
        validated = context.validated_state
        if validated is None or validated.type in _RUNNING_ISH:
            return
        run = context.run
        if run.tags:
            _release(context.session, run.tags, str(run.id))
