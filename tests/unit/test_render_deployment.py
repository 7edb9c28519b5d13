"""What a ModelDeployment becomes: the model server, its Service, keys, disruption budget, autoscaler."""

from __future__ import annotations

import base64
from typing import Any

from modelcatalog.render import deployment as render
from modelcatalog.render.objects import Owner
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
    assert resources["limits"] == {"cpu": "22", "memory": "200Gi", "nvidia.com/gpu": "2"}
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
