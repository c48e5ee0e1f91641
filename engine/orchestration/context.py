"""The orchestration context: everything rules read and write during one transition
(spec orchestration.md §1, §6)."""
from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from ..errors import OrchestrationError, UniquenessError
from ..states import State, StateType
from ..validation import as_str
from .responses import ACCEPT_DETAILS, SetStateStatus, StateAbortDetails

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from ..records import FlowRun, TaskRun

__all__ = [
    "OrchestrationContext",
    "FlowOrchestrationContext",
    "TaskOrchestrationContext",
    "shallow_state_copy",
    "detached_state_copy",
]

_new = object.__new__
_set = object.__setattr__
_UNSET = object()  # "not looked up yet" (None is a valid answer)


def shallow_state_copy(state: State | None) -> State | None:
    """A copy whose top-level fields are independent while `state_details` and `data`
    stay shared (what rules may rely on). O(1), no converters re-run."""
    return None if state is None else state.shallow_copy()


def detached_state_copy(state: State | None) -> State | None:
    """A copy with its own `state_details` too (`data` still shared): for states the
    engine has stored, whose details a rule's writes must not reach. In Prefect rules
    see such states rebuilt from their database rows. O(1)."""
    if state is None:
        return None
    new = state.shallow_copy()
    new.state_details = state.state_details.copy()
    return new


def _hide_unpersisted_data(run: Any, validated: State) -> None:
    # Unpersisted results live only in this response; reads see no data.
    current = validated.shallow_copy()
    current.data = None
    run.state = current


class OrchestrationContext:
    """State of one transition. `run` is the live run record (never copied);
    `session` is the engine (the in-memory store plays the database session)."""

    __slots__ = (
        "session",
        "run",
        "initial_state",
        "proposed_state",
        "validated_state",
        "rule_signature",
        "finalization_signature",
        "response_status",
        "response_details",
        "orchestration_error",
        "parameters",
        "now",
        "_flow_run",
        "_detached",
    )

    run_kind = ""  # "flow_run" or "task_run" in the concrete classes

    def __init__(
        self,
        session: "Engine",
        run: Any,
        initial_state: State | None,
        proposed_state: State | None,
        parameters: dict | None = None,
        now: _dt.datetime | None = None,
    ) -> None:
        self.session = session
        self.run = run
        self.initial_state = initial_state
        self.proposed_state = proposed_state
        self.validated_state: State | None = None
        self.rule_signature: list[str] = []
        self.finalization_signature: list[str] = []
        self.response_status = SetStateStatus.ACCEPT
        self.response_details: Any = ACCEPT_DETAILS
        self.orchestration_error: BaseException | None = None
        self.parameters: dict = parameters if parameters is not None else {}
        # One reading of the clock per transition: every rule sees the same "now".
        self.now = now if now is not None else session._clock.now()
        self._flow_run = _UNSET
        self._detached = False  # stored states not yet swapped for copies (safe_copy)

    # derived -----------------------------------------------------------------------
    @property
    def engine(self) -> "Engine":
        return self.session

    @property
    def initial_state_type(self) -> StateType | None:
        s = self.initial_state
        return None if s is None else s.type

    @property
    def proposed_state_type(self) -> StateType | None:
        s = self.proposed_state
        return None if s is None else s.type

    @property
    def validated_state_type(self) -> StateType | None:
        s = self.validated_state
        return None if s is None else s.type

    @property
    def run_settings(self) -> Any:
        return self.run.empirical_policy

    def flow_run(self) -> "FlowRun | None":
        raise NotImplementedError

    def task_run(self) -> "TaskRun | None":
        raise NotImplementedError

    # copies -------------------------------------------------------------------------
    def safe_copy(self) -> "OrchestrationContext":
        """Copy for a user rule's hooks: top-level fields independent; `run` and
        `session` shared; states' details and data shared with this context's
        (`parameters` a new dict), after this context's stored states are replaced
        by copies with their own details (`_detach_stored_states`). O(fields)."""
        self._detach_stored_states()
        new = _new(type(self))
        for name in OrchestrationContext.__slots__:
            _set(new, name, getattr(self, name))
        new.initial_state = shallow_state_copy(self.initial_state)
        new.proposed_state = shallow_state_copy(self.proposed_state)
        new.validated_state = shallow_state_copy(self.validated_state)
        new.parameters = dict(self.parameters)
        new.rule_signature = list(self.rule_signature)
        new.finalization_signature = list(self.finalization_signature)
        return new

    def _detach_stored_states(self) -> None:
        # The initial state (and, once written, the validated one) is a live stored
        # state, whose details storage shares. In Prefect rules see states rebuilt
        # from database rows, so their writes reach the answer but never storage: the
        # context swaps in copies with their own details before a user rule sees them.
        # The proposal stays shared: rules may set its details, as in Prefect.
        if not self._detached:
            self._detached = True
            stored = self.initial_state
            self.initial_state = detached_state_copy(stored)
            if stored is not None and self.validated_state is stored:
                self.validated_state = self.initial_state  # a nullified proposal's answer
        validated, current = self.validated_state, self.run.state
        if validated is not None and current is not None and (
            validated is current or validated.state_details is current.state_details
        ):
            self.validated_state = detached_state_copy(validated)

    def entry_context(self) -> tuple[State | None, State | None, "OrchestrationContext"]:
        """(copy of initial, copy of proposed, copy of context) for before-hooks."""
        context = self.safe_copy()
        return shallow_state_copy(self.initial_state), shallow_state_copy(self.proposed_state), context

    def exit_context(self) -> tuple[State | None, State | None, "OrchestrationContext"]:
        """(copy of initial, copy of validated, copy of context) for after/cleanup hooks."""
        context = self.safe_copy()
        return shallow_state_copy(self.initial_state), shallow_state_copy(self.validated_state), context

    # validation ---------------------------------------------------------------------
    def validate_proposed_state(self) -> None:
        """Write the proposed state (or keep the current one when nullified); any
        failure becomes ABORT "Error validating state: ..." with nothing written,
        except storage conflicts (UniquenessError), which propagate. Returns None."""
        # One frame on the hot path: the write is inlined here rather than a helper.
        run = self.run
        proposed = self.proposed_state
        try:
            if proposed is None:
                current = run.state if run.state_id is not None else None
                if current is None:
                    raise OrchestrationError(
                        f"{self.run_kind.replace('_', ' ')} {run.id} has no current state to keep"
                    )
                initial = self.initial_state
                # After a user rule saw the states, the context holds a copy of the
                # current one (see _detach_stored_states); the answer is that copy.
                detached = self._detached and initial is not None and initial.id == current.id
                self.validated_state = initial if detached else current
                return
            name = proposed.name
            if name.__class__ is not str or not name.isascii():  # a rule's rename_state
                proposed.name = as_str(name, "state name", False)
            data = proposed.data
            if data is None:
                # One row written: nothing partial can be left behind on failure.
                validated = self.session._store_state(self.run_kind, run, proposed)
            elif data.__class__ is dict and data.get("type") == "unpersisted":
                validated = self.session._store_state(self.run_kind, run, proposed)
                _hide_unpersisted_data(run, validated)
            else:
                store = self.session._store
                # Artifact + row: a savepoint makes a failed write leave neither.
                store.begin()
                try:
                    validated = self.session._store_state(self.run_kind, run, proposed)
                except BaseException:
                    store.rollback()
                    raise
                store.commit()
                data = validated.data
                if isinstance(data, dict) and data.get("type") == "unpersisted":
                    _hide_unpersisted_data(run, validated)
            run.updated = self.now
            self.validated_state = validated
        except UniquenessError:
            # A database error: Prefect re-raises these (HTTP 503).
            self.proposed_state = None
            raise
        except Exception as exc:  # noqa: BLE001 - every other failure is an ABORT
            self.proposed_state = None
            self.validated_state = None
            self.response_status = SetStateStatus.ABORT
            self.response_details = StateAbortDetails(reason=f"Error validating state: {exc!r}")


class FlowOrchestrationContext(OrchestrationContext):
    """Context of a flow-run transition."""

    __slots__ = ()
    run_kind = "flow_run"

    def flow_run(self) -> "FlowRun":
        return self.run

    def task_run(self) -> None:
        return None


class TaskOrchestrationContext(OrchestrationContext):
    """Context of a task-run transition."""

    __slots__ = ()
    run_kind = "task_run"

    def flow_run(self) -> "FlowRun | None":
        """The task's flow run (None for autonomous tasks or a missing run). O(1);
        looked up once per transition (several rules ask)."""
        flow_run = self._flow_run
        if flow_run is _UNSET:
            flow_run_id = self.run.flow_run_id
            flow_run = None if flow_run_id is None else self.session._store.tables["flow_run"].rows.get(flow_run_id)
            self._flow_run = flow_run
        return flow_run

    def task_run(self) -> "TaskRun":
        return self.run
