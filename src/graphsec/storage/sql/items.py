"""Item rows: the items of a collection users filter on with lambdas, as rows of their own.

``controlScores/any(c: c/controlName eq 'AdminMFAV2' and c/score ge 8)`` with the JSON functions
reads every item of every document of the tenant: 16 ms for 1,000 scores of 20 items on
SQLite, whatever the page. An entity set's ``item_rows`` (``schema/security.py``) keep the
items of a collection as rows too (``tables.ItemTable``: tenant, entity id, position, one typed
column per declared scalar property of the item type), indexed, so that such a lambda is
``id IN (SELECT parent_id FROM <items> WHERE tenant_id = :tenant AND …)``: an index range
(0.1 ms for that count, bench/RESULTS.md).

Seeding does not write them: 20 rows a score would double the time of a 1M seed. They are
built per tenant when a lambda first asks for them, and kept from then on:

- **A build** runs in chunks of :data:`BUILD_CHUNK` entities, in id order, each one short
  write transaction: it inserts the items of the next ids and moves ``upto`` to the last of
  them; the chunk that finds no more ids sets ``complete``. SQLite's writer lock orders a
  chunk with the other writes; PostgreSQL's chunk takes ``SHARE ROW EXCLUSIVE`` on the entity
  table (writers wait for it, it waits for writers' transactions to end), so that no write in
  flight is missed.
- **A write marks, it does not rewrite** (migration 0009). An insert or an update of a
  document whose tenant's rows are kept (``complete``, or its id at most ``upto``) lists the
  document in ``item_rows_stale``, in the write's own transaction: one row, not its 20 items
  in the item table and each of its indexes (on SQLite that made a POST four times slower,
  bench/RESULTS.md). An update that leaves the collection as it was lists nothing. A delete
  deletes the document's item rows. On PostgreSQL a trigger does all of it, whatever writes
  the document; on SQLite a trigger does the deletes, and the writers of documents the rest
  (:class:`Written`: a trigger after an insert or update costs SQLite a copy of every row it
  fires for). A tenant without rows pays one probe of ``item_rows_built`` per write.
- **Reads** use the rows only once ``complete`` (a worker remembers that, :class:`Built`: the
  flag is never cleared), and only for a lambda whose predicate reads nothing but declared
  scalar properties of the item (``filters.py``); until then, and for any other lambda, the
  JSON functions answer, so an answer never depends on whether the rows exist. Such a read
  takes the items of the stale documents from the documents themselves, with the JSON
  functions, and the others' from the rows: exact whenever it runs.
- **A refresh** makes the rows of stale documents again, :data:`BUILD_CHUNK` at a time, each
  chunk one write transaction as a build's (and PostgreSQL's under the same lock): it deletes
  their rows, inserts their items from the documents and clears them from the list. A lambda
  that reads a tenant's rows starts one when none ran for the tenant in the last
  :data:`REFRESH_SECONDS`; writes never wait for it.

The statements are SQL text, not SQLAlchemy Core: the trigger bodies are DDL, which Core does
not build, and the build inserts the very rows the triggers do, from the same text
(:func:`items_select`), whose inputs are names and kinds only, so that migration 0008 can pass
the ones it froze.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, fields
from functools import partial
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import BindParameter, TextClause, bindparam, text

from graphsec.odata.filter_ast import Lambda, Prop
from graphsec.schema.types import BOOLEAN, DOUBLE, INT32, INT64, Property
from graphsec.storage.sql.tables import (
    ITEMS_BUILT_TABLE,
    ITEMS_STALE_TABLE,
    EntityTable,
    ItemTable,
    column_name,
)

BUILD_CHUNK = 50
"""Entities whose items one build transaction inserts: about 5 ms of a SQLite writer's time
(1,000 scores of 20 items took 59–97 ms, bench/RESULTS.md), so that a build never holds the
other writes, nor on SQLite the event loop, for long."""

NONE_READY: frozenset[str] = frozenset()
"""No collection's item rows are read."""

BUILDS = 4
"""Tenants' item rows a worker builds or refreshes at once at most; past that, lambdas on other
tenants are answered with the JSON functions until a build ends and theirs can start (a refresh
waits for the next lambda after one ends). 0 turns item rows off
in the worker: it neither builds nor reads them (``GRAPHSEC_ITEM_ROW_BUILDS``)."""

REFRESH_SECONDS = 0.5
"""A lambda that reads a tenant's item rows starts a refresh of its stale documents when none
started for the tenant in this worker within the last this many seconds (and none runs): under
a stream of writes and lambdas, the rows are refreshed in chunks of many writes, and a read
between two refreshes takes the few stale documents from their JSON."""

BUILT_REMEMBERED = 10_000
"""(tenant, item table) pairs a worker remembers as complete; one forgotten costs one read of
``item_rows_built`` on its next lambda."""

ColumnKind = Literal["text", "double", "bigint", "boolean"]
ItemColumn = tuple[str, str, ColumnKind]
"""An item column: its name, the item property it holds and its kind."""


def item_columns(scalar: tuple[Property, ...]) -> tuple[ItemColumn, ...]:
    """The columns of an item table for the item type's scalar properties."""
    def kind(p: Property) -> ColumnKind:
        if p.type == DOUBLE:
            return "double"
        if p.type in (INT32, INT64):
            return "bigint"
        if p.type == BOOLEAN:
            return "boolean"
        return "text"
    return tuple((column_name(p.name), p.name, kind(p)) for p in scalar)


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _string(value: str) -> str:
    if "'" in value or '"' in value or "\\" in value:
        raise ValueError(f"not a plain name: {value!r}")
    return f"'{value}'"


def items_select(dialect: str, collection: str, columns: tuple[ItemColumn, ...], doc: str,
                 tenant: str, parent: str, source: str | None = None,
                 where: str | None = None) -> str:
    """``SELECT <tenant>, <parent>, <position>, <columns…> FROM [<source>,] <the items of the
    array at collection in doc>``: the rows of one document's items (``doc``, ``tenant`` and
    ``parent`` are SQL expressions, ``source`` the FROM item they come from, ``where`` more
    conditions). A value of the wrong JSON type is NULL, as the JSON functions read it in a
    ``$filter``; a missing or non-array collection has no items."""
    collection = _quote(collection)
    if dialect == "sqlite":
        def value(prop: str, kind: ColumnKind) -> str:
            return f"json_extract(j.value, '$.\"{_quote(prop)}\"')"
        items = f"json_each({doc}, '$.\"{collection}\"') AS j"
        position = "j.key"
        guard = f"json_type({doc}, '$.\"{collection}\"') = 'array'"
    elif dialect == "postgresql":
        casts = {"double": "double precision", "bigint": "bigint", "boolean": "boolean"}

        def value(prop: str, kind: ColumnKind) -> str:
            json, typed = f"j.value -> {_string(prop)}", f"j.value ->> {_string(prop)}"
            if kind == "text":
                return f"CASE WHEN jsonb_typeof({json}) = 'string' THEN {typed} END"
            json_type = "boolean" if kind == "boolean" else "number"
            return (f"CASE WHEN jsonb_typeof({json}) = '{json_type}' "
                    f"THEN CAST({typed} AS {casts[kind]}) END")
        array = f"{doc} -> {_string(collection)}"
        items = (f"jsonb_array_elements(CASE WHEN jsonb_typeof({array}) = 'array' THEN {array} "
                 "ELSE '[]'::jsonb END) WITH ORDINALITY AS j(value, ordinality)")
        position = "CAST(j.ordinality - 1 AS integer)"
        guard = None
    else:
        raise NotImplementedError(f"item rows are not implemented for the '{dialect}' dialect.")
    values = ", ".join([tenant, parent, position, *(value(p, k) for _, p, k in columns)])
    conditions = " AND ".join(c for c in (where, guard) if c)  # ``where`` first: it is cheaper
    sources = f"{source}, {items}" if source else items
    return f"SELECT {values} FROM {sources}" + (f" WHERE {conditions}" if conditions else "")


def _insert(items: str, columns: tuple[ItemColumn, ...]) -> str:
    names = ", ".join(["tenant_id", "parent_id", "ordinal", *(c for c, _, _ in columns)])
    return f"INSERT INTO {_quote(items)} ({names}) "


def _built(items: str, row: str) -> str:
    """Whether the document ``row`` (NEW) is one whose items are kept."""
    return (f"EXISTS (SELECT 1 FROM {ITEMS_BUILT_TABLE} AS b WHERE b.tenant_id = {row}.tenant_id"
            f" AND b.items = {_string(items)} AND (b.complete OR {row}.id <= b.upto))")


def _mark_stale(items: str, tenant: str, parent: str) -> str:
    """List the document ``parent`` of ``tenant`` as stale (``item_rows_stale``)."""
    return (f"INSERT INTO {ITEMS_STALE_TABLE} (tenant_id, items, parent_id) "
            f"VALUES ({tenant}, {_string(items)}, {parent}) ON CONFLICT DO NOTHING")


def trigger_sql(dialect: str, table: str, items: str, collection: str,
                columns: tuple[ItemColumn, ...], stale: bool = False) -> list[str]:
    """The DDL of the triggers that keep ``items`` for the documents of ``table``.

    PostgreSQL: a document whose tenant's rows are not built, or not yet up to its id, has no
    rows, and its insert or update costs one probe of ``item_rows_built``. Whether a
    document's rows are kept never changes from kept to not kept (``upto`` only grows,
    ``complete`` stays), so an update whose document is not kept has no old rows to delete
    either. ``stale`` (migration 0009): a kept document written is listed in
    ``item_rows_stale``; without (migration 0008), its rows are made in the trigger. SQLite:
    deletes only (the writers do the rest, :class:`Written`)."""
    table = _quote(table)
    delete = f"DELETE FROM {_quote(items)} WHERE tenant_id = OLD.tenant_id AND parent_id = OLD.id"
    if dialect == "sqlite":
        # no trigger after an insert or an update: SQLite copies each new row for one,
        # whatever it does (10 µs a 3 KB score, an upsert's insert included: 10-20 s more for
        # a seed of 1M); the writers that insert or update keep the items of what they wrote
        # themselves (:class:`Written`)
        return [f"CREATE TRIGGER tr_{items}_delete AFTER DELETE ON {table} BEGIN {delete}; END"]
    return [trigger_function_sql(items, collection, columns, stale),
            f"CREATE TRIGGER tr_{items} AFTER INSERT OR DELETE OR UPDATE OF doc ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION tr_{items}()"]


def trigger_function_sql(items: str, collection: str, columns: tuple[ItemColumn, ...],
                         stale: bool) -> str:
    """PostgreSQL: the trigger's function (:func:`trigger_sql`)."""
    delete = f"DELETE FROM {_quote(items)} WHERE tenant_id = OLD.tenant_id AND parent_id = OLD.id"
    same = (f"(OLD.doc -> {_string(collection)}) IS NOT DISTINCT FROM "
            f"(NEW.doc -> {_string(collection)})")
    if stale:
        keep = _mark_stale(items, "NEW.tenant_id", "NEW.id")
    else:
        insert = _insert(items, columns) + items_select(
            "postgresql", collection, columns, "NEW.doc", "NEW.tenant_id", "NEW.id")
        keep = f"IF TG_OP = 'UPDATE' THEN {delete}; END IF; {insert}"
    # an update that leaves the collection as it was leaves its rows as they are
    return (f"CREATE OR REPLACE FUNCTION tr_{items}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF TG_OP = 'DELETE' THEN {delete}; RETURN NULL; END IF; "
            f"IF TG_OP = 'UPDATE' AND {same} THEN RETURN NULL; END IF; "
            f"IF {_built(items, 'NEW')} THEN {keep}; END IF; RETURN NULL; END $$")


def drop_trigger_sql(dialect: str, table: str, items: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER tr_{items}_delete"]
    return [f"DROP TRIGGER tr_{items} ON {_quote(table)}", f"DROP FUNCTION tr_{items}()"]


S = TypeVar("S")


@dataclass(frozen=True)
class BuildStatements(Generic[S]):
    """A build chunk's statements for one item table (``storage/sql/items.py``'s module), as
    text or compiled."""

    state: S
    """``upto, complete`` of a tenant's rows (no row: nothing built)."""
    next_ids: S
    """The next :data:`BUILD_CHUNK` ids after ``after``, in order."""
    insert: S
    """The items of the entities with ``after < id <= upto``."""
    mark: S
    """Set ``upto`` and ``complete``."""
    stale: S
    """The first :data:`BUILD_CHUNK` stale ids of a tenant, in order (a refresh's chunk)."""
    unmake: S
    """Delete the rows of the stale ids up to ``upto``."""
    remake: S
    """Insert the items of the stale ids up to ``upto`` from their documents."""
    clear: S
    """Take the stale ids up to ``upto`` off the list."""


def build_statements(et: EntityTable, it: ItemTable,
                     dialect: str) -> BuildStatements[TextClause]:
    """The statements of a build's chunks (:func:`compiled_builds` compiles them)."""
    table, items = _quote(et.table.name), it.table.name
    where = "d.tenant_id = :tenant AND d.id > :after AND d.id <= :upto"
    select = items_select(dialect, it.collection, item_columns(it.scalar), "d.doc",
                          "d.tenant_id", "d.id", f"{table} AS d", where)
    stale = (f"SELECT parent_id FROM {ITEMS_STALE_TABLE} WHERE tenant_id = :tenant "
             "AND items = :items AND parent_id <= :upto")
    remake = items_select(dialect, it.collection, item_columns(it.scalar), "d.doc",
                          "d.tenant_id", "d.id", f"{table} AS d",
                          f"d.tenant_id = :tenant AND d.id IN ({stale})")
    named: BindParameter[str] = bindparam("items", items)
    return BuildStatements(
        state=text(f"SELECT upto, complete FROM {ITEMS_BUILT_TABLE} "
                   "WHERE tenant_id = :tenant AND items = :items"
                   ).bindparams(bindparam("items", items)),
        next_ids=text(f"SELECT id FROM {table} WHERE tenant_id = :tenant AND id > :after "
                      "ORDER BY id LIMIT :chunk").bindparams(bindparam("chunk", BUILD_CHUNK)),
        insert=text(_insert(items, item_columns(it.scalar)) + select),
        mark=text(f"INSERT INTO {ITEMS_BUILT_TABLE} (tenant_id, items, upto, complete) "
                  "VALUES (:tenant, :items, :upto, :complete) ON CONFLICT (tenant_id, items) "
                  "DO UPDATE SET upto = excluded.upto, complete = excluded.complete"
                  ).bindparams(bindparam("items", items)),
        stale=text(f"SELECT parent_id FROM {ITEMS_STALE_TABLE} WHERE tenant_id = :tenant "
                   "AND items = :items ORDER BY parent_id LIMIT :chunk"
                   ).bindparams(named, bindparam("chunk", BUILD_CHUNK)),
        unmake=text(f"DELETE FROM {_quote(items)} WHERE tenant_id = :tenant "
                    f"AND parent_id IN ({stale})").bindparams(named),
        remake=text(_insert(items, item_columns(it.scalar)) + remake).bindparams(named),
        clear=text(f"DELETE FROM {ITEMS_STALE_TABLE} WHERE tenant_id = :tenant "
                   "AND items = :items AND parent_id <= :upto").bindparams(named),
    )


def compiled_builds(tables: dict[str, EntityTable], dialect: str,
                    compile: Callable[[TextClause], S]) -> dict[str, BuildStatements[S]]:
    """Each item table's build statements (by table name), compiled by ``compile``."""
    out: dict[str, BuildStatements[S]] = {}
    for et in tables.values():
        for it in et.items.values():
            b = build_statements(et, it, dialect)
            out[it.table.name] = BuildStatements(*(compile(getattr(b, f.name))
                                                   for f in fields(b)))
    return out


class Written:
    """SQLite: the documents just inserted or replaced, listed as stale in the writing
    transaction (SQLite has no trigger for them, :func:`trigger_sql`). Each writer of
    documents calls :meth:`keep` with the documents it wrote: the store's creates and updates,
    ``graphsec seed``, an import. A document whose tenant's rows are kept (complete, or built
    up to its id) is listed in ``item_rows_stale``: one row, where making its 20 item rows
    took 275 µs of a POST (bench/RESULTS.md)."""

    def __init__(self, tables: dict[str, EntityTable], compile: Callable[[Any], Any]) -> None:
        self._sets: dict[str, list[tuple[Any, Any, Any, str]]] = {}
        for name, et in tables.items():
            for it in et.items.values():
                items = it.table.name
                kept = (f"SELECT tenant_id, upto, complete FROM {ITEMS_BUILT_TABLE} "
                        "WHERE items = :items")
                self._sets.setdefault(name, []).append((
                    compile(text(kept).bindparams(bindparam("items", items))),
                    compile(text(kept + " AND tenant_id = :tenant"
                                 ).bindparams(bindparam("items", items))),
                    compile(text(_mark_stale(items, ":tenant", ":id"))),
                    it.collection))

    def keep(self, conn: Any, entity_set: str, docs: list[tuple[str, dict[str, Any]]],
             before: dict[str, Any] | None = None) -> None:
        """List as stale those of ``docs`` (tenant, document) of ``entity_set`` just written on
        ``conn`` whose rows are kept. ``before``: the one document's former version, when the
        writer has it: a collection it left as it was keeps its rows as they are."""
        for tenants, tenant, mark, collection in self._sets.get(entity_set, ()):
            if before is not None and before.get(collection) == docs[0][1].get(collection):
                continue
            # the tenants with rows among those written, read once (one document: a probe of
            # the key, 2-5 µs)
            if len(docs) == 1:
                found = conn.execute(tenant.sql, tenant.params({"tenant": docs[0][0]}))
            else:
                found = conn.execute(tenants.sql, tenants.params({}))
            kept = {row[0]: (row[1], bool(row[2])) for row in found}
            if not kept:
                continue
            conn.executemany(mark.sql, [
                mark.params({"tenant": t, "id": d["id"]}) for t, d in docs if t in kept
                and (kept[t][1] or (kept[t][0] is not None and d["id"] <= kept[t][0]))])


class Built:
    """The (tenant, item table) pairs this worker has seen complete, the least recently used
    forgotten first. Complete never becomes incomplete (``item_rows_built`` rows are only
    ever moved forward), so remembering it is never stale."""

    def __init__(self, size: int = BUILT_REMEMBERED) -> None:
        self.size = size
        self._pairs: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, pair: tuple[str, str]) -> bool:
        if pair in self._pairs:
            self._pairs.move_to_end(pair)
            return True
        return False

    def add(self, pair: tuple[str, str]) -> None:
        self._pairs[pair] = None
        if len(self._pairs) > self.size:
            self._pairs.popitem(last=False)


def nodes(node: Any) -> Iterator[Any]:
    """``node`` of a parsed ``$filter`` and every node under it."""
    yield node
    for f in fields(node):
        child = getattr(node, f.name)
        for c in child if isinstance(child, tuple) else (child,):
            if hasattr(c, "__dataclass_fields__"):
                yield from nodes(c)


_WANTED: OrderedDict[tuple[str, Any], frozenset[str]] = OrderedDict()


def wanted(et: EntityTable, expr: Any) -> frozenset[str]:
    """The collections of ``et``'s item tables that a lambda of the filter ``expr`` ranges
    over (remembered for the last 512 filters: the walk is a request's cost otherwise)."""
    if not et.items:
        return frozenset()
    key = (et.entity_set.name, expr)
    found = _WANTED.get(key)
    if found is None:
        found = frozenset(
            n.collection.path[0] for n in nodes(expr)
            if isinstance(n, Lambda) and isinstance(n.collection, Prop)
            and n.collection.root is None and len(n.collection.path) == 1
            and n.collection.path[0] in et.items)
        _WANTED[key] = found
        if len(_WANTED) > 512:
            _WANTED.popitem(last=False)
    return found


log = logging.getLogger("graphsec.storage")

Chunk = Callable[[EntityTable, ItemTable, str], Awaitable[bool]]
"""A store's build chunk: inserts one chunk of a tenant's item rows in one transaction;
True once the rows are complete."""
IsComplete = Callable[[ItemTable, str], Awaitable[bool]]
"""A store's read of whether a tenant's item rows are complete."""
Finished = Callable[[ItemTable, str], Awaitable[object]]
"""What a store does once a tenant's build is complete."""


class ItemRows:
    """What a store's reads need of the item rows (module docstring): which collections a
    filter may read as rows for a tenant (:meth:`ready`), the builds that make them and the
    refreshes that make those of stale documents again."""

    def __init__(self, chunk: Chunk, is_complete: IsComplete, builds: int = BUILDS,
                 finished: Finished | None = None, refresh: Chunk | None = None) -> None:
        self._chunk = chunk
        self._is_complete = is_complete
        self._finished = finished
        """What a store does once a build is complete (PostgreSQL: its statistics)."""
        self._refresh = refresh
        """A store's refresh chunk: True once no stale document is left."""
        self.builds = builds
        self.built = Built()
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._refreshed: OrderedDict[tuple[str, str], float] = OrderedDict()
        """When a refresh last started, by (tenant, item table); as many as :attr:`built`."""

    def ready(self, tenant: str, et: EntityTable,
              expr: Any) -> frozenset[str] | Awaitable[frozenset[str]]:
        """The collections of ``expr``'s lambdas whose item rows are complete for ``tenant``
        (awaitable when that needs a read); for the others, a build starts (if none runs here)
        and the JSON functions answer."""
        want = wanted(et, expr) if expr is not None and self.builds else NONE_READY
        if not want:
            return want
        if all((tenant, et.items[c].table.name) in self.built for c in want):
            if self._refresh is not None:
                self._refresh_stale(tenant, et, want)
            return want
        return self._ready(tenant, et, want)

    def _refresh_stale(self, tenant: str, et: EntityTable, want: frozenset[str]) -> None:
        """Start a refresh of the tenant's stale documents where none started within
        :data:`REFRESH_SECONDS` (the read does not wait for it: it is exact either way)."""
        now = time.monotonic()
        for collection in want:
            it = et.items[collection]
            pair = (tenant, it.table.name)
            if (self._refreshed.get(pair, -REFRESH_SECONDS) > now - REFRESH_SECONDS
                    or pair in self._tasks or len(self._tasks) >= self.builds):
                continue
            self._refreshed[pair] = now
            self._refreshed.move_to_end(pair)
            if len(self._refreshed) > self.built.size:
                self._refreshed.popitem(last=False)
            self._tasks[pair] = asyncio.get_running_loop().create_task(
                self._run(partial(self._refresh_chunks, et, it, tenant), pair, "refreshing"),
                name=f"graphsec-items-refresh-{it.table.name}")

    async def _refresh_chunks(self, et: EntityTable, it: ItemTable, tenant: str) -> None:
        assert self._refresh is not None
        while not await self._refresh(et, it, tenant):
            await asyncio.sleep(0)  # what waits for the writer goes first

    async def _ready(self, tenant: str, et: EntityTable, want: frozenset[str]) -> frozenset[str]:
        ready = []
        for collection in want:
            it = et.items[collection]
            pair = (tenant, it.table.name)
            if pair in self.built:
                ready.append(collection)
            elif pair not in self._tasks:
                if await self._is_complete(it, tenant):
                    self.built.add(pair)
                    ready.append(collection)
                elif pair not in self._tasks and len(self._tasks) < self.builds:  # (awaited)
                    self._tasks[pair] = asyncio.get_running_loop().create_task(
                        self._run(partial(self._build, et, it, tenant), pair, "building"),
                        name=f"graphsec-items-{it.table.name}")
        return frozenset(ready)

    async def _build(self, et: EntityTable, it: ItemTable, tenant: str) -> None:
        while not await self._chunk(et, it, tenant):
            await asyncio.sleep(0)  # what waits for the writer goes first
        self.built.add((tenant, it.table.name))
        if self._finished is not None:
            await self._finished(it, tenant)

    async def _run(self, work: Callable[[], Awaitable[None]], pair: tuple[str, str],
                   doing: str) -> None:
        """A build's or a refresh's task: one at a time per pair, logged when it fails (the
        next lambda on the tenant goes on from where it stopped)."""
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s the %s rows of tenant %s stopped: %s", doing, pair[1], pair[0], exc)
        finally:
            if self._tasks.get(pair) is asyncio.current_task():
                del self._tasks[pair]

    async def settled(self) -> None:
        """Wait for the builds running now (tests, and a store's close)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


def build_from(state: Any) -> str | None:
    """Where a chunk starts, from the tenant's ``(upto, complete)`` row (None: nothing built
    yet): after that id (``""``: from the first); None when the rows are already complete."""
    if state is not None and state[1]:
        return None
    return "" if state is None or state[0] is None else str(state[0])


def refresh_step(tenant: str, stale: list[Any]) -> dict[str, Any] | None:
    """A refresh chunk's parameters, from the tenant's first stale ids (at most
    :data:`BUILD_CHUNK`): up to the last of them; None when none is stale."""
    return {"tenant": tenant, "upto": str(stale[-1][0])} if stale else None


def build_step(tenant: str, after: str,
               ids: list[Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A chunk's writes, from the ids that follow ``after``: the parameters of its insert
    (the ids in ``(after, upto]``; None when there are none) and of its mark (``complete``
    once fewer than a chunk are left; ``upto`` stays where no id follows)."""
    if not ids:
        return None, {"tenant": tenant, "upto": after or None, "complete": True}
    upto = str(ids[-1][0])
    return ({"tenant": tenant, "after": after, "upto": upto},
            {"tenant": tenant, "upto": upto, "complete": len(ids) < BUILD_CHUNK})


__all__ = [
    "BUILD_CHUNK",
    "NONE_READY",
    "BuildStatements",
    "Built",
    "ItemColumn",
    "ItemRows",
    "build_from",
    "build_statements",
    "build_step",
    "compiled_builds",
    "drop_trigger_sql",
    "item_columns",
    "items_select",
    "nodes",
    "refresh_step",
    "trigger_function_sql",
    "trigger_sql",
    "wanted",
]
