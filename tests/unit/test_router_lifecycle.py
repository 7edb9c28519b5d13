"""A deprecated model's endpoint says so on every response (RFC 9745 Deprecation, RFC 8594 Sunset, a Link to the
successor); a retired one answers 410 in the OpenAI error shape naming the date and the successor."""

from __future__ import annotations

import dataclasses

from modelcatalog.router import lifecycle
from modelcatalog.router.state import ModelLifecycle, deployment_from_object
from tests.unit.routerbed import backends, deployment, endpoint, router_bed

DEPRECATED = ModelLifecycle("Deprecated", "2026-01-01", "2026-03-01", "llama-4")


def test_headers_follow_the_rfcs() -> None:
    assert lifecycle.headers(DEPRECATED) == {
        "Deprecation": "@1767225600",
        "Sunset": "Sun, 01 Mar 2026 00:00:00 GMT",
        "Link": '<urn:modelcatalog:catalogmodel:llama-4>; rel="successor-version"',
    }
    assert lifecycle.headers(ModelLifecycle("Legacy")) == {}
    assert lifecycle.headers(None) == {}


def test_the_router_reads_the_lifecycle_the_operator_writes_into_status() -> None:
    obj = {"metadata": {"name": "chat"}, "spec": {"model": "m"},
           "status": {"modelLifecycle": {"stage": "Retired", "retirementDate": "2026-03-01"}}}  # fmt: skip
    found = deployment_from_object(obj).lifecycle
    assert found is not None and found.retired and found.retirement_date == "2026-03-01"
    assert deployment_from_object({"metadata": {"name": "x"}, "spec": {}}).lifecycle is None


async def test_deprecated_endpoints_answer_with_headers_and_retired_ones_with_410() -> None:
    async with backends(1) as [b], router_bed({"endpoints": [endpoint("chat", [deployment("chat-a", [b])])]}) as bed:
        state = bed.router.state
        live = state.deployments["chat-a"]
        state.set_deployment(dataclasses.replace(live, lifecycle=DEPRECATED, served_model="old-model"))
        status, _ = await bed.post("/v1/chat/completions", {"model": "chat", "messages": []})
        headers = await _headers(bed.url)
        assert status == 200 and headers["Deprecation"] == "@1767225600" and "Sunset" in headers
        assert 'rel="successor-version"' in headers["Link"]
        retired = dataclasses.replace(DEPRECATED, stage="Retired")
        state.set_deployment(dataclasses.replace(live, lifecycle=retired, served_model="old-model"))
        status, body = await bed.post("/v1/chat/completions", {"model": "chat", "messages": []})
        assert status == 410
        assert body["error"] == {
            "message": "The model old-model behind endpoint chat was retired on 2026-03-01; move to llama-4.",
            "type": "invalid_request_error", "param": "model", "code": "model_retired",
        }  # fmt: skip
        assert (await _headers(bed.url))["Sunset"] == "Sun, 01 Mar 2026 00:00:00 GMT"


async def _headers(url: str) -> dict[str, str]:
    import aiohttp

    from tests.unit.routerbed import KEYS

    async with aiohttp.ClientSession() as session, session.post(
        f"http://{url}/v1/chat/completions", json={"model": "chat", "messages": []},
        headers={"Authorization": f"Bearer {KEYS['chat'][0]}"},
    ) as response:  # fmt: skip
        return dict(response.headers)
