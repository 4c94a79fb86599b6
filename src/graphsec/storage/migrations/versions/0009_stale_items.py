"""Item rows: a write lists its document as stale instead of rewriting its items.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Since 0008, a write of a document whose tenant has item rows made its items again in its own
transaction: 20 rows of a score, each in the item table and its indexes. On SQLite that made a
POST four times slower. ``item_rows_stale`` lists the documents written since their rows were
made; a write adds one row there, reads take those documents' items from their JSON, and a
refresh started by a lambda makes their rows again (``storage/sql/items.py``). PostgreSQL's
trigger function now lists the document instead of inserting its items; SQLite's writers do
the same (its trigger only deletes, as before).

The names are frozen here as this revision made them; the SQL text comes from ``items.py``'s
functions of those names.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from graphsec.storage.sql.items import ItemColumn, trigger_function_sql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

ITEMS = "secure_scores_control_scores"
COLLECTION = "controlScores"
COLUMNS: tuple[ItemColumn, ...] = (
    ("control_category", "controlCategory", "text"),
    ("control_name", "controlName", "text"),
    ("description", "description", "text"),
    ("score", "score", "double"),
)


def upgrade() -> None:
    op.create_table(
        "item_rows_stale",
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("items", TEXT, nullable=False),
        sa.Column("parent_id", TEXT, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "items", "parent_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(trigger_function_sql(ITEMS, COLLECTION, COLUMNS, stale=True))


def downgrade() -> None:
    """0008 has no list: the tenants with stale documents lose their rows, which the next
    lambda on them builds again."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(trigger_function_sql(ITEMS, COLLECTION, COLUMNS, stale=False))
    stale = "SELECT tenant_id FROM item_rows_stale"
    op.execute(f"DELETE FROM {ITEMS} WHERE tenant_id IN ({stale})")
    op.execute(f"DELETE FROM item_rows_built WHERE tenant_id IN ({stale})")
    op.drop_table("item_rows_stale")
