"""What the workspace policies need to know about the cluster, read from its API at startup.

- The API server's addresses and port: the `kubernetes` EndpointSlice in `default` (its endpoints,
  not the Service's ClusterIP, which kube-proxy rewrites to them before policies apply).
- The Service ranges: the ServiceCIDR objects (`networking.k8s.io/v1`, Kubernetes 1.33+); the
  `kubernetes` Service's ClusterIP is a single address of that range and says nothing of its size.
- The pod ranges: every Node's `spec.podCIDRs`, where the cluster allocates them (node IPAM); CNIs that
  assign pod addresses themselves (Azure CNI, AWS VPC CNI, Calico IPAM) leave them empty, and the
  platform names those ranges with MODELCATALOG_CLUSTER_CIDRS.
- Whether FQDN rules can be enforced: `cilium.io/v2` serving `ciliumnetworkpolicies`.

What the cluster refuses to tell (an API it does not serve, RBAC that forbids a list) is left out,
not guessed; the platform's settings are added to what was read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.render.network import CILIUM_POLICY_API, NetworkSettings
from modelcatalog.settings import Settings

API_SERVER_SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
SERVICE_CIDRS = "/apis/networking.k8s.io/v1/servicecidrs"
NODES = "/api/v1/nodes"
CILIUM = "/apis/cilium.io/v2"


@dataclass(frozen=True)
class ClusterNetwork:
    api_server_cidrs: tuple[str, ...] = ()
    api_server_port: int = 443
    service_cidrs: tuple[str, ...] = ()
    pod_cidrs: tuple[str, ...] = ()
    serves_fqdn_policies: bool = False


async def read_cluster_network(client: KubeClient) -> ClusterNetwork:
    slices = await _get(client, API_SERVER_SLICES, {"labelSelector": "kubernetes.io/service-name=kubernetes"})
    addresses: list[str] = []
    port = 443
    for item in slices.get("items") or []:
        addresses += [address for endpoint in item.get("endpoints") or [] for address in endpoint.get("addresses", [])]
        port = next((p["port"] for p in item.get("ports") or [] if p.get("name") == "https"), port)
    service_cidrs = [
        cidr
        for item in (await _get(client, SERVICE_CIDRS)).get("items") or []
        for cidr in item["spec"].get("cidrs", [])
    ]
    pod_cidrs = [
        cidr for item in (await _get(client, NODES)).get("items") or [] for cidr in item["spec"].get("podCIDRs") or []
    ]
    cilium = await _get(client, CILIUM)
    return ClusterNetwork(
        api_server_cidrs=tuple(sorted({f"{a}/128" if ":" in a else f"{a}/32" for a in addresses})),
        api_server_port=port,
        service_cidrs=tuple(collapse(service_cidrs)),
        pod_cidrs=tuple(collapse(pod_cidrs)),
        serves_fqdn_policies=any(r.get("name") == "ciliumnetworkpolicies" for r in cilium.get("resources") or []),
    )


def network_settings(settings: Settings, cluster: ClusterNetwork) -> NetworkSettings:
    """The cluster's facts plus the platform's settings."""
    return NetworkSettings(
        serverless_namespace=settings.serverless_namespace,
        operator_namespace=settings.namespace,
        model_server_port=settings.model_server_port,
        dns_cidrs=settings.node_local_dns_cidrs,
        api_server_cidrs=tuple(collapse([*cluster.api_server_cidrs, *settings.api_server_cidrs])),
        api_server_port=cluster.api_server_port,
        metadata_cidrs=settings.metadata_cidrs,
        allow_metadata=settings.egress_allow_metadata,
        allow_api_server=settings.egress_allow_api_server,
        cluster_cidrs=tuple(collapse([*cluster.pod_cidrs, *cluster.service_cidrs, *settings.cluster_cidrs])),
        operator_pod_labels=dict(settings.operator_pod_labels),
        fqdn_policy_api=CILIUM_POLICY_API if cluster.serves_fqdn_policies else None,
    )


def collapse(cidrs: Iterable[str]) -> list[str]:
    """Merged ranges, IPv4 first, so 10.244.0.0/24 and 10.244.1.0/24 of two nodes are one entry."""
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]
    v4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
    return [str(n) for n in [*v4, *v6]]


async def _get(client: KubeClient, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """The document, or an empty one when the cluster does not serve it or will not tell (403)."""
    try:
        return await client.get_path(path, params) or {}
    except ApiError as error:
        if error.status in (401, 403):
            return {}
        raise
