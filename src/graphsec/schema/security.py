"""The security entity sets, declared from Graph's published ``$metadata`` (CSDL).

The CSDL is identical in ``/v1.0`` and ``/beta`` for secureScore; the beta-only extras that the
docs show (``deviceScore``, ``seatSizeRange*``, ``total``, ``count`` ...) are dynamic properties of
the open complex types and are stored as sent.
"""

from __future__ import annotations

from graphsec.schema.rules import ControlStateUpdate, HistoryLimit
from graphsec.schema.types import (
    BOOLEAN,
    DATETIME,
    DOUBLE,
    INT32,
    STRING,
    Collection,
    ComplexType,
    EdmType,
    EntitySet,
    EntityType,
    EnumType,
    ItemRows,
    Property,
)

SECURITY_VENDOR_INFORMATION = ComplexType(
    "securityVendorInformation",
    (
        Property("provider", STRING),
        Property("providerVersion", STRING),
        Property("subProvider", STRING),
        Property("vendor", STRING),
    ),
    open=False,
)

AVERAGE_COMPARATIVE_SCORE = ComplexType(
    "averageComparativeScore",
    (Property("averageScore", DOUBLE), Property("basis", STRING)),
    open=True,
)

CONTROL_SCORE = ComplexType(
    "controlScore",
    (
        Property("controlCategory", STRING),
        Property("controlName", STRING),
        Property("description", STRING),
        Property("score", DOUBLE),
    ),
    open=True,
)

SECURE_SCORE = EntityType(
    "secureScore",
    (
        Property("id", STRING, nullable=False, updatable=False),
        Property("activeUserCount", INT32),
        Property("averageComparativeScores", Collection(AVERAGE_COMPARATIVE_SCORE)),
        Property("azureTenantId", STRING, nullable=False, updatable=False),
        Property("controlScores", Collection(CONTROL_SCORE)),
        Property("createdDateTime", DATETIME),
        Property("currentScore", DOUBLE),
        Property("enabledServices", Collection(STRING)),
        Property("licensedUserCount", INT32),
        Property("maxScore", DOUBLE),
        Property("vendorInformation", SECURITY_VENDOR_INFORMATION),
    ),
    open=True,
)

SECURE_SCORES = EntitySet(
    name="secureScores",
    entity_type=SECURE_SCORE,
    table="secure_scores",
    default_order=(("createdDateTime", True), ("id", True)),
    default_page_size=100,
    patch_returns_entity=True,
    collection_patch=True,
    created_stamps=("createdDateTime",),
    indexed=("id", "currentScore"),
    item_rows=(ItemRows("controlScores", (("controlName", "score"), ("score",))),),
)

CERTIFICATION_CONTROL = ComplexType(
    "certificationControl", (Property("name", STRING), Property("url", STRING)), open=True
)

COMPLIANCE_INFORMATION = ComplexType(
    "complianceInformation",
    (
        Property("certificationControls", Collection(CERTIFICATION_CONTROL)),
        Property("certificationName", STRING),
    ),
    open=True,
)

SECURE_SCORE_CONTROL_STATE_UPDATE = ComplexType(
    "secureScoreControlStateUpdate",
    (
        Property("assignedTo", STRING),
        Property("comment", STRING),
        Property("state", STRING),
        Property("updatedBy", STRING),
        Property("updatedDateTime", DATETIME),
    ),
    open=False,
)

CONTROL_STATES = ("Default", "Ignored", "ThirdParty", "Reviewed")
"""The documented values of ``secureScoreControlStateUpdate.state`` (an Edm.String)."""


def _catalogue(name: str, edm: EdmType) -> Property:
    """A control-profile property that is loaded with the catalogue and not changed by PATCH."""
    return Property(name, edm, updatable=False)


SECURE_SCORE_CONTROL_PROFILE = EntityType(
    "secureScoreControlProfile",
    (
        Property("id", STRING, nullable=False, updatable=False),
        _catalogue("actionType", STRING),
        _catalogue("actionUrl", STRING),
        Property("azureTenantId", STRING, nullable=False, updatable=False),
        _catalogue("complianceInformation", Collection(COMPLIANCE_INFORMATION)),
        _catalogue("controlCategory", STRING),
        _catalogue("controlStateUpdates", Collection(SECURE_SCORE_CONTROL_STATE_UPDATE)),
        _catalogue("deprecated", BOOLEAN),
        _catalogue("implementationCost", STRING),
        _catalogue("lastModifiedDateTime", DATETIME),
        _catalogue("maxScore", DOUBLE),
        _catalogue("rank", INT32),
        _catalogue("remediation", STRING),
        _catalogue("remediationImpact", STRING),
        _catalogue("service", STRING),
        _catalogue("threats", Collection(STRING)),
        _catalogue("tier", STRING),
        _catalogue("title", STRING),
        _catalogue("userImpact", STRING),
        Property("vendorInformation", SECURITY_VENDOR_INFORMATION),
    ),
    open=True,
    # Graph's update body carries the new state as dynamic properties of the open entity
    patch_extras=(
        Property("assignedTo", STRING),
        Property("comment", STRING),
        Property("state", STRING, nullable=False),
    ),
)

SECURE_SCORE_CONTROL_PROFILES = EntitySet(
    name="secureScoreControlProfiles",
    entity_type=SECURE_SCORE_CONTROL_PROFILE,
    table="secure_score_control_profiles",
    default_order=(("rank", False), ("id", False)),
    default_page_size=250,
    modified_stamps=("lastModifiedDateTime",),
    create_rule=HistoryLimit("controlStateUpdates"),
    update_rule=ControlStateUpdate("controlStateUpdates", SECURE_SCORE_CONTROL_STATE_UPDATE,
                                   CONTROL_STATES),
    indexed=("id", "controlCategory", "service"),
)

ACCOUNT_STATUS = EnumType(
    "accountStatus", ("unknown", "staged", "active", "suspended", "deleted", "unknownFutureValue")
)

USER_ACCOUNT = ComplexType(
    "userAccount",
    (
        Property("displayName", STRING),
        Property("lastSeenDateTime", DATETIME),
        Property("riskScore", STRING),
        Property("service", STRING),
        Property("signinName", STRING),
        Property("status", ACCOUNT_STATUS),
    ),
    open=False,
)

USER_SECURITY_PROFILE = EntityType(
    "userSecurityProfile",
    (
        Property("id", STRING, nullable=False, updatable=False),
        Property("accounts", Collection(USER_ACCOUNT), updatable=False),
        Property("azureSubscriptionId", STRING, updatable=False),
        Property("azureTenantId", STRING, nullable=False, updatable=False),
        Property("createdDateTime", DATETIME, updatable=False),
        Property("displayName", STRING, updatable=False),
        Property("lastModifiedDateTime", DATETIME, updatable=False),
        Property("riskScore", STRING, updatable=False),
        Property("tags", Collection(STRING)),
        Property("userPrincipalName", STRING, updatable=False),
        Property("vendorInformation", SECURITY_VENDOR_INFORMATION),
    ),
    open=True,
)

USER_SECURITY_PROFILES = EntitySet(
    name="userSecurityProfiles",
    entity_type=USER_SECURITY_PROFILE,
    table="user_security_profiles",
    versions=frozenset({"beta"}),
    default_order=(("createdDateTime", True), ("id", True)),
    default_page_size=100,
    created_stamps=("createdDateTime", "lastModifiedDateTime"),
    modified_stamps=("lastModifiedDateTime",),
    indexed=("id", "riskScore", "userPrincipalName"),
)

ENTITY_SETS: tuple[EntitySet, ...] = (
    SECURE_SCORES,
    SECURE_SCORE_CONTROL_PROFILES,
    USER_SECURITY_PROFILES,
)
"""Every entity set graphsec serves, in the order ``$metadata`` lists them."""
