"""The one placement rule (catalog/placement.py) and how a deployment resolves its catalog entries."""

from __future__ import annotations

from modelcatalog.catalog import placement
from modelcatalog.render.deployment_status import Placement, Problem, resolve
from tests.unit.builders import instance_type, model_spec


def refusal(*args: object) -> Problem:
    found = resolve(*args)  # type: ignore[arg-type]
    assert isinstance(found, Problem), found
    return found


def test_models_not_offered_on_managed_compute_or_retired_are_refused() -> None:
    types = {"a100": instance_type()}
    serverless_only = model_spec(weights=None, deploymentOptions={"serverless": {}})
    problem = refusal("cohere-command-r", serverless_only, "a100", types)
    assert problem.reason == "NotOfferedForManagedCompute"
    assert "ServerlessEndpoint" in problem.message
    retired = model_spec(lifecycle={"stage": "Retired", "retirementDate": "2025-01-01", "replacement": "llama-3"})
    problem = refusal("llama-2", retired, "a100", types)
    assert (problem.reason, problem.message) == (
        "ModelRetired", "CatalogModel llama-2 was retired on 2025-01-01; move to llama-3"
    )  # fmt: skip
    assert refusal("nope", None, "a100", types).reason == "UnknownModel"


def test_too_little_gpu_memory_names_the_need_and_the_types_that_fit() -> None:
    model = model_spec(deploymentOptions={"managedCompute": {"minGpuMemoryGiB": 160}})
    types = {"t4": instance_type(memory_gib=16), "a100-x2": instance_type(gpus=2), "h100-x8": instance_type(gpus=8)}
    problem = refusal("big", model, "t4", types)
    assert problem.reason == "InsufficientGPUMemory"
    assert problem.message == (
        "InstanceType t4 has 16 GiB of GPU memory; CatalogModel big needs at least 160 GiB;"
        " instance types that fit: a100-x2, h100-x8"
    )
    assert isinstance(resolve("big", model, "a100-x2", types), Placement)


def test_allowed_instance_types_and_gpu_requirements_are_enforced() -> None:
    model = model_spec(deploymentOptions={"managedCompute": {"allowedInstanceTypes": ["h100"]}})
    assert refusal("m", model, "a100", {"a100": instance_type()}).reason == "InstanceTypeNotAllowed"
    assert refusal("m", model_spec(), "cpu", {"cpu": instance_type(gpu=None)}).reason == "GPURequired"
    assert refusal("m", model_spec(), "gone", {}).reason == "UnknownInstanceType"


def test_without_a_catalog_minimum_the_need_is_estimated_from_the_weights() -> None:
    # 70B parameters in bfloat16: 140 GB of weights, x1.2 for the KV cache and activations = 157 GiB.
    model = model_spec(
        weights={"repository": "org/big", "revision": "abc", "parametersBillions": 70, "dtype": "bfloat16"},
        deploymentOptions={"managedCompute": {"runtime": "vllm"}},
    )
    assert placement.gpu_memory_needed_gib(model) == 157
    types = {"a100": instance_type(), "a100-x2": instance_type(gpus=2), "h100-x8": instance_type(gpus=8)}
    assert placement.fitting_types("big", model, types) == ["a100-x2", "h100-x8"]


def test_the_operator_and_the_cli_give_the_same_answer() -> None:
    from modelcatalog.catalog import files

    manifests = files.load_manifests(files.CATALOG_DIR)
    types = files.instance_types(manifests)
    for entry in files.models(manifests):
        if entry.spec.deployment_options.managed_compute is None:
            continue
        for name in types:
            resolved = resolve(entry.name, entry.spec, name, types)
            fits = name in placement.fitting_types(entry.name, entry.spec, types)
            if entry.spec.lifecycle.stage != "Retired":
                assert isinstance(resolved, Placement) == fits, (entry.name, name)


def test_a_platform_can_require_weights_pinned_to_a_commit() -> None:
    types = {"a100": instance_type()}
    branch = model_spec(weights={"repository": "org/model", "revision": "main"})
    problem = refusal("m", branch, "a100", types, True)
    assert (problem.condition, problem.reason) == ("ModelResolved", "RevisionNotPinned")
    assert "'main'" in problem.message and "org/model" in problem.message
    commit = model_spec(weights={"repository": "org/model", "revision": "0123456789abcdef0123456789abcdef01234567"})
    assert isinstance(resolve("m", commit, "a100", types, True), Placement)
    assert isinstance(resolve("m", branch, "a100", types), Placement)


def test_a_malformed_catalog_entry_is_a_reason_on_the_deployments_that_use_it_not_a_crash() -> None:
    from pydantic import ValidationError

    from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec

    try:
        CatalogModelSpec.model_validate({"displayName": "broken"})
    except ValidationError as error:
        bad_model = error
    try:
        InstanceTypeSpec.model_validate({"cpu": "lots"})
    except ValidationError as error:
        bad_type = error
    problem = refusal("broken", bad_model, "a100", {"a100": instance_type()})
    assert problem.reason == "InvalidModel" and "CatalogModel broken: spec." in problem.message
    problem = refusal("m", model_spec(), "odd", {"odd": bad_type, "a100": instance_type()})
    assert problem.reason == "InvalidInstanceType" and "fitting types: a100" in problem.message
