"""A workspace -> its router: ServiceAccount, Role, RoleBinding, token-review binding, Deployment, Service.

Ownership: "Workspace" is not an API object, so nothing here has an owner reference to it. The
labels say `owner-kind=Workspace, owner-name=<namespace>`; the operator prunes these objects by
label when the namespace's last endpoint goes. The namespaced ones go with their namespace anyway;
the cluster-scoped ClusterRoleBinding also carries a (non-controller) owner reference to the
Namespace, so the garbage collector removes it when the namespace is deleted, even while no
operator runs.

RBAC cannot say "only Secrets with this label": the Role grants get/list/watch on every Secret of
the workspace namespace, and the router lists them with the label selector
`modelcatalog.io/owner-kind=Endpoint`. Keeping the router out of other Secrets would need them in
another namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelcatalog import GROUP, labels
from modelcatalog.kube.resources import resource
from modelcatalog.render.objects import RESTRICTED_CONTAINER, RESTRICTED_POD, metadata
from modelcatalog.router.settings import DEFAULT_PORT
from modelcatalog.settings import Settings

KIND = "Workspace"
NAME = "modelcatalog-router"
OWNS = (
    resource("v1", "ServiceAccount"),
    resource("rbac.authorization.k8s.io/v1", "Role"),
    resource("rbac.authorization.k8s.io/v1", "RoleBinding"),
    resource("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    resource("apps/v1", "Deployment"),
    resource("v1", "Service"),
)
TOKENREVIEW_CLUSTER_ROLE = "modelcatalog-router-tokenreview"  # provided by the chart: create tokenreviews
SERVICE_PORT = 80
TLS_SERVICE_PORT = 443
TLS_MOUNT = "/etc/modelcatalog/tls"
MODERATION_MOUNT = "/etc/modelcatalog/moderation"
MODERATION_SECRET_KEY = "apiKey"  # noqa: S105 (a key's name in the Secret)


@dataclass(frozen=True)
class RouterInputs:
    namespace: str
    settings: Settings
    replicas: int = 2
    public: bool = False
    allowed_source_ranges: tuple[str, ...] = field(default_factory=tuple)
    tls_secret: str | None = None  # a kubernetes.io/tls Secret in the namespace: serve HTTPS with it
    namespace_uid: str | None = None  # the ClusterRoleBinding's owner, for the garbage collector

    @property
    def labels(self) -> dict[str, str]:
        return labels.managed(KIND, self.namespace) | {labels.COMPONENT: labels.ROUTER}

    def meta(self, name: str = NAME) -> dict[str, Any]:
        meta = metadata(name, self.namespace, self.labels, [])
        del meta["ownerReferences"]
        return meta


def url(namespace: str, tls: bool) -> str:
    """The OpenAI base URL of the workspace's endpoints (the body's `model` names the endpoint)."""
    return f"{'https' if tls else 'http'}://{NAME}.{namespace}.svc.cluster.local/v1"


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
            {"apiGroups": [GROUP], "resources": ["modeldeployments", "serverlessendpoints"], "verbs": read},
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
    meta: dict[str, Any] = {"name": f"{NAME}-{inputs.namespace}", "labels": inputs.labels}
    if inputs.namespace_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Namespace", "name": inputs.namespace, "uid": inputs.namespace_uid}
        ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TOKENREVIEW_CLUSTER_ROLE},
        "subjects": _subjects(inputs),
    }


def _probe(path: str, tls: bool) -> dict[str, Any]:
    get = {"path": path, "port": "http", "scheme": "HTTPS" if tls else "HTTP"}
    return {"httpGet": get, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3}


def deployment(inputs: RouterInputs) -> dict[str, Any]:
    tls = inputs.tls_secret is not None
    container: dict[str, Any] = {
        "name": "router",
        "image": inputs.settings.router_image,
        "env": [
            {"name": "MODELCATALOG_ROUTER_PORT", "value": str(DEFAULT_PORT)},
            {"name": "MODELCATALOG_ROUTER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            *content_safety_env(inputs.settings),
        ],
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz", tls),
        "livenessProbe": _probe("/healthz", tls),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": dict(RESTRICTED_CONTAINER),
    }
    pod: dict[str, Any] = {
        "serviceAccountName": NAME,
        "securityContext": dict(RESTRICTED_POD),
        "enableServiceLinks": False,
        "containers": [container],
    }
    if inputs.tls_secret is not None:
        container["env"] += [
            {"name": "MODELCATALOG_ROUTER_TLS_CERT", "value": f"{TLS_MOUNT}/tls.crt"},
            {"name": "MODELCATALOG_ROUTER_TLS_KEY", "value": f"{TLS_MOUNT}/tls.key"},
        ]
        container["volumeMounts"] = [{"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}]
        pod["volumes"] = [{"name": "tls", "secret": {"secretName": inputs.tls_secret}}]
    moderation_secret = inputs.settings.content_safety_moderation_secret
    if moderation_secret:
        # Optional: a workspace without the Secret calls the service without a credential.
        container.setdefault("volumeMounts", []).append(
            {"name": "moderation", "mountPath": MODERATION_MOUNT, "readOnly": True}
        )
        pod.setdefault("volumes", []).append(
            {"name": "moderation", "secret": {"secretName": moderation_secret, "optional": True}}
        )
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


def content_safety_env(settings: Settings) -> list[dict[str, str]]:
    """The router's content-safety settings (router/safety/config.py reads them), from the operator's."""
    values = {
        "FILTERS": ",".join(settings.content_safety_filters),
        "SERVERLESS": settings.content_safety_serverless,
        "ON_ERROR": settings.content_safety_on_error,
        "TIMEOUT_SECONDS": f"{settings.content_safety_timeout_seconds:g}",
        "MODERATION_URL": settings.content_safety_moderation_url,
        "MODERATION_MODEL": settings.content_safety_moderation_model,
        "MODERATION_KEY_FILE": (
            f"{MODERATION_MOUNT}/{MODERATION_SECRET_KEY}" if settings.content_safety_moderation_secret else None
        ),
        "GUARD_ENDPOINT": settings.content_safety_guard_endpoint,
    }
    return [{"name": f"MODELCATALOG_CONTENT_SAFETY_{k}", "value": v} for k, v in values.items() if v is not None]


def service(inputs: RouterInputs) -> dict[str, Any]:
    port = TLS_SERVICE_PORT if inputs.tls_secret is not None else SERVICE_PORT
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector(),
        "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
    }
    if inputs.public:
        spec |= {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}
        if inputs.allowed_source_ranges:
            spec["loadBalancerSourceRanges"] = list(inputs.allowed_source_ranges)
    return {"apiVersion": "v1", "kind": "Service", "metadata": inputs.meta(), "spec": spec}
