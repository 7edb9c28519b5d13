"""ServerlessEndpoint: a pay-per-token API on the shared model pool."""

from __future__ import annotations

from pydantic import Field

from modelcatalog.api.base import KubeModel, Status, Toggle, cel
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
    content_safety: Toggle = Field(default=Toggle.ENABLED, description="Screen prompts and completions.")
    rate_limits: RateLimits | None = Field(default=None, description="Overrides the model's default limits.")


class Usage(KubeModel):
    requests: int = Field(default=0, description="Requests served.")
    input_tokens: int = Field(default=0, description="Prompt tokens metered.")
    output_tokens: int = Field(default=0, description="Completion tokens metered.")
    cost: str | None = Field(default=None, description="Cost at the catalog's prices.")


class ServerlessEndpointStatus(Status):
    """The URL, the keys' Secret, and metered usage."""

    url: str | None = Field(default=None, description="In-cluster URL of the endpoint.")
    keys_secret: str | None = Field(default=None, description="Secret holding the endpoint's keys.")
    usage: Usage | None = Field(default=None, description="Metered usage.")
