"""Serverless metering and limits: what the store costs per request, how exact the limit is across replicas, and
how long a request takes to show in status.usage.

- overhead: one serverless gateway (which meters) and one test server in this process (aiohttp), a real
  redis-server on 127.0.0.1; the same serverless endpoint without and with the store: latency p50/p99 at
  concurrency 1, requests/s at 20, and the store's own time per request (admission + settlement, one round
  trip each).
- accuracy: two gateway replicas sharing the store, 20 concurrent clients sending 3x the limit: what got through.
- status delay (`--status`): a local cluster with the operator, one request, then the time until the endpoint's
  status.usage counts it (the operator reads the store every MODELCATALOG_SERVERLESS_USAGE_SECONDS).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from modelcatalog.localcluster import testserver
from modelcatalog.localcluster.launcher import free_port
from modelcatalog.localcluster.store import RedisProcess, redis_binary
from modelcatalog.router.auth import User
from modelcatalog.router.forward import ENDPOINT_HEADER
from modelcatalog.router.gateway import Gateway, GatewayState, UpstreamCredential, build_app
from modelcatalog.router.gatewayauth import GatewayAuth
from modelcatalog.router.settings import RouterSettings
from modelcatalog.router.store import Store, StoreSettings

HOST = "127.0.0.1"
NAMESPACE = "bench"
ROUTER_TOKEN = "bench-router-token"  # noqa: S105 (a stand-in, reviewed in process)
CLIENTS = 20


def endpoint_object(name: str, backend: str, rpm: int, tpm: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}-{time.time_ns()}"},
        "spec": {"model": "bench"},
        "status": {
            "backend": {"kind": "Pool", "servedModel": "bench", "address": backend},
            "rateLimits": {"requestsPerMinute": rpm, "tokensPerMinute": tpm, "source": "endpoint"},
            "pricing": {"inputPer1MTokens": "0.5", "outputPer1MTokens": "1.5"},
        },
    }


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port).start()
    try:
        yield f"{HOST}:{port}"
    finally:
        await runner.cleanup()


class BenchReviewer:
    """The API server's TokenReview, answered in process: the bench's calls come from a workspace router."""

    async def authenticate(self, token: str) -> User | None:
        return User(f"system:serviceaccount:{NAMESPACE}:modelcatalog-router") if token == ROUTER_TOKEN else None

    async def authorize(self, user: User, namespace: str, deployment: str) -> bool:
        return False


@asynccontextmanager
async def gateway_at(name: str, backend: str, store: StoreSettings | None, rpm: int) -> AsyncIterator[str]:
    """A serverless gateway replica (which meters and limits) serving one endpoint on `backend`."""
    state = GatewayState(synced=True)
    state.upsert(endpoint_object(name, backend, rpm, 10**12))
    settings = RouterSettings(namespace="modelcatalog-serverless", mode="gateway", store=store)
    upstream = UpstreamCredential(None, settings.namespace, None)
    async with serving(build_app(Gateway(state, settings, GatewayAuth(BenchReviewer()), upstream))) as address:
        yield address


async def one(session: aiohttp.ClientSession, address: str, name: str) -> int:
    body = {"model": name, "messages": [{"role": "user", "content": "one two three four five six"}]}
    headers = {"Authorization": f"Bearer {ROUTER_TOKEN}", ENDPOINT_HEADER: name}
    async with session.post(f"http://{address}/v1/chat/completions", json=body, headers=headers) as r:
        text = await r.text()
        if r.status != 200 and "requests per minute" not in text:
            print(f"  unexpected answer {r.status}: {text[:200]}")
        return r.status


async def latencies(address: str, name: str, count: int) -> list[float]:
    found = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            await one(session, address, name)
            found.append((time.perf_counter() - started) * 1000)
    return found


async def throughput(addresses: list[str], name: str, count: int) -> tuple[float, int]:
    """(requests/s, requests answered 200) for `count` requests from CLIENTS clients over the routers."""
    ok = 0

    async def client(worker: int, session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for n in range(worker, count, CLIENTS):
            status = await one(session, addresses[n % len(addresses)], name)
            ok += status == 200

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(client(w, session) for w in range(CLIENTS)))
    return count / (time.perf_counter() - started), ok


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def store_round_trips(settings: StoreSettings, count: int) -> list[float]:
    """Admission + settlement of one request, straight against the store (ms)."""
    store = Store(settings)
    found = []
    for _ in range(count):
        started = time.perf_counter()
        decision = await store.admit("bench/direct", 10**9, 10**12, 100)
        await store.settle("bench/direct", "u", decision.ticket, date.today(), 6, 6, 12, metered=True)
        found.append((time.perf_counter() - started) * 1000)
    await store.close()
    return found


async def overhead_and_accuracy(store: StoreSettings, count: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    async with serving(testserver.build_app("bench")) as backend:
        for label, settings in (("without store", None), ("with store", store)):
            name = f"e{time.time_ns()}"
            async with gateway_at(name, backend, settings, rpm=10**9) as address:
                await latencies(address, name, 50)  # warm-up
                lat = await latencies(address, name, count)
                rate, _ = await throughput([address], name, 2 * count)
            figures[label] = {"p50_ms": statistics.median(lat), "p99_ms": pct(lat, 99), "rps_at_20": rate}
        direct = await store_round_trips(store, count)
        figures["store call (admit + settle)"] = {"p50_ms": statistics.median(direct), "p99_ms": pct(direct, 99)}
        accuracy = []
        for limit in (50, 200):
            name = f"limited{limit}-{time.time_ns()}"
            async with gateway_at(name, backend, store, limit) as a, gateway_at(name, backend, store, limit) as b:
                _, accepted = await throughput([a, b], name, 3 * limit)
            accuracy.append({"limit_per_minute": limit, "sent": 3 * limit, "accepted": accepted})
        figures["limit with 2 replicas, 20 clients"] = accuracy
    return figures


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def metering(count: int) -> None:
    binary = redis_binary()
    if binary is None:
        print("serverless: no redis-server (make tools installs it); skipped")
        return
    with tempfile.TemporaryDirectory() as workdir:
        redis = RedisProcess(binary, HOST, free_port(), Path(workdir))
        redis.start()
        try:
            figures = asyncio.run(overhead_and_accuracy(StoreSettings(redis.url, redis.password), count))
        finally:
            redis.stop()
    print("serverless metering (gateway and test server in one process, real redis-server):")
    for label, value in figures.items():
        print(f"  {label}: {json.dumps(rounded(value))}")
    plain, stored = figures["without store"], figures["with store"]
    print(f"  overhead per request at concurrency 1: {stored['p50_ms'] - plain['p50_ms']:+.2f} ms (p50)")


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def status_delay(samples: int = 5) -> None:
    """A local cluster with the operator and its pod runner: one request at a time through the workspace
    router, then the time until the endpoint's status.usage counts it."""
    import base64
    import subprocess

    from modelcatalog.localcluster import LocalCluster
    from modelcatalog.localcluster.launcher import OperatorProcess

    cluster = LocalCluster("bench-serverless")
    cluster.up()
    cluster.install()
    operator = OperatorProcess(cluster.kubeconfig, cluster.workdir / "bench-logs")
    operator.start()

    def get(*args: str) -> Any:
        return json.loads(cluster.kubectl("get", *args, "-o", "json"))

    def wait(probe: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.05)
        raise TimeoutError(what)

    try:
        cluster.kubectl("create", "namespace", "modelcatalog-serverless", check=False)
        cluster.kubectl("create", "namespace", "bench")
        manifest = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ServerlessEndpoint",
                    "metadata": {"name": "delay", "namespace": "bench"},
                    "spec": {"model": "phi-3-mini-4k-instruct"}}  # fmt: skip
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
        wait(lambda: get("serverlessendpoint", "delay", "-n", "bench").get("status", {}).get("phase") == "Ready",
             180, "endpoint Ready")  # fmt: skip
        secret = get("secret", "delay-keys", "-n", "bench")
        key = base64.b64decode(secret["data"]["primary"]).decode()

        def router_ip() -> str | None:
            pods = get("pods", "-n", "bench", "-l", "app.kubernetes.io/component=router")["items"]
            ready = [p["status"]["podIP"] for p in pods if is_ready(p)]
            return ready[0] if ready else None

        ip = wait(router_ip, 90, "a ready router")
        body = json.dumps({"model": "delay", "messages": [{"role": "user", "content": "a b"}]})
        url = f"http://{ip}:8080/v1/chat/completions"

        def ask() -> bool:
            result = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url, "-H",
                                     f"api-key: {key}", "-H", "Content-Type: application/json", "-d", body],
                                    capture_output=True, text=True, check=False)  # fmt: skip
            return result.stdout == "200"

        wait(ask, 60, "the router serving the endpoint")
        asked = 1

        def counted() -> int:
            usage = get("serverlessendpoint", "delay", "-n", "bench").get("status", {}).get("usage") or {}
            return int(usage.get("requests", 0))

        delays = []
        for _ in range(samples):
            wait(lambda n=asked: counted() == n, 60, "the earlier requests in status.usage")
            assert ask()
            asked += 1
            answered = time.monotonic()
            wait(lambda n=asked: counted() == n, 60, "status.usage")
            delays.append(time.monotonic() - answered)
        print(f"request -> status.usage (read every {operator.env.get('MODELCATALOG_SERVERLESS_USAGE_SECONDS', '5')}"
              f" s): median {statistics.median(delays):.2f} s, max {max(delays):.2f} s over {samples}")  # fmt: skip
    finally:
        operator.stop()
        cluster.down()
