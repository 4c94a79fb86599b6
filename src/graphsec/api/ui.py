"""The secure-score dashboard's files, served at ``/ui/`` (``docs/ui.md``).

A door of ``GraphApp`` (``api.http.Door``) beside the Entra endpoints: it answers ``/ui`` and
every path under it, None for any other. The page it serves is a Graph client of this same
server (``src/graphsec/ui/app.js``); the door itself reads no data and needs no token.

- ``GET /ui`` (any case): 308 to ``/ui/``, so that the page's relative asset URLs resolve.
- ``GET /ui/``: ``index.html``; ``GET /ui/<file>``: one of the package's static files.
- Anything else under ``/ui/``: 404 ``itemNotFound``; a method other than GET: 405. A path is
  looked up as a key of the table built at start-up, never joined to a folder, so ``..``,
  ``%2e%2e`` or an absolute path cannot reach a file outside the table.

Every answer carries a strict ``Content-Security-Policy`` (scripts, styles, images and
requests from this origin only; no inline script or style element, no frames, no plugins),
``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``. Files are sent with
``Cache-Control: no-cache`` and a strong ``ETag`` (a hash of the content), so a browser
revalidates and gets ``304`` for an unchanged file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from urllib.parse import unquote

from graphsec.api.http import Request
from graphsec.errors import ItemNotFound, MethodNotAllowed
from graphsec.wire import Response

PREFIX = "/ui"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
CONTENT_TYPES = {
    ".html": "text/html;charset=utf-8",
    ".js": "text/javascript;charset=utf-8",
    ".css": "text/css;charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
"""The kinds of file served; a file of any other kind in the package (its ``.py`` files, the
vendored licence and README) is not."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Asset:
    """One served file: its bytes, media type and entity tag (quoted, as sent)."""

    body: bytes
    content_type: str
    etag: str


def load_assets(package: str = "graphsec.ui") -> dict[str, Asset]:
    """The package's static files, keyed by their path relative to it (``app.js``,
    ``vendor/uplot/uPlot.min.css``), read once."""
    assets: dict[str, Asset] = {}
    for relative, entry in _walk(files(package), ""):
        kind = CONTENT_TYPES.get(relative[relative.rfind("."):]) if "." in relative else None
        if kind is None:
            continue
        body = entry.read_bytes()
        assets[relative] = Asset(body, kind, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return assets


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for entry in folder.iterdir():
        if entry.name.startswith((".", "__")):
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        else:
            yield f"{prefix}{entry.name}", entry


class Dashboard:
    """A door of ``GraphApp``: the dashboard's files under ``/ui/``, None for other paths."""

    def __init__(self, assets: Mapping[str, Asset] | None = None) -> None:
        self.assets = dict(load_assets() if assets is None else assets)
        if "index.html" not in self.assets:
            raise ValueError("the dashboard's files hold no index.html")

    async def __call__(self, request: Request, base: str) -> Response | None:
        path = request.raw_path
        head = path[:len(PREFIX) + 1].lower()
        if head not in (PREFIX, PREFIX + "/"):
            return None
        if request.method != "GET":
            raise MethodNotAllowed(request.method, ["GET"])
        if len(path) == len(PREFIX):
            query = f"?{request.query}" if request.query else ""
            return Response(308, b"", None, {"Location": f"{PREFIX}/{query}",
                                             **_SECURITY_HEADERS})
        name = unquote(path[len(PREFIX) + 1:]) or "index.html"
        asset = self.assets.get(name)
        if asset is None:
            raise ItemNotFound(f"The dashboard has no file '{name}'.")
        headers = {**_SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": asset.etag}
        if _matches(request.headers.get("if-none-match"), asset.etag):
            return Response(304, b"", None, headers)
        return Response(200, asset.body, asset.content_type, headers)


def _matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (or is ``*``); weak tags compare by
    their opaque part, as RFC 9110 13.1.2 says for this header."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags
