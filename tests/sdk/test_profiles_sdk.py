"""Control profiles through msgraph-sdk, user security profiles through msgraph-beta-sdk,
against the real server (on each backend)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.secure_score_control_profile import SecureScoreControlProfile
from msgraph.generated.models.security_vendor_information import SecurityVendorInformation
from msgraph.generated.security.secure_score_control_profiles.secure_score_control_profiles_request_builder import (  # noqa: E501
    SecureScoreControlProfilesRequestBuilder,
)

from tests.support.server import READ_WRITE, ClientFactory, RunningServer

VENDOR = SecurityVendorInformation(provider="SecureScore", vendor="Microsoft")


async def _load_catalogue(client: GraphServiceClient) -> None:
    for rank, (control_id, service) in enumerate(
            (("AdminMFAV2", "AzureAD"), ("scid_2010", "MDATP"), ("DLPEnabled", "IP")), start=1):
        created = await client.security.secure_score_control_profiles.post(
            SecureScoreControlProfile(id=control_id, rank=rank, service=service,
                                      title=f"Control {control_id}", max_score=10.0,
                                      threats=["Phishing"], vendor_information=VENDOR))
        assert created is not None
        assert created.id == control_id


async def test_control_profiles_list_get_and_filter(client: GraphServiceClient) -> None:
    await _load_catalogue(client)
    page = await client.security.secure_score_control_profiles.get()
    assert page is not None
    assert page.value is not None
    assert [p.id for p in page.value] == ["AdminMFAV2", "scid_2010", "DLPEnabled"]
    one = await client.security.secure_score_control_profiles.by_secure_score_control_profile_id(
        "scid_2010").get()
    assert one is not None
    assert (one.service, one.rank, one.threats) == ("MDATP", 2, ["Phishing"])
    query = SecureScoreControlProfilesRequestBuilder.SecureScoreControlProfilesRequestBuilderGetQueryParameters(  # noqa: E501
        filter="service eq 'MDATP' or id eq 'DLPEnabled'", count=True, top=1)
    filtered = await client.security.secure_score_control_profiles.get(
        RequestConfiguration(query_parameters=query))
    assert filtered is not None
    assert filtered.value is not None
    assert filtered.odata_count == 2
    assert [p.id for p in filtered.value] == ["scid_2010"]
    assert filtered.odata_next_link is not None


async def test_control_profile_patch_with_additional_data(client: GraphServiceClient) -> None:
    await _load_catalogue(client)
    item = client.security.secure_score_control_profiles.by_secure_score_control_profile_id(
        "AdminMFAV2")
    body = SecureScoreControlProfile(
        vendor_information=VENDOR,
        additional_data={"assignedTo": "", "comment": "control is reviewed", "state": "Reviewed"})
    assert await item.patch(body) is None  # 204 No Content
    config: RequestConfiguration[Any] = RequestConfiguration()
    config.headers.add("Prefer", "return=representation")
    body.additional_data = {"comment": "handled by a third party", "state": "ThirdParty"}
    updated = await item.patch(body, config)
    assert updated is not None
    assert updated.control_state_updates is not None
    states = [(u.state, u.comment, u.updated_by) for u in updated.control_state_updates]
    assert states == [("Reviewed", "control is reviewed", "tester@contoso.example"),
                      ("ThirdParty", "handled by a third party", "tester@contoso.example")]
    assert updated.last_modified_date_time is not None
    assert updated.last_modified_date_time.tzinfo is not None


async def test_control_profile_patch_errors(client: GraphServiceClient) -> None:
    await _load_catalogue(client)
    item = client.security.secure_score_control_profiles.by_secure_score_control_profile_id(
        "AdminMFAV2")
    with pytest.raises(ODataError) as bad_state:
        await item.patch(SecureScoreControlProfile(vendor_information=VENDOR,
                                                   additional_data={"state": "Done"}))
    assert bad_state.value.response_status_code == 400
    assert bad_state.value.error is not None
    assert bad_state.value.error.code == "BadRequest"
    with pytest.raises(ODataError) as missing:
        await client.security.secure_score_control_profiles.by_secure_score_control_profile_id(
            "nope").patch(SecureScoreControlProfile(vendor_information=VENDOR))
    assert missing.value.response_status_code == 404


async def test_user_security_profiles_with_the_beta_sdk(
    make_beta_client: Any, graphsec_server: RunningServer, tenant: str
) -> None:
    from msgraph_beta.generated.models.account_status import AccountStatus
    from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError as BetaError
    from msgraph_beta.generated.models.security_vendor_information import (
        SecurityVendorInformation as BetaVendor,
    )
    from msgraph_beta.generated.models.user_account import UserAccount
    from msgraph_beta.generated.models.user_security_profile import UserSecurityProfile

    beta = make_beta_client(graphsec_server.token(tenant, READ_WRITE))
    profiles = beta.security.user_security_profiles
    seen = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    created = await profiles.post(UserSecurityProfile(
        display_name="Ann Adams", user_principal_name="ann@contoso.example", risk_score="30",
        tags=["vip"], vendor_information=BetaVendor(provider="IPC", vendor="Microsoft"),
        accounts=[UserAccount(display_name="Ann Adams", signin_name="ann@contoso.example",
                              service="AzureAD", status=AccountStatus.Active,
                              last_seen_date_time=seen)]))
    assert created is not None
    assert created.id
    assert created.azure_tenant_id == tenant
    assert created.accounts is not None
    assert created.accounts[0].status == AccountStatus.Active
    assert created.accounts[0].last_seen_date_time == seen

    item = profiles.by_user_security_profile_id(created.id)
    assert await item.patch(UserSecurityProfile(tags=["vip", "finance"])) is None
    got = await item.get()
    assert got is not None
    assert got.tags == ["vip", "finance"]
    assert got.display_name == "Ann Adams"

    listed = await profiles.get()
    assert listed is not None
    assert listed.value is not None
    assert [p.id for p in listed.value] == [created.id]

    with pytest.raises(BetaError) as not_updatable:
        await item.patch(UserSecurityProfile(display_name="Someone else"))
    assert not_updatable.value.response_status_code == 400

    await item.delete()
    with pytest.raises(BetaError) as gone:
        await item.get()
    assert gone.value.response_status_code == 404
    assert gone.value.error is not None
    assert gone.value.error.code == "itemNotFound"


async def test_user_security_profiles_are_not_on_v1(make_client: ClientFactory,
                                                    graphsec_server: RunningServer,
                                                    tenant: str) -> None:
    import httpx

    r = httpx.get(f"{graphsec_server.base_url('v1.0')}/security/userSecurityProfiles",
                  headers={"Authorization": f"Bearer {graphsec_server.token(tenant, READ_WRITE)}"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Resource not found for the segment 'userSecurityProfiles'.")
