"""ModelDeployment status from what the cluster reports: pods, scheduling, quota, the node pools."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from modelcatalog.api.base import Condition, ConditionStatus, describe
from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec, LifecycleStage
from modelcatalog.api.deployment import DeploymentPhase, EndpointStatus, ModelDeploymentStatus
from modelcatalog.catalog import lifecycle as stages
from modelcatalog.catalog import placement
from modelcatalog.render.deployment import GPU

COMMIT = re.compile(r"[0-9a-f]{40}")
CONDITION_TYPES = ("ModelResolved", "InstanceTypeResolved", "CapacityAvailable", "Available", "Ready")


@dataclass(frozen=True)
class Problem:
    """Why a deployment cannot be placed: the condition it sets and a message saying what to do."""

    condition: str
    reason: str
    message: str


@dataclass(frozen=True)
class Placement:
    """The catalog entries a deployment resolved to."""

    model: CatalogModelSpec
    instance_type: InstanceTypeSpec


def resolve(
    model_name: str,
    model: CatalogModelSpec | ValidationError | None,
    type_name: str,
    types: Mapping[str, InstanceTypeSpec | ValidationError],
    require_pinned_revision: bool = False,
    today: date | None = None,
    retired_ok: bool = False,
) -> Placement | Problem:
    """The model and instance type a deployment names, or the first reason it cannot be placed.

    `today`: the stage is the one the lifecycle dates give that day (None: the stage as written).
    `retired_ok`: place a retired model all the same (the reconcile scales its deployments to zero)."""
    if model is None:
        return Problem("ModelResolved", "UnknownModel",
                       f"CatalogModel {model_name} does not exist: see `kubectl get catalogmodels`"
                       " or `modelcatalog models list --deployment-option managed`")  # fmt: skip
    if isinstance(model, ValidationError):
        return Problem("ModelResolved", "InvalidModel", f"CatalogModel {model_name}: {describe(model)}")
    if model.deployment_options.managed_compute is None:
        return Problem("ModelResolved", "NotOfferedForManagedCompute",
                       f"CatalogModel {model_name} is not offered on managed compute; "
                       "deploy it with a ServerlessEndpoint instead")  # fmt: skip
    lifecycle = model.lifecycle
    if stage_of(model, today) == LifecycleStage.RETIRED and not retired_ok:
        instead = f"; move to {lifecycle.replacement}" if lifecycle.replacement else ""
        return Problem("ModelResolved", "ModelRetired",
                       f"CatalogModel {model_name} was retired on {lifecycle.retirement_date}{instead}")  # fmt: skip
    weights = model.weights
    if require_pinned_revision and weights is not None and not COMMIT.fullmatch(weights.revision):
        return Problem("ModelResolved", "RevisionNotPinned",
                       f"CatalogModel {model_name} names weights.revision {weights.revision!r}, which may move;"
                       f" pin it to a commit (40 hex digits) of {weights.repository}")  # fmt: skip
    valid = {name: spec for name, spec in types.items() if isinstance(spec, InstanceTypeSpec)}
    fitting = ", ".join(placement.fitting_types(model_name, model, valid))
    instance_type = types.get(type_name)
    if isinstance(instance_type, ValidationError):
        message = f"InstanceType {type_name}: {describe(instance_type)}; fitting types: {fitting or 'none'}"
        return Problem("InstanceTypeResolved", "InvalidInstanceType", message)
    if instance_type is None:
        return Problem("InstanceTypeResolved", "UnknownInstanceType",
                       f"InstanceType {type_name} does not exist; fitting types: {fitting or 'none'}")  # fmt: skip
    unfit = placement.unfit(model_name, model, type_name, instance_type)
    if unfit is not None:
        named = fitting and unfit.reason != "InstanceTypeNotAllowed"
        return Problem("InstanceTypeResolved", unfit.reason,
                       unfit.message + (f"; instance types that fit: {fitting}" if named else ""))  # fmt: skip
    return Placement(model, instance_type)


def stage_of(model: CatalogModelSpec, today: date | None) -> LifecycleStage:
    """The managed-compute stage on `today` (catalog/lifecycle.py), or as written when no day is given."""
    if today is None:
        return LifecycleStage(model.lifecycle.stage)
    return stages.option_stage(model, stages.MANAGED, today) or LifecycleStage(model.lifecycle.stage)


def deprecation_note(model_name: str, model: CatalogModelSpec, today: date | None = None) -> str:
    lifecycle = model.lifecycle
    if stage_of(model, today) != LifecycleStage.DEPRECATED:
        return ""
    instead = f"; move to {lifecycle.replacement}" if lifecycle.replacement else ""
    retires = f" and retires on {lifecycle.retirement_date}" if lifecycle.retirement_date else ""
    return f"CatalogModel {model_name} is deprecated{retires}{instead}"


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


def deployment_status(
    problem: Problem | None, traffic_problem: str | None, observed: Observed, endpoint: EndpointStatus, selector: str
) -> ModelDeploymentStatus:
    """The whole status a user sees: phase, conditions, replicas, and where to call."""
    phase, conditions = summarize([problem] if problem else [], traffic_problem, observed)
    return ModelDeploymentStatus(
        phase=phase,
        conditions=conditions,
        replicas=int(((observed.deployment or {}).get("status") or {}).get("replicas") or 0),
        ready_replicas=_ready_replicas(observed.deployment),
        selector=selector,
        endpoint=endpoint,
    )


def failed_status(reason: str, message: str) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(
        phase=DeploymentPhase.FAILED, conditions=[Condition.of("Ready", False, reason, message)]
    )


def summarize(
    problems: list[Problem], traffic_problem: str | None, observed: Observed
) -> tuple[DeploymentPhase, list[Condition]]:
    """The phase and the conditions, in CONDITION_TYPES order."""
    if problems:
        return DeploymentPhase.FAILED, _failed(problems)
    capacity = capacity_condition(observed)
    ready_replicas = _ready_replicas(observed.deployment)
    desired = observed.desired_replicas
    available = Condition.of(
        "Available",
        ready_replicas >= min(desired, 1),
        "MinimumReplicasAvailable" if ready_replicas >= min(desired, 1) else "NoReplicaReady",
        f"{ready_replicas} of {desired} replicas ready",
    )
    if desired == 0 or ready_replicas >= desired:
        phase = DeploymentPhase.READY
    elif ready_replicas > 0:
        phase = DeploymentPhase.DEGRADED
    elif capacity.status == ConditionStatus.FALSE:
        phase = DeploymentPhase.PENDING
    else:
        phase = DeploymentPhase.PROVISIONING
    if traffic_problem:
        phase = DeploymentPhase.DEGRADED if phase == DeploymentPhase.READY else phase
        ready = Condition.of("Ready", False, "InvalidTrafficSplit", traffic_problem)
    elif phase == DeploymentPhase.READY:
        ready = Condition.of(
            "Ready", True, "ScaledToZero" if desired == 0 else "Ready", f"{ready_replicas} of {desired} ready"
        )
    elif capacity.status == ConditionStatus.FALSE:
        ready = Condition.of("Ready", False, capacity.reason, capacity.message)
    else:
        ready = Condition.of(
            "Ready", False, phase, f"{ready_replicas} of {desired} replicas ready; models take minutes to load"
        )
    resolved_model = Condition.of(
        "ModelResolved", True, "Deprecated" if observed.model_note else "Resolved", observed.model_note
    )
    resolved_type = Condition.of("InstanceTypeResolved", True, "Resolved", "")
    return phase, [resolved_model, resolved_type, capacity, available, ready]


def _failed(problems: list[Problem]) -> list[Condition]:
    by_type = {p.condition: p for p in problems}
    first = problems[0]
    conds = []
    for kind in ("ModelResolved", "InstanceTypeResolved"):
        problem = by_type.get(kind)
        conds.append(
            Condition.of(kind, False, problem.reason, problem.message)
            if problem
            else Condition.of(kind, True, "Resolved")
        )
    conds += [
        Condition.of("CapacityAvailable", None, "NotEvaluated", "the model or instance type could not be resolved"),
        Condition.of("Available", False, "NotDeployed", first.message),
        Condition.of("Ready", False, first.reason, first.message),
    ]
    return conds


def capacity_condition(observed: Observed) -> Condition:
    quota = _quota_refusal(observed.deployment)
    if quota:
        return Condition.of(
            "CapacityAvailable", False, "QuotaExceeded", f"the namespace's quota refused a replica: {quota}"
        )
    unschedulable = [message for pod in observed.pods if (message := _unschedulable_message(pod)) is not None]
    if not unschedulable:
        return Condition.of("CapacityAvailable", True, "Scheduled", "")
    count = f"{len(unschedulable)} replica(s) cannot be scheduled"
    pool = observed.pool
    if pool is not None and pool.nodes == 0:
        return Condition.of("CapacityAvailable", False, "NoNodePool",
                    f"{count}: no node matches InstanceType {observed.instance_type}'s nodeSelector ({pool.selector});"
                    " the cluster has no node pool for it")  # fmt: skip
    if pool is not None and pool.max_gpus < observed.gpus_per_replica:
        needs = f"InstanceType {observed.instance_type} needs {observed.gpus_per_replica} per replica"
        message = f"{count}: nodes of pool {pool.selector} have at most {pool.max_gpus} {GPU}; {needs}"
        return Condition.of("CapacityAvailable", False, "InsufficientGPU", message)
    nodes = f"all {pool.nodes} node(s) of pool {pool.selector} are busy" if pool else "no node fits"
    return Condition.of("CapacityAvailable", False, "InsufficientCapacity", f"{count}: {nodes}: {unschedulable[0]}")


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
