"""The whole schema: one table per entity set (typed scalar columns + the document).

Revision ID: 0001
Revises:
Create Date: 2026-11-23

PostgreSQL differs in two ways: ``doc`` is ``jsonb`` with a GIN index, and the default-order
indexes put NULLs first so that one index serves both ``ASC NULLS FIRST`` and, scanned
backwards, ``DESC NULLS LAST`` (graphsec's null ordering on every backend), and text columns
use the "C" collation so that strings sort by code point as they do in SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOC = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
"""Text compares by code point on every backend (SQLite's BINARY), whatever the database's locale."""


def _order_index(table: str, *columns: str) -> None:
    name = f"ix_{table}_default_order"
    if op.get_bind().dialect.name == "postgresql":
        keys = ", ".join(["tenant_id", *(f"{c} NULLS FIRST" for c in columns)])
        op.execute(f"CREATE INDEX {name} ON {table} ({keys})")
        op.execute(f"CREATE INDEX ix_{table}_doc ON {table} USING gin (doc jsonb_path_ops)")
    else:
        op.create_index(name, table, ["tenant_id", *columns])


def upgrade() -> None:
    op.create_table(
        "secure_scores",
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("id", TEXT, nullable=False),
        sa.Column("active_user_count", sa.Integer(), nullable=True),
        sa.Column("azure_tenant_id", TEXT, nullable=True),
        sa.Column("created_date_time", sa.BigInteger(), nullable=True),
        sa.Column("current_score", sa.Float(), nullable=True),
        sa.Column("licensed_user_count", sa.Integer(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("doc", DOC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    _order_index("secure_scores", "created_date_time", "id")

    op.create_table(
        "secure_score_control_profiles",
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("id", TEXT, nullable=False),
        sa.Column("action_type", TEXT, nullable=True),
        sa.Column("action_url", TEXT, nullable=True),
        sa.Column("azure_tenant_id", TEXT, nullable=True),
        sa.Column("control_category", TEXT, nullable=True),
        sa.Column("deprecated", sa.Boolean(), nullable=True),
        sa.Column("implementation_cost", TEXT, nullable=True),
        sa.Column("last_modified_date_time", sa.BigInteger(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("remediation", TEXT, nullable=True),
        sa.Column("remediation_impact", TEXT, nullable=True),
        sa.Column("service", TEXT, nullable=True),
        sa.Column("tier", TEXT, nullable=True),
        sa.Column("title", TEXT, nullable=True),
        sa.Column("user_impact", TEXT, nullable=True),
        sa.Column("doc", DOC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    _order_index("secure_score_control_profiles", "rank", "id")

    op.create_table(
        "user_security_profiles",
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("id", TEXT, nullable=False),
        sa.Column("azure_subscription_id", TEXT, nullable=True),
        sa.Column("azure_tenant_id", TEXT, nullable=True),
        sa.Column("created_date_time", sa.BigInteger(), nullable=True),
        sa.Column("display_name", TEXT, nullable=True),
        sa.Column("last_modified_date_time", sa.BigInteger(), nullable=True),
        sa.Column("risk_score", TEXT, nullable=True),
        sa.Column("user_principal_name", TEXT, nullable=True),
        sa.Column("doc", DOC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    _order_index("user_security_profiles", "created_date_time", "id")


def downgrade() -> None:
    for table in ("user_security_profiles", "secure_score_control_profiles", "secure_scores"):
        op.drop_table(table)
