"""What the operator reads from the cluster for the workspace policies, plus the platform's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelcatalog.kube.client import KubeClient
from modelcatalog.kube.clusternetwork import (
    API_SERVER_SLICES,
    NODES,
    SERVICE_CIDRS,
    ClusterNetwork,
    network_settings,
    read_cluster_network,
)
from modelcatalog.settings import SettingError, Settings
from tests.unit.fake_apiserver import fake_apiserver


async def test_the_api_server_service_and_pod_ranges_are_read_from_the_cluster(tmp_path: Path) -> None:
    with fake_apiserver() as server:
        server.answer("GET", API_SERVER_SLICES, {"items": [{
            "endpoints": [{"addresses": ["172.18.0.2"]}, {"addresses": ["172.18.0.3"]}],
            "ports": [{"name": "https", "port": 6443}],
        }]})  # fmt: skip
        # The Service range itself, not the `kubernetes` Service's single ClusterIP.
        server.answer("GET", SERVICE_CIDRS, {"items": [{"spec": {"cidrs": ["100.96.0.0/16", "fd00:96::/108"]}}]})
        server.answer("GET", NODES, {"items": [
            {"spec": {"podCIDRs": ["198.18.0.0/24"]}}, {"spec": {"podCIDRs": ["198.18.1.0/24"]}}, {"spec": {}},
        ]})  # fmt: skip
        server.answer("GET", "/apis/cilium.io/v2", {}, status=403)  # RBAC forbids: not guessed
        client = KubeClient.from_config(str(server.kubeconfig(tmp_path)))
        try:
            cluster = await read_cluster_network(client)
        finally:
            await client.close()
    assert cluster == ClusterNetwork(
        api_server_cidrs=("172.18.0.2/32", "172.18.0.3/32"),
        api_server_port=6443,
        service_cidrs=("100.96.0.0/16", "fd00:96::/108"),
        pod_cidrs=("198.18.0.0/23",),
        serves_fqdn_policies=False,
    )


async def test_what_the_cluster_does_not_serve_is_left_out(tmp_path: Path) -> None:
    with fake_apiserver() as server:  # every path answers 404
        client = KubeClient.from_config(str(server.kubeconfig(tmp_path)))
        try:
            assert await read_cluster_network(client) == ClusterNetwork()
        finally:
            await client.close()


def test_the_platforms_settings_add_to_what_the_cluster_tells() -> None:
    settings = Settings.from_env({
        "MODELCATALOG_CLUSTER_CIDRS": "203.0.113.0/24, 10.0.0.0/8",
        "MODELCATALOG_API_SERVER_CIDRS": "198.51.100.7/32",
        "MODELCATALOG_EGRESS_ALLOW_METADATA": "true",
        "MODELCATALOG_NODE_LOCAL_DNS_CIDRS": "169.254.25.10/32",
        "MODELCATALOG_OPERATOR_POD_LABELS": "app=ops",
    })  # fmt: skip
    cluster = ClusterNetwork(api_server_cidrs=("172.18.0.2/32",), service_cidrs=("100.96.0.0/16",))
    network = network_settings(settings, cluster)
    assert network.cluster_cidrs == ("10.0.0.0/8", "100.96.0.0/16", "203.0.113.0/24")
    assert network.api_server_cidrs == ("172.18.0.2/32", "198.51.100.7/32")
    assert network.allow_metadata and not network.allow_api_server
    assert network.dns_cidrs == ("169.254.25.10/32",)
    assert network.operator_pod_labels == {"app": "ops"}


def test_defaults_close_the_baseline_and_bad_values_are_named() -> None:
    network = network_settings(Settings.from_env({}), ClusterNetwork())
    assert not network.allow_metadata and not network.allow_api_server
    assert network.metadata_cidrs == ("169.254.169.254/32", "fd00:ec2::254/128")
    assert network.dns_cidrs == ("169.254.20.10/32",)
    with pytest.raises(SettingError, match="MODELCATALOG_CLUSTER_CIDRS: 'ten' is not a CIDR"):
        Settings.from_env({"MODELCATALOG_CLUSTER_CIDRS": "ten"})
    with pytest.raises(SettingError, match="MODELCATALOG_EGRESS_ALLOW_API_SERVER='maybe': expected true or false"):
        Settings.from_env({"MODELCATALOG_EGRESS_ALLOW_API_SERVER": "maybe"})
