"""The runtime behaviour: throttling, chaos and providers changed without a restart.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12

``PUT /_graphsec/behaviour`` writes the document (the ``--config`` TOML's shape, as JSON) to
the one row of ``runtime_behaviour`` and raises ``version``; every worker of every instance on
the database polls ``version`` about once a second and applies the document when it changed
(docs/admin.md). No row means nothing was changed since the table was made: each server runs
on its ``--config`` file.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runtime_behaviour",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("runtime_behaviour")
