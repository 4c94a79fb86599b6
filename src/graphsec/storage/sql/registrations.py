"""Statements of the app registrations' table, for both stores (compiled per dialect)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import MetaData, bindparam, delete, exists, insert, literal_column, select
from sqlalchemy.sql import Executable

from graphsec.storage.base import AppRegistration
from graphsec.storage.sql.tables import REGISTRATIONS_TABLE


def registration_statements(metadata: MetaData) -> dict[str, Executable]:
    """``insert``, ``get``, ``list``, ``list_tenant``, ``delete`` and ``any`` on the table
    ``metadata`` declares (``build_tables``)."""
    t = metadata.tables[REGISTRATIONS_TABLE]
    key = (t.c.tenant_id == bindparam("tenant")) & (t.c.client_id == bindparam("client_id"))
    columns = (t.c.tenant_id, t.c.client_id, t.c.display_name, t.c.secret_sha256, t.c.roles,
               t.c.certificates, t.c.created)
    order = (t.c.tenant_id, t.c.created, t.c.client_id)
    return {
        "insert": insert(t).values({c.name: bindparam(c.name) for c in t.columns}),
        "get": select(*columns).where(key),
        "list": select(*columns).order_by(*order),
        "list_tenant": select(*columns).where(t.c.tenant_id == bindparam("tenant"))
        .order_by(*order),
        "delete": delete(t).where(key),
        "any": select(literal_column("1")).where(
            exists().where(t.c.tenant_id == bindparam("tenant"))),
    }


def insert_values(tenant: str, client_id: str, name: str, secret_sha256: str | None,
                  roles: Sequence[str], certificates: Sequence[str]) -> dict[str, Any]:
    """The bound values of ``insert`` for a new registration, created now."""
    return {
        "tenant_id": tenant, "client_id": client_id, "display_name": name,
        "secret_sha256": secret_sha256, "roles": orjson.dumps(list(roles)).decode(),
        "certificates": orjson.dumps(list(certificates)).decode(),
        "created": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


def from_row(row: Sequence[Any]) -> AppRegistration:
    """A registration from a row of ``get``/``list`` (columns in the table's order)."""
    tenant, client_id, name, secret, roles, certificates, created = row
    return AppRegistration(str(tenant), str(client_id), str(name),
                           None if secret is None else str(secret),
                           tuple(orjson.loads(roles)), tuple(orjson.loads(certificates)),
                           str(created))
