"""Indexes for the properties users filter on; PostgreSQL's unused GIN index on ``doc`` dropped.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

A ``$filter`` on a property other than the default order's read every row of the tenant, and
so did its ``$count``. Each property of an entity set's ``indexed`` (``schema/security.py``)
now has an index of ``(tenant_id, value, <the default order's keys>)``, so that the rows of one
value come in the default order (a page of ``service eq 'x'`` is read, not sorted) and a range's
rows are sorted on keys read from the index alone; string properties are indexed by ``lower(value)``,
because ``$filter`` compares strings ignoring case and compiles them so
(``storage/sql/filters.py``), which is also why ``id`` has one beside the primary key.

The GIN index on ``doc`` (``jsonb_path_ops``, revision 0001) served no statement graphsec
runs (no ``@>`` or ``jsonpath`` operator is compiled), and every write paid for it; it is
dropped. The downgrade puts it back.

The tables are analysed: SQLite had no statistics so far, and without them it reads a tenant's
every id from a covering index rather than probing the new ones for ``id in (…)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORDER: dict[str, tuple[str, ...]] = {
    "secure_scores": ("created_date_time", "id"),
    "secure_score_control_profiles": ("rank", "id"),
    "user_security_profiles": ("created_date_time", "id"),
}
"""Each table's default order, whose keys follow the value in each index."""

INDEXES: dict[str, tuple[tuple[str, bool], ...]] = {
    "secure_scores": (("id", True), ("current_score", False)),
    "secure_score_control_profiles": (("id", True), ("control_category", True),
                                      ("service", True)),
    "user_security_profiles": (("id", True), ("risk_score", True),
                               ("user_principal_name", True)),
}
"""Table → (column, indexed by its lower case), as ``filter_indexes`` derived them when this
revision was written."""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    nulls = " NULLS FIRST" if _postgres() else ""  # as the default-order indexes (0001)
    for table, columns in INDEXES.items():
        order = ", ".join(f"{c}{nulls}" for c in ORDER[table])
        for column, lowered in columns:
            key = f"lower({column})" if lowered else column
            op.execute(f"CREATE INDEX ix_{table}_{column} ON {table} (tenant_id, {key}, {order})")
        if _postgres():
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_doc")
    if not _postgres():  # sampled statistics: see storage/bulk.py
        op.execute("PRAGMA analysis_limit=1000")
    for table in INDEXES:
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    for table, columns in INDEXES.items():
        for column, _ in columns:
            op.execute(f"DROP INDEX ix_{table}_{column}")
        if _postgres():
            op.execute(f"CREATE INDEX ix_{table}_doc ON {table} USING gin (doc jsonb_path_ops)")
