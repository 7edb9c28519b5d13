"""The router's Prometheus metrics, served at /metrics on the router's own port."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

UNKNOWN = "-"  # endpoint label of requests that name no known endpoint (bounded label values)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "modelcatalog_router_requests_total", "Requests answered, by endpoint and HTTP status.", ["endpoint", "status"]
)
LATENCY = Histogram(
    "modelcatalog_router_request_seconds",
    "Time from request to the end of the response.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
FIRST_TOKEN = Histogram(
    "modelcatalog_router_time_to_first_token_seconds",
    "Streams: time from request to the first chunk from the model server.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "modelcatalog_router_tokens_total",
    "Tokens the model servers reported in `usage`, by endpoint and kind (prompt, completion).",
    ["endpoint", "kind"],
)
REJECTIONS = Counter(
    "modelcatalog_router_rejections_total", "Requests the router answered itself, by reason.", ["reason"]
)
RETRIES = Counter(
    "modelcatalog_router_connect_retries_total", "Requests sent to another pod after a refused connection."
)


def answered(endpoint: str, status: int, started: float) -> None:
    """One request's outcome: counted by endpoint and status, timed from `started` (time.monotonic())."""
    REQUESTS.labels(endpoint, str(status)).inc()
    LATENCY.labels(endpoint).observe(time.monotonic() - started)


# The same counts by endpoint, for GET /v1/usage (this replica's, since it started).
METERED: dict[str, dict[str, int]] = {}
KINDS = ("prompt", "completion")


def count_usage(endpoint: str, usage: object) -> None:
    if not isinstance(usage, dict):
        return
    counts = METERED.setdefault(endpoint, dict.fromkeys(("requests", *KINDS), 0))
    counts["requests"] += 1
    for kind in KINDS:
        value = usage.get(f"{kind}_tokens")
        if isinstance(value, int) and value > 0:
            TOKENS.labels(endpoint, kind).inc(value)
            counts[kind] += value


def metered(endpoint: str) -> dict[str, int]:
    counts = METERED.get(endpoint) or {}
    return {
        "requests": counts.get("requests", 0),
        "prompt_tokens": counts.get("prompt", 0),
        "completion_tokens": counts.get("completion", 0),
    }
