"""A list or count that may scan is stopped when its client leaves, and a short one does not pay
for the watching (``api/disconnect.py``): the watch starts only once the work has run
``WATCH_AFTER_SECONDS``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from graphsec.api import disconnect
from graphsec.api.http import GraphApp
from graphsec.app import create_app
from graphsec.config import Settings

LIST = b"/v1.0/security/secureScores?$filter=currentScore%20ge%201&$count=true"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[GraphApp]:
    graph = create_app(settings)
    yield graph
    await graph.resource.store.close()


class Client:
    """An ASGI client that counts ``receive()`` calls and can leave (``http.disconnect``)."""

    def __init__(self) -> None:
        self.receives = 0
        self.left = asyncio.Event()
        self.sent: list[MutableMapping[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        if self.receives == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    async def get(self, app: GraphApp, target: bytes, rw: dict[str, str]) -> int:
        path, _, query = target.partition(b"?")
        scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
                 "path": path.decode(), "raw_path": path, "query_string": query,
                 "headers": [(b"host", b"graph.test"),
                             (b"authorization", rw["Authorization"].encode())],
                 "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}
        await app(scope, self.receive, self.send)
        return int(self.sent[0]["status"])


def _slow_lists(app: GraphApp, monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[str]:
    """Every store list now takes ``seconds`` first; the list returned says how each ended."""
    store = app.resource.store
    real = store.list
    ended: list[str] = []

    async def slow(*args: Any, **kwargs: Any) -> Any:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise
        ended.append("done")
        return await real(*args, **kwargs)

    monkeypatch.setattr(store, "list", slow)
    return ended


async def test_a_short_list_does_not_watch_for_the_client(
        app: GraphApp, rw: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disconnect, "WATCH_AFTER_SECONDS", 5.0)  # far beyond the list's time
    ended = _slow_lists(app, monkeypatch, 0.005)  # it yields to the loop, briefly
    client = Client()
    assert await client.get(app, LIST, rw) == 200
    assert ended == ["done"]
    assert client.receives <= 1  # no second receive(): the watch never started


async def test_a_long_list_is_stopped_when_its_client_leaves(
        app: GraphApp, rw: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disconnect, "WATCH_AFTER_SECONDS", 0.02)
    ended = _slow_lists(app, monkeypatch, 30)
    client = Client()
    request = asyncio.ensure_future(client.get(app, LIST, rw))
    await asyncio.sleep(0.1)  # past the watch's start
    assert client.receives == 2  # the watch is waiting on receive()
    client.left.set()
    status = await asyncio.wait_for(request, 5)
    assert ended == ["cancelled"]
    assert status == 499


async def test_a_client_gone_before_the_watch_starts_is_seen_when_it_does(
        app: GraphApp, rw: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disconnect, "WATCH_AFTER_SECONDS", 0.05)
    ended = _slow_lists(app, monkeypatch, 30)
    client = Client()
    client.left.set()  # gone at once
    status = await asyncio.wait_for(client.get(app, LIST, rw), 5)
    assert (ended, status) == (["cancelled"], 499)


async def test_a_departure_watch_stopped_before_it_starts_never_reads() -> None:
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.disconnect"}

    departure = disconnect.Departure(receive, after=0.01)
    departure.stop()
    await asyncio.sleep(0.05)
    assert (reads, departure.watching, departure.seen()) == (0, False, False)
    started = disconnect.Departure(receive, after=0)
    await asyncio.sleep(0.01)
    assert (reads, started.watching, started.seen()) == (1, True, True)
