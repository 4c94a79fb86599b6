"""Who is calling, and what Graph permissions they hold."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from graphsec.errors import Forbidden


class Permission(StrEnum):
    """The Graph permissions the security entity sets understand."""

    READ_ALL = "SecurityEvents.Read.All"
    READ_WRITE_ALL = "SecurityEvents.ReadWrite.All"


READ = frozenset({Permission.READ_ALL, Permission.READ_WRITE_ALL})
WRITE = frozenset({Permission.READ_WRITE_ALL})


@dataclass(frozen=True)
class Principal:
    """A verified caller: its tenant (``tid``), application permissions (``roles``), delegated
    permissions (``scp``) and a display identity (UPN, or the app id) for audit fields."""

    tenant: str
    roles: frozenset[str]
    scopes: frozenset[str]
    identity: str

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
