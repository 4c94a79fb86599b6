"""The throttle state in Redis (``[throttling] redis = "redis://…"``): for deployments whose
limits must hold across instances at a high rate. One Lua script takes each decision
atomically, with Redis's clock (instances whose clocks differ still agree); windows are hashes
that expire with their period, places under the concurrency cap are members of a sorted set
scored by their expiry.

The steps are those of ``graphsec.pressure.windows.decide`` and the PostgreSQL function; the
tests run every state through the same cases (tests/pressure/test_throttle_state.py).
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from graphsec.errors import ServiceUnavailable
from graphsec.pressure.windows import LEASE_SECONDS, Concurrency, Rate

PREFIX = "graphsec:throttle:"

# KEYS: the windows' keys, then the concurrency key (when ARGV[1] == "1")
# ARGV: has-concurrency, concurrency limit, lease, lease seconds, then limit and period a window
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local conc = ARGV[1] == '1'
local n = #KEYS - (conc and 1 or 0)
local wait = 0
local states = {}
for i = 1, n do
  local limit, period = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local v = redis.call('HMGET', KEYS[i], 'start', 'count')
  local start, count = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if now >= start + period then start, count = now, 0 end
  if count >= limit then
    wait = math.max(wait, math.max(1, math.ceil(start + period - now)))
  end
  states[i] = {start, count, period}
end
if wait > 0 then return wait end
if conc then
  local key, limit = KEYS[#KEYS], tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= limit then return 1 end
  redis.call('ZADD', key, now + tonumber(ARGV[4]), ARGV[3])
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[4])))
end
for i = 1, n do
  local s = states[i]
  if s[2] == 0 then
    redis.call('HSET', KEYS[i], 'start', tostring(s[1]), 'count', 1)
    redis.call('PEXPIRE', KEYS[i], math.ceil(s[3] * 1000) + 1000)
  else
    redis.call('HINCRBY', KEYS[i], 'count', 1)
  end
end
return 0
"""


class RedisThrottleState:
    def __init__(self, url: str) -> None:
        self._redis: Any = aioredis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._admit = self._redis.register_script(_ADMIT)

    async def admit(self, rates: tuple[Rate, ...], concurrency: Concurrency | None,
                    lease: str) -> int:
        keys = [PREFIX + r.key for r in rates]
        args: list[Any] = ["1" if concurrency else "0", concurrency.limit if concurrency else 0,
                           lease, LEASE_SECONDS]
        for r in rates:
            args += [r.limit, r.period]
        if concurrency is not None:
            keys.append(PREFIX + concurrency.key)
        try:
            return int(await self._admit(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("The throttling store (Redis) is not reachable at the "
                                     "moment; retry in a few seconds.") from exc

    async def release(self, concurrency: Concurrency, lease: str) -> None:
        with contextlib.suppress(RedisError, OSError):  # else it expires (LEASE_SECONDS)
            await self._redis.zrem(PREFIX + concurrency.key, lease)

    async def close(self) -> None:
        await self._redis.aclose()
