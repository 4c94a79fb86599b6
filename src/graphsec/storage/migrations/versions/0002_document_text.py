"""The canonical JSON text of each document beside PostgreSQL's jsonb.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

jsonb does not keep key order, so every read re-encoded the document (half of a list's time
in bench/RESULTS.md's PostgreSQL profiles). ``body`` keeps the text graphsec wrote, which reads
serve as it is; ``doc`` stays jsonb for ``$filter``. SQLite stores its documents as text
already and leaves ``body`` empty. Existing PostgreSQL rows get jsonb's own text form (valid
JSON, keys in jsonb's order) until they are next written.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("secure_scores", "secure_score_control_profiles", "user_security_profiles")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("body", sa.Text(), nullable=True))
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"UPDATE {table} SET body = doc::text")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("body")
