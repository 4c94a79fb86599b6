"""A store's state as NDJSON: the export's lines and the import's checks (docs/admin.md).

One line per entity, UTF-8, in (tenant, entity set, id) order, after a header line::

    {"graphsec":"export","version":1}
    {"tenant":"…","entitySet":"secureScores","id":"…","entity":{…},"seal":"…"}
    {"tenant":"…","entitySet":"secureScoreControlProfiles","id":"…","entity":{…},"history":[…],"seal":"…"}

``entity`` is the stored document, byte for byte (canonical JSON: keys sorted), so two exports
of one state are identical, and an export imported into an empty store exports the same bytes.
``history`` (only when there is some) holds the entries the entity's document no longer shows
(``graphsec.storage.sql.tables.history_table``), oldest first. ``seal``: see :class:`Seal`.

An import checks every line as the API checks a create (the entity type, the limits, the
entity set's own create rule; less for a line whose seal holds) and writes in batches of
:data:`BATCH_LINES` lines, one transaction each, upserting by (tenant, entity set, id):
importing a file twice leaves one copy. The first invalid line stops the import with a 400
naming it; nothing of its batch is stored, the batches before it are.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from graphsec.auth.principal import canonical_tenant
from graphsec.errors import BadRequest
from graphsec.schema.limits import DocumentTooLarge, Limits
from graphsec.schema.rules import RuleViolation
from graphsec.schema.types import EntitySet
from graphsec.schema.values import ValidationError, check_body, complete
from graphsec.storage.sql.statements import encode_doc
from graphsec.storage.state import Entry, StateStore

HEADER = b'{"graphsec":"export","version":1}\n'
EXPORT_SEAL = "export-seal"
"""The purpose the seal's secret is derived for (``SigningKey.derive_secret``)."""
BATCH_LINES = 5000
"""Lines stored per transaction by an import."""
MAX_ID_LENGTH = 512
_CONTROL = re.compile(r"[\x00-\x1f]")
MAX_HISTORY_ENTRIES = 1_000_000


def line_cap(limits: Limits) -> int:
    """The longest line an import accepts: a document at the size limit, with room for its
    history (each entry is far smaller than a document)."""
    return 16 * limits.max_document_bytes


class Seal:
    """A line's seal: an HMAC-SHA256 (truncated to 144 bits) of its tenant, entity set, id,
    canonical document and history, with a secret of the home's signing key. A line whose seal
    holds was exported by a store of this home, so its entity passed the API's checks when it
    was written: the import does not check its every value again (the costly part of an
    import, ~270 µs a secureScore), only its key, its size and its entity set's create rule. A
    line without a seal, or edited since, is checked whole."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def of(self, tenant: str, entity_set: str, entity_id: str, data: bytes,
           history: tuple[bytes, ...]) -> str:
        mac = hmac.new(self.secret, digestmod=hashlib.sha256)
        for part in (tenant.encode(), entity_set.encode(), entity_id.encode(), data, *history):
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode()

    def holds(self, seal: Any, tenant: str, entity_set: str, entity_id: str, data: bytes,
              history: tuple[bytes, ...]) -> bool:
        return isinstance(seal, str) and hmac.compare_digest(
            seal.encode(), self.of(tenant, entity_set, entity_id, data, history).encode())


async def export_lines(state: StateStore, tenant: str | None,
                       seal: Seal | None = None) -> AsyncIterator[bytes]:
    """The export of ``tenant`` (or of every tenant) as NDJSON chunks, one per page read."""
    yield HEADER
    async for page in state.export(tenant):
        yield b"".join(line(entry, seal) for entry in page)


def line(entry: Entry, seal: Seal | None = None) -> bytes:
    """One entity's line: the stored bytes of its document spliced in, never re-encoded."""
    head = orjson.dumps({"tenant": entry.tenant, "entitySet": entry.entity_set.name,
                         "id": entry.id})
    history = b"" if not entry.history else b',"history":[' + b",".join(entry.history) + b"]"
    sealed = b"" if seal is None else b',"seal":"' + seal.of(
        entry.tenant, entry.entity_set.name, entry.id, entry.data, entry.history).encode() + b'"'
    return head[:-1] + b',"entity":' + entry.data + history + sealed + b"}\n"


class ImportFailed(BadRequest):
    """A line that cannot be imported; the message names it and says what was stored:
    ``line``, ``problem`` and ``stored_through`` (the last line stored, 0 for none) are the
    same, apart."""

    def __init__(self, message: str, line: int = 0, problem: str = "",
                 stored_through: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.problem = problem
        self.stored_through = stored_through


class Importer:
    """Lines in, batches stored. ``feed`` each line (numbered from 1, the header included),
    then ``finish``; ``imported`` counts the entities stored. A full batch is written while the
    next one is checked (one write under way at most), so that the database and the checks
    use a core each."""

    def __init__(self, state: StateStore, entity_sets: tuple[EntitySet, ...], limits: Limits,
                 seal: Seal | None = None, batch_lines: int = BATCH_LINES) -> None:
        self.state = state
        self.seal = seal
        self.sets = {es.name: es for es in entity_sets}
        self.limits = limits
        self.batch_lines = batch_lines
        self.imported = 0
        self.stored_through = 0
        """The last line number of the last batch stored (committed)."""
        self._batch: list[Entry] = []
        self._last = 0
        self._queued_through = 0
        self._writing: asyncio.Task[int] | None = None
        self._writing_through = 0

    async def feed(self, number: int, text: bytes) -> None:
        """Check line ``number``; store the batch when it is full. Raises
        :class:`ImportFailed` (nothing of the batch stored) for an invalid line."""
        self._last = number
        if text.strip():
            try:
                entry = self.check(text)
            except (ValueError, TypeError) as exc:
                raise await self.failure(number, str(exc)) from None
            if entry is not None:
                self._batch.append(entry)
        if number - self._queued_through >= self.batch_lines:
            await self._store()
        elif number % 128 == 0:
            await asyncio.sleep(0)  # the write under way may need the event loop (asyncpg)

    async def finish(self) -> int:
        """Store the last batch; the number of entities imported."""
        await self._store()
        await self._settle()
        return self.imported

    async def abandon(self) -> None:
        """Wait for the write under way, if any, whatever its outcome (an import stopped)."""
        with contextlib.suppress(Exception):
            await self._settle()

    async def _settle(self) -> None:
        if self._writing is not None:
            task, self._writing = self._writing, None
            self.imported += await task
            self.stored_through = self._writing_through

    async def _store(self) -> None:
        await self._settle()
        if self._batch:
            self._writing = asyncio.create_task(self.state.upsert(self._batch))
            self._writing_through = self._last
        else:
            self.stored_through = self._last
        self._batch = []
        self._queued_through = self._last

    async def failure(self, number: int, problem: str) -> ImportFailed:
        """The 400 for line ``number``, once the write under way (of lines before it) is
        done, so that what it says was stored was."""
        await self._settle()
        stored = (f"lines 1–{self.stored_through} were stored" if self.stored_through
                  else "nothing was stored")
        return ImportFailed(
            f"Line {number}: {problem} Nothing of lines {self.stored_through + 1}–{number} was "
            f"stored; {stored} (an import can be run again: it replaces what it stored).",
            number, problem, self.stored_through)

    def check(self, text: bytes) -> Entry | None:
        """The entry a line holds, checked as a create is; None for the header. Raises
        ValueError naming what is wrong."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc}).") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object.")
        if "graphsec" in data:
            if data != {"graphsec": "export", "version": 1}:
                raise ValueError('an unknown header; this graphsec reads '
                                 '{"graphsec":"export","version":1}.')
            return None
        unknown = sorted(set(data) - {"tenant", "entitySet", "id", "entity", "history", "seal"})
        if unknown:
            raise ValueError(f"unknown member {unknown[0]!r} (a line has tenant, entitySet, id, "
                             "entity and, optionally, history and seal).")
        raw_tenant, name, entity_id = data.get("tenant"), data.get("entitySet"), data.get("id")
        tenant = canonical_tenant(raw_tenant) if isinstance(raw_tenant, str) else None
        if tenant is None:
            raise ValueError(f"'tenant' must be a tenant id (a GUID), not {raw_tenant!r}.")
        es = self.sets.get(name) if isinstance(name, str) else None
        if es is None:
            raise ValueError(f"'entitySet' {name!r} is not one of "
                             f"{', '.join(sorted(self.sets))}.")
        if (not isinstance(entity_id, str) or not entity_id.strip()
                or len(entity_id) > MAX_ID_LENGTH or _CONTROL.search(entity_id)):
            raise ValueError(f"'id' must be a non-blank string of at most {MAX_ID_LENGTH} "
                             "characters, without control characters.")
        history = _history(data.get("history"))
        entity = data.get("entity")
        if self.seal is not None and isinstance(entity, dict) and "seal" in data:
            stored = encode_doc(entity, self._admit)
            if self.seal.holds(data["seal"], tenant, es.name, entity_id, stored, history):
                self._sealed(es, tenant, entity_id, entity)
                return Entry(tenant, es, entity_id, stored, history, entity)
        doc = self._entity(es, tenant, entity_id, entity)
        return Entry(tenant, es, entity_id, encode_doc(doc, self._admit), history, doc)

    def _sealed(self, es: EntitySet, tenant: str, entity_id: str, doc: dict[str, Any]) -> None:
        """The checks a sealed line still gets: its key, and the create rule (the limits it
        applies may be lower here than where the line was exported)."""
        if doc.get("id") != entity_id or doc.get("azureTenantId") != tenant:
            raise ValueError("the entity's id or azureTenantId is not the line's.")
        if es.create_rule is not None:
            try:
                es.create_rule(doc, self.limits)
            except RuleViolation as exc:
                raise ValueError(f"the entity is refused: {exc}") from None

    def _entity(self, es: EntitySet, tenant: str, entity_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("'entity' must be a JSON object: the entity as the API returns it.")
        try:
            doc = check_body(es.entity_type, body, "create", self.limits)
            if es.create_rule is not None:
                es.create_rule(doc, self.limits)
        except ValidationError as exc:
            raise ValueError(f"the entity is not a valid {es.entity_type.name}: {exc}") from None
        except RuleViolation as exc:
            raise ValueError(f"the entity is refused: {exc}") from None
        except DocumentTooLarge as exc:
            raise ValueError(f"the entity is too large: {exc}") from None
        if doc.get("id") != entity_id:
            raise ValueError(f"the entity's id {doc.get('id')!r} is not the line's id "
                             f"{entity_id!r}.")
        owner = doc.get("azureTenantId")
        if owner is not None and (not isinstance(owner, str) or owner.lower() != tenant):
            raise ValueError(f"the entity's azureTenantId {owner!r} is not the line's tenant "
                             f"{tenant!r}.")
        doc["azureTenantId"] = tenant
        return complete(es.entity_type, doc)

    def _admit(self, data: bytes) -> None:
        if len(data) > self.limits.max_document_bytes:
            raise ValueError(f"the entity is {len(data)} bytes; the limit is "
                             f"{self.limits.max_document_bytes} (GRAPHSEC_MAX_DOCUMENT_BYTES).")


def _history(raw: Any) -> tuple[bytes, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_HISTORY_ENTRIES or not all(
            isinstance(e, dict) for e in raw):
        raise ValueError("'history' must be an array of JSON objects (the entries the "
                         "document no longer shows, oldest first).")
    return tuple(encode_doc(e) for e in raw)


async def import_lines(importer: Importer, chunks: AsyncIterator[bytes], cap: int) -> int:
    """Feed the NDJSON in ``chunks`` (any split) to ``importer`` line by line, holding at most
    one line of ``cap`` bytes (and one chunk) in memory; the number of entities imported."""
    try:
        return await _import_lines(importer, chunks, cap)
    except BaseException:
        await importer.abandon()
        raise


async def _import_lines(importer: Importer, chunks: AsyncIterator[bytes], cap: int) -> int:
    number = 0
    pending = b""
    async for chunk in chunks:
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            if end - start > cap:
                raise await importer.failure(number, f"the line is longer than {cap} bytes, "
                                                     "the longest an import accepts.")
            await importer.feed(number, pending[start:end])
            start = end + 1
        pending = pending[start:]
        if len(pending) > cap:
            raise await importer.failure(number + 1, f"the line is longer than {cap} "
                                                         "bytes, the longest an import accepts.")
    if pending.strip():
        await importer.feed(number + 1, pending)
    return await importer.finish()
