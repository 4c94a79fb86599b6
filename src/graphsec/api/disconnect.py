"""Stopping the work of a request whose client has gone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from graphsec.wire import Response

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


WATCH_AFTER_SECONDS = 0.05
"""How long a list or count runs before its client's departure is watched. The watching is a
task and a second ``receive()``; started with every list that may scan, it took a fifth of the
rate of the short ones. Started only past this, ``bench/compare.py`` (SQLite, 10k, 4 rounds) measured
``id in (20 ids)`` with ``$count`` at 3,706 requests a second against 2,945, and ``service eq
…`` at 7,517 against 6,480 (6,714 → 7,425 on PostgreSQL). The queries it is for (a scan of
seconds, a statement budget of minutes) are stopped this much later, which changes nothing for
them."""


class Departure:
    """Watches ``receive()`` for the client's departure (``http.disconnect``) once the body has
    been read, from a task of its own started ``after`` seconds from now (at once for 0;
    :data:`WATCH_AFTER_SECONDS` by default);
    ``on_gone`` is called when it comes."""

    def __init__(self, receive: Receive, on_gone: Callable[[], object] | None = None,
                 after: float | None = None) -> None:
        self.gone = False
        if after is None:
            after = WATCH_AFTER_SECONDS
        self._on_gone = on_gone
        self._receive = receive
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        if after > 0:
            self._timer = asyncio.get_running_loop().call_later(after, self._start)
        else:
            self._start()

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self._watch(self._receive))

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

    @property
    def watching(self) -> bool:
        """True once the watching task has started."""
        return self._task is not None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


async def unless_client_leaves(receive: Receive,
                               work: Coroutine[Any, Any, Response]) -> Response:
    """``work``, cancelled if the client disconnects first, so that a long list or count stops
    and its database statement with it. granian does not cancel a request's task when the
    client goes; it answers ``http.disconnect`` to ``receive()``, which is watched here. Lists
    and counts that may scan only (``QueryOptions.may_scan``): a GET by id or a default page is
    too short to be worth the watching task (a task and a second ``receive()`` a request), and
    the watching starts only when ``work`` outlasts :data:`WATCH_AFTER_SECONDS`."""
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
