"""WorkspaceNetwork handlers: one policy set per namespace, re-rendered whenever the setting changes."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION, GROUP, VERSION
from modelcatalog.api.base import describe
from modelcatalog.api.network import WorkspaceNetworkSpec
from modelcatalog.conditions import Cond
from modelcatalog.controllers import deployment, work
from modelcatalog.controllers.indexes import all_of
from modelcatalog.controllers.queue import WorkQueue
from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import sync
from modelcatalog.labels import MANAGED_BY, MANAGER
from modelcatalog.render.network import NetworkSettings, fqdn_rules_condition, render_network_policies

KIND = "WorkspaceNetwork"
INFO = resource(API_VERSION, KIND)
DEFAULT_ACCESS = "Enabled"


def queue(memo: kopf.Memo) -> WorkQueue:
    return work.queue(memo, KIND, reconcile)


def networks_in(indexes: dict[str, Any], namespace: str | None) -> list[dict[str, Any]]:
    """The namespace's WorkspaceNetworks, the one in force first (the oldest, then by name)."""
    found = [n for n in all_of(indexes["workspace_networks"], namespace) if not n["metadata"].get("deletionTimestamp")]
    return sorted(found, key=lambda n: (n["metadata"].get("creationTimestamp", ""), n["metadata"]["name"]))


def public_access(indexes: dict[str, Any], namespace: str | None) -> str:
    """The access mode every endpoint of the namespace follows (what endpoints show in their status)."""
    networks = networks_in(indexes, namespace)
    if not networks:
        return DEFAULT_ACCESS
    return str((networks[0].get("spec") or {}).get("publicNetworkAccess", DEFAULT_ACCESS))


@kopf.on.event(GROUP, VERSION, "workspacenetworks")
async def on_workspace_network(namespace: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    if namespace:
        queue(memo).request(namespace)


@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels={MANAGED_BY: MANAGER})
async def on_policy(namespace: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    if namespace:
        queue(memo).request(namespace)  # a policy edited or deleted by hand is restored


async def reconcile(memo: kopf.Memo, namespace: str) -> None:
    client: KubeClient = memo.client
    network: NetworkSettings = memo.network
    networks = networks_in(memo.indexes, namespace)
    endpoints = sorted(
        f"ModelDeployment/{n}" for n in all_of(memo.indexes["model_deployments"], ("namespace", namespace))
    )
    live = all_of(memo.indexes["workspace_policies"], namespace)
    active = networks[0] if networks else None
    for other in networks[1:]:
        message = f"WorkspaceNetwork {networks[0]['metadata']['name']} is in force in this namespace;"
        message += " a namespace has one: delete this one or merge it into that one"
        await work.write_status(client, INFO, other, "Conflict", [Cond("Ready", False, "Conflict", message)])
    if active is None and not endpoints:
        await sync(client, namespace, [], live)  # nothing left to protect
        return
    try:
        spec = WorkspaceNetworkSpec.model_validate(active.get("spec") or {}) if active else None
    except ValidationError as error:
        assert active is not None
        await work.write_status(client, INFO, active, "Failed", [Cond("Ready", False, "InvalidSpec", describe(error))])
        return  # the policies in force stay as they are
    name = active["metadata"]["name"] if active else None
    desired = render_network_policies(namespace, spec, network, name)
    try:
        await sync(client, namespace, desired, live)
    except ApiError as error:
        if active is not None:
            message = f"the API server refused a policy: {error}"
            await work.write_status(client, INFO, active, "Failed", [Cond("Ready", False, "ApplyFailed", message)])
        raise
    access = spec.public_network_access if spec else DEFAULT_ACCESS
    if memo.access_modes.get(namespace) != access:
        memo.access_modes[namespace] = access
        for ref in all_of(memo.indexes["model_deployments"], ("namespace", namespace)):
            deployment.queue(memo).request((namespace, ref))  # endpoints show the access mode they follow
    if active is not None:
        fqdn = fqdn_rules_condition(spec, network)
        policies = [p["metadata"]["name"] for p in desired]
        conds = [
            Cond("Ready", True, "Enforced", f"{len(policies)} policies cover {len(endpoints)} endpoint(s)"),
            Cond(fqdn.type, fqdn.status == "True", fqdn.reason, fqdn.message),
        ]
        await work.write_status(client, INFO, active, "Ready", conds, {"endpoints": endpoints, "policies": policies})
