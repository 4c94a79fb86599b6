"""The security entity sets, declared from the published metadata (see graph-contract.md §1).

The CSDL is identical in ``/v1.0`` and ``/beta`` for secureScore; the beta-only extras that the
docs show (``deviceScore``, ``seatSizeRange*``, ``total``, ``count`` ...) are dynamic properties of
the open complex types and are stored as sent.
"""

from __future__ import annotations

from graphsec.schema.types import (
    DATETIME,
    DOUBLE,
    INT32,
    STRING,
    Collection,
    ComplexType,
    EntitySet,
    EntityType,
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
    default_order=(("createdDateTime", True), ("id", False)),
    default_page_size=100,
    patch_returns_entity=True,
    collection_patch=True,
    created_stamps=("createdDateTime",),
)

ENTITY_SETS: tuple[EntitySet, ...] = (SECURE_SCORES,)
"""Every entity set graphsec serves, in the order ``$metadata`` lists them."""
