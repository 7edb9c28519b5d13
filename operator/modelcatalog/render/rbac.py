"""The operator's RBAC, derived from what each kind owns and what the controllers read.

The Helm chart renders these rules (`make chart` writes them to charts/modelcatalog/files/rbac.yaml; a
unit test fails on drift); a child kind added to `render.owners.OWNERSHIP` appears here with no other
edit. No wildcards, no escalate or impersonate; `bind` only on the routers' token-review ClusterRole and the
serverless gateway's ClusterRole, by name, so the operator can bind them without holding token reviews itself.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from modelcatalog import GROUP
from modelcatalog.api.kinds import KINDS, SERVERLESS_ENDPOINT
from modelcatalog.kube.resources import ResourceInfo, resource
from modelcatalog.render import gateway
from modelcatalog.render.owners import child_resources
from modelcatalog.render.router import TOKENREVIEW_CLUSTER_ROLE

READ = ("get", "list", "watch")
WRITE = (*READ, "create", "patch", "update", "delete")
READS = (
    resource("v1", "Pod"),
    resource("v1", "Node"),
    resource("v1", "ResourceQuota"),  # the GPU quota of a workspace (render/quota.py)
    resource("discovery.k8s.io/v1", "EndpointSlice"),  # the API server's addresses, for egress policies
    resource("networking.k8s.io/v1", "ServiceCIDR"),
    resource("networking.k8s.io/v1", "Ingress"),  # what still exposes a workspace whose public access is off
    resource("v1", "Service"),  # the Service ranges, never "the internet" (clusternetwork)
    resource("apiextensions.k8s.io/v1", "CustomResourceDefinition"),  # kopf finds the resources it serves
    resource("v1", "Namespace"),  # a shard's workspaces, by their label (docs/sharding.md)
)
PEERING = resource("kopf.dev/v1", "ClusterKopfPeering")
# The API server lets a Role grant only what its creator holds: the routers' Role lets them ask
# LocalSubjectAccessReviews, so the operator holds that too. Token reviews it never holds: it binds
# routers to the chart's token-review ClusterRole with `bind` on that one role.
DELEGATED = (("authorization.k8s.io", "localsubjectaccessreviews"),)


def group_of(info: ResourceInfo) -> str:
    return info.api_version.rpartition("/")[0]


def operator_rules() -> list[dict[str, Any]]:
    """PolicyRules of the operator's ClusterRole, one per (group, verbs), resources sorted."""
    grants: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    for info in child_resources():
        grants[(group_of(info), WRITE)].add(info.plural)
    for info in READS:
        grants[(group_of(info), READ)].add(info.plural)
    for kind in KINDS:
        group = group_of(resource(kind.api_version, kind.kind))
        grants[(group, READ)].add(kind.plural)
        grants[(group, ("get", "patch", "update"))].add(f"{kind.plural}/status")
    # The model pool's finalizer on each ServerlessEndpoint (owner references cannot cross namespaces).
    grants[(GROUP, ("patch",))].add(SERVERLESS_ENDPOINT.plural)
    grants[("", ("create", "patch"))].add("events")
    # get: the router's ClusterRoleBinding is owned by its Namespace; patch: the public-network-access label
    # the ValidatingAdmissionPolicies select private workspaces by (docs/policy.md)
    grants[("", ("get", "patch"))].add("namespaces")
    for group, plural in DELEGATED:
        grants[(group, ("create",))].add(plural)
    grants[(group_of(PEERING), (*READ, "create", "patch"))].add(PEERING.plural)
    rules = [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": list(verbs)}
        for (group, verbs), plurals in sorted(grants.items())
    ]
    bind = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"]}
    return [*rules, bind | {"resourceNames": [TOKENREVIEW_CLUSTER_ROLE, gateway.CLUSTER_ROLE]}]


def router_tokenreview_rules() -> list[dict[str, Any]]:
    """The ClusterRole the chart ships for the workspace routers (bound per workspace by the operator)."""
    return [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]


def gateway_rules() -> list[dict[str, Any]]:
    """The ClusterRole the chart ships for the serverless gateway (bound by the operator): token reviews of the
    workspace routers' tokens, and every ServerlessEndpoint read-only (backend, limits, prices)."""
    return [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": [GROUP], "resources": [SERVERLESS_ENDPOINT.plural], "verbs": list(READ)},
    ]


def catalog_rules() -> list[dict[str, Any]]:
    """Write access to the catalog kinds, granted only when the chart installs the default catalog (the
    operator applies it from a ConfigMap: catalog/seed.py)."""
    plurals = sorted(kind.plural for kind in KINDS if not kind.namespaced)
    return [{"apiGroups": [group_of(resource(KINDS[0].api_version, KINDS[0].kind))], "resources": plurals,
             "verbs": ["create", "patch"]}]  # fmt: skip


def webhook_rules() -> dict[str, list[dict[str, Any]]]:
    """Granted only with the chart's webhook: the caBundle of its one ValidatingWebhookConfiguration, by name
    (cluster), and its serving-certificate Secret in the operator's namespace (namespace; webhook/server.py).
    The chart puts its own Secret name in place of the default. `create` cannot be limited by name."""
    from modelcatalog.settings import Settings

    defaults = Settings()
    return {
        "cluster": [{"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"],
                     "verbs": ["get", "patch"], "resourceNames": [defaults.webhook_configuration]}],
        "namespace": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "patch", "update"],
                       "resourceNames": [defaults.webhook_secret]},
                      {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}],
    }  # fmt: skip


def namespace_rules() -> list[dict[str, Any]]:
    """The Role in the operator's own namespace: its settings and default-catalog ConfigMaps, by name."""
    from modelcatalog.catalog.seed import SEED_CONFIGMAP
    from modelcatalog.settings import CONFIGMAP

    names = [CONFIGMAP, SEED_CONFIGMAP]
    return [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": names}]
