"""``graphsec export``, ``import``, ``reset`` and ``operator-key`` on the database directly
(click's runner, both backends), and through a running server (``--server``)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from graphsec.cli import main
from graphsec.config import Settings
from graphsec.seeding import SeedPlan, seed
from tests.support.server import serving


def _run(settings: Settings, *args: str, stdin: bytes | None = None) -> Result:
    env = {"GRAPHSEC_HOME": str(settings.home), "GRAPHSEC_DATABASE_URL": settings.database_url}
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def test_export_reset_import_round_trips(settings: Settings, tmp_path: Path) -> None:
    seed(settings.database_url, SeedPlan(2, 30, 5, 2, 3, date(2026, 11, 1)), 1)
    exported = _run(settings, "export")
    assert exported.exit_code == 0, exported.output
    first = exported.stdout_bytes
    assert first.count(b"\n") == 1 + 2 * (30 + 5 + 2)
    path = tmp_path / "state.ndjson"
    path.write_bytes(first)
    reset = _run(settings, "reset", "--yes")
    assert reset.exit_code == 0
    assert "60 secureScores" in reset.stdout
    assert _run(settings, "export").stdout_bytes.count(b"\n") == 1
    imported = _run(settings, "import", str(path))
    assert imported.exit_code == 0, imported.output
    assert "imported 74 entities" in imported.stderr
    assert _run(settings, "export").stdout_bytes == first


def test_import_from_stdin_and_export_of_one_tenant(settings: Settings) -> None:
    report = seed(settings.database_url, SeedPlan(2, 3, 1, 0, 3, date(2026, 11, 1)), 1)
    whole = _run(settings, "export").stdout_bytes
    one = _run(settings, "export", "--tenant", report.first_tenant).stdout_bytes
    assert one.count(b"\n") == 1 + 4
    assert _run(settings, "reset", "--yes").exit_code == 0
    assert _run(settings, "import", "-", stdin=one).exit_code == 0
    assert _run(settings, "export").stdout_bytes == one != whole


def test_reset_of_one_tenant(settings: Settings) -> None:
    report = seed(settings.database_url, SeedPlan(2, 3, 1, 0, 3, date(2026, 11, 1)), 1)
    done = _run(settings, "reset", "--tenant", report.first_tenant, "--yes")
    assert done.exit_code == 0
    assert "3 secureScores" in done.stdout
    assert _run(settings, "export").stdout_bytes.count(b"\n") == 1 + 4


def test_reset_without_a_terminal_needs_yes(settings: Settings) -> None:
    done = _run(settings, "reset")
    assert done.exit_code == 1
    assert "graphsec: reset deletes data: confirm with --yes" in done.stderr


def test_an_invalid_line_fails_in_one_line(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b'{"graphsec":"export","version":1}\n{"tenant":"x"}\n')
    done = _run(settings, "import", str(path))
    assert done.exit_code == 1
    assert done.stderr.startswith("graphsec: Line 2: 'tenant' must be a tenant id")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [["export", "--tenant", "contoso"],
                                  ["reset", "--tenant", "contoso", "--yes"]])
def test_a_bad_tenant_is_a_usage_failure(settings: Settings, args: list[str]) -> None:
    done = _run(settings, *args)
    assert done.exit_code == 2
    assert "--tenant" in done.stderr


def test_operator_key_prints_the_key_of_the_home(settings: Settings) -> None:
    from graphsec.auth.operator import load_or_create_operator_key

    done = _run(settings, "operator-key")
    assert done.stdout.strip() == load_or_create_operator_key(settings.home)
    assert oct((settings.home / "operator.key").stat().st_mode & 0o777) == "0o600"


def _cli(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "graphsec.cli", *args],  # noqa: S603
                          env={**os.environ, "GRAPHSEC_HOME": str(home)}, input=stdin,
                          capture_output=True, timeout=120, check=False)


def test_the_commands_through_a_server(backend: str, tmp_path: Path) -> None:
    with serving(backend, tmp_path) as server:
        url = f"http://127.0.0.1:{server.port}"
        seed(server.database_url, SeedPlan(1, 20, 3, 1, 5, date(2026, 11, 1)), 1)
        exported = _cli(server.home, "export", "--server", url)
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout.count(b"\n") == 1 + 24
        reset = _cli(server.home, "reset", "--yes", "--server", url)
        assert b"20 secureScores" in reset.stdout
        imported = _cli(server.home, "import", "-", "--server", url, stdin=exported.stdout)
        assert imported.returncode == 0, imported.stderr
        assert _cli(server.home, "export", "--server", url).stdout == exported.stdout
        wrong = _cli(server.home, "export", "--server", url, "--operator-key", "x" * 43)
        assert wrong.returncode == 1
        assert b"401" in wrong.stderr
        assert wrong.stderr.count(b"\n") == 1
