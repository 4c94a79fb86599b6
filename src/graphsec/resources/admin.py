"""What the admin API (``/_graphsec/``) does, apart from HTTP: the service ``api/admin.py``
calls, built by ``app.py`` (docs/admin.md). Every method takes checked arguments and answers
JSON-ready values; a client's mistake is a :class:`graphsec.errors.BadRequest`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Any

from graphsec.auth import registrations as apps
from graphsec.auth.principal import TENANT_EXAMPLE, canonical_tenant
from graphsec.auth.tokens import LocalIssuer
from graphsec.errors import BadRequest
from graphsec.resources.runtime import RuntimeBehaviour, document_of
from graphsec.resources.state import Importer, Seal, export_lines, import_lines, line_cap
from graphsec.schema.limits import Limits
from graphsec.schema.types import EntitySet
from graphsec.storage.state import StateStore

SEED_BOUNDS: dict[str, tuple[int, int, int]] = {
    # name: (default, least, most); the defaults are `graphsec seed`'s
    "tenants": (10, 1, 100),
    "days": (90, 1, 3650),
    "controls": (20, 1, 500),
    "users": (20, 0, 10_000),
    "seed": (1, 0, 2**63 - 1),
}
MAX_SEED_ENTITIES = 100_000
"""The most entities one ``POST /_graphsec/seed`` may write (a few seconds of one worker);
``graphsec seed`` writes more."""
SEED_END = date(2026, 11, 1)
MAX_TOKEN_SECONDS = 10 * 365 * 86400


def tenant_of(value: str, what: str = "tenant") -> str:
    """The canonical tenant id; 400 naming ``what`` when ``value`` is not one."""
    tenant = canonical_tenant(value.strip()) if isinstance(value, str) else None
    if tenant is None:
        raise BadRequest(f"'{what}' must be a tenant id (a GUID such as {TENANT_EXAMPLE}), "
                         f"not {value!r}.")
    return tenant


class Admin:
    """The operations of the admin API on one database."""

    def __init__(self, state: StateStore, registrations: apps.RegistrationStore,
                 runtime: RuntimeBehaviour, issuer: LocalIssuer,
                 entity_sets: tuple[EntitySet, ...], limits: Limits, database_url: str,
                 seal: Seal) -> None:
        self.state = state
        self.seal = seal
        self.registrations = registrations
        self.runtime = runtime
        self.issuer = issuer
        self.entity_sets = entity_sets
        self.limits = limits
        self.database_url = database_url

    async def tenants(self) -> dict[str, Any]:
        counts = await self.state.counts()
        return {"value": [{"tenantId": tid, **n} for tid, n in counts.items()]}

    async def reset(self, tenant: str | None, with_apps: bool) -> dict[str, Any]:
        return {"deleted": await self.state.reset(tenant, with_apps)}

    def export(self, tenant: str | None) -> AsyncIterator[bytes]:
        return export_lines(self.state, tenant, self.seal)

    async def import_ndjson(self, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        importer = Importer(self.state, self.entity_sets, self.limits, self.seal)
        return {"imported": await import_lines(importer, chunks, line_cap(self.limits))}

    async def seed(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Sample data as ``graphsec seed`` writes it, bounded (400 over a bound)."""
        from graphsec.seeding import SeedPlan, seed

        unknown = sorted(set(body) - set(SEED_BOUNDS))
        if unknown:
            raise BadRequest(f"Unknown seed option '{unknown[0]}'; known: "
                             f"{', '.join(SEED_BOUNDS)}.")
        values: dict[str, int] = {}
        for name, (default, least, most) in SEED_BOUNDS.items():
            value = body.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
                raise BadRequest(f"'{name}' must be a whole number from {least} to {most}.")
            values[name] = value
        plan = SeedPlan(values["tenants"], values["days"], values["controls"], values["users"],
                        values["seed"], SEED_END)
        if plan.total > MAX_SEED_ENTITIES:
            raise BadRequest(f"The seed would write {plan.total} entities; the admin API writes "
                             f"at most {MAX_SEED_ENTITIES} a request (graphsec seed writes more).")
        report = await asyncio.to_thread(seed, self.database_url, plan, 1)
        return {"tenants": [t.id for t in plan.generator().tenants],
                "secureScores": report.secure_scores,
                "secureScoreControlProfiles": report.control_profiles,
                "userSecurityProfiles": report.user_profiles}

    def behaviour(self) -> dict[str, Any]:
        return document_of(self.runtime.current)

    async def replace_behaviour(self, document: Any) -> dict[str, Any]:
        return document_of(await self.runtime.replace(document))

    async def apps(self, tenant: str | None) -> dict[str, Any]:
        found = await self.registrations.registrations(tenant)
        return {"value": [apps.describe(r) for r in found]}

    async def create_app(self, body: Mapping[str, Any]) -> dict[str, Any]:
        tenant = tenant_of(body.get("tenant", ""))
        name, roles = body.get("name"), body.get("roles", [])
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("'name' must be the app's display name, a non-empty string.")
        _strings(roles, "roles")
        try:
            created = await apps.register(self.registrations, tenant, name, roles)
        except apps.RegistrationError as exc:
            raise BadRequest(str(exc)) from None
        return created.as_json()

    async def delete_app(self, tenant: str, client_id: str) -> bool:
        return await self.registrations.delete_registration(tenant, client_id.lower())

    def token(self, body: Mapping[str, Any]) -> dict[str, Any]:
        tenant = tenant_of(body.get("tenant", ""))
        roles, scopes = body.get("roles", []), body.get("scopes", [])
        _strings(roles, "roles")
        _strings(scopes, "scopes")
        expires = body.get("expiresIn", 3600)
        if isinstance(expires, bool) or not isinstance(expires, int) \
                or not 1 <= expires <= MAX_TOKEN_SECONDS:
            raise BadRequest(f"'expiresIn' must be a whole number of seconds from 1 to "
                             f"{MAX_TOKEN_SECONDS}.")
        identity = body.get("identity")
        if identity is not None and not isinstance(identity, str):
            raise BadRequest("'identity' must be a user principal name (a string).")
        return {"accessToken": self.issuer.mint(tenant, roles, scopes, expires, identity),
                "tokenType": "Bearer", "expiresIn": expires}


def _strings(value: Any, name: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"'{name}' must be an array of strings.")
