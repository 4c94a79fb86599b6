"""Server workers fix glibc's malloc thresholds (``graphsec/memory.py``)."""

from __future__ import annotations

import gc
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

    def tune_allocator() -> bool:
        calls.append(True)
        return True

    monkeypatch.setattr(graphsec.app, "tune_allocator", tune_allocator)
    monkeypatch.setenv("GRAPHSEC_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHSEC_DATABASE_URL", raising=False)
    graphsec.app.app_from_env()
    assert calls == [True]


def test_settle_heap_freezes_what_is_alive_and_collects_gen0_less_often() -> None:
    from graphsec.memory import GEN0_THRESHOLD, settle_heap

    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 1000  # at least the modules' objects
        assert gc.get_threshold() == (GEN0_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_a_server_worker_settles_its_heap_once_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(graphsec.app, "settle_heap", lambda: calls.append(True))
    monkeypatch.setenv("GRAPHSEC_HOME", str(tmp_path))
    monkeypatch.delenv("GRAPHSEC_DATABASE_URL", raising=False)
    app = graphsec.app.app_from_env()
    assert calls == []
    await app._startup()  # what the first request or the lifespan event runs
    try:
        assert calls == [True]
    finally:
        await app._shutdown()
