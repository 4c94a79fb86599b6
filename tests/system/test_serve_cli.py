"""``graphsec serve`` on a port that is taken stops at once with one line, whoever holds it:
another program, or another graphsec (whose granian socket would otherwise share the port with
the new one through SO_REUSEPORT, the kernel splitting requests between two servers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from graphsec import cli, ports
from tests.support.server import free_port, start_server

REFUSAL_TIMEOUT_SECONDS = 60.0  # generous: the refusal comes before any worker starts


def serve_expecting_refusal(home: Path, port: int) -> subprocess.CompletedProcess[str]:
    """Run ``graphsec serve --port port``; a server that starts instead is stopped, and the
    test fails."""
    args = [sys.executable, "-m", "graphsec.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port)]
    process = subprocess.Popen(  # noqa: S603
        args, env={**os.environ, "GRAPHSEC_HOME": str(home)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=REFUSAL_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"graphsec serve started on port {port}, which was taken:\n{stderr}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def assert_one_line_in_use(done: subprocess.CompletedProcess[str], port: int) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines == [f"graphsec: {ports.in_use_message('127.0.0.1', port)}"], done.stderr


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on (a plain socket, no SO_REUSEPORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_port_held_by_another_program_is_one_line(tmp_path: Path, held_port: int) -> None:
    assert_one_line_in_use(serve_expecting_refusal(tmp_path / "home", held_port), held_port)


def test_second_graphsec_on_the_same_port_refuses(tmp_path: Path) -> None:
    first = start_server(tmp_path / "first")
    try:
        second = serve_expecting_refusal(tmp_path / "second", first.port)
        assert_one_line_in_use(second, first.port)
        with httpx.Client(timeout=5.0) as http:  # the first one is untouched
            assert http.get(f"http://127.0.0.1:{first.port}/healthz").status_code == 200
    finally:
        first.stop()


def test_bind_failure_after_the_check_is_one_line(tmp_path: Path, held_port: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The port can be taken between the check and granian's own bind: that failure (a Python
    and Rust traceback of granian's) is the same one line."""
    monkeypatch.setattr(ports, "check_free", lambda host, port: None)
    monkeypatch.setenv("GRAPHSEC_HOME", str(tmp_path / "home"))
    saved = dict(os.environ)  # serve exports its settings for the workers it would start
    try:
        result = CliRunner().invoke(cli.main, ["serve", "--host", "127.0.0.1",
                                               "--port", str(held_port)])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        f"graphsec: {ports.in_use_message('127.0.0.1', held_port)}")


def test_free_port_passes_the_check() -> None:
    ports.check_free("127.0.0.1", free_port())
