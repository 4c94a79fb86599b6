"""``graphsec import FILE`` in parts, a process each (``graphsec.importing``): the same store as
one process makes, and a failure counted in the whole file. Both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from graphsec import importing
from graphsec.app import limits
from graphsec.config import Settings
from graphsec.resources.state import ImportFailed
from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.state import open_state
from tests.admin.conftest import ndjson
from tests.conftest import TENANT, score

SECRET = b"s" * 32


def _file(tmp_path: Path, n: int, bad_at: int | None = None) -> Path:
    docs: list[object] = [{"graphsec": "export", "version": 1}]
    for i in range(n):
        docs.append({"tenant": TENANT, "entitySet": "secureScores", "id": f"s{i:04}",
                     "entity": {**score(), "id": f"s{i:04}"}})
    body = ndjson(*docs)
    if bad_at is not None:
        lines = body.splitlines(keepends=True)
        lines[bad_at - 1] = b'{"tenant":"nope"}\n'
        body = b"".join(lines)
    path = tmp_path / "state.ndjson"
    path.write_bytes(body)
    return path


def _count(settings: Settings) -> int:
    async def run() -> int:
        state = open_state(settings.database_url, ENTITY_SETS)
        try:
            counts = await state.counts()
        finally:
            await state.close()
        return counts.get(TENANT, {}).get("secureScores", 0)

    return asyncio.run(run())


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "PARALLEL_BYTES", 1)


@pytest.mark.usefixtures("small_parts")
def test_two_parts_store_every_line(settings: Settings, tmp_path: Path) -> None:
    path = _file(tmp_path, 300)
    seen: list[int] = []
    n = importing.import_file(path, settings.database_url, limits(settings), SECRET, 2,
                              seen.append)
    assert n == 300
    assert sum(seen) == path.stat().st_size
    assert _count(settings) == 300


@pytest.mark.usefixtures("small_parts")
def test_a_failure_in_the_second_part_names_its_line_in_the_file(settings: Settings,
                                                                  tmp_path: Path) -> None:
    path = _file(tmp_path, 300, bad_at=250)
    assert importing._ranges(path, 2)[1][0] < path.read_bytes().index(b'{"tenant":"nope"}')
    with pytest.raises(ImportFailed) as failed:
        importing.import_file(path, settings.database_url, limits(settings), SECRET, 2)
    message = str(failed.value)
    assert message.startswith("Line 250: 'tenant' must be a tenant id")
    assert failed.value.line == 250
    first, _ = importing._ranges(path, 2)[1]
    part_start = path.read_bytes()[:first].count(b"\n") + 1
    assert f"Nothing of lines {part_start}–250 was stored" in message
    assert f"lines 1–{part_start - 1} were stored" in message
    assert _count(settings) == part_start - 2  # the header is line 1


def test_one_process_for_a_small_file(settings: Settings, tmp_path: Path) -> None:
    path = _file(tmp_path, 3)
    assert importing.import_file(path, settings.database_url, limits(settings), SECRET) == 3
    assert orjson.loads(path.read_bytes().splitlines()[1])["id"] == "s0000"
    assert _count(settings) == 3
