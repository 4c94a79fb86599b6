"""A real ``graphsec serve`` as a child process, driven through its admin API (``/_graphsec/``).

:class:`GraphsecServer` is what the pytest plugin's ``graphsec_server`` fixture yields. It speaks
only HTTP to the server (the admin API with the operator key of its home), so what a test does
to it is what any client could do; tokens are minted with the home's signing key, as
``graphsec token`` mints them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from graphsec.auth.keys import load_or_create
from graphsec.auth.operator import load_or_create_operator_key
from graphsec.auth.principal import canonical_tenant
from graphsec.auth.tokens import LocalIssuer

READ = "SecurityEvents.Read.All"
READ_WRITE = "SecurityEvents.ReadWrite.All"
ENTITY_SETS = ("secureScores", "secureScoreControlProfiles", "userSecurityProfiles")


class AdminError(RuntimeError):
    """The server refused an admin request: ``status`` and Graph's ``error.code`` and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ServerOptions:
    """How to start the server: ``serve_args`` as on the command line (``--throttle``,
    ``--config FILE``, ``--workers 2``…) and the database (default: SQLite in the home)."""

    serve_args: tuple[str, ...] = ()
    database_url: str | None = None
    startup_timeout_seconds: float = 30.0
    env: tuple[tuple[str, str], ...] = ()
    """Variables added to the server's environment, as (name, value) pairs."""


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GraphsecServer:
    """``graphsec serve`` with its own ``home``; :meth:`start` waits until ``/readyz`` is 200."""

    def __init__(self, home: Path, options: ServerOptions = ServerOptions()) -> None:
        self.home = home
        self.options = options
        args = list(options.serve_args)
        self.port = int(args[args.index("--port") + 1]) if "--port" in args else free_port()
        self.scheme = "https" if "--tls" in args else "http"
        self.log_path = home / "serve.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._operator_key = ""
        self._issuer: LocalIssuer | None = None

    @property
    def url(self) -> str:
        """``scheme://localhost:port``: the SDKs send plain http to ``localhost`` only."""
        return f"{self.scheme}://localhost:{self.port}"

    def base_url(self, version: str = "v1.0") -> str:
        """Graph's base URL on this server, e.g. for ``adapter.base_url``."""
        return f"{self.url}/{version}"

    def log(self) -> str:
        """What the server wrote so far (its stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> GraphsecServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self._operator_key = load_or_create_operator_key(self.home)
        self._issuer = LocalIssuer(load_or_create(self.home))
        args = list(self.options.serve_args)
        if "--port" not in args:
            args += ["--port", str(self.port)]
        if "--host" not in args:
            args += ["--host", "127.0.0.1"]
        if self.options.database_url:
            args += ["--database", self.options.database_url]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "graphsec.cli", "serve", *args],
                env={**os.environ, **dict(self.options.env), "GRAPHSEC_HOME": str(self.home)},
                stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches every worker
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.options.startup_timeout_seconds
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"graphsec serve exited with {self._process.returncode} "
                                   f"before it was ready; its output:\n{self.log()}")
            try:
                status, body = self._http("GET", "/readyz", authorize=False)
            except OSError as exc:
                last = repr(exc)
            else:
                if status == 200:
                    return
                last = f"status {status}: {body[:200]!r}"
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"graphsec serve was not ready within "
                           f"{self.options.startup_timeout_seconds:g} s ({last}); its output:\n"
                           f"{self.log()}")

    def stop(self) -> None:
        """Stop the server and its workers (SIGTERM, then SIGKILL after 10 s)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    # the admin API

    def reset(self, tenant: str | None = None) -> dict[str, int]:
        """Delete every tenant's data, or ``tenant``'s only; the counts deleted per entity set."""
        query = f"?{urlencode({'tenant': tenant})}" if tenant else ""
        answer: dict[str, int] = self.admin("POST", f"/_graphsec/reset{query}")["deleted"]
        return answer

    def seed(self, tenants: int = 1, days: int = 30, seed: int = 1,
             **sizes: int) -> list[str]:
        """Sample data from graphsec's generator (``controls=``, ``users=`` as ``graphsec
        seed``); the seeded tenants' ids."""
        answer = self.admin("POST", "/_graphsec/seed",
                            {"tenants": tenants, "days": days, "seed": seed, **sizes})
        return list(answer["tenants"])

    def tenants(self) -> list[dict[str, Any]]:
        """Every tenant with its count per entity set."""
        return list(self.admin("GET", "/_graphsec/tenants")["value"])

    def export(self, tenant: str | None = None) -> bytes:
        """The store (or one tenant) as graphsec's NDJSON export."""
        query = f"?{urlencode({'tenant': tenant})}" if tenant else ""
        status, body = self._http("GET", f"/_graphsec/export{query}")
        _raise_for(status, body)
        return body

    def load(self, source: Path | str | Mapping[str, Sequence[Mapping[str, Any]]],
             tenant: str | None = None) -> int:
        """Store entities through the admin import; the number stored.

        ``source`` is an NDJSON file as ``graphsec export`` writes it, or a JSON file (or a
        mapping) from entity set name to a list of entities, each with its ``id``, stored in
        ``tenant``."""
        if isinstance(source, Mapping):
            lines = _lines_of(source, tenant)
        else:
            path = Path(source)
            if path.suffix == ".ndjson":
                return self._import(path.read_bytes())
            lines = _lines_of(json.loads(path.read_text()), tenant, str(path))
        return self._import(b"".join(json.dumps(line).encode() + b"\n" for line in lines))

    def _import(self, body: bytes) -> int:
        imported: int = self.admin("POST", "/_graphsec/import", body,
                                   content_type="application/x-ndjson")["imported"]
        return imported

    def token(self, tenant: str, roles: Iterable[str] = (READ_WRITE,),
              scopes: Iterable[str] = (), expires_in: int = 3600,
              identity: str | None = None) -> str:
        """A bearer token for ``tenant``, signed by this server's issuer (as ``graphsec
        token``)."""
        canonical = canonical_tenant(tenant)
        if canonical is None:
            raise ValueError(f"{tenant!r} is not a tenant id (a GUID)")
        if self._issuer is None:
            raise RuntimeError("the server is not started")
        return self._issuer.mint(canonical, tuple(roles), tuple(scopes), expires_in, identity)

    def admin(self, method: str, path: str, body: Any = None,
              content_type: str = "application/json") -> Any:
        """One admin request; its JSON answer (None for 204). Raises :class:`AdminError`."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        status, answer = self._http(method, path, data, content_type)
        _raise_for(status, answer)
        return json.loads(answer) if answer else None

    def _http(self, method: str, path: str, data: bytes | None = None,
              content_type: str = "application/json",
              authorize: bool = True) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if data is not None else {}
        if authorize:
            headers["Authorization"] = f"Bearer {self._operator_key}"
        request = urllib.request.Request(  # noqa: S310 (our own server's URL)
            f"{self.scheme}://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers=headers)
        context = None
        if self.scheme == "https":
            context = ssl.create_default_context(cafile=self.home / "ca" / "graphsec-ca.pem")
            context.check_hostname = False  # the certificate names localhost; we dial the IP
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as answer:  # noqa: S310
                return int(answer.status), bytes(answer.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())


def _raise_for(status: int, body: bytes) -> None:
    if status < 400:
        return
    try:
        error = json.loads(body)["error"]
        raise AdminError(status, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        raise AdminError(status, "unknown", body[:500].decode(errors="replace")) from None


def _lines_of(data: Any, tenant: str | None, where: str = "the data") -> list[dict[str, Any]]:
    """Import lines for ``{entity set: [entities]}`` in ``tenant``."""
    if tenant is None:
        raise ValueError(f"loading {where} needs a tenant= (its entities carry none)")
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a JSON object from entity set name to a list of "
                         f"entities, one of {', '.join(ENTITY_SETS)}")
    lines: list[dict[str, Any]] = []
    for entity_set, entities in data.items():
        if entity_set not in ENTITY_SETS:
            raise ValueError(f"{where}: {entity_set!r} is not an entity set; use one of "
                             f"{', '.join(ENTITY_SETS)}")
        for n, entity in enumerate(entities):
            if not isinstance(entity, Mapping) or not isinstance(entity.get("id"), str):
                raise ValueError(f"{where}: {entity_set}[{n}] is not an object with an 'id'")
            lines.append({"tenant": tenant, "entitySet": entity_set, "id": entity["id"],
                          "entity": dict(entity)})
    return lines
