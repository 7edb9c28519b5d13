"""The operator's RBAC, derived from what each kind owns and what the controllers read.

The Helm chart renders these rules; a child kind added to `render.owners.OWNERSHIP` appears here
with no other edit. No wildcards, no escalate, bind or impersonate.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from modelcatalog.api.kinds import KINDS
from modelcatalog.kube.resources import ResourceInfo, resource
from modelcatalog.render.owners import child_resources

READ = ("get", "list", "watch")
WRITE = (*READ, "create", "patch", "update", "delete")
READS = (
    resource("v1", "Pod"),
    resource("v1", "Node"),
    resource("discovery.k8s.io/v1", "EndpointSlice"),  # the API server's addresses, for egress policies
    resource("apiextensions.k8s.io/v1", "CustomResourceDefinition"),  # kopf finds the resources it serves
)
PEERING = resource("kopf.dev/v1", "ClusterKopfPeering")
# The API server lets a Role or binding grant only what its creator holds (no `bind`/`escalate`
# here): the routers' token reviews, which the operator grants them, it must hold itself.
DELEGATED = (
    ("authentication.k8s.io", "tokenreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
)


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
    grants[("", ("create", "patch"))].add("events")
    # get: the router's ClusterRoleBinding is owned by its Namespace; patch: the public-network-access label
    # the ValidatingAdmissionPolicies select private workspaces by (docs/policy.md)
    grants[("", ("get", "patch"))].add("namespaces")
    # the admission webhook writes the caBundle of its configuration (webhook/server.py)
    grants[("admissionregistration.k8s.io", ("get", "patch"))].add("validatingwebhookconfigurations")
    for group, plural in DELEGATED:
        grants[(group, ("create",))].add(plural)
    grants[(group_of(PEERING), (*READ, "create", "patch"))].add(PEERING.plural)
    return [
        {"apiGroups": [group], "resources": sorted(plurals), "verbs": list(verbs)}
        for (group, verbs), plurals in sorted(grants.items())
    ]
