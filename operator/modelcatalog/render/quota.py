"""GPU quota of a workspace: what ModelDeployments need against the namespace's ResourceQuotas (docs/policy.md).

A deployment needs `replicas x GPUs per replica`, where replicas is spec.instanceCount, or with autoscale the
larger of instanceCount and autoscale.maxReplicas: the autoscaler may go there on its own, and a replica the
quota refuses then would only show up as a ReplicaFailure long after the apply. Needs come from the specs
(not from the quota's `status.used`), so a deployment's own rollout or a pending replica never counts twice.
Pure functions; the webhook (refusal) and the reconcile (roll-out strategy) share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR
from typing import Any

from pydantic import ValidationError

from modelcatalog.api.catalog import InstanceTypeSpec
from modelcatalog.api.deployment import ModelDeploymentSpec
from modelcatalog.kube import quantity
from modelcatalog.render.deployment import GPU

GPU_QUOTA = f"requests.{GPU}"  # extended resources are quota'd by their requests only


@dataclass(frozen=True)
class GpuQuota:
    name: str
    hard: int


@dataclass(frozen=True)
class Need:
    replicas: int
    per_replica: int
    autoscaled: bool = False  # replicas is autoscale.maxReplicas

    @property
    def gpus(self) -> int:
        return self.replicas * self.per_replica


@dataclass(frozen=True)
class Workspace:
    """A namespace's GPU quotas and what its other ModelDeployments need (by name)."""

    quotas: tuple[GpuQuota, ...] = ()
    others: Mapping[str, int] = field(default_factory=dict)

    @property
    def others_total(self) -> int:
        return sum(self.others.values())


def gpu_quotas(quotas: Iterable[Mapping[str, Any]]) -> tuple[GpuQuota, ...]:
    """The ResourceQuotas with a hard limit on requests.nvidia.com/gpu, by name (a malformed limit is skipped)."""
    found = []
    for obj in quotas:
        hard = ((obj.get("spec") or {}).get("hard") or {}).get(GPU_QUOTA)
        if hard is None:
            continue
        try:
            value = int(quantity.parse(str(hard)).to_integral_value(rounding=ROUND_FLOOR))
        except ValueError:
            continue
        found.append(GpuQuota(obj["metadata"]["name"], value))
    return tuple(sorted(found, key=lambda q: q.name))


def replicas_counted(spec: ModelDeploymentSpec) -> tuple[int, bool]:
    """The replicas the quota must hold, and whether that is autoscale.maxReplicas."""
    if spec.autoscale is not None and spec.autoscale.max_replicas >= spec.instance_count:
        return spec.autoscale.max_replicas, True
    return spec.instance_count, False


def need(spec: ModelDeploymentSpec, instance_type: InstanceTypeSpec | ValidationError | None) -> Need:
    per_replica = instance_type.gpu.count if isinstance(instance_type, InstanceTypeSpec) and instance_type.gpu else 0
    replicas, autoscaled = replicas_counted(spec)
    return Need(replicas, per_replica, autoscaled)


def needs(
    deployments: Iterable[Mapping[str, Any]], types: Mapping[str, InstanceTypeSpec | ValidationError], but: str
) -> dict[str, int]:
    """GPUs each deployment needs (those that need some), all but the one named `but`; deleting ones excluded."""
    found = {}
    for body in deployments:
        meta = body["metadata"]
        if meta["name"] == but or meta.get("deletionTimestamp"):
            continue
        try:
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            continue
        gpus = need(spec, types.get(spec.instance_type)).gpus
        if gpus:
            found[meta["name"]] = gpus
    return found


def exceeded(gpus: int, workspace: Workspace) -> GpuQuota | None:
    """The first quota the namespace would go over with this deployment needing `gpus`."""
    return next((q for q in workspace.quotas if workspace.others_total + gpus > q.hard), None)


def surge_fits(wanted: Need, workspace: Workspace) -> bool:
    """Whether one extra replica (a rollout's surge) fits every quota next to what the namespace needs."""
    extra = workspace.others_total + wanted.gpus + wanted.per_replica
    return wanted.per_replica == 0 or all(extra <= q.hard for q in workspace.quotas)


def refusal(namespace: str, wanted: Need, type_name: str, workspace: Workspace) -> tuple[str, str] | None:
    """(field, message) when `wanted` goes over a quota: names the quota, the numbers and the fix."""
    quota = exceeded(wanted.gpus, workspace)
    if quota is None:
        return None
    room = max(quota.hard - workspace.others_total, 0)
    where = "spec.autoscale.maxReplicas" if wanted.autoscaled else "spec.instanceCount"
    replicas = f"{wanted.replicas} replicas" + (" (autoscale.maxReplicas)" if wanted.autoscaled else "")
    others = ", ".join(f"{name}={gpus}" for name, gpus in sorted(workspace.others.items()))
    message = (
        f"ResourceQuota {quota.name} allows {quota.hard} {GPU_QUOTA} in namespace {namespace};"
        f" the other ModelDeployments need {workspace.others_total}{f' ({others})' if others else ''},"
        f" this one {wanted.gpus} ({replicas} x {wanted.per_replica} GPU of InstanceType {type_name}), {room} left:"
        f" use at most {room // wanted.per_replica} replicas, an instance type with fewer GPUs, or a larger quota"
    )
    return where, message
