"""Run the real ``graphsec`` server as a child process, and mint tokens with the real CLI."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from msgraph import GraphServiceClient

READ_WRITE = "SecurityEvents.ReadWrite.All"
READ = "SecurityEvents.Read.All"

ClientFactory = Callable[..., Awaitable[GraphServiceClient]]
"""``await make_client(token, version="v1.0")``: the ``make_client`` fixture's type."""

STARTUP_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A ``graphsec serve`` child process with its home folder and port."""

    process: subprocess.Popen[bytes]
    home: Path
    port: int
    log_path: Path
    scheme: str = "http"
    """``https`` for a server started with ``--tls``."""
    database_url: str = ""
    """The database it serves, when started by :func:`serving` (``""`` otherwise)."""

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "GRAPHSEC_HOME": str(self.home)}

    def base_url(self, version: str = "v1.0") -> str:
        # The SDK only lets plain http through for localhost, so "localhost" rather than the IP.
        return f"{self.scheme}://localhost:{self.port}/{version}"

    @property
    def origin(self) -> str:
        """``scheme://localhost:port``: the authority of the token endpoint with ``--tls``."""
        return f"{self.scheme}://localhost:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def token(self, tenant: str, *roles: str, scopes: tuple[str, ...] = (),
              expires_in: int | None = None, identity: str | None = None) -> str:
        """A token from ``graphsec token`` run as a subprocess with this server's home."""
        args = [sys.executable, "-m", "graphsec.cli", "token", "--tenant", tenant]
        for role in roles:
            args += ["--role", role]
        for scope in scopes:
            args += ["--scope", scope]
        if expires_in is not None:
            args += ["--expires-in", str(expires_in)]
        if identity is not None:
            args += ["--identity", identity]
        done = subprocess.run(args, env=self.env, capture_output=True, text=True,  # noqa: S603
                              timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"graphsec token failed ({done.returncode}): {done.stderr}")
        token = done.stdout.strip()
        if token.count(".") != 2:
            raise RuntimeError(f"graphsec token printed no JWT: {done.stdout!r}")
        return token

    def kill(self) -> None:
        """SIGKILL the server and all its workers at once, as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(home: Path, *args: str, port: int | None = None,
                 env: Mapping[str, str] | None = None) -> RunningServer:
    """Start ``graphsec serve [args]`` on ``port`` (a free one by default), with ``env`` added
    to the environment, and wait until ``/healthz`` answers 200 (over HTTPS with ``--tls``,
    trusting ``env``'s ``SSL_CERT_FILE``, else the local CA of ``home``)."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = home.parent / f"graphsec-serve-{port}.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "graphsec.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), *args],
        env={**os.environ, **(env or {}), "GRAPHSEC_HOME": str(home)},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kill() reaches every worker
    )
    log_file.close()  # the child holds its own descriptor
    scheme = "https" if "--tls" in args else "http"
    server = RunningServer(process, home, port, log_path, scheme)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error = "no answer yet"
    ca = Path((env or {}).get("SSL_CERT_FILE") or home / "ca" / "graphsec-ca.pem")
    with httpx.Client(timeout=2.0) as plain:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"graphsec serve exited with {process.returncode} before "
                                   f"answering /healthz:\n{server.log()}")
            try:
                if scheme == "https":  # the CA exists once the server has made it
                    with httpx.Client(timeout=2.0, verify=ssl.create_default_context(
                            cafile=ca)) as http:
                        response = http.get(f"https://127.0.0.1:{port}/healthz")
                else:
                    response = plain.get(f"http://127.0.0.1:{port}/healthz")
            except (OSError, ssl.SSLError) as exc:
                last_error = repr(exc)
                time.sleep(0.1)
                continue
            except httpx.TransportError as exc:
                last_error = repr(exc)
            else:
                if response.status_code == 200:
                    return server
                last_error = f"status {response.status_code}: {response.text[:200]}"
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"graphsec serve did not answer /healthz with 200 within "
                       f"{STARTUP_TIMEOUT_SECONDS:.0f} s ({last_error}); its output:\n"
                       f"{server.log()}")


@contextmanager
def serving(backend: str, root: Path, *args: str, env: Mapping[str, str] | None = None,
            clean_log: bool = True) -> Iterator[RunningServer]:
    """``graphsec serve [args]`` on ``backend`` with its home in ``root``: SQLite in a file
    there, or a fresh PostgreSQL database (dropped after); stopped after. ``clean_log``: the
    server's output must show no traceback and no unhandled error once the block is done."""
    from tests.support.postgres import fresh_postgres_database

    with ExitStack() as stack:
        url = f"sqlite:///{root / 'data.db'}"
        if backend == "postgresql":
            databases = fresh_postgres_database()
            stack.callback(databases.close)
            url = next(databases)
        server = start_server(root / "home", "--database", url, *args, env=env)
        server.database_url = url
        stack.callback(server.stop)
        yield server
        if clean_log:
            log = server.log()
            assert "Traceback" not in log, log[-3000:]
            assert "unhandled error" not in log, log[-3000:]
