"""ServerlessEndpoints for real: the operator runs one shared pool per model and the serverless gateway in the
serverless namespace, the pod runner runs the pool's model server, the gateway and each workspace's router as local
processes, and the real `openai` client calls an endpoint through its workspace router, which hands the request to
the gateway with its ServiceAccount token. Traffic goes only to 127.0.0.0/8.

The test operator offers Phi-3-mini and Mistral-7B-Instruct on its own pool (localcluster/testbed-values.yaml); for
the upstream test it runs with a provider (the test server, checking a credential) on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from modelcatalog.localcluster.launcher import free_port
from modelcatalog.localcluster.release import ChartOperator
from modelcatalog.settings import Settings
from tests.integration.kube import Kube, wait_for
from tests.netpol import Cluster, Peer, find_cyclonus, live_pod, live_reachable

pytestmark = pytest.mark.usefixtures("operator")

POOL_MODEL = "phi-3-mini-4k-instruct"
THIRD_PARTY = "mistralai-mistral-7b-instruct-v01"  # on the pool too, but terms are required
RETIRED_OFFER = "meta-llama-3-8b-instruct"  # its serverless offer is retired and it is not on the pool
OTHER_REGIONS = "cohere-embed-v3-english"  # offered serverless in seven cloud regions, not "local"
POOL_NAMESPACE = Settings().serverless_namespace
UPSTREAM_MODEL = "gpt-5-1"  # a serverless offer with no weights (the provider runs it) and no region list
ROUTER_PORT = GATEWAY_PORT = 8080
FINALIZER = "modelcatalog.io/model-pool"
GATEWAY = "modelcatalog-serverless-gateway"


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
    return wait_for(lambda: kube.ready_ips(namespace, "router"), 90, f"a ready router in {namespace}")[0]


def accepts(ip: str | None, port: int) -> bool:
    """Whether a pod's process takes connections (kwok marks a pod Ready before the runner's probe has run)."""
    try:
        socket.create_connection((ip or "", port), timeout=1).close()
    except OSError:
        return False
    return True


def gateway_ip(kube: Kube) -> str:
    def listening() -> list[str]:
        ips = kube.ready_ips(POOL_NAMESPACE, "serverless-gateway")
        return [ip for ip in ips if accepts(ip, GATEWAY_PORT)]

    return wait_for(listening, 90, "a gateway pod taking connections")[0]


def key(kube: Kube, namespace: str, endpoint: str) -> str:
    return kube.secret_data(f"{endpoint}-keys", namespace)["primary"]


def client(kube: Kube, namespace: str, endpoint: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"http://{router_ip(kube, namespace)}:{ROUTER_PORT}/v1",
        api_key=key(kube, namespace, endpoint),
        max_retries=0,
        timeout=30,
    )


def ask(kube: Kube, namespace: str, endpoint: str) -> openai.types.chat.ChatCompletion:
    caller = client(kube, namespace, endpoint)

    def answered() -> openai.types.chat.ChatCompletion | None:
        try:
            return caller.chat.completions.create(model=endpoint, messages=[{"role": "user", "content": "one two"}])
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
    assert found["backend"]["gateway"].startswith("127.")  # the workspace router's target: the gateway's Service
    assert FINALIZER in kube.get_json("serverlessendpoint", "chat", "-n", namespace)["metadata"]["finalizers"]
    gateway = kube.get_json("deployment", GATEWAY, "-n", POOL_NAMESPACE)
    assert gateway["spec"]["replicas"] == 2 and gateway["spec"]["template"]["spec"]["serviceAccountName"] == GATEWAY

    # client -> workspace router -> gateway -> pool, the answer and a stream unchanged on the way back
    reply = ask(kube, namespace, "chat")
    assert reply.choices[0].message.content and reply.usage is not None and reply.usage.completion_tokens > 0
    stream = client(kube, namespace, "chat").chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "three two one"
    assert chunks[-1].usage is not None  # the gateway asked the pool for it, to meter the stream
    usage = httpx2.get(
        f"http://{router_ip(kube, namespace)}:{ROUTER_PORT}/v1/usage",
        headers={"Authorization": f"Bearer {key(kube, namespace, 'chat')}"},
        timeout=10,
    ).json()["data"]
    assert [u["endpoint"] for u in usage] == ["chat"]
    # The gateway's meter: its replicas share the store's counts (this replica's own are in "requests").
    assert usage[0]["today"]["requests"] >= 2 and usage[0]["month"]["output_tokens"] >= 3

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


def gateway_status(ip: str, token: str | None, endpoint: str = "chat") -> int:
    """A call straight to a gateway pod, as a workspace router makes it (or something else in its place)."""
    headers = {"x-modelcatalog-endpoint": endpoint} | ({"Authorization": f"Bearer {token}"} if token else {})
    body = {"model": "chat", "messages": [{"role": "user", "content": "one"}]}
    url = f"http://{ip}:{GATEWAY_PORT}/v1/chat/completions"
    return httpx2.post(url, json=body, headers=headers, timeout=30).status_code


@pytest.mark.usefixtures("pool_namespace")
def test_the_gateway_admits_only_workspace_routers_and_the_pool_only_the_gateway(
    installed: Kube, namespace: str
) -> None:
    kube = installed
    kube.apply(se(namespace, "chat", model=POOL_MODEL))
    wait_for(lambda: status(kube, namespace, "chat").get("phase") == "Ready", 120, "endpoint chat Ready")
    ask(kube, namespace, "chat")
    ip = gateway_ip(kube)
    router_token = kube.kubectl("create", "token", "modelcatalog-router", "-n", namespace).stdout.strip()
    other_token = kube.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    assert gateway_status(ip, router_token) == 200  # what the workspace router does
    assert gateway_status(ip, None) == 401
    assert gateway_status(ip, "not-a-token") == 401
    assert gateway_status(ip, other_token) == 403  # a valid token, but not a workspace router's
    assert gateway_status(ip, router_token, "no-such-endpoint") == 404

    if find_cyclonus() is None:
        pytest.skip("cyclonus is not built (make tools): the NetworkPolicy half cannot be analysed")
    live = Cluster(kubeconfig=kube.kubeconfig, kubectl=kube.kubectl_binary)

    def ready_pod(namespace: str, component: str) -> Peer:
        pods = wait_for(lambda: kube.ready_pods(namespace, component), 60, f"a ready {component} pod")
        return live_pod(live, namespace, pods[0]["metadata"]["name"])

    router = ready_pod(namespace, "router")
    gateway = ready_pod(POOL_NAMESPACE, "serverless-gateway")
    pool = ready_pod(POOL_NAMESPACE, "model-pool")
    port = Settings().model_server_port
    assert live_reachable(router, gateway, GATEWAY_PORT, cluster=live)
    assert live_reachable(gateway, pool, port, cluster=live)
    assert not live_reachable(router, pool, port, cluster=live)  # no way around the gateway's meter
    kube.kubectl("delete", "serverlessendpoint", "chat", "-n", namespace, "--wait=true", "--timeout=60s")


@pytest.mark.usefixtures("pool_namespace")
def test_refusals_are_conditions_that_name_the_fix(installed: Kube, namespace: str) -> None:
    kube = installed
    refused = {f"pool-{m}" for m in (OTHER_REGIONS, THIRD_PARTY, RETIRED_OFFER)}
    # An accepted endpoint of THIRD_PARTY in an earlier test's namespace keeps its pool until that namespace is gone.
    wait_for(lambda: not refused & set(pools(kube)), 120, "earlier tests' pools of these models gone")
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
    assert not refused & set(pools(kube))  # refused endpoints start no pool
    kube.apply(se(namespace, "terms", model=THIRD_PARTY, acceptTerms=True))  # the fix named
    wait_for(
        lambda: (condition(kube, namespace, "terms", "Accepted") or {}).get("status") == "True", 60, "terms accepted"
    )
    assert refused & set(pools(kube)) == {f"pool-{THIRD_PARTY}"}
    kube.kubectl("delete", "serverlessendpoints", "--all", "-n", namespace, "--wait=true", "--timeout=60s")
    assert not refused & set(pools(kube))


@pytest.fixture
def provider(installed: Kube, pool_namespace: str, operator: ChartOperator) -> Iterator[str]:
    """The test server as the upstream provider on 127.0.0.1, checking a credential that the platform team put in a
    Secret of the serverless namespace; the session's operator upgraded with the provider configured (and back)."""
    credential = f"provider-credential-{uuid.uuid4().hex}"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "modelcatalog.localcluster.testserver", "--host", "127.0.0.1", "--port", str(port)],
        env=os.environ | {"MODELCATALOG_TESTSERVER_API_KEY": credential},
    )
    installed.kubectl("create", "secret", "generic", "upstream-provider", "-n", pool_namespace,
                      f"--from-literal=apiKey={credential}")  # fmt: skip
    upstream = {
        "SERVERLESS_UPSTREAM_URL": f"http://127.0.0.1:{port}",
        "SERVERLESS_UPSTREAM_SECRET": "upstream-provider",
    }
    operator.upgrade({"settings": upstream})  # as a platform team would: helm upgrade, which rolls the operator
    try:
        yield credential
    finally:
        operator.reset()
        installed.kubectl("delete", "secret", "upstream-provider", "-n", pool_namespace, check=False)
        server.terminate()
        server.wait(timeout=10)


def test_an_upstream_endpoint_is_served_by_the_provider_with_a_credential_nobody_else_sees(
    installed: Kube, namespace: str, provider: str
) -> None:
    kube = installed
    kube.apply(se(namespace, "api-chat", model=UPSTREAM_MODEL))
    wait_for(lambda: status(kube, namespace, "api-chat").get("phase") == "Ready", 120, "endpoint api-chat Ready")
    # Every gateway replica has the provider's settings (the operator restarted with them).
    kube.kubectl("rollout", "status", f"deployment/{GATEWAY}", "-n", POOL_NAMESPACE, "--timeout=120s")
    wait_for(lambda: (condition(kube, namespace, "api-chat") or {}).get("reason") == "UpstreamReady", 60,
             "the status to follow the gateway's rollout")  # fmt: skip
    found = status(kube, namespace, "api-chat")
    assert found["backend"]["kind"] == "Upstream" and found["backend"]["credentialSecret"] == "upstream-provider"

    reply = ask(kube, namespace, "api-chat")  # client -> workspace router -> gateway -> provider, with the credential
    assert reply.choices[0].message.content == "two one" and reply.model == UPSTREAM_MODEL
    stream = client(kube, namespace, "api-chat").chat.completions.create(
        model="api-chat", messages=[{"role": "user", "content": "a b c"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "c b a"
    usage = httpx2.get(
        f"http://{router_ip(kube, namespace)}:{ROUTER_PORT}/v1/usage",
        headers={"Authorization": f"Bearer {key(kube, namespace, 'api-chat')}"},
        timeout=10,
    ).json()["data"]
    assert usage[0]["endpoint"] == "api-chat" and usage[0]["requests"] >= 2  # metered as for a pool

    # The credential is in its Secret and nowhere a workspace user or an operator's reader looks.
    everything = [
        json.dumps(kube.get_json("serverlessendpoints", "-A")),
        json.dumps(kube.get_json("events", "-A")),
        json.dumps(kube.get_json("deployments,pods", "-n", POOL_NAMESPACE)),
        json.dumps(kube.get_json("all", "-n", namespace)),
    ]
    logs = [kube.pods_dir] if kube.pods_dir else []  # every pod's output, the operator's included
    everything += [p.read_text(errors="replace") for d in logs for p in Path(d).rglob("*.log")]
    assert not [text for text in everything if provider in text]
    kube.kubectl("delete", "serverlessendpoint", "api-chat", "-n", namespace, "--wait=true", "--timeout=60s")
