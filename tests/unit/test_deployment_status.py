"""A ModelDeployment's phase and conditions tell the user what is happening and what to do."""

from __future__ import annotations

from typing import Any

from modelcatalog.api.base import Condition, merge_conditions
from modelcatalog.controllers.work import same_status
from modelcatalog.render.deployment_status import Observed, Pool, Problem, summarize


def deployment(ready: int, replicas: int, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"status": {"replicas": replicas, "readyReplicas": ready, "conditions": conditions or []}}


def unschedulable(message: str) -> dict[str, Any]:
    return {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}  # fmt: skip


def conditions(conds: list[Condition]) -> dict[str, Condition]:
    return {c.type: c for c in conds}


def test_ready_when_every_replica_is_ready() -> None:
    phase, conds = summarize([], None, Observed(2, deployment(2, 2)))
    assert phase == "Ready"
    assert [c.type for c in conds] == [
        "ModelResolved",
        "InstanceTypeResolved",
        "CapacityAvailable",
        "Available",
        "Ready",
    ]
    assert all(c.is_true for c in conds)


def test_provisioning_while_the_model_loads_and_degraded_when_some_replicas_are_ready() -> None:
    assert summarize([], None, Observed(2, deployment(0, 2)))[0] == "Provisioning"
    phase, conds = summarize([], None, Observed(2, deployment(1, 2)))
    assert phase == "Degraded"
    assert conditions(conds)["Available"].status == "True"


def test_pending_with_no_node_pool_for_the_instance_type() -> None:
    observed = Observed(1, deployment(0, 1), [unschedulable("0/6 nodes are available")],
                        Pool("node.kubernetes.io/instance-type=Standard_ND96amsr_A100_v4", 0, 0), 8,
                        "standard-nd96amsr-a100-v4")  # fmt: skip
    phase, conds = summarize([], None, observed)
    capacity = conditions(conds)["CapacityAvailable"]
    assert phase == "Pending"
    assert (capacity.status, capacity.reason) == ("False", "NoNodePool")
    assert "no node matches InstanceType standard-nd96amsr-a100-v4's nodeSelector" in capacity.message
    assert conditions(conds)["Ready"].reason == "NoNodePool"


def test_pending_when_the_pool_has_fewer_gpus_per_node_than_a_replica_needs() -> None:
    observed = Observed(1, deployment(0, 1), [unschedulable("Insufficient nvidia.com/gpu")],
                        Pool("pool=a100", 2, 1), 2, "a100-x2")  # fmt: skip
    capacity = conditions(summarize([], None, observed)[1])["CapacityAvailable"]
    assert capacity.reason == "InsufficientGPU"
    assert "have at most 1 nvidia.com/gpu; InstanceType a100-x2 needs 2 per replica" in capacity.message


def test_pending_when_the_pool_is_busy_quotes_the_scheduler() -> None:
    observed = Observed(3, deployment(2, 3), [unschedulable("0/6 nodes are available: 2 Insufficient nvidia.com/gpu")],
                        Pool("pool=a100", 2, 1), 1, "a100")  # fmt: skip
    capacity = conditions(summarize([], None, observed)[1])["CapacityAvailable"]
    assert capacity.reason == "InsufficientCapacity"
    assert "1 replica(s) cannot be scheduled: all 2 node(s) of pool pool=a100 are busy" in capacity.message
    assert "2 Insufficient nvidia.com/gpu" in capacity.message


def test_quota_refusal_is_reported_from_the_deployment() -> None:
    refused = deployment(0, 0, [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                 "message": 'pods "x" is forbidden: exceeded quota: gpus, requested: '
                                            "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=1, limited: "
                                            "requests.nvidia.com/gpu=1"}])  # fmt: skip
    phase, conds = summarize([], None, Observed(1, refused))
    capacity = conditions(conds)["CapacityAvailable"]
    assert phase == "Pending"
    assert capacity.reason == "QuotaExceeded"
    assert "exceeded quota: gpus" in capacity.message


def test_a_problem_with_the_model_fails_the_deployment_with_its_reason() -> None:
    problem = Problem("ModelResolved", "UnknownModel", "CatalogModel nope does not exist")
    phase, conds = summarize([problem], None, Observed(1))
    by_type = conditions(conds)
    assert phase == "Failed"
    assert (by_type["ModelResolved"].status, by_type["ModelResolved"].reason) == ("False", "UnknownModel")
    assert by_type["Ready"].message == "CatalogModel nope does not exist"
    assert by_type["CapacityAvailable"].status == "Unknown"


def test_a_bad_traffic_split_keeps_the_deployment_from_being_ready() -> None:
    phase, conds = summarize([], "traffic of endpoint chat adds up to 110", Observed(1, deployment(1, 1)))
    assert phase == "Degraded"
    assert (conditions(conds)["Ready"].status, conditions(conds)["Ready"].reason) == ("False", "InvalidTrafficSplit")


def test_scaled_to_zero_is_ready() -> None:
    phase, conds = summarize([], None, Observed(0, deployment(0, 0)))
    assert phase == "Ready"
    assert conditions(conds)["Ready"].reason == "ScaledToZero"


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = merge_conditions([], [Condition.of("Ready", False, "Provisioning")], 1)
    first = [first[0].model_copy(update={"last_transition_time": "2026-01-01T00:00:00Z"})]
    held = merge_conditions(first, [Condition.of("Ready", False, "Provisioning", "still loading")], 2)
    assert held[0].last_transition_time == "2026-01-01T00:00:00Z"
    assert held[0].observed_generation == 2
    flipped = merge_conditions(first, [Condition.of("Ready", True, "Ready")], 2)
    assert flipped[0].last_transition_time != "2026-01-01T00:00:00Z"


def test_same_status_ignores_only_transition_times() -> None:
    a = {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t1"}]}
    b = {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t2"}]}
    assert same_status(a, b)
    assert not same_status(a, {**b, "phase": "Degraded"})
