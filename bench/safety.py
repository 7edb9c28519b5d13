"""Content safety's cost: the baseline filter per prompt size and the stream screener per chunk (CPU time
of this process, so other load on the machine does not count), and the latency a screened endpoint adds
through the router (a router process, static config, in front of the test server: the same request to
an endpoint with contentSafety Enabled and one without).

Printed, and written to bench/out/safety.json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from bench.router import HOST, KEY, OUT, endpoint, latencies, percentile, served
from modelcatalog.router.safety.baseline import Baseline
from modelcatalog.router.safety.filters import Role, Severity, Verdict, judge
from modelcatalog.router.safety.screen import StreamScreener

SENTENCE = "Please summarise the quarterly report and list three risks for the board. "


def baseline_microseconds(size: int, rounds: int = 200) -> float:
    text = (SENTENCE * (size // len(SENTENCE) + 1))[:size]
    baseline = Baseline()
    baseline.scores(text)
    started = time.process_time()
    for _ in range(rounds):
        baseline.scores(text)
    return (time.process_time() - started) / rounds * 1e6


def stream_bytes(words: int) -> list[bytes]:
    chunks = []
    for n, word in enumerate((SENTENCE.split() * (words // 12 + 1))[:words]):
        choice = {"index": 0, "delta": {"content": (" " if n else "") + word}, "finish_reason": None}
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}
        chunks.append(f"data: {json.dumps(chunk)}\n\n".encode())
    return [*chunks, b"data: [DONE]\n\n"]


async def screener_microseconds_per_chunk(words: int = 2000) -> float:
    filters = [Baseline()]

    async def verdict(text: str, role: Role) -> Verdict:
        return await judge(filters, text, role, Severity.MEDIUM, seconds=5, fail_open=False)

    chunks = stream_bytes(words)
    screener = StreamScreener(verdict)
    started = time.process_time()
    for chunk in chunks:
        await screener.feed(chunk)
    await screener.close()
    return (time.process_time() - started) / len(chunks) * 1e6


def router_latency(count: int) -> dict[str, float]:
    def endpoints(backend: str) -> list[dict[str, Any]]:
        return [endpoint("plain", backend), endpoint("screened", backend, contentSafety="Enabled")]

    with served(endpoints, "safetybench-") as up:
        found: dict[str, list[float]] = {"plain": [], "screened": []}
        for _ in range(5):  # interleaved, so a busy moment of the machine falls on both
            for name, values in found.items():
                url = f"http://{HOST}:{up.router_port}/endpoints/{name}/v1/chat/completions"
                values += asyncio.run(latencies(url, KEY, count // 5))
    return {
        f"{name}_{figure}_ms": value * 1000
        for name, values in found.items()
        for figure, value in (("p50", statistics.median(values)), ("p99", percentile(values, 99)))
    }


def safety_overhead(count: int = 500) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "baseline_us": {size: baseline_microseconds(size) for size in (100, 1_000, 10_000)},
        "stream_us_per_chunk": asyncio.run(screener_microseconds_per_chunk()),
        "router": router_latency(count),
    }
    (OUT / "safety.json").write_text(json.dumps(results, indent=2))
    print("content safety:")
    for size, micros in results["baseline_us"].items():
        print(f"  baseline filter, {size:>6} characters: {micros:8.1f} us")
    print(f"  stream screener (baseline, a sentence per 12 words): {results['stream_us_per_chunk']:.1f} us per chunk")
    router = results["router"]
    print(f"  router, {count} requests each at concurrency 1, p50 / p99:")
    print(f"    unscreened {router['plain_p50_ms']:.2f} / {router['plain_p99_ms']:.2f} ms")
    print(f"    screened   {router['screened_p50_ms']:.2f} / {router['screened_p99_ms']:.2f} ms")
    return results
