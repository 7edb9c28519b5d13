"""The rendered policies, checked by an independent analyzer (cyclonus) rather than by reading them back."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from modelcatalog import labels
from modelcatalog.api.network import WorkspaceNetworkSpec
from modelcatalog.render import gateway as render_gateway
from modelcatalog.render import serverless as render_serverless
from modelcatalog.render.network import NetworkSettings, render_network_policies
from modelcatalog.settings import Settings
from tests.netpol import Cluster, Connection, Peer, find_cyclonus, live_reachable, query_traffic, reachable

NS = "team-a"
SETTINGS = NetworkSettings()
ROUTER_PORT = SETTINGS.router_port
MODEL_PORT = SETTINGS.model_server_port

ROUTER = Peer.pod(NS, {labels.COMPONENT: labels.ROUTER, labels.MANAGED_BY: labels.MANAGER}, "10.244.1.2")
MODEL_SERVER = Peer.pod(NS, {labels.COMPONENT: labels.MODEL_SERVER, labels.MANAGED_BY: labels.MANAGER}, "10.244.1.3")
NEIGHBOUR = Peer.pod(NS, {"app": "notebook"}, "10.244.1.4")
OTHER_NAMESPACE = Peer.pod("team-b", {"app": "client"}, "10.244.2.2")
FRONTEND = Peer.pod("web", {"app": "ui"}, "10.244.3.2")
OPERATOR = Peer.pod("modelcatalog-system", dict(SETTINGS.operator_pod_labels), "10.244.4.2")
OPERATOR_NAMESPACE_DEBUG_POD = Peer.pod("modelcatalog-system", {"app": "debug"}, "10.244.4.3")
OUTSIDE = Peer.external("203.0.113.7")
NAMESPACES = {"web": {"team": "frontend"}, "team-b": {"team": "b"}}

PRIVATE = WorkspaceNetworkSpec.model_validate(
    {
        "publicNetworkAccess": "Disabled",
        "privateEndpoints": [{"name": "frontend", "namespaceSelector": {"matchLabels": {"team": "frontend"}}}],
    }
)
PUBLIC = WorkspaceNetworkSpec.model_validate({"privateEndpoints": PRIVATE.to_wire()["privateEndpoints"]})


@pytest.fixture(scope="module")
def cyclonus() -> str:
    binary = find_cyclonus()
    if binary is None:
        pytest.skip("cyclonus binary not found (set CYCLONUS, run hack/tools.sh, or put it on PATH)")
    return binary


def verdicts(policies: list[dict[str, Any]], cyclonus: str, *connections: Connection) -> list[bool]:
    return query_traffic(policies, connections, NAMESPACES, cyclonus)


def test_no_policies_allow_everything(cyclonus: str) -> None:
    assert reachable([], OUTSIDE, MODEL_SERVER, MODEL_PORT, cyclonus=cyclonus)


def test_public_access_enabled_admits_the_outside_and_other_namespaces_to_the_router_only(cyclonus: str) -> None:
    policies = render_network_policies(NS, PUBLIC, SETTINGS, "net")
    assert verdicts(
        policies,
        cyclonus,
        Connection(OUTSIDE, ROUTER, ROUTER_PORT),
        Connection(OTHER_NAMESPACE, ROUTER, ROUTER_PORT),
        Connection(FRONTEND, ROUTER, ROUTER_PORT),
        Connection(OUTSIDE, ROUTER, 9090),
        Connection(OUTSIDE, ROUTER, ROUTER_PORT, "UDP"),
    ) == [True, True, True, False, False]


def test_public_access_disabled_admits_only_the_private_endpoint(cyclonus: str) -> None:
    policies = render_network_policies(NS, PRIVATE, SETTINGS, "net")
    assert verdicts(
        policies,
        cyclonus,
        Connection(OUTSIDE, ROUTER, ROUTER_PORT),
        Connection(OTHER_NAMESPACE, ROUTER, ROUTER_PORT),
        Connection(NEIGHBOUR, ROUTER, ROUTER_PORT),
        Connection(FRONTEND, ROUTER, ROUTER_PORT),
        Connection(FRONTEND, ROUTER, 22),
    ) == [False, False, False, True, False]


def test_allowed_ip_ranges_admit_only_those_addresses_and_the_private_endpoints(cyclonus: str) -> None:
    network = WorkspaceNetworkSpec.model_validate(
        {"allowedIpRanges": ["203.0.113.0/24"], "privateEndpoints": PRIVATE.to_wire()["privateEndpoints"]}
    )
    policies = render_network_policies(NS, network, SETTINGS, "net")
    assert verdicts(
        policies,
        cyclonus,
        Connection(OUTSIDE, ROUTER, ROUTER_PORT),
        Connection(Peer.external("198.51.100.1"), ROUTER, ROUTER_PORT),
        Connection(OTHER_NAMESPACE, ROUTER, ROUTER_PORT),
        Connection(FRONTEND, ROUTER, ROUTER_PORT),
    ) == [True, False, False, True]


@pytest.mark.parametrize("network", [None, PUBLIC, PRIVATE], ids=["default", "public", "private"])
def test_nothing_but_the_router_and_the_operator_reach_a_model_server(
    network: WorkspaceNetworkSpec | None, cyclonus: str
) -> None:
    policies = render_network_policies(NS, network, SETTINGS, None if network is None else "net")
    assert verdicts(
        policies,
        cyclonus,
        Connection(ROUTER, MODEL_SERVER, MODEL_PORT),
        Connection(OPERATOR, MODEL_SERVER, MODEL_PORT),
        Connection(OUTSIDE, MODEL_SERVER, MODEL_PORT),
        Connection(OTHER_NAMESPACE, MODEL_SERVER, MODEL_PORT),
        Connection(FRONTEND, MODEL_SERVER, MODEL_PORT),
        Connection(NEIGHBOUR, MODEL_SERVER, MODEL_PORT),
        # A pod that only claims to be a router is not one: the operator's label is missing.
        Connection(Peer.pod(NS, {labels.COMPONENT: labels.ROUTER}), MODEL_SERVER, MODEL_PORT),
        Connection(Peer.pod("team-b", ROUTER.labels), MODEL_SERVER, MODEL_PORT),
        Connection(ROUTER, MODEL_SERVER, 22),
        # The operator's namespace is not a pass: only the operator's own pods, by their labels.
        Connection(OPERATOR_NAMESPACE_DEBUG_POD, MODEL_SERVER, MODEL_PORT),
    ) == [True, True, False, False, False, False, False, False, False, False]


def test_flipping_the_flag_changes_who_reaches_the_router_and_nothing_else(cyclonus: str) -> None:
    connections = [
        Connection(OUTSIDE, ROUTER, ROUTER_PORT),
        Connection(OTHER_NAMESPACE, ROUTER, ROUTER_PORT),
        Connection(FRONTEND, ROUTER, ROUTER_PORT),
        Connection(ROUTER, MODEL_SERVER, MODEL_PORT),
        Connection(OUTSIDE, MODEL_SERVER, MODEL_PORT),
    ]
    public = verdicts(render_network_policies(NS, PUBLIC, SETTINGS, "net"), cyclonus, *connections)
    private = verdicts(render_network_policies(NS, PRIVATE, SETTINGS, "net"), cyclonus, *connections)
    assert public == [True, True, True, True, False]
    assert private == [False, False, True, True, False]


def test_egress_follows_the_outbound_mode(cyclonus: str) -> None:
    approved = WorkspaceNetworkSpec.model_validate(
        {
            "outbound": {
                "mode": "AllowOnlyApprovedOutbound",
                "rules": [{"name": "weights", "type": "CIDR", "destination": "198.51.100.0/24", "ports": [443]}],
            }
        }
    )
    internet = WorkspaceNetworkSpec.model_validate({"outbound": {"mode": "AllowInternetOutbound"}})
    dns = Peer.pod("kube-system", {"k8s-app": "kube-dns"}, "10.96.0.10")
    gateway = Peer.pod("modelcatalog-serverless", {labels.COMPONENT: labels.SERVERLESS_GATEWAY}, "10.244.5.2")
    connections = [
        Connection(MODEL_SERVER, Peer.external("198.51.100.9"), 443),
        Connection(MODEL_SERVER, Peer.external("203.0.113.50"), 443),
        Connection(MODEL_SERVER, Peer.external("169.254.169.254"), 80),
        Connection(MODEL_SERVER, dns, 53, "UDP"),
        Connection(ROUTER, gateway, SETTINGS.gateway_port),
        Connection(ROUTER, MODEL_SERVER, MODEL_PORT),
        Connection(ROUTER, OTHER_NAMESPACE, 80),
    ]
    # Outbound Disabled: open, but for the baseline (the metadata address).
    assert verdicts(render_network_policies(NS, None, SETTINGS), cyclonus, *connections) == [
        True, True, False, True, True, True, True,
    ]  # fmt: skip
    assert verdicts(render_network_policies(NS, internet, SETTINGS, "net"), cyclonus, *connections) == [
        True, True, False, True, True, True, False,
    ]  # fmt: skip
    assert verdicts(render_network_policies(NS, approved, SETTINGS, "net"), cyclonus, *connections) == [
        True, False, False, True, True, True, False,
    ]  # fmt: skip


def test_only_the_gateway_reaches_a_pool_and_only_workspace_routers_reach_the_gateway(cyclonus: str) -> None:
    """The serverless namespace's policies with a workspace's default ones: a router (or anything that took over its
    pod) cannot skip the gateway's metering and credentials by calling the pool itself."""
    settings = Settings()
    serverless = settings.serverless_namespace
    gateway_pod = Peer.pod(serverless, render_gateway.gateway_labels(), "10.244.5.2")
    pool_pod = Peer.pod(
        serverless, render_serverless.pool_labels("phi") | render_serverless.pool_selector("phi"), "10.244.5.3"
    )
    policies = [
        *render_network_policies(NS, None, SETTINGS),
        render_serverless.pool_network_policy(settings),
        render_gateway.ingress_policy(settings),
    ]
    gateway_port, pool_port = SETTINGS.gateway_port, settings.model_server_port
    connections = [
        Connection(ROUTER, gateway_pod, gateway_port),
        Connection(gateway_pod, pool_pod, pool_port),
        Connection(ROUTER, pool_pod, pool_port),
        Connection(NEIGHBOUR, gateway_pod, gateway_port),
        Connection(NEIGHBOUR, pool_pod, pool_port),
        Connection(Peer.pod(NS, render_gateway.gateway_labels(), "10.244.1.9"), pool_pod, pool_port),  # a lookalike
        Connection(Peer.pod(serverless, {"app": "debug"}, "10.244.5.4"), pool_pod, pool_port),
        Connection(OUTSIDE, gateway_pod, gateway_port),
    ]
    assert query_traffic(policies, connections, NAMESPACES, cyclonus) == [
        True, True, False, False, False, False, False, False,
    ]  # fmt: skip


def test_cilium_objects_are_left_out_of_the_analysis(cyclonus: str) -> None:
    network = WorkspaceNetworkSpec.model_validate(
        {
            "outbound": {
                "mode": "AllowOnlyApprovedOutbound",
                "rules": [{"name": "hf", "type": "FQDN", "destination": "huggingface.co", "ports": [443]}],
            }
        }
    )
    policies = render_network_policies(NS, network, NetworkSettings(fqdn_policy_api="cilium.io/v2"), "net")
    assert policies[-1]["kind"] == "CiliumNetworkPolicy"
    assert not reachable(policies, MODEL_SERVER, Peer.external("18.239.50.3"), 443, cyclonus=cyclonus)


def test_live_reachable_reads_policies_and_namespace_labels_from_the_cluster(cyclonus: str, tmp_path: Path) -> None:
    items = [{"apiVersion": "networking.k8s.io/v1", **p} for p in render_network_policies(NS, PRIVATE, SETTINGS, "net")]
    for item in items:
        item["metadata"] |= {"uid": "1", "resourceVersion": "7", "managedFields": [{"manager": "modelcatalog"}]}
    namespaces = [
        {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name} | extra}}
        for name, extra in NAMESPACES.items()
    ]
    (tmp_path / "networkpolicies.json").write_text(json.dumps({"kind": "List", "items": items}))
    (tmp_path / "namespaces.json").write_text(json.dumps({"kind": "List", "items": namespaces}))
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/calls\n'
        'for a in "$@"; do case "$a" in\n'
        f"  networkpolicies) exec cat {tmp_path}/networkpolicies.json;;\n"
        f"  namespaces) exec cat {tmp_path}/namespaces.json;;\n"
        "esac; done\nexit 1\n"
    )
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    cluster = Cluster(kubeconfig=tmp_path / "kubeconfig", context="test", kubectl=str(kubectl))

    assert live_reachable(FRONTEND, ROUTER, ROUTER_PORT, cluster=cluster, cyclonus=cyclonus)
    assert not live_reachable(OTHER_NAMESPACE, ROUTER, ROUTER_PORT, cluster=cluster, cyclonus=cyclonus)
    assert (
        f"--kubeconfig {tmp_path}/kubeconfig --context test get networkpolicies -A -o json"
        in (tmp_path / "calls").read_text()
    )
