"""Property tests: random secureScores and random well-typed ``$filter``/``$orderby``, the SQL
store against the Python reference evaluator (``reference.py``).

Each example writes its documents under a fresh tenant of one shared database, which also
checks that no filter reaches another example's (tenant's) rows.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphsec.errors import BadRequest
from graphsec.odata.filter import parse_filter
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import SECURE_SCORE, SECURE_SCORES
from graphsec.schema.values import check_body, complete
from graphsec.storage.base import Store
from graphsec.storage.postgres import PostgresStore
from tests.odata.reference import matching_ids, sorted_ids
from tests.support.items import build_item_rows
from tests.support.stores import store_for

WORDS = ["", "a", "A", "ab", "aB_", "b%c", "HasExchange", "hasexchange", " x ", "Zed", "ünï",
         "a'b", "AdminMFA", "4", "5"]
_TENANTS = itertools.count()

# ---- documents ----------------------------------------------------------------------------
words = st.sampled_from(WORDS)
maybe_words = st.none() | words
numbers = st.none() | st.sampled_from([-1.5, 0.0, 2.0, 3.5, 300.0]) | st.floats(
    -1000, 1000, allow_nan=False, allow_infinity=False)
ints = st.none() | st.integers(-20, 20)


@st.composite
def datetimes(draw: st.DrawFn) -> str | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    moment = draw(st.datetimes(min_value=__import__("datetime").datetime(1969, 12, 31),
                               max_value=__import__("datetime").datetime(2030, 1, 1)))
    fraction = draw(st.sampled_from(["", ".5", ".1234567", ".0000001", ".25"]))
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


control = st.fixed_dictionaries(
    {"controlName": maybe_words, "score": numbers},
    optional={"controlCategory": maybe_words,
              "count": st.none() | words | st.integers(0, 5) | st.booleans()})
average = st.fixed_dictionaries(
    {"basis": maybe_words},
    optional={"averageScore": numbers, "deviceScore": st.integers(0, 9) | words})
documents = st.fixed_dictionaries(
    {"createdDateTime": datetimes(), "currentScore": numbers, "maxScore": numbers,
     "activeUserCount": ints, "licensedUserCount": ints,
     "enabledServices": st.lists(maybe_words, max_size=3),
     "controlScores": st.lists(control, max_size=3),
     "averageComparativeScores": st.lists(average, max_size=2),
     "vendorInformation": st.none() | st.fixed_dictionaries(
         {"provider": maybe_words, "vendor": maybe_words})})


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---- filters (as text) --------------------------------------------------------------------
string_literal = words.map(quote)
number_literal = st.sampled_from(["0", "2", "-1.5", "3.5", "300", "1e2", "7"])
ROOT_STRINGS = ["id", "azureTenantId", "vendorInformation/provider", "vendorInformation/vendor"]
ROOT_NUMBERS = ["currentScore", "maxScore", "activeUserCount", "licensedUserCount"]
ROOT_INTS = ["activeUserCount", "licensedUserCount"]
OPS = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])


def string_value(scope: dict[str, str]) -> st.SearchStrategy[str]:
    names = list(ROOT_STRINGS)
    names += [f"{v}/controlName" for v, t in scope.items() if t == "c"]
    names += [v for v, t in scope.items() if t == "s"]
    base = st.sampled_from(names)
    return st.one_of(
        base, base, string_literal,
        base.map(lambda x: f"tolower({x})"), base.map(lambda x: f"trim({x})"),
        st.tuples(base, string_literal).map(lambda p: f"concat({p[0]},{p[1]})"),
        st.tuples(base, st.integers(-1, 3)).map(lambda p: f"substring({p[0]},{p[1]})"),
        st.tuples(base, st.integers(0, 2), st.integers(-1, 2)).map(
            lambda p: f"substring({p[0]},{p[1]},{p[2]})"),
    )


def number_value(scope: dict[str, str]) -> st.SearchStrategy[str]:
    names = list(ROOT_NUMBERS) + [f"{v}/score" for v, t in scope.items() if t == "c"]
    base = st.sampled_from(names)
    ints = st.sampled_from(ROOT_INTS)
    strings = st.sampled_from(ROOT_STRINGS)
    arith = st.sampled_from(["add", "sub", "mul", "div", "mod"])
    return st.one_of(
        base, base, number_literal,
        st.tuples(base, arith, number_literal | base).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        st.tuples(ints, arith, st.sampled_from(["0", "2", "-3"])).map(
            lambda p: f"({p[0]} {p[1]} {p[2]})"),
        strings.map(lambda x: f"length({x})"),
        st.tuples(strings, string_literal).map(lambda p: f"indexof({p[0]},{p[1]})"),
        st.sampled_from(["year", "month", "day", "hour", "minute", "second"]).map(
            lambda f: f"{f}(createdDateTime)"),
        base.map(lambda x: f"-{x}"),
    )


def leaf(scope: dict[str, str]) -> st.SearchStrategy[str]:
    s, n = string_value(scope), number_value(scope)
    dynamic = [f"{v}/count" for v, t in scope.items() if t == "c"] + [
        f"{v}/deviceScore" for v, t in scope.items() if t == "a"]
    options = [
        st.tuples(s, OPS, s).map(" ".join),
        st.tuples(n, OPS, n).map(" ".join),
        st.tuples(st.sampled_from(ROOT_STRINGS + ROOT_NUMBERS + ["createdDateTime",
                                                                  "vendorInformation"]),
                  st.sampled_from(["eq null", "ne null"])).map(" ".join),
        st.tuples(st.sampled_from(["createdDateTime"]), OPS,
                  st.sampled_from(["2024-02-01T00:00:00Z", "1970-01-01T00:00:00Z",
                                   "2000-06-15T12:00:00.5+02:00"])).map(" ".join),
        st.tuples(s, st.lists(string_literal | st.just("null"), min_size=1, max_size=3)).map(
            lambda p: f"{p[0]} in ({', '.join(p[1])})"),
        st.tuples(st.sampled_from(["startswith", "endswith", "contains"]), s, s).map(
            lambda p: f"{p[0]}({p[1]},{p[2]})"),
    ]
    if dynamic:
        literal = st.one_of(string_literal, number_literal, st.sampled_from(["true", "null"]))
        options.append(st.tuples(st.sampled_from(dynamic), OPS, literal).filter(
            lambda p: p[2] not in ("true", "null") or p[1] in ("eq", "ne")).map(" ".join))
    return st.one_of(*options)


def predicate(scope: dict[str, str], depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return leaf(scope)
    sub = st.deferred(lambda: predicate(scope, depth - 1))
    var = f"v{depth}"
    lambdas = [
        st.tuples(st.sampled_from(["any", "all"]),
                  st.deferred(lambda: predicate({**scope, var: "s"}, depth - 1))).map(
            lambda p: f"enabledServices/{p[0]}({var}: {p[1]})"),
        st.tuples(st.sampled_from(["any", "all"]),
                  st.deferred(lambda: predicate({**scope, var: "c"}, depth - 1))).map(
            lambda p: f"controlScores/{p[0]}({var}: {p[1]})"),
        st.deferred(lambda: predicate({**scope, var: "a"}, 0)).map(
            lambda p: f"averageComparativeScores/any({var}: {p})"),
        st.sampled_from(["enabledServices/any()", "controlScores/any()"]),
    ]
    return st.one_of(
        leaf(scope), leaf(scope),
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda p: f"({' '.join(p)})"),
        sub.map(lambda p: f"not ({p})"),
        *lambdas,
    )


filters = predicate({}, 2)
SORTABLE = ["createdDateTime", "currentScore", "maxScore", "activeUserCount", "id",
            "vendorInformation/provider"]


# ---- the tests ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def running(backend: str, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[tuple[asyncio.Runner, Store]]:
    """One event loop and one open store for the module, on each backend (a PostgreSQL pool
    belongs to the loop it was opened in)."""
    store = store_for(backend, Path(tmp_path_factory.mktemp("prop")), request)
    with asyncio.Runner() as runner:
        runner.run(store.open())
        yield runner, store
        runner.run(store.close())


def _load(runner: asyncio.Runner, store: Store, bodies: list[dict[str, Any]]) -> tuple[
        str, list[dict[str, Any]]]:
    tenant = f"t{next(_TENANTS)}"
    docs = []
    for i, body in enumerate(bodies):
        body = {**body, "id": f"{WORDS[i % len(WORDS)].strip()}#{i}", "azureTenantId": tenant}
        doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, body, "create"))
        runner.run(store.create(tenant, SECURE_SCORES, doc))
        docs.append(doc)
    return tenant, docs


def _ids(docs: list[bytes]) -> list[str]:
    return [orjson.loads(d)["id"] for d in docs]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(bodies=st.lists(documents, max_size=7), texts=st.lists(filters, min_size=1, max_size=4))
def test_sql_matches_reference(running: tuple[asyncio.Runner, Store],
                               bodies: list[dict[str, Any]], texts: list[str]) -> None:
    runner, store = running
    if True:
        tenant, docs = _load(runner, store, bodies)
        for text in texts:
            expr = parse_filter(text, SECURE_SCORE)
            query = ListQuery(order=(OrderKey(("id",)),), limit=100, filter=expr, count=True)
            try:
                page = runner.run(store.list(tenant, SECURE_SCORES, query))
            except BadRequest as exc:
                # PostgreSQL refuses float overflow (a 400) where SQLite computes infinity
                assert isinstance(store, PostgresStore), exc  # noqa: PT017 (inside a loop)
                assert "out of range" in exc.message or "overflow" in exc.message  # noqa: PT017
                continue
            assert sorted(_ids(page.docs)) == sorted(matching_ids(expr, docs)), text
            assert page.count == len(page.docs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(documents, max_size=8),
       keys=st.lists(st.tuples(st.sampled_from(SORTABLE), st.booleans()), min_size=1,
                     max_size=3, unique_by=lambda k: k[0]),
       limit=st.integers(1, 4), text=st.none() | filters)
def test_orderby_paging_matches_reference(running: tuple[asyncio.Runner, Store],
                                          bodies: list[dict[str, Any]],
                                          keys: list[tuple[str, bool]], limit: int,
                                          text: str | None) -> None:
    runner, store = running
    order = tuple(OrderKey(tuple(k.split("/")), desc) for k, desc in keys)
    if not any(k.path == ("id",) for k in order):
        order += (OrderKey(("id",)),)
    expr = None if text is None else parse_filter(text, SECURE_SCORE)
    if True:
        tenant, docs = _load(runner, store, bodies)
        wanted = docs if expr is None else [d for d in docs if d["id"] in matching_ids(expr, docs)]
        seen: list[str] = []
        after = None
        for _ in range(len(docs) + 2):
            query = ListQuery(order=order, limit=limit, filter=expr, after=after)
            try:
                page = runner.run(store.list(tenant, SECURE_SCORES, query))
            except BadRequest as exc:  # as above: PostgreSQL refuses float overflow
                assert isinstance(store, PostgresStore), exc  # noqa: PT017 (inside a loop)
                assert "out of range" in exc.message or "overflow" in exc.message  # noqa: PT017
                return
            seen += _ids(page.docs)
            after = page.next_after
            if after is None:
                break
        assert seen == sorted_ids(wanted, order)


item_filters = predicate({}, 1).filter(lambda text: "controlScores/" in text)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(before=st.lists(documents, max_size=5), after=st.lists(documents, max_size=4),
       changes=st.lists(st.lists(control, max_size=3), max_size=3),
       texts=st.lists(item_filters, min_size=1, max_size=4))
def test_item_rows_match_reference(running: tuple[asyncio.Runner, Store],
                                   before: list[dict[str, Any]], after: list[dict[str, Any]],
                                   changes: list[list[dict[str, Any]]], texts: list[str]) -> None:
    """Lambdas over ``controlScores`` once the tenant's items are rows (``items.py``): the rows
    built from the documents, then creates, updates of the collection and a delete (listed as
    stale, their items read from the JSON), select what the reference does; and again once a
    refresh has made every row."""
    runner, store = running
    tenant, docs = _load(runner, store, before)
    runner.run(build_item_rows(store, tenant))
    more = [{**b, "id": f"later#{i}", "azureTenantId": tenant} for i, b in enumerate(after)]
    for body in more:
        doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, body, "create"))
        runner.run(store.create(tenant, SECURE_SCORES, doc))
        docs.append(doc)
    for doc, controls in zip(docs, changes, strict=False):
        def change(stored: dict[str, Any], new: list[dict[str, Any]] = controls) -> dict[str, Any]:
            return {**stored, "controlScores": new}

        runner.run(store.update(tenant, SECURE_SCORES, doc["id"], change))
        doc["controlScores"] = controls
    if docs:
        gone = docs.pop()
        assert runner.run(store.delete(tenant, SECURE_SCORES, gone["id"]))
    items: Any = store.items  # type: ignore[attr-defined]
    refresh, items._refresh = items._refresh, None  # first with the stale documents listed
    try:
        _compare_lambdas(runner, store, tenant, docs, texts)
    finally:
        items._refresh = refresh
    et = store.tables[SECURE_SCORES.name]  # type: ignore[attr-defined]
    while not runner.run(refresh(et, et.items["controlScores"], tenant)):
        pass
    _compare_lambdas(runner, store, tenant, docs, texts)  # then with every row made again


def _compare_lambdas(runner: asyncio.Runner, store: Store, tenant: str,
                     docs: list[dict[str, Any]], texts: list[str]) -> None:
    for text in texts:
        expr = parse_filter(text, SECURE_SCORE)
        query = ListQuery(order=(OrderKey(("id",)),), limit=100, filter=expr, count=True)
        try:
            page = runner.run(store.list(tenant, SECURE_SCORES, query))
        except BadRequest as exc:  # as above: PostgreSQL refuses float overflow
            assert isinstance(store, PostgresStore), exc  # noqa: PT017 (inside a loop)
            continue
        assert sorted(_ids(page.docs)) == sorted(matching_ids(expr, docs)), text
        assert page.count == len(page.docs)
