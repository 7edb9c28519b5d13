"""A workspace -> its router: ServiceAccount, Role, RoleBinding, token-review binding, Deployment, Service.

RBAC cannot say "only Secrets with this label": the Role grants get/list/watch on every Secret of
the workspace namespace, and the router lists them with the label selector
`modelcatalog.io/owner-kind=Endpoint`. Keeping the router out of other Secrets would need them in
another namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelcatalog import GROUP, labels
from modelcatalog.render.objects import RESTRICTED_CONTAINER, RESTRICTED_POD, Owner, metadata
from modelcatalog.router.settings import DEFAULT_PORT
from modelcatalog.settings import Settings

KIND = "Workspace"
NAME = "modelcatalog-router"
TOKENREVIEW_CLUSTER_ROLE = "modelcatalog-router-tokenreview"  # provided by the chart: create tokenreviews
SERVICE_PORT = 80


@dataclass(frozen=True)
class RouterInputs:
    namespace: str
    owner: Owner
    settings: Settings
    replicas: int = 2
    public: bool = False
    allowed_source_ranges: tuple[str, ...] = field(default_factory=tuple)

    @property
    def labels(self) -> dict[str, str]:
        return labels.managed(KIND, self.owner.name) | {labels.COMPONENT: labels.ROUTER}

    def meta(self, name: str = NAME) -> dict[str, Any]:
        return metadata(name, self.namespace, self.labels, [self.owner.reference()])


def selector() -> dict[str, str]:
    return {labels.COMPONENT: labels.ROUTER}


def render(inputs: RouterInputs) -> list[dict[str, Any]]:
    return [
        service_account(inputs),
        role(inputs),
        role_binding(inputs),
        tokenreview_binding(inputs),
        deployment(inputs),
        service(inputs),
    ]


def service_account(inputs: RouterInputs) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": inputs.meta()}


def role(inputs: RouterInputs) -> dict[str, Any]:
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": inputs.meta(),
        "rules": [
            {"apiGroups": [GROUP], "resources": ["modeldeployments"], "verbs": read},
            {"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": read},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]},
        ],
    }


def _subjects(inputs: RouterInputs) -> list[dict[str, Any]]:
    return [{"kind": "ServiceAccount", "name": NAME, "namespace": inputs.namespace}]


def role_binding(inputs: RouterInputs) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": inputs.meta(),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
        "subjects": _subjects(inputs),
    }


def tokenreview_binding(inputs: RouterInputs) -> dict[str, Any]:
    """Cluster-scoped: no owner reference can point at a namespaced owner, so it is pruned by label."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{NAME}-{inputs.namespace}", "labels": inputs.labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TOKENREVIEW_CLUSTER_ROLE},
        "subjects": _subjects(inputs),
    }


def _probe(path: str) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3}


def deployment(inputs: RouterInputs) -> dict[str, Any]:
    container = {
        "name": "router",
        "image": inputs.settings.router_image,
        "env": [
            {"name": "MODELCATALOG_ROUTER_PORT", "value": str(DEFAULT_PORT)},
            {"name": "MODELCATALOG_ROUTER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz"),
        "livenessProbe": _probe("/healthz"),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": dict(RESTRICTED_CONTAINER),
    }
    pod = {
        "serviceAccountName": NAME,
        "securityContext": dict(RESTRICTED_POD),
        "enableServiceLinks": False,
        "containers": [container],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": inputs.meta(),
        "spec": {
            "replicas": inputs.replicas,
            "selector": {"matchLabels": selector()},
            "template": {"metadata": {"labels": inputs.labels}, "spec": pod},
        },
    }


def service(inputs: RouterInputs) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector(),
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    if inputs.public:
        spec |= {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}
        if inputs.allowed_source_ranges:
            spec["loadBalancerSourceRanges"] = list(inputs.allowed_source_ranges)
    return {"apiVersion": "v1", "kind": "Service", "metadata": inputs.meta(), "spec": spec}
