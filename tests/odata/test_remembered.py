"""What the request path remembers between requests of the same text: the split query string
(``odata/options.py``), the parsed filter's hash (``odata/filter_ast.py``) and the default
order (``odata/query.py``). Remembering must never change an answer: equal texts give equal
results, a caller's changes do not leak into the next request, errors are raised every time,
and every memory is bounded."""

from __future__ import annotations

import pickle

import pytest

from graphsec.errors import BadRequest
from graphsec.odata import options
from graphsec.odata.filter import parse_filter
from graphsec.odata.filter_ast import In, Kind, Literal, Prop
from graphsec.odata.options import split_query
from graphsec.odata.query import OrderKey, default_order
from graphsec.schema.security import SECURE_SCORE, SECURE_SCORES


def test_a_remembered_query_string_gives_each_caller_its_own_copy() -> None:
    qs = "$filter=id%20in%20('a','b')&$count=true&custom=1"
    first = split_query(qs, "v1.0")
    assert first == {"filter": "id in ('a','b')", "count": "true"}
    first["top"] = "5"  # a caller that changes its options
    assert split_query(qs, "v1.0") == {"filter": "id in ('a','b')", "count": "true"}
    assert split_query("top=2", "beta") == {"top": "2"}
    assert split_query("top=2", "v1.0") == {}  # the version is part of what is remembered


@pytest.mark.parametrize("qs", ["$top=1&$top=2", "$filter=%FF", "$bogus=1"])
def test_a_query_string_in_error_is_refused_every_time(qs: str) -> None:
    for _ in range(2):
        with pytest.raises(BadRequest):
            split_query(qs, "v1.0")
    assert (qs, "v1.0") not in options._SPLIT


def test_the_remembered_query_strings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "_SPLIT", {})
    for n in range(options._SPLIT_MAX + 50):
        assert split_query(f"$top={n + 1}", "v1.0") == {"top": str(n + 1)}
    assert len(options._SPLIT) == options._SPLIT_MAX
    long = "$filter=" + "a" * options._SPLIT_LONGEST
    assert split_query(long, "v1.0") == {"filter": "a" * options._SPLIT_LONGEST}
    assert (long, "v1.0") not in options._SPLIT


def test_a_remembered_hash_is_the_hash_of_an_equal_new_filter() -> None:
    text = "id in ('s1','s2') and currentScore ge 3"
    parsed = parse_filter(text, SECURE_SCORE)
    hash(parsed)
    again = parse_filter(text + " ", SECURE_SCORE)  # not the remembered object
    assert again is not parsed
    assert again == parsed
    assert hash(again) == hash(parsed)
    other = parse_filter("id in ('s1','s3') and currentScore ge 3", SECURE_SCORE)
    assert other != parsed
    assert {parsed: 1}.get(other) is None


def test_a_remembered_hash_stays_out_of_pickles() -> None:
    node = In(Prop(None, ("id",), Kind.STRING, "Edm.String"), (Literal("x", Kind.STRING),))
    hash(node)
    copy = pickle.loads(pickle.dumps(node))  # noqa: S301 (our own bytes)
    assert "_hash" in vars(node)
    assert "_hash" not in vars(copy)
    assert copy == node
    assert hash(copy) == hash(node)


def test_the_default_order_is_made_once_per_entity_set() -> None:
    order = default_order(SECURE_SCORES)
    assert order is default_order(SECURE_SCORES)
    assert order == (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))
