"""The orchestration context: everything rules read and write during one transition
(spec orchestration.md §1, §6)."""
from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from ..errors import OrchestrationError, UniquenessError
from ..states import State, StateType
from .responses import ACCEPT_DETAILS, SetStateStatus, StateAbortDetails

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from ..records import FlowRun, TaskRun

__all__ = [
    "OrchestrationContext",
    "FlowOrchestrationContext",
    "TaskOrchestrationContext",
    "shallow_state_copy",
]

_new = object.__new__
_set = object.__setattr__
_UNSET = object()  # "not looked up yet" (None is a valid answer)


def shallow_state_copy(state: State | None) -> State | None:
    """A copy whose top-level fields are independent while `state_details` and `data`
    stay shared (what rules may rely on). O(1), no converters re-run."""
    return None if state is None else state.shallow_copy()


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
        """Shallow copy: top-level fields independent; `run`, `session`, the states'
        details and data shared; `parameters` a new dict. O(fields)."""
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

    def entry_context(self) -> tuple[State | None, State | None, "OrchestrationContext"]:
        """(copy of initial, copy of proposed, copy of context) for before-hooks."""
        return shallow_state_copy(self.initial_state), shallow_state_copy(self.proposed_state), self.safe_copy()

    def exit_context(self) -> tuple[State | None, State | None, "OrchestrationContext"]:
        """(copy of initial, copy of validated, copy of context) for after/cleanup hooks."""
        return shallow_state_copy(self.initial_state), shallow_state_copy(self.validated_state), self.safe_copy()

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
                self.validated_state = current
                return
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
