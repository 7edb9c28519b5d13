"""Where the router sends traffic: weighted split, pinning, limits, timeouts, refused connections."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.unit.routerbed import KEYS, backends, closed_port, deployment, endpoint, router_bed, serving, stats

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
GENEROUS = 30


def chat(*deployments: dict[str, Any]) -> dict[str, Any]:
    return {"endpoints": [endpoint("chat", list(deployments))]}


async def test_weighted_split_90_10_over_1000_requests() -> None:
    async with backends(2) as [a, b], router_bed(chat(deployment("a", [a], 90), deployment("b", [b], 10))) as bed:
        for _ in range(1000):
            status, _ = await bed.post("/v1/chat/completions", CHAT)
            assert status == 200
        to_a, to_b = (await stats(a))["requests"], (await stats(b))["requests"]
    assert to_a + to_b == 1000
    assert 87 <= to_a / 10 <= 93


async def test_pin_header_sends_everything_to_one_deployment() -> None:
    async with backends(2) as [a, b], router_bed(chat(deployment("a", [a], 90), deployment("b", [b], 10))) as bed:
        pinned = [await bed.post("/v1/chat/completions", CHAT, **{"x-modelcatalog-deployment": "b"}) for _ in range(20)]
        unknown, error = await bed.post("/v1/chat/completions", CHAT, **{"x-modelcatalog-deployment": "c"})
        to_a, to_b = (await stats(a))["requests"], (await stats(b))["requests"]
    assert all(status == 200 for status, _ in pinned)
    assert (to_a, to_b) == (0, 20)
    assert unknown == 404 and error["error"]["code"] == "deployment_not_found"


async def test_deployment_without_ready_pods_gets_no_share() -> None:
    async with backends(1) as [a], router_bed(chat(deployment("a", [a], 50), deployment("b", [], 50))) as bed:
        statuses = [(await bed.post("/v1/chat/completions", CHAT))[0] for _ in range(20)]
        pinned, error = await bed.post("/v1/chat/completions", CHAT, **{"x-modelcatalog-deployment": "b"})
    assert set(statuses) == {200}
    assert pinned == 503 and error["error"]["code"] == "no_ready_pod"


async def test_least_outstanding_spreads_concurrent_requests() -> None:
    async with backends(2) as [a, b], router_bed(chat(deployment("a", [a, b]))) as bed:
        slow = {"x-test-delay-ms": "200"}
        results = await asyncio.gather(*(bed.post("/v1/chat/completions", CHAT, **slow) for _ in range(10)))
        served = (await stats(a))["requests"], (await stats(b))["requests"]
    assert {status for status, _ in results} == {200}
    assert sum(served) == 10
    assert abs(served[0] - served[1]) <= 2


async def test_over_the_concurrency_limit_waits_then_429() -> None:
    limited = chat(deployment("a", ["placeholder"], maxConcurrentRequestsPerInstance=1))
    async with backends(1) as [a]:
        limited["endpoints"][0]["deployments"][0]["backends"] = [a]
        async with router_bed(limited, queue_wait_seconds=0.2) as bed:
            first = asyncio.create_task(bed.post("/v1/chat/completions", CHAT, **{"x-test-delay-ms": "3000"}))
            for _ in range(GENEROUS * 100):  # bounded: until the first request holds the only slot
                if bed.router.load.outstanding:
                    break
                await asyncio.sleep(0.01)
            refused, error = await bed.post("/v1/chat/completions", CHAT)
            assert (await first)[0] == 200
    assert refused == 429
    assert error["error"]["type"] == "rate_limit_error"


async def test_a_queued_request_is_served_when_a_slot_frees() -> None:
    limited = chat(deployment("a", ["placeholder"], maxConcurrentRequestsPerInstance=1))
    async with backends(1) as [a]:
        limited["endpoints"][0]["deployments"][0]["backends"] = [a]
        async with router_bed(limited, queue_wait_seconds=GENEROUS) as bed:
            results = await asyncio.gather(
                *(bed.post("/v1/chat/completions", CHAT, **{"x-test-delay-ms": "50"}) for _ in range(4))
            )
    assert [status for status, _ in results] == [200] * 4


async def test_hanging_backend_gives_504_at_the_timeout() -> None:
    async with backends(1) as [a], router_bed(chat(deployment("a", [a], requestTimeoutSeconds=0.5))) as bed:
        async with asyncio.timeout(GENEROUS):
            status, error = await bed.post("/v1/chat/completions", CHAT, **{"x-test-hang": "1"})
    assert status == 504
    assert error["error"]["code"] == "timeout"


async def test_refused_connection_is_retried_on_another_pod() -> None:
    async with backends(1) as [a], router_bed(chat(deployment("a", [closed_port(), a]))) as bed:
        statuses = [(await bed.post("/v1/chat/completions", CHAT))[0] for _ in range(10)]
        served = (await stats(a))["requests"]
    assert statuses == [200] * 10
    assert served == 10


async def test_every_pod_refusing_gives_502() -> None:
    async with router_bed(chat(deployment("a", [closed_port(), closed_port()]))) as bed:
        status, error = await bed.post("/v1/chat/completions", CHAT)
    assert status == 502
    assert error["error"]["code"] == "backend_error"


async def test_backend_errors_server_side_502_client_side_passed_through() -> None:
    async with backends(1) as [a], router_bed(chat(deployment("a", [a]))) as bed:
        failed, _ = await bed.post("/v1/chat/completions", CHAT, **{"x-test-status": "500"})
        invalid, body = await bed.post("/v1/chat/completions", CHAT, **{"x-test-status": "400"})
    assert failed == 502
    assert invalid == 400 and body["error"]["code"] == "400"


async def test_backend_receives_its_served_model_name() -> None:
    served = chat(deployment("a", ["placeholder"]) | {"model": "llama-served"})
    async with backends(1) as [a]:
        served["endpoints"][0]["deployments"][0]["backends"] = [a]
        async with router_bed(served) as bed:
            _, reply = await bed.post("/v1/chat/completions", CHAT)
    assert reply["model"] == "llama-served"


async def test_client_key_is_not_forwarded() -> None:
    seen: list[str] = []

    async def capture(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.extend(k.lower() for k in request.headers)
        return aiohttp.web.json_response({"ok": True})

    app = aiohttp.web.Application()
    app.router.add_post("/v1/chat/completions", capture)
    async with serving(app) as b, router_bed(chat(deployment("a", [b]))) as bed:
        await bed.post("/v1/chat/completions", CHAT, None, **{"api-key": KEYS["chat"][0]})
    assert "authorization" not in seen and "api-key" not in seen


def recording_backend(seen: list[tuple[bytes, dict[str, str]]]) -> aiohttp.web.Application:
    """Records each request's body and headers; sets a cookie on every answer."""

    async def record(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append((await request.read(), {k.lower(): v for k, v in request.headers.items()}))
        response = aiohttp.web.json_response({"ok": True})
        response.set_cookie("session", f"caller-{len(seen)}")
        return response

    app = aiohttp.web.Application()
    app.router.add_post("/v1/chat/completions", record)
    return app


async def test_unchanged_body_is_forwarded_byte_for_byte() -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []
    body = b'{ "messages":[{"content":"hello","role":"user"}],\n  "model": "chat", "temperature": 1.50 }'
    async with serving(recording_backend(seen)) as b, router_bed(chat(deployment("a", [b]))) as bed:
        status, _ = await bed.post("/v1/chat/completions", body)
    assert status == 200
    assert seen[0][0] == body  # not parsed and dumped again: key order, spacing, 1.50 kept


async def test_backend_cookies_do_not_reach_other_callers() -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []
    async with serving(recording_backend(seen)) as b:
        by_name = b.replace("127.0.0.1", "localhost")  # aiohttp's jar keeps no cookies of IP addresses
        async with router_bed(chat(deployment("a", [by_name]))) as bed:
            await bed.post("/v1/chat/completions", CHAT)
            await bed.post("/v1/chat/completions", CHAT)
    assert len(seen) == 2 and "cookie" not in seen[1][1]
