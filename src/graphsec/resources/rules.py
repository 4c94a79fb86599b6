"""The little behaviour that is truly an entity set's own, beyond its schema declaration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from graphsec.auth.principal import Principal
from graphsec.errors import BadRequest, ErrorDetail
from graphsec.schema.limits import Limits
from graphsec.schema.security import CONTROL_STATES, SECURE_SCORE_CONTROL_STATE_UPDATE
from graphsec.schema.values import complete, now_datetime

Derive = Callable[[dict[str, Any]], tuple[dict[str, Any], ...]]
"""Sets what an update derives on the new document (the stored one with the client's changes
merged in, complete), in place, and returns the entries it pushed out of the document's bounded
history, oldest first, for the store to append to the history table. What it sets comes
complete: the update does not walk it again."""
UpdateRule = Callable[[Principal, dict[str, Any], Limits], Derive | None]
"""Checks (and may consume) a validated PATCH body; returns what the update derives from it."""
CreateRule = Callable[[dict[str, Any], Limits], None]
"""Checks a validated POST body beyond its schema; raising refuses the create."""

HISTORY = "controlStateUpdates"


def control_profile_update(principal: Principal, patch: dict[str, Any], limits: Limits) -> Derive:
    """Graph's control-profile update: the body must carry ``vendorInformation`` with
    ``provider`` and ``vendor``; ``assignedTo``, ``comment`` and ``state`` (dynamic properties
    of the open entity) become a new ``controlStateUpdates`` entry, stamped with the caller
    (``updatedBy``) and the time. Fields left out carry over from the latest entry.

    Where graphsec differs: the document keeps the newest ``limits.control_history_entries``
    entries (oldest first, as Graph lists them), fewer when they would make the document larger
    than ``limits.max_document_bytes`` (the oldest go first, so a long history never makes a
    profile unpatchable; only a new entry too large on its own is refused, by the size check).
    The entries pushed out go to the history table."""
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

    def derive(doc: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        entries = list(doc.get(HISTORY) or [])
        last = entries[-1] if entries else {}
        entry = {
            "assignedTo": sent.get("assignedTo", last.get("assignedTo")),
            "comment": sent.get("comment", last.get("comment")),
            "state": sent.get("state", last.get("state") or "Default"),
            "updatedBy": principal.identity,
            "updatedDateTime": now,
        }
        # the stored entries are complete already; only the new one is completed
        entries.append(complete(SECURE_SCORE_CONTROL_STATE_UPDATE, entry))
        cut = max(0, len(entries) - limits.control_history_entries)
        cut = _first_that_fits(doc, entries, cut, limits.max_document_bytes)
        doc[HISTORY] = entries[cut:]
        return tuple(entries[:cut])

    return derive


def _first_that_fits(doc: dict[str, Any], entries: list[dict[str, Any]], start: int,
                     max_bytes: int) -> int:
    """The first of ``entries`` (from ``start``) such that the document with those from it on
    as its history fits in ``max_bytes`` as stored; the last entry is always kept. Sizes are
    those of the compact JSON the store writes: the document with an empty history, plus each
    entry and a comma between two."""
    sizes = [len(orjson.dumps(e)) + 1 for e in entries]
    total = len(orjson.dumps({**doc, HISTORY: []})) + sum(sizes[start:]) - 1
    while total > max_bytes and start < len(entries) - 1:
        total -= sizes[start]
        start += 1
    return start


def control_profile_create(doc: dict[str, Any], limits: Limits) -> None:
    """A created profile's history may not be longer than an update would keep: a response
    never carries more than ``limits.control_history_entries`` entries (400 otherwise)."""
    entries = doc.get(HISTORY) or []
    if len(entries) > limits.control_history_entries:
        message = (f"'{HISTORY}' has {len(entries)} entries; a control profile keeps at most "
                   f"{limits.control_history_entries} (GRAPHSEC_CONTROL_HISTORY_ENTRIES): send "
                   f"the newest {limits.control_history_entries}, oldest first.")
        raise BadRequest(message, details=[ErrorDetail("invalidValue", message, HISTORY)])


CREATE_RULES: dict[str, CreateRule] = {
    "secureScoreControlProfiles": control_profile_create,
}

UPDATE_RULES: dict[str, UpdateRule] = {
    "secureScoreControlProfiles": control_profile_update,
}
