"""The Helm chart installed as users do: server-side dry run, `helm install`, least privilege, the chart's
operator pods reconciling under the chart's ServiceAccount, the admission webhook called through the chart's
Service and the admission policies, `helm upgrade` (settings roll the pods, CRD schemas
update) and `helm uninstall` (CRDs and users' objects stay).

On the local cluster the pod runner runs the chart's operator pods as local processes (the image is the
project's; docs/development.md), with the pods' own ServiceAccount tokens: the RBAC they meet is exactly the
chart's. The session's operator is a release of the same chart (conftest.py, release.py): the chart's cluster-wide
objects (ClusterRoles, the webhook configuration, the admission policies) have fixed names, so this module
uninstalls the session's release first (the CRDs and the serverless namespace stay: `keep`), installs the chart
with its defaults under the same release name, and installs the session's again when done.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from modelcatalog.localcluster.cluster import find_tools
from modelcatalog.localcluster.release import ChartOperator
from modelcatalog.settings import Settings
from tests.conftest import REPO
from tests.integration.kube import Kube, wait_for

CHART = REPO / "charts" / "modelcatalog"
NS = "modelcatalog-system"
RELEASE = "modelcatalog"
SA = f"system:serviceaccount:{NS}:modelcatalog-operator"
SERVERLESS_NS = Settings().serverless_namespace
DENIED = 'admission webhook "validate.modelcatalog.io" denied the request: '
# The test bed's kube-controller-manager creates the pods of Deployments with the admin credentials (group
# system:masters), not as system:kube-controller-manager: trusted by the workload policy here, as test_policy.py does.
TEST_BED_TRUST = ("--set", "policies.trustedGroups={system:masters}")


def helm(kube: Kube, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(find_tools() / "helm"), "--kubeconfig", str(kube.kubeconfig), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr}")
    return result


def template(kube: Kube, *values: str) -> str:
    """Rendered for the release's namespace, which exists (as `helm install --create-namespace` makes it)."""
    if kube.kubectl("get", "namespace", NS, check=False).returncode != 0:
        kube.kubectl("create", "namespace", NS)
    return helm(kube, "template", RELEASE, str(CHART), "-n", NS, "--kube-version", "1.37.2", *values).stdout


def pod_template_annotations(kube: Kube) -> dict[str, str]:
    deployment = kube.get_json("deployment", "modelcatalog-operator", "-n", NS)
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations


def operator_pods(kube: Kube) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.get_json(
        "pods", "-n", NS, "-l", "app.kubernetes.io/name=modelcatalog,app.kubernetes.io/component=operator"
    )["items"]
    return items


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def uninstall(kube: Kube, check: bool = True) -> None:
    """Scaled to 0 first, so each replica removes its peering record while its RBAC still allows it (helm
    deletes the ClusterRoleBinding with the Deployment: a record left behind would keep counting for the
    peering lifetime and hold back the session's operator); then `helm uninstall`, pods gone."""
    if kube.kubectl("get", "deployment", "modelcatalog-operator", "-n", NS, check=False).returncode == 0:
        kube.kubectl("scale", "deployment/modelcatalog-operator", "-n", NS, "--replicas=0")
        wait_for(lambda: not operator_pods(kube), 90, "the operator pods to go")
    helm(kube, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "2m", check=check)
    wait_for(lambda: not operator_pods(kube), 90, "the operator pods to go")


@pytest.fixture(scope="module")
def release(kube: Kube, operator: ChartOperator) -> Iterator[Kube]:
    """The chart installed as a user would, in place of the session's operator, which comes back afterwards
    whatever fails in between (so one failure here does not take the rest of the suite with it)."""
    operator.uninstall()
    try:
        rendered = template(kube)
        # The whole chart, as rendered, is accepted by the real API server (CRDs and all, before installing). Just
        # after the uninstall the API server's admission may still hold the session release's policy binding whose
        # params are gone ("no params found for policy binding"): that refusal passes in moments, any other stands.
        wait_for(lambda: dry_run(kube, rendered), 30, "a server-side dry run of the chart")
        operator.adopt()  # what a user applied with kubectl before (the CRDs of crds/, ...), as docs/install.md says
        # The default image: the pod runner recognises the project's image and runs the operator's command.
        helm(kube, "install", RELEASE, str(CHART), "-n", NS, "--create-namespace", "--timeout", "2m", *TEST_BED_TRUST)
        yield kube
    finally:
        uninstall(kube, check=False)
        operator.install()


def dry_run(kube: Kube, rendered: str) -> bool:
    result = kube.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
                          stdin=rendered, check=False)  # fmt: skip
    assert result.returncode == 0 or "no params found for policy binding" in result.stderr, result.stderr
    return result.returncode == 0


@pytest.fixture
def chart_operator(release: Kube) -> list[dict[str, Any]]:
    """The chart's operator pods (the default two replicas), rolled out and Ready."""
    release.kubectl("rollout", "status", "deployment/modelcatalog-operator", "-n", NS, "--timeout=180s")

    def ready() -> list[dict[str, Any]]:
        pods = [p for p in operator_pods(release) if not p["metadata"].get("deletionTimestamp")]
        up = [p for p in pods if is_ready(p)]
        return up if len(up) == len(pods) == 2 else []

    return wait_for(ready, 120, "two Ready operator pods")


def can_i(kube: Kube, verb: str, what: str, namespace: str | None = None, *extra: str) -> bool:
    args = ["auth", "can-i", verb, what, f"--as={SA}", *extra]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    return kube.kubectl(*args, check=False).stdout.strip() == "yes"


def test_the_rendered_chart_passes_lint_and_a_server_side_dry_run_with_every_option(kube: Kube) -> None:
    lint = helm(kube, "lint", "--strict", str(CHART), "--kube-version", "1.37.2")
    assert "0 chart(s) failed" in lint.stdout
    rendered = template(kube, "--set", "replicas=1", "--set", "catalog.install=false", "--set", "region=westeurope",
                        "--set", "settings.REQUIRE_PINNED_REVISION=true")  # fmt: skip
    kube.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", stdin=rendered)
    # The webhook, the policies and the serverless namespace off: nothing of them rendered, still valid.
    off = ("--set", "webhook.enabled=false", "--set", "policies.enabled=false",
           "--set", "serverless.createNamespace=false")  # fmt: skip
    lint = helm(kube, "lint", "--strict", str(CHART), "--kube-version", "1.37.2", *off)
    assert "0 chart(s) failed" in lint.stdout
    rendered = template(kube, *off)
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert not kinds & {"ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "Namespace"}, kinds
    assert "MODELCATALOG_WEBHOOK_PORT" not in rendered and "modelcatalog-webhook" not in rendered
    kube.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", stdin=rendered)
    # On, with users and groups the policies trust besides the operator, and another Secret name.
    rendered = template(kube, "--set", "policies.trustedUsers={alice,bob}", "--set", "policies.trustedGroups={ops}",
                        "--set", "webhook.secretName=webhook-cert", "--set", "webhook.port=10443")  # fmt: skip
    params = next(d for d in yaml.safe_load_all(rendered) if d and d["metadata"]["name"] == "modelcatalog-policy")
    assert params["data"] == {"trustedUsers": f"{SA},alice,bob", "trustedGroups": "ops"}
    assert "webhook-cert" in rendered and "10443" in rendered
    kube.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", stdin=rendered)
    bad = helm(kube, "template", RELEASE, str(CHART), "--set", "replicas=0", check=False)
    assert bad.returncode != 0 and "/replicas" in bad.stderr and "minimum" in bad.stderr


def test_the_service_account_gets_what_the_operator_needs_and_nothing_more(release: Kube) -> None:
    kube = release
    for verb, what in [
        ("create", "deployments.apps"), ("delete", "secrets"), ("patch", "networkpolicies.networking.k8s.io"),
        ("watch", "pods"), ("list", "nodes"),
        ("create", "clusterkopfpeerings.kopf.dev"), ("create", "catalogmodels.modelcatalog.io"),
        ("bind", "clusterroles.rbac.authorization.k8s.io/modelcatalog-router-tokenreview"),
        ("bind", "clusterroles.rbac.authorization.k8s.io/modelcatalog-serverless-gateway"),
        # Each workspace's router: a Role and RoleBinding, and a ClusterRoleBinding to the token-review role.
        # The API server's escalation check still limits what these can grant: what the operator holds,
        # and the one ClusterRole it may bind (cluster-admin is refused below).
        ("create", "serviceaccounts"), ("create", "roles"), ("create", "rolebindings"),
        ("patch", "clusterrolebindings"),
        # What the routers' Roles grant, the operator must hold (render/rbac.py DELEGATED): a harmless review.
        ("create", "localsubjectaccessreviews"),
    ]:  # fmt: skip
        assert can_i(kube, verb, what), f"the operator needs {verb} {what}"
    assert can_i(kube, "get", "configmaps/modelcatalog-settings", NS)
    # The webhook: its serving certificate in its namespace, and the caBundle of its one configuration.
    assert can_i(kube, "get", "secrets/modelcatalog-webhook-tls", NS)
    assert can_i(kube, "patch", "secrets/modelcatalog-webhook-tls", NS)
    assert can_i(kube, "patch", "validatingwebhookconfigurations/modelcatalog")
    assert not can_i(kube, "patch", "validatingwebhookconfigurations/another")
    assert not can_i(kube, "list", "validatingwebhookconfigurations")
    assert can_i(kube, "patch", "modeldeployments.modelcatalog.io", None, "--subresource=status")
    for verb, what in [
        ("impersonate", "users"), ("impersonate", "serviceaccounts"), ("escalate", "clusterroles"),
        ("bind", "clusterroles/cluster-admin"), ("create", "clusterroles"), ("patch", "clusterroles"),
        ("create", "pods"), ("create", "tokenreviews"),
        ("delete", "customresourcedefinitions"), ("patch", "customresourcedefinitions"),
        ("update", "modeldeployments.modelcatalog.io"), ("delete", "catalogmodels.modelcatalog.io"),
        ("delete", "namespaces"), ("create", "namespaces"), ("patch", "nodes"),
        ("create", "validatingwebhookconfigurations"), ("delete", "validatingwebhookconfigurations"),
        ("get", "configmaps"), ("list", "configmaps"),
    ]:  # fmt: skip
        assert not can_i(kube, verb, what), f"the operator must not {verb} {what}"
    for resource, subresource in [("pods", "exec"), ("serviceaccounts", "token")]:  # `a/b` would name an object b
        assert not can_i(kube, "create", resource, None, f"--subresource={subresource}"), f"{resource}/{subresource}"
    assert not can_i(kube, "get", "configmaps/kube-root-ca.crt", NS), "ConfigMaps by name only"
    assert not can_i(kube, "get", "configmaps/modelcatalog-settings", "kube-system")


def pod_log(kube: Kube, pod: dict[str, Any]) -> str:
    """The pod's process output, as the pod runner writes it (`kubectl logs` has no kubelet to ask here)."""
    assert kube.pods_dir is not None
    path = kube.pods_dir / f"{NS}_{pod['metadata']['name']}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def process_environ(pod_ip: str) -> dict[str, str]:
    """The environment of the operator process the runner started for the pod at `pod_ip`."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"operator" in argv and f"--metrics-address={pod_ip}".encode() in argv:
                pairs = (proc / "environ").read_bytes().split(b"\0")
                return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
        except OSError:
            continue
    return {}


def token_user(kube: Kube, token: str) -> str:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    result = json.loads(kube.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(review)).stdout)
    return str(result["status"].get("user", {}).get("username", ""))


def chat(router_ip: str, key: str) -> str:
    client = openai.OpenAI(base_url=f"http://{router_ip}:8080/v1", api_key=key, max_retries=0, timeout=30)
    reply = client.chat.completions.create(model="llama3-chat", messages=[{"role": "user", "content": "hello"}])
    return str(reply.choices[0].message.content)


def refused_without_a_key(router_ip: str) -> int:
    body = json.dumps({"model": "llama3-chat", "messages": [{"role": "user", "content": "hello"}]}).encode()
    request = urllib.request.Request(f"http://{router_ip}:8080/v1/chat/completions", body,
                                     {"Content-Type": "application/json"}, method="POST")  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (a loopback pod IP)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def ready_router_ip(kube: Kube, namespace: str) -> str:
    def ready() -> str:
        pods = kube.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/component=router")["items"]
        ips = [p["status"]["podIP"] for p in pods if is_ready(p)]
        return sorted(ips)[0] if ips else ""

    return wait_for(ready, 90, "a ready router pod")


def test_the_charts_operator_pods_reconcile_end_to_end_as_their_service_account_with_one_active_peer(
    release: Kube, chart_operator: list[dict[str, Any]], namespace: str
) -> None:
    kube = release
    names = {p["metadata"]["name"] for p in chart_operator}
    # Peering: both replicas are peers named by their pods (POD_ID); the newest outranks the other, which
    # stands by.
    peers = kube.get_json("clusterkopfpeering", "modelcatalog")["status"]
    assert names <= set(peers), peers
    active = max(peers, key=lambda peer: int(peers[peer]["priority"]))
    assert active in names, f"a chart pod is the active peer: {peers}"
    standby = next(p for p in chart_operator if p["metadata"]["name"] != active)
    wait_for(lambda: "standing by" in pod_log(kube, standby), 30, "the second replica standing by")
    # The default catalog, applied by the operator from the chart's ConfigMap.
    get = ("get", "catalogmodel", "meta-llama-3-8b-instruct", "-o", "json", "--show-managed-fields")
    model = wait_for(lambda: kube.kubectl(*get, check=False).stdout, 60, "the default catalog")
    managers = {m["manager"] for m in json.loads(model)["metadata"]["managedFields"]}
    assert "modelcatalog-default-catalog" in managers
    started = time.monotonic()
    kube.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples/modeldeployment.yaml"))
    kube.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples/workspacenetwork.yaml"))
    kube.kubectl("wait", "--for=condition=Ready", "modeldeployment/llama3-chat", "-n", namespace, "--timeout=120s")
    secret = wait_for(lambda: kube.kubectl("get", "secret", "llama3-chat-keys", "-n", namespace, "-o", "json",
                                           check=False).stdout, 30, "the key Secret")  # fmt: skip
    key = base64.b64decode(json.loads(secret)["data"]["primary"]).decode()
    policies = wait_for(
        lambda: {p["metadata"]["name"] for p in kube.get_json("networkpolicy", "-n", namespace)["items"]}
        >= {"modelcatalog-router-ingress", "modelcatalog-model-server-ingress"}, 60, "the workspace's policies",
    )  # fmt: skip
    assert policies
    # A chat completion through the router pod the chart's operator created, with the key; refused without.
    router = ready_router_ip(kube, namespace)

    def answered() -> str:
        try:
            return chat(router, key)
        except openai.APIError:  # the router may still be learning the model server's pod
            return ""

    assert wait_for(answered, 60, "a chat completion through the router", interval=1)
    print(f"\nchart operator: ModelDeployment applied -> chat answered in {time.monotonic() - started:.1f} s")
    assert refused_without_a_key(router) == 401  # (the openai client insists on a key)
    # Under the pod's own ServiceAccount: the runner gave each operator process a TokenRequest token of the
    # chart's ServiceAccount and no kubeconfig; nothing it asked was refused.
    if kube.pods_dir is not None:
        for pod in chart_operator:
            env = process_environ(pod["status"]["podIP"])
            assert env, f"no operator process for pod {pod['metadata']['name']}"
            assert "KUBECONFIG" not in env and "MODELCATALOG_KUBECONFIG" not in env
            assert env["POD_ID"] == pod["metadata"]["name"] and env["POD_IP"] == pod["status"]["podIP"]
            assert token_user(kube, Path(env["MODELCATALOG_TOKEN_FILE"]).read_text().strip()) == SA
            log = pod_log(kube, pod)
            assert "Forbidden" not in log and " 403 " not in log, log[-3000:]


def ca_published(kube: Kube) -> bool:
    config = kube.get_json("validatingwebhookconfiguration", "modelcatalog")
    return all(w["clientConfig"].get("caBundle") for w in config["webhooks"])


def test_the_webhook_behind_the_charts_service_refuses_a_bad_deployment_and_the_policies_apply(
    release: Kube, chart_operator: list[dict[str, Any]], namespace: str
) -> None:
    kube = release
    # The chart's configuration calls the chart's Service (the runner forwards its ClusterIP to a ready pod).
    config = kube.get_json("validatingwebhookconfiguration", "modelcatalog")
    assert [w["clientConfig"]["service"] for w in config["webhooks"]] == [
        {"namespace": NS, "name": "modelcatalog-webhook", "path": "/validate", "port": 443}
    ]
    service = kube.get_json("service", "modelcatalog-webhook", "-n", NS)["spec"]
    assert service["ports"][0]["targetPort"] == "webhook"
    wait_for(lambda: ca_published(kube), 60, "the chart's operator writing the webhook's caBundle")
    secret = kube.get_json("secret", "modelcatalog-webhook-tls", "-n", NS)
    assert secret["type"] == "kubernetes.io/tls"
    manifest = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
                "spec": {"model": "no-such-model", "instanceType": "standard-nc24ads-a100-v4"}}  # fmt: skip
    attempt = 0

    def refused() -> str:
        """Until the operator's caches are full the webhook admits with a warning: a fresh name each time."""
        nonlocal attempt
        attempt += 1
        name = f"unknown-model-{attempt}"
        body = manifest | {"metadata": {"name": name, "namespace": namespace}}
        result = kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
        if result.returncode == 0:
            kube.kubectl("delete", "modeldeployment", name, "-n", namespace, "--wait=false")
            return ""
        return " ".join(result.stderr.split())

    err = wait_for(refused, 60, "the webhook refusing an unknown model", interval=1)
    assert DENIED + "spec.model: CatalogModel no-such-model does not exist" in err, err
    # The serverless namespace is the chart's; the policies are the API server's (no operator involved).
    kube.kubectl("get", "namespace", SERVERLESS_NS)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fake-router", "namespace": namespace,
           "labels": {"app.kubernetes.io/component": "router"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    # A user who may create pods in the namespace (edit), neither the operator nor trusted: refused.
    kube.kubectl("create", "rolebinding", "mallory-edit", "--clusterrole=edit", "--user=mallory", "-n", namespace)
    result = kube.kubectl("apply", "--as=mallory", "-f", "-", stdin=yaml.safe_dump(pod), check=False)
    assert result.returncode != 0 and "is reserved for pods the modelcatalog operator creates" in result.stderr


def test_upgrade_rolls_the_operator_on_a_settings_change_and_updates_crd_schemas(release: Kube, tmp_path: Path) -> None:
    kube = release
    before = pod_template_annotations(kube)
    helm(kube, "upgrade", RELEASE, str(CHART), "-n", NS, "--reuse-values", "--set", "region=eastus")
    after = pod_template_annotations(kube)
    assert after["checksum/settings"] != before["checksum/settings"], "a changed ConfigMap rolls the pods"
    data = kube.get_json("configmap", "modelcatalog-settings", "-n", NS)["data"]
    assert data == {"region": "eastus", "clockOffsetDays": "0"}
    # A new chart version whose CRD schema changed: `helm upgrade` updates the CRD in place.
    changed = tmp_path / "modelcatalog"
    shutil.copytree(CHART, changed)
    crd_file = changed / "files/crds/modeldeployments.modelcatalog.io.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["chartUpgradeProbe"] = {"type": "string", "description": "added by the upgrade test"}
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    helm(kube, "upgrade", RELEASE, str(changed), "-n", NS, "--reuse-values")
    live = kube.get_json("crd", "modeldeployments.modelcatalog.io")
    props = live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["chartUpgradeProbe"]["description"] == "added by the upgrade test"
    assert live["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    helm(kube, "upgrade", RELEASE, str(CHART), "-n", NS, "--reuse-values")
    live = kube.get_json("crd", "modeldeployments.modelcatalog.io")
    assert (
        "chartUpgradeProbe"
        not in live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    )


WATCHED = "modeldeployments,workspacenetworks,serverlessendpoints,deployments,services,secrets,networkpolicies,pdb"


def versions(kube: Kube, namespace: str) -> dict[str, str]:
    items = kube.get_json(WATCHED, "-n", namespace)["items"]
    return {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}


def settled(kube: Kube, namespace: str) -> dict[str, str]:
    """Versions that stay the same over 5 s (the operator has finished with the namespace)."""
    previous: dict[str, str] = {}

    def same() -> dict[str, str] | None:
        nonlocal previous
        now = versions(kube, namespace)
        stable = now if now == previous else None
        previous = now
        return stable

    return wait_for(same, 90, "the namespace to settle", interval=5)


@pytest.mark.parametrize("apply", [("apply", "--server-side"), ("apply",)], ids=["server-side", "client-side"])
def test_reapplying_the_examples_writes_nothing(
    release: Kube, chart_operator: list[dict[str, Any]], namespace: str, apply: tuple[str, ...]
) -> None:
    kube = release
    # What the operator writes is under test, not what the webhook admits: examples/ holds a ServerlessEndpoint
    # whose offer may have retired by today's date (the webhook refuses it; the reconcile reports it).
    kube.kubectl("label", "namespace", namespace, "modelcatalog.io/webhook=Disabled")
    kube.kubectl(*apply, "-n", namespace, "-f", str(REPO / "examples"))
    for name in ("llama3-chat", "mistral-blue", "mistral-green"):
        kube.kubectl("wait", "--for=condition=Ready", f"modeldeployment/{name}", "-n", namespace, "--timeout=120s")
    before = settled(kube, namespace)
    assert any(key.startswith("NetworkPolicy/") for key in before) and "ServerlessEndpoint/phi-mini" in before
    kube.kubectl(*apply, "-n", namespace, "-f", str(REPO / "examples"))
    assert settled(kube, namespace) == before, "re-applying the same manifests wrote something"


def test_uninstall_keeps_the_crds_the_catalog_and_the_users_objects(release: Kube, namespace: str) -> None:
    kube = release
    manifest: dict[str, Any] = yaml.safe_load((REPO / "examples/modeldeployment.yaml").read_text())
    kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    uninstall(kube)
    assert kube.kubectl("get", "deployment", "modelcatalog-operator", "-n", NS, check=False).returncode != 0
    for crd in ("modeldeployments.modelcatalog.io", "catalogmodels.modelcatalog.io", "clusterkopfpeerings.kopf.dev"):
        kube.kubectl("get", "crd", crd)
    kube.kubectl("get", "modeldeployment", "llama3-chat", "-n", namespace)
    kube.kubectl("get", "namespace", SERVERLESS_NS)  # kept: the pools and the upstream credentials live there
    assert kube.kubectl("get", "validatingwebhookconfiguration", "modelcatalog", check=False).returncode != 0
    assert kube.get_json("catalogmodels")["items"], "the catalog stays"
    # Installing again adopts the kept CRDs (they still carry the release's ownership metadata).
    helm(kube, "install", RELEASE, str(CHART), "-n", NS, "--timeout", "2m", *TEST_BED_TRUST)
