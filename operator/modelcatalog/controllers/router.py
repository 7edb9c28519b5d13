"""The workspace router: one per namespace that has at least one endpoint, gone with the last one.

"Workspace" is no API object, so the router's children carry the labels `owner-kind=Workspace`,
`owner-name=<namespace>` and no owner reference to it (render/router.py): the namespaced ones go
with their namespace, and while it lives they are pruned here, by label, when the namespace's last
endpoint goes. The cluster-scoped ClusterRoleBinding is found the same way (the cache keys it
by namespace None and owner-name = the namespace), and the Namespace owns it for the garbage
collector.

Triggers: a ModelDeployment or ServerlessEndpoint appearing or going in the namespace, a router child edited or deleted,
the namespace's WorkspaceNetwork (public access, allowed IP ranges and the TLS Secret decide the
Service).
"""

from __future__ import annotations

import kopf

from modelcatalog.api.base import Toggle
from modelcatalog.controllers import work
from modelcatalog.controllers.cluster import CHILDREN, DEPLOYMENTS, NETWORKS, SERVERLESS, ClusterView, on_change
from modelcatalog.kube.cache import Obj
from modelcatalog.kube.sync import sync
from modelcatalog.labels import OWNER_KIND, OWNER_NAME
from modelcatalog.render import router as render
from modelcatalog.render.deployment import KIND as DEPLOYMENT_KIND

KIND = render.KIND


def _exists(body: Obj | None) -> bool:
    return body is not None and not body["metadata"].get("deletionTimestamp")


@on_change(SERVERLESS)
@on_change(DEPLOYMENTS)
def on_deployment(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    if _exists(old) != _exists(new):  # an endpoint appeared or went (spec and status edits do not matter)
        body = new or old
        assert body is not None
        work.request(memo, KIND, body["metadata"].get("namespace"))


@on_change(CHILDREN)
def on_child(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    child = new or old
    assert child is not None
    labels = child["metadata"].get("labels") or {}
    if labels.get(OWNER_KIND) == KIND and labels.get(OWNER_NAME):
        work.request(memo, KIND, labels[OWNER_NAME])  # edited or deleted by hand, or the ClusterRoleBinding


@on_change(NETWORKS)
def on_network(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    network = new or old
    assert network is not None
    namespace = network["metadata"].get("namespace")
    work.request(memo, KIND, namespace)
    if _tls_secret(old) != _tls_secret(new):  # the endpoints' URLs change scheme
        for body in memo.cluster.deployments_by("namespace", namespace):
            work.request(memo, DEPLOYMENT_KIND, (namespace, body["metadata"]["name"]))


def _tls_secret(network: Obj | None) -> object:
    return ((network or {}).get("spec") or {}).get("tlsSecretName")


def inputs(memo: kopf.Memo, namespace: str, namespace_uid: str | None) -> render.RouterInputs:
    spec = memo.cluster.network_in_force(namespace)
    public = spec.public_network_access == Toggle.ENABLED and memo.settings.router_load_balancer
    return render.RouterInputs(
        namespace=namespace,
        settings=memo.settings,
        public=public,
        allowed_source_ranges=tuple(spec.allowed_ip_ranges) if public else (),
        tls_secret=spec.tls_secret_name,
        namespace_uid=namespace_uid,
    )


def live_children(cluster: ClusterView, namespace: str) -> list[Obj]:
    return cluster.children_of(namespace, KIND, namespace) + cluster.children_of(None, KIND, namespace)


@work.reconciler(KIND, work.namespace)
async def reconcile(memo: kopf.Memo, namespace: str) -> None:
    cluster: ClusterView = memo.cluster
    live = live_children(cluster, namespace)
    if not has_endpoints(cluster, namespace):
        if live:
            await sync(memo.client, namespace, [], live)  # the last endpoint went
        return
    found = await memo.client.get("v1", "Namespace", namespace)
    if found is None or found["metadata"].get("deletionTimestamp"):
        return  # the namespace is going, and everything in it
    await sync(memo.client, namespace, render.render(inputs(memo, namespace, found["metadata"]["uid"])), live)


def has_endpoints(cluster: ClusterView, namespace: str) -> bool:
    """A ModelDeployment or a ServerlessEndpoint that is not being deleted."""
    serverless = [
        b for b in cluster.serverless_by("namespace", namespace) if not b["metadata"].get("deletionTimestamp")
    ]
    return bool(cluster.deployments_by("namespace", namespace) or serverless)
