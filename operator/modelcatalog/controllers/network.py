"""WorkspaceNetwork: one policy set per namespace, re-rendered whenever the setting or its endpoints change."""

from __future__ import annotations

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION, GROUP
from modelcatalog.api.base import Condition, Toggle, describe
from modelcatalog.api.network import NetworkPhase, WorkspaceNetworkSpec, WorkspaceNetworkStatus
from modelcatalog.controllers import work
from modelcatalog.controllers.cluster import CHILDREN, NETWORKS, ClusterView, on_change
from modelcatalog.kube.cache import Obj
from modelcatalog.kube.client import ApiError
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import sync
from modelcatalog.labels import OWNER_KIND
from modelcatalog.render import network as render
from modelcatalog.render.deployment import KIND as DEPLOYMENT_KIND

KIND = render.KIND
INFO = resource(API_VERSION, KIND)
NAMESPACE_OWNER = "Namespace"  # the owner-kind label of policies of a workspace without a WorkspaceNetwork
NAMESPACE_INFO = resource("v1", "Namespace")
# The ValidatingAdmissionPolicies of policy/ select private workspaces by this label (docs/policy.md).
ACCESS_LABEL = f"{GROUP}/public-network-access"


@on_change(NETWORKS)
def on_network(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    network = new or old
    assert network is not None
    work.request(memo, KIND, network["metadata"].get("namespace"))


@on_change(CHILDREN)
def on_policy(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    child = new or old
    assert child is not None
    if (child["metadata"].get("labels") or {}).get(OWNER_KIND) in (KIND, NAMESPACE_OWNER):
        work.request(memo, KIND, child["metadata"].get("namespace"))  # a policy edited or deleted by hand


async def label_namespace(memo: kopf.Memo, namespace: str, access: str | None) -> None:
    """The workspace's public network access on its Namespace, where admission policies can read it."""
    if namespace in memo.access_modes and memo.access_modes[namespace] == access:
        return
    # The first look since the operator started reads the label: a restart writes nothing when nothing changed.
    if namespace in memo.access_modes or await namespace_label(memo, namespace) != access:
        patch = {"metadata": {"labels": {ACCESS_LABEL: str(access) if access is not None else None}}}
        try:
            await memo.client.merge_patch(NAMESPACE_INFO, namespace, None, patch)
        except ApiError as error:
            if error.status != 404:  # a namespace being deleted takes its label with it
                raise
    if access is None:
        memo.access_modes[namespace] = None


async def namespace_label(memo: kopf.Memo, namespace: str) -> str | None:
    found = await memo.client.get("v1", "Namespace", namespace)
    return ((found or {}).get("metadata", {}).get("labels") or {}).get(ACCESS_LABEL)


def failed(reason: str, message: str, phase: NetworkPhase = NetworkPhase.FAILED) -> WorkspaceNetworkStatus:
    return WorkspaceNetworkStatus(phase=phase, conditions=[Condition.of("Ready", False, reason, message)])


@work.reconciler(KIND, work.namespace)
async def reconcile(memo: kopf.Memo, namespace: str) -> None:
    cluster: ClusterView = memo.cluster
    networks = cluster.workspace_networks(namespace)
    endpoints = sorted(
        f"{DEPLOYMENT_KIND}/{b['metadata']['name']}" for b in cluster.deployments_by("namespace", namespace)
    )
    live = [p for owner in (KIND, NAMESPACE_OWNER) for p in cluster.children_of_kind(namespace, owner)]
    active = networks[0] if networks else None
    for other in networks[1:]:
        message = f"WorkspaceNetwork {networks[0]['metadata']['name']} is in force in this namespace;"
        message += " a namespace has one: delete this one or merge it into that one"
        await work.write_status(memo.client, INFO, other, failed("Conflict", message, NetworkPhase.CONFLICT))
    if active is None and not endpoints:
        await sync(memo.client, namespace, [], live)  # nothing left to protect
        await label_namespace(memo, namespace, None)
        return
    try:
        spec = WorkspaceNetworkSpec.model_validate(active.get("spec") or {}) if active else None
    except ValidationError as error:
        assert active is not None
        await work.write_status(memo.client, INFO, active, failed("InvalidSpec", describe(error)))
        return  # the policies in force stay as they are
    name = active["metadata"]["name"] if active else None
    desired = render.render_network_policies(namespace, spec, memo.network, name)
    try:
        await sync(memo.client, namespace, desired, live)
    except ApiError as error:
        if active is not None:
            message = f"the API server refused a policy: {error}"
            await work.write_status(memo.client, INFO, active, failed("ApplyFailed", message))
        raise
    access = spec.public_network_access if spec else WorkspaceNetworkSpec().public_network_access
    if memo.access_modes.get(namespace) != access:
        await label_namespace(memo, namespace, access)
        memo.access_modes[namespace] = access
        for body in cluster.deployments_by("namespace", namespace):
            work.request(memo, DEPLOYMENT_KIND, (namespace, body["metadata"]["name"]))  # they show the mode
    if active is not None:
        policies = [p["metadata"]["name"] for p in desired]
        exposing = await exposing_objects(memo, namespace) if access == Toggle.DISABLED else []
        status = WorkspaceNetworkStatus(
            phase=NetworkPhase.READY,
            conditions=[
                Condition.of("Ready", True, "Enforced", f"{len(policies)} policies cover {len(endpoints)} endpoint(s)"),
                render.fqdn_rules_condition(spec, memo.network),
                render.exposure_condition(spec, exposing),
            ],
            endpoints=endpoints,
            policies=policies,
            exposed_by=exposing,
        )
        await work.write_status(memo.client, INFO, active, status)


async def exposing_objects(memo: kopf.Memo, namespace: str) -> list[str]:
    """Read when the workspace is private (the flip, an edit, the 5-minute resync): not watched, as rare."""
    found = {}
    for api_version, kind in (("v1", "Service"), ("networking.k8s.io/v1", "Ingress")):
        listing = await memo.client.get_path(resource(api_version, kind).path(namespace))
        found[kind] = (listing or {}).get("items") or []
    return render.exposing_objects(found["Service"], found["Ingress"])
