"""Screening in the request path: the prompt before it is forwarded, a whole completion, a stream as it goes.

A blocked prompt is a 400 `content_filter` (nothing reaches the model server). A blocked completion keeps
its `usage` (the backend produced those tokens: metering counts them) and loses its text: the choice's
`finish_reason` becomes `content_filter`, with `content_filter_results` per category. A stream is held back
a sentence at a time (or WINDOW characters when no sentence ends), screened, and passed on when clean; a
blocked stream ends with a chunk whose `finish_reason` is `content_filter`, then the usage chunk (if any),
then `[DONE]`; the rest of what the model server sends is read (for its usage) and dropped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from modelcatalog.router.errors import RouterError
from modelcatalog.router.safety.filters import Filter, Role, Severity, Verdict, judge

log = logging.getLogger(__name__)

WINDOW = 200  # characters held at most when no sentence ends
OVERLAP = 64  # characters of text already passed on, screened again with the next piece (a phrase split by a flush)
SENTENCE_END = re.compile(r"[.!?;:\n]\s*$")
SCREENED_APIS = ("/v1/chat/completions", "/v1/completions")

FILTERED = Counter(
    "modelcatalog_router_content_filtered_total",
    "Prompts and completions the content filter blocked, by endpoint, stage (prompt, completion) and reason"
    " (a category, or unavailable when a filter failed and the filter fails closed).",
    ["endpoint", "stage", "reason"],
)

Judge = Callable[[str, Role], Awaitable[Verdict]]


def prompt_text(payload: dict[str, Any]) -> tuple[str, str]:
    """The text of a chat's messages or a completion's prompt, and the field it came from."""
    if "messages" in payload:
        parts = []
        for message in payload.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                content = "\n".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
            if isinstance(content, str):
                parts.append(content)
        return "\n".join(parts), "messages"
    prompt = payload.get("prompt")
    if isinstance(prompt, list):
        return "\n".join(p for p in prompt if isinstance(p, str)), "prompt"
    return (prompt if isinstance(prompt, str) else ""), "prompt"


@dataclass
class Screening:
    """One request's screening at its endpoint's threshold."""

    endpoint: str
    filters: Sequence[Filter]
    threshold: Severity
    timeout: float
    fail_open: bool

    async def judge(self, text: str, role: Role) -> Verdict:
        verdict = await judge(self.filters, text, role, self.threshold, self.timeout, self.fail_open)
        if verdict.blocked:
            stage = role
            reasons = [c.value for c, _ in verdict.flagged] or ["unavailable"]
            for reason in reasons:
                FILTERED.labels(self.endpoint, stage, reason).inc()
        return verdict

    async def check_prompt(self, payload: dict[str, Any]) -> None:
        text, param = prompt_text(payload)
        verdict = await self.judge(text, "prompt")
        if verdict.error is not None:
            message = f"The prompt was not sent: {verdict.describe()}, and content safety fails closed; retry later."
            raise RouterError(503, message, "content_filter_unavailable")
        if verdict.blocked:
            message = (
                f"The prompt was blocked by the content filter: {verdict.describe()}; this endpoint blocks"
                f" {self.threshold.label} severity and above."
            )
            raise RouterError(400, message, "content_filter", param)

    async def completion(self, data: bytes) -> bytes:
        """A whole answer with each blocked choice's text removed; other bodies unchanged."""
        try:
            answer = json.loads(data)
        except ValueError:
            return data
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list):
            return data
        changed = False
        for choice in choices:
            if isinstance(choice, dict) and await self._screen_choice(choice):
                changed = True
        return json.dumps(answer).encode() if changed else data

    async def _screen_choice(self, choice: dict[str, Any]) -> bool:
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if not isinstance(text, str):
            return False
        verdict = await self.judge(text, "completion")
        if not verdict.blocked:
            return False
        if isinstance(message, dict):
            message["content"] = None
            message.pop("tool_calls", None)
        else:
            choice["text"] = ""
        choice["finish_reason"] = "content_filter"
        choice["content_filter_results"] = verdict.results()
        return True

    def stream(self) -> StreamScreener:
        return StreamScreener(self.judge)


@dataclass
class _Held:
    events: list[bytes] = field(default_factory=list)
    text: str = ""


class StreamScreener:
    """Server-sent events in, the events it is safe to pass on out (see the module's docstring)."""

    def __init__(self, judge: Judge, window: int = WINDOW) -> None:
        self._judge = judge
        self._window = window
        self._partial = b""
        self._held = _Held()
        self._passed_tail = ""
        self._last: dict[str, Any] = {}
        self._indexes: set[int] = set()
        self.blocked: Verdict | None = None
        self._done = False

    async def feed(self, chunk: bytes) -> bytes:
        events = (self._partial + chunk.replace(b"\r\n", b"\n")).split(b"\n\n")
        self._partial = events.pop()
        out = bytearray()
        for event in events:
            out += await self._event(event + b"\n\n")
        return bytes(out)

    async def close(self) -> bytes:
        """The upstream ended: screen and pass on what is held; end a blocked stream with [DONE]."""
        out = bytearray(await self._event(self._partial) if self._partial.strip() else b"")
        self._partial = b""
        out += await self._release()
        if self.blocked is not None and not self._done:
            out += b"data: [DONE]\n\n"
            self._done = True
        return bytes(out)

    async def _event(self, raw: bytes) -> bytes:
        data = b"".join(line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:"))
        if data == b"[DONE]":
            self._done = True
            return await self._release() + raw
        parsed = _json(data)
        choices = parsed.get("choices") if parsed is not None else None
        if not isinstance(choices, list) or not choices:
            # Not a content chunk (a usage chunk, a comment, an error): passes, after what is held.
            return await self._release() + raw
        if self.blocked is not None:
            return b""
        self._last = parsed or {}
        finished = False
        for choice in choices:
            if isinstance(choice, dict):
                self._indexes.add(int(choice.get("index") or 0))
                self._held.text += _piece(choice)
                finished = finished or choice.get("finish_reason") is not None
        self._held.events.append(raw)
        text = self._held.text
        if finished or len(text) >= self._window or SENTENCE_END.search(text):
            return await self._release()
        return b""

    async def _release(self) -> bytes:
        """Screen what is held: pass it on when clean, or end the stream's content with content_filter."""
        held, self._held = self._held, _Held()
        if self.blocked is not None or not held.events:
            return b""
        if held.text.strip():
            verdict = await self._judge(self._passed_tail + held.text, "completion")
            if verdict.blocked:
                self.blocked = verdict
                return self._filtered_chunk(verdict)
        self._passed_tail = (self._passed_tail + held.text)[-OVERLAP:]
        return b"".join(held.events)

    def _filtered_chunk(self, verdict: Verdict) -> bytes:
        chat = self._last.get("object") == "chat.completion.chunk"
        empty: dict[str, Any] = {"delta": {}} if chat else {"text": ""}
        choices = [
            {"index": i, "finish_reason": "content_filter", "content_filter_results": verdict.results()} | empty
            for i in sorted(self._indexes or {0})
        ]
        kept = {k: self._last[k] for k in ("id", "object", "created", "model") if k in self._last}
        return f"data: {json.dumps(kept | {'choices': choices})}\n\n".encode()


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _piece(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    return text if isinstance(text, str) else ""
