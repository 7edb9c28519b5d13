"""The workspace router for real: the operator creates it, the pod runner runs it and the model servers as
local processes on their loopback pod IPs, and the real `openai` client calls it.

One workspace for the module (GPU nodes are few): endpoint `chat` = chat-blue (2 replicas, 90 %) +
chat-green (10 %), endpoint `embed` (embeddings). Traffic goes only to 127.0.0.0/8. The TLS test
switches the workspace to HTTPS, so it comes last.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.kube import Kube, wait_for

pytestmark = pytest.mark.usefixtures("operator")

A100_1X = "standard-nc24ads-a100-v4"  # two 1-GPU nodes
H100_8X = "standard-nd96isr-h100-v5"  # one 8-GPU node
T4_1X = "standard-nc4as-t4-v3"  # one 1-GPU node
BLUE_MODEL = "meta-llama-3-8b-instruct"
GREEN_MODEL = "mistralai-mistral-7b-instruct-v01"
EMBED_MODEL = "sentence-transformers-all-minilm-l6-v2"
GREEN_TIMEOUT = 2  # seconds: chat-green's requestTimeoutSeconds
ALLOWED = "203.0.113.0/24"  # documentation range: only written into the Service, never contacted
ROUTER_PORT = 8080
PIN = "x-modelcatalog-deployment"


def md(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def keys(kube: Kube, namespace: str, endpoint: str) -> dict[str, str]:
    return kube.secret_data(f"{endpoint}-keys", namespace)


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def router_pods(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    pods = kube.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/component=router")["items"]
    return [p for p in pods if ready(p)]


def answers(url: str, **options: Any) -> bool:
    try:
        return httpx2.get(url, timeout=2, **options).status_code == 200
    except httpx2.HTTPError:
        return False


class Workspace:
    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.ip = ""  # one router pod: its metrics then count every request of this module

    @property
    def base_url(self) -> str:
        return f"http://{self.ip}:{ROUTER_PORT}/v1"

    def client(self, key: str | None, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=key or "", max_retries=0, timeout=30, **options)

    def key(self, endpoint: str = "chat", slot: str = "primary") -> str:
        return keys(self.kube, self.namespace, endpoint)[slot]

    def pick_router(self) -> str:
        pods = wait_for(lambda: router_pods(self.kube, self.namespace), 60, "a ready router pod")
        self.ip = sorted(p["status"]["podIP"] for p in pods)[0]
        return self.ip

    def status(self, path: str, key: str | None, body: dict[str, Any], **headers: str) -> int:
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx2.post(f"{self.base_url}/{path}", json=body, headers=auth | headers, timeout=30)
        return response.status_code


def chat_body(endpoint: str = "chat", text: str = "one two three") -> dict[str, Any]:
    return {"model": endpoint, "messages": [{"role": "user", "content": text}]}


@pytest.fixture(scope="module")
def workspace(installed: Kube) -> Iterator[Workspace]:
    kube = installed
    namespace = f"t-router-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", namespace)
    network = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "WorkspaceNetwork",
               "metadata": {"name": "workspace", "namespace": namespace},
               "spec": {"publicNetworkAccess": "Enabled", "allowedIpRanges": [ALLOWED]}}  # fmt: skip
    kube.apply(
        network,
        md(namespace, "chat-blue", model=BLUE_MODEL, instanceType=A100_1X, instanceCount=2,
           endpointName="chat", trafficPercent=90),
        md(namespace, "chat-green", model=GREEN_MODEL, instanceType=H100_8X, endpointName="chat",
           trafficPercent=10, requestSettings={"requestTimeoutSeconds": GREEN_TIMEOUT}),
        md(namespace, "embed", model=EMBED_MODEL, instanceType=T4_1X),
    )  # fmt: skip
    for name in ("chat-blue", "chat-green", "embed"):
        kube.kubectl("wait", "--for=condition=Ready", f"modeldeployment/{name}", "-n", namespace, "--timeout=120s")
    space = Workspace(kube, namespace)
    space.pick_router()
    key = space.key()
    wait_for(lambda: space.status("chat/completions", key, chat_body(), **{PIN: "chat-green"}) == 200, 60,
             "the router serving chat-green")  # fmt: skip
    wait_for(lambda: space.status("embeddings", space.key("embed"), {"model": "embed", "input": "x"}) == 200, 60,
             "the router serving embed")  # fmt: skip
    yield space
    kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_pods_and_services_are_on_loopback_and_the_status_names_the_router(workspace: Workspace) -> None:
    kube, ns = workspace.kube, workspace.namespace
    pods = kube.get_json("pods", "-n", ns)["items"]
    assert len(pods) >= 6  # 2 routers, 2 chat-blue, chat-green, embed
    assert all(ipaddress.ip_address(p["status"]["podIP"]).is_loopback for p in pods)
    service = kube.get_json("service", "modelcatalog-router", "-n", ns)
    assert ipaddress.ip_address(service["spec"]["clusterIP"]).is_loopback
    status = kube.get_json("modeldeployment", "chat-blue", "-n", ns)["status"]["endpoint"]
    assert status["url"] == f"http://modelcatalog-router.{ns}.svc.cluster.local/v1"


def test_chat_streaming_embeddings_and_models_with_the_openai_client(workspace: Workspace) -> None:
    client = workspace.client(workspace.key())
    reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello router world"}])
    assert reply.choices[0].message.content == "world router hello"
    assert reply.usage is not None and reply.usage.prompt_tokens == 3
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "a b c d"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "d c b a" and len(chunks) >= 5
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    embed = workspace.client(workspace.key("embed"))
    vectors = embed.embeddings.create(model="embed", input=["first", "second"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 8
    assert [m.id for m in client.models.list()] == ["chat"]
    assert [m.id for m in embed.models.list()] == ["embed"]


def test_the_service_cluster_ip_forwards_to_a_router(workspace: Workspace) -> None:
    service = workspace.kube.get_json("service", "modelcatalog-router", "-n", workspace.namespace)
    client = openai.OpenAI(base_url=f"http://{service['spec']['clusterIP']}/v1", api_key=workspace.key(),
                           max_retries=0, timeout=30)  # fmt: skip
    assert [m.id for m in client.models.list()] == ["chat"]


def test_wrong_missing_and_another_endpoints_key_are_refused(workspace: Workspace) -> None:
    for key in ("not-a-key", workspace.key("embed")):  # a wrong key, and a valid key of another endpoint
        with pytest.raises(openai.AuthenticationError) as refused:
            workspace.client(key).chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
        assert refused.value.code == "invalid_api_key"
        assert key not in str(refused.value.body)
    assert workspace.status("chat/completions", None, chat_body()) == 401  # the openai client insists on a key


def test_a_rotated_key_is_refused_and_the_secondary_stays_valid(workspace: Workspace) -> None:
    old = workspace.key()
    secondary = workspace.key(slot="secondary")
    workspace.kube.kubectl("annotate", "modeldeployment", "chat-blue", "-n", workspace.namespace,
                           "modelcatalog.io/rotate-key=primary/router-test")  # fmt: skip
    new = wait_for(lambda: (k := workspace.key()) != old and k, 30, "a new primary key")
    wait_for(lambda: workspace.status("chat/completions", old, chat_body()) == 401, 30, "the old key refused")
    assert workspace.status("chat/completions", new, chat_body()) == 200
    assert workspace.status("chat/completions", secondary, chat_body()) == 200


def test_a_90_10_split_over_1000_requests(workspace: Workspace) -> None:
    started = time.monotonic()
    served = asyncio.run(count_models(workspace, 1000, concurrency=16))
    print(f"split over 1,000 requests in {time.monotonic() - started:.1f} s: {dict(served)}")
    assert sum(served.values()) == 1000, served
    green = served[GREEN_MODEL] / 10  # percent
    assert 7 <= green <= 13, served


async def count_models(workspace: Workspace, total: int, concurrency: int, **headers: str) -> Counter[str]:
    """How many requests each served model answered (the router tells the backend its model name)."""
    served: Counter[str] = Counter()
    auth = {"Authorization": f"Bearer {workspace.key()}"} | headers
    todo = iter(range(total))
    async with httpx2.AsyncClient(base_url=workspace.base_url, headers=auth, timeout=30) as client:

        async def worker() -> None:
            for _ in todo:
                response = await client.post("/chat/completions", json=chat_body())
                served[response.json()["model"] if response.status_code == 200 else response.status_code] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return served


def test_the_pinning_header_chooses_the_deployment(workspace: Workspace) -> None:
    assert asyncio.run(count_models(workspace, 30, 4, **{PIN: "chat-green"})) == Counter({GREEN_MODEL: 30})
    assert asyncio.run(count_models(workspace, 30, 4, **{PIN: "chat-blue"})) == Counter({BLUE_MODEL: 30})
    assert workspace.status("chat/completions", workspace.key(), chat_body(), **{PIN: "nope"}) == 404


def test_a_model_server_pod_deleted_mid_run_fails_no_request(workspace: Workspace) -> None:
    kube, ns = workspace.kube, workspace.namespace
    blue = kube.get_json("pods", "-n", ns, "-l", "modelcatalog.io/deployment=chat-blue")["items"]
    assert len([p for p in blue if ready(p)]) == 2

    async def run() -> Counter[str]:
        load = asyncio.create_task(count_models(workspace, 400, 4, **{PIN: "chat-blue"}))
        await asyncio.sleep(0.3)
        victim = blue[0]["metadata"]["name"]
        await asyncio.to_thread(kube.kubectl, "delete", "pod", victim, "-n", ns, "--wait=false")
        return await load

    served = asyncio.run(run())
    assert served == Counter({BLUE_MODEL: 400}), served
    retries = metric(workspace, "modelcatalog_router_connect_retries_total")
    print(f"pod deleted mid-run: 400/400 answered, connect retries so far {retries:.0f}")


def test_a_hanging_backend_gets_504_in_the_configured_time(workspace: Workspace) -> None:
    started = time.monotonic()
    status = workspace.status(
        "chat/completions", workspace.key(), chat_body(), **{PIN: "chat-green", "x-test-hang": "1"}
    )
    elapsed = time.monotonic() - started
    assert status == 504
    assert GREEN_TIMEOUT <= elapsed < GREEN_TIMEOUT + 3, elapsed


def test_token_mode_with_real_service_account_tokens(workspace: Workspace) -> None:
    kube, ns = workspace.kube, workspace.namespace
    for account in ("scorer", "stranger"):
        kube.kubectl("create", "serviceaccount", account, "-n", ns)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "score-embed", "namespace": ns},
            "rules": [{"apiGroups": ["modelcatalog.io"], "resources": ["modeldeployments"],
                       "verbs": ["score"]}]}  # fmt: skip
    kube.apply(role)
    kube.kubectl(
        "create", "rolebinding", "scorer-embed", "-n", ns, "--role=score-embed", f"--serviceaccount={ns}:scorer"
    )
    tokens = {
        a: kube.kubectl("create", "token", a, "-n", ns, "--duration=10m").stdout.strip() for a in ("scorer", "stranger")
    }
    workspace.kube.apply(md(ns, "embed", model=EMBED_MODEL, instanceType=T4_1X, authMode="token"))
    body = {"model": "embed", "input": "tokens"}
    try:
        wait_for(lambda: workspace.status("embeddings", tokens["scorer"], body) == 200, 30, "the token accepted")
        assert workspace.status("embeddings", tokens["stranger"], body) == 403
        assert workspace.status("embeddings", "not.a.token", body) == 401
        vectors = workspace.client(tokens["scorer"]).embeddings.create(model="embed", input="via openai")
        assert len(vectors.data) == 1
    finally:
        workspace.kube.apply(md(ns, "embed", model=EMBED_MODEL, instanceType=T4_1X, authMode="key"))


def metric(workspace: Workspace, name: str, **labels: str) -> float:
    text = httpx2.get(f"http://{workspace.ip}:{ROUTER_PORT}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_count_requests_and_rejections_by_reason(workspace: Workspace) -> None:
    workspace.status("chat/completions", "wrong", chat_body())
    workspace.status("chat/completions", None, chat_body())
    answered = metric(workspace, "modelcatalog_router_requests_total", endpoint="chat", status="200")
    refused = {
        reason: metric(workspace, "modelcatalog_router_rejections_total", reason=reason)
        for reason in ("invalid_api_key", "missing_key", "timeout", "deployment_not_found")
    }
    print(f"router metrics: chat 200s {answered:.0f}, rejections {refused}")
    assert answered >= 1000
    assert all(count >= 1 for count in refused.values()), refused
    assert metric(workspace, "modelcatalog_router_tokens_total", endpoint="chat", kind="prompt") > 0


def test_a_public_workspace_gets_a_load_balancer_limited_to_its_allowed_ranges(workspace: Workspace) -> None:
    spec = workspace.kube.get_json("service", "modelcatalog-router", "-n", workspace.namespace)["spec"]
    assert spec["type"] == "LoadBalancer"
    assert spec["loadBalancerSourceRanges"] == [ALLOWED]
    assert spec["externalTrafficPolicy"] == "Local"


ROUTER_KINDS = "serviceaccount,role,rolebinding,deployment,service"


def router_objects(kube: Kube, namespace: str) -> list[str]:
    selector = f"modelcatalog.io/owner-kind=Workspace,modelcatalog.io/owner-name={namespace}"
    found = kube.kubectl("get", ROUTER_KINDS, "-n", namespace, "-l", selector, "-o", "name").stdout.split()
    found += kube.kubectl("get", "clusterrolebinding", "-l", selector, "-o", "name").stdout.split()
    return sorted(found)


def test_the_router_comes_with_the_first_endpoint_is_restored_and_goes_with_the_last(
    kube: Kube, namespace: str
) -> None:
    kube.apply(md(namespace, "idle", model=BLUE_MODEL, instanceType=A100_1X, instanceCount=0))
    every = wait_for(lambda: len(found := router_objects(kube, namespace)) == 6 and found, 30, "the router's objects")
    assert f"clusterrolebinding.rbac.authorization.k8s.io/modelcatalog-router-{namespace}" in every
    kube.kubectl("delete", "role", "modelcatalog-router", "-n", namespace)
    wait_for(lambda: router_objects(kube, namespace) == every, 30, "the deleted Role restored")
    kube.kubectl("delete", "modeldeployment", "idle", "-n", namespace)
    wait_for(lambda: router_objects(kube, namespace) == [], 30, "the router pruned with the last endpoint")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def certificate(directory: Path, ip: str, dns: str) -> Path:
    """A CA and a server certificate for the router (its Service IP and DNS name); returns the CA file."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca", cwd=directory
    )
    openssl("req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=modelcatalog-router", cwd=directory)
    (directory / "san.ext").write_text(f"subjectAltName=IP:{ip},DNS:{dns}\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tls.crt", "-days", "1", "-extfile", "san.ext", cwd=directory)  # fmt: skip
    return directory / "ca.crt"


def test_tls_with_a_generated_certificate_verified_by_the_openai_client(workspace: Workspace, tmp_path: Path) -> None:
    """Last: the workspace serves HTTPS from here on."""
    kube, ns = workspace.kube, workspace.namespace
    ip = kube.get_json("service", "modelcatalog-router", "-n", ns)["spec"]["clusterIP"]
    ca = certificate(tmp_path, ip, f"modelcatalog-router.{ns}.svc.cluster.local")
    kube.kubectl("create", "secret", "tls", "router-tls", "-n", ns,
                 f"--cert={tmp_path / 'tls.crt'}", f"--key={tmp_path / 'tls.key'}")  # fmt: skip
    kube.kubectl("patch", "workspacenetwork", "workspace", "-n", ns, "--type=merge",
                 "-p", json.dumps({"spec": {"tlsSecretName": "router-tls"}}))  # fmt: skip
    url = f"https://{ip}:443"
    trusting = ssl.create_default_context(cafile=str(ca))
    wait_for(lambda: answers(f"{url}/readyz", verify=trusting), 90, "the router answering HTTPS on its Service")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=workspace.key(), max_retries=2, timeout=30,
                           http_client=httpx2.Client(verify=trusting))  # fmt: skip
    reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "secure hello"}])
    assert reply.choices[0].message.content == "hello secure"
    status = kube.get_json("modeldeployment", "chat-blue", "-n", ns)["status"]["endpoint"]
    assert status["url"] == f"https://modelcatalog-router.{ns}.svc.cluster.local/v1"
    with pytest.raises(openai.APIConnectionError):  # a client that does not trust the CA refuses the router
        openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0).models.list()
