"""engine.isoformat: times read from text the same way on every supported Python.

`read_isoformat` (this project's reading of Python 3.11's fromisoformat grammar, used
on 3.10) is checked against the interpreter's own parser: on a string the grammar
describes they agree; on any string at all, whatever it accepts the interpreter reads
the same. (On 3.10 the interpreter's parser refuses much of the grammar; there only
what it accepts is compared.) `parse_isoformat`, what the engine calls, must read
everything as `read_isoformat` does, so on 3.10 its mix of the native parser and the
grammar is held to the grammar too.
"""
from __future__ import annotations

import datetime as dt
import sys

import pytest
from hypothesis import example, given, settings, strategies as st

from engine import Engine, ManualClock, Scheduled, ValidationError
from engine.isoformat import parse_isoformat, read_isoformat

UTC = dt.timezone.utc
T = dt.datetime(2024, 6, 1, 12, tzinfo=UTC)


def _reading(parse, text: str):
    """(datetime, its UTC offset) or "refused"; the offset too, since datetimes that
    are equal as instants can carry different zones."""
    try:
        value = parse(text)
    except ValueError:
        return "refused"
    return value, value.utcoffset()


def _interpreter_agrees(text: str, reading) -> None:
    native = _reading(dt.datetime.fromisoformat, text)
    if native == "refused" and sys.version_info < (3, 11):
        return  # 3.10 reads less than the grammar
    assert native == reading


def _pair(draw, high: int) -> str:
    """Two digits, 00 to `high`."""
    return f"{draw(st.integers(0, high)):02d}"


@st.composite
def clocks(draw) -> str:
    """HH, HH:MM, HH:MM:SS[.F…] or the same without colons; values sometimes out of
    range, so that refusals are compared too."""
    high = draw(st.sampled_from([23, 29, 99]))
    parts = [_pair(draw, high) for _ in range(draw(st.integers(1, 3)))]
    text = (":" if draw(st.booleans()) else "").join(parts)
    if len(parts) == 3 and draw(st.booleans()):
        text += draw(st.sampled_from(".,")) + draw(st.text("0123456789", min_size=1, max_size=9))
    return text


@st.composite
def dates(draw) -> str:
    year = f"{draw(st.integers(1, 9999)):04d}"
    month, day, week = _pair(draw, 13), _pair(draw, 32), _pair(draw, 54)
    weekday = str(draw(st.integers(0, 8)))
    return draw(st.sampled_from([
        f"{year}-{month}-{day}", f"{year}{month}{day}",
        f"{year}-W{week}", f"{year}-W{week}-{weekday}", f"{year}W{week}", f"{year}W{week}{weekday}",
    ]))


@st.composite
def grammar_strings(draw) -> str:
    """Strings of the 3.11 grammar: a date, then maybe a separator (any character but
    a digit, which would make a week date ambiguous), a time and an offset."""
    text = draw(dates())
    if draw(st.booleans()):
        separator = draw(st.sampled_from("T tx_é"))
        text += separator + draw(clocks())
        offset = draw(st.sampled_from(["", "Z", "+", "-"]))
        text += offset if offset in ("", "Z") else offset + draw(clocks())
    return text


@st.composite
def mangled(draw) -> str:
    """A grammar string with a few characters dropped, added or replaced."""
    chars = list(draw(grammar_strings()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(chars)))
        char = draw(st.sampled_from("0123456789:-+.,TWZz x١"))
        action = draw(st.sampled_from(["drop", "add", "replace"]))
        if action == "add" or not chars:
            chars.insert(at, char)
        elif action == "drop":
            del chars[min(at, len(chars) - 1)]
        else:
            chars[min(at, len(chars) - 1)] = char
    return "".join(chars)


@settings(max_examples=1500, deadline=None)
@given(grammar_strings())
@example("2024-06-01T12:00:00.1235Z")  # 3.10's own parser takes fractions of 3 or 6 digits only
@example("2024W0121200")  # week date, then "2" as the separator
@example("2024-W01-12:00")  # week date, then "-" as the separator
@example("2024-06-01T12:00:00-00:00:01.5")  # an offset with a fraction
@example("2024-06-01T12:00:00+00:00:00.5")  # under a second: UTC, as 3.11 reads it
def test_a_string_of_the_grammar_is_read_as_the_interpreter_reads_it(text):
    ours = _reading(read_isoformat, text)
    _interpreter_agrees(text, ours)
    assert _reading(parse_isoformat, text) == ours


@settings(max_examples=1500, deadline=None)
@given(st.one_of(mangled(), st.text(max_size=30)))
@example("2024-06-01T12:00:00.123456x+01:00")  # 3.11 lets the stray "x" through; refused here
def test_whatever_the_grammar_accepts_the_interpreter_reads_the_same(text):
    ours = _reading(read_isoformat, text)
    if ours != "refused":
        _interpreter_agrees(text, ours)
        assert _reading(parse_isoformat, text) == ours


@pytest.mark.parametrize("text", [
    "2024-06-01T24:00:00", "2024-6-1", "2024-06-01T12:00:00.", "2024-06-01T12:00:00Z ", "2024-06-01T",
    "2024-06-01T12:00:00+5", "2024-06-01T12:00:00+05:3", "２０２４-06-01", "2024-06-01T١٢:00", "2024-W54", "2024-W01-8",
    "2024-02-30", "2024",
])
def test_what_does_not_name_a_time_is_refused(text):
    with pytest.raises(ValueError):
        read_isoformat(text)
    with pytest.raises(ValueError):
        parse_isoformat(text)


def test_a_string_is_required():
    with pytest.raises(TypeError, match="must be str"):
        read_isoformat(b"2024-06-01")  # type: ignore[arg-type]


def test_the_engine_reads_any_fraction_length_on_every_python():
    # A filter time with a 4-digit fraction was refused on 3.10 before this module.
    engine = Engine(clock=ManualClock(T))
    flow = engine.create_flow("f")
    early, late = (engine.create_flow_run(flow_id=flow.id, state=Scheduled(scheduled_time=T + dt.timedelta(
        microseconds=us))) for us in (100_000, 200_000))
    after = {"expected_start_time": {"after_": "2024-06-01T12:00:00.1235Z"}}
    assert [run.id for run in engine.read_flow_runs(flow_run_filter=after)] == [late.id]
    with pytest.raises(ValidationError, match="not an ISO-8601 datetime"):
        engine.read_flow_runs(flow_run_filter={"expected_start_time": {"after_": "2024-06-01T12:00:00.1235ZZ"}})
