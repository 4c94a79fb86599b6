"""``$filter`` run in SQL on a real SQLite store: the exact ids every feature selects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from graphsec.odata.filter import parse_filter
from graphsec.odata.query import ListQuery, OrderKey
from graphsec.schema.security import SECURE_SCORE, SECURE_SCORES
from graphsec.schema.types import (
    BOOLEAN,
    DATETIME,
    GUID,
    INT64,
    STRING,
    Collection,
    ComplexType,
    EntitySet,
    EntityType,
    EnumType,
    Property,
)
from graphsec.schema.values import check_body, complete
from graphsec.storage.base import Store
from graphsec.storage.sqlite import SQLiteStore
from tests.support.items import build_item_rows, reads_item_rows
from tests.support.stores import store_for

TENANT = "tenant-a"
OTHER = "tenant-b"
ORDER = (OrderKey(("createdDateTime",), True), OrderKey(("id",), True))

DOCS: list[dict[str, Any]] = [
    {"id": "a_1", "azureTenantId": TENANT, "createdDateTime": "2024-01-15T00:00:00Z",
     "currentScore": 350.5, "maxScore": 500.0, "activeUserCount": 10, "licensedUserCount": 20,
     "enabledServices": ["HasExchange", "HasSharePoint"],
     "vendorInformation": {"provider": "SecureScore", "vendor": "Microsoft"},
     "controlScores": [{"controlName": "AdminMFA", "score": 10.0, "controlCategory": "Identity",
                        "count": "4", "on": True}],
     "averageComparativeScores": [{"basis": "AllTenants", "averageScore": 30.0,
                                   "deviceScore": 5}]},
    {"id": "a%2", "azureTenantId": TENANT, "createdDateTime": "2024-02-01T00:00:00Z",
     "currentScore": 300.0, "maxScore": 400.0, "activeUserCount": 3,
     "enabledServices": ["HasSharePoint"],
     "vendorInformation": {"provider": "securescore", "vendor": "Contoso"},
     "controlScores": [{"controlName": "AdminMFA", "score": 5.0, "count": 4},
                       {"controlName": "MFARegistration", "score": 9.0}],
     "averageComparativeScores": [{"basis": "TotalSeats", "averageScore": 20.0,
                                   "deviceScore": "5"}]},
    {"id": "ab3", "azureTenantId": TENANT, "createdDateTime": "2024-02-01T00:00:00.0000001Z",
     "currentScore": None, "maxScore": 100.0, "enabledServices": ["hasexchange", "ADMINMFA"],
     "vendorInformation": {"provider": "Other", "vendor": None},
     "controlScores": [{"controlName": "adminmfa", "score": 6.0}]},
    {"id": "B4", "azureTenantId": TENANT, "createdDateTime": "2024-03-10T12:34:56.5+02:00",
     "currentScore": 120.25, "activeUserCount": 7, "enabledServices": [],
     "controlScores": [{"controlName": "Other", "score": None, "description": "50% done_"}]},
    {"id": "c5", "azureTenantId": TENANT, "currentScore": 0.0, "enabledServices": [None]},
]
ALL = {"a_1", "a%2", "ab3", "B4", "c5"}

CASES = [
    # the examples
    ("createdDateTime ge 2024-02-01T00:00:00Z", {"a%2", "ab3", "B4"}),
    ("enabledServices/any(s:s eq 'HasExchange')", {"a_1", "ab3"}),
    ("currentScore gt 300", {"a_1"}),
    ("vendorInformation/provider eq 'SecureScore'", {"a_1", "a%2"}),
    ("controlScores/any(c: c/controlName eq 'AdminMFA' and c/score gt 5)", {"a_1", "ab3"}),
    ("id in ('a')", set()),
    ("startswith(id,'a_')", {"a_1"}),
    ("startswith(id,'a%')", {"a%2"}),
    # an ASCII prefix of a column is also read as a range of lower(column) (its index's): the
    # range must keep every case and the characters past the prefix's last one
    ("startswith(id,'A')", {"a_1", "a%2", "ab3"}),
    ("startswith(id,'AB')", {"ab3"}),
    ("startswith(id,'b')", {"B4"}),
    ("startswith(id,'a`')", set()),  # '`' precedes 'a': no row is in ['a`', 'aa')
    ("startswith(id,'')", ALL),
    ("startswith(id,'ab3')", {"ab3"}),
    ("startswith(id,'ab3x')", set()),
    ("not startswith(id,'a')", {"B4", "c5"}),
    ("startswith(azureTenantId,'TENANT-')", ALL),
    # DateTimeOffset: ticks, fractions, offsets, null, date parts
    ("createdDateTime gt 2024-02-01T00:00:00Z", {"ab3", "B4"}),
    ("createdDateTime eq 2024-02-01T01:00:00+01:00", {"a%2"}),
    ("createdDateTime gt 2024-03-10T10:34:56.4999999Z and "
     "createdDateTime lt 2024-03-10T10:34:56.5000001Z", {"B4"}),
    ("createdDateTime eq null", {"c5"}),
    ("createdDateTime ne null", ALL - {"c5"}),
    ("year(createdDateTime) eq 2024", ALL - {"c5"}),
    ("month(createdDateTime) eq 2", {"a%2", "ab3"}),
    ("day(createdDateTime) eq 10 and hour(createdDateTime) eq 10", {"B4"}),
    ("minute(createdDateTime) eq 34 and second(createdDateTime) eq 56", {"B4"}),
    # numbers and null semantics
    ("currentScore ge 300", {"a_1", "a%2"}),
    ("currentScore ne 300", {"a_1", "ab3", "B4", "c5"}),
    ("currentScore eq null", {"ab3"}),
    ("not (currentScore gt 200)", {"ab3", "B4", "c5"}),
    ("licensedUserCount eq null", ALL - {"a_1"}),
    ("currentScore add 50 gt 350", {"a_1"}),
    ("currentScore sub 300 eq 0 and currentScore mul 2 eq 600 and currentScore div 2 eq 150",
     {"a%2"}),
    ("maxScore mod 300 eq 100", {"a%2", "ab3"}),
    ("activeUserCount div 2 eq 1", {"a%2"}),
    ("activeUserCount mod 4 eq 3", {"a%2", "B4"}),
    ("activeUserCount div 0 eq null", ALL),
    ("-currentScore lt -300", {"a_1"}),
    ("maxScore eq currentScore", set()),
    ("maxScore ne currentScore", ALL),
    ("licensedUserCount eq activeUserCount", {"ab3", "c5"}),
    # strings: case-insensitive, functions, LIKE escaping
    ("id eq 'A_1' or id eq 'b4'", {"a_1", "B4"}),
    ("id in ('A_1', 'b4')", {"a_1", "B4"}),
    ("id in ('a_1', null)", {"a_1"}),
    ("vendorInformation/provider ne 'securescore'", {"ab3", "B4", "c5"}),
    ("vendorInformation/provider gt 'r'", {"a_1", "a%2"}),
    ("vendorInformation eq null", {"B4", "c5"}),
    ("vendorInformation ne null", {"a_1", "a%2", "ab3"}),
    ("vendorInformation/vendor eq null", {"ab3", "B4", "c5"}),
    ("contains(id,'_')", {"a_1"}),
    ("endswith(id,'%2')", {"a%2"}),
    ("endswith(id,'_1') and not startswith(id, 'A')", set()),
    ("not startswith(vendorInformation/provider, 's')", {"ab3", "B4", "c5"}),
    ("startswith(id, vendorInformation/provider)", set()),
    ("tolower(id) eq 'b4'", {"B4"}),
    ("toupper(vendorInformation/provider) eq 'OTHER'", {"ab3"}),
    ("length(id) eq 3", {"a_1", "a%2", "ab3"}),
    ("concat(id, '!') eq 'B4!'", {"B4"}),
    ("indexof(id, 'B') eq 1", {"ab3"}),
    ("substring(id, 1) eq '_1' or substring(id, 0, 1) eq 'B'", {"a_1", "B4"}),
    ("trim(' a_1 ') eq id", {"a_1"}),
    # lambdas
    ("enabledServices/any()", {"a_1", "a%2", "ab3", "c5"}),
    ("enabledServices/any(s: s eq null)", {"c5"}),
    ("enabledServices/all(s: startswith(s,'Has'))", {"a_1", "a%2", "B4"}),
    ("not enabledServices/any()", {"B4"}),
    ("controlScores/all(c: c/score ge 5)", {"a_1", "a%2", "ab3", "c5"}),
    ("controlScores/any(c: contains(c/description, '% done_'))", {"B4"}),
    ("controlScores/any(c: contains(c/description, '0_'))", set()),
    ("controlScores/any(c: c/score gt maxScore div 50)", {"a%2", "ab3"}),
    ("controlScores/any(c: enabledServices/any(s: s eq c/controlName))", {"ab3"}),
    ("controlScores/any(c: averageComparativeScores/any(a: startswith(id, id)))",
     {"a_1", "a%2"}),
    ("controlScores/any(c: averageComparativeScores/any(a: a/basis eq 'TotalSeats') and "
     "c/score gt 8 and enabledServices/all(s: s ne c/controlName))", {"a%2"}),
    ("controlScores/any(c: c/controlName eq 'MFARegistration') and "
     "controlScores/any(c: c/controlName eq 'AdminMFA')", {"a%2"}),
    # dynamic properties of open types
    ("controlScores/any(c: c/score eq null)", {"B4"}),
    ("controlScores/any(c: c/controlName in ('adminMFA', 'Other'))", {"a_1", "a%2", "ab3", "B4"}),
    ("controlScores/all(c: c/controlName ne 'AdminMFA')", {"B4", "c5"}),
    ("not controlScores/any(c: c/score gt 5)", {"B4", "c5"}),
    ("controlScores/any(c: startswith(c/controlName, 'admin'))", {"a_1", "a%2", "ab3"}),
    ("controlScores/any(c: c/controlCategory eq null)", {"a%2", "ab3", "B4"}),
    ("controlScores/any(c: c/score add 1 gt 10)", {"a_1"}),
    ("controlScores/all(c: c/score ge 5 or c/score eq null)", ALL),
    ("controlScores/any(c: c/controlName eq 'AdminMFA' or c/score lt 0)", {"a_1", "a%2", "ab3"}),
    ("controlScores/any(c: c/count eq '4')", {"a_1"}),
    ("controlScores/any(c: c/count eq 4)", {"a%2"}),
    ("controlScores/any(c: c/count ge 4 or c/count lt '5')", {"a_1", "a%2"}),
    ("controlScores/any(c: c/on eq true)", {"a_1"}),
    ("controlScores/any(c: c/on ne true)", {"a%2", "ab3", "B4"}),
    ("controlScores/any(c: c/missing eq null)", {"a_1", "a%2", "ab3", "B4"}),
    ("controlScores/any(c: c/count in ('4', 4))", {"a_1", "a%2"}),
    ("averageComparativeScores/any(a: a/deviceScore gt 4)", {"a_1"}),
    ("averageComparativeScores/any(a: a/deviceScore eq '5')", {"a%2"}),
    ("averageComparativeScores/any(a: startswith(a/deviceScore, '5'))", {"a%2"}),
    # constants
    ("true", ALL),
    ("false", set()),
    ("startswith(id,'a') eq false", {"B4", "c5"}),
]


async def _store(store: Store) -> Store:
    await store.open()
    for tenant, docs in ((TENANT, DOCS), (OTHER, [*DOCS, {**DOCS[0], "id": "a_9"}])):
        for body in docs:
            doc = complete(SECURE_SCORE, check_body(SECURE_SCORE, body, "create"))
            await store.create(tenant, SECURE_SCORES, doc)
    return store


@pytest.fixture
def unopened(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return store_for(backend, tmp_path, request)


@pytest.fixture
async def store(unopened: Store) -> AsyncIterator[Store]:
    s = await _store(unopened)
    s.items.builds = 0  # type: ignore[attr-defined]  # the JSON functions answer every lambda
    yield s
    await s.close()


@pytest.fixture
async def rows_store(unopened: Store) -> AsyncIterator[Store]:
    """The store with both tenants' ``controlScores`` kept as item rows (``items.py``)."""
    s = await _store(unopened)
    for tenant in (TENANT, OTHER):
        await build_item_rows(s, tenant)
    yield s
    await s.close()


async def select_ids(store: Store, text: str, tenant: str = TENANT) -> list[str]:
    query = ListQuery(order=ORDER, limit=100, filter=parse_filter(text, SECURE_SCORE), count=True)
    page = await store.list(tenant, SECURE_SCORES, query)
    ids = [_id(d) for d in page.docs]
    assert page.count == len(ids) == await store.count(tenant, SECURE_SCORES, query)
    return ids


def _id(doc: bytes) -> str:
    import orjson

    value = orjson.loads(doc)["id"]
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=t) for t, e in CASES])
async def test_filter_selects(store: Store, text: str, expected: set[str]) -> None:
    ids = await select_ids(store, text)
    assert len(ids) == len(set(ids)), "a row came back twice"
    assert set(ids) == expected
    assert not reads_item_rows(store, TENANT, text)


ON_ITEMS = [(t, e) for t, e in CASES if "controlScores/" in t]
ITEM_LOCAL = {  # the lambdas whose predicate reads only declared properties of the item
    "controlScores/any(c: c/controlName eq 'AdminMFA' and c/score gt 5)",
    "controlScores/all(c: c/score ge 5)",
    "controlScores/any(c: contains(c/description, '% done_'))",
    "controlScores/any(c: contains(c/description, '0_'))",
    "controlScores/any(c: c/controlName eq 'MFARegistration') and "
    "controlScores/any(c: c/controlName eq 'AdminMFA')",
    "controlScores/any(c: c/score eq null)",
    "controlScores/any(c: c/controlName in ('adminMFA', 'Other'))",
    "controlScores/all(c: c/controlName ne 'AdminMFA')",
    "not controlScores/any(c: c/score gt 5)",
    "controlScores/any(c: startswith(c/controlName, 'admin'))",
    "controlScores/any(c: c/controlCategory eq null)",
    "controlScores/any(c: c/score add 1 gt 10)",
    "controlScores/all(c: c/score ge 5 or c/score eq null)",
    "controlScores/any(c: c/controlName eq 'AdminMFA' or c/score lt 0)",
}


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=t) for t, e in ON_ITEMS])
async def test_filter_selects_the_same_from_item_rows(rows_store: Store, text: str,
                                                      expected: set[str]) -> None:
    """Every lambda over ``controlScores`` selects the same once the tenant's items are rows;
    those whose predicate reads only the item's declared properties read the rows."""
    ids = await select_ids(rows_store, text)
    assert len(ids) == len(set(ids)), "a row came back twice"
    assert set(ids) == expected
    assert reads_item_rows(rows_store, TENANT, text) == (text in ITEM_LOCAL)


def test_item_local_lambdas_are_cases() -> None:
    assert {t for t, _ in ON_ITEMS} >= ITEM_LOCAL


async def test_filter_never_crosses_tenants(store: Store) -> None:
    assert set(await select_ids(store, "startswith(id, 'a')")) == {"a_1", "a%2", "ab3"}
    assert set(await select_ids(store, "startswith(id, 'a')", OTHER)) == {
        "a_1", "a%2", "ab3", "a_9"}
    assert await select_ids(store, "id eq 'a_9'") == []
    assert await select_ids(store, "id eq 'a_1'", "nobody") == []


async def test_filter_with_default_order_and_paging(store: Store) -> None:
    expr = parse_filter("currentScore ne null", SECURE_SCORE)
    query = ListQuery(order=ORDER, limit=2, filter=expr)
    seen: list[str] = []
    while True:
        page = await store.list(TENANT, SECURE_SCORES, query)
        seen += [_id(d) for d in page.docs]
        if page.next_after is None:
            break
        query = ListQuery(order=ORDER, limit=2, filter=expr, after=page.next_after)
    assert seen == ["B4", "a%2", "a_1", "c5"]


# A made-up entity set: DateTimeOffset, enum, Guid, Boolean and Int64 inside JSON and columns.
STATUS = EnumType("widgetStatus", ("active", "suspended", "deleted"))
STAMP = ComplexType("stamp", (Property("at", DATETIME), Property("status", STATUS),
                              Property("ok", BOOLEAN)))
WIDGET = EntityType("widget", (
    Property("id", STRING, nullable=False), Property("status", STATUS),
    Property("ref", GUID), Property("big", INT64), Property("flag", BOOLEAN),
    Property("stamps", Collection(STAMP)), Property("last", STAMP),
))
WIDGETS = EntitySet("widgets", WIDGET, "widgets", default_order=(("id", False),))
WIDGET_DOCS: list[dict[str, Any]] = [
    {"id": "w1", "status": "Active", "ref": "0000000A-0000-0000-0000-000000000001",
     "big": 2**40, "flag": True,
     "stamps": [{"at": "2024-02-01T00:00:00.5Z", "status": "active", "ok": True},
                {"at": "1969-12-31T23:59:59.9Z", "status": "deleted", "ok": False}],
     "last": {"at": "2024-02-01T01:00:00+01:00", "status": "suspended", "ok": None}},
    {"id": "w2", "status": "deleted", "flag": False,
     "stamps": [{"at": "2024-02-01T00:00:00Z", "status": None}],
     "last": {"at": "2024-02-01T00:00:00.25Z", "status": "active", "ok": True}},
    {"id": "w3"},
]
WIDGET_CASES = [
    ("status eq 'ACTIVE'", {"w1"}),
    ("status eq graph.widgetStatus'deleted'", {"w2"}),
    ("status in ('active', 'deleted')", {"w1", "w2"}),
    ("status ne 'active'", {"w2", "w3"}),
    ("ref eq 0000000a-0000-0000-0000-000000000001", {"w1"}),
    ("big gt 1099511627775", {"w1"}),
    ("flag", {"w1"}),
    ("not flag", {"w2", "w3"}),
    ("flag eq false", {"w2"}),
    ("last/ok eq true", {"w2"}),
    ("last/ok eq null", {"w1", "w3"}),
    ("last/at eq 2024-02-01T00:00:00Z", {"w1"}),
    ("last/at gt 2024-02-01T00:00:00.2Z", {"w2"}),
    ("stamps/any(s: s/at gt 2024-02-01T00:00:00Z)", {"w1"}),
    ("stamps/any(s: s/at lt 1970-01-01T00:00:00Z and year(s/at) eq 1969)", {"w1"}),
    ("stamps/any(s: second(s/at) eq 59 and minute(s/at) eq 59)", {"w1"}),
    ("stamps/all(s: s/status eq 'active')", {"w3"}),
    ("stamps/any(s: s/status eq null)", {"w2"}),
    ("stamps/any(s: s/ok eq false)", {"w1"}),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=t)
                                                for t, e in WIDGET_CASES])
async def test_typed_json_values(tmp_path: Path, text: str, expected: set[str]) -> None:
    store = SQLiteStore(tmp_path / "w.db", (WIDGETS,))
    await store.open()
    engine = create_engine(f"sqlite:///{store.path}")  # migrations know only the real sets
    try:
        store.metadata.create_all(engine)
    finally:
        engine.dispose()
    try:
        for body in WIDGET_DOCS:
            await store.create(TENANT, WIDGETS, complete(WIDGET, check_body(WIDGET, body,
                                                                              "create")))
        query = ListQuery(order=(OrderKey(("id",)),), limit=10,
                          filter=parse_filter(text, WIDGET))
        page = await store.list(TENANT, WIDGETS, query)
        assert {_id(d) for d in page.docs} == expected
    finally:
        await store.close()
