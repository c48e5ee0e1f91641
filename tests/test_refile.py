"""The generated refile (engine/refile.py) against a scan, on a table holding every
kind of index: plain, composite and shared-key hash indexes, a sparse one, an
inverted one, a sorted one, and extractors it must call rather than inline (a
function, a dotted attrgetter). Random writes, some rolled back."""
from __future__ import annotations

import operator
import random
import types
import uuid

import attrs
import pytest

from engine.refile import _columns
from engine.store import Store
from test_backends_support import check_indexes


@attrs.define(slots=True, eq=False)
class Rec:
    a: str
    b: int
    c: str | None
    tags: list
    inner: types.SimpleNamespace
    id: uuid.UUID = attrs.field(factory=uuid.uuid4)


def _store() -> Store:
    store = Store(["rec"])
    table = store.tables["rec"]
    table.hash_index("a", operator.attrgetter("a"))
    table.hash_index("ab", operator.attrgetter("a", "b"), shared_keys=True)
    table.hash_index("b_c", operator.attrgetter("b", "c"))
    table.hash_index("c", operator.attrgetter("c"), sparse=True)
    table.hash_index("inner", operator.attrgetter("inner.x"))
    table.hash_index("parity", lambda r: r.b % 2)
    table.multi_index("tags", lambda r: frozenset(r.tags))
    table.sorted_index("by_b", operator.attrgetter("b")).warm()
    return store


def _mutate(rng: random.Random, rec: Rec) -> None:
    field = rng.choice(["a", "b", "c", "tags", "inner", "nothing"])
    if field == "a":
        rec.a = rng.choice("xyz")
    elif field == "b":
        rec.b = rng.randrange(4)
    elif field == "c":
        rec.c = rng.choice([None, "p", "q"])
    elif field == "tags":
        rec.tags = rng.sample(["t1", "t2", "t3"], rng.randrange(3))
    elif field == "inner":
        rec.inner = types.SimpleNamespace(x=rng.randrange(3))


@pytest.mark.parametrize("seed", range(5))
def test_generated_refile_keeps_every_index_equal_to_a_scan(seed):
    rng = random.Random(seed)
    store = _store()
    table = store.tables["rec"]
    store.begin()
    recs = [Rec(a=rng.choice("xyz"), b=rng.randrange(4), c=rng.choice([None, "p"]), tags=[],
                inner=types.SimpleNamespace(x=0)) for _ in range(30)]
    for rec in recs:
        store.insert("rec", rec)
    store.commit()
    engine = types.SimpleNamespace(_store=store)
    for step in range(300):
        rolled_back = rng.random() < 0.2
        store.begin()
        for rec in rng.sample(recs, 3):
            store.touch("rec", rec)
            _mutate(rng, rec)
            store.reindex("rec", rec)
        if rolled_back:
            store.rollback()
        else:
            store.commit()
        check_indexes(engine)
    assert table._refile_fn is not None  # the generated function did the moves


def test_refile_reports_whether_a_key_moved():
    store = _store()
    rec = Rec(a="x", b=1, c=None, tags=[], inner=types.SimpleNamespace(x=0))
    store.begin()
    store.insert("rec", rec)
    store.touch("rec", rec)
    assert store.reindex("rec", rec) is False
    rec.b = 2
    assert store.reindex("rec", rec) is True
    store.commit()


def test_only_plain_attribute_getters_are_read_inline():
    assert _columns(operator.attrgetter("a", "b")) == ("a", "b")
    assert _columns(operator.attrgetter("inner.x")) is None
    assert _columns(lambda r: r.a) is None
