"""Who is calling, and what Graph permissions they hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from graphsec.errors import Forbidden


class Permission(StrEnum):
    """The Graph permissions the security entity sets understand."""

    READ_ALL = "SecurityEvents.Read.All"
    READ_WRITE_ALL = "SecurityEvents.ReadWrite.All"


READ = frozenset({Permission.READ_ALL, Permission.READ_WRITE_ALL})
WRITE = frozenset({Permission.READ_WRITE_ALL})

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TENANT_EXAMPLE = "1d5a1bd0-0000-4000-8000-000000000001"
DEV_APPLICATION = "graphsec-dev"
"""The application of `graphsec token` tokens (their ``appid``), and of any token without one."""


def canonical_tenant(value: str) -> str | None:
    """The tenant id ``value`` in its one stored form, or None when it is not a tenant id.

    Entra ID tenant ids are GUIDs (``8-4-4-4-12`` hexadecimal digits) and, like every GUID,
    compare without regard to case: ``72F988BF-…`` and ``72f988bf-…`` are one tenant. graphsec
    keeps the lower-case form everywhere (tokens' ``tid``, ``azureTenantId``, the store's keys);
    any other string (``contoso``, a GUID in braces or without hyphens) is not a tenant id.
    """
    return value.lower() if _GUID.fullmatch(value) else None


@dataclass(frozen=True)
class Principal:
    """A verified caller: its tenant (``tid``, canonical: :func:`canonical_tenant`), application
    permissions (``roles``), delegated permissions (``scp``) and a display identity (UPN, or the
    app id) for audit fields."""

    tenant: str
    roles: frozenset[str]
    scopes: frozenset[str]
    identity: str
    application: str = "graphsec-dev"
    """The calling application: the token's ``appid`` (v1) or ``azp`` (v2); a token with
    neither counts as :data:`DEV_APPLICATION`. Throttling limits are per application."""

    def holds(self, permission: str) -> bool:
        return permission in self.roles or permission in self.scopes

    def require(self, accepted: frozenset[Permission]) -> None:
        """Raise 403 unless the caller holds one of ``accepted``, in ``roles`` or ``scp``."""
        if not (accepted.isdisjoint(self.roles) and accepted.isdisjoint(self.scopes)):
            return
        names = " or ".join(sorted(accepted))
        raise Forbidden(
            f"Insufficient privileges to complete the operation. This operation requires {names} "
            "(application permission in 'roles' or delegated permission in 'scp')."
        )
