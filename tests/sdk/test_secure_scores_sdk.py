"""secureScores through the official Python SDK (msgraph-sdk) against a real graphsec server.

Every call goes over HTTP to the ``graphsec serve`` process started in ``conftest.py``; tokens come
from the ``graphsec token`` command. Each test works in its own tenant.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.average_comparative_score import AverageComparativeScore
from msgraph.generated.models.control_score import ControlScore
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.secure_score import SecureScore
from msgraph.generated.models.secure_score_collection_response import (
    SecureScoreCollectionResponse,
)
from msgraph.generated.models.security_vendor_information import SecurityVendorInformation
from msgraph.generated.security.secure_scores.item.secure_score_item_request_builder import (
    SecureScoreItemRequestBuilder,
)
from msgraph.generated.security.secure_scores.secure_scores_request_builder import (
    SecureScoresRequestBuilder,
)
from msgraph_core.tasks.page_iterator import PageIterator

from graphsec.auth.keys import load_or_create
from graphsec.auth.tokens import LocalIssuer
from tests.support.server import READ, READ_WRITE, ClientFactory, RunningServer

CREATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

ListParameters = SecureScoresRequestBuilder.SecureScoresRequestBuilderGetQueryParameters
ItemParameters = SecureScoreItemRequestBuilder.SecureScoreItemRequestBuilderGetQueryParameters


def a_score(created: datetime = CREATED, current: float = 44.5) -> SecureScore:
    """A secureScore with real values in every property the contract defines, and extras."""
    return SecureScore(
        active_user_count=12,
        licensed_user_count=40,
        current_score=current,
        max_score=180.0,
        created_date_time=created,
        enabled_services=["HasExchange", "HasSharePoint"],
        average_comparative_scores=[
            AverageComparativeScore(basis="AllTenants", average_score=41.25),
            AverageComparativeScore(basis="TotalSeats", average_score=37.0,
                                    additional_data={"seatSizeRangeLowerValue": "100"}),
        ],
        control_scores=[
            ControlScore(
                control_category="Identity",
                control_name="MFARegistrationV2",
                description="Require MFA registration for all users",
                score=9.0,
                additional_data={"implementationStatus": "ok", "scoreInPercentage": 50.0},
            ),
            ControlScore(control_category="Data", control_name="DLPEnabled", score=0.0),
        ],
        vendor_information=SecurityVendorInformation(
            provider="SecureScore", provider_version="3.0", sub_provider=None, vendor="Microsoft",
        ),
    )


async def post(client: GraphServiceClient, score: SecureScore | None = None
               ) -> tuple[SecureScore, str]:
    """Create through the SDK; the created model and its (server-assigned) id."""
    created = await client.security.secure_scores.post(score or a_score())
    assert isinstance(created, SecureScore)
    assert created.id
    return created, created.id


def not_found(exc: ODataError) -> bool:
    return exc.response_status_code == 404 and exc.error is not None \
        and exc.error.code == "itemNotFound"


def list_config(*, top: int | None = None, count: bool | None = None, filter: str | None = None,
                orderby: list[str] | None = None,
                select: list[str] | None = None) -> RequestConfiguration[ListParameters]:
    parameters = ListParameters(top=top, count=count, filter=filter, orderby=orderby, select=select)
    return RequestConfiguration(query_parameters=parameters)


# -- create ---------------------------------------------------------------------------------------


async def test_post_creates_and_round_trips_every_value(client: GraphServiceClient,
                                                        tenant: str) -> None:
    created, score_id = await post(client)

    assert created.azure_tenant_id == tenant  # filled in from the token
    assert created.current_score == 44.5
    assert created.max_score == 180.0
    assert created.active_user_count == 12
    assert created.licensed_user_count == 40
    assert created.created_date_time == CREATED
    assert created.enabled_services == ["HasExchange", "HasSharePoint"]

    averages = created.average_comparative_scores
    assert averages is not None
    assert [(a.basis, a.average_score) for a in averages] == [("AllTenants", 41.25),
                                                              ("TotalSeats", 37.0)]
    assert averages[1].additional_data.get("seatSizeRangeLowerValue") == "100"

    controls = created.control_scores
    assert controls is not None
    assert [(c.control_category, c.control_name, c.score) for c in controls] == [
        ("Identity", "MFARegistrationV2", 9.0), ("Data", "DLPEnabled", 0.0)]
    assert controls[0].description == "Require MFA registration for all users"
    assert controls[0].additional_data.get("implementationStatus") == "ok"
    assert controls[0].additional_data.get("scoreInPercentage") == 50.0

    vendor = created.vendor_information
    assert vendor is not None
    assert (vendor.provider, vendor.provider_version, vendor.vendor) == (
        "SecureScore", "3.0", "Microsoft")

    # and it was stored: a fresh GET answers the same values
    fetched = await client.security.secure_scores.by_secure_score_id(score_id).get()
    assert fetched is not None
    assert fetched.id == score_id
    assert fetched.current_score == 44.5
    assert fetched.created_date_time == CREATED
    assert fetched.control_scores is not None
    assert fetched.control_scores[0].additional_data.get("scoreInPercentage") == 50.0


async def test_post_without_created_date_time_is_stamped_now(client: GraphServiceClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    created, _ = await post(client, SecureScore(current_score=1.0, max_score=2.0))
    assert created.created_date_time is not None
    assert before <= created.created_date_time <= datetime.now(UTC) + timedelta(seconds=5)


async def test_post_with_an_unknown_top_level_property_is_a_bad_request(
        client: GraphServiceClient) -> None:
    body = a_score()
    body.additional_data = {"currentScor": 3.0}  # typo: the contract rejects unknown extras
    with pytest.raises(ODataError) as caught:
        await client.security.secure_scores.post(body)
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "BadRequest"
    assert "currentScor" in (caught.value.error.message or "")


# -- list and paging ------------------------------------------------------------------------------


def created_at(score: SecureScore) -> datetime:
    assert score.created_date_time is not None
    return score.created_date_time


async def _create_many(client: GraphServiceClient, count: int) -> list[SecureScore]:
    """``count`` scores, one day apart, posted out of date order; returned newest first."""
    days = [*range(1, count, 2), *range(0, count, 2)]  # not in date order: odd days, then even
    made: list[SecureScore] = []
    for day in days:
        score = await client.security.secure_scores.post(
            a_score(CREATED + timedelta(days=day), current=float(day)))
        assert score is not None
        made.append(score)
    return sorted(made, key=created_at, reverse=True)


async def test_list_top_count_and_next_link(client: GraphServiceClient) -> None:
    expected = await _create_many(client, 5)

    page = await client.security.secure_scores.get(list_config(top=2, count=True))

    assert isinstance(page, SecureScoreCollectionResponse)
    assert page.value is not None
    assert [s.id for s in page.value] == [s.id for s in expected[:2]]
    assert page.odata_count == 5
    assert page.odata_next_link is not None
    assert page.odata_next_link.startswith("http://localhost")
    # values on a list page are whole entities
    assert page.value[0].vendor_information is not None
    assert page.value[0].vendor_information.vendor == "Microsoft"


async def test_page_iterator_walks_every_page_newest_first(client: GraphServiceClient) -> None:
    expected = await _create_many(client, 7)
    first = await client.security.secure_scores.get(list_config(top=2))
    assert first is not None

    seen: list[SecureScore] = []

    def collect(item: SecureScore) -> bool:
        seen.append(item)
        return True

    iterator = PageIterator(first, client.request_adapter)
    await iterator.iterate(collect)

    ids = [s.id for s in seen]
    assert len(ids) == len(set(ids)) == 7
    assert ids == [s.id for s in expected]
    stamps = [created_at(s) for s in seen]
    assert stamps == sorted(stamps, reverse=True)


async def test_following_next_links_with_url(client: GraphServiceClient) -> None:
    expected = await _create_many(client, 5)
    pages: list[list[str | None]] = []
    page = await client.security.secure_scores.get(list_config(top=2, count=True))
    while True:
        assert page is not None
        assert page.value is not None
        pages.append([s.id for s in page.value])
        if not page.odata_next_link:
            break
        assert page.odata_next_link.startswith("http://localhost")
        page = await client.security.secure_scores.with_url(page.odata_next_link).get()
        assert len(pages) < 10, "nextLinks do not end"

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == [s.id for s in expected]


async def test_list_without_options_is_newest_first(client: GraphServiceClient) -> None:
    expected = await _create_many(client, 5)
    page = await client.security.secure_scores.get()
    assert page is not None
    assert page.value is not None
    assert [s.id for s in page.value] == [s.id for s in expected]
    assert page.odata_next_link is None


async def test_list_filter_and_orderby(client: GraphServiceClient) -> None:
    expected = await _create_many(client, 5)  # current scores 0..4
    page = await client.security.secure_scores.get(
        list_config(filter="currentScore ge 2", orderby=["currentScore asc"], count=True))
    assert page is not None
    assert page.value is not None
    assert [s.current_score for s in page.value] == [2.0, 3.0, 4.0]
    assert page.odata_count == 3
    assert {s.id for s in page.value} <= {s.id for s in expected}


# -- get, $select ---------------------------------------------------------------------------------


async def test_get_by_id(client: GraphServiceClient) -> None:
    _, score_id = await post(client)

    fetched = await client.security.secure_scores.by_secure_score_id(score_id).get()

    assert fetched is not None
    assert fetched.id == score_id
    assert fetched.max_score == 180.0
    assert fetched.enabled_services == ["HasExchange", "HasSharePoint"]


async def test_get_with_select_returns_only_id_and_selected(client: GraphServiceClient) -> None:
    _, score_id = await post(client)

    config = RequestConfiguration(query_parameters=ItemParameters(select=["currentScore"]))
    fetched = await client.security.secure_scores.by_secure_score_id(score_id).get(config)

    assert fetched is not None
    assert fetched.id == score_id
    assert fetched.current_score == 44.5
    for name in ("max_score", "created_date_time", "enabled_services", "control_scores",
                 "average_comparative_scores", "vendor_information", "azure_tenant_id",
                 "active_user_count", "licensed_user_count"):
        assert getattr(fetched, name) is None, name
    assert not {k for k in fetched.additional_data if not k.startswith("@")}


async def test_list_with_select(client: GraphServiceClient) -> None:
    await _create_many(client, 2)
    page = await client.security.secure_scores.get(list_config(select=["maxScore"]))
    assert page is not None
    assert page.value is not None
    assert len(page.value) == 2
    for score in page.value:
        assert score.id
        assert score.max_score == 180.0
        assert score.current_score is None
        assert score.control_scores is None


# -- patch ----------------------------------------------------------------------------------------


async def test_patch_returns_the_entity_and_changes_only_what_was_sent(
        client: GraphServiceClient) -> None:
    created, score_id = await post(client)
    item = client.security.secure_scores.by_secure_score_id(score_id)

    updated = await item.patch(SecureScore(current_score=99.5))

    assert isinstance(updated, SecureScore)  # 200 with the entity, not 204
    assert updated.id == score_id
    assert updated.current_score == 99.5
    assert updated.max_score == 180.0

    fetched = await item.get()
    assert fetched is not None
    assert fetched.current_score == 99.5
    assert fetched.max_score == created.max_score
    assert fetched.created_date_time == created.created_date_time
    assert fetched.azure_tenant_id == created.azure_tenant_id
    assert fetched.enabled_services == created.enabled_services
    assert fetched.vendor_information is not None
    assert fetched.vendor_information.provider == "SecureScore"
    assert fetched.control_scores is not None
    assert [c.control_name for c in fetched.control_scores] == ["MFARegistrationV2",
                                                                "DLPEnabled"]
    assert fetched.control_scores[0].additional_data.get("implementationStatus") == "ok"


async def test_patch_unknown_id_is_not_found(client: GraphServiceClient) -> None:
    with pytest.raises(ODataError) as caught:
        await client.security.secure_scores.by_secure_score_id("no-such-score").patch(
            SecureScore(current_score=1.0))
    assert not_found(caught.value)


# -- $count ---------------------------------------------------------------------------------------


async def test_count_endpoint(client: GraphServiceClient) -> None:
    assert await client.security.secure_scores.count.get() == 0
    await _create_many(client, 3)
    count = await client.security.secure_scores.count.get()
    assert isinstance(count, int)
    assert count == 3


# -- delete ---------------------------------------------------------------------------------------


async def test_delete_then_get_is_item_not_found(client: GraphServiceClient) -> None:
    _, score_id = await post(client)
    item = client.security.secure_scores.by_secure_score_id(score_id)

    # the SDK declares None; the test checks that the 204 is read as no entity at all
    assert await item.delete() is None  # type: ignore[func-returns-value]

    with pytest.raises(ODataError) as caught:
        await item.get()
    assert not_found(caught.value)
    assert await client.security.secure_scores.count.get() == 0
    with pytest.raises(ODataError) as again:
        await item.delete()
    assert not_found(again.value)


# -- permissions, tenants, tokens -----------------------------------------------------------------


async def test_read_only_token_lists_but_cannot_write(
        graphsec_server: RunningServer, make_client: ClientFactory,
        client: GraphServiceClient, tenant: str) -> None:
    _, score_id = await post(client)
    reader = await make_client(graphsec_server.token(tenant, READ))

    page = await reader.security.secure_scores.get()
    assert page is not None
    assert page.value is not None
    assert [s.id for s in page.value] == [score_id]

    with pytest.raises(ODataError) as caught:
        await reader.security.secure_scores.post(a_score())
    assert caught.value.response_status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "Authorization_RequestDenied"

    with pytest.raises(ODataError) as patching:
        await reader.security.secure_scores.by_secure_score_id(score_id).patch(
            SecureScore(current_score=1.0))
    assert patching.value.response_status_code == 403


async def test_delegated_scope_is_accepted(graphsec_server: RunningServer,
                                           make_client: ClientFactory, tenant: str) -> None:
    delegated = await make_client(graphsec_server.token(tenant, scopes=(READ_WRITE,)))
    created, _ = await post(delegated)
    assert created.azure_tenant_id == tenant


async def test_token_without_permission_is_forbidden(graphsec_server: RunningServer,
                                                     make_client: ClientFactory,
                                                     tenant: str) -> None:
    nobody = await make_client(graphsec_server.token(tenant))
    with pytest.raises(ODataError) as caught:
        await nobody.security.secure_scores.get()
    assert caught.value.response_status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "Authorization_RequestDenied"


async def test_other_tenant_sees_nothing(graphsec_server: RunningServer,
                                         make_client: ClientFactory,
                                         client: GraphServiceClient) -> None:
    _, score_id = await post(client)
    other_tenant = graphsec_server.token(str(uuid.uuid4()), READ_WRITE)
    other = await make_client(other_tenant)

    page = await other.security.secure_scores.get(list_config(count=True))
    assert page is not None
    assert page.value == []
    assert page.odata_count == 0
    assert await other.security.secure_scores.count.get() == 0

    item = other.security.secure_scores.by_secure_score_id(score_id)
    with pytest.raises(ODataError) as getting:
        await item.get()
    assert not_found(getting.value)
    with pytest.raises(ODataError) as patching:
        await item.patch(SecureScore(current_score=0.0))
    assert not_found(patching.value)
    with pytest.raises(ODataError) as deleting:
        await item.delete()
    assert not_found(deleting.value)

    # and the owner's score is untouched
    mine = await client.security.secure_scores.by_secure_score_id(score_id).get()
    assert mine is not None
    assert mine.current_score == 44.5


async def test_azure_tenant_id_of_another_tenant_is_forbidden(
        client: GraphServiceClient) -> None:
    body = a_score()
    body.azure_tenant_id = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ODataError) as caught:
        await client.security.secure_scores.post(body)
    assert caught.value.response_status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "Authorization_RequestDenied"


def _expired_token(server: RunningServer, tenant: str) -> str:
    """Signed by the server's own key but expired an hour ago (beyond any clock-skew leeway).

    ``graphsec token`` cannot mint a token in the past (``--expires-in`` is at least 1 s), so
    this one is minted in-process with the same issuer and key the CLI uses.
    """
    issuer = LocalIssuer(load_or_create(server.home))
    return issuer.mint(tenant, [READ_WRITE], expires_in=60, now=int(time.time()) - 3600)


@pytest.mark.parametrize("kind", ["expired", "garbage", "foreign-signature"])
async def test_bad_token_is_unauthenticated(graphsec_server: RunningServer,
                                            make_client: ClientFactory, tenant: str,
                                            kind: str) -> None:
    if kind == "expired":
        token = _expired_token(graphsec_server, tenant)
    elif kind == "garbage":
        token = "this-is-not-a-jwt"
    else:
        head, claims, _ = graphsec_server.token(tenant, READ_WRITE).split(".")
        token = f"{head}.{claims}.c2lnbmF0dXJlLWZyb20tc29tZXdoZXJlLWVsc2U"
    bad = await make_client(token)

    with pytest.raises(ODataError) as caught:
        await bad.security.secure_scores.get()
    assert caught.value.response_status_code == 401
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidAuthenticationToken"


async def test_cli_token_lifetime_is_honoured(graphsec_server: RunningServer,
                                              make_client: ClientFactory, tenant: str) -> None:
    token = graphsec_server.token(tenant, READ, expires_in=120, identity="ann@contoso.example")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tid"] == tenant
    assert claims["roles"] == [READ]
    assert claims["upn"] == "ann@contoso.example"
    assert 110 <= claims["exp"] - claims["iat"] <= 130
    reader = await make_client(token)
    assert await reader.security.secure_scores.count.get() == 0


# -- beta -----------------------------------------------------------------------------------------


async def test_v1_client_on_beta_base_url(make_client: ClientFactory, writer_token: str,
                                          client: GraphServiceClient) -> None:
    _, score_id = await post(client)
    beta = await make_client(writer_token, "beta")

    page = await beta.security.secure_scores.get(list_config(top=1, count=True))
    assert page is not None
    assert page.value is not None
    assert [s.id for s in page.value] == [score_id]
    assert page.odata_count == 1
    assert page.value[0].control_scores is not None
    assert page.value[0].control_scores[0].additional_data.get("scoreInPercentage") == 50.0

    _, beta_id = await post(beta, a_score(CREATED + timedelta(days=1)))
    fetched = await client.security.secure_scores.by_secure_score_id(beta_id).get()
    assert fetched is not None
    assert fetched.created_date_time == CREATED + timedelta(days=1)
