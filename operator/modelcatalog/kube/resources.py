"""Where each kind the operator touches lives in the API (no discovery round-trips)."""

from __future__ import annotations

from dataclasses import dataclass

from modelcatalog.api.kinds import KINDS


@dataclass(frozen=True)
class ResourceInfo:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


BUILTIN = [
    ResourceInfo("v1", "Namespace", "namespaces", namespaced=False),
    ResourceInfo("v1", "Node", "nodes", namespaced=False),
    ResourceInfo("v1", "Pod", "pods"),
    ResourceInfo("v1", "Secret", "secrets"),
    ResourceInfo("v1", "Service", "services"),
    ResourceInfo("v1", "ServiceAccount", "serviceaccounts"),
    ResourceInfo("v1", "ConfigMap", "configmaps"),
    ResourceInfo("v1", "Event", "events"),
    ResourceInfo("v1", "ResourceQuota", "resourcequotas"),
    ResourceInfo("apps/v1", "Deployment", "deployments"),
    ResourceInfo("apps/v1", "ReplicaSet", "replicasets"),
    ResourceInfo("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ResourceInfo("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ResourceInfo("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ResourceInfo("networking.k8s.io/v1", "Ingress", "ingresses"),
    ResourceInfo("rbac.authorization.k8s.io/v1", "Role", "roles"),
    ResourceInfo("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    ResourceInfo("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    ResourceInfo("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    ResourceInfo("cilium.io/v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies"),
    ResourceInfo("kopf.dev/v1", "ClusterKopfPeering", "clusterkopfpeerings", namespaced=False),
    ResourceInfo("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
    ResourceInfo("networking.k8s.io/v1", "ServiceCIDR", "servicecidrs", namespaced=False),
    ResourceInfo(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        namespaced=False,
    ),
    ResourceInfo("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False),
]
OWN = [ResourceInfo(k.api_version, k.kind, k.plural, k.namespaced) for k in KINDS]
BY_KIND = {(r.api_version, r.kind): r for r in BUILTIN + OWN}


def resource(api_version: str, kind: str) -> ResourceInfo:
    try:
        return BY_KIND[(api_version, kind)]
    except KeyError:
        raise ValueError(f"unknown resource {api_version} {kind}: add it to kube/resources.py") from None
