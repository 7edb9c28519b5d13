"""The one placement rule: can this model be served on that instance type, and which types would do.

Used by the ModelDeployment reconcile, the CLI's model card and (later) the admission webhook, so they
always give the same answer. GPU memory needed is the catalog's `minGpuMemoryGiB` where the catalog
sets it, else an estimate from the weights (parameters x bytes per parameter x SERVING_OVERHEAD, see
`api.catalog.min_gpu_memory_gib`); a GPU runtime needs an instance type with a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec, Runtime, min_gpu_memory_gib

GPU_RUNTIMES = frozenset({Runtime.VLLM})


@dataclass(frozen=True)
class Unfit:
    """Why an instance type cannot serve a model: a reason a program can act on, a message for a person."""

    reason: str
    message: str


def gpu_memory_needed_gib(model: CatalogModelSpec) -> int | None:
    """minGpuMemoryGiB as written, else estimated from the weights; None when neither says."""
    managed = model.deployment_options.managed_compute
    if managed is not None and managed.min_gpu_memory_gib is not None:
        return managed.min_gpu_memory_gib
    if model.weights is not None and model.weights.parameters_billions:
        return min_gpu_memory_gib(model.weights.parameters_billions, model.weights.dtype)
    return None


def unfit(model_name: str, model: CatalogModelSpec, type_name: str, instance_type: InstanceTypeSpec) -> Unfit | None:
    """What makes the instance type unfit for the model, or None when it fits."""
    managed = model.deployment_options.managed_compute
    if managed is None:
        return Unfit("NotOfferedForManagedCompute", f"CatalogModel {model_name} is not offered on managed compute")
    if managed.allowed_instance_types and type_name not in managed.allowed_instance_types:
        allowed = ", ".join(managed.allowed_instance_types)
        return Unfit("InstanceTypeNotAllowed", f"CatalogModel {model_name} supports only the instance types {allowed}")
    if managed.runtime in GPU_RUNTIMES and instance_type.gpu is None:
        return Unfit("GPURequired", f"InstanceType {type_name} has no GPU and {managed.runtime} needs one")
    needed = gpu_memory_needed_gib(model) or 0
    if instance_type.gpu is not None and instance_type.gpu_memory_gib < needed:
        return Unfit(
            "InsufficientGPUMemory",
            f"InstanceType {type_name} has {instance_type.gpu_memory_gib} GiB of GPU memory;"
            f" CatalogModel {model_name} needs at least {needed} GiB",
        )
    return None


def fitting_types(model_name: str, model: CatalogModelSpec, types: Mapping[str, InstanceTypeSpec]) -> list[str]:
    """The instance types that can serve the model, by name."""
    return sorted(name for name, spec in types.items() if unfit(model_name, model, name, spec) is None)
