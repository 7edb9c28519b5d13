"""The serverless gateway: the router's code in gateway mode, in the serverless namespace.

Why it exists: a workspace user with the usual `edit` role can exec into the workspace router and take
whatever it holds. So metering, limits and the upstream provider's credential live here, in a namespace
workspace users cannot enter; workspace routers reach it with their ServiceAccount token, and the pools
admit only it (render/serverless.py pool_network_policy).

Objects: ServiceAccount, a Role reading the upstream credential Secret by name (only when one is set), a
ClusterRoleBinding to the chart's ClusterRole (TokenReviews, and read-only ServerlessEndpoints in every
namespace: each endpoint's backend, limits and prices), the Deployment, the Service, and its ingress policy
(workspace router pods of any namespace, on the gateway port). Present while any ServerlessEndpoint is
(controllers/serverless.py): a cluster that offers no serverless API runs no gateway pods.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from modelcatalog import labels
from modelcatalog.kube.resources import resource
from modelcatalog.render.objects import RESTRICTED_CONTAINER, RESTRICTED_POD, metadata
from modelcatalog.router.settings import DEFAULT_PORT
from modelcatalog.settings import Settings

KIND = "ServerlessGateway"  # the owner-kind label of the gateway's objects
OWNER = "gateway"  # their owner-name label
NAME = "modelcatalog-serverless-gateway"
INGRESS = "modelcatalog-gateway-ingress"
OWNS = (
    resource("v1", "ServiceAccount"),
    resource("rbac.authorization.k8s.io/v1", "Role"),
    resource("rbac.authorization.k8s.io/v1", "RoleBinding"),
    resource("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    resource("apps/v1", "Deployment"),
    resource("v1", "Service"),
    resource("networking.k8s.io/v1", "NetworkPolicy"),
    resource("v1", "Secret"),
)
CLUSTER_ROLE = "modelcatalog-serverless-gateway"  # provided by the chart: token reviews, endpoints read-only
SERVICE_PORT = 80
UPSTREAM_KEY = "apiKey"  # the key of the upstream credential Secret that holds the provider's API key
STORE_SECRET = "modelcatalog-gateway-store"  # noqa: S105 (a Secret's name)
STORE_MOUNT = "/etc/modelcatalog/store"


def gateway_labels() -> dict[str, str]:
    return labels.managed(KIND, OWNER) | {labels.COMPONENT: labels.SERVERLESS_GATEWAY}


def selector() -> dict[str, str]:
    return {labels.COMPONENT: labels.SERVERLESS_GATEWAY}


def _meta(settings: Settings, name: str = NAME) -> dict[str, Any]:
    meta = metadata(name, settings.serverless_namespace, gateway_labels(), [])
    del meta["ownerReferences"]  # nothing in the serverless namespace owns it: the endpoints count it
    return meta


def render(settings: Settings, namespace_uid: str | None = None) -> list[dict[str, Any]]:
    objects = [service_account(settings)]
    if settings.serverless_upstream_secret:
        objects += [role(settings, settings.serverless_upstream_secret), role_binding(settings)]
    return [
        *objects,
        cluster_role_binding(settings, namespace_uid),
        deployment(settings),
        service(settings),
        ingress_policy(settings),
        *([store_secret(settings)] if _store(settings) else []),
    ]


def _store(settings: Settings) -> bool:
    return bool(settings.serverless_store_url and settings.serverless_store_password)


def store_secret(settings: Settings) -> dict[str, Any]:
    """The serverless store's password, for the gateway alone: it meters and limits every endpoint, and no
    workspace namespace (whose users may exec into their router) ever holds it."""
    password = base64.b64encode(str(settings.serverless_store_password).encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(settings, STORE_SECRET), "type": "Opaque",
            "data": {"password": password}}  # fmt: skip


def store_env(settings: Settings) -> list[dict[str, Any]]:
    if not _store(settings):
        return []
    return [
        {"name": "MODELCATALOG_ROUTER_STORE_URL", "value": str(settings.serverless_store_url)},
        {"name": "MODELCATALOG_ROUTER_STORE_PASSWORD_FILE", "value": f"{STORE_MOUNT}/password"},
        {"name": "MODELCATALOG_ROUTER_STORE_FAIL_OPEN", "value": str(settings.serverless_store_fail_open).lower()},
    ]


def service_account(settings: Settings) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(settings)}


def role(settings: Settings, secret: str) -> dict[str, Any]:
    """The upstream credential, by name: no other Secret of the namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(settings),
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [secret]}],
    }


def _subjects(settings: Settings) -> list[dict[str, Any]]:
    return [{"kind": "ServiceAccount", "name": NAME, "namespace": settings.serverless_namespace}]


def role_binding(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(settings),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
        "subjects": _subjects(settings),
    }


def cluster_role_binding(settings: Settings, namespace_uid: str | None) -> dict[str, Any]:
    """Cluster-scoped: owned by the serverless Namespace for the garbage collector, pruned by label here."""
    meta: dict[str, Any] = {"name": NAME, "labels": gateway_labels()}
    if namespace_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Namespace", "name": settings.serverless_namespace, "uid": namespace_uid}
        ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": _subjects(settings),
    }


def _probe(path: str) -> dict[str, Any]:
    get = {"path": path, "port": "http", "scheme": "HTTP"}
    return {"httpGet": get, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3}


def container_env(settings: Settings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "MODELCATALOG_ROUTER_PORT", "value": str(DEFAULT_PORT)},
        {"name": "MODELCATALOG_ROUTER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    if settings.serverless_upstream_url:
        env.append({"name": "MODELCATALOG_SERVERLESS_UPSTREAM_URL", "value": settings.serverless_upstream_url})
    if settings.serverless_upstream_secret:
        env.append({"name": "MODELCATALOG_SERVERLESS_UPSTREAM_SECRET", "value": settings.serverless_upstream_secret})
    return env + store_env(settings)


def deployment(settings: Settings) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "gateway",
        "image": settings.router_image,
        "args": ["--mode", "gateway"],
        "env": container_env(settings),
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz"),
        "livenessProbe": _probe("/healthz"),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": dict(RESTRICTED_CONTAINER),
    }
    pod: dict[str, Any] = {
        "serviceAccountName": NAME,
        "securityContext": dict(RESTRICTED_POD),
        "enableServiceLinks": False,
        "containers": [container],
    }
    if _store(settings):
        container["volumeMounts"] = [{"name": "store", "mountPath": STORE_MOUNT, "readOnly": True}]
        pod["volumes"] = [{"name": "store", "secret": {"secretName": STORE_SECRET}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(settings),
        "spec": {
            "replicas": settings.serverless_gateway_replicas,
            "selector": {"matchLabels": selector()},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": gateway_labels()}, "spec": pod},
        },
    }


def service(settings: Settings) -> dict[str, Any]:
    spec = {
        "type": "ClusterIP",
        "selector": selector(),
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(settings), "spec": spec}


def ingress_policy(settings: Settings) -> dict[str, Any]:
    """Gateway pods take traffic only from the workspace routers (the operator's router pods, any namespace);
    the admission policy keeps the router label to the operator's pods (policy/operator-workloads.yaml)."""
    routers = {"matchLabels": {labels.COMPONENT: labels.ROUTER, labels.MANAGED_BY: labels.MANAGER}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(settings, INGRESS),
        "spec": {
            "podSelector": {"matchLabels": selector()},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {}, "podSelector": routers}],
                    "ports": [{"port": DEFAULT_PORT, "protocol": "TCP"}],
                }
            ],
        },
    }


def address(service: Mapping[str, Any] | None) -> str | None:
    """The gateway Service's ClusterIP:port, which the workspace routers forward to (no DNS needed)."""
    ip = ((service or {}).get("spec") or {}).get("clusterIP")
    return f"{ip}:{SERVICE_PORT}" if ip and ip != "None" else None


def ready_replicas(deployment: Mapping[str, Any] | None) -> int:
    return int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
