"""The little behaviour that is truly an entity set's own, beyond its schema declaration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphsec.auth.principal import Principal
from graphsec.errors import BadRequest
from graphsec.schema.security import CONTROL_STATES, SECURE_SCORE_CONTROL_STATE_UPDATE
from graphsec.schema.values import complete, now_datetime

Derive = Callable[[dict[str, Any]], dict[str, Any]]
"""Given the stored (complete) document, the further properties an update sets, complete: the
update does not walk them again (a control profile's history grows with every PATCH)."""
UpdateRule = Callable[[Principal, dict[str, Any]], Derive | None]
"""Checks (and may consume) a validated PATCH body; returns what the update derives from it."""


def control_profile_update(principal: Principal, patch: dict[str, Any]) -> Derive:
    """Graph's control-profile update: the body must carry ``vendorInformation`` with
    ``provider`` and ``vendor``; ``assignedTo``, ``comment`` and ``state`` (dynamic properties
    of the open entity) become a new ``controlStateUpdates`` entry, stamped with the caller
    (``updatedBy``) and the time. Fields left out carry over from the latest entry."""
    vendor = patch.get("vendorInformation")
    if not isinstance(vendor, dict) or not vendor.get("provider") or not vendor.get("vendor"):
        raise BadRequest("The body must contain 'vendorInformation' with its 'provider' and "
                         "'vendor' fields (e.g. {\"provider\": \"SecureScore\", \"vendor\": "
                         "\"Microsoft\"}).")
    sent = {k: patch.pop(k) for k in ("assignedTo", "comment", "state") if k in patch}
    if "state" in sent:
        state = next((s for s in CONTROL_STATES if s.lower() == str(sent["state"]).lower()), None)
        if state is None:
            raise BadRequest(f"Invalid value for property 'state': '{sent['state']}'; expected "
                             f"one of: {', '.join(CONTROL_STATES)}.")
        sent["state"] = state
    now = patch.get("lastModifiedDateTime") or now_datetime()  # one instant for both

    def derive(stored: dict[str, Any]) -> dict[str, Any]:
        history = list(stored.get("controlStateUpdates") or [])
        last = history[-1] if history else {}
        entry = {
            "assignedTo": sent.get("assignedTo", last.get("assignedTo")),
            "comment": sent.get("comment", last.get("comment")),
            "state": sent.get("state", last.get("state") or "Default"),
            "updatedBy": principal.identity,
            "updatedDateTime": now,
        }
        # the stored entries are complete already; only the new one is completed
        return {"controlStateUpdates": [*history,
                                        complete(SECURE_SCORE_CONTROL_STATE_UPDATE, entry)]}

    return derive


UPDATE_RULES: dict[str, UpdateRule] = {
    "secureScoreControlProfiles": control_profile_update,
}
