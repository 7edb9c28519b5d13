"""Serverless requests: the workspace router checks the endpoint's key and hands the request to the serverless gateway
with its own ServiceAccount token; the gateway takes the workspace from the token, meters, and forwards to the pool or
the upstream provider (with the provider's credential, which the workspace router never holds)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiohttp
import openai
import pytest

from modelcatalog.kube.client import KubeClient
from modelcatalog.localcluster import testserver
from modelcatalog.render.keys import Keys
from modelcatalog.router import gateway
from modelcatalog.router.auth import User, VerdictCache
from modelcatalog.router.errors import RouterError
from modelcatalog.router.forward import ENDPOINT_HEADER
from modelcatalog.router.gatewayauth import GatewayAuth, router_namespace
from modelcatalog.router.settings import RouterSettings
from modelcatalog.router.state import ClusterState, serverless_from_object
from tests.unit.routerbed import backends, router_bed, serving

KEY = "serverless-key"
ROUTER_TOKEN = "team-a-router-token"
OTHER_ROUTER_TOKEN = "team-b-router-token"
NOTEBOOK_TOKEN = "team-a-notebook-token"
PROVIDER_KEY = "provider-credential"


class FakeReviewer:
    """The API server's TokenReview verdicts for the tokens above; counts the reviews asked."""

    users = {
        ROUTER_TOKEN: User("system:serviceaccount:team-a:modelcatalog-router"),
        OTHER_ROUTER_TOKEN: User("system:serviceaccount:team-b:modelcatalog-router"),
        NOTEBOOK_TOKEN: User("system:serviceaccount:team-a:default"),
    }

    def __init__(self) -> None:
        self.reviews = 0

    async def authenticate(self, token: str) -> User | None:
        self.reviews += 1
        return self.users.get(token)

    async def authorize(self, user: User, namespace: str, deployment: str) -> bool:
        return False


class FakeSecrets:
    """The upstream credential Secret, as the API server returns it."""

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if (kind, name, namespace) != ("Secret", "provider", "modelcatalog-serverless"):
            return None
        return {"data": {"apiKey": base64.b64encode(PROVIDER_KEY.encode()).decode()}}


def endpoint_object(namespace: str, name: str, kind: str = "Pool", **backend: str) -> dict[str, Any]:
    status = {"backend": {"kind": kind, "servedModel": "phi", **backend}}
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"model": "phi"}, "status": status}


@asynccontextmanager
async def gateway_at(objects: list[dict[str, Any]], **settings: Any) -> AsyncIterator[str]:
    state = gateway.GatewayState(synced=True)
    for obj in objects:
        state.upsert(obj)
    config = dataclasses.replace(RouterSettings(namespace="modelcatalog-serverless", mode="gateway"), **settings)
    client = cast(KubeClient, FakeSecrets())
    upstream = gateway.UpstreamCredential(client, config.namespace, config.upstream_secret)
    app = gateway.build_app(gateway.Gateway(state, config, GatewayAuth(FakeReviewer()), upstream))
    async with serving(app) as url:
        yield url


@asynccontextmanager
async def workspace_router(gateway_url: str, tmp_path: Path, endpoint: str = "chat") -> AsyncIterator[Any]:
    token_file = tmp_path / "token"
    token_file.write_text(ROUTER_TOKEN)
    async with router_bed({"endpoints": []}, namespace="team-a", token_file=token_file) as bed:
        found = serverless_from_object(endpoint_object("team-a", endpoint, gateway=gateway_url))
        assert found is not None
        bed.router.state.set_serverless(found)
        bed.router.state.set_keys(endpoint, Keys(KEY, "other"))
        yield bed


async def call_gateway(url: str, path: str, token: str | None, endpoint: str = "chat") -> int:
    headers = {ENDPOINT_HEADER: endpoint} | ({"Authorization": f"Bearer {token}"} if token else {})
    body = {"model": "phi", "messages": [{"role": "user", "content": "a b"}]}
    async with aiohttp.ClientSession() as session:
        if path == "/v1/usage":
            async with session.get(f"http://{url}{path}", headers=headers) as got:
                return got.status
        async with session.post(f"http://{url}{path}", json=body, headers=headers) as got:
            return got.status


def test_the_router_serves_accepted_endpoints_through_the_gateway_address_in_their_status() -> None:
    pool = serverless_from_object(endpoint_object("a", "p", address="127.2.0.9:80", gateway="127.3.0.4:80"))
    upstream = serverless_from_object(endpoint_object("a", "u", kind="Upstream", gateway="127.3.0.4:80"))
    assert pool is not None and upstream is not None and pool.address == upstream.address == "127.3.0.4:80"
    refused = {"metadata": {"name": "b"}, "spec": {"model": "phi"}, "status": {"phase": "Failed"}}
    assert serverless_from_object(refused) is None
    starting = serverless_from_object(endpoint_object("a", "d"))
    assert starting is not None
    state = ClusterState()
    for found in (pool, upstream, starting):
        state.set_serverless(found)
    assert state.endpoint_names() == ["d", "p", "u"]
    assert [p.target for p in state.ready_pods("serverless:p")] == ["127.3.0.4:80"]  # never the pool's own address
    assert state.ready_pods("serverless:d") == []


def test_only_a_workspace_routers_service_account_is_a_router_and_its_namespace_is_the_tokens() -> None:
    assert router_namespace(User("system:serviceaccount:team-a:modelcatalog-router")) == "team-a"
    for name in (
        "system:serviceaccount:team-a:default",
        "system:serviceaccount::modelcatalog-router",
        "system:serviceaccount:team-a:modelcatalog-router:extra",
        "modelcatalog-router",
        "alice",
    ):
        assert router_namespace(User(name)) is None, name
    assert router_namespace(None) is None


async def test_the_gateway_reviews_a_token_once_per_ttl_and_refuses_who_is_not_a_router() -> None:
    reviewer = FakeReviewer()
    now = [0.0]
    auth = GatewayAuth(reviewer, VerdictCache(ttl=10, clock=lambda: now[0]))
    assert await auth.workspace(ROUTER_TOKEN) == "team-a"
    assert await auth.workspace(ROUTER_TOKEN) == "team-a" and reviewer.reviews == 1  # cached by digest
    now[0] = 11
    assert await auth.workspace(ROUTER_TOKEN) == "team-a" and reviewer.reviews == 2  # reviewed again
    for token, status in [(None, 401), ("forged", 401), (NOTEBOOK_TOKEN, 403)]:
        with pytest.raises(RouterError) as refused:
            await auth.workspace(token)
        assert refused.value.status == status
    assert ROUTER_TOKEN not in json.dumps(list(auth.cache._entries))  # digests, never the token


async def test_a_serverless_endpoint_answers_through_the_gateway_which_meters_it(tmp_path: Path) -> None:
    async with backends(1) as [pool]:
        endpoints = [endpoint_object("team-a", "metered-chat", address=pool)]
        async with gateway_at(endpoints) as gateway_url, workspace_router(gateway_url, tmp_path, "metered-chat") as bed:
            client = bed.client(KEY)
            reply = await client.chat.completions.create(
                model="metered-chat", messages=[{"role": "user", "content": "a b c"}]
            )
            assert reply.model == "phi" and reply.usage is not None
            stream = await client.chat.completions.create(
                model="metered-chat", messages=[{"role": "user", "content": "a b"}], stream=True
            )
            chunks = [chunk async for chunk in stream]  # no include_usage asked: the gateway asks for it
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "b a"
            assert chunks[-1].usage is not None
            status, text = await bed.get("/v1/usage", KEY)  # answered by the gateway, which metered both
            (entry,) = json.loads(text)["data"]
            assert status == 200 and entry["endpoint"] == "metered-chat" and entry["requests"] == 2
            assert entry["prompt_tokens"] == reply.usage.prompt_tokens + chunks[-1].usage.prompt_tokens
            assert (await bed.get("/v1/usage", "wrong"))[0] == 401
            with pytest.raises(openai.RateLimitError) as limited:
                await bed.client(KEY, **{"x-test-status": "429"}).chat.completions.create(
                    model="metered-chat", messages=[]
                )
            # a limit's answer reaches the caller with the headers it acts on, through router and gateway
            assert limited.value.response.headers["retry-after"] == "1"
            assert limited.value.response.headers["x-ratelimit-remaining-requests"] == "0"
            with pytest.raises(openai.AuthenticationError):
                await bed.client("wrong").chat.completions.create(model="metered-chat", messages=[])


async def test_the_gateway_refuses_callers_that_are_not_routers_and_routers_of_other_workspaces() -> None:
    async with backends(1) as [pool], gateway_at([endpoint_object("team-a", "chat", address=pool)]) as url:
        assert await call_gateway(url, "/v1/chat/completions", ROUTER_TOKEN) == 200
        assert await call_gateway(url, "/v1/chat/completions", None) == 401
        assert await call_gateway(url, "/v1/chat/completions", "forged") == 401
        assert await call_gateway(url, "/v1/chat/completions", NOTEBOOK_TOKEN) == 403
        # team-b's router names team-a's endpoint: the namespace comes from its token, and team-b has no "chat"
        assert await call_gateway(url, "/v1/chat/completions", OTHER_ROUTER_TOKEN) == 404
        assert await call_gateway(url, "/v1/usage", OTHER_ROUTER_TOKEN) == 404
        assert await call_gateway(url, "/v1/usage", NOTEBOOK_TOKEN) == 403


async def test_an_upstream_endpoint_goes_to_the_provider_with_the_credential_and_the_served_model(
    tmp_path: Path,
) -> None:
    async with serving(testserver.build_app(api_key=PROVIDER_KEY)) as provider:
        upstream = {"upstream_url": f"http://{provider}", "upstream_secret": "provider"}
        endpoints = [endpoint_object("team-a", "api-chat", kind="Upstream")]
        async with (
            gateway_at(endpoints, **upstream) as gateway_url,
            workspace_router(gateway_url, tmp_path, "api-chat") as bed,
        ):
            client = bed.client(KEY)
            reply = await client.chat.completions.create(
                model="api-chat", messages=[{"role": "user", "content": "x y"}]
            )
            assert reply.model == "phi" and reply.choices[0].message.content == "y x"
            stream = await client.chat.completions.create(
                model="api-chat", messages=[{"role": "user", "content": "x y"}], stream=True
            )
            assert [chunk async for chunk in stream][-1].usage is not None
        url = f"http://{provider}/v1/chat/completions"
        async with aiohttp.ClientSession() as session, session.post(url, json={"model": "phi"}) as got:
            assert got.status == 401  # the provider really checks the credential
        async with gateway_at(endpoints, upstream_url=f"http://{provider}") as no_secret:
            assert await call_gateway(no_secret, "/v1/chat/completions", ROUTER_TOKEN, "api-chat") == 503
