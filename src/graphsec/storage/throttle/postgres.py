"""The throttle state in PostgreSQL (see ``__init__``): unlogged tables in the schema
``graphsec_throttle`` and one PL/pgSQL function that takes the whole decision in one round
trip, with the server's clock, so that instances whose clocks differ still share one time.

The function runs the same steps as ``graphsec.pressure.throttle.decide`` (windows that
open at their first request, then the concurrency cap); the tests run both stores through
the same cases (tests/pressure/test_throttle_state.py). Rows are locked in key order (the
caller sorts them), so two decisions never deadlock.
"""

from __future__ import annotations

from graphsec.pressure.windows import LEASE_SECONDS, Concurrency, Rate
from graphsec.storage.postgres.pool import ConnectionPool, connection_lost, unavailable

SCHEMA = "graphsec_throttle"
_LOCK = 0x67736874  # "gsht": serializes the creation of the schema between workers

_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE UNLOGGED TABLE IF NOT EXISTS {SCHEMA}.windows (
    key text COLLATE "C" PRIMARY KEY, start float8 NOT NULL, count int NOT NULL);
CREATE UNLOGGED TABLE IF NOT EXISTS {SCHEMA}.leases (
    key text COLLATE "C" NOT NULL, lease text NOT NULL, expires float8 NOT NULL,
    PRIMARY KEY (key, lease));
CREATE OR REPLACE FUNCTION {SCHEMA}.admit(p_keys text[], p_limits int[], p_periods float8[],
                                          p_conc_key text, p_conc_limit int, p_lease text,
                                          p_lease_seconds float8) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    t_now float8 := extract(epoch FROM clock_timestamp());
    wait int := 0;
    i int;
    w_start float8;
    w_count int;
    busy int;
BEGIN
    INSERT INTO {SCHEMA}.windows SELECT k, 0, 0 FROM unnest(p_keys) AS k ON CONFLICT DO NOTHING;
    FOR i IN 1 .. cardinality(p_keys) LOOP
        SELECT w.start, w.count INTO w_start, w_count FROM {SCHEMA}.windows w
        WHERE w.key = p_keys[i] FOR UPDATE;
        IF t_now >= w_start + p_periods[i] THEN
            w_count := 0;
            w_start := t_now;
        END IF;
        IF w_count >= p_limits[i] THEN
            wait := greatest(wait, greatest(1, ceil(w_start + p_periods[i] - t_now)::int));
        END IF;
    END LOOP;
    IF wait > 0 THEN
        RETURN wait;
    END IF;
    IF p_conc_key IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_conc_key, 0));
        DELETE FROM {SCHEMA}.leases WHERE key = p_conc_key AND expires < t_now;
        SELECT count(*) INTO busy FROM {SCHEMA}.leases WHERE key = p_conc_key;
        IF busy >= p_conc_limit THEN
            RETURN 1;
        END IF;
        INSERT INTO {SCHEMA}.leases VALUES (p_conc_key, p_lease, t_now + p_lease_seconds);
    END IF;
    FOR i IN 1 .. cardinality(p_keys) LOOP
        UPDATE {SCHEMA}.windows
        SET start = CASE WHEN t_now >= start + p_periods[i] THEN t_now ELSE start END,
            count = CASE WHEN t_now >= start + p_periods[i] THEN 1 ELSE count + 1 END
        WHERE key = p_keys[i];
    END LOOP;
    RETURN 0;
END $$;
"""

_ADMIT = f"SELECT {SCHEMA}.admit($1::text[], $2::int[], $3::float8[], $4, $5, $6, $7)"
_RELEASE = f"DELETE FROM {SCHEMA}.leases WHERE key = $1 AND lease = $2"


class PostgresThrottleState:
    """A small pool of its own (the decisions never wait behind lists and counts)."""

    def __init__(self, url: str, size: int = 4) -> None:
        self._pool = ConnectionPool(url, size)
        self._ready = False

    async def _prepare(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            await conn.execute(_CREATE)
        self._ready = True

    async def admit(self, rates: tuple[Rate, ...], concurrency: Concurrency | None,
                    lease: str) -> int:
        try:
            if not self._ready:
                await self._prepare()
            wait: int = await self._pool.fetchval(
                _ADMIT, [r.key for r in rates], [r.limit for r in rates],
                [r.period for r in rates], concurrency.key if concurrency else None,
                concurrency.limit if concurrency else 0, lease, LEASE_SECONDS)
        except Exception as exc:
            if connection_lost(exc):
                raise unavailable(exc) from None
            raise
        return wait

    async def release(self, concurrency: Concurrency, lease: str) -> None:
        try:
            await self._pool.execute(_RELEASE, concurrency.key, lease)
        except Exception as exc:  # the lease expires by itself (LEASE_SECONDS)
            if not connection_lost(exc):
                raise

    async def close(self) -> None:
        await self._pool.close()
