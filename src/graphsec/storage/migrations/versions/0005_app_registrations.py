"""App registrations: the clients graphsec's token endpoint issues tokens to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10

``graphsec app create`` writes one row per registration; the token endpoint
(``POST /{tenant}/oauth2/v2.0/token``) reads it on every request, so that every worker and
every instance on one database sees a registration as soon as it is made, and no longer once
it is deleted. The secret is stored as its SHA-256 only (docs/authentication.md says why a
fast hash suffices for a 256-bit random secret).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "app_registrations",
        sa.Column("tenant_id", TEXT, nullable=False),
        sa.Column("client_id", TEXT, nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.Text(), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("certificates", sa.Text(), nullable=False),
        sa.Column("created", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "client_id"),
    )


def downgrade() -> None:
    op.drop_table("app_registrations")
