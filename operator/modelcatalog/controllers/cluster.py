"""The operator's view of the cluster: one watch cache per resource it reads.

The child caches derive from what each kind declares it owns (`render.owners.OWNERSHIP`), each
filtered on the server by the managed-by label. Reads that cross kinds return pydantic models.
Controllers subscribe to changes with `@on_change(CACHE)`; a change never runs a reconcile itself,
it only requests one.

A shard (modelcatalog/shard.py) also watches the namespaces labelled as its own: the namespaced caches
hold only their objects (and the serverless namespace's, which every shard reads), except the
ServerlessEndpoints, which the owner of the shared pools counts over the whole cluster.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

import kopf
from pydantic import BaseModel, ValidationError

from modelcatalog import API_VERSION
from modelcatalog.api.base import Toggle
from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec
from modelcatalog.api.network import WorkspaceNetworkSpec
from modelcatalog.kube.cache import Obj, WatchCache
from modelcatalog.kube.client import FIELD_MANAGER, KubeClient
from modelcatalog.kube.resources import ResourceInfo, resource
from modelcatalog.labels import COMPONENT, DEPLOYMENT, MANAGED_BY, MANAGER, MODEL_SERVER, OWNER_KIND, OWNER_NAME
from modelcatalog.render import quota
from modelcatalog.shard import Shard

CHILDREN = "children"
PODS = "pods"
NODES = "nodes"
MODELS = "catalogmodels"
INSTANCE_TYPES = "instancetypes"
DEPLOYMENTS = "modeldeployments"
NETWORKS = "workspacenetworks"
SERVERLESS = "serverlessendpoints"
PEERINGS = "clusterkopfpeerings"
QUOTAS = "resourcequotas"
NAMESPACES = "namespaces"

M = TypeVar("M", bound=BaseModel)
Listener = Callable[[kopf.Memo, Obj | None, Obj | None], None]
LISTENERS: defaultdict[str, list[Listener]] = defaultdict(list)


def on_change(cache: str) -> Callable[[Listener], Listener]:
    """Register a listener for changes of one cache (for CHILDREN: of any child kind)."""

    def register(fn: Listener) -> Listener:
        LISTENERS[cache].append(fn)
        return fn

    return register


def without_status_edits(obj: Obj) -> Obj:
    """A child as reconciles need it: managedFields only of others' spec/data edits (they show drift; ours,
    a copy of every field we set, is most of an object's size)."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    edits = [
        e
        for e in obj["metadata"].get("managedFields") or []
        if not e.get("subresource") and e.get("manager") != FIELD_MANAGER
    ]
    if edits:
        meta["managedFields"] = edits
    return {**obj, "metadata": meta}


def without_managed_fields(obj: Obj) -> Obj:
    """An object of ours (a ModelDeployment) as reconciles read it: who set which field is never asked."""
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}


def pod_summary(pod: Obj) -> Obj:
    status = pod.get("status") or {}
    return {
        "metadata": {k: pod["metadata"].get(k) for k in ("name", "namespace", "labels", "resourceVersion")},
        "status": {"phase": status.get("phase"), "conditions": status.get("conditions") or []},
    }


def node_summary(node: Obj) -> Obj:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return {
        "metadata": {k: node["metadata"].get(k) for k in ("name", "labels", "resourceVersion")},
        "gpus": int(allocatable.get("nvidia.com/gpu", 0) or 0),
    }


def quota_summary(quota: Obj) -> Obj:
    """A ResourceQuota as the GPU rule reads it (docs/policy.md): its hard limits only."""
    return {
        "metadata": {k: quota["metadata"].get(k) for k in ("name", "namespace", "resourceVersion")},
        "spec": {"hard": dict((quota.get("spec") or {}).get("hard") or {})},
    }


def owner_key(obj: Obj) -> Iterable[Hashable]:
    labels = obj["metadata"].get("labels") or {}
    return [(obj["metadata"].get("namespace"), labels.get(OWNER_KIND), labels.get(OWNER_NAME))]


def owner_kind_key(obj: Obj) -> Iterable[Hashable]:
    return [(obj["metadata"].get("namespace"), (obj["metadata"].get("labels") or {}).get(OWNER_KIND))]


def pod_owner(obj: Obj) -> Iterable[Hashable]:
    return [(obj["metadata"].get("namespace"), (obj["metadata"].get("labels") or {}).get(DEPLOYMENT))]


def deployment_refs(obj: Obj) -> Iterable[Hashable]:
    namespace, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    return [
        ("endpoint", namespace, spec.get("endpointName") or name),
        ("model", spec.get("model")),
        ("instancetype", spec.get("instanceType")),
        ("namespace", namespace),
    ]


def serverless_refs(obj: Obj) -> Iterable[Hashable]:
    return [("model", (obj.get("spec") or {}).get("model")), ("namespace", obj["metadata"].get("namespace"))]


def namespace_summary(namespace: Obj) -> Obj:
    return {"metadata": {k: namespace["metadata"].get(k) for k in ("name", "labels", "resourceVersion")}}


def in_namespace(obj: Obj) -> Iterable[Hashable]:
    return [obj["metadata"].get("namespace")]


def key_of_namespace(namespace: Obj | None) -> str:
    return "" if namespace is None else str(namespace["metadata"]["name"])


def alive(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if not o["metadata"].get("deletionTimestamp")]


CHILD_INDEXES = {"owner": owner_key, "owner_kind": owner_kind_key}


class ClusterView:
    def __init__(
        self,
        client: KubeClient,
        memo: kopf.Memo,
        children: Iterable[ResourceInfo],
        peering: str | None = None,
        shard: Shard | None = None,
        shared_namespace: str | None = None,
    ) -> None:
        """`peering`: the ClusterKopfPeering whose peers decide which replica works (None: standalone).
        `shard`: the namespaces this operator serves (None: every one); `shared_namespace`: one every shard
        reads (the serverless namespace)."""
        self.shard = shard or Shard()
        self._shared_namespace = shared_namespace
        scope = self.holds if self.shard.sharded else None

        def cache(name: str, info: ResourceInfo, **options: Any) -> WatchCache:
            return WatchCache(client, info, on_change=lambda old, new: self._notify(name, old, new), **options)

        def scoped(name: str, info: ResourceInfo, **options: Any) -> WatchCache:
            return cache(name, info, scope=scope, **options)

        self._memo = memo
        managed = f"{MANAGED_BY}={MANAGER}"
        self.children = {
            info: scoped(CHILDREN, info, label_selector=managed, slim=without_status_edits, indexes=CHILD_INDEXES)
            for info in children
        }
        self.pods = scoped(
            PODS, resource("v1", "Pod"), label_selector=f"{COMPONENT}={MODEL_SERVER}", slim=pod_summary,
            indexes={"deployment": pod_owner},
        )  # fmt: skip
        self.nodes = cache(NODES, resource("v1", "Node"), slim=node_summary)
        self.models = cache(MODELS, resource(API_VERSION, "CatalogModel"))
        self.instance_types = cache(INSTANCE_TYPES, resource(API_VERSION, "InstanceType"))
        self.deployments = scoped(
            DEPLOYMENTS, resource(API_VERSION, "ModelDeployment"), slim=without_managed_fields,
            indexes={"refs": deployment_refs},
        )  # fmt: skip
        # Every shard's: the pools' owner counts them all (reconciles stay with each endpoint's shard).
        self.serverless = cache(
            SERVERLESS, resource(API_VERSION, "ServerlessEndpoint"), indexes={"refs": serverless_refs}
        )
        self.networks = scoped(NETWORKS, resource(API_VERSION, "WorkspaceNetwork"), indexes={"namespace": in_namespace})
        self.quotas = scoped(
            QUOTAS, resource("v1", "ResourceQuota"), slim=quota_summary, indexes={"namespace": in_namespace}
        )
        self.peering_name = peering
        self.peerings = cache(PEERINGS, resource("kopf.dev/v1", "ClusterKopfPeering")) if peering else None
        self.namespaces = (
            WatchCache(
                client, resource("v1", "Namespace"), label_selector=self.shard.selector(), slim=namespace_summary,
                on_change=self._namespace_changed,
            )
            if self.shard.sharded
            else None
        )  # fmt: skip
        self._tasks: list[asyncio.Task[None]] = []
        self._parsed: dict[tuple[type[BaseModel], str], tuple[str | None, Any]] = {}

    @property
    def caches(self) -> list[WatchCache]:
        fixed = [
            self.pods, self.nodes, self.models, self.instance_types, self.deployments, self.serverless, self.networks,
            self.quotas,
        ]  # fmt: skip
        optional = [c for c in (self.peerings, self.namespaces) if c is not None]
        return [*self.children.values(), *fixed, *optional]

    def serves(self, namespace: str | None) -> bool:
        """Whether this operator reconciles the objects of `namespace` (its label names this shard)."""
        if self.namespaces is None:
            return True
        return namespace is not None and self.namespaces.get(None, namespace) is not None

    def holds(self, namespace: str) -> bool:
        """Whether the scoped caches hold `namespace`'s objects: the served ones and the shared namespace."""
        return namespace == self._shared_namespace or self.serves(namespace)

    def _namespace_changed(self, old: Obj | None, new: Obj | None) -> None:
        """A namespace joined or left this shard: its objects move into or out of every scoped cache."""
        if (old is None) == (new is None) or self._shared_namespace in (key_of_namespace(old), key_of_namespace(new)):
            return
        name = key_of_namespace(new or old)
        for cache in self.caches:
            if new is not None:
                cache.admit(name)
            else:
                cache.release(name)
        if new is not None:  # the endpoints were in the cache all along: announce them to this shard now
            for body in self.serverless_by("namespace", name):
                self._notify(SERVERLESS, None, body)

    def peering(self) -> Obj | None:
        return self.peerings.get(None, self.peering_name) if self.peerings is not None and self.peering_name else None

    def start(self) -> None:
        self._tasks = [asyncio.get_running_loop().create_task(c.run()) for c in self.caches]

    async def ready(self) -> None:
        """Return once every cache holds its first full list."""
        for cache in self.caches:
            await cache.listed.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _notify(self, cache: str, old: Obj | None, new: Obj | None) -> None:
        for listener in LISTENERS[cache]:
            listener(self._memo, old, new)

    # Reads

    def children_of(self, namespace: str | None, owner_kind: str, owner_name: str) -> list[Obj]:
        key = (namespace, owner_kind, owner_name)
        return [obj for cache in self.children.values() for obj in cache.by("owner", key)]

    def children_of_kind(self, namespace: str | None, owner_kind: str) -> list[Obj]:
        """Every child in the namespace whose owner is of `owner_kind`, whatever its name."""
        key = (namespace, owner_kind)
        return [obj for cache in self.children.values() for obj in cache.by("owner_kind", key)]

    def child(self, info: ResourceInfo, namespace: str | None, owner_kind: str, owner_name: str) -> Obj | None:
        cache = self.children.get(info)
        found = cache.by("owner", (namespace, owner_kind, owner_name)) if cache is not None else []
        return found[0] if found else None

    def deployments_by(self, *ref: Any) -> list[Obj]:
        return alive(self.deployments.by("refs", ref))

    def serverless_by(self, *ref: Any) -> list[Obj]:
        """ServerlessEndpoints by ("model", name) or ("namespace", namespace), deleting ones included."""
        return self.serverless.by("refs", ref)

    def catalog_model(self, name: str) -> CatalogModelSpec | ValidationError | None:
        """The model's spec; the validation error when the stored object is malformed; None when absent."""
        found = self.models.get(None, name)
        return None if found is None else self._spec(CatalogModelSpec, found)

    def instance_types_by_name(self) -> dict[str, InstanceTypeSpec | ValidationError]:
        """Every InstanceType's spec by name; the validation error for a malformed one (fatal to no one)."""
        return {obj["metadata"]["name"]: self._spec(InstanceTypeSpec, obj) for obj in self.instance_types.all()}

    def _spec(self, model: type[M], obj: Obj) -> M | ValidationError:
        """A catalog entry's spec, validated once per resourceVersion: every reconcile reads the catalog."""
        name, version = obj["metadata"]["name"], obj["metadata"].get("resourceVersion")
        cached = self._parsed.get((model, name))
        if cached is not None and version is not None and cached[0] == version:
            found: M | ValidationError = cached[1]
            return found
        try:
            found = model.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            found = error
        self._parsed[(model, name)] = (version, found)
        return found

    def gpu_workspace(self, namespace: str | None, name: str) -> quota.Workspace:
        """The namespace's GPU quotas and what its ModelDeployments other than `name` need."""
        quotas = quota.gpu_quotas(self.quotas.by("namespace", namespace))
        if not quotas:
            return quota.Workspace()
        others = quota.needs(self.deployments_by("namespace", namespace), self.instance_types_by_name(), but=name)
        return quota.Workspace(quotas, others)

    def workspace_networks(self, namespace: str | None) -> list[Obj]:
        """The namespace's WorkspaceNetworks, the one in force first (the oldest, then by name)."""
        found = alive(self.networks.by("namespace", namespace))
        return sorted(found, key=lambda n: (n["metadata"].get("creationTimestamp", ""), n["metadata"]["name"]))

    def network_in_force(self, namespace: str | None) -> WorkspaceNetworkSpec:
        """The namespace's WorkspaceNetwork in force; the defaults when there is none or it is malformed (its own
        controller reports that)."""
        networks = self.workspace_networks(namespace)
        if not networks:
            return WorkspaceNetworkSpec()
        try:
            return WorkspaceNetworkSpec.model_validate(networks[0].get("spec") or {})
        except ValidationError:
            return WorkspaceNetworkSpec()

    def public_access(self, namespace: str | None) -> Toggle:
        """The public network access every endpoint of the namespace follows."""
        return self.network_in_force(namespace).public_network_access

    def router_tls(self, namespace: str | None) -> bool:
        """Whether the workspace's router serves HTTPS (endpoint URLs say so)."""
        return self.network_in_force(namespace).tls_secret_name is not None
