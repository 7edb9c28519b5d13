"""What each kind owns, declared once: the caches that watch children, pruning and RBAC derive from it."""

from __future__ import annotations

from modelcatalog.kube.resources import ResourceInfo
from modelcatalog.render import deployment, gateway, network, router, serverless

OWNERSHIP: dict[str, tuple[ResourceInfo, ...]] = {
    deployment.KIND: deployment.OWNS,
    network.KIND: network.OWNS,
    router.KIND: router.OWNS,
    serverless.KIND: serverless.OWNS,
    serverless.POOL_KIND: serverless.POOL_OWNS,  # in the serverless namespace, counted by the endpoints
    gateway.KIND: gateway.OWNS,  # in the serverless namespace (and its ClusterRoleBinding), while any endpoint is
}


def child_resources() -> tuple[ResourceInfo, ...]:
    """Every child resource of every kind, each once, in declaration order."""
    return tuple(dict.fromkeys(info for owned in OWNERSHIP.values() for info in owned))
