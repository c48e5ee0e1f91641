"""Sessions for the Prefect-shaped async facade (`engine.models.*`).

    async with engine.session() as session:
        run = await models.flow_runs.create_flow_run(session, flow_run={...})

Design choice: a session is a handle with a lifetime, and **each awaited call is
its own engine transaction** (it commits when it returns). A session does not keep
one transaction open across `await`s, because:

* the engine serialises callers with a `threading.RLock`; an RLock belongs to a
  *thread*, not to an asyncio task, so other tasks on the same event-loop thread
  would walk straight into a transaction held open across an await, and their
  writes would be undone by our rollback;
* holding the lock across an await would stall every other thread for as long
  as the coroutine sleeps, and a synchronous engine call made on the loop thread
  while another task's session held it from elsewhere would deadlock.

So calls never hold the lock while suspended (the facade's functions never await
inside a call). For all-or-nothing groups use `await session.atomic(fn, ...)`,
which runs a synchronous function under one engine transaction: any exception
rolls the whole group back, and nothing else can interleave with it.
`commit()`/`flush()` are accepted for ported code and do nothing (everything is
already committed); `rollback()` raises, because pretending to roll back
committed calls would be a silent lie.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..errors import TransactionError

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["Session", "SessionContext"]

T = TypeVar("T")


class Session:
    """A lifetime-scoped handle on an engine; see the module docstring."""

    __slots__ = ("_engine", "_closed", "calls")

    def __init__(self, engine: "Engine") -> None:
        self._engine = engine
        self._closed = False
        self.calls = 0  # facade calls made through this session (diagnostics)

    @property
    def engine(self) -> "Engine":
        """The engine, or TransactionError once the session is closed. O(1)."""
        if self._closed:
            raise TransactionError("this session is closed; open a new one with `async with engine.session()`")
        return self._engine

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the session; later use raises TransactionError. Idempotent."""
        self._closed = True

    async def atomic(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(engine, *args, **kwargs)` in one engine transaction: all of its
        engine calls commit together or (on any exception) not at all.
        `fn` must be synchronous (no awaits can happen while the lock is held)."""
        engine = self.engine
        if inspect.iscoroutinefunction(fn):
            raise TransactionError("session.atomic needs a synchronous function, got a coroutine function")
        with engine.transaction():
            result = fn(engine, *args, **kwargs)
            if hasattr(result, "__await__"):
                close = getattr(result, "close", None)
                if close is not None:
                    close()  # never awaited: silence the "never awaited" warning
                # raised inside the transaction, so whatever fn did is undone
                raise TransactionError("session.atomic needs a synchronous function; it returned an awaitable")
        return result

    async def commit(self) -> None:
        """No-op kept for ported code: every call has already committed."""
        self.engine  # noqa: B018  (raises if closed)

    async def flush(self) -> None:
        """No-op kept for ported code."""
        self.engine  # noqa: B018

    async def rollback(self) -> None:
        """Always raises: calls commit individually (use `atomic` for groups)."""
        self.engine  # noqa: B018
        raise TransactionError(
            "runstate sessions commit every call as it returns; there is nothing to roll back. "
            "Group calls that must succeed or fail together with `await session.atomic(fn)`."
        )

    def begin(self, *args: Any, **kwargs: Any) -> None:
        """Always raises: a transaction spanning awaits is what a session cannot
        make atomic (see `rollback`); `atomic` groups calls."""
        self.engine  # noqa: B018
        raise TransactionError(
            "runstate sessions cannot hold a transaction open across awaits; every call commits as it "
            "returns. Group calls that must succeed or fail together with `await session.atomic(fn)`."
        )

    begin_nested = begin

    def __repr__(self) -> str:
        return f"<Session {'closed' if self._closed else 'open'} calls={self.calls}>"


class SessionContext:
    """What `engine.session()` returns: `async with` (or plain `with`) yields a
    Session and closes it on exit, whatever happened inside."""

    __slots__ = ("_engine", "_session")

    def __init__(self, engine: "Engine") -> None:
        self._engine = engine
        self._session: Session | None = None

    def _open(self) -> Session:
        if self._session is not None:
            raise TransactionError("this session context was already entered; call engine.session() again")
        self._session = Session(self._engine)
        return self._session

    async def __aenter__(self) -> Session:
        return self._open()

    async def __aexit__(self, *exc: Any) -> None:
        assert self._session is not None
        self._session.close()

    def __enter__(self) -> Session:
        return self._open()

    def __exit__(self, *exc: Any) -> None:
        assert self._session is not None
        self._session.close()
