"""GPU quota of a workspace (render/quota.py): the arithmetic, the webhook's refusal, the at-quota roll-out."""

from __future__ import annotations

from datetime import date
from typing import Any

from modelcatalog.api.deployment import ModelDeploymentSpec
from modelcatalog.render import deployment as render
from modelcatalog.render import quota
from modelcatalog.render.quota import GpuQuota, Need, Workspace
from modelcatalog.webhook.review import CREATE, UPDATE, Catalog, review_deployment
from tests.unit.builders import inputs, instance_type, model_spec

LLAMA = "meta-llama-3-8b-instruct"
TYPES = {"one": instance_type(gpus=1), "two": instance_type(gpus=2), "cpu": instance_type(gpu=None)}


def spec(**fields: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": LLAMA, "instanceType": "two"} | fields)


def body(name: str, **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team-a"}, "spec": {"model": LLAMA, "instanceType": "two"} | fields}


def rq(name: str, **hard: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team-a"}, "spec": {"hard": hard}}


def test_only_quotas_on_gpu_requests_count_and_their_limits_are_whole_gpus() -> None:
    found = quota.gpu_quotas([rq("pods", pods="10"), rq("gpus", **{"requests.nvidia.com/gpu": "4"}),
                              rq("bad", **{"requests.nvidia.com/gpu": "lots"}),
                              rq("a-half", **{"requests.nvidia.com/gpu": "2500m"})])  # fmt: skip
    assert found == (GpuQuota("a-half", 2), GpuQuota("gpus", 4))


def test_a_deployment_needs_replicas_times_gpus_per_replica_and_autoscale_counts_its_maximum() -> None:
    assert quota.need(spec(instanceCount=3), TYPES["two"]) == Need(3, 2)
    assert quota.need(spec(instanceCount=3), TYPES["two"]).gpus == 6
    assert quota.need(spec(instanceCount=1, autoscale={"minReplicas": 1, "maxReplicas": 4}), TYPES["two"]).gpus == 8
    assert quota.need(spec(instanceCount=2), TYPES["cpu"]).gpus == 0
    assert quota.need(spec(instanceCount=2), None).gpus == 0  # unknown type: the placement rule refuses it


def test_the_others_are_every_live_deployment_of_the_namespace_but_this_one() -> None:
    deleting = body("going", instanceCount=5)
    deleting["metadata"]["deletionTimestamp"] = "2026-06-01T00:00:00Z"
    bodies = [body("chat", instanceCount=2), body("embed", instanceType="one"), body("cpu", instanceType="cpu"),
              deleting, body("broken", instanceCount="x")]  # fmt: skip
    assert quota.needs(bodies, TYPES, but="chat") == {"embed": 1}
    assert quota.needs(bodies, TYPES, but="new") == {"chat": 4, "embed": 1}


def test_the_refusal_names_the_quota_the_numbers_and_the_field() -> None:
    workspace = Workspace((GpuQuota("gpu-quota", 8),), {"embed": 1, "chat": 3})
    assert quota.refusal("team-a", Need(2, 2), "two", workspace) is None  # 4 + 4 = 8: exactly at the quota
    where, message = quota.refusal("team-a", Need(3, 2), "two", workspace) or ("", "")
    assert where == "spec.instanceCount"
    assert message == (
        "ResourceQuota gpu-quota allows 8 requests.nvidia.com/gpu in namespace team-a; the other ModelDeployments"
        " need 4 (chat=3, embed=1), this one 6 (3 replicas x 2 GPU of InstanceType two), 4 left:"
        " use at most 2 replicas, an instance type with fewer GPUs, or a larger quota"
    )
    where, message = quota.refusal("team-a", Need(5, 1, autoscaled=True), "one", workspace) or ("", "")
    assert where == "spec.autoscale.maxReplicas" and "5 replicas (autoscale.maxReplicas)" in message


def test_every_quota_must_hold() -> None:
    workspace = Workspace((GpuQuota("big", 100), GpuQuota("small", 2)), {})
    assert quota.exceeded(3, workspace) == GpuQuota("small", 2)
    assert quota.exceeded(2, workspace) is None


def test_a_surge_replica_needs_room_for_one_more_replica() -> None:
    assert quota.surge_fits(Need(2, 2), Workspace())
    assert quota.surge_fits(Need(2, 2), Workspace((GpuQuota("q", 7),), {"other": 1}))
    assert not quota.surge_fits(Need(2, 2), Workspace((GpuQuota("q", 6),), {"other": 1}))
    assert quota.surge_fits(Need(2, 0), Workspace((GpuQuota("q", 0),)))  # CPU replicas never touch the quota


def test_at_the_quota_the_deployment_rolls_out_one_replica_down_instead_of_one_up() -> None:
    def strategy(**kwargs: Any) -> dict[str, Any]:
        rendered = next(o for o in render.render(inputs(**kwargs)) if o["kind"] == "Deployment")
        found: dict[str, Any] = rendered["spec"]["strategy"]
        return found

    assert strategy()["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert strategy(surge=False) == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


CATALOG = Catalog({LLAMA: model_spec()}.get, TYPES, date(2026, 6, 1))


def test_the_webhook_refuses_a_deployment_over_the_quota_and_admits_one_exactly_at_it() -> None:
    workspace = Workspace((GpuQuota("gpu-quota", 4),), {"other": 2})
    verdict = review_deployment(CREATE, body("chat", instanceCount=2), None, CATALOG, {}, workspace)
    assert not verdict.allowed and verdict.reason == "GPUQuotaExceeded"
    assert verdict.message.startswith("spec.instanceCount: ResourceQuota gpu-quota allows 4 requests.nvidia.com/gpu")
    assert review_deployment(CREATE, body("chat", instanceCount=1), None, CATALOG, {}, workspace).allowed
    assert review_deployment(CREATE, body("chat", instanceCount=2), None, CATALOG, {}).allowed  # no quota


def test_an_update_that_does_not_raise_the_gpus_passes_even_over_a_lowered_quota() -> None:
    workspace = Workspace((GpuQuota("gpu-quota", 1),), {})
    old = body("chat", instanceCount=2)
    assert review_deployment(UPDATE, body("chat", instanceCount=1), old, CATALOG, {}, workspace).allowed
    assert not review_deployment(UPDATE, body("chat", instanceCount=3), old, CATALOG, {}, workspace).allowed
    # a new instance type is checked in full: at the quota it passes, over it not
    at = Workspace((GpuQuota("gpu-quota", 4),), {})
    assert review_deployment(UPDATE, body("chat", instanceCount=4, instanceType="one"), old, CATALOG, {}, at).allowed
    over = body("chat", instanceCount=5, instanceType="one")
    assert not review_deployment(UPDATE, over, old, CATALOG, {}, at).allowed
