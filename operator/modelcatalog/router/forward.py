"""Sending one request to one model-server pod and relaying its answer (streams chunk by chunk)."""

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
from modelcatalog.router.metrics import FIRST_TOKEN, count_usage
from modelcatalog.router.safety.screen import Screening
from modelcatalog.router.settings import CONNECT_TIMEOUT_SECONDS
from modelcatalog.router.state import Deployment, Pod

log = logging.getLogger(__name__)

PIN_HEADER = "x-modelcatalog-deployment"
NOT_FORWARDED = frozenset(
    h.lower()
    for h in (
        "Host", "Content-Length", "Authorization", "api-key", "Connection", "Keep-Alive", "Transfer-Encoding",
        "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Accept-Encoding", PIN_HEADER,
    )
)  # fmt: skip
MAX_PARTIAL_LINE = 1024 * 1024


class ConnectFailed(Exception):
    """No connection to the pod (refused, unreachable): nothing was sent, another pod may be tried."""


def forward_headers(headers: CIMultiDictProxy[str], identity: bool = False) -> CIMultiDict[str]:
    """The caller's headers for the backend; `identity`: ask for an uncompressed answer (to screen its text)."""
    forwarded = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in NOT_FORWARDED)
    if identity:
        forwarded["Accept-Encoding"] = "identity"
    return forwarded


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

    def __init__(self) -> None:
        self.usage: Any = None
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()[-MAX_PARTIAL_LINE:]
        for line in lines:
            if b'"usage"' in line and line.startswith(b"data:"):
                self._read(line[5:])

    def _read(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        if isinstance(event, dict) and event.get("usage"):
            self.usage = event["usage"]


async def exchange(
    session: aiohttp.ClientSession,
    request: web.Request,
    pod: Pod,
    path: str,
    body: bytes,
    deployment: Deployment,
    stream: bool,
    started: float,
    screening: Screening | None = None,
) -> web.StreamResponse:
    """One attempt; raises ConnectFailed before anything was sent, RouterError for 502/504. With a screening,
    the completion is screened on its way back (router/safety/screen.py)."""
    timeout = deployment.limits.timeout_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=timeout)
    try:
        async with asyncio.timeout_at(deadline):
            upstream = await session.post(
                f"http://{pod.target}{path}",
                data=body,
                headers=forward_headers(request.headers, identity=screening is not None),
                timeout=client_timeout,
            )
    except aiohttp.ClientConnectorError as error:
        raise ConnectFailed(str(error)) from error
    except TimeoutError as error:
        raise _timed_out(deployment) from error
    except aiohttp.ClientError as error:
        raise RouterError(502, f"The model server failed: {type(error).__name__}.", "backend_error") from error
    try:
        if upstream.status >= 500:
            raise RouterError(502, f"The model server answered {upstream.status}.", "backend_error")
        if stream and upstream.content_type == "text/event-stream":
            return await relay_stream(request, upstream, deployment.endpoint, started, screening)
        return await relay_whole(upstream, deployment, deadline, screening)
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
    upstream: aiohttp.ClientResponse, deployment: Deployment, deadline: float, screening: Screening | None = None
) -> web.Response:
    try:
        async with asyncio.timeout_at(deadline):
            data = await upstream.read()
    except TimeoutError as error:
        raise _timed_out(deployment) from error
    except aiohttp.ClientError as error:
        raise RouterError(502, f"The model server failed: {type(error).__name__}.", "backend_error") from error
    if upstream.status < 300 and upstream.content_type == "application/json" and b'"usage"' in data:
        with contextlib.suppress(ValueError, AttributeError):
            count_usage(deployment.endpoint, json.loads(data).get("usage"))
    if screening is not None and upstream.status < 300 and upstream.content_type == "application/json":
        data = await screening.completion(data)
    content_type = upstream.headers.get("Content-Type", "application/json")
    return web.Response(status=upstream.status, body=data, headers={"Content-Type": content_type})


async def relay_stream(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    endpoint: str,
    started: float,
    screening: Screening | None = None,
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=upstream.status,
        headers={
            "Content-Type": upstream.headers.get("Content-Type", "text/event-stream"),
            "Cache-Control": "no-cache",
        },
    )
    await response.prepare(request)
    scanner = UsageScanner()
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
    count_usage(endpoint, scanner.usage)
    return response
