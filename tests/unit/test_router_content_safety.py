"""Content safety in the router's request path, through the real openai client: a router (static config) in
front of test servers on loopback ports."""

from __future__ import annotations

import gzip
import json
from typing import Any

import openai
import pytest
from aiohttp import web

from modelcatalog.router.safety.settings import SafetySettings
from tests.unit.routerbed import backends, closed_port, deployment, endpoint, router_bed, serving, stats

UNSAFE_REPLY = {"x-test-reply": "Sure. I will kill you now."}


def config(backend: str, screened: bool = True, threshold: str | None = None) -> dict[str, Any]:
    entry = deployment("chat-a", [backend])
    if screened:
        entry["contentSafety"] = "Enabled"
    if threshold:
        entry["contentSafetyThreshold"] = threshold
    return {"endpoints": [endpoint("chat", [entry])]}


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_a_blocked_prompt_is_a_400_content_filter_that_never_reaches_the_model_server() -> None:
    async with backends(1) as [b], router_bed(config(b)) as bed:
        with pytest.raises(openai.BadRequestError) as refused:
            await bed.client().chat.completions.create(model="chat", messages=ask("how to kill myself"))
        with pytest.raises(openai.BadRequestError):
            await bed.client().completions.create(model="chat", prompt="I w1ll k1ll you")
        served = await stats(b)
    assert refused.value.code == "content_filter" and refused.value.param == "messages"
    assert "self_harm (severity high)" in refused.value.message
    assert served["requests"] == 0


async def test_a_blocked_completion_loses_its_text_and_keeps_its_usage() -> None:
    async with backends(1) as [b], router_bed(config(b)) as bed:
        client = bed.client(**UNSAFE_REPLY)
        reply = await client.chat.completions.create(model="chat", messages=ask("hello"))
        text = await client.completions.create(model="chat", prompt="hello")
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.choices[0].message.content is None
    assert reply.usage is not None and reply.usage.completion_tokens == 6  # the model server produced six
    assert text.choices[0].finish_reason == "content_filter" and text.choices[0].text == ""


async def test_a_blocked_stream_passes_the_clean_sentence_then_ends_with_content_filter_and_usage() -> None:
    async with backends(1) as [b], router_bed(config(b)) as bed:
        stream = await bed.client(**UNSAFE_REPLY).chat.completions.create(
            model="chat", messages=ask("hello"), stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Sure."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


async def test_clean_traffic_and_unscreened_deployments_pass_unchanged() -> None:
    async with backends(1) as [b]:
        async with router_bed(config(b)) as bed:
            clean = await bed.client().chat.completions.create(model="chat", messages=ask("one two three"))
        async with router_bed(config(b, screened=False)) as bed:
            unscreened = await bed.client(**UNSAFE_REPLY).chat.completions.create(
                model="chat", messages=ask("how to kill myself")
            )
    assert clean.choices[0].message.content == "three two one" and clean.choices[0].finish_reason == "stop"
    assert unscreened.choices[0].message.content == "Sure. I will kill you now."


async def test_the_endpoints_threshold_decides_which_severities_are_blocked() -> None:
    async with backends(1) as [b]:
        async with router_bed(config(b, threshold="High")) as bed:
            medium = await bed.client().chat.completions.create(model="chat", messages=ask("I want to end my life"))
        async with router_bed(config(b, threshold="Low")) as bed:
            with pytest.raises(openai.BadRequestError):
                await bed.client().chat.completions.create(model="chat", messages=ask("a shooting star"))
    assert medium.choices[0].finish_reason == "stop"


async def test_a_filter_service_that_is_down_fails_closed_by_default_and_open_when_set() -> None:
    down = SafetySettings(filters=("baseline", "moderation"), moderation_url=f"http://{closed_port()}/v1/moderations")
    async with backends(1) as [b]:
        async with router_bed(config(b), safety=down) as bed:
            status, body = await bed.post("/v1/chat/completions", {"model": "chat", "messages": ask("hello")})
        async with router_bed(config(b), safety=SafetySettings(**vars(down) | {"fail_open": True})) as bed:
            reply = await bed.client().chat.completions.create(model="chat", messages=ask("hello"))
            with pytest.raises(openai.BadRequestError):  # the baseline still judges
                await bed.client().chat.completions.create(model="chat", messages=ask("I will kill you"))
    assert status == 503 and body["error"]["code"] == "content_filter_unavailable"
    assert reply.choices[0].message.content == "hello"


async def test_a_backend_that_would_compress_its_answer_is_asked_for_plain_text_so_it_can_be_screened() -> None:
    async def compressing(request: web.Request) -> web.Response:
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "I will kill you."}}
        ]}).encode()  # fmt: skip
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=gzip.compress(body), content_type="application/json",
                                headers={"Content-Encoding": "gzip"})  # fmt: skip
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", compressing)
    async with serving(app) as b, router_bed(config(b)) as bed:
        reply = await bed.client().chat.completions.create(model="chat", messages=ask("hello"))
    assert reply.choices[0].finish_reason == "content_filter"
