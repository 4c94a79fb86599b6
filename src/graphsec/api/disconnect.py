"""Stopping the work of a request whose client has gone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from graphsec.wire import Response

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class Departure:
    """Watches ``receive()`` for the client's departure (``http.disconnect``) once the body has
    been read, from a task of its own; ``on_gone`` is called when it comes."""

    def __init__(self, receive: Receive, on_gone: Callable[[], object] | None = None) -> None:
        self.gone = False
        self._on_gone = on_gone
        self._task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass  # the (empty) rest of a body
        except Exception:  # a receive() that fails says nothing of the client
            return
        self.gone = True
        if self._on_gone is not None:
            self._on_gone()

    def seen(self) -> bool:
        return self.gone

    def stop(self) -> None:
        self._task.cancel()


async def unless_client_leaves(receive: Receive,
                               work: Coroutine[Any, Any, Response]) -> Response:
    """``work``, cancelled if the client disconnects first, so that a long list or count stops
    and its database statement with it. granian does not cancel a request's task when the
    client goes; it answers ``http.disconnect`` to ``receive()``, which is watched here. Lists
    and counts that may scan only (``QueryOptions.may_scan``): a GET by id or a default page is
    too short to be worth the watching task (a task and a second ``receive()`` a request)."""
    task = asyncio.current_task()
    assert task is not None
    departure = Departure(receive, task.cancel)
    try:
        return await work
    except asyncio.CancelledError:
        if not departure.gone:
            raise
        task.uncancel()
        return Response(499, b"", None, {})  # nginx's "client closed request"; nobody reads it
    finally:
        departure.stop()
