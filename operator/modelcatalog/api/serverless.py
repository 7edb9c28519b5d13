"""ServerlessEndpoint: a pay-per-token API on the shared model pool."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from modelcatalog.api.base import KubeModel, SafetyThreshold, Status, Toggle, cel
from modelcatalog.api.catalog import RateLimits


class ServerlessEndpointSpec(KubeModel):
    """A per-workspace endpoint for a model served from the shared, centrally run pool."""

    model: str = Field(
        min_length=1, description="Name of the CatalogModel; cannot change (create another endpoint instead).",
        json_schema_extra={"x-kubernetes-validations": [
            cel("self == oldSelf", "model is immutable: create a new ServerlessEndpoint for another model",
                reason="FieldValueForbidden"),
        ]},
    )  # fmt: skip
    accept_terms: bool = Field(
        default=False,
        description="Accept the publisher's terms and pricing (required for third-party models).",
    )
    content_safety: Toggle | None = Field(
        default=None,
        description="Screen prompts and completions. Default: the platform's (MODELCATALOG_CONTENT_SAFETY_SERVERLESS,"
        " Enabled unless the platform says otherwise).",
    )
    content_safety_threshold: SafetyThreshold | None = Field(
        default=None, description="The lowest severity blocked (Low, Medium, High). Default: Medium."
    )
    rate_limits: RateLimits | None = Field(default=None, description="Overrides the model's default limits.")


class Usage(KubeModel):
    requests: int = Field(default=0, description="Requests served.")
    input_tokens: int = Field(default=0, description="Prompt tokens metered.")
    output_tokens: int = Field(default=0, description="Completion tokens metered.")
    cost: str | None = Field(default=None, description="Cost at the catalog's prices.")


class ServerlessPhase(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"


class BackendKind(StrEnum):
    POOL = "Pool"
    UPSTREAM = "Upstream"


class Backend(KubeModel):
    """Where the endpoint's requests go: the workspace router reads `gateway`, the serverless gateway the rest
    (neither has rights to read the other's namespace)."""

    kind: BackendKind = Field(description="Pool (the shared model pool) or Upstream (the platform's provider API).")
    namespace: str | None = Field(default=None, description="Namespace of the pool.")
    service: str | None = Field(default=None, description="The pool's Service.")
    address: str | None = Field(default=None, description="The pool Service's ClusterIP:port (the gateway's target).")
    gateway: str | None = Field(
        default=None, description="The serverless gateway Service's ClusterIP:port (the workspace router's target)."
    )
    served_model: str | None = Field(default=None, description="The model name the backend serves.")
    url: str | None = Field(default=None, description="The upstream provider's base URL.")
    credential_secret: str | None = Field(default=None, description="Secret with the upstream credential.")


class PricingStatus(KubeModel):
    currency: str | None = Field(default=None, description="ISO 4217 currency code.")
    input_per_1m_tokens: str = Field(alias="inputPer1MTokens", description="Price per million input tokens.")
    output_per_1m_tokens: str = Field(alias="outputPer1MTokens", description="Price per million output tokens.")


class LimitsStatus(KubeModel):
    requests_per_minute: int = Field(description="Requests per minute in force.")
    tokens_per_minute: int = Field(description="Tokens per minute in force.")
    source: str = Field(description="Where the limits come from: endpoint, model or platform.")


class ServerlessEndpointStatus(Status):
    """The URL, the keys' Secret, the backend, prices and limits in force, and metered usage."""

    url: str | None = Field(default=None, description="In-cluster URL of the endpoint.")
    keys_secret: str | None = Field(default=None, description="Secret holding the endpoint's keys.")
    backend: Backend | None = Field(default=None, description="Where requests go.")
    pricing: PricingStatus | None = Field(default=None, description="Token prices per 1M tokens (or not set).")
    rate_limits: LimitsStatus | None = Field(default=None, description="The limits in force.")
    lifecycle_notice: str | None = Field(
        default=None,
        description="The offer's last lifecycle warning announced with an Event (stage/date/threshold, e.g."
        " Retired/2026-09-30/30d), so each threshold is announced once.",
    )
    usage: Usage | None = Field(default=None, description="Metered usage.")
