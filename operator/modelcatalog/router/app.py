"""The router's HTTP server: the OpenAI-compatible routes, health, readiness and metrics."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from modelcatalog.router import lifecycle
from modelcatalog.router.auth import Authenticator, Reviewer, credential
from modelcatalog.router.errors import RouterError, rejected
from modelcatalog.router.forward import (
    ENDPOINT_HEADER,
    PIN_HEADER,
    ConnectFailed,
    exchange,
    forward_headers,
    with_served_model,
)
from modelcatalog.router.kubeauth import ServiceAccountToken
from modelcatalog.router.metrics import RETRIES, UNKNOWN, answered, metered
from modelcatalog.router.picker import PodLoad, choose_deployment
from modelcatalog.router.probes import Probes
from modelcatalog.router.safety.config import ContentSafety
from modelcatalog.router.safety.screen import Screening
from modelcatalog.router.settings import RouterSettings
from modelcatalog.router.state import ClusterState, Deployment, Endpoint, Pod, is_serverless

APIS = ("chat/completions", "completions", "embeddings", "rerank")
BACKEND_CONNECTIONS = 1000


class Router(Probes):
    state: ClusterState
    waiting_for = "the first list of the cluster state"

    def __init__(
        self,
        state: ClusterState,
        settings: RouterSettings,
        reviewer: Reviewer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.state = state
        self.settings = settings
        self.auth = Authenticator(state, settings.namespace, reviewer)
        self.rng = rng or random.Random()  # noqa: S311 (traffic split, not security)
        self.load = PodLoad(self.rng)
        self.token = ServiceAccountToken(settings.token_file)  # shown to the serverless gateway
        self.safety = ContentSafety(settings.safety, state, self.rng)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # One connector: aiohttp keeps one keep-alive pool per (host, port), i.e. per backend.
            # No cookie jar: the session is shared by every caller, so a cookie one backend set for one
            # caller must not go out with the next caller's requests (and filtering a jar costs time).
            connector = aiohttp.TCPConnector(limit=BACKEND_CONNECTIONS, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def close(self) -> None:
        await self.safety.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def api(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        label = UNKNOWN
        try:
            given = credential(request.headers)
            if given is None:
                raise RouterError(
                    401, "Provide a key: 'Authorization: Bearer <key>' or 'api-key: <key>'.", "missing_key"
                )
            body = await self._read(request)
            payload = parse_json(body)
            endpoint = self._endpoint(request.match_info.get("endpoint") or _model(payload))
            label = endpoint.name
            request[lifecycle.REQUEST_SLOT] = lifecycle.headers(lifecycle.endpoint_lifecycle(endpoint))
            deployment = self._deployment(endpoint, request.headers.get(PIN_HEADER))
            await self.auth.check(endpoint, deployment, given)
            retired = lifecycle.gone(deployment)
            if retired is not None:
                raise retired
            path = "/v1/" + request.match_info["api"]
            response = await self._forward(request, deployment, path, body, payload, started)
        except RouterError as error:
            response = rejected(error)
        answered(label, response.status, started)
        return response

    async def _read(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as error:
            limit = self.settings.max_body_bytes
            raise RouterError(413, f"The request body is larger than {limit} bytes.", "body_too_large") from error

    def _endpoint(self, name: str) -> Endpoint:
        endpoint = self.state.endpoint(name)
        if endpoint is None:
            raise RouterError(
                404, f"The endpoint {name!r} does not exist in this workspace.", "model_not_found", "model"
            )
        return endpoint

    def _deployment(self, endpoint: Endpoint, pinned: str | None) -> Deployment:
        if pinned:
            deployment = endpoint.deployment(pinned)
            if deployment is None:
                message = f"The endpoint {endpoint.name} has no deployment {pinned!r} ({PIN_HEADER})."
                raise RouterError(404, message, "deployment_not_found")
            return deployment
        chosen = choose_deployment(endpoint.deployments, self._has_ready_pod, self.rng)
        if chosen is None:
            raise RouterError(503, f"The endpoint {endpoint.name} takes no traffic (trafficPercent 0).", "no_traffic")
        return chosen

    def _has_ready_pod(self, deployment: Deployment) -> bool:
        return bool(self.state.ready_pods(deployment.name))

    async def _forward(
        self,
        request: web.Request,
        deployment: Deployment,
        path: str,
        body: bytes,
        payload: dict[str, Any],
        started: float,
    ) -> web.StreamResponse:
        """Least loaded pod first; a refused connection moves on to another pod, at most
        `connect_attempts` pods in all."""
        screening = self.safety.screening(deployment, path)
        if screening is not None:
            await screening.check_prompt(payload)
        if is_serverless(deployment):
            return await self._forward_serverless(request, deployment, path, body, payload, started, screening)
        body = with_served_model(body, payload, deployment)
        stream = payload.get("stream") is True
        tried: set[str] = set()
        for _ in range(self.settings.connect_attempts):
            pod = await self._acquire(deployment, frozenset(tried))
            try:
                url = f"http://{pod.target}{path}"
                return await exchange(
                    self.session, request, url, body, deployment, stream, started, screening=screening
                )
            except ConnectFailed:
                tried.add(pod.target)
                RETRIES.inc()
            finally:
                self.load.release(pod)
        raise RouterError(
            502, f"{len(tried)} model servers of {deployment.name} refused the connection.", "backend_error"
        )

    async def _forward_serverless(
        self,
        request: web.Request,
        deployment: Deployment,
        path: str,
        body: bytes,
        payload: dict[str, Any],
        started: float,
        screening: Screening | None,
    ) -> web.StreamResponse:
        """To the serverless gateway, which meters, limits and forwards to the pool or the upstream provider: the
        caller's key (already checked) is replaced by this router's token, the endpoint named in a header."""
        stream = payload.get("stream") is True
        url = self._gateway_url(deployment, path)
        headers = self._gateway_headers(request, deployment, identity=screening is not None)
        try:
            return await exchange(
                self.session, request, url, body, deployment, stream, started, headers, False, True, screening
            )
        except ConnectFailed as error:
            raise RouterError(502, "The serverless gateway refused the connection.", "backend_error") from error

    def _gateway_url(self, deployment: Deployment, path: str) -> str:
        gateway = self.state.ready_pods(deployment.name)
        if not gateway:
            message = f"The endpoint {deployment.endpoint} has no serverless gateway address yet."
            raise RouterError(503, message, "no_ready_pod")
        return f"http://{gateway[0].target}{path}"

    def _gateway_headers(
        self, request: web.Request, deployment: Deployment, identity: bool = False
    ) -> CIMultiDict[str]:
        token = self.token.get()
        if token is None:
            message = "This router has no ServiceAccount token to show the serverless gateway."
            raise RouterError(503, message, "token_auth_unavailable")
        headers = forward_headers(request.headers, identity)
        headers["Authorization"] = f"Bearer {token}"
        headers[ENDPOINT_HEADER] = deployment.endpoint
        return headers

    async def _acquire(self, deployment: Deployment, tried: frozenset[str]) -> Pod:
        def pods() -> list[Pod]:
            return self.state.ready_pods(deployment.name)

        if not [p for p in pods() if p.target not in tried]:
            if tried:
                message = f"{len(tried)} model servers of {deployment.name} refused the connection."
                raise RouterError(502, message, "backend_error")
            raise RouterError(503, f"The deployment {deployment.name} has no ready model server.", "no_ready_pod")
        limit = deployment.limits.max_concurrent
        pod = await self.load.acquire(pods, limit, self.settings.queue_wait_seconds, tried)
        if pod is None:
            message = (
                f"Every model server of {deployment.name} is busy with {limit} requests"
                " (requestSettings.maxConcurrentRequestsPerInstance); retry later."
            )
            raise RouterError(429, message, "too_many_requests")
        return pod

    async def models(self, request: web.Request) -> web.Response:
        try:
            given = credential(request.headers)
            only = request.match_info.get("endpoint")
            if only is None:
                names = await self.auth.usable_endpoints(given)
            else:
                endpoint = self._endpoint(only)
                await self.auth.check(endpoint, endpoint.deployments[0], given)
                names = [only]
        except RouterError as error:
            return rejected(error)
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "modelcatalog"} for n in names]
        return web.json_response({"object": "list", "data": data})

    async def usage(self, request: web.Request) -> web.Response:
        """The token counts of the endpoints the key opens: a serverless endpoint's from the gateway, which
        meters it; a deployment's from this replica (since it started)."""
        try:
            names = await self.auth.usable_endpoints(credential(request.headers))
            data = [await self._usage(request, name) for name in names]
        except RouterError as error:
            return rejected(error)
        return web.json_response({"object": "list", "data": data})

    async def _usage(self, request: web.Request, name: str) -> dict[str, Any]:
        endpoint = self._endpoint(name)
        deployment = endpoint.deployments[0]
        if not is_serverless(deployment):
            return {"endpoint": name, **metered(name)}
        url = self._gateway_url(deployment, "/v1/usage")
        headers = self._gateway_headers(request, deployment)
        timeout = aiohttp.ClientTimeout(total=deployment.limits.timeout_seconds)
        try:
            async with self.session.get(url, headers=headers, timeout=timeout) as got:
                answer = await got.json(content_type=None)
                if got.status != 200:
                    raise RouterError(502, f"The serverless gateway answered {got.status}.", "backend_error")
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            message = f"The serverless gateway failed: {type(error).__name__}."
            raise RouterError(502, message, "backend_error") from error
        found: dict[str, Any] = answer["data"][0]
        return found


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RouterError(400, f"The body is not valid JSON: {error}", "invalid_json") from error
    if not isinstance(payload, dict):
        raise RouterError(400, "The body must be a JSON object.", "invalid_json")
    return payload


def _model(payload: dict[str, Any]) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise RouterError(400, "Name the endpoint in the `model` field.", "missing_model", "model")
    return model


ROUTER = web.AppKey("router", Router)


def build_app(router: Router) -> web.Application:
    app = web.Application(client_max_size=router.settings.max_body_bytes)
    app[ROUTER] = router
    api = "{api:" + "|".join(APIS) + "}"
    app.router.add_post(f"/v1/{api}", router.api)
    app.router.add_post(f"/endpoints/{{endpoint}}/v1/{api}", router.api)
    app.router.add_get("/v1/models", router.models)
    app.router.add_get("/endpoints/{endpoint}/v1/models", router.models)
    app.router.add_get("/v1/usage", router.usage)
    app.router.add_get("/healthz", router.healthz)
    app.router.add_get("/readyz", router.readyz)
    app.router.add_get("/metrics", router.metrics)
    app.router.add_route("*", "/{tail:.*}", router.not_found)

    async def close(_: web.Application) -> None:
        await router.close()

    app.on_cleanup.append(close)
    app.on_response_prepare.append(lifecycle.add_headers)
    return app
