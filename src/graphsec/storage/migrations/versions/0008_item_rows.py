"""Item rows: the items of ``secureScores.controlScores`` as rows, kept by triggers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

A lambda over a nested collection (``controlScores/any(c: c/score gt 30)``) read every item of
every document of the tenant with the JSON functions. ``secure_scores_control_scores`` holds
the items as rows (tenant, score id, position, one typed column per declared scalar property
of ``controlScore``), with an index per item property users filter on; ``item_rows_built``
says which tenants have them. Triggers on ``secure_scores`` keep the rows of tenants that
have them, in the transaction of every write, whatever writes it; nothing builds them here:
a tenant's rows are built when a lambda first asks for them (``storage/sql/items.py``).

The names, kinds and indexes are frozen here as this revision made them; the SQL text comes
from ``items.py``'s functions of those names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from graphsec.storage.sql.items import ItemColumn, drop_trigger_sql, trigger_sql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

TABLE = "secure_scores"
ITEMS = "secure_scores_control_scores"
COLLECTION = "controlScores"
COLUMNS: tuple[ItemColumn, ...] = (
    ("control_category", "controlCategory", "text"),
    ("control_name", "controlName", "text"),
    ("description", "description", "text"),
    ("score", "score", "double"),
)
INDEXES = (("control_name", True), ("score", False)), (("score", False),)
"""Each index's item columns after the tenant (and whether by lower case); ``parent_id``
follows, then the columns indexed by lower case themselves, so that the index covers the
statements that compare them (an index-only scan on PostgreSQL needs the column)."""

_TYPES: dict[str, Any] = {"text": TEXT, "double": sa.Float(), "bigint": sa.BigInteger(),
                          "boolean": sa.Boolean()}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "item_rows_built",
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("items", TEXT, nullable=False),
        sa.Column("upto", TEXT, nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "items"),
    )
    op.create_table(
        ITEMS,
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("parent_id", TEXT, nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        *(sa.Column(name, _TYPES[kind], nullable=True) for name, _, kind in COLUMNS),
        sa.PrimaryKeyConstraint("tenant_id", "parent_id", "ordinal"),
    )
    for index in INDEXES:
        name = f"ix_{ITEMS}_{'_'.join(c for c, _ in index)}"
        keys = ", ".join(f"lower({c})" if lowered else c for c, lowered in index)
        covered = "".join(f", {c}" for c, lowered in index if lowered)
        op.execute(f"CREATE INDEX {name} ON {ITEMS} (tenant_id, {keys}, parent_id{covered})")
    for statement in trigger_sql(dialect, TABLE, ITEMS, COLLECTION, COLUMNS):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_trigger_sql(op.get_bind().dialect.name, TABLE, ITEMS):
        op.execute(statement)
    op.drop_table(ITEMS)
    op.drop_table("item_rows_built")
