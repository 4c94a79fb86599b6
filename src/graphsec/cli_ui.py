"""``graphsec ui``: print a link that opens the dashboard (``docs/ui.md``) for one tenant.

The link carries a token in its fragment (``/ui/#token=…``), which browsers never send to the
server; the page moves it to ``sessionStorage`` and removes it from the address bar.
"""

from __future__ import annotations

import click

from graphsec.auth.principal import TENANT_EXAMPLE, canonical_tenant
from graphsec.auth.tokens import LocalIssuer
from graphsec.config import Settings

LINK_LIFETIME_SECONDS = 8 * 3600
READ = "SecurityEvents.Read.All"
READ_WRITE = "SecurityEvents.ReadWrite.All"


def server_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the server: the public URL
    (``GRAPHSEC_PUBLIC_URL``), else the scheme, host and port it listens on (``127.0.0.1`` for a
    wildcard bind)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", ""):  # noqa: S104 (a bind address, read here, not bound)
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if settings.tls else 'http'}://{host}:{settings.port}"


def ui_link(settings: Settings, tenant: str, write: bool = False, url: str | None = None,
            identity: str | None = None) -> str:
    """The dashboard's link for ``tenant`` (canonical), with a token valid for 8 hours:
    ``SecurityEvents.Read.All``, or ``SecurityEvents.ReadWrite.All`` with ``write``."""
    from graphsec.cli import _key  # here: graphsec.cli imports this module at its end

    token = LocalIssuer(_key(settings)).mint(
        tenant, [READ_WRITE if write else READ], expires_in=LINK_LIFETIME_SECONDS,
        identity=identity)
    return f"{(url or server_url(settings)).rstrip('/')}/ui/#token={token}"


@click.command(name="ui")
@click.option("--tenant", required=True, help="The tenant whose data the page shows.")
@click.option("--write", is_flag=True,
              help="A ReadWrite link: the page can set a control's state, assignee and comment.")
@click.option("--url", default=None,
              help="The server's address as the browser reaches it (default: "
                   "GRAPHSEC_PUBLIC_URL, else http://HOST:PORT from the settings).")
@click.option("--identity", default=None,
              help="User principal name recorded as updatedBy on the changes made in the page.")
def ui(tenant: str, write: bool, url: str | None, identity: str | None) -> None:
    """Print a link to the secure-score dashboard for one tenant (valid 8 hours).

    The link's token is signed with the key in GRAPHSEC_HOME, as graphsec token's are, so the
    server must use the same GRAPHSEC_HOME."""
    from graphsec.cli import ArgumentFailure, _settings

    canonical = canonical_tenant(tenant.strip())
    if canonical is None:
        raise ArgumentFailure(f"--tenant {tenant!r} is not a tenant id: tenant ids are GUIDs, "
                              f"e.g. --tenant {TENANT_EXAMPLE}")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ArgumentFailure(f"--url {url!r} is not an http:// or https:// address")
    click.echo(ui_link(_settings(), canonical, write, url, identity))
