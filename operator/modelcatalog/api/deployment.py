"""ModelDeployment: a catalog model on dedicated GPU replicas behind an authenticated endpoint."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from modelcatalog.api.base import DNS_LABEL, KubeModel, SafetyThreshold, Status, Toggle, cel, validations


class AuthMode(StrEnum):
    KEY = "key"
    TOKEN = "token"  # noqa: S105 (an auth mode, not a secret)


class DeploymentPhase(StrEnum):
    READY = "Ready"
    DEGRADED = "Degraded"
    PROVISIONING = "Provisioning"
    PENDING = "Pending"
    FAILED = "Failed"
    RETIRED = "Retired"  # the model retired: scaled to zero, kept so its settings and history stay


class Autoscale(KubeModel):
    """A HorizontalPodAutoscaler owns the replica count when this is set."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("self.minReplicas <= self.maxReplicas",
                "autoscale.minReplicas must be less than or equal to autoscale.maxReplicas",
                reason="FieldValueInvalid"),
        )
    }  # fmt: skip
    min_replicas: int = Field(default=1, ge=1, le=100, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=100, description="Most replicas.")
    target_cpu_utilization_percent: int = Field(
        default=70, ge=1, le=100, description="Average CPU utilisation the autoscaler aims for."
    )


class RequestSettings(KubeModel):
    request_timeout_seconds: int = Field(default=90, ge=1, le=3600, description="Timeout of one request.")
    max_concurrent_requests_per_instance: int = Field(
        default=16, ge=1, le=1024, description="Requests one replica serves at once; more wait in the router."
    )


class ProbeSettings(KubeModel):
    period_seconds: int = Field(default=10, ge=1, le=300, description="How often to probe.")
    timeout_seconds: int = Field(default=5, ge=1, le=300, description="When one probe fails.")
    failure_threshold: int = Field(default=3, ge=1, le=100, description="Failures before acting.")


class Probes(KubeModel):
    startup_timeout_seconds: int = Field(
        default=1800, ge=60, le=7200, description="How long a replica may take to load the model."
    )
    readiness: ProbeSettings = Field(default_factory=ProbeSettings, description="When a replica takes traffic.")
    liveness: ProbeSettings = Field(default_factory=ProbeSettings, description="When a replica is restarted.")


class SecretKeyRef(KubeModel):
    """A key of a Secret in the deployment's namespace."""

    name: str = Field(
        min_length=1, max_length=253, pattern="^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", description="Name of the Secret."
    )
    key: str = Field(
        default="token", min_length=1, max_length=253, pattern="^[-._a-zA-Z0-9]+$", description="Key in the Secret."
    )


class ModelDeploymentSpec(KubeModel):
    """Dedicated GPU replicas of a catalog model, behind an endpoint that can split traffic."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("!has(self.autoscale) || (self.instanceCount >= self.autoscale.minReplicas"
                " && self.instanceCount <= self.autoscale.maxReplicas)",
                "instanceCount must lie within autoscale.minReplicas and autoscale.maxReplicas",
                "instanceCount", "FieldValueInvalid"),
        )
    }  # fmt: skip
    model: str = Field(min_length=1, description="Name of the CatalogModel to deploy.")
    instance_type: str = Field(min_length=1, description="Name of the InstanceType each replica runs on.")
    endpoint_name: str | None = Field(
        default=None, max_length=47, pattern=DNS_LABEL,
        description="Endpoint this deployment serves; deployments sharing it split traffic. Default: own name.",
    )  # fmt: skip
    instance_count: int = Field(default=1, ge=0, le=100, description="Replicas (initial count with autoscale).")
    traffic_percent: int = Field(
        default=100, ge=0, le=100,
        description="Share of the endpoint's traffic; the endpoint's deployments must add up to 0 or 100.",
    )  # fmt: skip
    autoscale: Autoscale | None = Field(default=None, description="Autoscale bounds; absent means fixed count.")
    auth_mode: AuthMode = Field(
        default=AuthMode.KEY, description="key: API keys in a Secret; token: Kubernetes bearer tokens."
    )
    request_settings: RequestSettings = Field(default_factory=RequestSettings, description="Request limits.")
    probes: Probes = Field(default_factory=Probes, description="Health probes of the model server.")
    content_safety: Toggle = Field(default=Toggle.DISABLED, description="Screen prompts and completions.")
    content_safety_threshold: SafetyThreshold | None = Field(
        default=None,
        description="With contentSafety Enabled: the lowest severity blocked (Low, Medium, High). Default: Medium.",
    )
    hf_token_secret: SecretKeyRef | None = Field(
        default=None,
        description="Hugging Face token for gated weights: a Secret key in this namespace, given to the model server"
        " as the HF_TOKEN environment variable (never in its arguments or in status).",
    )


class EndpointStatus(KubeModel):
    name: str | None = Field(default=None, description="Endpoint name.")
    url: str | None = Field(default=None, description="In-cluster URL of the endpoint.")
    service: str | None = Field(default=None, description="Service in front of this deployment's replicas.")
    keys_secret: str | None = Field(default=None, description="Secret holding the keys (key mode).")
    network_access: str | None = Field(default=None, description="The workspace's public network access.")


class KeyRotationStatus(KubeModel):
    request: str = Field(description="The rotate-key annotation last acted on.")
    outcome: str = Field(description="Rotated, AlreadyRotated, or why the request was not understood.")


class ModelLifecycle(KubeModel):
    """The model's lifecycle as the router needs it: Deprecation and Sunset headers, 410 once retired."""

    stage: str = Field(description="Legacy, Deprecated or Retired (as of today on the operator's clock).")
    deprecation_date: str | None = Field(default=None, description="Deprecated since (YYYY-MM-DD).")
    retirement_date: str | None = Field(default=None, description="Stops serving on (YYYY-MM-DD).")
    replacement: str | None = Field(default=None, description="The CatalogModel to move to.")


class ModelDeploymentStatus(Status):
    """Replicas, the endpoint to call, and conditions from what the cluster reports."""

    phase: DeploymentPhase | None = Field(default=None, description="A one-word summary for `kubectl get`.")

    replicas: int | None = Field(default=None, description="Replicas that exist.")
    ready_replicas: int | None = Field(default=None, description="Replicas ready for traffic.")
    selector: str | None = Field(default=None, description="Label selector of the replicas (scale subresource).")
    endpoint: EndpointStatus | None = Field(default=None, description="Where to send requests.")
    model_lifecycle: ModelLifecycle | None = Field(
        default=None, description="Set once the model is legacy, deprecated or retired."
    )
    key_rotation: KeyRotationStatus | None = Field(
        default=None, description="The last key rotation request (annotation modelcatalog.io/rotate-key)."
    )
    lifecycle_notice: str | None = Field(
        default=None,
        description="The model's last lifecycle warning announced with an Event (stage/date/threshold, e.g."
        " Retired/2026-09-30/30d), so each threshold is announced once.",
    )
