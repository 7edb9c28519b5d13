"""ModelDeployment: resolve -> render -> apply -> observe -> status, once per requested object."""

from __future__ import annotations

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION
from modelcatalog.api.base import describe
from modelcatalog.api.deployment import AuthMode, EndpointStatus, ModelDeploymentSpec
from modelcatalog.controllers import work
from modelcatalog.controllers.cluster import (
    CHILDREN,
    DEPLOYMENTS,
    INSTANCE_TYPES,
    MODELS,
    PODS,
    ClusterView,
    on_change,
)
from modelcatalog.kube.cache import Obj
from modelcatalog.kube.client import ApiError, event_manifest
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import sync
from modelcatalog.labels import DEPLOYMENT, OWNER_KIND, OWNER_NAME, ROTATE_KEY
from modelcatalog.render import deployment as render
from modelcatalog.render.deployment_status import (
    Observed,
    Placement,
    Pool,
    deployment_status,
    deprecation_note,
    failed_status,
    resolve,
)
from modelcatalog.render.keys import SLOTS, Keys
from modelcatalog.render.network import KIND as NETWORK_KIND
from modelcatalog.render.objects import Owner

KIND = render.KIND
INFO = resource(API_VERSION, KIND)
ENDPOINT_OWNER = "Endpoint"  # the owner-kind label of an endpoint's keys Secret
SECRET = resource("v1", "Secret")
DEPLOYMENT_INFO = resource("apps/v1", "Deployment")


# Triggers: the object itself, its children, its pods, and the catalog entries it uses.


def request_endpoint(memo: kopf.Memo, namespace: str | None, endpoint: str) -> None:
    for body in memo.cluster.deployments_by("endpoint", namespace, endpoint):
        work.request(memo, KIND, (namespace, body["metadata"]["name"]))


@on_change(DEPLOYMENTS)
def on_deployment(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    for body in (old, new):
        if body is not None:
            namespace, name = body["metadata"].get("namespace"), body["metadata"]["name"]
            work.request(memo, KIND, (namespace, name))
            request_endpoint(memo, namespace, (body.get("spec") or {}).get("endpointName") or name)
    if old is None or new is None:  # an endpoint appeared or went: the workspace's status lists them
        gone_or_new = new or old
        assert gone_or_new is not None
        work.request(memo, NETWORK_KIND, gone_or_new["metadata"].get("namespace"))


@on_change(CHILDREN)
def on_child(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    child = new or old
    assert child is not None
    labels = child["metadata"].get("labels") or {}
    namespace, owner = child["metadata"].get("namespace"), labels.get(OWNER_NAME, "")
    if labels.get(OWNER_KIND) == KIND:
        work.request(memo, KIND, (namespace, owner))
    elif labels.get(OWNER_KIND) == ENDPOINT_OWNER:
        request_endpoint(memo, namespace, owner)


@on_change(PODS)
def on_pod(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    pod = new or old
    assert pod is not None
    owner = (pod["metadata"].get("labels") or {}).get(DEPLOYMENT)
    if owner:
        work.request(memo, KIND, (pod["metadata"].get("namespace"), owner))


@on_change(MODELS)
def on_catalog_model(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    entry = new or old
    assert entry is not None
    for body in memo.cluster.deployments_by("model", entry["metadata"]["name"]):
        work.request(memo, KIND, (body["metadata"].get("namespace"), body["metadata"]["name"]))


@on_change(INSTANCE_TYPES)
def on_instance_type(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    entry = new or old
    assert entry is not None
    for body in memo.cluster.deployments_by("instancetype", entry["metadata"]["name"]):
        work.request(memo, KIND, (body["metadata"].get("namespace"), body["metadata"]["name"]))


# The reconcile.


@work.reconciler(KIND)
async def reconcile(memo: kopf.Memo, key: tuple[str, str]) -> None:
    namespace, name = key
    cluster: ClusterView = memo.cluster
    body = cluster.deployments.get(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return  # gone or going: owner references let the garbage collector remove the children
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        await work.write_status(memo.client, INFO, body, failed_status("InvalidSpec", describe(error)))
        return
    endpoint = render.endpoint_of(name, spec)
    siblings = cluster.deployments_by("endpoint", namespace, endpoint)
    placement = resolve(
        spec.model, cluster.catalog_model(spec.model), spec.instance_type, cluster.instance_type_specs()
    )
    if isinstance(placement, Placement):
        try:
            await apply(memo, body, spec, placement, siblings)
        except ApiError as error:
            message = f"the API server refused a child object: {error}"
            await work.write_status(memo.client, INFO, body, failed_status("ApplyFailed", message))
            raise  # the queue retries with backoff
    problem = None if isinstance(placement, Placement) else placement
    weights = {b["metadata"]["name"]: int((b.get("spec") or {}).get("trafficPercent", 100)) for b in siblings}
    status = deployment_status(
        problem,
        render.endpoint_weight_problem(endpoint, weights),
        observe(cluster, namespace, name, spec, placement if isinstance(placement, Placement) else None),
        endpoint_status(cluster, namespace, name, spec),
        render.selector_string(name),
    )
    await work.write_status(memo.client, INFO, body, status)


async def apply(
    memo: kopf.Memo, body: Obj, spec: ModelDeploymentSpec, placement: Placement, siblings: list[Obj]
) -> None:
    """Render the children and bring the cluster to them; rotate a key when the object asks."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    cluster: ClusterView = memo.cluster
    endpoint = render.endpoint_of(name, spec)
    key_owners = tuple(
        Owner(KIND, b["metadata"]["name"], b["metadata"]["uid"])
        for b in siblings
        if (b.get("spec") or {}).get("authMode", AuthMode.KEY) == AuthMode.KEY
    )
    secret = cluster.child(SECRET, namespace, ENDPOINT_OWNER, endpoint)
    rotation = (meta.get("annotations") or {}).get(ROTATE_KEY)
    keys = endpoint_keys(spec, secret, rotation)
    inputs = render.DeploymentInputs(
        namespace=namespace,
        owner=Owner(KIND, name, meta["uid"]),
        spec=spec,
        model_name=spec.model,
        model=placement.model,
        instance_type=placement.instance_type,
        settings=memo.settings,
        keys=keys,
        key_owners=key_owners,
    )
    live = cluster.children_of(namespace, KIND, name)
    others_use_secret = any(owner.name != name for owner in key_owners)
    if secret is not None and (spec.auth_mode == AuthMode.KEY or not others_use_secret):
        live.append(secret)
    await sync(memo.client, namespace, render.render(inputs), live)
    if keys is not None and rotation in SLOTS:
        await memo.client.merge_patch(INFO, name, namespace, {"metadata": {"annotations": {ROTATE_KEY: None}}})
        await memo.client.create(event_manifest(body, KIND, "KeyRotated", f"the {rotation} key was rotated", False))


def endpoint_keys(spec: ModelDeploymentSpec, secret: Obj | None, rotation: str | None) -> Keys | None:
    if spec.auth_mode != AuthMode.KEY:
        return None
    current = Keys.from_secret(secret) or Keys.generate()
    return current.rotated(rotation) if rotation in SLOTS else current


def observe(
    cluster: ClusterView, namespace: str, name: str, spec: ModelDeploymentSpec, placement: Placement | None
) -> Observed:
    deployment = cluster.child(DEPLOYMENT_INFO, namespace, KIND, name)
    instance_type = placement.instance_type if placement else None
    return Observed(
        desired_replicas=desired_replicas(spec, deployment),
        deployment=deployment,
        pods=cluster.pods.by("deployment", (namespace, name)),
        pool=pool(cluster, instance_type.node_selector) if instance_type else None,
        gpus_per_replica=instance_type.gpu.count if instance_type and instance_type.gpu else 0,
        instance_type=spec.instance_type,
        model_note=deprecation_note(spec.model, placement.model) if placement else "",
    )


def desired_replicas(spec: ModelDeploymentSpec, deployment: Obj | None) -> int:
    if spec.autoscale is not None and deployment is not None:
        return int((deployment.get("spec") or {}).get("replicas") or spec.autoscale.min_replicas)
    return spec.instance_count


def pool(cluster: ClusterView, selector: dict[str, str]) -> Pool:
    matching = [
        node
        for node in cluster.nodes.all()
        if all((node["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
    ]
    text = ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(any node)"
    return Pool(text, len(matching), max((n["gpus"] for n in matching), default=0))


def endpoint_status(cluster: ClusterView, namespace: str, name: str, spec: ModelDeploymentSpec) -> EndpointStatus:
    """Callers reach the endpoint through the workspace router (the body's `model` names the endpoint)."""
    from modelcatalog.controllers.router import tls_enabled
    from modelcatalog.render.router import url

    endpoint = render.endpoint_of(name, spec)
    return EndpointStatus(
        name=endpoint,
        url=url(namespace, tls_enabled(cluster, namespace)),
        service=name,
        keys_secret=render.keys_secret_name(endpoint) if spec.auth_mode == AuthMode.KEY else None,
        network_access=cluster.public_access(namespace),
    )
