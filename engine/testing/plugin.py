"""pytest plugin (entry point `pytest11: runstate`): engine fixtures for tests.

Fixtures
--------
runstate_clock          a ManualClock (2024-01-01T00:00Z, 1 µs tick so successive
                        readings differ: two states of one run may not share a
                        timestamp). Advance it with `runstate_clock.advance(secs)`.
runstate_engine         a fresh in-memory Engine on `runstate_clock`, per test.
                        Setup + teardown cost tens of microseconds.
runstate_session        an open facade session on `runstate_engine` (engine.models).
runstate_sqlite_url     "sqlite:///<tmp>/runstate.db" for this test.
runstate_sqlite_engine  an Engine opened on that URL (closed after the test);
                        skipped when the SQLite backend is not available.

Marker
------
@pytest.mark.runstate(start=datetime, tick=timedelta, system_clock=False)
    configures `runstate_clock` / the engines' clock for one test (or a class or
    module via `pytestmark`): `start` a datetime or ISO text (no offset: UTC),
    `tick` a timedelta or seconds. `system_clock=True` gives the engines the real
    clock (and makes `runstate_clock` a usage error: it would move nothing).
    Markers at several levels combine, the closest winning option by option.

The fixtures are synchronous. For `async def` tests that use the facade, install
an async test runner (pytest-asyncio, or anyio's plugin) as for any async test.
"""
from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from ..clock import UTC, ManualClock, SystemClock
from ..errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["DEFAULT_START", "DEFAULT_TICK", "new_clock", "new_engine"]

DEFAULT_START = _dt.datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_TICK = _dt.timedelta(microseconds=1)
_MARKER = "runstate"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(start=None, tick=None, system_clock=False): configure the clock of runstate's fixtures",
    )


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The markers' options, module's then class's then the test's: the closer marker
    wins option by option (a test's `tick=` keeps its class's `start=`)."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(_MARKER))):  # (it gives the closest first)
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes keyword arguments only (start=, tick=, system_clock=)")
        unknown = sorted(set(marker.kwargs) - {"start", "tick", "system_clock"})
        if unknown:
            raise pytest.UsageError(f"@pytest.mark.{_MARKER}: unknown option(s) {unknown}; use start=, tick=, system_clock=")
        options.update(marker.kwargs)
    manual = sorted(k for k in ("start", "tick") if options.get(k) is not None)
    if options.get("system_clock") and manual:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER}: system_clock=True and {' and '.join(m + '=' for m in manual)} together (from this test's, its "
            "class's or its module's markers): the real clock has no start or tick; set system_clock=False "
            "where the manual clock is wanted"
        )
    return options


def new_clock(start: _dt.datetime | None = None, tick: _dt.timedelta | None = None) -> ManualClock:
    """What `runstate_clock` gives: a ManualClock (default 2024-01-01T00:00Z, 1 µs tick). O(1)."""
    return ManualClock(start=start or DEFAULT_START, tick=DEFAULT_TICK if tick is None else tick)


def new_engine(clock: Any = None) -> "Engine":
    """What `runstate_engine` gives: a fresh in-memory Engine (on `new_clock()` by default).
    Costs tens of microseconds (empty tables and indexes)."""
    from ..engine import Engine

    return Engine(clock=clock if clock is not None else new_clock())


def _manual_clock(request: pytest.FixtureRequest) -> ManualClock:
    opts = _marker_options(request)
    try:
        return new_clock(opts.get("start"), opts.get("tick"))
    except ValidationError as exc:
        raise pytest.UsageError(f"@pytest.mark.{_MARKER}: {exc}") from None


@pytest.fixture
def runstate_clock(request: pytest.FixtureRequest) -> ManualClock:
    """A ManualClock at 2024-01-01T00:00Z ticking 1 µs per reading (marker-configurable)."""
    if _marker_options(request).get("system_clock"):
        # The engines read the real clock then: advancing this one would do nothing.
        raise pytest.UsageError(
            f"runstate_clock is a manual clock, but @pytest.mark.{_MARKER}(system_clock=True) gives the "
            "engines the real clock: drop one of the two"
        )
    return _manual_clock(request)


def _engine_clock(request: pytest.FixtureRequest) -> Any:
    if _marker_options(request).get("system_clock"):
        return SystemClock()
    return request.getfixturevalue("runstate_clock")


@pytest.fixture
def runstate_engine(request: pytest.FixtureRequest) -> Engine:
    """A fresh in-memory Engine on `runstate_clock` (or the real clock, by the marker)."""
    return new_engine(_engine_clock(request))


@pytest.fixture
def runstate_session(runstate_engine: Engine) -> Iterator[Any]:
    """An open session on `runstate_engine` for the async facade (closed afterwards)."""
    with runstate_engine.session() as session:
        yield session


@pytest.fixture
def runstate_sqlite_url(tmp_path: Any) -> str:
    """A per-test SQLite URL (the file does not exist until an engine opens it)."""
    return f"sqlite:///{tmp_path / 'runstate.db'}"


@pytest.fixture
def runstate_sqlite_engine(request: pytest.FixtureRequest, runstate_sqlite_url: str) -> Iterator[Engine]:
    """An Engine on a temporary SQLite file, closed after the test; skipped
    (not failed) when this installation has no SQLite backend."""
    from ..engine import Engine

    opener = getattr(Engine, "open", None)
    if opener is None:
        pytest.skip("runstate: the SQLite backend is not available (Engine.open is missing)")
    try:
        engine = opener(runstate_sqlite_url, clock=_engine_clock(request))
    except (ImportError, NotImplementedError) as exc:
        pytest.skip(f"runstate: the SQLite backend is not available ({exc})")
    try:
        yield engine
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()
