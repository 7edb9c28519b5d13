"""The Helm chart installed as users do: server-side dry run, `helm install`, least privilege, the operator
running as the chart's ServiceAccount, `helm upgrade` (settings roll the pods, CRD schemas update) and
`helm uninstall` (CRDs and users' objects stay).

Until the test bed runs the operator's pod as a process (branch `wire`), the operator runs beside the
cluster (localcluster/launcher.py) with a kubeconfig holding a token of the chart's ServiceAccount: the
RBAC it meets is exactly the chart's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog.localcluster.cluster import find_tools
from modelcatalog.localcluster.launcher import OperatorProcess
from tests.conftest import REPO
from tests.integration.conftest import LOG_DIR
from tests.integration.kube import Kube, wait_for

CHART = REPO / "charts" / "modelcatalog"
NS = "modelcatalog-system"
RELEASE = "modelcatalog"
SA = f"system:serviceaccount:{NS}:modelcatalog-operator"
HELM_OWNER = {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NS}


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


def adopt_existing_crds(kube: Kube) -> None:
    """CRDs an earlier test of the session installed with kubectl: handed to the release, as docs/install.md
    tells users who did the same."""
    for crd in kube.get_json("crd", "-l", "app.kubernetes.io/part-of=modelcatalog")["items"]:
        name = crd["metadata"]["name"]
        kube.kubectl("label", "--overwrite", "crd", name, "app.kubernetes.io/managed-by=Helm")
        kube.kubectl("annotate", "--overwrite", "crd", name, *(f"{k}={v}" for k, v in HELM_OWNER.items()))
    if kube.kubectl("get", "crd", "clusterkopfpeerings.kopf.dev", check=False).returncode == 0:
        kube.kubectl("label", "--overwrite", "crd", "clusterkopfpeerings.kopf.dev", "app.kubernetes.io/managed-by=Helm")
        kube.kubectl("annotate", "--overwrite", "crd", "clusterkopfpeerings.kopf.dev",
                     *(f"{k}={v}" for k, v in HELM_OWNER.items()))  # fmt: skip


@pytest.fixture(scope="module")
def release(kube: Kube) -> Iterator[Kube]:
    rendered = template(kube)
    # The whole chart, as rendered, is accepted by the real API server (CRDs and all, before installing).
    kube.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=rendered)
    adopt_existing_crds(kube)
    helm(kube, "install", RELEASE, str(CHART), "-n", NS, "--create-namespace", "--timeout", "2m")
    yield kube
    helm(kube, "uninstall", RELEASE, "-n", NS, check=False)


@pytest.fixture(scope="module")
def chart_operator(release: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The real operator as the chart's ServiceAccount: a TokenRequest in a kubeconfig of its own."""
    token = release.kubectl("create", "token", "modelcatalog-operator", "-n", NS, "--duration=2h").stdout.strip()
    admin = json.loads(release.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = admin["clusters"][0]
    kubeconfig = tmp_path_factory.mktemp("sa") / "operator.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [cluster],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa", "namespace": NS}}],
    }))  # fmt: skip
    kubeconfig.chmod(0o600)
    process = OperatorProcess(kubeconfig, LOG_DIR / "chart-operator")
    env = {"MODELCATALOG_NAMESPACE": NS}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        process.start()
        yield process
    finally:
        process.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def can_i(kube: Kube, verb: str, what: str, namespace: str | None = None, *extra: str) -> bool:
    args = ["auth", "can-i", verb, what, f"--as={SA}", *extra]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    return kube.kubectl(*args, check=False).stdout.strip() == "yes"


def test_the_rendered_chart_passes_lint_and_a_server_side_dry_run_with_every_option(kube: Kube) -> None:
    lint = helm(kube, "lint", "--strict", str(CHART), "--kube-version", "1.37.2")
    assert "0 chart(s) failed" in lint.stdout
    rendered = template(kube, "--set", "replicas=1", "--set", "catalog.install=false", "--set", "region=westeurope",
                        "--set", "settings.REQUIRE_PINNED_REVISION=true")  # fmt: skip
    kube.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=rendered)
    bad = helm(kube, "template", RELEASE, str(CHART), "--set", "replicas=0", check=False)
    assert bad.returncode != 0 and "/replicas" in bad.stderr and "minimum" in bad.stderr


def test_the_service_account_gets_what_the_operator_needs_and_nothing_more(release: Kube) -> None:
    kube = release
    for verb, what in [
        ("create", "deployments.apps"), ("delete", "secrets"), ("patch", "networkpolicies.networking.k8s.io"),
        ("watch", "pods"), ("list", "nodes"),
        ("create", "clusterkopfpeerings.kopf.dev"), ("create", "catalogmodels.modelcatalog.io"),
        ("bind", "clusterroles.rbac.authorization.k8s.io/modelcatalog-router-tokenreview"),
        # The workspace routers' RBAC (issue 16): a Role and RoleBinding per workspace, and a binding of the
        # token-review ClusterRole, which `bind` limits to that one role (cluster-admin is refused below).
        ("create", "roles.rbac.authorization.k8s.io"), ("create", "rolebindings.rbac.authorization.k8s.io"),
        ("patch", "clusterrolebindings.rbac.authorization.k8s.io"),
    ]:  # fmt: skip
        assert can_i(kube, verb, what), f"the operator needs {verb} {what}"
    assert can_i(kube, "get", "configmaps/modelcatalog-settings", NS)
    assert can_i(kube, "patch", "modeldeployments.modelcatalog.io", None, "--subresource=status")
    for verb, what in [
        ("impersonate", "users"), ("impersonate", "serviceaccounts"), ("escalate", "clusterroles"),
        ("bind", "clusterroles/cluster-admin"), ("create", "clusterroles"), ("patch", "clusterroles"),
        ("create", "pods"), ("create", "pods/exec"),
        ("delete", "customresourcedefinitions"), ("patch", "customresourcedefinitions"),
        ("update", "modeldeployments.modelcatalog.io"), ("delete", "catalogmodels.modelcatalog.io"),
        ("delete", "namespaces"), ("patch", "nodes"), ("create", "validatingwebhookconfigurations"),
        ("create", "tokenreviews"), ("get", "configmaps"), ("list", "configmaps"),
    ]:  # fmt: skip
        assert not can_i(kube, verb, what), f"the operator must not {verb} {what}"
    assert not can_i(kube, "create", "serviceaccounts", None, "--subresource=token"), "no tokens of others"
    assert not can_i(kube, "get", "configmaps/kube-root-ca.crt", NS), "ConfigMaps by name only"
    assert not can_i(kube, "get", "configmaps/modelcatalog-settings", "kube-system")


def test_the_operator_as_its_service_account_reconciles_deployments_and_networks(
    release: Kube, chart_operator: OperatorProcess, namespace: str
) -> None:
    kube = release
    # The default catalog, applied by the operator from the chart's ConfigMap.
    get = ("get", "catalogmodel", "meta-llama-3-8b-instruct", "-o", "json", "--show-managed-fields")
    model = wait_for(lambda: kube.kubectl(*get, check=False).stdout, 60, "the default catalog")
    managers = {m["manager"] for m in json.loads(model)["metadata"]["managedFields"]}
    assert "modelcatalog-default-catalog" in managers
    kube.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples/modeldeployment.yaml"))
    kube.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples/workspacenetwork.yaml"))
    kube.kubectl("wait", "--for=condition=Ready", "modeldeployment/llama3-chat", "-n", namespace, "--timeout=120s")
    wait_for(lambda: kube.kubectl("get", "secret", "llama3-chat-keys", "-n", namespace, check=False).returncode == 0,
             30, "the key Secret")  # fmt: skip
    policies = wait_for(
        lambda: {p["metadata"]["name"] for p in kube.get_json("networkpolicy", "-n", namespace)["items"]}
        >= {"modelcatalog-router-ingress", "modelcatalog-model-server-ingress"}, 60, "the workspace's policies",
    )  # fmt: skip
    assert policies
    log = chart_operator.log.read_text(errors="replace")
    assert "Forbidden" not in log and " 403 " not in log, chart_operator.tail()


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
    release: Kube, chart_operator: OperatorProcess, namespace: str, apply: tuple[str, ...]
) -> None:
    kube = release
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
    helm(kube, "uninstall", RELEASE, "-n", NS)
    assert kube.kubectl("get", "deployment", "modelcatalog-operator", "-n", NS, check=False).returncode != 0
    for crd in ("modeldeployments.modelcatalog.io", "catalogmodels.modelcatalog.io", "clusterkopfpeerings.kopf.dev"):
        kube.kubectl("get", "crd", crd)
    kube.kubectl("get", "modeldeployment", "llama3-chat", "-n", namespace)
    assert kube.get_json("catalogmodels")["items"], "the catalog stays"
    # Installing again adopts the kept CRDs (they still carry the release's ownership metadata).
    helm(kube, "install", RELEASE, str(CHART), "-n", NS, "--timeout", "2m")
