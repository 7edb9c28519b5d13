"""Rate limits and metering of ServerlessEndpoints on the serverless request path.

Admission reserves the request's estimated tokens (its prompt, estimated from the body's size, plus
`max_tokens`, or the router's default when absent) in the endpoint's sliding minute; settlement, when the
response has ended (a stream included), replaces the reservation with the tokens the backend reported and
adds them to the endpoint's usage (router/store.py). So concurrent requests cannot all pass a check made
before any of them is charged, and a long stream is charged from its start.

A refused request gets 429 in the OpenAI error shape with Retry-After and OpenAI's x-ratelimit-* headers,
which accepted responses carry too. When the store cannot be reached, `store_fail_open` decides: admit
without limits (usage of those requests is then lost) or answer 503.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

from modelcatalog import clock
from modelcatalog.router.errors import RouterError
from modelcatalog.router.metrics import LATENCY_BUCKETS
from modelcatalog.router.state import Metering
from modelcatalog.router.store import Store, Totals, cost_pico, endpoint_id

log = logging.getLogger(__name__)

BYTES_PER_TOKEN = 4  # an over-estimate of a prompt's tokens: the body's bytes include its JSON
HEADERS_SLOT = web.RequestKey("modelcatalog_ratelimit", dict[str, str])
USAGE = web.ResponseKey("modelcatalog_usage", object)  # the backend's `usage` object, if it reported one
CHUNKS = web.ResponseKey("modelcatalog_chunks", int)  # streamed content chunks (when no usage came)

STORE_ERRORS = Counter(
    "modelcatalog_router_store_errors_total", "Calls to the serverless store that failed, by step.", ["step"]
)
LIMITED = Counter(
    "modelcatalog_router_rate_limited_total",
    "Requests refused by a rate limit, by endpoint and limit.",
    ["endpoint", "limit"],
)
COST = Counter("modelcatalog_router_cost_total", "Cost metered, in the endpoint's currency, by endpoint.", ["endpoint"])
STORE_SECONDS = Histogram(
    "modelcatalog_router_store_seconds",
    "Time of one call to the serverless store, by step.",
    ["step"],
    buckets=LATENCY_BUCKETS,
)


@dataclass(frozen=True)
class Admission:
    endpoint: str  # namespace/name
    uid: str
    ticket: str | None  # None: admitted without a reservation (the store was down, fail open)
    estimated_prompt: int
    meter: Metering


def estimate(body: bytes, payload: dict[str, Any], default_max_tokens: int) -> tuple[int, int]:
    """(prompt tokens, completion tokens) to reserve: a quarter of the body's bytes, and `max_tokens` (or
    `max_completion_tokens`, or the default) times `n`; nothing for completions of embeddings and rerank."""
    prompt = len(body) // BYTES_PER_TOKEN + 1
    if "messages" not in payload and "prompt" not in payload:
        return prompt, 0
    given = payload.get("max_completion_tokens") or payload.get("max_tokens")
    completion = given if isinstance(given, int) and given > 0 else default_max_tokens
    choices = payload.get("n")
    return prompt, completion * (choices if isinstance(choices, int) and choices > 0 else 1)


def duration(ms: int) -> str:
    """OpenAI's format of x-ratelimit-reset-*: 20ms, 1.5s, 1m0s."""
    ms = max(ms, 0)
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:g}s"
    return f"{ms // 60_000}m{(ms % 60_000) / 1000:g}s"


class Meter:
    def __init__(self, store: Store | None, fail_open: bool, default_max_tokens: int) -> None:
        self.store = store
        self.fail_open = fail_open
        self.default_max_tokens = default_max_tokens

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()

    async def admit(
        self, request: web.Request, name: str, meter: Metering, body: bytes, payload: dict[str, Any]
    ) -> Admission | None:
        """The admission of a request to the endpoint `name` to settle later; None without a store. Raises 429
        (over a limit) or 503 (store down, fail closed)."""
        if self.store is None:
            return None
        endpoint = endpoint_id(meter.namespace, name)
        prompt, completion = estimate(body, payload, self.default_max_tokens)
        rpm = meter.requests_per_minute or 2**31
        tpm = meter.tokens_per_minute or 2**62
        started = time.perf_counter()
        try:
            decision = await self.store.admit(endpoint, rpm, tpm, prompt + completion)
        except (RedisError, OSError) as error:
            STORE_ERRORS.labels("admit").inc()
            return self._store_down(endpoint, meter, prompt, error)
        finally:
            STORE_SECONDS.labels("admit").observe(time.perf_counter() - started)
        headers = {
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-remaining-requests": str(decision.remaining_requests),
            "x-ratelimit-reset-requests": duration(decision.reset_ms),
            "x-ratelimit-limit-tokens": str(tpm),
            "x-ratelimit-remaining-tokens": str(decision.remaining_tokens),
            "x-ratelimit-reset-tokens": duration(decision.reset_ms),
        }
        request[HEADERS_SLOT] = headers
        if not decision.admitted:
            raise self._refusal(name, rpm, tpm, prompt + completion, decision.wait_requests_ms,
                                decision.wait_tokens_ms)  # fmt: skip
        return Admission(endpoint, meter.uid, decision.ticket, prompt, meter)

    def _store_down(self, endpoint: str, meter: Metering, prompt: int, error: Exception) -> Admission:
        log.warning("serverless store unreachable at admission (%s): %s", type(error).__name__, error)
        if not self.fail_open:
            raise RouterError(503, "The usage store is unavailable; retry later.", "store_unavailable") from error
        return Admission(endpoint, meter.uid, None, prompt, meter)

    def _refusal(
        self, name: str, rpm: int, tpm: int, reserve: int, wait_requests: int, wait_tokens: int
    ) -> RouterError:
        if wait_requests:
            LIMITED.labels(name, "requests").inc()
            message = f"Rate limit reached for endpoint {name}: {rpm} requests per minute."
        else:
            LIMITED.labels(name, "tokens").inc()
            message = (
                f"Rate limit reached for endpoint {name}: {tpm} tokens per minute (this request reserves {reserve}"
            )
            message += ": its prompt and max_tokens)." if reserve <= tpm else "; lower max_tokens)."
        error = RouterError(429, message + " Retry after the time in Retry-After.", "rate_limit_exceeded")
        error.retry_after = max(1, math.ceil(max(wait_requests, wait_tokens) / 1000))
        return error

    async def settle(self, admission: Admission | None, response: web.StreamResponse | None) -> None:
        """Charge the tokens the response used (0 for a failed one) and meter a successful one. Never raises:
        a store failure here loses this request's usage, and says so in the log and a metric."""
        if admission is None or self.store is None:
            return
        prompt, completion, metered = self._used(admission, response)
        meter = admission.meter
        cost = cost_pico(prompt, meter.input_price) + cost_pico(completion, meter.output_price)
        started = time.perf_counter()
        try:
            await self.store.settle(
                admission.endpoint, admission.uid, admission.ticket, clock.today(), prompt, completion, cost, metered
            )
        except (RedisError, OSError) as error:
            STORE_ERRORS.labels("settle").inc()
            log.warning("serverless store: usage of one request to %s lost (%s)", admission.endpoint, error)
            return
        finally:
            STORE_SECONDS.labels("settle").observe(time.perf_counter() - started)
        if cost:
            COST.labels(admission.endpoint.rpartition("/")[2]).inc(cost / 10**12)

    @staticmethod
    def _used(admission: Admission, response: web.StreamResponse | None) -> tuple[int, int, bool]:
        if response is None or response.status >= 300:
            return 0, 0, False
        usage = response.get(USAGE)
        if isinstance(usage, dict):
            return _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens"), True
        chunks = response.get(CHUNKS)
        if chunks is not None:  # a stream whose backend sent no usage: its content chunks, the prompt estimated
            return admission.estimated_prompt, chunks, True
        return 0, 0, True

    async def usage(self, name: str, meter: Metering) -> dict[str, Any] | None:
        """Today's and this month's usage of the endpoint (UTC days on the project's clock); None without a store."""
        if self.store is None:
            return None
        today = clock.today()
        day, month, _ = await self.store.usage(endpoint_id(meter.namespace, name), meter.uid, today)
        return {"today": _report(day, today.isoformat()), "month": _report(month, today.strftime("%Y-%m"))}


def _tokens(usage: dict[str, Any], field: str) -> int:
    value = usage.get(field)
    return value if isinstance(value, int) and value > 0 else 0


def _report(totals: Totals, period: str) -> dict[str, Any]:
    return {
        "period": period,
        "requests": totals.requests,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cost": f"{totals.cost:.6f}",
    }


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the x-ratelimit-* headers on every response of a limited endpoint."""
    for name, value in (request.get(HEADERS_SLOT) or {}).items():
        response.headers[name] = value
