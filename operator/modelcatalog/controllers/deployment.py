"""ModelDeployment: resolve -> render -> apply -> observe -> status, once per requested object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION, clock
from modelcatalog.api.base import Condition, describe
from modelcatalog.api.catalog import CatalogModelSpec, LifecycleStage
from modelcatalog.api.deployment import (
    AuthMode,
    DeploymentPhase,
    EndpointStatus,
    KeyRotationStatus,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelLifecycle,
)
from modelcatalog.catalog import lifecycle
from modelcatalog.controllers import notices, work
from modelcatalog.controllers.cluster import (
    CHILDREN,
    DEPLOYMENTS,
    INSTANCE_TYPES,
    MODELS,
    PODS,
    QUOTAS,
    ClusterView,
    on_change,
)
from modelcatalog.kube.cache import Obj
from modelcatalog.kube.client import ApiError, event_manifest
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import ChildConflict, ChildRefused, sync
from modelcatalog.labels import DEPLOYMENT, OWNER_KIND, OWNER_NAME, ROTATE_KEY
from modelcatalog.render import deployment as render
from modelcatalog.render import quota
from modelcatalog.render.deployment_status import (
    Observed,
    Placement,
    Pool,
    deployment_status,
    deprecation_note,
    failed_status,
    resolve,
    stage_of,
)
from modelcatalog.render.keys import SLOTS, InvalidKeys, Keys, RotationRequest
from modelcatalog.render.network import KIND as NETWORK_KIND
from modelcatalog.render.objects import Owner
from modelcatalog.render.router import url as router_url

KIND = render.KIND
INFO = resource(API_VERSION, KIND)
ENDPOINT_OWNER = "Endpoint"  # the owner-kind label of an endpoint's keys Secret
SECRET = resource("v1", "Secret")
DEPLOYMENT_INFO = resource("apps/v1", "Deployment")


# Triggers: the object itself, its children, its pods, and the catalog entries it uses.


def request_endpoint(memo: kopf.Memo, namespace: str | None, endpoint: str) -> None:
    for body in memo.cluster.deployments_by("endpoint", namespace, endpoint):
        work.request(memo, KIND, (namespace, body["metadata"]["name"]))


def status_only(old: Obj | None, new: Obj | None) -> bool:
    """True when an update changed nothing but the status (and the version that comes with any write)."""
    return old is not None and new is not None and _sans_status(old) == _sans_status(new)


def _sans_status(body: Obj) -> Obj:
    meta = {k: v for k, v in body["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {k: v for k, v in body.items() if k != "status"} | {"metadata": meta}


@on_change(DEPLOYMENTS)
def on_deployment(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    for body in (old, new):
        if body is not None:
            namespace, name = body["metadata"].get("namespace"), body["metadata"]["name"]
            work.request(memo, KIND, (namespace, name))
            request_endpoint(memo, namespace, (body.get("spec") or {}).get("endpointName") or name)
    if _spec_of(old) != _spec_of(new):  # at a GPU quota, what the others need sets each one's roll-out strategy
        body = new or old
        assert body is not None
        namespace = body["metadata"].get("namespace")
        if memo.cluster.quotas.by("namespace", namespace):
            request_namespace(memo, namespace)
    if old is None or new is None:  # an endpoint appeared or went: the workspace's status lists them
        gone_or_new = new or old
        assert gone_or_new is not None
        work.request(memo, NETWORK_KIND, gone_or_new["metadata"].get("namespace"))


def _spec_of(body: Obj | None) -> object:
    return None if body is None or body["metadata"].get("deletionTimestamp") else body.get("spec")


def request_namespace(memo: kopf.Memo, namespace: str | None) -> None:
    for body in memo.cluster.deployments_by("namespace", namespace):
        work.request(memo, KIND, (namespace, body["metadata"]["name"]))


@on_change(QUOTAS)
def on_quota(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    found = new or old
    assert found is not None
    request_namespace(memo, found["metadata"].get("namespace"))


@on_change(CHILDREN)
def on_child(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    child = new or old
    assert child is not None
    labels = child["metadata"].get("labels") or {}
    namespace, owner = child["metadata"].get("namespace"), labels.get(OWNER_NAME, "")
    if child["kind"] != "Deployment" and status_only(old, new):
        return  # of the children, the reconcile reads only the Deployment's status (replicas ready)
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


@work.reconciler(KIND, work.namespaced)
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
    types = cluster.instance_types_by_name()
    model = cluster.catalog_model(spec.model)
    today = clock.today()
    placement = resolve(spec.model, model, spec.instance_type, types, memo.settings.require_pinned_revision,
                        today, retired_ok=True)  # fmt: skip
    retired = isinstance(placement, Placement) and stage_of(placement.model, today) == LifecycleStage.RETIRED
    served = spec.model_copy(update={"instance_count": 0, "autoscale": None}) if retired else spec
    rotation = None
    if isinstance(placement, Placement):
        try:
            rotation = await apply(memo, body, served, placement, siblings)
        except (ChildConflict, ChildRefused, InvalidKeys) as error:
            # Retrying the same object cannot help: the status says what to change, and an edit brings us back.
            await work.write_status(memo.client, INFO, body, failed_status(FAILURES[type(error)], str(error)))
            return
        except ApiError as error:
            message = f"the API server refused a child object: {error}"
            await work.write_status(memo.client, INFO, body, failed_status("ApplyFailed", message))
            raise  # the queue retries with backoff
    problem = None if isinstance(placement, Placement) else placement
    weights = {b["metadata"]["name"]: int((b.get("spec") or {}).get("trafficPercent", 100)) for b in siblings}
    status = deployment_status(
        problem,
        render.endpoint_weight_problem(endpoint, weights),
        observe(cluster, namespace, name, served, placement if isinstance(placement, Placement) else None, today),
        endpoint_status(cluster, namespace, name, spec),
        render.selector_string(name),
    )
    notice = None
    if isinstance(placement, Placement):
        status = with_lifecycle(status, spec.model, placement.model, today, retired)
        notice = lifecycle.option_notice(placement.model, lifecycle.MANAGED, today)
        replacement = placement.model.lifecycle.replacement
        status = notices.with_notice(status, f"CatalogModel {spec.model}", replacement, notice, today)
    await work.write_status(memo.client, INFO, body, status.model_copy(update={"key_rotation": rotation}))
    await notices.announce(memo, KIND, body, status, notice)


def with_lifecycle(
    status: ModelDeploymentStatus, model_name: str, model: CatalogModelSpec, today: date, retired: bool
) -> ModelDeploymentStatus:
    """The model's lifecycle for the router; once retired: phase Retired and why, on ModelResolved and Ready."""
    stage = stage_of(model, today)
    if stage not in (LifecycleStage.LEGACY, LifecycleStage.DEPRECATED, LifecycleStage.RETIRED):
        return status
    written = model.lifecycle
    found = ModelLifecycle(stage=stage, deprecation_date=written.deprecation_date,
                           retirement_date=written.retirement_date, replacement=written.replacement)  # fmt: skip
    if not retired:
        return status.model_copy(update={"model_lifecycle": found})
    instead = f"; move to {written.replacement}" if written.replacement else ""
    message = f"CatalogModel {model_name} was retired on {written.retirement_date}{instead}: scaled to zero"
    conditions = [
        Condition.of(c.type, False, "ModelRetired", message) if c.type in ("ModelResolved", "Ready") else c
        for c in status.conditions
    ]
    return status.model_copy(
        update={"model_lifecycle": found, "phase": DeploymentPhase.RETIRED, "conditions": conditions}
    )


FAILURES: dict[type[Exception], str] = {
    ChildConflict: "ChildConflict",
    ChildRefused: "ApplyFailed",
    InvalidKeys: "InvalidKeys",
}


async def apply(
    memo: kopf.Memo, body: Obj, spec: ModelDeploymentSpec, placement: Placement, siblings: list[Obj]
) -> KeyRotationStatus | None:
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
    plan = plan_keys(spec, secret, (meta.get("annotations") or {}).get(ROTATE_KEY))
    surge = quota.surge_fits(quota.need(spec, placement.instance_type), cluster.gpu_workspace(namespace, name))
    inputs = render.DeploymentInputs(
        namespace=namespace,
        owner=Owner(KIND, name, meta["uid"]),
        spec=spec,
        model_name=spec.model,
        model=placement.model,
        instance_type=placement.instance_type,
        settings=memo.settings,
        keys=plan.keys,
        key_owners=key_owners,
        key_rotations=plan.rotations,
        surge=surge,
    )
    live = cluster.children_of(namespace, KIND, name)
    others_use_secret = any(owner.name != name for owner in key_owners)
    if secret is not None and (spec.auth_mode == AuthMode.KEY or not others_use_secret):
        live.append(secret)
    await sync(memo.client, namespace, render.render(inputs), live, f"{KIND} {name}", meta["uid"])
    if plan.rotated is not None:
        message = f"the {plan.rotated.slot} key was rotated (request {plan.rotated.text})"
        await memo.client.create(event_manifest(body, KIND, "KeyRotated", message, False))
    return plan.status


@dataclass(frozen=True)
class KeyPlan:
    keys: Keys | None
    rotations: tuple[tuple[str, str], ...] = ()  # (slot, id) handled, recorded on the keys Secret
    rotated: RotationRequest | None = None  # rotated by this reconcile
    status: KeyRotationStatus | None = None


def plan_keys(spec: ModelDeploymentSpec, secret: Obj | None, request: str | None) -> KeyPlan:
    """The endpoint's keys: the Secret's, new ones, or the Secret's with one slot rotated once per request id."""
    if spec.auth_mode != AuthMode.KEY:
        return KeyPlan(None)
    keys = Keys.from_secret(secret) or Keys.generate()
    annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
    handled = {slot: annotations[key] for slot in SLOTS if (key := render.rotation_annotation(slot)) in annotations}
    if request is None:
        return KeyPlan(keys, tuple(sorted(handled.items())))
    try:
        wanted = RotationRequest.parse(request)
    except ValueError as error:
        return KeyPlan(
            keys, tuple(sorted(handled.items())), status=KeyRotationStatus(request=request, outcome=str(error))
        )
    done = KeyRotationStatus(request=request, outcome="Rotated")
    if handled.get(wanted.slot) == wanted.id:
        return KeyPlan(keys, tuple(sorted(handled.items())), status=done)
    handled[wanted.slot] = wanted.id
    return KeyPlan(keys.rotated(wanted.slot), tuple(sorted(handled.items())), wanted, done)


def observe(
    cluster: ClusterView,
    namespace: str,
    name: str,
    spec: ModelDeploymentSpec,
    placement: Placement | None,
    today: date | None = None,
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
        model_note=deprecation_note(spec.model, placement.model, today) if placement else "",
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

    endpoint = render.endpoint_of(name, spec)
    return EndpointStatus(
        name=endpoint,
        url=router_url(namespace, cluster.router_tls(namespace)),
        service=name,
        keys_secret=render.keys_secret_name(endpoint) if spec.auth_mode == AuthMode.KEY else None,
        network_access=cluster.public_access(namespace),
    )
