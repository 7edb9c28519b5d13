"""Small, valid API objects for unit tests."""

from __future__ import annotations

from typing import Any

from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec
from modelcatalog.api.deployment import ModelDeploymentSpec
from modelcatalog.render.deployment import DeploymentInputs
from modelcatalog.render.keys import Keys
from modelcatalog.render.objects import Owner
from modelcatalog.settings import Settings


def model_spec(**overrides: Any) -> CatalogModelSpec:
    raw: dict[str, Any] = {
        "displayName": "Meta-Llama-3-8B-Instruct",
        "publisher": "Meta",
        "collection": "curated",
        "tasks": ["chat-completion"],
        "license": "llama3",
        "weights": {"repository": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "abc123",
                    "parametersBillions": 8.03, "dtype": "bfloat16"},
        "contextWindow": 8192,
        "deploymentOptions": {"managedCompute": {"runtime": "vllm", "minGpuMemoryGiB": 18}},
    }  # fmt: skip
    raw.update(overrides)
    return CatalogModelSpec.model_validate(raw)


def instance_type(gpus: int = 1, memory_gib: int = 80, **overrides: Any) -> InstanceTypeSpec:
    raw: dict[str, Any] = {
        "gpu": {"model": "A100", "count": gpus, "memoryGiB": memory_gib},
        "cpu": "22",
        "memory": "200Gi",
        "nodeSelector": {"node.kubernetes.io/instance-type": "Standard_NC24ads_A100_v4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    raw.update(overrides)
    return InstanceTypeSpec.model_validate(raw)


def inputs(
    spec: dict[str, Any] | None = None, model: CatalogModelSpec | None = None, **kwargs: Any
) -> DeploymentInputs:
    md = ModelDeploymentSpec.model_validate(
        {"model": "meta-llama-3-8b-instruct", "instanceType": "standard-nc24ads-a100-v4"} | (spec or {})
    )
    defaults: dict[str, Any] = {
        "namespace": "team-a",
        "owner": Owner("ModelDeployment", "chat", "uid-1"),
        "spec": md,
        "model_name": "meta-llama-3-8b-instruct",
        "model": model or model_spec(),
        "instance_type": instance_type(),
        "settings": Settings(),
        "keys": Keys("primary-key", "secondary-key"),
    }
    return DeploymentInputs(**(defaults | kwargs))
