"""Router overhead: the same requests straight to the test server and through the router (static config).

Three processes on 127.0.0.1: the test server, the router, and this client. Figures: added latency
p50/p99 at concurrency 1, and requests/s at concurrency 20, each way.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import yaml

HOST = "127.0.0.1"
KEY = "bench-key"
BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "one two three four five six"}]}'
START_TIMEOUT = 30
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def process(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)])}
    proc = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_up(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {START_TIMEOUT} s")


async def timed(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.post(url, data=BODY, headers={"Authorization": f"Bearer {KEY}"}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    return time.perf_counter() - started


async def latencies(url: str, count: int) -> list[float]:
    async with aiohttp.ClientSession() as session:
        for _ in range(min(50, count)):  # warm up connections and code paths
            await timed(session, url)
        return [await timed(session, url) for _ in range(count)]


async def throughput(url: str, count: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        left = iter(range(count))

        async def worker() -> None:
            for _ in left:
                await timed(session, url)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(direct: str, routed: str, count: int, concurrency: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name, url in (("direct", direct), ("router", routed)):
        values = await latencies(url, count)
        figures[f"{name}_p50_ms"] = statistics.median(values) * 1000
        figures[f"{name}_p99_ms"] = percentile(values, 99) * 1000
        figures[f"{name}_rps"] = await throughput(url, count * 2, concurrency)
    return figures


def router_overhead(count: int = 500, concurrency: int = 20) -> dict[str, float]:
    """Run both ways; returns the figures and prints them."""
    backend_port, router_port = free_port(), free_port()
    deployment = {
        "name": "bench",
        "backends": [f"{HOST}:{backend_port}"],
        "requestSettings": {"maxConcurrentRequestsPerInstance": 256},
    }
    keys = {"primary": KEY, "secondary": KEY + "-2"}
    config = {"endpoints": [{"name": "bench", "keys": keys, "deployments": [deployment]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(config, file)
        file.flush()
        with (
            process("modelcatalog.localcluster.testserver", "--host", HOST, "--port", str(backend_port)),
            process("modelcatalog.router", "--config", file.name, "--host", HOST, "--port", str(router_port)),
        ):
            asyncio.run(wait_up(f"http://{HOST}:{backend_port}/health"))
            asyncio.run(wait_up(f"http://{HOST}:{router_port}/readyz"))
            figures = asyncio.run(
                measure(
                    f"http://{HOST}:{backend_port}/v1/chat/completions",
                    f"http://{HOST}:{router_port}/v1/chat/completions",
                    count,
                    concurrency,
                )
            )
    figures["added_p50_ms"] = figures["router_p50_ms"] - figures["direct_p50_ms"]
    figures["added_p99_ms"] = figures["router_p99_ms"] - figures["direct_p99_ms"]
    print(f"router: {count} requests at concurrency 1, {count * 2} at concurrency {concurrency}")
    print(f"  added latency p50 {figures['added_p50_ms']:.2f} ms, p99 {figures['added_p99_ms']:.2f} ms"
          f" (direct p50 {figures['direct_p50_ms']:.2f} ms, via router {figures['router_p50_ms']:.2f} ms)")  # fmt: skip
    print(f"  requests/s at concurrency {concurrency}: direct {figures['direct_rps']:.0f},"
          f" via router {figures['router_rps']:.0f}")  # fmt: skip
    return figures


if __name__ == "__main__":
    router_overhead()
