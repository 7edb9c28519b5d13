"""Content safety: the baseline list, thresholds, the stream screener, the adapters' parsing, and the adapters
against the test server (its /v1/moderations route and its guard mode)."""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp
import pytest

from modelcatalog.localcluster import testserver
from modelcatalog.router.safety.baseline import Baseline, normalise
from modelcatalog.router.safety.config import ContentSafety
from modelcatalog.router.safety.filters import Category, FilterError, Role, Scores, Severity, Verdict, judge
from modelcatalog.router.safety.guard import Guard, scores_from_verdict
from modelcatalog.router.safety.moderation import Moderation, scores_from_answer
from modelcatalog.router.safety.screen import StreamScreener, prompt_text
from modelcatalog.router.safety.settings import SafetySettings
from modelcatalog.router.state import ClusterState, Deployment, Pod, Serverless
from tests.unit.routerbed import closed_port, serving

HIGH, MEDIUM, LOW = Severity.HIGH, Severity.MEDIUM, Severity.LOW


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I will kill you.", {Category.VIOLENCE: HIGH}),
        ("I W1LL K!LL Y0U", {Category.VIOLENCE: HIGH}),  # digit and symbol swaps, any case
        ("i will k.i.l.l you", {Category.VIOLENCE: HIGH}),  # letters spelt out
        ("i wiiill kiiiill you", {Category.VIOLENCE: HIGH}),  # repeated letters
        ("\uff29 will k\u00edll you", {Category.VIOLENCE: HIGH}),  # full-width and accented letters
        ("what is the best way to kill myself", {Category.SELF_HARM: HIGH, Category.VIOLENCE: LOW}),
        ("I want to end my life", {Category.SELF_HARM: MEDIUM}),
        ("write a sex scene", {Category.SEXUAL: MEDIUM}),
        ("they are subhuman", {Category.HATE: MEDIUM}),
        ("how do I kill a stuck process?", {Category.VIOLENCE: LOW}),  # low: below the default threshold
    ],
)
def test_the_baseline_finds_each_category_through_simple_obfuscation(text: str, expected: Scores) -> None:
    assert Baseline().scores(text) == expected


@pytest.mark.parametrize(
    "text",
    ["Summarise this contract in three bullet points.", "a skill set for skilled work", "The score was 1 000 to 3.",
     "go back to the start", "Therapist: how are you feeling today?"],
)  # fmt: skip
def test_the_baseline_passes_ordinary_text(text: str) -> None:
    assert Baseline().scores(text) == {}


def test_normalisation_keeps_numbers_and_ends_of_sentences_apart_from_words() -> None:
    assert normalise("Call now! 1 000 units, 3.5 each") == "cal now units each"
    assert normalise("$uicide n0te") == "suicide note"


class Fixed:
    def __init__(self, name: str, scores: Scores | Exception) -> None:
        self.name = name
        self.scores = scores

    async def screen(self, text: str, role: Role) -> Scores:
        if isinstance(self.scores, Exception):
            raise self.scores
        return self.scores


async def test_the_threshold_is_the_lowest_severity_blocked_and_the_worst_filter_counts() -> None:
    filters = [Fixed("a", {Category.HATE: LOW}), Fixed("b", {Category.HATE: MEDIUM, Category.SEXUAL: LOW})]
    assert (await judge(filters, "x", "prompt", HIGH, 1, False)).flagged == ()
    assert (await judge(filters, "x", "prompt", MEDIUM, 1, False)).flagged == ((Category.HATE, MEDIUM),)
    low = await judge(filters, "x", "prompt", LOW, 1, False)
    assert low.flagged == ((Category.HATE, MEDIUM), (Category.SEXUAL, LOW))
    assert low.results()["hate"] == {"filtered": True, "severity": "medium"}
    assert low.results()["violence"] == {"filtered": False, "severity": "safe"}


async def test_a_failing_filter_blocks_when_closed_and_is_skipped_when_open() -> None:
    filters = [Fixed("down", FilterError("refused")), Fixed("ok", {})]
    closed = await judge(filters, "x", "prompt", MEDIUM, 1, fail_open=False)
    assert closed.blocked and closed.error == "down: refused"
    assert not (await judge(filters, "x", "prompt", MEDIUM, 1, fail_open=True)).blocked


def test_severity_names_and_which_deployments_are_screened() -> None:
    assert Severity.named("high") is HIGH and Severity.named("Low") is LOW
    with pytest.raises(ValueError, match="expected low, medium or high"):
        Severity.named("extreme")
    settings = SafetySettings()
    assert settings.threshold(Deployment("d", "e", content_safety=True)) is MEDIUM
    assert settings.threshold(Deployment("d", "e", content_safety=True, safety_threshold="High")) is HIGH
    assert settings.threshold(Deployment("d", "e", content_safety=False)) is None
    assert settings.threshold(Serverless("s", "m").deployment) is MEDIUM  # on by default for serverless
    assert settings.threshold(Serverless("s", "m", content_safety=False).deployment) is None
    assert SafetySettings(serverless_default=False).threshold(Serverless("s", "m").deployment) is None
    assert SafetySettings(filters=()).threshold(Deployment("d", "e", content_safety=True)) is None


def test_settings_from_the_environment_name_what_is_missing() -> None:
    prefix = "MODELCATALOG_CONTENT_SAFETY_"
    env = {f"{prefix}FILTERS": "baseline,guard", f"{prefix}GUARD_ENDPOINT": "g", f"{prefix}ON_ERROR": "open",
           f"{prefix}SERVERLESS": "Disabled"}  # fmt: skip
    settings = SafetySettings.from_env(env)
    assert (settings.filters, settings.fail_open, settings.serverless_default) == (("baseline", "guard"), True, False)
    with pytest.raises(SystemExit, match="MODERATION_URL"):
        SafetySettings.from_env({"MODELCATALOG_CONTENT_SAFETY_FILTERS": "moderation"})
    with pytest.raises(SystemExit, match="unknown filter"):
        SafetySettings.from_env({"MODELCATALOG_CONTENT_SAFETY_FILTERS": "magic"})


def test_prompt_text_reads_messages_parts_and_prompts() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ]
    }
    assert prompt_text(chat) == ("be nice\nhi", "messages")
    assert prompt_text({"prompt": ["a", "b", 3]}) == ("a\nb", "prompt")


# --- the stream screener ---


def sse(words: list[str], usage: bool = True, pieces: list[str] | None = None) -> bytes:
    """A chat stream as the test server sends it: one word per chunk (or the `pieces` given), a stop chunk,
    usage, [DONE]."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                      "choices": choices} | extra) + "\n\n"  # fmt: skip

    pieces = pieces or [(" " if i else "") + w for i, w in enumerate(words)]
    out = [event([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in pieces]
    out.append(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if usage:
        out.append(event([], usage={"prompt_tokens": 2, "completion_tokens": len(pieces)}))
    return ("".join(out) + "data: [DONE]\n\n").encode()


async def baseline_judge(text: str, role: Role) -> Verdict:
    return await judge([Baseline()], text, role, MEDIUM, 1, False)


async def run_screener(data: bytes, split: int, window: int = 200) -> tuple[bytes, list[int]]:
    """Feed `data` in pieces of `split` bytes; returns what was passed on and after how many pieces each part."""
    screener = StreamScreener(baseline_judge, window)
    out = b""
    when = []
    pieces = [data[i : i + split] for i in range(0, len(data), split)]
    for n, piece in enumerate(pieces):
        passed = await screener.feed(piece)
        if passed:
            when.append(n)
        out += passed
    return out + await screener.close(), when


def events(data: bytes) -> list[Any]:
    found = []
    for block in data.decode().split("\n\n"):
        if block.startswith("data: "):
            payload = block[6:]
            found.append(payload if payload == "[DONE]" else json.loads(payload))
    return found


@pytest.mark.parametrize("split", [1, 7, 64, 10_000])
async def test_a_clean_stream_passes_unchanged_whatever_the_chunk_boundaries(split: int) -> None:
    data = sse(["Hello", "there.", "How", "are", "you?"])
    passed, _ = await run_screener(data, split)
    assert passed == data


@pytest.mark.parametrize("split", [1, 5, 33, 10_000])
async def test_a_blocked_phrase_split_across_chunks_ends_the_stream_with_content_filter(split: int) -> None:
    data = sse([], pieces=["Hello", " there.", " I", " will", " ki", "ll", " you", " now."])  # "kill" in two chunks
    passed, _ = await run_screener(data, split)
    found = events(passed)
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in found[:-1] if e != "[DONE]" and e["choices"])
    assert text == "Hello there."  # the clean sentence passed; nothing of the blocked one did
    filtered = found[-3]["choices"][0]
    assert filtered["finish_reason"] == "content_filter" and filtered["delta"] == {}
    assert filtered["content_filter_results"]["violence"] == {"filtered": True, "severity": "high"}
    assert found[-2]["usage"] == {"prompt_tokens": 2, "completion_tokens": 8}  # metering still sees the usage
    assert found[-1] == "[DONE]"


async def test_text_is_held_only_until_a_sentence_ends_or_the_window_fills() -> None:
    data = sse(["One.", "two", "three", "four", "five", "six"], usage=False)
    _, when = await run_screener(data, 10_000, window=12)
    assert when == [0]  # one piece in: "One." passes at once, the rest when the window (12 chars) fills
    screener = StreamScreener(baseline_judge, window=1000)
    assert await screener.feed(sse(["no", "sentence", "end"], usage=False)[:150]) == b""  # held: no end yet


async def test_a_phrase_straddling_a_window_flush_is_still_caught() -> None:
    data = sse(["aaaa", "bbbb", "cccc", "i", "will", "kill", "you"], usage=False)
    passed, _ = await run_screener(data, 10_000, window=18)  # flushes after "... cccc i"
    found = [e for e in events(passed) if e != "[DONE]"]
    assert found[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert events(passed)[-1] == "[DONE]"


async def test_a_blocked_stream_without_done_from_upstream_still_ends_with_done() -> None:
    data = sse(["I", "will", "kill", "you."], usage=False).replace(b"data: [DONE]\n\n", b"")
    passed, _ = await run_screener(data, 10_000)
    assert events(passed)[-1] == "[DONE]" and events(passed)[-2]["choices"][0]["finish_reason"] == "content_filter"


# --- the adapters' parsing ---


def test_moderation_scores_map_to_the_four_categories() -> None:
    answer = {"results": [{"flagged": True,
                           "categories": {"harassment": True, "self-harm/intent": False, "illicit": True},
                           "category_scores": {"harassment": 0.3, "hate": 0.1, "self-harm/intent": 0.85,
                                               "violence": 0.55, "sexual": 0.01, "illicit": 0.99}}]}  # fmt: skip
    assert scores_from_answer(answer) == {
        Category.HATE: MEDIUM,  # 0.3 is low, but the service flagged harassment
        Category.SELF_HARM: HIGH,
        Category.VIOLENCE: MEDIUM,
        Category.SEXUAL: Severity.SAFE,
    }
    for broken in ({}, {"results": []}, {"results": [{"categories": {}}]}, []):
        with pytest.raises(FilterError):
            scores_from_answer(broken)


def test_guard_verdicts_map_hazard_codes_and_refuse_anything_else() -> None:
    assert scores_from_verdict("safe") == {}
    assert scores_from_verdict("unsafe\nS1,S11") == {Category.VIOLENCE: HIGH, Category.SELF_HARM: HIGH}
    assert scores_from_verdict(" unsafe\n s10 ") == {Category.HATE: HIGH}
    assert scores_from_verdict("unsafe\nS7") == {}  # privacy: not one of the four categories
    with pytest.raises(FilterError, match="not a verdict"):
        scores_from_verdict("I cannot help with that")


# --- the adapters against the test server ---


async def test_the_moderation_adapter_against_the_test_servers_moderations_route(tmp_path: Any) -> None:
    key_file = tmp_path / "apiKey"
    key_file.write_text("secret\n")
    async with serving(testserver.build_app()) as address, aiohttp.ClientSession() as session:
        moderation = Moderation(f"http://{address}/v1/moderations", lambda: session, key_file)
        assert await moderation.screen("a flag-violence b mild-hate", "prompt") == {
            Category.VIOLENCE: HIGH, Category.HATE: LOW, Category.SEXUAL: Severity.SAFE,
            Category.SELF_HARM: Severity.SAFE,
        }  # fmt: skip
        assert max((await moderation.screen("I will kill you", "prompt")).values()) is Severity.SAFE
        down = Moderation(f"http://{closed_port()}/v1/moderations", lambda: session)
        with pytest.raises(FilterError, match="moderation service failed"):
            await down.screen("x", "prompt")


async def test_the_guard_adapter_reaches_the_guard_endpoints_pods_in_the_router_state() -> None:
    state = ClusterState()
    async with serving(testserver.build_app("llama-guard-3-8b")) as address, aiohttp.ClientSession() as session:
        guard = Guard("guard", state, lambda: session, random.Random(1))  # noqa: S311
        with pytest.raises(FilterError, match="does not exist"):
            await guard.screen("x", "prompt")
        state.set_deployment(Deployment("guard", "guard", served_model="llama-guard-3-8b"))
        with pytest.raises(FilterError, match="no ready model server"):
            await guard.screen("x", "prompt")
        host, _, port = address.rpartition(":")
        state.set_pod(Pod("guard-0", "guard", host, int(port)))
        assert await guard.screen("hello there", "prompt") == {}
        assert await guard.screen("please unsafe-self-harm", "prompt") == {Category.SELF_HARM: HIGH}
        assert await guard.screen("unsafe-hate as an answer", "completion") == {Category.HATE: HIGH}


async def test_content_safety_screens_only_generating_apis_of_screened_deployments() -> None:
    safety = ContentSafety(SafetySettings(), ClusterState())
    screened = Deployment("d", "e", content_safety=True)
    assert safety.screening(screened, "/v1/chat/completions") is not None
    assert safety.screening(screened, "/v1/embeddings") is None
    assert safety.screening(Deployment("d", "e", content_safety=False), "/v1/completions") is None
    await safety.close()


# --- what the router learns from the cluster, and what the operator gives it ---


def test_the_router_reads_each_endpoints_setting_from_the_objects_it_watches() -> None:
    from modelcatalog.router.state import deployment_from_object, serverless_from_object

    md = {
        "metadata": {"name": "d"},
        "spec": {"model": "m", "contentSafety": "Enabled", "contentSafetyThreshold": "Low"},
    }
    assert (deployment_from_object(md).content_safety, deployment_from_object(md).safety_threshold) == (True, "Low")
    assert deployment_from_object({"metadata": {"name": "d"}, "spec": {}}).content_safety is False
    backend = {"backend": {"kind": "Pool", "servedModel": "m", "address": "10.0.0.1:80"}}
    unsaid = serverless_from_object({"metadata": {"name": "s"}, "spec": {"model": "m"}, "status": backend})
    off = serverless_from_object(
        {"metadata": {"name": "s"}, "spec": {"model": "m", "contentSafety": "Disabled"}, "status": backend}
    )
    assert unsaid is not None and unsaid.deployment.content_safety is None  # the platform's default decides
    assert off is not None and off.deployment.content_safety is False


def test_the_router_pod_gets_the_platforms_content_safety_settings() -> None:
    from modelcatalog.render.router import RouterInputs, deployment
    from modelcatalog.router.settings import RouterSettings
    from modelcatalog.settings import SettingError, Settings

    settings = Settings.from_env(
        {
            "MODELCATALOG_CONTENT_SAFETY_FILTERS": "baseline,moderation",
            "MODELCATALOG_CONTENT_SAFETY_MODERATION_URL": "https://moderation.example/v1/moderations",
            "MODELCATALOG_CONTENT_SAFETY_MODERATION_SECRET": "moderation-key",
            "MODELCATALOG_CONTENT_SAFETY_ON_ERROR": "open",
        }
    )
    pod = deployment(RouterInputs("team-a", settings))["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    assert pod["volumes"] == [{"name": "moderation", "secret": {"secretName": "moderation-key", "optional": True}}]
    safety = RouterSettings.from_env(env).safety  # the router reads back what the operator rendered
    assert safety.filters == ("baseline", "moderation") and safety.fail_open
    assert safety.moderation_url == "https://moderation.example/v1/moderations"
    assert str(safety.moderation_key_file) == "/etc/modelcatalog/moderation/apiKey"
    default = deployment(RouterInputs("team-a", Settings()))["spec"]["template"]["spec"]
    assert "volumes" not in default
    with pytest.raises(SettingError, match="set MODELCATALOG_CONTENT_SAFETY_GUARD_ENDPOINT"):
        Settings.from_env({"MODELCATALOG_CONTENT_SAFETY_FILTERS": "guard"})
