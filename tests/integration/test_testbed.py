"""The test bed behaves like a real cluster: GPU scheduling, quota admission, garbage collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from modelcatalog.localcluster import ClusterStartError, LocalCluster
from modelcatalog.localcluster.cluster import find_tools
from tests.integration.kube import Kube, wait_for

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_pod(name: str, gpus: int, instance_type: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{
            "name": "server", "image": "registry.invalid/model-server:test",
            "resources": {"requests": {"nvidia.com/gpu": str(gpus)}, "limits": {"nvidia.com/gpu": str(gpus)}},
        }],
        "tolerations": [GPU_TOLERATION],
    }  # fmt: skip
    if instance_type:
        spec["nodeSelector"] = {"node.kubernetes.io/instance-type": instance_type}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_one_gpu_deployment_runs_on_the_one_gpu_pool(kube: Kube, namespace: str) -> None:
    template = gpu_pod("unused", gpus=1, instance_type="Standard_NC24ads_A100_v4")
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "llm", "namespace": namespace},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "llm"}},
            "template": {"metadata": {"labels": {"app": "llm"}}, "spec": template["spec"]},
        },
    }  # fmt: skip
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(deployment))

    def running_pod() -> Any:
        pods = kube.core.list_namespaced_pod(namespace, label_selector="app=llm").items
        return next((p for p in pods if p.status.phase == "Running"), None)

    pod = wait_for(running_pod, 60, "the 1-GPU pod to run")
    node = kube.core.read_node(pod.spec.node_name)
    assert node.metadata.labels["modelcatalog.io/node-pool"] == "a100-1x"
    assert node.status.capacity["nvidia.com/gpu"] == "1"


def test_pod_asking_more_gpus_than_any_node_stays_pending(kube: Kube, namespace: str) -> None:
    kube.core.create_namespaced_pod(namespace, gpu_pod("too-big", gpus=16))

    def scheduling_failure() -> str:
        pod = kube.core.read_namespaced_pod("too-big", namespace)
        conditions = pod.status.conditions or []
        return next((c.message for c in conditions if c.type == "PodScheduled" and c.reason == "Unschedulable"), "")

    message = wait_for(scheduling_failure, 60, "the scheduler to report the pod unschedulable")
    assert "Insufficient nvidia.com/gpu" in message
    assert kube.core.read_namespaced_pod("too-big", namespace).status.phase == "Pending"
    events = wait_for(lambda: [e for e in kube.events(namespace, "too-big") if e["reason"] == "FailedScheduling"],
                      30, "a FailedScheduling event")  # fmt: skip
    assert "Insufficient nvidia.com/gpu" in events[0]["message"]


def test_gpu_quota_refuses_a_pod_over_it(kube: Kube, namespace: str) -> None:
    quota = {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "gpus"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "1"}},
    }  # fmt: skip
    kube.core.create_namespaced_resource_quota(namespace, quota)
    wait_for(lambda: (kube.core.read_namespaced_resource_quota("gpus", namespace).status.hard or {}),
             30, "the quota controller to compute the quota")  # fmt: skip
    kube.core.create_namespaced_pod(namespace, gpu_pod("first", gpus=1))
    try:
        kube.core.create_namespaced_pod(namespace, gpu_pod("second", gpus=1))
    except ApiException as error:
        assert error.status == 403
        assert "exceeded quota: gpus" in error.body
        assert "requests.nvidia.com/gpu" in error.body
    else:
        raise AssertionError("the second GPU pod was admitted over a quota of one GPU")


def test_deleting_an_owner_garbage_collects_its_dependents(kube: Kube, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    kube.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}}
    )
    kube.core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        names = [c.metadata.name for c in kube.core.list_namespaced_config_map(namespace).items]
        return "dependent" not in names

    wait_for(dependent_gone, 60, "the garbage collector to delete the dependent")


def test_a_component_that_does_not_start_is_named_with_its_log(tmp_path: Path) -> None:
    tools = find_tools()
    for binary in tools.iterdir():
        (tmp_path / binary.name).symlink_to(binary)
    (tmp_path / "kube-apiserver").unlink()
    (tmp_path / "kube-apiserver").write_text(
        '#!/bin/sh\ncase "$1" in --version) echo "Kubernetes v1.37.2"; exit 0;; esac\n'
        'echo "E1123 cannot bind to 127.0.0.1: address already in use" >&2\nexit 1\n'
    )
    (tmp_path / "kube-apiserver").chmod(0o755)
    cluster = LocalCluster("broken", tools=tmp_path, start_timeout=10)
    try:
        with pytest.raises(ClusterStartError) as failure:
            cluster.up()
    finally:
        cluster.down()
    report = str(failure.value)
    assert report.startswith("local cluster 'broken': starting kube-apiserver failed")
    assert report.index("--- kube-apiserver") < report.index("--- etcd"), "the culprit's log comes first"
    assert "cannot bind to 127.0.0.1: address already in use" in report
