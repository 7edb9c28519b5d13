"""The public network access flag, private endpoints and outbound rules, checked by reachability.

Nothing on this test bed enforces NetworkPolicies (kwok pods run no containers), so an independent
analyzer (cyclonus) computes from the live cluster's policies whether a connection is allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from modelcatalog.localcluster.release import ChartOperator
from tests.conftest import REPO
from tests.integration.kube import Kube, wait_for
from tests.integration.test_modeldeployment import apply_md, md_status, wait_ready
from tests.netpol import Cluster, Peer, find_cyclonus, live_pod, live_reachable

pytestmark = [
    pytest.mark.usefixtures("operator"),
    pytest.mark.skipif(find_cyclonus() is None, reason="cyclonus is not built: run hack/tools.sh (make tools)"),
]

ROUTER_PORT, SERVER_PORT = 8080, 8000
OUTSIDE = Peer.external("203.0.113.7")
ROUTER_LABELS = {"app.kubernetes.io/component": "router", "app.kubernetes.io/managed-by": "modelcatalog"}


def cluster(kube: Kube) -> Cluster:
    return Cluster(kubeconfig=kube.kubeconfig, kubectl=kube.kubectl_binary)


def router(namespace: str) -> Peer:
    return Peer.pod(namespace, ROUTER_LABELS, ip="10.244.9.9")


def server_pod(kube: Kube, namespace: str, deployment: str) -> Peer:
    pod = kube.get_json("pods", "-n", namespace, "-l", f"modelcatalog.io/deployment={deployment}")["items"][0]
    return live_pod(cluster(kube), namespace, pod["metadata"]["name"])


def can_reach(kube: Kube, source: Peer, destination: Peer, port: int) -> bool:
    return live_reachable(source, destination, port, cluster=cluster(kube))


def apply_network(kube: Kube, namespace: str, name: str = "workspace", **spec: Any) -> None:
    manifest = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "WorkspaceNetwork",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip
    kube.kubectl("apply", "--server-side", "--field-manager=test-user", "-f", "-", stdin=yaml.safe_dump(manifest))


def network_status(kube: Kube, namespace: str, name: str = "workspace") -> dict[str, Any]:
    status: dict[str, Any] = kube.get_json("workspacenetwork", name, "-n", namespace).get("status") or {}
    return status


def wait_generation_applied(kube: Kube, namespace: str, name: str = "workspace") -> dict[str, Any]:
    def applied() -> dict[str, Any] | None:
        obj = kube.get_json("workspacenetwork", name, "-n", namespace)
        status = obj.get("status") or {}
        return status if status.get("observedGeneration") == obj["metadata"]["generation"] else None

    return wait_for(applied, 30, f"WorkspaceNetwork {name} to apply its latest generation")


def router_policy(kube: Kube, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.get_json("networkpolicy", "modelcatalog-router-ingress", "-n", namespace)
    return found


def other_namespace(kube: Kube, namespace: str, suffix: str, labels: dict[str, str]) -> str:
    name = f"{namespace[:50]}-{suffix}"
    kube.kubectl("create", "namespace", name)
    if labels:
        kube.kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()])
    return name


def test_without_a_workspace_network_the_router_is_public_and_model_servers_are_private(
    kube: Kube, namespace: str
) -> None:
    apply_md(kube, namespace, "chat")
    wait_ready(kube, namespace, "chat")
    wait_for(lambda: kube.kubectl("get", "networkpolicy", "modelcatalog-router-ingress", "-n", namespace,
                                  check=False).returncode == 0, 30, "the default policies")  # fmt: skip
    server = server_pod(kube, namespace, "chat")
    elsewhere = other_namespace(kube, namespace, "other", {})
    try:
        assert can_reach(kube, OUTSIDE, router(namespace), ROUTER_PORT)
        assert not can_reach(kube, OUTSIDE, server, SERVER_PORT)
        assert not can_reach(kube, Peer.pod(elsewhere, ROUTER_LABELS), server, SERVER_PORT)
        assert can_reach(kube, router(namespace), server, SERVER_PORT)
        assert not can_reach(kube, router(namespace), server, 22), "only the model server port"
        # Outbound isolation Disabled is still not a way to the cloud's credentials (issue 14 item 6).
        assert not can_reach(kube, server, Peer.external("169.254.169.254"), 80)
        assert can_reach(kube, server, Peer.external("203.0.113.50"), 443)
        assert md_status(kube, namespace, "chat")["endpoint"]["networkAccess"] == "Enabled"
    finally:
        kube.kubectl("delete", "namespace", elsewhere, "--wait=false")


def test_disabling_public_access_covers_old_and_new_endpoints_at_once(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "old")
    wait_ready(kube, namespace, "old")
    apps = other_namespace(kube, namespace, "apps", {"team": "apps"})
    stranger = other_namespace(kube, namespace, "x", {"team": "other"})
    try:
        apply_network(kube, namespace, publicNetworkAccess="Disabled",
                      privateEndpoints=[{"name": "apps", "namespaceSelector": {"matchLabels": {"team": "apps"}}},
                                        {"name": "vpn", "cidrs": ["10.8.0.0/16"]}])  # fmt: skip
        status = wait_generation_applied(kube, namespace)
        assert status["phase"] == "Ready"
        assert not can_reach(kube, OUTSIDE, router(namespace), ROUTER_PORT)
        assert can_reach(kube, Peer.pod(apps, {"app": "client"}), router(namespace), ROUTER_PORT)
        assert can_reach(kube, Peer.external("10.8.1.2"), router(namespace), ROUTER_PORT)
        assert not can_reach(kube, Peer.pod(stranger, {"app": "client"}), router(namespace), ROUTER_PORT)
        wait_for(lambda: md_status(kube, namespace, "old")["endpoint"]["networkAccess"] == "Disabled", 30,
                 "the old endpoint to show the workspace's access mode")  # fmt: skip

        apply_md(kube, namespace, "new")
        wait_ready(kube, namespace, "new")
        new_server = server_pod(kube, namespace, "new")
        assert not can_reach(kube, OUTSIDE, new_server, SERVER_PORT)
        assert can_reach(kube, router(namespace), new_server, SERVER_PORT)
        both = ["ModelDeployment/new", "ModelDeployment/old"]
        wait_for(lambda: network_status(kube, namespace).get("endpoints") == both, 30, "the setting to list both")

        apply_network(kube, namespace, publicNetworkAccess="Enabled")
        wait_generation_applied(kube, namespace)
        assert can_reach(kube, OUTSIDE, router(namespace), ROUTER_PORT)
        for name in ("old", "new"):
            wait_for(lambda n=name: md_status(kube, namespace, n)["endpoint"]["networkAccess"] == "Enabled", 30,
                     f"{name} to follow the flip")  # fmt: skip
    finally:
        kube.kubectl("delete", "namespace", apps, stranger, "--wait=false")


def test_allowed_ip_ranges_narrow_public_access(kube: Kube, namespace: str) -> None:
    apply_network(kube, namespace, allowedIpRanges=["198.51.100.0/24"])
    wait_generation_applied(kube, namespace)
    assert can_reach(kube, Peer.external("198.51.100.20"), router(namespace), ROUTER_PORT)
    assert not can_reach(kube, OUTSIDE, router(namespace), ROUTER_PORT)


def test_outbound_rules_and_what_is_not_enforced(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "chat")
    wait_ready(kube, namespace, "chat")
    apply_network(kube, namespace, outbound={"mode": "AllowOnlyApprovedOutbound", "rules": [
        {"name": "vector-db", "type": "CIDR", "destination": "10.20.0.0/16", "ports": [5432]},
        {"name": "model-hub", "type": "FQDN", "destination": "huggingface.co", "ports": [443]}]})  # fmt: skip
    status = wait_generation_applied(kube, namespace)
    fqdn = next(c for c in status["conditions"] if c["type"] == "FQDNRulesEnforced")
    assert (fqdn["status"], fqdn["reason"]) == ("False", "FQDNPolicyUnsupported")
    assert "model-hub (huggingface.co)" in fqdn["message"]
    server = server_pod(kube, namespace, "chat")
    assert can_reach(kube, server, Peer.external("10.20.3.4"), 5432)
    assert not can_reach(kube, server, Peer.external("10.20.3.4"), 80)
    assert not can_reach(kube, server, Peer.external("52.1.2.3"), 443), "FQDN rules are not faked with open egress"


def test_a_policy_deleted_or_edited_by_hand_is_restored(kube: Kube, namespace: str) -> None:
    apply_network(kube, namespace, publicNetworkAccess="Disabled",
                  privateEndpoints=[{"name": "vpn", "cidrs": ["10.8.0.0/16"]}])  # fmt: skip
    wait_generation_applied(kube, namespace)
    uid = router_policy(kube, namespace)["metadata"]["uid"]
    kube.kubectl("delete", "networkpolicy", "modelcatalog-router-ingress", "-n", namespace)
    wait_for(lambda: kube.kubectl("get", "networkpolicy", "modelcatalog-router-ingress", "-n", namespace, "-o",
                                  "jsonpath={.metadata.uid}", check=False).stdout not in ("", uid), 20,
             "the deleted policy to come back")  # fmt: skip
    kube.kubectl("patch", "networkpolicy", "modelcatalog-router-ingress", "-n", namespace, "--type=json",
                 "-p", '[{"op":"replace","path":"/spec/ingress","value":[{}]}]')  # fmt: skip
    wait_for(lambda: router_policy(kube, namespace)["spec"].get("ingress") != [{}], 20, "the edit to be undone")
    assert not can_reach(kube, OUTSIDE, router(namespace), ROUTER_PORT)


def test_deleting_the_workspace_network_returns_to_the_default(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "chat")
    apply_network(kube, namespace, publicNetworkAccess="Disabled",
                  privateEndpoints=[{"name": "vpn", "cidrs": ["10.8.0.0/16"]}])  # fmt: skip
    wait_generation_applied(kube, namespace)
    assert not can_reach(kube, OUTSIDE, router(namespace), ROUTER_PORT)
    kube.kubectl("delete", "workspacenetwork", "workspace", "-n", namespace)
    wait_for(lambda: router_policy(kube, namespace)["metadata"]["labels"]["modelcatalog.io/owner-kind"] == "Namespace",
             30, "the default policies")  # fmt: skip
    assert can_reach(kube, OUTSIDE, router(namespace), ROUTER_PORT)


def test_a_second_workspace_network_is_reported_as_a_conflict(kube: Kube, namespace: str) -> None:
    apply_network(kube, namespace, name="first", publicNetworkAccess="Enabled")
    wait_generation_applied(kube, namespace, "first")
    apply_network(kube, namespace, name="second", publicNetworkAccess="Enabled")
    status = wait_for(lambda: (s := network_status(kube, namespace, "second")).get("phase") == "Conflict" and s, 30,
                      "the second WorkspaceNetwork to report the conflict")  # fmt: skip
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Conflict" and "WorkspaceNetwork first is in force" in ready["message"]
    assert network_status(kube, namespace, "first")["phase"] == "Ready"


@pytest.fixture
def cilium_served(kube: Kube, operator: ChartOperator) -> Iterator[None]:
    """The cluster serves CiliumNetworkPolicy (its CRD only); the operator, restarted, sees it."""
    crd = str(REPO / "tests" / "data" / "ciliumnetworkpolicies-crd.yaml")
    kube.kubectl("apply", "-f", crd)
    kube.kubectl("wait", "--for=condition=Established", "crd/ciliumnetworkpolicies.cilium.io", "--timeout=30s")
    operator.restart()
    try:
        yield
    finally:
        kube.kubectl("delete", "-f", crd, "--wait=true")
        operator.restart()


@pytest.mark.usefixtures("cilium_served")
def test_the_fqdn_policy_is_written_where_served_and_removed_with_the_last_fqdn_rule(
    kube: Kube, namespace: str
) -> None:
    hub = {"name": "model-hub", "type": "FQDN", "destination": "huggingface.co", "ports": [443]}
    db = {"name": "vector-db", "type": "CIDR", "destination": "10.20.0.0/16", "ports": [5432]}
    apply_network(kube, namespace, outbound={"mode": "AllowOnlyApprovedOutbound", "rules": [db, hub]})
    fqdn = wait_for(lambda: kube.kubectl("get", "cnp", "modelcatalog-egress-fqdn", "-n", namespace, "-o", "json",
                                         check=False).stdout, 30, "the CiliumNetworkPolicy")  # fmt: skip
    assert "huggingface.co" in fqdn
    enforced = next(
        c for c in wait_generation_applied(kube, namespace)["conditions"] if c["type"] == "FQDNRulesEnforced"
    )
    assert enforced["status"] == "True"
    apply_network(kube, namespace, outbound={"mode": "AllowOnlyApprovedOutbound", "rules": [db]})
    wait_for(lambda: kube.kubectl("get", "cnp", "-n", namespace, "-o", "name").stdout.strip() == "", 30,
             "the CiliumNetworkPolicy to be pruned")  # fmt: skip


def test_turning_public_access_off_names_what_still_exposes_the_workspace(kube: Kube, namespace: str) -> None:
    exposing = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
                "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}}  # fmt: skip
    kube.apply(exposing)  # made while the workspace was public
    apply_network(
        kube, namespace, publicNetworkAccess="Disabled", privateEndpoints=[{"name": "vpn", "cidrs": ["10.8.0.0/16"]}]
    )
    status = wait_for(lambda: (s := wait_generation_applied(kube, namespace)).get("exposedBy") and s, 30, "exposedBy")
    assert status["exposedBy"] == ["Service/web (NodePort)"]
    exposure = next(c for c in status["conditions"] if c["type"] == "PublicExposure")
    assert exposure["status"] == "True" and "Service/web (NodePort) still expose" in exposure["message"]
