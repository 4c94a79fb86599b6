"""Stopping the work of a request whose client has gone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from graphsec.wire import Response

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


async def unless_client_leaves(receive: Receive,
                               work: Coroutine[Any, Any, Response]) -> Response:
    """``work``, cancelled if the client disconnects first, so that a long list or count stops
    and its database statement with it. granian does not cancel a request's task when the
    client goes; it answers ``http.disconnect`` to ``receive()``, which is watched here. Lists
    and counts that may scan only (``QueryOptions.may_scan``): a GET by id or a default page is
    too short to be worth the watching task (a task and a second ``receive()`` a request)."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        try:
            while (await receive())["type"] != "http.disconnect":
                pass  # the (empty) body of a GET
        except Exception:  # a receive() that fails says nothing of the client
            return
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
        return Response(499, b"", None, {})  # nginx's "client closed request"; nobody reads it
    finally:
        watcher.cancel()
