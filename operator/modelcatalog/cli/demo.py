"""`modelcatalog demo`: the local cluster, the Helm chart (CRDs, default catalog, the operator's pods), the
examples, and a tour."""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import time
import urllib.error
import urllib.request

from modelcatalog.cli.errors import CliError, ExitCode
from modelcatalog.localcluster import ClusterStartError, LocalCluster, store
from modelcatalog.localcluster.cluster import REPO_ROOT
from modelcatalog.localcluster.launcher import TESTBED_VALUES

NAMESPACE = "demo"
RELEASE, SYSTEM = "modelcatalog", "modelcatalog-system"
READY = ("llama3-chat", "mistral-blue", "mistral-green")
PENDING = "mixtral-large"
SERVERLESS = "phi-mini"  # examples/serverless.yaml
POOL_MODEL = "phi-3-mini-4k-instruct"  # its model, on the platform's own pool
POOL_PRICES = ("0.13", "0.52")  # USD per 1M input and output tokens, the demo's


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser(
        "demo", help="start the local cluster, install the chart, apply the examples, and show them"
    )
    parser.add_argument("--name", default="modelcatalog", help="cluster name (default: modelcatalog)")
    parser.set_defaults(run=run)


def step(text: str) -> float:
    print(f"==> {text}", flush=True)
    return time.monotonic()


def done(started: float) -> None:
    print(f"    done in {time.monotonic() - started:.1f} s", flush=True)


def run(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    started = step("obtaining the control-plane binaries (first time: builds from Go modules, ~15-25 minutes)")
    cluster.tool("kubectl")
    done(started)
    started = step("starting etcd, kube-apiserver, controller-manager, scheduler and kwok with GPU node pools")
    try:
        cluster.up()
    except ClusterStartError as error:
        raise CliError(str(error), ExitCode.UNAVAILABLE) from error
    done(started)
    started = step(f"helm install {RELEASE} charts/modelcatalog -n {SYSTEM} (CRDs, default catalog, operator pods)")
    install_chart(cluster)
    done(started)
    started = step("waiting for the operator's two pods (the pod runner runs them as local processes)")
    cluster.kubectl("rollout", "status", "deployment/modelcatalog-operator", "-n", SYSTEM, "--timeout=180s")
    print(f"    logs: {cluster.pods_dir.relative_to(REPO_ROOT)}/{SYSTEM}_modelcatalog-operator-*.log")
    done(started)
    started = step(f"applying examples/ in namespace {NAMESPACE} and waiting for the deployments")
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(REPO_ROOT / "examples"))
    for name in READY:
        cluster.kubectl("wait", "-n", NAMESPACE, "--for=condition=Ready", f"modeldeployment/{name}", "--timeout=180s")
    wait_pending_reason(cluster)
    done(started)
    tour(cluster)
    call_through_router(cluster)
    serverless_usage(cluster)
    return ExitCode.OK


def install_chart(cluster: LocalCluster) -> None:
    """The chart with its defaults and the test bed's few values (localcluster/testbed-values.yaml);
    the image is the project's, which the pod runner runs (docs/development.md)."""
    helm = [
        cluster.tool("helm"), "--kubeconfig", str(cluster.kubeconfig), "install", RELEASE,
        str(REPO_ROOT / "charts" / "modelcatalog"), "-n", SYSTEM, "--create-namespace", "--timeout", "2m",
        "-f", str(TESTBED_VALUES), *store_values(cluster),
    ]  # fmt: skip
    result = subprocess.run(helm, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CliError(f"helm install failed: {result.stderr.strip()}")
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def store_values(cluster: LocalCluster) -> list[str]:
    """The cluster's redis-server as the chart's serverless store (`--set` flags)."""
    values = store.chart_values(store.read_settings(cluster.store_settings), cluster.kubectl, SYSTEM)
    found = values.get("serverless", {}).get("store", {})
    return [arg for key, value in found.items() for arg in ("--set", f"serverless.store.{key}={value}")]


def serverless_usage(cluster: LocalCluster, timeout: float = 120) -> None:
    """A chat completion on the serverless example, then its status: URL, prices, limits and usage."""
    address = router_address(cluster)
    secret = json.loads(cluster.kubectl("get", "secret", f"{SERVERLESS}-keys", "-n", NAMESPACE, "-o", "json"))
    key = base64.b64decode(secret["data"]["primary"]).decode()
    deadline = time.monotonic() + timeout
    price_the_pool(cluster, deadline)
    print(f"--- A chat completion on the serverless endpoint {SERVERLESS} (the shared pool), then its status")
    before = requests_metered(cluster)
    status, _ = chat(f"http://{address}/v1/chat/completions", key, model=SERVERLESS)
    while status != 200 and time.monotonic() < deadline:  # the pool may still be starting
        time.sleep(2)
        status, _ = chat(f"http://{address}/v1/chat/completions", key, model=SERVERLESS)
    print(f"    HTTP {status}")
    metered = bool(store.read_settings(cluster.store_settings))  # the test bed runs a store where Redis is installed
    while metered and requests_metered(cluster) <= before and time.monotonic() < deadline:
        time.sleep(1)  # the gateway meters it; the operator writes it into status.usage
    found = json.loads(cluster.kubectl("get", "serverlessendpoint", SERVERLESS, "-n", NAMESPACE, "-o", "json"))
    shown = {k: found.get("status", {}).get(k) for k in ("url", "pricing", "rateLimits", "usage")}
    print("    " + json.dumps(shown, indent=2).replace("\n", "\n    "))


def requests_metered(cluster: LocalCluster) -> int:
    found = json.loads(cluster.kubectl("get", "serverlessendpoint", SERVERLESS, "-n", NAMESPACE, "-o", "json"))
    return int(((found.get("status") or {}).get("usage") or {}).get("requests") or 0)


def price_the_pool(cluster: LocalCluster, deadline: float) -> None:
    """The platform team prices its pool offer (prices.yaml does it for a whole catalog, docs/cli.md); the
    endpoint's status shows the prices and the gateway meters the cost at them."""
    prices = " / ".join(POOL_PRICES)
    print(f"--- The platform team prices its pool offer of {POOL_MODEL}: USD {prices} per 1M input / output tokens")
    serverless = {
        "pricing": {"currency": "USD", "inputPer1MTokens": POOL_PRICES[0], "outputPer1MTokens": POOL_PRICES[1]}
    }
    patch = {"spec": {"deploymentOptions": {"serverless": serverless}}}
    cluster.kubectl("patch", "catalogmodel", POOL_MODEL, "--type", "merge", "-p", json.dumps(patch))
    while time.monotonic() < deadline:
        found = json.loads(cluster.kubectl("get", "serverlessendpoint", SERVERLESS, "-n", NAMESPACE, "-o", "json"))
        if (found.get("status") or {}).get("pricing", {}).get("inputPer1MTokens") == POOL_PRICES[0]:
            return
        time.sleep(1)


def router_address(cluster: LocalCluster, timeout: float = 90) -> str:
    """A ready router pod's IP and port: the pod runner runs the router there as a local process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = json.loads(cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=router",
                                          "-o", "json"))["items"]  # fmt: skip
        for pod in pods:
            conditions = pod.get("status", {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
                return f"{pod['status']['podIP']}:{port}"
        time.sleep(1)
    raise CliError(f"no router pod of namespace {NAMESPACE} became ready within {timeout:.0f} s")


def chat(url: str, key: str | None, timeout: float = 30, model: str = "llama3-chat") -> tuple[int, dict[str, object]]:
    body = {"model": model, "messages": [{"role": "user", "content": "hello from the model catalog demo"}]}
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310 (http)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (a loopback pod IP)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def call_through_router(cluster: LocalCluster, timeout: float = 60) -> None:
    """A real chat completion through the workspace router with the endpoint's key, and the same
    request refused without it."""
    address = router_address(cluster)
    url = f"http://{address}/v1/chat/completions"
    secret = json.loads(cluster.kubectl("get", "secret", "llama3-chat-keys", "-n", NAMESPACE, "-o", "json"))
    key = base64.b64decode(secret["data"]["primary"]).decode()
    print(f"--- A chat completion through the workspace router ({url}), with the key from Secret llama3-chat-keys")
    deadline = time.monotonic() + timeout
    status, reply = chat(url, key)
    while status != 200 and time.monotonic() < deadline:  # the router may still be learning the pods
        time.sleep(1)
        status, reply = chat(url, key)
    print(f"    HTTP {status}: {json.dumps(reply)}")
    if status != 200:
        raise CliError(f"the router did not answer the chat completion: HTTP {status}")
    status, refused = chat(url, None)
    print(f"--- The same request without the key\n    HTTP {status}: {json.dumps(refused)}")
    print("    From the host, with curl:")
    print(f"    curl {url} -H 'Authorization: Bearer '$(kubectl get secret llama3-chat-keys -n {NAMESPACE} \\")
    print("        -o jsonpath='{.data.primary}' | base64 -d) -H 'Content-Type: application/json' \\")
    print("""        -d '{"model": "llama3-chat", "messages": [{"role": "user", "content": "hi"}]}'""")


def wait_pending_reason(cluster: LocalCluster, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(cluster.kubectl("get", "md", PENDING, "-n", NAMESPACE, "-o", "json")).get("status", {})
        if status.get("phase") == "Pending":
            return
        time.sleep(1)
    raise CliError(
        f"{PENDING} did not report Pending within {timeout:.0f} s; see the operator pods' logs in {cluster.pods_dir}"
    )


def tour(cluster: LocalCluster) -> None:
    kubectl = cluster.kubectl
    print("\n--- The catalog: models you can deploy on managed compute, chat tasks")
    print(
        kubectl(
            "get",
            "catalogmodels",
            "-l",
            "modelcatalog.io/managed-compute=true,task.modelcatalog.io/chat-completion=true",
        )
    )
    print("--- Instance types (GPU SKUs mapped to node pools) and the node pools of this cluster")
    print(kubectl("get", "instancetypes"))
    print(kubectl("get", "nodes", "-L", "modelcatalog.io/node-pool", "-L", "nvidia.com/gpu.count"))
    print(f"--- Deployments in namespace {NAMESPACE}")
    print(kubectl("get", "modeldeployments", "-n", NAMESPACE, "-o", "wide"))
    capacity = kubectl("get", "md", PENDING, "-n", NAMESPACE, "-o",
                       "jsonpath={.status.conditions[?(@.type=='CapacityAvailable')].message}")  # fmt: skip
    print(f"--- Why {PENDING} is Pending:\n    {capacity}\n")
    print("--- Children of llama3-chat (keys live only in the Secret)")
    print(kubectl("get", "deployments,services,secrets,pdb,pods", "-n", NAMESPACE,
                  "-l", "modelcatalog.io/owner-name in (llama3-chat)"))  # fmt: skip
    print("--- The workspace's network setting, and the policies that enforce it for every endpoint")
    print(kubectl("get", "workspacenetworks", "-n", NAMESPACE))
    print(kubectl("get", "networkpolicies", "-n", NAMESPACE, check=False) or "    (none yet)\n")
    print("Continue with kubectl:")
    print(f"    export KUBECONFIG={cluster.kubeconfig} PATH={cluster.tools}:$PATH")
    print(f"    kubectl describe modeldeployment {PENDING} -n {NAMESPACE}")
    print("    .venv/bin/modelcatalog models show meta-llama-3-8b-instruct")
    print(
        f"    kubectl get pods -n {SYSTEM}; kubectl get clusterkopfpeering modelcatalog -o yaml   # one active replica"
    )
    print("Stop everything (the cluster, the operator pods and the routers): make cluster-down")
