"""The router's OpenAI-compatible API through the real openai client: answers, streams, keys, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from aiohttp import web

from tests.unit.routerbed import KEYS, backends, deployment, endpoint, router_bed, serving, stats

TIMEOUT = 30


def config(chat: list[str], embed: list[str]) -> dict[str, Any]:
    return {
        "endpoints": [
            endpoint("chat", [deployment("chat-a", chat)]),
            endpoint("embed", [deployment("embed-a", embed)]),
        ]
    }


async def test_chat_completion_comes_back_with_usage() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        reply = await bed.client().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "one two three"}]
        )
    assert reply.choices[0].message.content == "three two one"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (3, 3)


async def test_completions_embeddings_and_rerank_pass_through() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        completion = await bed.client().completions.create(model="chat", prompt="a b", max_tokens=1)
        vectors = await bed.client(KEYS["embed"][0]).embeddings.create(model="embed", input=["x", "y"])
        status, ranked = await bed.post(
            "/v1/rerank", {"model": "embed", "query": "red fox", "documents": ["blue", "red fox"]}, KEYS["embed"][0]
        )
    assert completion.choices[0].text == "b"
    assert len(vectors.data) == 2
    assert len(vectors.data[0].embedding) == 8
    assert status == 200
    assert ranked["results"][0]["index"] == 1


async def test_stream_arrives_in_chunks_with_usage() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        stream = await bed.client().chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "w1 w2 w3 w4"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        served = await stats(b)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "w4 w3 w2 w1"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert served["completion_tokens"] == 4


async def test_stream_is_relayed_before_the_backend_finishes() -> None:
    """The backend sends one chunk, then waits for the test to have received it through the router:
    a router that buffered the stream would never deliver it (the test fails at its timeout)."""
    first_seen = asyncio.Event()

    async def held_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"index": 0, "delta": {"content": "first"}}]}\n\n')
        await asyncio.wait_for(first_seen.wait(), TIMEOUT)
        await response.write(b'data: {"choices": [{"index": 0, "delta": {"content": "second"}}]}\n\n')
        await response.write(b"data: [DONE]\n\n")
        return response

    backend = web.Application()
    backend.router.add_post("/v1/chat/completions", held_stream)
    async with serving(backend) as b, router_bed(config([b], [b])) as bed:
        stream = await bed.client().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], stream=True
        )
        seen = []
        async with asyncio.timeout(TIMEOUT):
            async for chunk in stream:
                seen.append(chunk.choices[0].delta.content)
                first_seen.set()
    assert seen == ["first", "second"]


async def test_models_lists_the_endpoints_this_key_opens() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        chat_models = await bed.client().models.list()
        embed_models = await bed.client(KEYS["embed"][1]).models.list()
        status, _ = await bed.get("/v1/models", "nobody")
    assert [m.id for m in chat_models.data] == ["chat"]
    assert [m.id for m in embed_models.data] == ["embed"]
    assert status == 401


async def test_path_form_names_the_endpoint() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        status, reply = await bed.post("/endpoints/chat/v1/chat/completions", {"messages": [{"content": "p q"}]})
    assert status == 200
    assert reply["choices"][0]["message"]["content"] == "q p"


async def test_keys_wrong_other_endpoints_and_secondary() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        with pytest.raises(openai.AuthenticationError) as wrong:
            await bed.client("not-a-key").chat.completions.create(model="chat", messages=[])
        with pytest.raises(openai.AuthenticationError):
            await bed.client(KEYS["embed"][0]).chat.completions.create(model="chat", messages=[])
        status_api_key, _ = await bed.post("/v1/chat/completions", {"model": "chat", "messages": []}, None,
                                           **{"api-key": KEYS["chat"][1]})  # fmt: skip
        secondary = await bed.client(KEYS["chat"][1]).chat.completions.create(model="chat", messages=[])
    assert wrong.value.status_code == 401
    assert wrong.value.body is not None and "not-a-key" not in json.dumps(wrong.value.body)
    assert status_api_key == 200
    assert secondary.choices[0].message.content == "ok"


async def test_rotated_key_is_refused_without_restart() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        await bed.client().chat.completions.create(model="chat", messages=[])
        rotated = {"endpoints": [endpoint("chat", [deployment("chat-a", [b])], ("new-primary", KEYS["chat"][1]))]}
        bed.reconfigure(rotated)
        with pytest.raises(openai.AuthenticationError):
            await bed.client(KEYS["chat"][0]).chat.completions.create(model="chat", messages=[])
        reply = await bed.client("new-primary").chat.completions.create(model="chat", messages=[])
    assert reply.choices[0].message.content == "ok"


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "code"),
    [
        ("/v1/chat/completions", b"{not json", KEYS["chat"][0], 400, "invalid_json"),
        ("/v1/chat/completions", {"messages": []}, KEYS["chat"][0], 400, "missing_model"),
        ("/v1/chat/completions", {"model": "nope"}, KEYS["chat"][0], 404, "model_not_found"),
        ("/v1/chat/completions", {"model": "chat"}, None, 401, "missing_key"),
        ("/v1/chat/completions", {"model": "chat", "pad": "x" * 2000}, KEYS["chat"][0], 413, "body_too_large"),
        ("/v2/anything", {}, KEYS["chat"][0], 404, "not_found"),
    ],
)
async def test_errors_have_the_openai_shape(path: str, body: Any, key: str | None, status: int, code: str) -> None:
    async with backends(1) as [b], router_bed(config([b], [b]), max_body_bytes=1024) as bed:
        got, payload = await bed.post(path, body, key)
    assert got == status
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert payload["error"]["code"] == code


async def test_health_readiness_and_metrics() -> None:
    async with backends(1) as [b], router_bed(config([b], [b])) as bed:
        await bed.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "a b"}])
        health, _ = await bed.get("/healthz")
        ready, _ = await bed.get("/readyz")
        bed.router.state.synced = False
        not_ready, _ = await bed.get("/readyz")
        _, metrics = await bed.get("/metrics")
    assert (health, ready, not_ready) == (200, 200, 503)
    assert 'modelcatalog_router_requests_total{endpoint="chat",status="200"}' in metrics
    assert 'modelcatalog_router_tokens_total{endpoint="chat",kind="prompt"}' in metrics
    assert "modelcatalog_router_request_seconds_bucket" in metrics
