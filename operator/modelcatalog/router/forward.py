"""Sending one request to one backend (a model-server pod, the serverless gateway, a pool or an upstream provider)
and relaying its answer (streams chunk by chunk)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from modelcatalog.router.errors import RouterError
from modelcatalog.router.limits import CHUNKS, USAGE
from modelcatalog.router.metrics import FIRST_TOKEN, count_usage
from modelcatalog.router.safety.screen import Screening
from modelcatalog.router.settings import CONNECT_TIMEOUT_SECONDS
from modelcatalog.router.state import Deployment

log = logging.getLogger(__name__)

PIN_HEADER = "x-modelcatalog-deployment"
ENDPOINT_HEADER = "x-modelcatalog-endpoint"  # the workspace router names the serverless endpoint to the gateway
NOT_FORWARDED = frozenset(
    h.lower()
    for h in (
        "Host", "Content-Length", "Authorization", "api-key", "Connection", "Keep-Alive", "Transfer-Encoding",
        "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Accept-Encoding", PIN_HEADER,
        ENDPOINT_HEADER,
    )
)  # fmt: skip
MAX_PARTIAL_LINE = 1024 * 1024
# Answer headers a caller acts on, relayed from the backend (the serverless gateway's or a provider's limits).
RELAYED_PREFIXES = ("retry-after", "x-ratelimit-")


class ConnectFailed(Exception):
    """No connection to the pod (refused, unreachable): nothing was sent, another pod may be tried."""


def forward_headers(headers: CIMultiDictProxy[str], identity: bool = False) -> CIMultiDict[str]:
    """The caller's headers for the backend; `identity`: ask for an uncompressed answer (to screen its text)."""
    forwarded = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in NOT_FORWARDED)
    if identity:
        forwarded["Accept-Encoding"] = "identity"
    return forwarded


def relayed_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith(RELAYED_PREFIXES)}


def with_served_model(body: bytes, payload: dict[str, Any], deployment: Deployment) -> bytes:
    """The original bytes, unless `model` must be changed to the name the model server serves."""
    served = deployment.served_model
    if not served or payload.get("model") == served:
        return body
    return json.dumps(payload | {"model": served}).encode()


def with_usage_reported(body: bytes, payload: dict[str, Any]) -> bytes:
    """A stream that asks the model server for its `usage` chunk (metering), unless the caller asked already."""
    if payload.get("stream") is not True or (payload.get("stream_options") or {}).get("include_usage"):
        return body
    given = payload.get("stream_options")
    options: dict[str, Any] = given if isinstance(given, dict) else {}
    return json.dumps(payload | {"stream_options": {**options, "include_usage": True}}).encode()


class UsageScanner:
    """Finds the last non-null `usage` in an SSE stream without holding more than one partial line."""

    def __init__(self, count_chunks: bool = False) -> None:
        self.usage: Any = None
        self.count_chunks = count_chunks  # metered (serverless) streams: parse every event until a usage comes
        self.chunks = 0  # events with generated text: the count when the backend sends no usage
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()[-MAX_PARTIAL_LINE:]
        for line in lines:
            if line.startswith(b"data:") and (b'"usage"' in line or (self.count_chunks and self.usage is None)):
                self._read(line[5:])

    def _read(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("usage"):
            self.usage = event["usage"]
        elif any(_generated(choice) for choice in event.get("choices") or []):
            self.chunks += 1


def _generated(choice: Any) -> bool:
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    return bool((delta.get("content") if isinstance(delta, dict) else None) or choice.get("text"))


async def exchange(
    session: aiohttp.ClientSession,
    request: web.Request,
    url: str,
    body: bytes,
    deployment: Deployment,
    stream: bool,
    started: float,
    headers: CIMultiDict[str] | None = None,
    metered: bool = True,
    relay_errors: bool = False,
    screening: Screening | None = None,
) -> web.StreamResponse:
    """One attempt; raises ConnectFailed before anything was sent, RouterError for 502/504. `headers`: what to
    send instead of the caller's (less the hop-by-hop and credential ones); `metered`: count the answer's
    usage for the deployment's endpoint (the serverless gateway does, not the workspace router in front of it);
    `relay_errors`: pass a 5xx answer on as it is (the gateway's, already in the OpenAI error shape); with a
    screening, the completion is screened on its way back (router/safety/screen.py)."""
    timeout = deployment.limits.timeout_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=timeout)
    try:
        async with asyncio.timeout_at(deadline):
            upstream = await session.post(
                url,
                data=body,
                headers=forward_headers(request.headers, identity=screening is not None)
                if headers is None
                else headers,
                timeout=client_timeout,
            )
    except aiohttp.ClientConnectorError as error:
        raise ConnectFailed(str(error)) from error
    except TimeoutError as error:
        raise _timed_out(deployment) from error
    except aiohttp.ClientError as error:
        raise RouterError(502, f"The model server failed: {type(error).__name__}.", "backend_error") from error
    try:
        if upstream.status >= 500 and not relay_errors:
            raise RouterError(502, f"The model server answered {upstream.status}.", "backend_error")
        if stream and upstream.content_type == "text/event-stream":
            return await relay_stream(request, upstream, deployment.endpoint, started, metered, screening)
        return await relay_whole(upstream, deployment, deadline, metered, screening)
    finally:
        upstream.release()


def _timed_out(deployment: Deployment) -> RouterError:
    return RouterError(
        504,
        f"The model server did not answer within {deployment.limits.timeout_seconds:g} s"
        " (requestSettings.requestTimeoutSeconds).",
        "timeout",
    )


async def relay_whole(
    upstream: aiohttp.ClientResponse,
    deployment: Deployment,
    deadline: float,
    metered: bool = True,
    screening: Screening | None = None,
) -> web.Response:
    try:
        async with asyncio.timeout_at(deadline):
            data = await upstream.read()
    except TimeoutError as error:
        raise _timed_out(deployment) from error
    except aiohttp.ClientError as error:
        raise RouterError(502, f"The model server failed: {type(error).__name__}.", "backend_error") from error
    usage = None
    if metered and upstream.status < 300 and upstream.content_type == "application/json" and b'"usage"' in data:
        with contextlib.suppress(ValueError, AttributeError):
            usage = json.loads(data).get("usage")
            count_usage(deployment.endpoint, usage)
    if screening is not None and upstream.status < 300 and upstream.content_type == "application/json":
        data = await screening.completion(data)
    content_type = upstream.headers.get("Content-Type", "application/json")
    headers = relayed_headers(upstream.headers) | {"Content-Type": content_type}
    response = web.Response(status=upstream.status, body=data, headers=headers)
    response[USAGE] = usage
    return response


async def relay_stream(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    endpoint: str,
    started: float,
    metered: bool = True,
    screening: Screening | None = None,
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=upstream.status,
        headers=relayed_headers(upstream.headers)
        | {"Content-Type": upstream.headers.get("Content-Type", "text/event-stream"), "Cache-Control": "no-cache"},
    )
    await response.prepare(request)
    scanner = UsageScanner(count_chunks=metered)
    screener = screening.stream() if screening is not None else None
    first = True
    try:
        async for chunk in upstream.content.iter_any():
            if first:
                FIRST_TOKEN.labels(endpoint).observe(time.monotonic() - started)
                first = False
            scanner.feed(chunk)  # what the model server produced: metering counts it, screened or not
            passed = await screener.feed(chunk) if screener is not None else chunk
            if passed:
                await response.write(passed)
        if screener is not None:
            await response.write(await screener.close())
        await response.write_eof()
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("stream from %s ended early: %s", endpoint, type(error).__name__)
        upstream.close()
        response.force_close()
    except ConnectionResetError:
        upstream.close()
    if metered:
        count_usage(endpoint, scanner.usage)
        response[USAGE] = scanner.usage
        response[CHUNKS] = scanner.chunks
    return response
