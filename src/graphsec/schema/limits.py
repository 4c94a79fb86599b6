"""Bounds on what a write may send and what is stored, with the reasons for their defaults.

Graph documents no such bounds beyond its 4 MB request limit; graphsec needs them because a
body is expanded before it is stored (every declared property left out is stored as null), so a
3.9 MB POST of empty ``controlScores`` items once became a 98.8 MB document. The values come
from :class:`graphsec.config.Settings` (``GRAPHSEC_MAX_*``); this module holds their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_COLLECTION_ITEMS = 2000
"""Microsoft Secure Score has a few hundred controls, so a secureScore's ``controlScores`` (the
longest collection of these entity sets) has a few hundred items; the other collections
(``enabledServices``, ``averageComparativeScores``, ``threats``, ``tags``, …) a handful. 2,000
leaves several times the largest real tenant's catalogue and still refuses a 1.3 M-item array
before a single item is looked at."""

MAX_DEPTH = 32
"""The declared types nest at most 5 levels (a control profile's ``complianceInformation[]``
→ ``certificationControls[]`` → item); Graph's dynamic properties of open types are scalars.
32 leaves room for any real extension data and stays far below the ~254 levels the JSON
encoder can write (deeper documents would fail on the way to the database)."""

MAX_DOCUMENT_BYTES = 1024 * 1024
"""A realistic secureScore (300–400 controls of 250–500 bytes each, with Graph's beta extras)
takes 100–200 KB, so 1 MiB leaves five times that; a default list page of 100 such documents
is 10–20 MB. At the bound a page of 100 is 100 MiB, which is why the bound is not larger."""

CONTROL_HISTORY_ENTRIES = 100
"""The newest ``controlStateUpdates`` a control profile's document keeps. A profile gets an
entry only when a person changes its state, assignee or comment (Graph's examples show one);
100 is more than anyone reads back, and keeps the list at ~20 KB (~60 KB with long comments)
however often a profile is patched. Older entries are not lost: they move to the history
table, which no response carries."""


@dataclass(frozen=True)
class Limits:
    """The bounds a write is checked against (built once from the settings, passed down).

    ``max_collection_items``: entries of any JSON array or object in a body, checked before
    its entries are looked at (400 naming the property). ``max_depth``: levels of JSON arrays
    and objects, the body itself being level 1 (400 naming the property). ``max_document_bytes``:
    the entity as stored, canonical JSON with every declared property present (413).
    """

    max_collection_items: int = MAX_COLLECTION_ITEMS
    max_depth: int = MAX_DEPTH
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    control_history_entries: int = CONTROL_HISTORY_ENTRIES
    """The newest ``controlStateUpdates`` a control profile keeps in its document (fewer when
    they would not fit in ``max_document_bytes``)."""


class DocumentTooLarge(Exception):
    """The entity being written would take more than ``limit`` bytes as stored. ``target``: the
    property at which the body made that certain ('' when the encoded document was measured)."""

    def __init__(self, limit: int, target: str = "") -> None:
        self.limit = limit
        self.target = target
        at = f" (reached at '{target}')" if target else ""
        super().__init__(
            f"The entity would take more than {limit} bytes as stored{at}, the limit for one "
            "entity; every declared property is stored, null when left out. Send fewer or "
            "shorter values."
        )
