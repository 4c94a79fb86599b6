"""Server workers fix glibc's malloc thresholds (``graphsec/memory.py``)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

import graphsec.app
from graphsec.memory import tune_allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_thresholds_are_set_on_glibc() -> None:
    assert tune_allocator() is True


def test_every_server_worker_tunes_its_allocator(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(graphsec.app, "tune_allocator", lambda: calls.append(True) or True)
    monkeypatch.setenv("GRAPHSEC_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHSEC_DATABASE_URL", raising=False)
    graphsec.app.app_from_env()
    assert calls == [True]
