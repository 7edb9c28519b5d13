"""The serverless store: an existing Redis that every router replica and the operator share.

Two things live there, per ServerlessEndpoint (`namespace/name`, its uid for the usage):

- the rate-limit window: a sliding minute of admitted requests (a sorted set scored by admission time in
  ms, the tokens each one is charged in a hash, their sum in a counter). Admission reserves the estimated
  tokens; settlement replaces them with the metered count. Both are Lua scripts, so replicas never race
  between reading the window and adding to it; the time is Redis's (TIME), so replicas' clocks do not
  matter.
- the usage counters: hashes of requests, input and output tokens and cost (in 1e-12 of the currency, an
  integer, so additions are exact) for the UTC day and month on the project's clock (modelcatalog.clock) and
  for the endpoint's lifetime. Settlement adds to them in the same script, so a request is metered exactly
  when its reservation is settled.

All of an endpoint's keys share the hash tag `{namespace/name}`, so the scripts work on Redis Cluster too.
redis-py (`redis.asyncio`) is the client: the maintained one, with script caching (EVALSHA) and pooling.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import redis.asyncio as redis

WINDOW_MS = 60_000
PICO = 10**12  # cost unit: 1e-12 of the currency
DAY_TTL_SECONDS = 40 * 86400
MONTH_TTL_SECONDS = 400 * 86400
FIELDS = ("requests", "input_tokens", "output_tokens", "cost_pico")

# KEYS: window (zset id -> admitted ms), charges (hash id -> tokens), charged (sum of the hash).
# ARGV: id, requests per minute, tokens per minute, tokens to reserve.
# Returns: admitted (1/0), remaining requests, remaining tokens, ms until the window is empty,
# ms until a request fits (requests), ms until the reservation fits (tokens).
ADMIT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local since = now - tonumber(ARGV[5])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', since, 'LIMIT', 0, 1000)
if #old > 0 then
  local freed = 0
  for _, amount in ipairs(redis.call('HMGET', KEYS[2], unpack(old))) do freed = freed + (tonumber(amount) or 0) end
  redis.call('DECRBY', KEYS[3], freed)
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
end
local rpm, tpm, need = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local count = redis.call('ZCARD', KEYS[1])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local fits_requests = count + 1 <= rpm
local fits_tokens = used + need <= tpm
local admitted = fits_requests and fits_tokens
if admitted then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], need)
  redis.call('INCRBY', KEYS[3], need)
  count = count + 1
  used = used + need
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], 2 * tonumber(ARGV[5])) end
end
local window = tonumber(ARGV[5])
local empty_in = 0
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #newest > 0 then empty_in = tonumber(newest[2]) + window - now end
local wait_requests = 0
if not fits_requests then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #oldest > 0 then wait_requests = tonumber(oldest[2]) + window - now end
end
local wait_tokens = 0
if not fits_tokens then
  wait_tokens = window
  if need <= tpm then
    local freed = 0
    local entries = redis.call('ZRANGE', KEYS[1], 0, 999, 'WITHSCORES')
    for i = 1, #entries, 2 do
      freed = freed + (tonumber(redis.call('HGET', KEYS[2], entries[i])) or 0)
      if used - freed + need <= tpm then
        wait_tokens = tonumber(entries[i + 1]) + window - now
        break
      end
    end
  end
end
return {admitted and 1 or 0, math.max(rpm - count, 0), math.max(tpm - used, 0), empty_in, wait_requests, wait_tokens}
"""

# KEYS: window, charges, charged, usage of the day, of the month, of the lifetime.
# ARGV: id, tokens metered, metered (1/0), input tokens, output tokens, cost in 1e-12, day TTL, month TTL.
SETTLE = """
local reserved = redis.call('HGET', KEYS[2], ARGV[1])
if reserved then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]) - tonumber(reserved))
end
if ARGV[3] == '1' then
  for i = 4, 6 do
    redis.call('HINCRBY', KEYS[i], 'requests', 1)
    redis.call('HINCRBY', KEYS[i], 'input_tokens', ARGV[4])
    redis.call('HINCRBY', KEYS[i], 'output_tokens', ARGV[5])
    redis.call('HINCRBY', KEYS[i], 'cost_pico', ARGV[6])
  end
  redis.call('EXPIRE', KEYS[4], ARGV[7])
  redis.call('EXPIRE', KEYS[5], ARGV[8])
end
return 1
"""


@dataclass(frozen=True)
class StoreSettings:
    """Where the store is: a redis:// (or rediss://) URL and the password (from a Secret, never in the URL)."""

    url: str
    password: str | None = None
    timeout_seconds: float = 1.0

    @classmethod
    def from_env(cls, prefix: str, env: dict[str, str] | None = None) -> StoreSettings | None:
        """`<prefix>STORE_URL`, `<prefix>STORE_PASSWORD` (or `<prefix>STORE_PASSWORD_FILE`); None without a URL."""
        env = dict(os.environ if env is None else env)
        url = env.get(f"{prefix}STORE_URL")
        if not url:
            return None
        password = env.get(f"{prefix}STORE_PASSWORD") or None
        password_file = env.get(f"{prefix}STORE_PASSWORD_FILE")
        if password is None and password_file:
            with open(password_file) as given:
                password = given.read().strip() or None
        timeout = float(env.get(f"{prefix}STORE_TIMEOUT_SECONDS", cls.timeout_seconds))
        return cls(url, password, timeout)


@dataclass(frozen=True)
class Decision:
    admitted: bool
    ticket: str
    remaining_requests: int
    remaining_tokens: int
    reset_ms: int
    wait_requests_ms: int
    wait_tokens_ms: int


@dataclass(frozen=True)
class Totals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_pico: int = 0

    @classmethod
    def from_hash(cls, found: dict[Any, Any]) -> Totals:
        values = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in found.items()}
        return cls(**{f: values.get(f, 0) for f in FIELDS})

    @property
    def cost(self) -> Decimal:
        return Decimal(self.cost_pico) / PICO


def cost_pico(tokens: int, price_per_1m: Decimal | None) -> int:
    """The cost of `tokens` at a price per million tokens, in 1e-12 of the currency (rounded)."""
    if price_per_1m is None or tokens <= 0:
        return 0
    return int((price_per_1m * tokens * PICO / 1_000_000).to_integral_value())


def endpoint_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def limit_keys(endpoint: str) -> list[str]:
    tag = "{" + endpoint + "}"
    return [f"mc:{tag}:rl:window", f"mc:{tag}:rl:charges", f"mc:{tag}:rl:charged"]


def usage_keys(endpoint: str, uid: str, day: date) -> list[str]:
    """The day's, the month's and the lifetime's usage hash of one endpoint (by uid: a new endpoint of the same
    name starts from zero)."""
    base = "mc:{" + endpoint + "}:usage:" + (uid or "-")
    return [f"{base}:day:{day.isoformat()}", f"{base}:month:{day.strftime('%Y-%m')}", f"{base}:total"]


class Store:
    def __init__(self, settings: StoreSettings, window_ms: int = WINDOW_MS) -> None:
        self.settings = settings
        self.window_ms = window_ms
        self.client: redis.Redis = redis.Redis.from_url(
            settings.url,
            password=settings.password,
            socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds,
            health_check_interval=30,
        )
        self._admit = self.client.register_script(ADMIT)
        self._settle = self.client.register_script(SETTLE)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def admit(self, endpoint: str, requests_per_minute: int, tokens_per_minute: int, reserve: int) -> Decision:
        ticket = uuid.uuid4().hex
        args: list[str | int] = [ticket, requests_per_minute, tokens_per_minute, reserve, self.window_ms]
        found = await self._admit(keys=limit_keys(endpoint), args=args)
        admitted, requests, tokens, reset, wait_requests, wait_tokens = (int(v) for v in found)
        return Decision(bool(admitted), ticket, requests, tokens, reset, wait_requests, wait_tokens)

    async def settle(
        self,
        endpoint: str,
        uid: str,
        ticket: str | None,
        day: date,
        input_tokens: int,
        output_tokens: int,
        cost: int,
        metered: bool,
    ) -> None:
        """Replace the ticket's reservation with the tokens used and, when `metered`, add the request to the
        endpoint's usage; one atomic script (a ticket of None only meters: admitted while the store was down)."""
        keys = limit_keys(endpoint) + usage_keys(endpoint, uid, day)
        args: list[str | int] = [
            ticket or "-",
            input_tokens + output_tokens,
            1 if metered else 0,
            input_tokens,
            output_tokens,
            cost,
            DAY_TTL_SECONDS,
            MONTH_TTL_SECONDS,
        ]
        await self._settle(keys=keys, args=args)

    async def usage(self, endpoint: str, uid: str, day: date) -> tuple[Totals, Totals, Totals]:
        """The day's, the month's and the lifetime's totals."""
        async with self.client.pipeline(transaction=False) as pipe:
            for key in usage_keys(endpoint, uid, day):
                pipe.hgetall(key)
            found = await pipe.execute()
        day_totals, month_totals, lifetime = (Totals.from_hash(f) for f in found)
        return day_totals, month_totals, lifetime

    async def lifetimes(self, endpoints: list[tuple[str, str]]) -> list[Totals]:
        """The lifetime totals of many (endpoint, uid) pairs in one round trip (the operator's status writer)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for endpoint, uid in endpoints:
                pipe.hgetall(usage_keys(endpoint, uid, date.min)[2])
            found = await pipe.execute()
        return [Totals.from_hash(f) for f in found]
