"""The project's own OpenAI-compatible test server: a named stand-in for vLLM and TEI.

These machines have no GPU and no model weights, so the test bed and the benchmarks run this
instead of the real model servers. It answers like them, deterministically:

- POST /v1/chat/completions, /v1/completions: the reply is the prompt's words reversed (at most
  `max_tokens`), one word = one token; `usage` counts prompt and completion tokens; `stream: true`
  sends one SSE chunk per word then `data: [DONE]`, plus a usage chunk when
  `stream_options.include_usage` is true.
- POST /v1/embeddings: a unit vector per input derived from its SHA-256 (`dimensions`, default 8).
- POST /v1/rerank: documents scored by the share of the query's words they contain.
- POST /v1/moderations (an OpenAI-style moderation service, for the router's content-safety adapter):
  a word `flag-<category>` in the input scores that category 0.9 and flags it, `mild-<category>` scores
  it 0.3 (categories: hate, sexual, violence, self-harm); everything else scores 0.
- Guard mode, when the served model's name contains "guard" (a Llama Guard stand-in): a chat
  completion answers `safe`, or `unsafe` and the hazard codes of the words `unsafe-<category>` in the
  last message (S10 hate, S12 sexual, S1 violence, S11 self-harm).
- GET /v1/models, GET /health; GET /test/stats: requests and tokens served, so tests can compare.

Controls for tests, as request headers: `x-test-reply` (the completion's words are these instead of
the prompt's reversed: an answer the prompt did not ask for), `x-test-delay-ms` (wait before answering),
`x-test-chunk-delay-ms` (wait between stream chunks), `x-test-status` (answer with this status and
an OpenAI error; a 429 with `Retry-After` and `x-ratelimit-remaining-requests`), `x-test-hang` (never
answer; the connection stays open until the client leaves).

`python -m modelcatalog.localcluster.testserver --host H --port P`; vLLM's and TEI's own flags
(`--model`, `--served-model-name`, `--model-id`, ...) are accepted, and only the model name is used.
`--api-key KEY` (or MODELCATALOG_TESTSERVER_API_KEY) makes it stand in for a provider's API instead: every
/v1/ request without `Authorization: Bearer KEY` gets a 401, as a provider answers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import time
from collections import Counter
from typing import Any

from aiohttp import web

DEFAULT_MAX_TOKENS = 16
DEFAULT_DIMENSIONS = 8
HANG_SECONDS = 3600
MODERATION_CATEGORIES = ("hate", "sexual", "violence", "self-harm")
MODERATION_SCORES = {"flag": 0.9, "mild": 0.3}
GUARD_CODES = {"hate": "S10", "sexual": "S12", "violence": "S1", "self-harm": "S11"}


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def count(self, path: str, prompt: int, completion: int) -> None:
        self.requests[path] += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": sum(self.requests.values()),
            "by_path": dict(self.requests),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


def words(text: str) -> list[str]:
    return text.split()


def input_texts(body: dict[str, Any]) -> list[str]:
    """The `input` of an embeddings or moderations request: one text or a list of them."""
    given = body.get("input", "")
    return [str(i) for i in given] if isinstance(given, list) else [str(given)]


def prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        parts = []
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            parts.append(str(content or ""))
        return " ".join(parts)
    prompt = body.get("prompt", "")
    return " ".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)


def reply_words(prompt: list[str], max_tokens: int) -> list[str]:
    return (list(reversed(prompt)) or ["ok"])[:max_tokens]


def moderation_result(text: str) -> dict[str, Any]:
    scores = dict.fromkeys(MODERATION_CATEGORIES, 0.0)
    for word in words(text.lower()):
        level, _, category = word.strip(".,;:!?").partition("-")
        if level in MODERATION_SCORES and category in scores:
            scores[category] = max(scores[category], MODERATION_SCORES[level])
    flagged = {c: score >= MODERATION_SCORES["flag"] for c, score in scores.items()}
    return {"flagged": any(flagged.values()), "categories": flagged, "category_scores": scores}


def guard_verdict(text: str) -> str:
    found = [code for category, code in GUARD_CODES.items() if f"unsafe-{category}" in map(str.lower, words(text))]
    return "unsafe\n" + ",".join(found) if found else "safe"


def embedding(text: str, dimensions: int) -> list[float]:
    digest = b""
    counter = 0
    while len(digest) < dimensions:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    raw = [b / 255 - 0.5 for b in digest[:dimensions]]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


def error(status: int, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "test_error", "param": None, "code": str(status)}}
    return web.json_response(body, status=status)


class StandInServer:
    def __init__(self, model: str) -> None:
        self.model = model
        self.stats = Stats()

    async def controls(self, request: web.Request) -> web.Response | None:
        """Apply the x-test-* headers: a delay, a hang, or a forced status."""
        delay = float(request.headers.get("x-test-delay-ms", 0)) / 1000
        if delay:
            await asyncio.sleep(delay)
        if request.headers.get("x-test-hang"):
            await asyncio.sleep(HANG_SECONDS)
        status = request.headers.get("x-test-status")
        if status:
            self.stats.count(request.path, 0, 0)
            forced = error(int(status), f"forced status {status} (x-test-status)")
            if forced.status == 429:  # as OpenAI's API answers it
                forced.headers.update({"Retry-After": "1", "x-ratelimit-remaining-requests": "0"})
            return forced
        return None

    async def request_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The JSON body, or the response to give instead (a forced one, or 400)."""
        forced = await self.controls(request)
        return forced if forced is not None else await self.body(request)

    async def body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body is not valid JSON")
        return body if isinstance(body, dict) else error(400, "the body must be a JSON object")

    async def generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.request_body(request)
        if isinstance(body, web.Response):
            return body
        chat = request.path.endswith("/chat/completions")
        prompt = words(prompt_text(body))
        reply = reply_words(prompt, int(body.get("max_tokens") or DEFAULT_MAX_TOKENS))
        if "x-test-reply" in request.headers:
            reply = words(request.headers["x-test-reply"])[: int(body.get("max_tokens") or DEFAULT_MAX_TOKENS)]
        if chat and "guard" in self.model.lower():
            messages = body.get("messages") or [{}]
            reply = [guard_verdict(prompt_text({"messages": messages[-1:]}))]
        usage = {
            "prompt_tokens": len(prompt),
            "completion_tokens": len(reply),
            "total_tokens": len(prompt) + len(reply),
        }
        self.stats.count(request.path, len(prompt), len(reply))
        model = str(body.get("model") or self.model)
        ident = "cmpl-" + hashlib.sha256(" ".join(prompt).encode()).hexdigest()[:24]
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            delay = float(request.headers.get("x-test-chunk-delay-ms", 0)) / 1000
            return await self.stream(request, chat, ident, model, reply, usage if include_usage else None, delay)
        text = " ".join(reply)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
        choice |= {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
        kind = "chat.completion" if chat else "text_completion"
        return web.json_response(
            {
                "id": ident,
                "object": kind,
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        )

    async def stream(
        self,
        request: web.Request,
        chat: bool,
        ident: str,
        model: str,
        reply: list[str],
        usage: dict[str, int] | None,
        delay: float,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        kind = "chat.completion.chunk" if chat else "text_completion"
        created = int(time.time())

        def event(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
            chunk = {"id": ident, "object": kind, "created": created, "model": model, "choices": choices}
            return f"data: {json.dumps(chunk | (extra or {}))}\n\n".encode()

        def piece(text: str, finish: str | None, role: bool = False) -> dict[str, Any]:
            delta: dict[str, Any] = {"role": "assistant", "content": text} if role else {"content": text}
            return {"index": 0, "finish_reason": finish} | ({"delta": delta} if chat else {"text": text})

        for index, word in enumerate(reply):
            if index and delay:
                await asyncio.sleep(delay)
            text = word if index == 0 else " " + word
            await response.write(event([piece(text, None, role=index == 0)]))
        await response.write(event([piece("", "stop")]))
        if usage is not None:
            await response.write(event([], {"usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self.request_body(request)
        if isinstance(body, web.Response):
            return body
        inputs = input_texts(body)
        dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        tokens = sum(len(words(i)) for i in inputs)
        self.stats.count(request.path, tokens, 0)
        data = [
            {"object": "embedding", "index": n, "embedding": embedding(i, dimensions)} for n, i in enumerate(inputs)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response(
            {"object": "list", "data": data, "model": body.get("model") or self.model, "usage": usage}
        )

    async def rerank(self, request: web.Request) -> web.Response:
        body = await self.request_body(request)
        if isinstance(body, web.Response):
            return body
        query = set(words(str(body.get("query", "")).lower()))
        documents = [str(d.get("text", "")) if isinstance(d, dict) else str(d) for d in body.get("documents") or []]
        scores = [len(query & set(words(d.lower()))) / (len(query) or 1) for d in documents]
        order = sorted(range(len(documents)), key=lambda n: (-scores[n], n))
        results = [{"index": n, "document": {"text": documents[n]}, "relevance_score": scores[n]} for n in order]
        top = body.get("top_n")
        tokens = len(query) + sum(len(words(d)) for d in documents)
        self.stats.count(request.path, tokens, 0)
        return web.json_response(
            {
                "id": "rerank-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24],
                "model": body.get("model") or self.model,
                "results": results[: int(top)] if top else results,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def moderations(self, request: web.Request) -> web.Response:
        body = await self.request_body(request)
        if isinstance(body, web.Response):
            return body
        inputs = input_texts(body)
        self.stats.count(request.path, sum(len(words(i)) for i in inputs), 0)
        return web.json_response(
            {
                "id": "modr-" + hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:24],
                "model": body.get("model") or "omni-moderation-latest",
                "results": [moderation_result(i) for i in inputs],
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "modelcatalog-testserver"}
        return web.json_response({"object": "list", "data": [model]})

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats_view(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json())


def require_key(api_key: str) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if request.path.startswith("/v1/") and not hmac.compare_digest(given, f"Bearer {api_key}"):
            return error(401, "Incorrect API key provided.")
        response: web.StreamResponse = await handler(request)
        return response

    return check


def build_app(model: str = "test-model", api_key: str | None = None) -> web.Application:
    server = StandInServer(model)
    app = web.Application(middlewares=[require_key(api_key)] if api_key else [])
    app.router.add_post("/v1/chat/completions", server.generate)
    app.router.add_post("/v1/completions", server.generate)
    app.router.add_post("/v1/embeddings", server.embeddings)
    app.router.add_post("/v1/rerank", server.rerank)
    app.router.add_post("/v1/moderations", server.moderations)
    app.router.add_get("/v1/models", server.models)
    app.router.add_get("/health", server.health)
    app.router.add_get("/test/stats", server.stats_view)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m modelcatalog.localcluster.testserver", description=__doc__)
    parser.add_argument("--host", "--hostname", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name")
    parser.add_argument("--model", "--model-id", default="test-model")
    parser.add_argument("--api-key", default=os.environ.get("MODELCATALOG_TESTSERVER_API_KEY"))
    args, _ = parser.parse_known_args(argv)
    app = build_app(args.served_model_name or args.model, args.api_key)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
