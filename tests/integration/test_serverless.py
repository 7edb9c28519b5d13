"""ServerlessEndpoints for real: the operator runs one shared pool per model in the serverless namespace, the
pod runner runs the pool's model server and each workspace's router as local processes, and the real
`openai` client calls an endpoint through its workspace router. Traffic goes only to 127.0.0.0/8.

The test operator offers Phi-3-mini and Mistral-7B-Instruct on its own pool (localcluster/testbed-values.yaml).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from modelcatalog.settings import Settings
from tests.integration.kube import Kube, wait_for

pytestmark = pytest.mark.usefixtures("operator")

POOL_MODEL = "phi-3-mini-4k-instruct"
THIRD_PARTY = "mistralai-mistral-7b-instruct-v01"  # on the pool too, but terms are required
RETIRED_OFFER = "meta-llama-3-8b-instruct"  # its serverless offer is retired and it is not on the pool
OTHER_REGIONS = "cohere-embed-v3-english"  # offered serverless in seven cloud regions, not "local"
POOL_NAMESPACE = Settings().serverless_namespace
ROUTER_PORT = 8080
FINALIZER = "modelcatalog.io/model-pool"


def se(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ServerlessEndpoint",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.get_json("serverlessendpoint", name, "-n", namespace).get("status") or {}
    return found


def condition(kube: Kube, namespace: str, name: str, kind: str = "Ready") -> dict[str, Any] | None:
    return next((c for c in status(kube, namespace, name).get("conditions") or [] if c["type"] == kind), None)


def pools(kube: Kube) -> list[str]:
    items = kube.get_json("deployments", "-n", POOL_NAMESPACE, "-l", "modelcatalog.io/owner-kind=ModelPool")["items"]
    return sorted(d["metadata"]["name"] for d in items)


def exists(kube: Kube, namespace: str, name: str) -> bool:
    result = kube.kubectl("get", "serverlessendpoint", name, "-n", namespace, "--ignore-not-found", "-o", "name")
    return bool(result.stdout.strip())


def router_ip(kube: Kube, namespace: str) -> str:
    def ready() -> list[str]:
        pods = kube.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/component=router")["items"]
        return sorted(
            p["status"]["podIP"]
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        )

    return wait_for(ready, 90, f"a ready router in {namespace}")[0]


def key(kube: Kube, namespace: str, endpoint: str) -> str:
    return kube.secret_data(f"{endpoint}-keys", namespace)["primary"]


def ask(kube: Kube, namespace: str, endpoint: str) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(
        base_url=f"http://{router_ip(kube, namespace)}:{ROUTER_PORT}/v1",
        api_key=key(kube, namespace, endpoint),
        max_retries=0,
        timeout=30,
    )

    def answered() -> openai.types.chat.ChatCompletion | None:
        try:
            return client.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "one two"}])
        except openai.APIError:
            return None  # the router may not have seen the endpoint's status yet

    return wait_for(answered, 60, f"an answer from {namespace}/{endpoint}", interval=1)


@pytest.fixture(scope="module")
def pool_namespace(installed: Kube) -> str:
    installed.kubectl("create", "namespace", POOL_NAMESPACE, check=False)  # the chart's job on a real install
    return POOL_NAMESPACE


@pytest.fixture
def second_namespace(kube: Kube) -> Iterator[str]:
    name = f"t-serverless-b-{uuid.uuid4().hex[:5]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.usefixtures("pool_namespace")
def test_two_workspaces_share_one_pool_which_goes_with_the_last_endpoint_and_not_before(
    installed: Kube, namespace: str, second_namespace: str
) -> None:
    kube = installed
    kube.apply(se(namespace, "chat", model=POOL_MODEL))
    wait_for(lambda: status(kube, namespace, "chat").get("phase") == "Ready", 120, "endpoint chat Ready")
    found = status(kube, namespace, "chat")
    assert found["url"] == f"http://modelcatalog-router.{namespace}.svc.cluster.local/v1"
    assert found["keysSecret"] == "chat-keys"
    assert found["pricing"] == {"inputPer1MTokens": "not set", "outputPer1MTokens": "not set"}
    assert found["rateLimits"]["source"] == "platform"
    assert found["backend"]["kind"] == "Pool" and found["backend"]["address"].startswith("127.")
    assert FINALIZER in kube.get_json("serverlessendpoint", "chat", "-n", namespace)["metadata"]["finalizers"]

    reply = ask(kube, namespace, "chat")
    assert reply.choices[0].message.content and reply.usage is not None and reply.usage.completion_tokens > 0
    usage = httpx2.get(
        f"http://{router_ip(kube, namespace)}:{ROUTER_PORT}/v1/usage",
        headers={"Authorization": f"Bearer {key(kube, namespace, 'chat')}"},
        timeout=10,
    ).json()["data"]
    assert [u["endpoint"] for u in usage] == ["chat"]

    kube.apply(se(second_namespace, "assistant", model=POOL_MODEL))
    wait_for(lambda: status(kube, second_namespace, "assistant").get("phase") == "Ready", 120, "assistant Ready")
    assert ask(kube, second_namespace, "assistant").choices[0].message.content
    assert pools(kube) == [f"pool-{POOL_MODEL}"]  # one pool for both workspaces
    policy = kube.get_json("networkpolicy", "modelcatalog-pool-ingress", "-n", POOL_NAMESPACE)
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "model-pool"}

    kube.kubectl("delete", "serverlessendpoint", "chat", "-n", namespace, "--wait=false")
    wait_for(lambda: not exists(kube, namespace, "chat"), 60, "endpoint chat gone (finalizer released)")
    assert pools(kube) == [f"pool-{POOL_MODEL}"]  # still counted by the other workspace's endpoint
    assert status(kube, second_namespace, "assistant")["phase"] == "Ready"

    kube.kubectl("delete", "serverlessendpoint", "assistant", "-n", second_namespace, "--wait=false")
    wait_for(lambda: not exists(kube, second_namespace, "assistant"), 60, "endpoint assistant gone")
    # The finalizer went only after the pool was deleted: nothing is left to wait for.
    assert pools(kube) == []
    selector = "modelcatalog.io/owner-kind=ServerlessNamespace"
    wait_for(
        lambda: not kube.get_json("networkpolicies", "-n", POOL_NAMESPACE, "-l", selector)["items"],
        30,
        "the pool namespace's policy gone with the last pool",
    )


@pytest.mark.usefixtures("pool_namespace")
def test_refusals_are_conditions_that_name_the_fix(installed: Kube, namespace: str) -> None:
    kube = installed
    kube.apply(
        se(namespace, "region", model=OTHER_REGIONS, acceptTerms=True),
        se(namespace, "terms", model=THIRD_PARTY),
        se(namespace, "retired", model=RETIRED_OFFER, acceptTerms=True),
    )
    expected = {
        "region": ("RegionNotOffered", "region local"),
        "terms": ("TermsNotAccepted", "acceptTerms: true"),
        "retired": ("OfferRetired", "ModelDeployment"),
    }
    for name, (reason, fix) in expected.items():
        found = wait_for(lambda n=name: condition(kube, namespace, n), 60, f"{name} refused")  # type: ignore[misc]
        assert (found["status"], found["reason"]) == ("False", reason) and fix in found["message"]
        assert status(kube, namespace, name)["phase"] == "Failed"
    assert pools(kube) == []  # refused endpoints start no pool
    kube.apply(se(namespace, "terms", model=THIRD_PARTY, acceptTerms=True))  # the fix named
    wait_for(
        lambda: (condition(kube, namespace, "terms", "Accepted") or {}).get("status") == "True", 60, "terms accepted"
    )
    assert pools(kube) == [f"pool-{THIRD_PARTY}"]
    kube.kubectl("delete", "serverlessendpoints", "--all", "-n", namespace, "--wait=true", "--timeout=60s")
    assert pools(kube) == []
