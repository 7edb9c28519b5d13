"""CatalogModel and InstanceType: the catalog itself and the GPU SKUs it deploys onto (cluster scoped)."""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import Field

from modelcatalog.api.base import DECIMAL, QUANTITY, SLUG, KubeModel, Status, cel, validations

URL = r"^https?://\S+$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class Collection(StrEnum):
    CURATED = "curated"
    OPENAI = "openai"
    HUGGINGFACE = "huggingface"


class LifecycleStage(StrEnum):
    PREVIEW = "Preview"
    GENERALLY_AVAILABLE = "GenerallyAvailable"
    LEGACY = "Legacy"
    DEPRECATED = "Deprecated"
    RETIRED = "Retired"


class Runtime(StrEnum):
    VLLM = "vllm"
    TEXT_EMBEDDINGS_INFERENCE = "text-embeddings-inference"


class DType(StrEnum):
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    INT8 = "int8"
    INT4 = "int4"


BYTES_PER_PARAMETER = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "int4": 0.5}
# Weights plus room for the KV cache, activations and the CUDA context: a common rule of thumb.
SERVING_OVERHEAD = 1.2


def min_gpu_memory_gib(parameters_billions: float, dtype: str) -> int:
    """GPU memory (GiB, across all GPUs of a replica) needed to serve a model of this size and dtype."""
    weight_bytes = parameters_billions * 1e9 * BYTES_PER_PARAMETER[dtype]
    return math.ceil(weight_bytes * SERVING_OVERHEAD / 2**30)


class Sourced(KubeModel):
    source: str | None = Field(
        default=None,
        pattern=URL,
        description="Public URL the figure comes from (required for outside figures).",
    )


class Lifecycle(KubeModel):
    """Where the model is in its life; dates are YYYY-MM-DD."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("self.stage != 'Deprecated' || has(self.deprecationDate)",
                "lifecycle.deprecationDate is required when stage is Deprecated", reason="FieldValueRequired"),
            cel("self.stage != 'Retired' || has(self.retirementDate)",
                "lifecycle.retirementDate is required when stage is Retired", reason="FieldValueRequired"),
        )
    }  # fmt: skip
    stage: LifecycleStage = Field(default=LifecycleStage.GENERALLY_AVAILABLE, description="Lifecycle stage.")
    preview_date: str | None = Field(default=None, pattern=DATE, description="Preview since.")
    generally_available_date: str | None = Field(default=None, pattern=DATE, description="GA since.")
    legacy_date: str | None = Field(default=None, pattern=DATE, description="Legacy since.")
    deprecation_date: str | None = Field(default=None, pattern=DATE, description="No new deployments from.")
    retirement_date: str | None = Field(default=None, pattern=DATE, description="Deployments stop serving on.")
    replacement: str | None = Field(default=None, description="CatalogModel to move to.")
    source: str | None = Field(default=None, pattern=URL, description="Where the dates were announced.")


class Weights(KubeModel):
    """Where the weights come from, pinned, and their size."""

    repository: str = Field(description="Hub repository id, e.g. meta-llama/Meta-Llama-3-8B-Instruct.", min_length=1)
    revision: str = Field(default="main", description="Pinned commit or tag of the repository.", min_length=1)
    parameters_billions: float | None = Field(
        default=None, gt=0, description="Parameter count in billions (from the model card or config)."
    )
    dtype: DType = Field(default=DType.BFLOAT16, description="Data type the weights are served in.")


class ManagedComputeOption(KubeModel):
    """The model can run on dedicated GPU replicas (a ModelDeployment)."""

    runtime: Runtime = Field(default=Runtime.VLLM, description="Model server: vllm or text-embeddings-inference.")
    min_gpu_memory_gib: int | None = Field(
        default=None,
        alias="minGpuMemoryGiB",
        ge=1,
        description="GPU memory a replica needs in GiB, derived from parameters and dtype (make catalog).",
    )
    allowed_instance_types: list[str] = Field(
        default_factory=list,
        description="InstanceType names the publisher supports; empty means any that fits.",
    )


class Pricing(Sourced):
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.")
    input_per_1m_tokens: str | None = Field(
        default=None, alias="inputPer1MTokens", pattern=DECIMAL, description="Price per million input tokens."
    )
    output_per_1m_tokens: str | None = Field(
        default=None,
        alias="outputPer1MTokens",
        pattern=DECIMAL,
        description="Price per million output tokens.",
    )


class RateLimits(KubeModel):
    requests_per_minute: int | None = Field(default=None, ge=1, description="Requests per minute per endpoint.")
    tokens_per_minute: int | None = Field(default=None, ge=1, description="Tokens per minute per endpoint.")


class ServerlessOption(KubeModel):
    """The model is offered as a shared, pay-per-token API (a ServerlessEndpoint)."""

    regions: list[str] = Field(default_factory=list, description="Regions that offer the model.")
    regions_source: str | None = Field(default=None, pattern=URL, description="Where the regions are listed.")
    lifecycle: Lifecycle | None = Field(
        default=None, description="Lifecycle of the serverless offer when it differs from the model's."
    )
    pricing: Pricing | None = Field(
        default=None, description="Token prices the platform charges (catalog/prices.yaml); unset: no price."
    )
    default_rate_limits: RateLimits | None = Field(default=None, description="Limits an endpoint gets by default.")
    terms_required: bool = Field(
        default=True, description="Users must accept the publisher's terms (third-party models)."
    )


class DeploymentOptions(KubeModel):
    managed_compute: ManagedComputeOption | None = Field(default=None, description="Dedicated GPU replicas.")
    serverless: ServerlessOption | None = Field(default=None, description="Shared pay-per-token API.")


class BenchmarkKind(StrEnum):
    QUALITY = "quality"
    PERFORMANCE = "performance"


class Benchmark(KubeModel):
    name: str = Field(description="Metric, e.g. accuracy, mmlu, coherence, tokens-per-second.", min_length=1)
    kind: BenchmarkKind = Field(default=BenchmarkKind.QUALITY, description="quality or performance.")
    dataset: str | None = Field(default=None, description="Dataset the figure was measured on.")
    value: float = Field(description="The figure.")
    unit: str = Field(default="%", description="Unit of the value, e.g. %, tokens/s, ms.")
    source: str = Field(pattern=URL, description="Public URL the figure comes from.")


class CatalogModelSpec(KubeModel):
    """One entry of the model catalog."""

    display_name: str = Field(description="Name shown to users, e.g. Meta-Llama-3-8B-Instruct.", min_length=1)
    description: str = Field(default="", description="What the model is for.")
    publisher: str = Field(description="Who publishes the model, e.g. Meta, Mistral AI, Cohere.", min_length=1)
    collection: Collection = Field(description="curated (by the catalog team), openai or huggingface.")
    tasks: list[str] = Field(
        min_length=1, description="Inference tasks, e.g. chat-completion, embeddings.",
        json_schema_extra={"items": {"type": "string", "pattern": SLUG}},
    )  # fmt: skip
    fine_tuning_tasks: list[str] = Field(
        default_factory=list, description="Tasks the model can be fine-tuned for.",
        json_schema_extra={"items": {"type": "string", "pattern": SLUG}},
    )  # fmt: skip
    license: str = Field(description="License id, e.g. llama3, mit, apache-2.0, custom.", pattern=SLUG)
    license_url: str | None = Field(default=None, pattern=URL, description="The license text.")
    weights: Weights | None = Field(default=None, description="Weight source; absent for API-only models.")
    context_window: int | None = Field(default=None, ge=1, description="Maximum tokens in prompt plus completion.")
    context_window_source: str | None = Field(
        default=None, pattern=URL, description="Where the context window is stated."
    )
    deployment_options: DeploymentOptions = Field(description="How the model can be deployed.")
    lifecycle: Lifecycle = Field(default_factory=Lifecycle, description="Lifecycle stage and dates.")
    benchmarks: list[Benchmark] = Field(default_factory=list, description="Quality and performance figures.")

    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("has(self.deploymentOptions.managedCompute) || has(self.deploymentOptions.serverless)",
                "deploymentOptions needs managedCompute, serverless or both", "deploymentOptions"),
            cel("!has(self.deploymentOptions.managedCompute) || has(self.weights)",
                "weights is required when deploymentOptions.managedCompute is set", "weights"),
        )
    }  # fmt: skip


class NextChange(KubeModel):
    date: str = Field(pattern=DATE, description="The day the change happens (YYYY-MM-DD, UTC).")
    stage: LifecycleStage = Field(description="The stage it brings.")
    subject: str = Field(description="model, or the deployment option that changes (serverless).")
    description: str = Field(description="What happens, e.g. 'the serverless offer retires on 2026-01-31'.")


class CatalogModelStatus(Status):
    """The lifecycle as of today on the operator's clock, derived from the spec's dates (re-derived as they pass).

    phase is the model's stage today; the Available condition is False once it is retired."""

    stage: LifecycleStage | None = Field(default=None, description="The model's lifecycle stage today.")
    tasks: str | None = Field(default=None, description="The inference tasks, comma separated (for kubectl get).")
    managed: str | None = Field(
        default=None, description="Managed compute today: the runtime, its stage when not GA, or retired."
    )
    serverless: str | None = Field(
        default=None,
        description="The serverless offer today: 'live in 7 regions', 'live in every region' (no regions listed: "
        "no restriction), 'deprecated, 2 regions', 'retired'.",
    )
    serverless_stage: LifecycleStage | None = Field(default=None, description="The serverless offer's stage today.")
    next_change: NextChange | None = Field(default=None, description="The next lifecycle date and what it brings.")


class GPU(KubeModel):
    model: str = Field(description="GPU model, e.g. A100, H100, T4.", min_length=1)
    count: int = Field(ge=1, le=16, description="GPUs per replica (nvidia.com/gpu).")
    memory_gib: int = Field(alias="memoryGiB", ge=1, description="Memory of one GPU in GiB.")


class Toleration(KubeModel):
    key: str | None = Field(default=None, description="Taint key.")
    operator: str = Field(default="Equal", pattern="^(Equal|Exists)$", description="Equal or Exists.")
    value: str | None = Field(default=None, description="Taint value for Equal.")
    effect: str | None = Field(
        default=None, pattern="^(NoSchedule|PreferNoSchedule|NoExecute)$", description="Taint effect."
    )


class HourlyPricing(KubeModel):
    """What one replica on this instance type costs, as the platform team sets it (no public source)."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.")
    per_hour: str = Field(pattern=DECIMAL, description="Price of one replica (instance) per hour.")


class InstanceTypeSpec(KubeModel):
    """A GPU SKU mapped to a node pool: what one replica gets and where it runs."""

    display_name: str = Field(default="", description="e.g. Standard_NC24ads_A100_v4.")
    gpu: GPU | None = Field(default=None, description="GPUs per replica; absent for CPU-only types.")
    cpu: str = Field(pattern=QUANTITY, description="CPU request and limit per replica.")
    memory: str = Field(pattern=QUANTITY, description="Memory request and limit per replica.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Labels of the node pool.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Tolerations for the pool's taints.")
    pricing: HourlyPricing | None = Field(default=None, description="Hourly price of one replica; unset: no price.")

    @property
    def gpu_memory_gib(self) -> int:
        return self.gpu.count * self.gpu.memory_gib if self.gpu else 0


class InstanceTypeStatus(Status):
    """What the operator observed about this instance type."""
