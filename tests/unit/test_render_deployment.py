"""What a ModelDeployment becomes: the model server, its Service, keys, disruption budget, autoscaler."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
import yaml

from modelcatalog.kube.quantity import parse
from modelcatalog.render import deployment as render
from modelcatalog.render.objects import Owner
from modelcatalog.settings import DEFAULT_TEI_IMAGES, SettingError, Settings
from tests.conftest import REPO
from tests.unit.builders import inputs, instance_type, model_spec


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_key_mode_renders_secret_deployment_service_and_budget_owned_by_the_deployment() -> None:
    objects = render.render(inputs())
    assert [o["kind"] for o in objects] == ["Secret", "Deployment", "Service", "PodDisruptionBudget"]
    for obj in objects:
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("ModelDeployment", "chat", "uid-1")
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelcatalog"
        assert obj["metadata"]["namespace"] == "team-a"


def test_token_mode_has_no_keys_secret() -> None:
    objects = render.render(inputs({"authMode": "token"}, keys=None))
    assert "Secret" not in by_kind(objects)


def test_the_keys_secret_holds_both_keys_and_is_shared_by_the_endpoint() -> None:

    blue, green = Owner("ModelDeployment", "blue", "u-b"), Owner("ModelDeployment", "green", "u-g")
    secret = by_kind(render.render(inputs({"endpointName": "chat"}, key_owners=(green, blue))))["Secret"]
    assert secret["metadata"]["name"] == "chat-keys"
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "primary": "primary-key",
        "secondary": "secondary-key",
    }
    assert [o["name"] for o in secret["metadata"]["ownerReferences"]] == ["blue", "green"]
    assert not any(o["controller"] for o in secret["metadata"]["ownerReferences"])


def test_vllm_server_gets_model_revision_tensor_parallelism_and_context_length() -> None:
    args = container(render.render(inputs(instance_type=instance_type(gpus=8))))["args"]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--model"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert pairs["--revision"] == "abc123"
    assert pairs["--served-model-name"] == "meta-llama-3-8b-instruct"
    assert pairs["--tensor-parallel-size"] == "8"
    assert pairs["--max-model-len"] == "8192"
    assert pairs["--max-num-seqs"] == "16"


def test_embeddings_models_run_the_embeddings_server() -> None:
    model = model_spec(
        tasks=["embeddings"], deploymentOptions={"managedCompute": {"runtime": "text-embeddings-inference"}}
    )
    server = container(render.render(inputs(model=model)))
    assert "text-embeddings-inference" in server["image"]
    assert server["args"][:2] == ["--model-id", "meta-llama/Meta-Llama-3-8B-Instruct"]


def test_gpu_cpu_memory_node_pool_and_tolerations_come_from_the_instance_type() -> None:
    deployment = by_kind(render.render(inputs(instance_type=instance_type(gpus=2))))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["limits"] == {"cpu": "22", "memory": "200Gi", "nvidia.com/gpu": "2", "ephemeral-storage": "210Gi"}
    assert resources["requests"] == resources["limits"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "Standard_NC24ads_A100_v4"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    pod = by_kind(render.render(inputs()))["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert all(set(v) <= {"name", "emptyDir"} for v in pod["volumes"]), "only emptyDir volumes"


def test_probes_give_a_slow_model_its_startup_time() -> None:
    server = container(render.render(inputs({"probes": {"startupTimeoutSeconds": 3600}})))
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 3600
    assert server["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}


def test_rolling_updates_keep_serving() -> None:
    strategy = by_kind(render.render(inputs()))["Deployment"]["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_fixed_count_sets_replicas_and_autoscale_leaves_them_to_the_autoscaler() -> None:
    fixed = by_kind(render.render(inputs({"instanceCount": 3})))
    assert fixed["Deployment"]["spec"]["replicas"] == 3
    assert "HorizontalPodAutoscaler" not in fixed
    scaled = by_kind(render.render(inputs({"instanceCount": 2, "autoscale": {"minReplicas": 1, "maxReplicas": 5}})))
    assert "replicas" not in scaled["Deployment"]["spec"]
    hpa = scaled["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 5)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat"}


def test_service_selects_only_this_deployments_pods() -> None:
    objects = by_kind(render.render(inputs()))
    selector = objects["Service"]["spec"]["selector"]
    assert selector == objects["Deployment"]["spec"]["selector"]["matchLabels"]
    assert objects["Deployment"]["spec"]["template"]["metadata"]["labels"].items() >= selector.items()


def test_rendering_is_deterministic() -> None:
    assert render.render(inputs()) == render.render(inputs())


def test_an_endpoints_traffic_must_add_up_to_0_or_100() -> None:
    assert render.endpoint_weight_problem("chat", {"blue": 90, "green": 10}) is None
    assert render.endpoint_weight_problem("chat", {"blue": 0, "green": 0}) is None
    assert render.endpoint_weight_problem("chat", {"blue": 100, "green": 10}) == (
        "traffic of endpoint chat adds up to 110, not 100 (blue=100, green=10): adjust trafficPercent"
    )


# --- issue 14 item 14: reproducible model servers ----------------------------------------------------------------

DIGEST = "docker.io/vllm/vllm-openai@sha256:" + "a" * 64
EMBEDDINGS = {
    "tasks": ["embeddings"],
    "deploymentOptions": {"managedCompute": {"runtime": "text-embeddings-inference"}},
}


def test_an_image_pinned_by_digest_is_used_as_is_and_pulled_only_if_not_present() -> None:
    pinned = Settings(images={"vllm": DIGEST, "text-embeddings-inference": "unused"})
    server = container(render.render(inputs(settings=pinned)))
    assert (server["image"], server["imagePullPolicy"]) == (DIGEST, "IfNotPresent")
    # A tag may move: by default it is pulled every time, so all replicas run the tag's current image.
    tagged = container(render.render(inputs()))
    assert (tagged["image"], tagged["imagePullPolicy"]) == ("docker.io/vllm/vllm-openai:v0.11.0", "Always")
    relaxed = Settings(unpinned_image_pull_policy="IfNotPresent")
    assert container(render.render(inputs(settings=relaxed)))["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(
    ("gpu", "tag"),
    [("T4", "turing-1.8"), ("A10", "86-1.8"), ("A100", "1.8"), ("H100", "hopper-1.8"), (None, "cpu-1.8")],
)
def test_the_embeddings_image_is_the_build_for_the_gpu_architecture(gpu: str | None, tag: str) -> None:
    hardware = instance_type(gpu={"model": gpu, "count": 1, "memoryGiB": 16}) if gpu else instance_type(gpu=None)
    server = container(render.render(inputs(model=model_spec(**EMBEDDINGS), instance_type=hardware)))
    assert server["image"] == f"ghcr.io/huggingface/text-embeddings-inference:{tag}"


def test_every_gpu_model_of_the_catalogs_instance_types_has_an_embeddings_build() -> None:
    documents = yaml.safe_load_all((REPO / "catalog" / "instancetypes.yaml").read_text())
    models = {d["spec"]["gpu"]["model"] for d in documents if d and d["spec"].get("gpu")}
    assert models and models <= set(DEFAULT_TEI_IMAGES), models - set(DEFAULT_TEI_IMAGES)


def test_a_platform_names_its_own_embeddings_builds() -> None:
    settings = Settings.from_env({"MODELCATALOG_TEI_IMAGES": "A100=registry.example/tei@sha256:" + "b" * 64})
    assert settings.tei_images["A100"].startswith("registry.example/tei@sha256:")
    assert settings.tei_images["T4"].endswith(":turing-1.8")
    server = container(render.render(inputs(model=model_spec(**EMBEDDINGS), settings=settings)))
    assert server["image"] == settings.tei_images["A100"]
    assert server["imagePullPolicy"] == "IfNotPresent"


def test_both_runtimes_get_the_catalogs_revision() -> None:
    for model in [model_spec(), model_spec(**EMBEDDINGS)]:
        args = container(render.render(inputs(model=model)))["args"]
        assert args[args.index("--revision") + 1] == "abc123"


def test_shared_memory_fits_within_the_memory_limit() -> None:
    # Issue 14: a 16Gi memory-backed /dev/shm in a container limited to 12Gi.
    small = instance_type(gpu=None, cpu="3", memory="12Gi")
    pod = by_kind(render.render(inputs(model=model_spec(**EMBEDDINGS), instance_type=small)))["Deployment"]
    spec = pod["spec"]["template"]["spec"]
    shm = next(v for v in spec["volumes"] if v["name"] == "shm")["emptyDir"]
    resources = spec["containers"][0]["resources"]
    assert shm["medium"] == "Memory"
    assert parse(shm["sizeLimit"]) <= parse(resources["limits"]["memory"]) * Decimal("0.25")
    assert shm["sizeLimit"] == "3Gi"
    # ...and counted in the request: the request is the whole limit, shm included.
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    # A large instance type keeps the cap.
    big = by_kind(render.render(inputs()))["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert next(v for v in big if v["name"] == "shm")["emptyDir"]["sizeLimit"] == "16Gi"


def test_gated_weights_get_the_token_from_a_secret_never_in_args() -> None:
    objects = render.render(inputs({"hfTokenSecret": {"name": "hf-token", "key": "read"}}))
    server = container(objects)
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "read"}}} in server["env"]
    assert "hf-token" not in json.dumps(server["args"])
    assert "HF_TOKEN" not in json.dumps(container(render.render(inputs()))["env"])


# --- issue 14 item 15: children a platform team would accept ------------------------------------------------------


def test_ephemeral_storage_is_requested_and_limited_for_the_cache_and_scratch() -> None:
    settings = Settings(model_cache_size="100Gi", scratch_size="512Mi")
    pod = by_kind(render.render(inputs(settings=settings)))["Deployment"]["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["requests"]["ephemeral-storage"] == resources["limits"]["ephemeral-storage"] == "102912Mi"
    sizes = {v["name"]: v["emptyDir"].get("sizeLimit") for v in pod["volumes"]}
    assert (sizes["model-cache"], sizes["tmp"]) == ("100Gi", "512Mi")


def test_startup_readiness_and_liveness_are_distinct_probes() -> None:
    server = container(render.render(inputs()))
    startup, readiness, liveness = server["startupProbe"], server["readinessProbe"], server["livenessProbe"]
    assert startup != readiness != liveness != startup
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800, "startup covers model loading"
    assert readiness["httpGet"] == {"path": "/health", "port": "http"}
    # A replica busy with long generations answers TCP: liveness does not restart it for a slow /health.
    assert liveness["tcpSocket"] == {"port": "http"}
    http = container(render.render(inputs(settings=Settings(liveness_probe="http"))))["livenessProbe"]
    assert http["httpGet"] == {"path": "/health", "port": "http"}


def test_model_servers_run_as_a_high_unnamed_uid_and_gid() -> None:
    context = by_kind(render.render(inputs()))["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (65532, 65532, 65532)
    custom = Settings(run_as_user=70000, run_as_group=70001)
    context = by_kind(render.render(inputs(settings=custom)))["Deployment"]["spec"]["template"]["spec"][
        "securityContext"
    ]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (70000, 70001, 70001)


@pytest.mark.parametrize(
    ("spec", "spread"),
    [({"instanceCount": 1}, False), ({"instanceCount": 3}, True),
     ({"instanceCount": 1, "autoscale": {"minReplicas": 1, "maxReplicas": 4}}, True)],
)  # fmt: skip
def test_replicas_spread_across_nodes_when_there_can_be_more_than_one(spec: dict[str, Any], spread: bool) -> None:
    pod = by_kind(render.render(inputs(spec)))["Deployment"]["spec"]["template"]["spec"]
    if not spread:
        assert "topologySpreadConstraints" not in pod
        return
    assert pod["topologySpreadConstraints"] == [{
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": render.pod_selector("chat")},
        "matchLabelKeys": ["pod-template-hash"],
    }]  # fmt: skip


def test_a_platform_can_make_the_spread_strict_or_turn_it_off() -> None:
    strict = Settings(topology_spread="DoNotSchedule", topology_keys=("topology.kubernetes.io/zone",))
    [rule] = by_kind(render.render(inputs({"instanceCount": 2}, settings=strict)))["Deployment"]["spec"]["template"][
        "spec"
    ]["topologySpreadConstraints"]
    assert (rule["topologyKey"], rule["whenUnsatisfiable"]) == ("topology.kubernetes.io/zone", "DoNotSchedule")
    off = by_kind(render.render(inputs({"instanceCount": 2}, settings=Settings(topology_spread="Off"))))
    assert "topologySpreadConstraints" not in off["Deployment"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("count", [0, 1, 2, 5])
def test_the_disruption_budget_never_blocks_draining_a_single_replica(count: int) -> None:
    # Regression: minAvailable 1 (or maxUnavailable 0) with one replica would hold a node drain forever.
    budget = by_kind(render.render(inputs({"instanceCount": count})))["PodDisruptionBudget"]["spec"]
    assert "minAvailable" not in budget
    assert budget["maxUnavailable"] == 1


def test_deployment_settings_are_read_from_the_environment_and_bad_values_named() -> None:
    settings = Settings.from_env({
        "MODELCATALOG_IMAGE_VLLM": DIGEST, "MODELCATALOG_SHM_FRACTION": "0.1", "MODELCATALOG_SHM_MAX": "8Gi",
        "MODELCATALOG_RUN_AS_USER": "10001", "MODELCATALOG_TOPOLOGY_SPREAD": "Off",
        "MODELCATALOG_LIVENESS_PROBE": "http", "MODELCATALOG_REQUIRE_PINNED_REVISION": "true",
        "MODELCATALOG_MODEL_CACHE_SIZE": "50Gi", "MODELCATALOG_SCRATCH_SIZE": "2Gi",
    })  # fmt: skip
    assert settings.images["vllm"] == DIGEST
    assert (settings.shm_fraction, settings.shm_max, settings.run_as_user) == (0.1, "8Gi", 10001)
    assert (settings.topology_spread, settings.liveness_probe, settings.require_pinned_revision) == (
        "Off",
        "http",
        True,
    )
    assert (settings.model_cache_size, settings.scratch_size) == ("50Gi", "2Gi")
    with pytest.raises(SettingError, match="MODELCATALOG_TOPOLOGY_SPREAD='Sometimes': expected one of"):
        Settings.from_env({"MODELCATALOG_TOPOLOGY_SPREAD": "Sometimes"})
    with pytest.raises(SettingError, match=r"MODELCATALOG_SHM_FRACTION='2': expected a number from 0 to 0\.9"):
        Settings.from_env({"MODELCATALOG_SHM_FRACTION": "2"})
