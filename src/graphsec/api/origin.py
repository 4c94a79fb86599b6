"""The origin links are built from: a configured public URL, or a Host header the server trusts.

``@odata.context``, ``@odata.nextLink`` and ``Location`` are absolute URLs. Built
from whatever Host a client sends, they would point wherever the client likes (a poisoned cache
or a shared link then sends the next client, and its token, elsewhere). So:

- with a public URL (``--public-url``), every link starts with it and the Host header is ignored:
  a proxy in front may rewrite Host to its upstream address, as it does in front of Graph;
- otherwise the Host must name an allowed host (the loopback names, the bind address, and each
  ``--allowed-host``; compared case-insensitively, with any port); any other Host is a 400 that
  says how to allow it. A request without a Host (HTTP/1.0) gets the address it reached (the
  bind address, or with a wildcard bind the address the client used).

The check costs one dict lookup per request: every Host value accepted once is remembered (a
bounded number of them), so only a new value is parsed.
"""

from __future__ import annotations

from graphsec.config import LOOPBACK_HOSTS
from graphsec.errors import BadRequest

WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104 (names, not binds)
_REMEMBERED = 256
"""Accepted Host values kept for the fast path (a few in practice: name, name:port, IP)."""
_SHOWN_HOST = 100
"""Characters of a refused Host quoted back in the error message."""


def bracketed(host: str) -> str:
    """``host`` as it appears in a URL's authority: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Origin:
    """Decides the ``scheme://authority[/prefix]`` of each request's links."""

    def __init__(self, public_url: str | None, allowed_hosts: tuple[str, ...],
                 bind_host: str, bind_port: int) -> None:
        self.public_url = public_url
        bind = bracketed(bind_host.lower())
        self._wildcard = bind in WILDCARD_ADDRESSES
        names = [*LOOPBACK_HOSTS, *allowed_hosts]
        if not self._wildcard:
            names.append(bind)
        self.allowed = frozenset(names)
        self._shown = ", ".join(dict.fromkeys(names))
        self._bind_authority = f"{bind}:{bind_port}"
        self._accepted: dict[str, None] = {}

    def base(self, scheme: str, host: str | None, server: tuple[str, int] | None) -> str:
        """``scheme://authority`` (or the public URL) for a request; 400 for a Host that is not
        allowed. ``server`` is the local address the connection reached."""
        if self.public_url is not None:
            return self.public_url
        if not host:
            return f"{scheme}://{self._fallback_authority(server)}"
        if host not in self._accepted:
            self._check(host)
        return f"{scheme}://{host}"

    def _fallback_authority(self, server: tuple[str, int] | None) -> str:
        # The address the connection reached: the bind address, or with a wildcard bind the
        # one the client used.
        if server is not None:
            return f"{bracketed(server[0])}:{server[1]}"
        return self._bind_authority

    def _check(self, host: str) -> None:
        name, port = _split_host(host.lower())
        if name in self.allowed and (not port or (port.isascii() and port.isdigit()
                                                  and len(port) <= 5)):
            if len(self._accepted) < _REMEMBERED:
                self._accepted[host] = None
            return
        shown = host if len(host) <= _SHOWN_HOST else f"{host[:_SHOWN_HOST]}…"
        everywhere = (" The server listens on every address, so name the hosts clients use."
                      if self._wildcard else "")
        raise BadRequest(
            f"The Host header '{shown}' is not a host this server answers to (allowed, with any "
            f"port: {self._shown}).{everywhere} Start the server with --allowed-host NAME "
            "(GRAPHSEC_ALLOWED_HOSTS) to allow one, or --public-url URL (GRAPHSEC_PUBLIC_URL) "
            "to build links from a fixed origin."
        )


def _split_host(host: str) -> tuple[str, str]:
    """``(name, port)`` of a Host header value (``port`` empty when absent); an unparsable
    value gives a name no allowed set contains."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[:end + 1], host[end + 1:]
    else:
        name, colon, port = host.partition(":")
        rest = colon + port
    if not rest:
        return name, ""
    if rest[0] != ":" or len(rest) == 1:
        return "", ""
    return name, rest[1:]
