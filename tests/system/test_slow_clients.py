"""Slow clients against a real ``graphsec serve``: a body has a deadline, and while slow clients
drip bytes, everyone else is served.

A client that sends its body a byte at a time gets 408 ``RequestTimeout`` once
``GRAPHSEC_BODY_TIMEOUT_SECONDS`` have passed since the server started reading the body (a
deadline for the whole body, not an idle timeout that each byte resets), and the connection is
closed. Header reading is bounded by granian itself (30 s for the whole request head).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import TENANT, score
from tests.support.server import READ_WRITE, RunningServer, start_server

BODY_TIMEOUT_SECONDS = 2
SLOW_CLIENTS = 10
DRIP_INTERVAL_SECONDS = 0.25
ANSWER_BOUND_SECONDS = BODY_TIMEOUT_SECONDS + 8.0
"""Generous: the 408 is due after the timeout; the slack absorbs a loaded machine."""
PROMPT_SECONDS = 2.0
URL = "/v1.0/security/secureScores"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "home",
                           env={"GRAPHSEC_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS)})
    try:
        yield running
    finally:
        running.stop()


def _head(token: str, length: int) -> bytes:
    return (f"POST {URL} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


async def _drip(port: int, token: str) -> tuple[float, bytes]:
    """Send a POST whose 1,000-byte body comes a byte every 0.25 s; return the seconds until
    the server closed the connection and everything it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_head(token, 1000))
    await writer.drain()
    started = time.monotonic()

    async def drip() -> None:
        try:
            for _ in range(1000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(DRIP_INTERVAL_SECONDS)
        except ConnectionError:
            pass  # the server closed the connection: what is expected

    dripping = asyncio.create_task(drip())
    try:
        answer = await reader.read()  # until the server closes the connection
        return time.monotonic() - started, answer
    finally:
        dripping.cancel()
        writer.close()


async def _slow_clients_and_a_prompt_reader(server: RunningServer, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as http:
        assert (await http.post(URL, json=score(id="s1"))).status_code == 201
        slow = [asyncio.create_task(_drip(server.port, token)) for _ in range(SLOW_CLIENTS)]
        await asyncio.sleep(DRIP_INTERVAL_SECONDS * 2)  # the slow bodies are being read
        started = time.monotonic()
        meanwhile = await http.get(f"{URL}/s1")
        assert meanwhile.status_code == 200
        assert time.monotonic() - started < PROMPT_SECONDS
        assert not any(task.done() for task in slow)
        answers = await asyncio.wait_for(asyncio.gather(*slow), ANSWER_BOUND_SECONDS)
    for seconds, answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"\r\nconnection: close" in head.lower()
        error = orjson.loads(body)["error"]
        assert error["code"] == "RequestTimeout"
        assert f"{BODY_TIMEOUT_SECONDS} seconds" in error["message"]
        assert seconds < ANSWER_BOUND_SECONDS


def test_body_dripped_a_byte_at_a_time_gets_408_and_others_are_served(
        server: RunningServer) -> None:
    token = server.token(TENANT, READ_WRITE)
    asyncio.run(_slow_clients_and_a_prompt_reader(server, token))
    # the rejected bodies stored nothing, and the server still answers
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30.0,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        listed = http.get(URL)
        assert listed.status_code == 200
        assert [e["id"] for e in listed.json()["value"]] == ["s1"]


async def _send_in_pieces(port: int, token: str, body: bytes, pieces: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_head(token, len(body)))
        size = -(-len(body) // pieces)
        for offset in range(0, len(body), size):
            writer.write(body[offset:offset + size])
            await writer.drain()
            await asyncio.sleep(BODY_TIMEOUT_SECONDS / (pieces * 4))
        return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


def test_body_sent_in_pauses_within_the_deadline_is_accepted(server: RunningServer) -> None:
    token = server.token(TENANT, READ_WRITE)
    body = orjson.dumps(score(id="in-pieces"))
    head = asyncio.run(_send_in_pieces(server.port, token, body, pieces=4))
    assert head.startswith(b"HTTP/1.1 201"), head
