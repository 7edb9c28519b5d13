"""In-memory indexes of what the operator reads, kept current by watches.

kopf runs no handler until every index is fully populated, so a reconcile after a restart sees the
children that already exist and writes nothing when nothing changed. Reconciles read from here
instead of the API server.
"""

from __future__ import annotations

from typing import Any

import kopf

from modelcatalog import GROUP, VERSION
from modelcatalog.labels import COMPONENT, DEPLOYMENT, MANAGED_BY, MANAGER, MODEL_SERVER, OWNER_KIND, OWNER_NAME

MANAGED = {MANAGED_BY: MANAGER}
CHILD_RESOURCES = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "secrets"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)


def snapshot(body: kopf.Body) -> dict[str, Any]:
    """A plain copy of an object; of managedFields only what shows others' edits (not status updates)."""
    raw = dict(body)
    raw["metadata"] = {k: v for k, v in body.metadata.items() if k != "managedFields"}
    edits = [e for e in body.metadata.get("managedFields") or [] if not e.get("subresource")]
    if edits:
        raw["metadata"]["managedFields"] = edits
    return raw


async def owned_children(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Any:
    owner = (namespace, labels.get(OWNER_KIND), labels.get(OWNER_NAME))
    return {owner: snapshot(body)}


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.index(_group, _version, _plural, labels=MANAGED, id=f"children_{_plural}")(owned_children)


@kopf.index("", "v1", "pods", labels={COMPONENT: MODEL_SERVER})
async def model_server_pods(
    namespace: str | None, labels: kopf.Labels, name: str, status: kopf.Status, **_: Any
) -> Any:
    key = (namespace, labels.get(DEPLOYMENT))
    return {key: {"metadata": {"name": name}, "status": {"phase": status.get("phase"),
                                                        "conditions": status.get("conditions", [])}}}  # fmt: skip


@kopf.index("", "v1", "nodes")
async def nodes(labels: kopf.Labels, status: kopf.Status, **_: Any) -> Any:
    allocatable = status.get("allocatable", {})
    return {None: {"labels": dict(labels), "gpus": int(allocatable.get("nvidia.com/gpu", 0) or 0)}}


@kopf.index(GROUP, VERSION, "catalogmodels")
async def catalog_models(name: str, spec: kopf.Spec, body: kopf.Body, **_: Any) -> Any:
    return {name: {"spec": dict(spec), "labels": dict(body.metadata.labels)}}


@kopf.index(GROUP, VERSION, "instancetypes")
async def instance_types(name: str, spec: kopf.Spec, **_: Any) -> Any:
    return {name: dict(spec)}


@kopf.index(GROUP, VERSION, "modeldeployments")
async def model_deployments(namespace: str | None, name: str, spec: kopf.Spec, body: kopf.Body, **_: Any) -> Any:
    """By object, and by what it refers to: its endpoint, model and instance type (to fan out changes)."""
    endpoint = spec.get("endpointName") or name
    ref = (namespace, name)
    return {
        ("object", namespace, name): snapshot(body),
        ("endpoint", namespace, endpoint): ref,
        ("model", spec.get("model")): ref,
        ("instancetype", spec.get("instanceType")): ref,
        ("namespace", namespace): name,
    }


@kopf.index(GROUP, VERSION, "workspacenetworks")
async def workspace_networks(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    return {namespace: snapshot(body)}


@kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED)
async def workspace_policies(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    return {namespace: snapshot(body)}


def first(index: kopf.Index[Any, Any], key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def all_of(index: kopf.Index[Any, Any], key: Any) -> list[Any]:
    store = index.get(key)
    return list(store) if store is not None else []
