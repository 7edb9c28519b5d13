"""ModelDeployment handlers: thin triggers around one level-triggered reconcile per object."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION, GROUP, VERSION
from modelcatalog.api.base import describe
from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec, LifecycleStage
from modelcatalog.api.deployment import AuthMode, ModelDeploymentSpec
from modelcatalog.conditions import Cond
from modelcatalog.controllers import network, work
from modelcatalog.controllers.indexes import CHILD_RESOURCES, all_of, first
from modelcatalog.controllers.queue import WorkQueue
from modelcatalog.kube.client import ApiError, KubeClient, event_manifest
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import sync
from modelcatalog.labels import (
    COMPONENT,
    DEPLOYMENT,
    MANAGED_BY,
    MANAGER,
    MODEL_SERVER,
    OWNER_KIND,
    OWNER_NAME,
    ROTATE_KEY,
)
from modelcatalog.render import deployment as render
from modelcatalog.render.deployment_status import Observed, Pool, summarize
from modelcatalog.render.keys import SLOTS, Keys
from modelcatalog.render.objects import Owner

KIND = "ModelDeployment"
INFO = resource(API_VERSION, KIND)


def queue(memo: kopf.Memo) -> WorkQueue:
    async def reconcile_key(memo: kopf.Memo, key: tuple[str, str]) -> None:
        await reconcile(memo, *key)

    return work.queue(memo, KIND, reconcile_key)


def request_endpoint(memo: kopf.Memo, namespace: str | None, endpoint: str) -> None:
    for ref in all_of(memo.indexes["model_deployments"], ("endpoint", namespace, endpoint)):
        queue(memo).request(ref)


# Triggers: the object itself, its children, its pods, and the catalog entries it uses.


@kopf.on.event(GROUP, VERSION, "modeldeployments")
async def on_model_deployment(
    type: str | None, namespace: str | None, name: str, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any
) -> None:
    work.remember(memo, kwargs)
    queue(memo).request((namespace, name))
    request_endpoint(memo, namespace, spec.get("endpointName") or name)  # siblings re-check the traffic split
    if namespace and type != "MODIFIED":
        network.queue(memo).request(namespace)  # a new or gone endpoint: the workspace's status lists it


@kopf.timer(GROUP, VERSION, "modeldeployments", interval=300, initial_delay=300)
async def resync(namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    queue(memo).request((namespace, name))


async def on_child(namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    owner = labels.get(OWNER_NAME, "")
    if labels.get(OWNER_KIND) == KIND:
        queue(memo).request((namespace, owner))
    elif labels.get(OWNER_KIND) == "Endpoint":
        request_endpoint(memo, namespace, owner)


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.on.event(_group, _version, _plural, labels={MANAGED_BY: MANAGER}, id=f"md_child_{_plural}")(on_child)


@kopf.on.event("", "v1", "pods", labels={COMPONENT: MODEL_SERVER})
async def on_pod(namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    if labels.get(OWNER_KIND) == KIND:
        queue(memo).request((namespace, labels.get(DEPLOYMENT)))


@kopf.on.event(GROUP, VERSION, "catalogmodels")
async def on_catalog_model(name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    for ref in all_of(memo.indexes["model_deployments"], ("model", name)):
        queue(memo).request(ref)


@kopf.on.event(GROUP, VERSION, "instancetypes")
async def on_instance_type(name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    for ref in all_of(memo.indexes["model_deployments"], ("instancetype", name)):
        queue(memo).request(ref)


# The reconcile: read from the indexes, render, apply what differs, write status when it changes.


async def reconcile(memo: kopf.Memo, namespace: str, name: str) -> None:
    body = first(memo.indexes["model_deployments"], ("object", namespace, name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return  # gone or going: owner references let the garbage collector remove the children
    client: KubeClient = memo.client
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        await work.write_status(client, INFO, body, "Failed", [Cond("Ready", False, "InvalidSpec", describe(error))])
        return
    context = Context(memo, namespace, name, body, spec)
    problems = context.problems()
    traffic_problem = render.endpoint_weight_problem(context.endpoint, context.endpoint_weights())
    extra: dict[str, Any] = {"selector": render.selector_string(name), "endpoint": context.endpoint_status()}
    if not problems:
        inputs = context.inputs()
        live = context.live_children()
        try:
            await sync(client, namespace, render.render(inputs), live)
        except ApiError as error:
            # Say why in the status (the queue retries with backoff): a user sees it with kubectl.
            message = f"the API server refused a child object: {error}"
            await work.write_status(client, INFO, body, "Failed", [Cond("Ready", False, "ApplyFailed", message)])
            raise
        if context.rotation:
            await client.merge_patch(INFO, name, namespace, {"metadata": {"annotations": {ROTATE_KEY: None}}})
            await client.create(
                event_manifest(body, KIND, "KeyRotated", f"the {context.rotation} key was rotated", False)
            )
    observed = context.observed()
    deployment = observed.deployment or {}
    extra |= {
        "replicas": int((deployment.get("status") or {}).get("replicas") or 0),
        "readyReplicas": int((deployment.get("status") or {}).get("readyReplicas") or 0),
    }
    phase, conds = summarize(problems, traffic_problem, observed)
    await work.write_status(client, INFO, body, phase, conds, extra)


class Context:
    """What one reconcile knows: the object, its catalog entries and its children, from the indexes."""

    def __init__(self, memo: kopf.Memo, namespace: str, name: str, body: dict[str, Any], spec: ModelDeploymentSpec):
        self.memo = memo
        self.indexes = memo.indexes
        self.namespace = namespace
        self.name = name
        self.body = body
        self.spec = spec
        self.endpoint = render.endpoint_of(name, spec)
        self.owner = Owner(KIND, name, body["metadata"]["uid"])
        self.model: CatalogModelSpec | None = None
        self.instance_type: InstanceTypeSpec | None = None
        self.rotation: str | None = None

    def problems(self) -> list[render.Problem]:
        model_entry = first(self.indexes["catalog_models"], self.spec.model)
        if model_entry is None:
            return [render.Problem("ModelResolved", "UnknownModel",
                                   f"CatalogModel {self.spec.model} does not exist: see `kubectl get catalogmodels`"
                                   " or `modelcatalog models list --deployment-option managed`")]  # fmt: skip
        try:
            self.model = CatalogModelSpec.model_validate(model_entry["spec"])
        except ValidationError as error:
            return [
                render.Problem("ModelResolved", "InvalidModel", f"CatalogModel {self.spec.model}: {describe(error)}")
            ]
        problems = render.model_problems(self.spec.model, self.model)
        if problems:
            return problems
        type_spec = first(self.indexes["instance_types"], self.spec.instance_type)
        if type_spec is None:
            return [render.Problem("InstanceTypeResolved", "UnknownInstanceType",
                                   f"InstanceType {self.spec.instance_type} does not exist; fitting types: "
                                   f"{', '.join(self.fitting_types()) or 'none'}")]  # fmt: skip
        self.instance_type = InstanceTypeSpec.model_validate(type_spec)
        if render.fits(self.model, self.spec.instance_type, self.instance_type):
            return []
        return render.instance_type_problems(
            self.spec.model, self.model, self.spec.instance_type, self.instance_type, self.fitting_types()
        )

    def fitting_types(self) -> list[str]:
        if self.model is None or self.model.deployment_options.managed_compute is None:
            return []
        found = []
        for key in self.indexes["instance_types"]:
            spec = InstanceTypeSpec.model_validate(first(self.indexes["instance_types"], key))
            if render.fits(self.model, key, spec):
                found.append(key)
        return sorted(found)

    def siblings(self) -> list[dict[str, Any]]:
        refs = all_of(self.indexes["model_deployments"], ("endpoint", self.namespace, self.endpoint))
        bodies = [first(self.indexes["model_deployments"], ("object", *ref)) for ref in refs]
        return [b for b in bodies if b is not None and not b["metadata"].get("deletionTimestamp")]

    def endpoint_weights(self) -> dict[str, int]:
        return {b["metadata"]["name"]: int((b.get("spec") or {}).get("trafficPercent", 100)) for b in self.siblings()}

    def key_owners(self) -> tuple[Owner, ...]:
        return tuple(
            Owner(KIND, b["metadata"]["name"], b["metadata"]["uid"])
            for b in self.siblings()
            if (b.get("spec") or {}).get("authMode", AuthMode.KEY) == AuthMode.KEY
        )

    def keys_secret(self) -> dict[str, Any] | None:
        found: dict[str, Any] | None = first(
            self.indexes["children_secrets"], (self.namespace, "Endpoint", self.endpoint)
        )
        return found

    def keys(self) -> Keys | None:
        if self.spec.auth_mode != AuthMode.KEY:
            return None
        current = Keys.from_secret(self.keys_secret()) or Keys.generate()
        slot = (self.body["metadata"].get("annotations") or {}).get(ROTATE_KEY)
        if slot in SLOTS:
            self.rotation = slot
            return current.rotated(slot)
        return current

    def inputs(self) -> render.DeploymentInputs:
        assert self.model is not None and self.instance_type is not None
        return render.DeploymentInputs(
            namespace=self.namespace,
            owner=self.owner,
            spec=self.spec,
            model_name=self.spec.model,
            model=self.model,
            instance_type=self.instance_type,
            settings=self.memo.settings,
            keys=self.keys(),
            key_owners=self.key_owners(),
        )

    def live_children(self) -> list[dict[str, Any]]:
        live = []
        for _, _, plural in CHILD_RESOURCES:
            live += all_of(self.indexes[f"children_{plural}"], (self.namespace, KIND, self.name))
        secret = self.keys_secret()
        others_use_it = any(owner.name != self.name for owner in self.key_owners())
        if secret is not None and (self.spec.auth_mode == AuthMode.KEY or not others_use_it):
            live.append(secret)
        return live

    def observed(self) -> Observed:
        deployment = first(self.indexes["children_deployments"], (self.namespace, KIND, self.name))
        gpu = self.instance_type.gpu if self.instance_type else None
        return Observed(
            desired_replicas=self.desired_replicas(deployment),
            deployment=deployment,
            pods=all_of(self.indexes["model_server_pods"], (self.namespace, self.name)),
            pool=self.pool(),
            gpus_per_replica=gpu.count if gpu else 0,
            instance_type=self.spec.instance_type,
            model_note=self.model_note(),
        )

    def desired_replicas(self, deployment: dict[str, Any] | None) -> int:
        if self.spec.autoscale is not None and deployment is not None:
            return int((deployment.get("spec") or {}).get("replicas") or self.spec.autoscale.min_replicas)
        return self.spec.instance_count

    def pool(self) -> Pool | None:
        if self.instance_type is None:
            return None
        selector = self.instance_type.node_selector
        matching = [
            node
            for node in all_of(self.indexes["nodes"], None)
            if all(node["labels"].get(k) == v for k, v in selector.items())
        ]
        text = ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(any node)"
        return Pool(text, len(matching), max((n["gpus"] for n in matching), default=0))

    def model_note(self) -> str:
        if self.model is None or self.model.lifecycle.stage != LifecycleStage.DEPRECATED:
            return ""
        lifecycle = self.model.lifecycle
        instead = f"; move to {lifecycle.replacement}" if lifecycle.replacement else ""
        return f"CatalogModel {self.spec.model} is deprecated and retires on {lifecycle.retirement_date}{instead}"

    def endpoint_status(self) -> dict[str, Any]:
        status = {
            "name": self.endpoint,
            "url": f"http://{self.name}.{self.namespace}.svc.cluster.local/v1",
            "service": self.name,
        }
        if self.spec.auth_mode == AuthMode.KEY:
            status["keysSecret"] = render.keys_secret_name(self.endpoint)
        status["networkAccess"] = network.public_access(self.indexes, self.namespace)
        return status
