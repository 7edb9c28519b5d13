"""ServerlessEndpoint: resolve the offer -> keys Secret -> the model's shared pool -> status.

Two queues. The endpoint's (key: namespace, name) holds the finalizer on, writes the keys Secret and the
status. The pool's (key: the model's name) brings the pool in the serverless namespace to what the
endpoints need right now — desired exactly when some endpoint not being deleted uses it — and only then
takes the finalizer off every deleting endpoint of that model, so the last endpoint's deletion waits for
the pool's. The pool queue's key "" keeps the serverless namespace's shared objects: the pools' ingress
policy (present while any pool is) and the serverless gateway (present while any endpoint is, in any
namespace: every request goes through it, and a cluster that offers no serverless API runs no gateway pods).

With shards (docs/sharding.md) the endpoint's queue runs in the endpoint's shard (it puts the finalizer on),
the pool's only in the shard that owns the shared objects, which counts every endpoint of the cluster and
takes the finalizer off whichever shard's endpoint it let go of.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION, clock
from modelcatalog.api.base import describe
from modelcatalog.api.catalog import InstanceTypeSpec
from modelcatalog.api.serverless import BackendKind, ServerlessEndpointSpec, ServerlessEndpointStatus, Usage
from modelcatalog.controllers import notices, work
from modelcatalog.controllers.cluster import (
    CHILDREN,
    INSTANCE_TYPES,
    MODELS,
    NETWORKS,
    SERVERLESS,
    ClusterView,
    on_change,
)
from modelcatalog.kube.cache import Obj
from modelcatalog.kube.client import ApiError
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import ChildConflict, ChildRefused, sync
from modelcatalog.labels import OWNER_KIND, OWNER_NAME
from modelcatalog.render import gateway
from modelcatalog.render import serverless as render
from modelcatalog.render.keys import InvalidKeys, Keys
from modelcatalog.render.objects import Owner
from modelcatalog.render.router import url as router_url

KIND = render.KIND
POOL = render.POOL_KIND
NETWORK_KEY = ""  # the pool queue's key for the namespace's ingress policy
INFO = resource(API_VERSION, KIND)
SECRET = resource("v1", "Secret")
SERVICE = resource("v1", "Service")
DEPLOYMENT = resource("apps/v1", "Deployment")


def _key(body: Obj) -> tuple[str, str]:
    return body["metadata"].get("namespace"), body["metadata"]["name"]


def _model(body: Obj | None) -> str | None:
    return ((body or {}).get("spec") or {}).get("model")


def request_model(memo: kopf.Memo, model: str) -> None:
    """The model's pool, and every endpoint on it (their status shows the pool)."""
    work.request(memo, POOL, model)
    for body in memo.cluster.serverless_by("model", model):
        work.request(memo, KIND, _key(body))


@on_change(SERVERLESS)
def on_endpoint(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    for body in (old, new):
        if body is not None:
            work.request(memo, KIND, _key(body))
            if _model(body):
                work.request(memo, POOL, _model(body))
    work.request(memo, POOL, NETWORK_KEY)  # the gateway: present while any endpoint is


@on_change(CHILDREN)
def on_child(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    child = new or old
    assert child is not None
    labels = child["metadata"].get("labels") or {}
    owner_kind, owner = labels.get(OWNER_KIND), labels.get(OWNER_NAME, "")
    namespace = child["metadata"].get("namespace")
    if owner_kind == POOL:
        request_model(memo, owner)
    elif owner_kind == render.POOL_NETWORK_KIND:
        work.request(memo, POOL, NETWORK_KEY)
    elif owner_kind == gateway.KIND:
        work.request(memo, POOL, NETWORK_KEY)
        for body in memo.cluster.serverless.all():  # their status shows the gateway's address and readiness
            work.request(memo, KIND, _key(body))
    elif owner_kind == render.ENDPOINT_OWNER and memo.cluster.serverless.get(namespace, owner) is not None:
        work.request(memo, KIND, (namespace, owner))


@on_change(MODELS)
def on_catalog_model(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    entry = new or old
    assert entry is not None
    request_model(memo, entry["metadata"]["name"])


@on_change(INSTANCE_TYPES)
def on_instance_type(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    for model in {_model(b) for b in memo.cluster.serverless.all()} - {None}:
        assert model is not None
        request_model(memo, model)


@on_change(NETWORKS)
def on_network(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    network = new or old
    assert network is not None
    for body in memo.cluster.serverless_by("namespace", network["metadata"].get("namespace")):
        work.request(memo, KIND, _key(body))  # the URL's scheme follows the workspace's TLS setting


# What both queues decide from.


def offer_of(memo: kopf.Memo, body: Obj) -> render.Offer | render.Refusal:
    try:
        spec = ServerlessEndpointSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return render.Refusal("InvalidSpec", describe(error))
    model = spec.model
    return render.resolve(model, memo.cluster.catalog_model(model), spec, memo.settings, clock.today())


def pool_type(cluster: ClusterView, offer: render.Offer) -> tuple[str, InstanceTypeSpec] | render.Refusal:
    types = cluster.instance_types_by_name()
    name = render.pool_instance_type(offer.model_name, offer.model, types)
    found = types.get(name) if name else None
    if name is None or not isinstance(found, InstanceTypeSpec):
        return render.Refusal(
            "NoInstanceType",
            f"no InstanceType can serve CatalogModel {offer.model_name} on the pool: ask the platform team for one",
        )
    return name, found


def on_pool(memo: kopf.Memo, body: Obj) -> bool:
    offer = offer_of(memo, body)
    return (
        isinstance(offer, render.Offer)
        and offer.backend == BackendKind.POOL
        and not isinstance(pool_type(memo.cluster, offer), render.Refusal)
    )


async def namespace_exists(memo: kopf.Memo) -> bool:
    found = await memo.client.get("v1", "Namespace", memo.settings.serverless_namespace)
    return found is not None and not found["metadata"].get("deletionTimestamp")


# The endpoint.


@work.reconciler(KIND, work.namespaced)
async def reconcile(memo: kopf.Memo, key: tuple[str, str]) -> None:
    namespace, name = key
    cluster: ClusterView = memo.cluster
    body = cluster.serverless.get(namespace, name)
    if body is None:
        return
    if body["metadata"].get("deletionTimestamp"):
        if render.FINALIZER in render.finalizers(body) and _model(body):
            work.request(memo, POOL, _model(body))  # the pool lets go of it, then takes the finalizer off
        return
    if render.FINALIZER not in render.finalizers(body):
        await set_finalizers(memo, body, [*render.finalizers(body), render.FINALIZER])
        return  # the change brings us back with the finalizer on
    offer = offer_of(memo, body)
    if isinstance(offer, render.Refusal):
        await work.write_status(memo.client, INFO, body, render.refused_status(offer))
        work.request(memo, POOL, _model(body) or NETWORK_KEY)  # a pool it used may no longer be needed
        return
    problem = None
    try:
        await apply_keys(memo, body)
    except (ChildConflict, ChildRefused, InvalidKeys) as error:
        problem = render.Refusal(type(error).__name__, str(error))

    address = router_url(namespace, cluster.router_tls(namespace))
    ns = memo.settings.serverless_namespace
    gateway_address = gateway.address(cluster.child(SERVICE, ns, gateway.KIND, gateway.OWNER))
    gateway_ready = gateway.ready_replicas(cluster.child(DEPLOYMENT, ns, gateway.KIND, gateway.OWNER))
    if offer.backend == BackendKind.UPSTREAM:
        backend = render.upstream_backend(offer.model_name, memo.settings, gateway_address)
        status = render.offer_status(name, offer, address, backend, None, problem, gateway_ready)
    else:
        work.request(memo, POOL, offer.model_name)
        placed = pool_type(cluster, offer)
        if problem is None and isinstance(placed, render.Refusal):
            problem = placed
        if problem is None and not await namespace_exists(memo):
            problem = render.Refusal(
                "NoServerlessNamespace",
                f"the serverless namespace {ns} does not exist: the platform team creates it (the Helm chart does)",
            )
        service = cluster.child(SERVICE, ns, POOL, offer.model_name)
        deployment = cluster.child(DEPLOYMENT, ns, POOL, offer.model_name)
        backend = render.pool_backend(offer.model_name, memo.settings, service, gateway_address)
        ready = render.pool_ready_replicas(deployment)
        status = render.offer_status(name, offer, address, backend, ready, problem, gateway_ready)
    today = clock.today()
    subject, replacement, notice = render.offer_notice(offer, memo.settings, today)
    status = notices.with_notice(status, subject, replacement, notice, today)
    await work.write_status(memo.client, INFO, body, with_usage(memo, key, body, status))
    await notices.announce(memo, KIND, body, status, notice)


def with_usage(
    memo: kopf.Memo, key: tuple[str, str], body: Obj, status: ServerlessEndpointStatus
) -> ServerlessEndpointStatus:
    """The usage the store last gave (controllers/usage.py), else the one in status (an operator that just started
    keeps it until its first read)."""
    usage = memo.get("usage", {}).get(key)
    if usage is None and (body.get("status") or {}).get("usage"):
        usage = Usage.model_validate(body["status"]["usage"])
    return status.model_copy(update={"usage": usage}) if usage is not None else status


async def set_finalizers(memo: kopf.Memo, body: Obj, wanted: list[str]) -> None:
    """Replace the finalizers, only if nobody changed the object meanwhile (a conflict retries)."""
    meta = body["metadata"]
    patch = {"metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}}
    try:
        await memo.client.merge_patch(INFO, meta["name"], meta.get("namespace"), patch)
    except ApiError as error:
        if error.status != 404:
            raise


async def apply_keys(memo: kopf.Memo, body: Obj) -> None:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    secret = memo.cluster.child(SECRET, namespace, render.ENDPOINT_OWNER, name)
    keys = Keys.from_secret(secret) or Keys.generate()
    desired = render.keys_secret(namespace, Owner(KIND, name, meta["uid"]), keys)
    live = [secret] if secret is not None else []
    await sync(memo.client, namespace, [desired], live, f"{KIND} {name}", meta["uid"])


# The pool.


@work.reconciler(POOL, work.shared)
async def reconcile_pool(memo: kopf.Memo, model: str) -> None:
    cluster: ClusterView = memo.cluster
    ns = memo.settings.serverless_namespace
    if model == NETWORK_KEY:
        await reconcile_network(memo)
        await reconcile_gateway(memo)
        return
    endpoints = cluster.serverless_by("model", model)
    users = render.pool_users(endpoints, lambda b: on_pool(memo, dict(b)))
    live = cluster.children_of(ns, POOL, model)
    desired: list[dict[str, Any]] = []
    if users and await namespace_exists(memo):
        offer = offer_of(memo, next(b for b in endpoints if render.uses_pool(b) and on_pool(memo, b)))
        assert isinstance(offer, render.Offer)
        placed = pool_type(cluster, offer)
        assert not isinstance(placed, render.Refusal)
        desired = render.render_pool(model, offer.model, placed[0], placed[1], memo.settings)
    await sync(memo.client, ns, desired, live, f"model pool {model}")
    # Brought to what the live endpoints need: the deleting ones are no longer counted and may go.
    for body in render.releasable(endpoints):
        await set_finalizers(memo, body, [f for f in render.finalizers(body) if f != render.FINALIZER])
    work.request(memo, POOL, NETWORK_KEY)


async def reconcile_network(memo: kopf.Memo) -> None:
    """The pool namespace's ingress policy: only routers reach pool pods; present while any pool is."""
    cluster: ClusterView = memo.cluster
    ns = memo.settings.serverless_namespace
    pools = [o for o in cluster.children_of_kind(ns, POOL) if o["kind"] == "Deployment"]
    live = cluster.children_of(ns, render.POOL_NETWORK_KIND, "pools")
    desired = [render.pool_network_policy(memo.settings)] if pools else []
    await sync(memo.client, ns, desired, live, "the serverless namespace")


async def reconcile_gateway(memo: kopf.Memo) -> None:
    """The serverless gateway (render/gateway.py): present while any ServerlessEndpoint not being deleted is."""
    cluster: ClusterView = memo.cluster
    ns = memo.settings.serverless_namespace
    live = cluster.children_of(ns, gateway.KIND, gateway.OWNER) + cluster.children_of(None, gateway.KIND, gateway.OWNER)
    wanted = any(not b["metadata"].get("deletionTimestamp") for b in cluster.serverless.all())
    found = await memo.client.get("v1", "Namespace", ns) if wanted else None
    if found is not None and found["metadata"].get("deletionTimestamp"):
        return  # the namespace is going, and the gateway with it
    desired = gateway.render(memo.settings, found["metadata"]["uid"]) if found is not None else []
    await sync(memo.client, ns, desired, live, "the serverless gateway")
