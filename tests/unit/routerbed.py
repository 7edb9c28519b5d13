"""Test servers and a router (static config) on 127.0.0.1 ports, inside the test's event loop."""

from __future__ import annotations

import dataclasses
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai
from aiohttp import web

from modelcatalog.localcluster import testserver
from modelcatalog.router import static
from modelcatalog.router.app import Router, build_app
from modelcatalog.router.auth import Reviewer
from modelcatalog.router.settings import RouterSettings

HOST = "127.0.0.1"
KEYS = {"chat": ("chat-primary", "chat-secondary"), "embed": ("embed-primary", "embed-secondary")}


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields "127.0.0.1:<port>"."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"{host}:{port}"
    finally:
        await runner.cleanup()


def closed_port() -> str:
    """A loopback address where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return f"{HOST}:{sock.getsockname()[1]}"


def endpoint(name: str, deployments: list[dict[str, Any]], keys: tuple[str, str] | None = None) -> dict[str, Any]:
    primary, secondary = keys or KEYS[name]
    return {"name": name, "keys": {"primary": primary, "secondary": secondary}, "deployments": deployments}


def deployment(name: str, backends: list[str], weight: int = 100, **settings: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "trafficPercent": weight, "backends": backends}
    if settings:
        entry["requestSettings"] = settings
    return entry


@dataclasses.dataclass
class Bed:
    router: Router
    url: str

    def client(self, key: str = KEYS["chat"][0], **headers: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"http://{self.url}/v1", api_key=key, max_retries=0, timeout=30, default_headers=headers or None
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        static.apply(config, self.router.state)

    async def post(self, path: str, body: Any, key: str | None = KEYS["chat"][0], **headers: str) -> tuple[int, Any]:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        data = body if isinstance(body, bytes) else None
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://{self.url}{path}", data=data, json=None if data else body, headers=headers) as r,
        ):
            text = await r.text()
            return r.status, (await r.json(content_type=None)) if text.startswith("{") else text

    async def get(self, path: str, key: str | None = None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with aiohttp.ClientSession() as session, session.get(f"http://{self.url}{path}", headers=headers) as r:
            return r.status, await r.text()


@asynccontextmanager
async def router_bed(
    config: dict[str, Any], reviewer: Reviewer | None = None, seed: int = 7, **settings: Any
) -> AsyncIterator[Bed]:
    router = Router(
        static.apply(config),
        dataclasses.replace(RouterSettings(), **settings),
        reviewer,
        random.Random(seed),  # noqa: S311
    )
    async with serving(build_app(router)) as url:
        yield Bed(router, url)


@asynccontextmanager
async def backends(count: int) -> AsyncIterator[list[str]]:
    """`count` test servers; their stats at GET /test/stats."""
    async with serving(testserver.build_app()) as first:
        if count == 1:
            yield [first]
        else:
            async with backends(count - 1) as rest:
                yield [first, *rest]


async def stats(address: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}/test/stats") as r:
        result: dict[str, Any] = await r.json()
        return result
