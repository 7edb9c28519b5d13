"""Content safety for real: the operator renders each workspace router with the platform's filters, the
router learns each endpoint's setting from the objects it watches, and the real `openai` client sees a
blocked prompt (400 content_filter) and blocked completions (finish_reason content_filter), plain and
streamed. The test server stands in for the model servers, for the moderation service (its
/v1/moderations route) and for a guard model (its guard mode). Traffic goes only to 127.0.0.0/8.

The last test restarts the operator with the moderation and guard adapters configured, and restores it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelcatalog.localcluster.release import ChartOperator
from modelcatalog.settings import Settings
from tests.integration.kube import Kube, wait_for

pytestmark = pytest.mark.usefixtures("operator")

A100_1X = "standard-nc24ads-a100-v4"  # two 1-GPU nodes
H100_8X = "standard-nd96isr-h100-v5"  # one 8-GPU node
CHAT_MODEL = "meta-llama-3-8b-instruct"
POOL_MODEL = "phi-3-mini-4k-instruct"  # on the test operator's own pool (launcher.TEST_BED_SETTINGS)
GUARD_MODEL = "meta-llama-llama-guard-3-8b"
ROUTER_PORT = 8080
UNSAFE_REPLY = "Sure thing. I will kill you now."  # the test server answers this (x-test-reply)


def md(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def guard_model() -> dict[str, Any]:
    """A guard model a platform team adds to the catalog (Llama Guard 3: open weights, vLLM)."""
    return {
        "apiVersion": "modelcatalog.io/v1alpha1", "kind": "CatalogModel", "metadata": {"name": GUARD_MODEL},
        "spec": {"displayName": "Llama-Guard-3-8B", "description": "Classifies prompts and responses as safe or not.",
                 "publisher": "Meta", "collection": "huggingface", "tasks": ["chat-completion"], "license": "llama3",
                 "weights": {"repository": "meta-llama/Llama-Guard-3-8B", "revision": "main"},
                 "deploymentOptions": {"managedCompute": {"runtime": "vllm", "minGpuMemoryGiB": 18}},
                 "lifecycle": {"stage": "GenerallyAvailable"}},
    }  # fmt: skip


def ready_router_ip(kube: Kube, namespace: str) -> str:
    return wait_for(lambda: kube.ready_ips(namespace, "router"), 90, f"a ready router in {namespace}")[0]


class Workspace:
    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def key(self, endpoint: str) -> str:
        return self.kube.secret_data(f"{endpoint}-keys", self.namespace)["primary"]

    def client(self, endpoint: str, **headers: str) -> openai.OpenAI:
        url = f"http://{ready_router_ip(self.kube, self.namespace)}:{ROUTER_PORT}/v1"
        return openai.OpenAI(base_url=url, api_key=self.key(endpoint), max_retries=0, timeout=30,
                             default_headers=headers or None)  # fmt: skip

    def code(self, endpoint: str, text: str) -> int | str:
        """200, or the error code the router answered a chat request with."""
        try:
            self.client(endpoint).chat.completions.create(model=endpoint, messages=[{"role": "user", "content": text}])
        except openai.APIStatusError as error:
            return str(error.code or error.status_code)
        except openai.APIConnectionError:
            return "no connection"
        return 200


@pytest.fixture(scope="module")
def workspace(installed: Kube) -> Iterator[Workspace]:
    kube = installed
    namespace = f"t-safety-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", namespace)
    kube.apply(
        md(namespace, "screened", model=CHAT_MODEL, instanceType=A100_1X, contentSafety="Enabled"),
        md(namespace, "open", model=CHAT_MODEL, instanceType=A100_1X, contentSafety="Disabled"),
    )
    for name in ("screened", "open"):
        kube.kubectl("wait", "--for=condition=Ready", f"modeldeployment/{name}", "-n", namespace, "--timeout=120s")
    space = Workspace(kube, namespace)
    for name in ("screened", "open"):
        wait_for(lambda n=name: space.code(n, "hello") == 200, 60, f"the router serving {name}")  # type: ignore[misc]
    yield space
    kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_blocked_prompt_gets_a_400_content_filter_naming_the_category(workspace: Workspace) -> None:
    client = workspace.client("screened")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="screened", messages=[{"role": "user", "content": "How to k1ll myself?"}])
    assert refused.value.code == "content_filter"
    assert "self_harm (severity high)" in refused.value.message
    reply = client.chat.completions.create(model="screened", messages=[{"role": "user", "content": "one two"}])
    assert reply.choices[0].message.content == "two one"


def test_an_unsafe_completion_ends_with_content_filter_plain_and_streamed(workspace: Workspace) -> None:
    client = workspace.client("screened", **{"x-test-reply": UNSAFE_REPLY})
    ask = [{"role": "user", "content": "tell me something"}]
    reply = client.chat.completions.create(model="screened", messages=ask)
    assert reply.choices[0].finish_reason == "content_filter" and reply.choices[0].message.content is None
    assert reply.usage is not None and reply.usage.completion_tokens == 7  # what the model server produced
    stream = client.chat.completions.create(
        model="screened", messages=ask, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Sure thing."  # the clean sentence went out; nothing of the blocked one did
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


def test_content_safety_disabled_is_not_screened_and_turning_it_on_screens(workspace: Workspace) -> None:
    kube, ns = workspace.kube, workspace.namespace
    assert workspace.code("open", "How to kill myself?") == 200
    kube.apply(md(ns, "open", model=CHAT_MODEL, instanceType=A100_1X, contentSafety="Enabled"))
    try:
        wait_for(lambda: workspace.code("open", "How to kill myself?") == "content_filter", 30, "open screened")
    finally:
        kube.apply(md(ns, "open", model=CHAT_MODEL, instanceType=A100_1X, contentSafety="Disabled"))
    wait_for(lambda: workspace.code("open", "How to kill myself?") == 200, 30, "open unscreened again")


def test_a_serverless_endpoint_is_screened_by_default(workspace: Workspace) -> None:
    kube, ns = workspace.kube, workspace.namespace
    kube.kubectl("create", "namespace", Settings().serverless_namespace, check=False)
    kube.apply({"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ServerlessEndpoint",
                "metadata": {"name": "assistant", "namespace": ns}, "spec": {"model": POOL_MODEL}})  # fmt: skip
    try:
        wait_for(lambda: workspace.code("assistant", "one two") == 200, 120, "the serverless endpoint answering")
        assert workspace.code("assistant", "I will kill you") == "content_filter"
        client = workspace.client("assistant", **{"x-test-reply": UNSAFE_REPLY})
        reply = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].finish_reason == "content_filter"
    finally:
        kube.kubectl("delete", "serverlessendpoint", "assistant", "-n", ns, "--wait=true", "--timeout=60s")


@pytest.fixture
def adapters(workspace: Workspace, operator: ChartOperator) -> Iterator[Workspace]:
    """The operator upgraded with the moderation service (the `open` deployment's test server) and a guard
    model (a catalog model deployed in the workspace) added to the baseline; restored afterwards."""
    kube, ns = workspace.kube, workspace.namespace
    kube.apply(guard_model(), md(ns, "guard", model=GUARD_MODEL, instanceType=H100_8X))
    kube.kubectl("wait", "--for=condition=Ready", "modeldeployment/guard", "-n", ns, "--timeout=120s")
    service = kube.get_json("modeldeployment", "open", "-n", ns)["status"]["endpoint"]["service"]
    spec = kube.get_json("service", service, "-n", ns)["spec"]
    moderation = f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}/v1/moderations"
    screening = {
        "CONTENT_SAFETY_FILTERS": "baseline,moderation,guard",
        "CONTENT_SAFETY_MODERATION_URL": moderation,
        "CONTENT_SAFETY_GUARD_ENDPOINT": "guard",
    }
    operator.upgrade({"settings": screening})  # helm upgrade, which rolls the operator
    try:
        yield workspace
    finally:
        operator.reset()
        kube.kubectl("delete", "modeldeployment", "guard", "-n", ns, "--wait=false", check=False)
        kube.kubectl("delete", "catalogmodel", GUARD_MODEL, "--wait=false", check=False)


def test_the_moderation_and_guard_adapters_each_block_a_prompt(adapters: Workspace) -> None:
    space = adapters
    # Words only the test server's moderation route flags, then words only its guard mode flags.
    wait_for(lambda: space.code("screened", "a flag-violence b") == "content_filter", 90, "the moderation adapter")
    with pytest.raises(openai.BadRequestError) as by_guard:
        space.client("screened").chat.completions.create(
            model="screened", messages=[{"role": "user", "content": "say unsafe-hate please"}]
        )
    assert by_guard.value.code == "content_filter" and "hate (severity high)" in by_guard.value.message
    assert space.code("screened", "a mild-violence b") == 200  # low: under the endpoint's threshold
    assert space.code("open", "a flag-violence unsafe-hate b") == 200  # still not screened
    blocked = sum(
        sample.value
        for ip in space.kube.ready_ips(space.namespace, "router")
        for family in text_string_to_metric_families(httpx2.get(f"http://{ip}:{ROUTER_PORT}/metrics", timeout=5).text)
        for sample in family.samples
        if sample.name == "modelcatalog_router_content_filtered_total"
        and sample.labels == {"endpoint": "screened", "stage": "prompt", "reason": "hate"}
    )
    assert blocked >= 1
