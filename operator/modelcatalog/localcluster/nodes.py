"""Node manifests for the simulated node pools (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
POOL_LABEL = "modelcatalog.io/node-pool"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
NODEPOOLS_FILE = Path(__file__).with_name("nodepools.yaml")


def load_pools(path: Path = NODEPOOLS_FILE) -> list[dict[str, Any]]:
    pools: list[dict[str, Any]] = yaml.safe_load(path.read_text())["pools"]
    return pools


def node_manifests(pools: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [_node(pool, index) for pool in (pools or load_pools()) for index in range(pool["count"])]


def _node(pool: dict[str, Any], index: int) -> dict[str, Any]:
    name = f"{pool['name']}-{index}"
    labels = {
        POOL_LABEL: pool["name"],
        INSTANCE_TYPE_LABEL: pool["instanceType"],
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    # Real nodes report their disk; model servers request ephemeral storage for the weights cache.
    capacity = {
        "cpu": pool["cpu"], "memory": pool["memory"], "pods": "110",
        "ephemeral-storage": pool.get("ephemeralStorage", "1Ti"),
    }  # fmt: skip
    taints = []
    gpu = pool.get("gpu")
    if gpu:
        capacity[GPU_RESOURCE] = str(gpu["count"])
        labels |= {
            "nvidia.com/gpu.product": gpu["product"],
            "nvidia.com/gpu.memory": str(gpu["memoryMiB"]),
            "nvidia.com/gpu.count": str(gpu["count"]),
        }
        taints.append({"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": capacity},
    }
