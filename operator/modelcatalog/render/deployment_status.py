"""ModelDeployment status from what the cluster reports: pods, scheduling, quota, the node pools."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelcatalog.conditions import Cond
from modelcatalog.render.deployment import GPU, Problem

CONDITION_TYPES = ("ModelResolved", "InstanceTypeResolved", "CapacityAvailable", "Available", "Ready")


@dataclass(frozen=True)
class Pool:
    """The nodes an instance type's nodeSelector matches."""

    selector: str
    nodes: int
    max_gpus: int


@dataclass(frozen=True)
class Observed:
    desired_replicas: int
    deployment: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    pool: Pool | None = None
    gpus_per_replica: int = 0
    instance_type: str = ""
    model_note: str = ""  # e.g. a deprecation warning, shown on ModelResolved


def summarize(problems: list[Problem], traffic_problem: str | None, observed: Observed) -> tuple[str, list[Cond]]:
    """The phase and the conditions, in CONDITION_TYPES order."""
    if problems:
        return "Failed", _failed(problems)
    capacity = capacity_condition(observed)
    ready_replicas = _ready_replicas(observed.deployment)
    desired = observed.desired_replicas
    available = Cond(
        "Available",
        ready_replicas >= min(desired, 1),
        "MinimumReplicasAvailable" if ready_replicas >= min(desired, 1) else "NoReplicaReady",
        f"{ready_replicas} of {desired} replicas ready",
    )
    if desired == 0 or ready_replicas >= desired:
        phase = "Ready"
    elif ready_replicas > 0:
        phase = "Degraded"
    elif capacity.status is False:
        phase = "Pending"
    else:
        phase = "Provisioning"
    if traffic_problem:
        phase = "Degraded" if phase == "Ready" else phase
        ready = Cond("Ready", False, "InvalidTrafficSplit", traffic_problem)
    elif phase == "Ready":
        ready = Cond("Ready", True, "ScaledToZero" if desired == 0 else "Ready", f"{ready_replicas} of {desired} ready")
    elif capacity.status is False:
        ready = Cond("Ready", False, capacity.reason, capacity.message)
    else:
        ready = Cond(
            "Ready", False, phase, f"{ready_replicas} of {desired} replicas ready; models take minutes to load"
        )
    resolved_model = Cond(
        "ModelResolved", True, "Deprecated" if observed.model_note else "Resolved", observed.model_note
    )
    resolved_type = Cond("InstanceTypeResolved", True, "Resolved", "")
    return phase, [resolved_model, resolved_type, capacity, available, ready]


def _failed(problems: list[Problem]) -> list[Cond]:
    by_type = {p.condition: p for p in problems}
    first = problems[0]
    conds = []
    for kind in ("ModelResolved", "InstanceTypeResolved"):
        problem = by_type.get(kind)
        conds.append(Cond(kind, False, problem.reason, problem.message) if problem else Cond(kind, True, "Resolved"))
    conds += [
        Cond("CapacityAvailable", None, "NotEvaluated", "the model or instance type could not be resolved"),
        Cond("Available", False, "NotDeployed", first.message),
        Cond("Ready", False, first.reason, first.message),
    ]
    return conds


def capacity_condition(observed: Observed) -> Cond:
    quota = _quota_refusal(observed.deployment)
    if quota:
        return Cond("CapacityAvailable", False, "QuotaExceeded", f"the namespace's quota refused a replica: {quota}")
    unschedulable = [message for pod in observed.pods if (message := _unschedulable_message(pod)) is not None]
    if not unschedulable:
        return Cond("CapacityAvailable", True, "Scheduled", "")
    count = f"{len(unschedulable)} replica(s) cannot be scheduled"
    pool = observed.pool
    if pool is not None and pool.nodes == 0:
        return Cond("CapacityAvailable", False, "NoNodePool",
                    f"{count}: no node matches InstanceType {observed.instance_type}'s nodeSelector ({pool.selector});"
                    " the cluster has no node pool for it")  # fmt: skip
    if pool is not None and pool.max_gpus < observed.gpus_per_replica:
        needs = f"InstanceType {observed.instance_type} needs {observed.gpus_per_replica} per replica"
        message = f"{count}: nodes of pool {pool.selector} have at most {pool.max_gpus} {GPU}; {needs}"
        return Cond("CapacityAvailable", False, "InsufficientGPU", message)
    nodes = f"all {pool.nodes} node(s) of pool {pool.selector} are busy" if pool else "no node fits"
    return Cond("CapacityAvailable", False, "InsufficientCapacity", f"{count}: {nodes}: {unschedulable[0]}")


def _ready_replicas(deployment: dict[str, Any] | None) -> int:
    return int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)


def _quota_refusal(deployment: dict[str, Any] | None) -> str | None:
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or []:
        message = cond.get("message") or ""
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True" and "exceeded quota" in message:
            return str(message)
    return None


def _unschedulable_message(pod: dict[str, Any]) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return str(cond.get("message") or "unschedulable")
    return None
