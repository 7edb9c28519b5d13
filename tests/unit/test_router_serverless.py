"""A workspace router serves ServerlessEndpoints from the pool address in their status, and meters them."""

from __future__ import annotations

import json

from modelcatalog.render.keys import Keys
from modelcatalog.router.state import ClusterState, serverless_from_object
from tests.unit.routerbed import backends, router_bed

KEY = "serverless-key"


def endpoint_object(name: str, address: str | None, kind: str = "Pool") -> dict[str, object]:
    backend = {"kind": kind, "servedModel": "phi", **({"address": address} if address else {})}
    return {"metadata": {"name": name}, "spec": {"model": "phi"}, "status": {"backend": backend}}


def test_only_endpoints_accepted_onto_a_pool_are_served() -> None:
    found = serverless_from_object(endpoint_object("a", "127.2.0.9:80"))
    assert found is not None and (found.model, found.address) == ("phi", "127.2.0.9:80")
    refused = {"metadata": {"name": "b"}, "spec": {"model": "phi"}, "status": {"phase": "Failed"}}
    assert serverless_from_object(refused) is None
    assert serverless_from_object(endpoint_object("c", None, kind="Upstream")) is None
    state = ClusterState()
    state.set_serverless(found)
    starting = serverless_from_object(endpoint_object("d", None))
    assert starting is not None
    state.set_serverless(starting)
    assert state.endpoint_names() == ["a", "d"]
    assert [p.target for p in state.ready_pods("serverless:a")] == ["127.2.0.9:80"]
    assert state.ready_pods("serverless:d") == []


async def test_a_serverless_endpoint_answers_from_the_pool_and_its_key_reads_its_usage() -> None:
    async with backends(1) as [pool], router_bed({"endpoints": []}) as bed:
        found = serverless_from_object(endpoint_object("metered-chat", pool))
        assert found is not None
        bed.router.state.set_serverless(found)
        bed.router.state.set_keys("metered-chat", Keys(KEY, "other"))
        client = bed.client(KEY)
        reply = await client.chat.completions.create(
            model="metered-chat", messages=[{"role": "user", "content": "a b c"}]
        )
        assert reply.model == "phi" and reply.usage is not None
        stream = await client.chat.completions.create(
            model="metered-chat", messages=[{"role": "user", "content": "a b"}], stream=True
        )
        chunks = [chunk async for chunk in stream]  # no include_usage asked: the router asks for it
        assert chunks[-1].usage is not None
        status, text = await bed.get("/v1/usage", KEY)
        (entry,) = json.loads(text)["data"]
        assert status == 200 and entry["endpoint"] == "metered-chat" and entry["requests"] == 2
        assert entry["prompt_tokens"] == reply.usage.prompt_tokens + chunks[-1].usage.prompt_tokens
        assert (await bed.get("/v1/usage", "wrong"))[0] == 401
