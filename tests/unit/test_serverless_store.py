"""Rate limits and usage counters of ServerlessEndpoints against a real redis-server (hack/redis.sh installs it).

The serverless path: client -> workspace router -> gateway -> test server, the gateway admitting and settling in
the real store."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from redis import exceptions as redis_errors

from modelcatalog.localcluster.store import RedisProcess, redis_binary
from modelcatalog.router import gateway
from modelcatalog.router.forward import UsageScanner
from modelcatalog.router.limits import duration, estimate
from modelcatalog.router.state import Metering
from modelcatalog.router.store import Store, StoreSettings, cost_pico
from tests.unit.routerbed import backends, stats
from tests.unit.test_router_serverless import KEY, gateway_at, workspace_router

BINARY = redis_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="no redis-server: `make tools` (hack/redis.sh) installs Debian's into the tools cache"
)


def free_port() -> int:
    from modelcatalog.localcluster.launcher import free_port as pick

    return pick()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    assert BINARY is not None
    process = RedisProcess(BINARY, "127.0.0.1", free_port(), Path(tmp_path_factory.mktemp("redis")))
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def store(redis_server: RedisProcess) -> AsyncIterator[Store]:
    found = Store(StoreSettings(redis_server.url, redis_server.password))
    yield found
    await found.close()


def fresh() -> str:
    return f"ns/{uuid.uuid4().hex[:8]}"


async def test_the_store_refuses_a_client_without_the_password(redis_server: RedisProcess) -> None:
    anonymous = Store(StoreSettings(redis_server.url))
    with pytest.raises(redis_errors.AuthenticationError):
        await anonymous.ping()
    await anonymous.close()


async def test_concurrent_admissions_never_pass_the_request_limit(store: Store) -> None:
    endpoint = fresh()
    decisions = await asyncio.gather(*(store.admit(endpoint, 10, 10**9, 1) for _ in range(50)))
    admitted = [d for d in decisions if d.admitted]
    assert len(admitted) == 10
    refused = [d for d in decisions if not d.admitted]
    assert all(d.remaining_requests == 0 and 0 < d.wait_requests_ms <= 60_000 for d in refused)


async def test_reservations_count_before_settlement_and_settlement_returns_the_difference(store: Store) -> None:
    endpoint = fresh()
    first = await store.admit(endpoint, 100, 1000, 600)
    assert first.admitted and first.remaining_tokens == 400
    second = await store.admit(endpoint, 100, 1000, 600)  # would fit if charged only after the fact
    assert not second.admitted and second.wait_tokens_ms > 0
    await store.settle(endpoint, "uid", first.ticket, date(2026, 12, 2), 10, 40, 0, metered=True)
    third = await store.admit(endpoint, 100, 1000, 600)  # 550 of the 600 reserved went back
    assert third.admitted and third.remaining_tokens == 1000 - 50 - 600


async def test_the_window_slides(redis_server: RedisProcess) -> None:
    short = Store(StoreSettings(redis_server.url, redis_server.password), window_ms=300)
    endpoint = fresh()
    assert (await short.admit(endpoint, 2, 100, 1)).admitted
    assert (await short.admit(endpoint, 2, 100, 1)).admitted
    refused = await short.admit(endpoint, 2, 100, 1)
    assert not refused.admitted and refused.wait_requests_ms <= 300
    await asyncio.sleep(0.35)
    assert (await short.admit(endpoint, 2, 100, 1)).admitted
    await short.close()


async def test_usage_is_counted_per_day_month_and_lifetime(store: Store) -> None:
    endpoint = fresh()
    for day in (date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 1)):
        await store.settle(endpoint, "u1", None, day, 3, 5, cost_pico(8, Decimal("0.25")), metered=True)
    await store.settle(endpoint, "u1", None, date(2026, 12, 1), 0, 0, 0, metered=False)  # a failed request
    day, month, lifetime = await store.usage(endpoint, "u1", date(2026, 12, 1))
    assert (day.requests, day.input_tokens, day.output_tokens) == (2, 6, 10)
    assert month.requests == 2 and lifetime.requests == 3
    assert lifetime.cost == Decimal("0.000006")  # 24 tokens at 0.25 per 1M
    (other,) = await store.lifetimes([(endpoint, "u2")])  # a new endpoint of the same name starts from zero
    assert other.requests == 0


def test_estimates_and_header_formats() -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}).encode()
    prompt, completion = estimate(body, json.loads(body), 1024)
    assert prompt >= 100 and completion == 50
    assert estimate(b'{"input": "a"}', {"input": "a"}, 1024)[1] == 0  # embeddings generate nothing
    assert estimate(b"{}", {"prompt": "a", "n": 2}, 1024)[1] == 2048
    assert [duration(ms) for ms in (20, 1500, 60_000, 61_500)] == ["20ms", "1.5s", "1m0s", "1m1.5s"]


def test_chunks_are_counted_when_a_stream_reports_no_usage() -> None:
    scanner = UsageScanner(count_chunks=True)
    events = [{"choices": [{"delta": {"content": w}}]} for w in ("a", " b", " c")]
    events.append({"choices": [{"delta": {"content": ""}, "finish_reason": "stop"}]})
    scanner.feed(b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n")
    assert scanner.usage is None and scanner.chunks == 3


def serverless_object(name: str, address: str, rpm: int, tpm: int) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "team-a", "uid": "uid-" + name},
        "spec": {"model": "phi"},
        "status": {
            "backend": {"kind": "Pool", "servedModel": "phi", "address": address},
            "rateLimits": {"requestsPerMinute": rpm, "tokensPerMinute": tpm, "source": "endpoint"},
            "pricing": {"inputPer1MTokens": "1.5", "outputPer1MTokens": "2"},
        },
    }


async def test_the_gateway_limits_meters_and_reports_usage_through_the_store(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    settings = StoreSettings(redis_server.url, redis_server.password)
    name = f"chat-{uuid.uuid4().hex[:6]}"
    async with backends(1) as [pool]:
        obj = serverless_object(name, pool, rpm=5, tpm=10**6)
        found = gateway.endpoint_from_object(obj)
        assert found is not None
        assert found.meter == Metering("team-a", "uid-" + name, 5, 10**6, Decimal("1.5"), Decimal(2))
        async with gateway_at([obj], store=settings) as url, workspace_router(url, tmp_path, name) as bed:
            await limited_and_metered(bed, name, pool)


async def limited_and_metered(bed: Any, name: str, pool: str) -> None:
    client = bed.client(KEY)
    messages = [{"role": "user", "content": "a b c"}]
    raw = await client.chat.completions.with_raw_response.create(model=name, messages=messages)  # type: ignore[arg-type]
    assert raw.headers["x-ratelimit-limit-requests"] == "5"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    reserved = 10**6 - int(raw.headers["x-ratelimit-remaining-tokens"])
    assert reserved >= 1024  # the prompt's estimate and the default max_tokens, reserved at admission
    stream = await client.chat.completions.create(model=name, messages=messages, stream=True)  # type: ignore[arg-type]
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    results = await asyncio.gather(
        *(client.chat.completions.create(model=name, messages=messages) for _ in range(6)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 3  # 5 per minute: 2 done, 3 more pass
    error = refused[0]
    assert int(error.response.headers["Retry-After"]) >= 1
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    served = await stats(pool)
    status, text = await bed.get("/v1/usage", KEY)
    (entry,) = json.loads(text)["data"]
    assert status == 200 and entry["today"]["requests"] == served["requests"] == 5
    assert entry["today"]["input_tokens"] == served["prompt_tokens"]
    assert entry["month"]["output_tokens"] == served["completion_tokens"]
    expected = (Decimal("1.5") * served["prompt_tokens"] + 2 * served["completion_tokens"]) / 10**6
    assert Decimal(entry["month"]["cost"]) == expected.quantize(Decimal("0.000001"))


async def test_the_token_limit_reserves_max_tokens_at_admission(redis_server: RedisProcess, tmp_path: Path) -> None:
    settings = StoreSettings(redis_server.url, redis_server.password)
    name = f"tokens-{uuid.uuid4().hex[:6]}"
    async with backends(1) as [pool]:
        obj = serverless_object(name, pool, rpm=1000, tpm=300)
        async with gateway_at([obj], store=settings) as url, workspace_router(url, tmp_path, name) as bed:
            client = bed.client(KEY, **{"x-test-delay-ms": "200"})
            messages = [{"role": "user", "content": "a b"}]
            results = await asyncio.gather(
                *(client.chat.completions.create(model=name, messages=messages, max_tokens=100) for _ in range(5)),  # type: ignore[arg-type]
                return_exceptions=True,
            )
            # Each reserves ~130 of 300 tokens while all five are in flight: two pass, though each uses ~4.
            assert sum(not isinstance(r, Exception) for r in results) == 2


async def test_a_store_that_is_down_fails_open_or_closed_as_set(tmp_path: Path) -> None:
    down = StoreSettings(f"redis://127.0.0.1:{free_port()}/0", "x", timeout_seconds=0.2)
    for fail_open, expected in ((True, 200), (False, 503)):
        name = f"down-{uuid.uuid4().hex[:6]}"
        async with backends(1) as [pool]:
            obj = serverless_object(name, pool, rpm=5, tpm=1000)
            gw = gateway_at([obj], store=down, store_fail_open=fail_open)
            async with gw as url, workspace_router(url, tmp_path, name) as bed:
                status, _ = await bed.post("/v1/chat/completions", {"model": name, "messages": []}, KEY)
            assert status == expected


def test_a_serverless_endpoint_without_status_limits_is_metered_unlimited() -> None:
    found = gateway.endpoint_from_object({"metadata": {"name": "x", "namespace": "a"}, "spec": {"model": "m"},
                                          "status": {"backend": {"kind": "Pool"}}})  # fmt: skip
    assert found is not None and found.meter.requests_per_minute is None
