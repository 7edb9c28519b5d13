"""ModelDeployment -> model server Deployment, Service, keys Secret, PodDisruptionBudget, autoscaler."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from modelcatalog import GROUP, labels
from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec, Runtime
from modelcatalog.api.deployment import AuthMode, ModelDeploymentSpec
from modelcatalog.kube import quantity
from modelcatalog.kube.resources import resource
from modelcatalog.render.keys import Keys
from modelcatalog.render.objects import RESTRICTED_CONTAINER, Owner, metadata, restricted_pod
from modelcatalog.settings import Settings, is_pinned

KIND = "ModelDeployment"
OWNS = (
    resource("apps/v1", "Deployment"),
    resource("v1", "Service"),
    resource("v1", "Secret"),
    resource("policy/v1", "PodDisruptionBudget"),
    resource("autoscaling/v2", "HorizontalPodAutoscaler"),
)
GPU = "nvidia.com/gpu"
CACHE_DIR = "/models"
EPHEMERAL_STORAGE = "ephemeral-storage"
HF_TOKEN_ENV = "HF_TOKEN"  # noqa: S105 (a variable's name, not a token) read by vLLM and TEI (huggingface_hub) for gated repositories
# A pinned revision is a commit: a branch or tag may move, and replicas started a day apart would differ.


def endpoint_of(name: str, spec: ModelDeploymentSpec) -> str:
    return spec.endpoint_name or name


def keys_secret_name(endpoint: str) -> str:
    return f"{endpoint}-keys"


def rotation_annotation(slot: str) -> str:
    """The keys Secret remembers the last rotation id of each slot, written with the new key itself."""
    return f"{GROUP}/rotated-{slot}"


def pod_selector(name: str) -> dict[str, str]:
    return {labels.DEPLOYMENT: name, labels.COMPONENT: labels.MODEL_SERVER}


def selector_string(name: str) -> str:
    return ",".join(f"{k}={v}" for k, v in pod_selector(name).items())


@dataclass(frozen=True)
class DeploymentInputs:
    namespace: str
    owner: Owner
    spec: ModelDeploymentSpec
    model_name: str
    model: CatalogModelSpec
    instance_type: InstanceTypeSpec
    settings: Settings
    keys: Keys | None = None
    key_owners: tuple[Owner, ...] = ()
    key_rotations: tuple[tuple[str, str], ...] = ()  # (slot, id) of the rotations the keys already had
    surge: bool = True  # False: one more replica would not fit the namespace's GPU quota (render/quota.py)

    @property
    def name(self) -> str:
        return self.owner.name

    @property
    def endpoint(self) -> str:
        return endpoint_of(self.name, self.spec)

    @property
    def runtime(self) -> str:
        managed = self.model.deployment_options.managed_compute
        assert managed is not None
        return str(managed.runtime)

    @property
    def labels(self) -> dict[str, str]:
        return labels.managed(KIND, self.name) | {
            labels.ENDPOINT: self.endpoint,
            labels.MODEL: self.model_name,
        }

    def meta(self, name: str | None = None) -> dict[str, Any]:
        return metadata(name or self.name, self.namespace, self.labels, [self.owner.reference()])


def render(inputs: DeploymentInputs) -> list[dict[str, Any]]:
    """Every object the deployment needs, in the order they should be applied."""
    objects = []
    if inputs.spec.auth_mode == AuthMode.KEY and inputs.keys is not None:
        objects.append(keys_secret(inputs))
    objects += [deployment(inputs), service(inputs), disruption_budget(inputs)]
    if inputs.spec.autoscale is not None:
        objects.append(autoscaler(inputs))
    return objects


def keys_secret(inputs: DeploymentInputs) -> dict[str, Any]:
    """One Secret per endpoint, owned by every key-mode deployment of it (GC'd with the last one)."""
    assert inputs.keys is not None
    owners = inputs.key_owners or (inputs.owner,)
    encoded = {slot: base64.b64encode(value.encode()).decode() for slot, value in inputs.keys.string_data().items()}
    secret_labels = labels.managed("Endpoint", inputs.endpoint) | {labels.ENDPOINT: inputs.endpoint}
    owner_refs = [o.reference(controller=False) for o in sorted(owners, key=lambda o: o.name)]
    meta = metadata(keys_secret_name(inputs.endpoint), inputs.namespace, secret_labels, owner_refs)
    if inputs.key_rotations:
        meta["annotations"] = {rotation_annotation(slot): rotation_id for slot, rotation_id in inputs.key_rotations}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": encoded}


def deployment(inputs: DeploymentInputs) -> dict[str, Any]:
    spec = inputs.spec
    pod_labels = inputs.labels | pod_selector(inputs.name)
    body: dict[str, Any] = {
        "selector": {"matchLabels": pod_selector(inputs.name)},
        "strategy": strategy(inputs.surge),
        "progressDeadlineSeconds": spec.probes.startup_timeout_seconds + 300,
        "revisionHistoryLimit": 3,
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec(inputs)},
    }
    if spec.autoscale is None:
        body["replicas"] = spec.instance_count  # with autoscale the HPA alone owns the replica count
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": inputs.meta(), "spec": body}


def strategy(surge: bool) -> dict[str, Any]:
    """Surge one replica; at the GPU quota (no room for one more) a replica goes first, then its successor comes:
    a brief dip of one replica instead of a surge pod the quota refuses for ever."""
    rolling = {"maxSurge": 1, "maxUnavailable": 0} if surge else {"maxSurge": 0, "maxUnavailable": 1}
    return {"type": "RollingUpdate", "rollingUpdate": rolling}


def most_replicas(inputs: DeploymentInputs) -> int:
    autoscale = inputs.spec.autoscale
    return max(inputs.spec.instance_count, autoscale.max_replicas if autoscale else 0)


def pod_spec(inputs: DeploymentInputs) -> dict[str, Any]:
    instance_type = inputs.instance_type
    settings = inputs.settings
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod(settings.run_as_user, settings.run_as_group),
        "terminationGracePeriodSeconds": inputs.spec.request_settings.request_timeout_seconds + 15,
        "containers": [server_container(inputs)],
        "volumes": [
            {"name": "model-cache", "emptyDir": {"sizeLimit": settings.model_cache_size}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size(inputs)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": settings.scratch_size}},
        ],
    }
    if instance_type.node_selector:
        spec["nodeSelector"] = dict(instance_type.node_selector)
    if instance_type.tolerations:
        spec["tolerations"] = [t.to_wire() for t in instance_type.tolerations]
    if most_replicas(inputs) > 1 and settings.topology_spread != "Off":
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": settings.topology_spread,
                "labelSelector": {"matchLabels": pod_selector(inputs.name)},
                # Count only the pods of the current rollout, not those about to go.
                "matchLabelKeys": ["pod-template-hash"],
            }
            for key in settings.topology_keys
        ]
    return spec


def shm_size(inputs: DeploymentInputs) -> str:
    """Memory-backed /dev/shm counts against the container's memory limit: a share of it, capped."""
    limit = quantity.parse(inputs.instance_type.memory)
    share = limit * Decimal(str(inputs.settings.shm_fraction))
    return quantity.mebibytes(min(share, quantity.parse(inputs.settings.shm_max)))


def server_image(inputs: DeploymentInputs) -> str:
    """The runtime's image; TEI's build for the instance type's GPU architecture (or its CPU build)."""
    settings = inputs.settings
    if inputs.runtime == Runtime.TEXT_EMBEDDINGS_INFERENCE:
        gpu = inputs.instance_type.gpu
        image = settings.tei_images.get(gpu.model if gpu else "cpu")
        if image:
            return image
    return settings.images[inputs.runtime]


def server_container(inputs: DeploymentInputs) -> dict[str, Any]:
    port = inputs.settings.model_server_port
    image = server_image(inputs)
    env: list[dict[str, Any]] = [
        {"name": "HF_HOME", "value": f"{CACHE_DIR}/hf"},
        {"name": "HOME", "value": "/tmp"},
    ]
    token = inputs.spec.hf_token_secret
    if token is not None:
        env.append({"name": HF_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}}})
    return {
        "name": "model-server",
        "image": image,
        "imagePullPolicy": "IfNotPresent" if is_pinned(image) else inputs.settings.unpinned_image_pull_policy,
        "args": server_args(inputs),
        "env": env,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "resources": resources(inputs),
        "securityContext": dict(RESTRICTED_CONTAINER),
        "volumeMounts": [
            {"name": "model-cache", "mountPath": CACHE_DIR},
            {"name": "shm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        **probes(inputs),
        # Routers stop sending before the server stops: they see the pod terminating, then it drains.
        "lifecycle": {"preStop": {"sleep": {"seconds": inputs.settings.pre_stop_seconds}}},
    }


def server_args(inputs: DeploymentInputs) -> list[str]:
    weights = inputs.model.weights
    assert weights is not None
    concurrency = str(inputs.spec.request_settings.max_concurrent_requests_per_instance)
    port = str(inputs.settings.model_server_port)
    if inputs.runtime == Runtime.TEXT_EMBEDDINGS_INFERENCE:
        return ["--model-id", weights.repository, "--revision", weights.revision, "--port", port,
                "--max-concurrent-requests", concurrency, "--huggingface-hub-cache", f"{CACHE_DIR}/hf"]  # fmt: skip
    gpus = inputs.instance_type.gpu.count if inputs.instance_type.gpu else 1
    args = [
        "--model", weights.repository, "--revision", weights.revision,
        "--served-model-name", inputs.model_name,
        "--tensor-parallel-size", str(gpus),
        "--dtype", str(weights.dtype) if str(weights.dtype) in {"float16", "bfloat16", "float32"} else "auto",
        "--max-num-seqs", concurrency,
        "--download-dir", CACHE_DIR,
        "--port", port,
    ]  # fmt: skip
    if inputs.model.context_window:
        args += ["--max-model-len", str(inputs.model.context_window)]
    return args


def resources(inputs: DeploymentInputs) -> dict[str, Any]:
    """The instance type's share; /dev/shm lives inside the memory figure (shm_size is a part of it).

    Ephemeral storage: the model cache and the scratch space, both emptyDirs on the node's disk.
    """
    instance_type = inputs.instance_type
    storage = quantity.parse(inputs.settings.model_cache_size) + quantity.parse(inputs.settings.scratch_size)
    amounts = {"cpu": instance_type.cpu, "memory": instance_type.memory, EPHEMERAL_STORAGE: quantity.mebibytes(storage)}
    if instance_type.gpu is not None:
        amounts[GPU] = str(instance_type.gpu.count)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def probes(inputs: DeploymentInputs) -> dict[str, Any]:
    """Three probes, three jobs: startup waits out model loading; readiness takes a replica out of the
    Service while its model is unhealthy; liveness restarts only a server that stopped answering at all
    (by TCP by default, so a replica busy with long generations is not killed)."""
    settings = inputs.spec.probes
    health = {"httpGet": {"path": "/health", "port": "http"}}

    def timing(period: int, timeout: int, failures: int) -> dict[str, Any]:
        return {"periodSeconds": period, "timeoutSeconds": timeout, "failureThreshold": failures}

    startup_period = 10
    startup_failures = math.ceil(settings.startup_timeout_seconds / startup_period)
    liveness = {"tcpSocket": {"port": "http"}} if inputs.settings.liveness_probe == "tcp" else health
    return {
        "startupProbe": health | timing(startup_period, 5, startup_failures),
        "readinessProbe": health | timing(settings.readiness.period_seconds, settings.readiness.timeout_seconds,
                                          settings.readiness.failure_threshold) | {"successThreshold": 1},
        "livenessProbe": liveness | timing(settings.liveness.period_seconds, settings.liveness.timeout_seconds,
                                           settings.liveness.failure_threshold),
    }  # fmt: skip


def service(inputs: DeploymentInputs) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": inputs.meta(),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_selector(inputs.name),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(inputs: DeploymentInputs) -> dict[str, Any]:
    """maxUnavailable 1, never minAvailable: a single replica can always be drained (no node stays stuck)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": inputs.meta(),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": pod_selector(inputs.name)}},
    }


def autoscaler(inputs: DeploymentInputs) -> dict[str, Any]:
    autoscale = inputs.spec.autoscale
    assert autoscale is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": inputs.meta(),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": inputs.name},
            "minReplicas": autoscale.min_replicas,
            "maxReplicas": autoscale.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": autoscale.target_cpu_utilization_percent}},
            }],
        },
    }  # fmt: skip


def endpoint_weight_problem(endpoint: str, weights: dict[str, int]) -> str | None:
    """The endpoint's deployments must send 0 % (parked) or exactly 100 % of its traffic."""
    total = sum(weights.values())
    if total in (0, 100):
        return None
    shares = ", ".join(f"{name}={weight}" for name, weight in sorted(weights.items()))
    return f"traffic of endpoint {endpoint} adds up to {total}, not 100 ({shares}): adjust trafficPercent"
