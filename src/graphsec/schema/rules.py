"""The little behaviour that is truly an entity set's own, declared with it.

An :class:`~graphsec.schema.types.EntitySet` names its rules (``create_rule``, ``update_rule``);
the generic resource layer calls whichever a set declares, so nothing is looked up by a set's
name. Rules are parametrized by declarations (the history property, its entry type, the
states), and refuse a body with :class:`RuleViolation`, which the resource layer answers as a
400, as it does a :class:`~graphsec.schema.values.ValidationError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from graphsec.schema.limits import Limits
from graphsec.schema.types import ComplexType, Derive
from graphsec.schema.values import complete, now_datetime


class RuleViolation(Exception):
    """A body an entity set's own rule refuses: a 400 with this message and, when ``target``
    names the property at fault, an ``invalidValue`` detail for it."""

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


@dataclass(frozen=True)
class ControlStateUpdate:
    """Graph's control-profile update (an :class:`~graphsec.schema.types.UpdateRule`): the body
    must carry ``vendorInformation`` with ``provider`` and ``vendor``; ``assignedTo``,
    ``comment`` and ``state`` (dynamic properties of the open entity) become a new entry of
    ``history`` (of type ``entry``), stamped with the caller (``updatedBy``) and the time.
    Fields left out carry over from the latest entry; ``state`` is one of ``states``, matched
    ignoring case.

    Where graphsec differs: the document keeps the newest ``limits.control_history_entries``
    entries (oldest first, as Graph lists them), fewer when they would make the document larger
    than ``limits.max_document_bytes`` (the oldest go first, so a long history never makes a
    profile unpatchable; only a new entry too large on its own is refused, by the size check).
    The entries pushed out go to the history table."""

    history: str
    entry: ComplexType
    states: tuple[str, ...]

    def __call__(self, patch: dict[str, Any], caller: str, limits: Limits) -> Derive:
        vendor = patch.get("vendorInformation")
        if not isinstance(vendor, dict) or not vendor.get("provider") or not vendor.get("vendor"):
            raise RuleViolation("The body must contain 'vendorInformation' with its 'provider' "
                                "and 'vendor' fields (e.g. {\"provider\": \"SecureScore\", "
                                "\"vendor\": \"Microsoft\"}).")
        sent = {k: patch.pop(k) for k in ("assignedTo", "comment", "state") if k in patch}
        if "state" in sent:
            state = next((s for s in self.states if s.lower() == str(sent["state"]).lower()),
                         None)
            if state is None:
                raise RuleViolation(f"Invalid value for property 'state': '{sent['state']}'; "
                                    f"expected one of: {', '.join(self.states)}.")
            sent["state"] = state
        now = patch.get("lastModifiedDateTime") or now_datetime()  # one instant for both
        history, entry_type = self.history, self.entry

        def derive(doc: dict[str, Any]) -> tuple[dict[str, Any], ...]:
            entries = list(doc.get(history) or [])
            last = entries[-1] if entries else {}
            entry = {
                "assignedTo": sent.get("assignedTo", last.get("assignedTo")),
                "comment": sent.get("comment", last.get("comment")),
                "state": sent.get("state", last.get("state") or "Default"),
                "updatedBy": caller,
                "updatedDateTime": now,
            }
            # the stored entries are complete already; only the new one is completed
            entries.append(complete(entry_type, entry))
            cut = max(0, len(entries) - limits.control_history_entries)
            cut = _first_that_fits(doc, history, entries, cut, limits.max_document_bytes)
            doc[history] = entries[cut:]
            return tuple(entries[:cut])

        return derive


def _first_that_fits(doc: dict[str, Any], history: str, entries: list[dict[str, Any]],
                     start: int, max_bytes: int) -> int:
    """The first of ``entries`` (from ``start``) such that the document with those from it on
    as its ``history`` fits in ``max_bytes`` as stored; the last entry is always kept. Sizes are
    those of the compact JSON the store writes: the document with an empty history, plus each
    entry and a comma between two."""
    # the entries from ``start`` as one JSON array: their sizes, the commas and two brackets
    total = len(orjson.dumps({**doc, history: []})) + len(orjson.dumps(entries[start:])) - 2
    if total <= max_bytes:
        return start  # the usual case: one size for all, not one per entry
    sizes = [len(orjson.dumps(e)) + 1 for e in entries]
    while total > max_bytes and start < len(entries) - 1:
        total -= sizes[start]
        start += 1
    return start


@dataclass(frozen=True)
class HistoryLimit:
    """A created control profile's ``history`` (a :class:`~graphsec.schema.types.CreateRule`)
    may not be longer than an update would keep: a response never carries more than
    ``limits.control_history_entries`` entries (400 otherwise)."""

    history: str

    def __call__(self, doc: dict[str, Any], limits: Limits) -> None:
        entries = doc.get(self.history) or []
        if len(entries) > limits.control_history_entries:
            raise RuleViolation(
                f"'{self.history}' has {len(entries)} entries; a control profile keeps at most "
                f"{limits.control_history_entries} (GRAPHSEC_CONTROL_HISTORY_ENTRIES): send the "
                f"newest {limits.control_history_entries}, oldest first.", self.history)
