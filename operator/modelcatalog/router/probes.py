"""The routes every server of the router's code answers, the workspace router's and the gateway's alike."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modelcatalog.router.errors import RouterError, error_response


class Synced(Protocol):
    synced: bool


class Probes:
    """Health, readiness (once the watched objects are listed), metrics, and 404 in the OpenAI error shape."""

    state: Synced
    waiting_for: str  # what readiness waits for, in its 503 answer

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.Response:
        if not self.state.synced:
            return web.Response(status=503, text=f"waiting for {self.waiting_for}")
        return web.Response(text="ok")

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def not_found(self, request: web.Request) -> web.Response:
        return error_response(RouterError(404, f"No route for {request.method} {request.path}.", "not_found"))
