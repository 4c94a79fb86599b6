"""``graphsec import FILE`` on the database directly: the file in parts, one process each.

An import is bound by its checks (parsing each line, checking its seal or its every value) and
by the database's writes; one process overlaps the two (``graphsec.resources.state.Importer``
writes a batch of 5,000 lines, in one transaction, while it checks the next). On PostgreSQL,
which takes writes from several connections at once, a file is cut at line boundaries into
one part per core and each part is imported by a process of its own, as ``graphsec seed``
writes from one process per core; on SQLite, which has one writer at a time, a second process
only waited for the first (measured: 101k entities in 12.4 s with one, 16.6 s with two). Each part
stops at its first invalid line, the others go on; the failure names the line (counted in the
whole file) and says which lines were stored. A file too small to be worth processes, or one
that is not a regular file (stdin), is imported in this process.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from graphsec.resources.state import Importer, ImportFailed, Seal, import_lines, line_cap
from graphsec.schema.limits import Limits
from graphsec.schema.security import ENTITY_SETS
from graphsec.storage.state import open_state

CHUNK = 1 << 20
PARALLEL_BYTES = 64 << 20
"""Files smaller than this are imported in one process (starting others costs ~1 s)."""


@dataclass(frozen=True)
class Part:
    """What a part's process did: entities imported; its first invalid line (counted in the
    part, 1 for its first) with the problem, or 0; the last line of the part stored."""

    imported: int
    failed_line: int = 0
    problem: str = ""
    stored_through: int = 0


def _ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges of ``path``, each starting at a line's start."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as f:
        for n in range(1, parts):
            f.seek(max(size * n // parts, cuts[-1]))
            f.readline()  # to the next line's start
            cuts.append(min(f.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


async def _chunks(path: Path, start: int, end: int, progress: Any) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            progress.put(len(chunk))
            yield chunk


def _part(path: Path, start: int, end: int, url: str, limits: Limits, secret: bytes,
          progress: Any) -> Part:
    async def run() -> Part:
        state = open_state(url, ENTITY_SETS)
        importer = Importer(state, ENTITY_SETS, limits, Seal(secret))
        try:
            return Part(await import_lines(importer, _chunks(path, start, end, progress),
                                           line_cap(limits)))
        except ImportFailed as exc:
            return Part(importer.imported, exc.line, exc.problem, exc.stored_through)
        finally:
            await state.close()

    return asyncio.run(run())


class _Callback:
    """Looks like the progress queue, calls a function instead."""

    def __init__(self, on_progress: Callable[[int], None]) -> None:
        self.put = on_progress


def import_file(path: Path, url: str, limits: Limits, secret: bytes, workers: int | None = None,
                on_progress: Callable[[int], None] = lambda n: None) -> int:
    """Import the NDJSON file at ``path`` into the database at ``url`` (schema in place); the
    number of entities imported. Raises :class:`ImportFailed` for an invalid line."""
    if workers is None:  # SQLite has one writer at a time: a second process only waits for it
        workers = 1 if url.startswith("sqlite") else os.cpu_count() or 1
    if workers == 1 or path.stat().st_size < PARALLEL_BYTES:
        parts = [_part(path, 0, path.stat().st_size, url, limits, secret, _Callback(on_progress))]
        ranges = [(0, path.stat().st_size)]
    else:
        ranges = _ranges(path, workers)
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(len(ranges)) as pool:
            queue = manager.Queue()
            pending = pool.starmap_async(_part, [(path, a, b, url, limits, secret, queue)
                                                 for a, b in ranges])
            while not pending.ready() or not queue.empty():
                try:
                    on_progress(queue.get(timeout=0.2))
                except Empty:
                    continue
            parts = pending.get()
    failed = [n for n, p in enumerate(parts) if p.failed_line]
    if failed:
        raise _failure(path, ranges, parts, failed[0])
    return sum(p.imported for p in parts)


def _failure(path: Path, ranges: list[tuple[int, int]], parts: list[Part],
             first: int) -> ImportFailed:
    """The failure of part ``first``, its lines counted in the whole file."""
    offsets = [0]  # lines before each part (a last line without its newline counts too)
    with path.open("rb") as f:
        for start, end in ranges:
            f.seek(start)
            data = f.read(end - start)
            offsets.append(offsets[-1] + data.count(b"\n") + (not data.endswith(b"\n")))
    stored = []
    for n, p in enumerate(parts):
        last = offsets[n] + (p.stored_through if p.failed_line else offsets[n + 1] - offsets[n])
        if last > offsets[n]:
            stored.append(f"{offsets[n] + 1}–{last}")
    part = parts[first]
    line = offsets[first] + part.failed_line
    said = f"lines {', '.join(stored)} were stored" if stored else "nothing was stored"
    return ImportFailed(
        f"Line {line}: {part.problem} Nothing of lines {offsets[first] + part.stored_through + 1}"
        f"–{line} was stored; {said} (an import can be run again: it replaces what it stored).",
        line, part.problem, 0)
