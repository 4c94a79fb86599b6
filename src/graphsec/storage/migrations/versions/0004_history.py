"""The history table: entries a bounded collection pushed out of an entity's document.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

A control profile's ``controlStateUpdates`` grew by one entry with every PATCH, and every PATCH
rewrote the whole document. From this revision the document keeps the newest entries only
(``GRAPHSEC_CONTROL_HISTORY_ENTRIES``, default 100) and the older ones are rows of ``history``,
one each, numbered by ``seq`` in the order they were made. Profiles stored with more entries
than the default are trimmed here, their older entries moved to ``history``, so that no
response carries a longer history after the upgrade. The downgrade puts them back in front of
the documents' entries and drops the table: nothing is lost either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
PROFILES = "secure_score_control_profiles"
ENTITY_SET = "secureScoreControlProfiles"
PROPERTY = "controlStateUpdates"
KEPT = 100
"""The default of ``GRAPHSEC_CONTROL_HISTORY_ENTRIES`` when this revision was written."""


def _encode(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)  # canonical, as graphsec stores


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _profiles(longer_than: int | None) -> list[Any]:
    """(tenant, id, document text) of the profiles with more than ``longer_than`` entries, or
    of those with history rows when it is None."""
    # PostgreSQL: the canonical bytes as written (jsonb's own text has its key order)
    doc = "coalesce(convert_from(body, 'UTF8'), doc::text)" if _postgres() else "doc"
    if longer_than is None:
        where = (f"EXISTS (SELECT 1 FROM history h WHERE h.tenant_id = p.tenant_id AND "
                 f"h.entity_set = '{ENTITY_SET}' AND h.entity_id = p.id)")
    elif _postgres():
        where = (f"CASE WHEN jsonb_typeof(doc->'{PROPERTY}') = 'array' "
                 f"THEN jsonb_array_length(doc->'{PROPERTY}') ELSE 0 END > {longer_than}")
    else:
        where = f"coalesce(json_array_length(doc, '$.{PROPERTY}'), 0) > {longer_than}"
    sql = f"SELECT tenant_id, id, {doc} FROM {PROFILES} p WHERE {where}"
    return list(op.get_bind().execute(sa.text(sql)))


def _store(tenant: str, entity_id: str, doc: dict[str, Any]) -> None:
    data = _encode(doc)
    key = "tenant_id = :tenant AND id = :id"
    if _postgres():
        stmt = sa.text(f"UPDATE {PROFILES} SET doc = CAST(:doc AS jsonb), body = :body "
                       f"WHERE {key}").bindparams(sa.bindparam("body", type_=sa.LargeBinary()))
        values = {"doc": data.decode(), "body": data}
    else:
        stmt = sa.text(f"UPDATE {PROFILES} SET doc = :doc WHERE {key}")
        values = {"doc": data.decode()}
    op.get_bind().execute(stmt, values | {"tenant": tenant, "id": entity_id})


def upgrade() -> None:
    op.create_table(
        "history",
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("entity_set", TEXT, nullable=False),
        sa.Column("entity_id", TEXT, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "entity_set", "entity_id", "seq"),
    )
    insert = sa.text("INSERT INTO history (tenant_id, entity_set, entity_id, seq, entry) "
                     "VALUES (:tenant, :entity_set, :id, :seq, :entry)")
    for tenant, entity_id, text in _profiles(KEPT):
        doc = orjson.loads(text)
        entries = doc[PROPERTY]
        moved, doc[PROPERTY] = entries[:-KEPT], entries[-KEPT:]
        op.get_bind().execute(insert, [
            {"tenant": tenant, "entity_set": ENTITY_SET, "id": entity_id, "seq": n,
             "entry": _encode(entry).decode()} for n, entry in enumerate(moved, 1)])
        _store(tenant, entity_id, doc)


def downgrade() -> None:
    select = sa.text("SELECT entry FROM history WHERE tenant_id = :tenant AND "
                     "entity_set = :entity_set AND entity_id = :id ORDER BY seq")
    for tenant, entity_id, text in _profiles(None):
        rows = op.get_bind().execute(select, {"tenant": tenant, "entity_set": ENTITY_SET,
                                              "id": entity_id})
        doc = orjson.loads(text)
        doc[PROPERTY] = [*(orjson.loads(r[0]) for r in rows), *(doc.get(PROPERTY) or [])]
        _store(tenant, entity_id, doc)
    op.drop_table("history")
