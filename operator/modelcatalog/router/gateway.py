"""The serverless gateway: `python -m modelcatalog.router --mode gateway`, run by the operator in the serverless
namespace (render/gateway.py says why it exists).

Every serverless request goes: client -> workspace router (the endpoint's key) -> gateway -> pool or upstream
provider. The workspace router replaces the caller's key with its own ServiceAccount token and names the
endpoint in ENDPOINT_HEADER; the gateway takes the endpoint's namespace from the token (gatewayauth.py),
reads the endpoint's backend from its watch of every namespace's ServerlessEndpoints (status.backend,
written by the operator), and forwards:

- to a pool: the pool Service's ClusterIP:port in the status;
- upstream: `<MODELCATALOG_SERVERLESS_UPSTREAM_URL>/v1/<api>` with `Authorization: Bearer <credential>`,
  the credential read from the Secret MODELCATALOG_SERVERLESS_UPSTREAM_SECRET (key `apiKey`) in the gateway's
  own namespace; never logged, never in a response.

Either way `model` becomes the served model's name, a stream asks for its `usage` chunk, and the usage is
metered (router/metrics.py) under `<namespace>/<endpoint>`. `GET /v1/usage` answers for the named endpoint.
Gateway.serve is the one place of that pipeline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from redis.exceptions import RedisError

from modelcatalog import API_VERSION
from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.render.gateway import UPSTREAM_KEY
from modelcatalog.router import limits, watch
from modelcatalog.router.app import APIS, BACKEND_CONNECTIONS, parse_json
from modelcatalog.router.auth import credential
from modelcatalog.router.errors import RouterError, error_response, rejected
from modelcatalog.router.forward import (
    ENDPOINT_HEADER,
    ConnectFailed,
    exchange,
    forward_headers,
    with_served_model,
    with_usage_reported,
)
from modelcatalog.router.gatewayauth import GatewayAuth
from modelcatalog.router.kubeauth import KubeReviewer
from modelcatalog.router.metrics import UNKNOWN, answered, metered
from modelcatalog.router.probes import Probes
from modelcatalog.router.settings import RouterSettings
from modelcatalog.router.state import SERVERLESS_PREFIX, Deployment, Metering, metering_from_object
from modelcatalog.router.store import Store

log = logging.getLogger(__name__)

POOL = "Pool"
UPSTREAM = "Upstream"
CREDENTIAL_REREAD_SECONDS = 30.0  # a rotated upstream credential is used within this many seconds


@dataclass(frozen=True)
class GatewayEndpoint:
    """A ServerlessEndpoint the operator accepted: where its requests go (status.backend)."""

    namespace: str
    name: str
    kind: str  # Pool or Upstream
    served_model: str
    meter: Metering  # its limits and prices, from its status
    pool_address: str | None = None  # host:port of the pool's Service

    @property
    def key(self) -> str:
        """The metering key: endpoint names repeat across workspaces."""
        return f"{self.namespace}/{self.name}"

    @property
    def deployment(self) -> Deployment:
        return Deployment(name=SERVERLESS_PREFIX + self.key, endpoint=self.key, served_model=self.served_model)


def endpoint_from_object(obj: dict[str, Any]) -> GatewayEndpoint | None:
    """None for a refused endpoint, one being deleted, or one the operator has not accepted yet."""
    meta = obj.get("metadata") or {}
    backend = (obj.get("status") or {}).get("backend") or {}
    model = backend.get("servedModel") or (obj.get("spec") or {}).get("model")
    if backend.get("kind") not in (POOL, UPSTREAM) or not model or meta.get("deletionTimestamp"):
        return None
    address = backend.get("address")
    valid = isinstance(address, str) and address.rpartition(":")[2].isdigit()
    meter = metering_from_object(obj)
    pool = address if valid else None
    return GatewayEndpoint(meta["namespace"], meta["name"], backend["kind"], str(model), meter, pool)


@dataclass
class GatewayState:
    endpoints: dict[tuple[str, str], GatewayEndpoint] = field(default_factory=dict)
    synced: bool = False

    def upsert(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        found = endpoint_from_object(obj)
        if found is None:
            self.endpoints.pop((meta.get("namespace"), meta["name"]), None)
        else:
            self.endpoints[(found.namespace, found.name)] = found

    def delete(self, obj: dict[str, Any]) -> None:
        self.endpoints.pop((obj["metadata"].get("namespace"), obj["metadata"]["name"]), None)

    def get(self, namespace: str, name: str) -> GatewayEndpoint | None:
        return self.endpoints.get((namespace, name))


def source() -> watch.Source[GatewayState]:
    return watch.Source(
        "serverlessendpoints",
        f"/apis/{API_VERSION}/serverlessendpoints",
        None,
        GatewayState.upsert,
        GatewayState.delete,
        lambda s: s.endpoints.clear(),
    )


async def watch_endpoints(client: KubeClient, state: GatewayState) -> None:
    await watch.run_sources(client, state, [source()], "every namespace (ServerlessEndpoints)")


class UpstreamCredential:
    """The upstream provider's API key from its Secret, re-read every `ttl` seconds; None when unreadable."""

    def __init__(
        self,
        client: KubeClient | None,
        namespace: str,
        secret: str | None,
        ttl: float = CREDENTIAL_REREAD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.secret = secret
        self.ttl = ttl
        self.clock = clock
        self._value: str | None = None
        self._read_at = -math.inf

    async def get(self) -> str | None:
        if self.client is None or not self.secret:
            return None
        if self.clock() - self._read_at >= self.ttl:
            self._value = await self._read(self.client, self.secret)
            self._read_at = self.clock()
        return self._value

    async def _read(self, client: KubeClient, secret: str) -> str | None:
        try:
            found = await client.get("v1", "Secret", secret, self.namespace)
        except (ApiError, OSError, TimeoutError) as error:
            log.warning("cannot read the upstream credential Secret %s: %s", secret, type(error).__name__)
            return self._value  # keep the last good one through an API server hiccup
        encoded = ((found or {}).get("data") or {}).get(UPSTREAM_KEY)
        try:
            value = base64.b64decode(encoded).decode().strip() if isinstance(encoded, str) else ""
        except (binascii.Error, UnicodeDecodeError):
            value = ""
        if not value:
            log.warning("the upstream credential Secret %s has no key %r", secret, UPSTREAM_KEY)
        return value or None


class Gateway(Probes):
    state: GatewayState
    waiting_for = "the first list of the ServerlessEndpoints"

    def __init__(
        self, state: GatewayState, settings: RouterSettings, auth: GatewayAuth, upstream: UpstreamCredential
    ) -> None:
        self.state = state
        self.settings = settings
        self.auth = auth
        self.upstream = upstream
        store = Store(settings.store) if settings.store is not None else None
        self.meter = limits.Meter(store, settings.store_fail_open, settings.default_max_tokens)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # as the router's: one keep-alive pool per backend, no cookie jar
            connector = aiohttp.TCPConnector(limit=BACKEND_CONNECTIONS, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.meter.close()

    async def endpoint(self, request: web.Request) -> GatewayEndpoint:
        """The endpoint the calling workspace router names, in the router's own namespace."""
        namespace = await self.auth.workspace(credential(request.headers))
        name = request.headers.get(ENDPOINT_HEADER, "")
        found = self.state.get(namespace, name) if name else None
        if found is None:
            raise RouterError(
                404, f"No serverless endpoint {name!r} is served in namespace {namespace}.", "model_not_found"
            )
        return found

    async def api(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        label = UNKNOWN
        try:
            endpoint = await self.endpoint(request)
            label = endpoint.key
            body = await request.read()
            response = await self.serve(request, endpoint, "/v1/" + request.match_info["api"], body, started)
        except RouterError as error:
            response = rejected(error)
        answered(label, response.status, started)
        return response

    async def serve(
        self, request: web.Request, endpoint: GatewayEndpoint, path: str, body: bytes, started: float
    ) -> web.StreamResponse:
        """The serverless pipeline, pool and upstream alike: the rate limits admit the request (reserving its
        tokens) and settle it with the tokens the backend reported once the response has ended."""
        payload = parse_json(body)
        admission = await self.meter.admit(request, endpoint.name, endpoint.meter, body, payload)
        try:
            response = await self.forward(request, endpoint, path, body, payload, started)
        except BaseException:
            await self.meter.settle(admission, None)  # the reservation goes back
            raise
        await self.meter.settle(admission, response)
        return response

    async def forward(
        self,
        request: web.Request,
        endpoint: GatewayEndpoint,
        path: str,
        body: bytes,
        payload: dict[str, Any],
        started: float,
    ) -> web.StreamResponse:
        """To the pool or the upstream provider, with the served model's name, a stream asking for its usage."""
        reported = with_usage_reported(body, payload)  # metered per token: a stream must carry its usage
        if reported is not body:
            body, payload = reported, json.loads(reported)
        deployment = endpoint.deployment
        body = with_served_model(body, payload, deployment)
        url, headers = await self.target(request, endpoint, path)
        try:
            return await exchange(
                self.session, request, url, body, deployment, payload.get("stream") is True, started, headers
            )
        except ConnectFailed as error:
            where = f"the model pool of {endpoint.served_model}" if endpoint.kind == POOL else "the upstream provider"
            raise RouterError(502, f"No connection to {where}.", "backend_error") from error

    async def target(self, request: web.Request, endpoint: GatewayEndpoint, path: str) -> tuple[str, CIMultiDict[str]]:
        """Where to send the request, and the headers: the caller's, less the router's token and the
        endpoint's name, plus the upstream credential for an upstream backend."""
        headers = forward_headers(request.headers)
        if endpoint.kind == POOL:
            if endpoint.pool_address is None:
                raise RouterError(503, f"The model pool of {endpoint.served_model} has no address yet.", "no_ready_pod")
            return f"http://{endpoint.pool_address}{path}", headers
        if not self.settings.upstream_url:
            message = "The platform has no upstream provider (MODELCATALOG_SERVERLESS_UPSTREAM_URL)."
            raise RouterError(503, message, "no_upstream")
        key = await self.upstream.get()
        if key is None:
            message = (
                f"The upstream credential is not readable: the platform team puts it in key {UPSTREAM_KEY!r} of"
                f" the Secret {self.settings.upstream_secret or '(MODELCATALOG_SERVERLESS_UPSTREAM_SECRET unset)'}."
            )
            raise RouterError(503, message, "upstream_credential_missing")
        headers["Authorization"] = f"Bearer {key}"
        return self.settings.upstream_url.rstrip("/") + path, headers

    async def usage(self, request: web.Request) -> web.Response:
        """The named endpoint's counts (this replica's, since it started) and, from the store, today's and this
        month's requests, tokens and cost."""
        try:
            endpoint = await self.endpoint(request)
        except RouterError as error:
            return rejected(error)
        try:
            stored = await self.meter.usage(endpoint.name, endpoint.meter) or {}
        except (RedisError, OSError):
            return error_response(RouterError(503, "The usage store is unavailable; retry later.", "store_unavailable"))
        data = [{"endpoint": endpoint.name, **metered(endpoint.key), **stored}]
        return web.json_response({"object": "list", "data": data})


def build_app(gateway: Gateway) -> web.Application:
    app = web.Application(client_max_size=gateway.settings.max_body_bytes)
    api = "{api:" + "|".join(APIS) + "}"
    app.router.add_post(f"/v1/{api}", gateway.api)
    app.router.add_get("/v1/usage", gateway.usage)
    app.router.add_get("/healthz", gateway.healthz)
    app.router.add_get("/readyz", gateway.readyz)
    app.router.add_get("/metrics", gateway.metrics)
    app.router.add_route("*", "/{tail:.*}", gateway.not_found)
    app.on_response_prepare.append(limits.add_headers)

    async def close(_: web.Application) -> None:
        await gateway.close()

    app.on_cleanup.append(close)
    return app


def start(settings: RouterSettings) -> tuple[web.Application, asyncio.Task[None]]:
    """The gateway's app and its watch, logged in as its ServiceAccount (watch.kube_client)."""
    client = watch.kube_client(settings)
    state = GatewayState()
    upstream = UpstreamCredential(client, settings.namespace, settings.upstream_secret)
    gateway = Gateway(state, settings, GatewayAuth(KubeReviewer(client)), upstream)
    app = build_app(gateway)

    async def close(_: web.Application) -> None:
        await client.close()

    app.on_cleanup.append(close)
    return app, asyncio.create_task(watch_endpoints(client, state))
