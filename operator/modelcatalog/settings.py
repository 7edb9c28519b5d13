"""Operator settings: the `modelcatalog-settings` ConfigMap, overridden by MODELCATALOG_* environment variables.

The ConfigMap `modelcatalog-settings` in the operator's namespace (`modelcatalog-system`) is the one place the
operator, the CLI and the Helm chart read cluster-wide settings from. Its keys:

  region            the cluster's region: serverless offers are filtered by it (`models list --region`). Default
                    "local".
  clockOffsetDays   days to move the clock by (a whole number, may be negative): lifecycle stages and "retires in
                    N days" are computed for that day. Default 0. For tests and demos only.

An environment variable wins over the ConfigMap for the process that has it (MODELCATALOG_REGION,
MODELCATALOG_CLOCK_OFFSET_DAYS); the rest (namespaces, images) come from the environment only.

Every setting a platform team may disagree with is here, with its environment variable; docs/settings.md
lists them with their defaults and why.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelcatalog import clock
from modelcatalog.shard import LABEL as SHARD_LABEL
from modelcatalog.shard import Shard

if TYPE_CHECKING:
    from modelcatalog.kube.client import KubeClient

logger = logging.getLogger(__name__)

# Tags, so a fresh install works; pin them by digest in production (MODELCATALOG_IMAGE_*=repo@sha256:...).
DEFAULT_IMAGES = {
    "vllm": "docker.io/vllm/vllm-openai:v0.11.0",
    "text-embeddings-inference": "ghcr.io/huggingface/text-embeddings-inference:1.8",
}
DEFAULT_NAMESPACE = "modelcatalog-system"
# The operator's and router's image, as the chart deploys it (repository and appVersion of charts/modelcatalog).
PROJECT_IMAGE = "ghcr.io/modelcatalog/modelcatalog:0.1.0"
CONFIGMAP = "modelcatalog-settings"
# ConfigMap key -> environment variable that overrides it.
CONFIGMAP_KEYS = {"region": "MODELCATALOG_REGION", "clockOffsetDays": clock.ENV}
TEI = "ghcr.io/huggingface/text-embeddings-inference"
# TEI publishes one build per GPU architecture; the keys are the GPU model names the InstanceTypes of
# catalog/ use (spec.gpu.model), "cpu" for types without a GPU. A model not listed runs the generic
# image above (the Ampere 8.0 build).
DEFAULT_TEI_IMAGES = {
    "T4": f"{TEI}:turing-1.8",  # Turing, compute capability 7.5
    "A100": f"{TEI}:1.8",  # Ampere 8.0
    "A10": f"{TEI}:86-1.8",  # Ampere 8.6 (A10, A40)
    "L4": f"{TEI}:89-1.8",  # Ada Lovelace 8.9
    "L40S": f"{TEI}:89-1.8",
    "H100": f"{TEI}:hopper-1.8",  # Hopper 9.0
    "cpu": f"{TEI}:cpu-1.8",
}
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
SPREAD_MODES = ("ScheduleAnyway", "DoNotSchedule", "Off")
LIVENESS_MODES = ("tcp", "http")
CONTENT_FILTERS = ("baseline", "moderation", "guard")
TOGGLES = ("Enabled", "Disabled")
FAILURE_MODES = ("closed", "open")

# The cloud instance metadata service (AWS, Azure, GCP, OpenStack; AWS's IPv6 address).
DEFAULT_METADATA_CIDRS = ("169.254.169.254/32", "fd00:ec2::254/128")
# NodeLocal DNSCache's default address.
DEFAULT_NODE_LOCAL_DNS_CIDRS = ("169.254.20.10/32",)
# How the Helm chart labels the operator's own pods.
DEFAULT_OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "modelcatalog", "app.kubernetes.io/component": "operator"}

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class SettingError(ValueError):
    """An environment variable the operator cannot read: named, with what it expects."""


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in TRUE:
        return True
    if raw.strip().lower() in FALSE:
        return False
    raise SettingError(f"{name}={raw!r}: expected true or false")


def _list(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list; set but empty means none."""
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _mapping(env: dict[str, str], name: str, default: dict[str, str]) -> dict[str, str]:
    """`key=value,key=value`."""
    raw = env.get(name)
    if raw is None:
        return dict(default)
    pairs = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingError(f"{name}: {item!r} is not key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default)
    if value not in choices:
        raise SettingError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _number(env: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r}: expected a number") from None
    if not low <= value <= high:
        raise SettingError(f"{name}={raw!r}: expected a number from {low:g} to {high:g}")
    return value


def is_pinned(image: str) -> bool:
    """Referenced by digest: the same bytes on every node, whatever happens to the tag."""
    return "@sha256:" in image


def _cidrs(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    values = _list(env, name, default)
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as error:
            raise SettingError(f"{name}: {value!r} is not a CIDR ({error})") from None
    return values


@dataclass(frozen=True)
class Settings:
    namespace: str = DEFAULT_NAMESPACE
    serverless_namespace: str = "modelcatalog-serverless"
    region: str = "local"
    clock_offset_days: int = 0
    model_server_port: int = 8000
    images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    model_cache_size: str = "200Gi"
    # The project's one image (Dockerfile): its default command is the router. The chart's appVersion.
    router_image: str = PROJECT_IMAGE
    # --- network: the egress baseline every workspace gets (docs/network.md) ---
    # Lift the baseline for clusters whose model servers need the metadata service or the API server.
    egress_allow_metadata: bool = False
    egress_allow_api_server: bool = False
    metadata_cidrs: tuple[str, ...] = DEFAULT_METADATA_CIDRS
    node_local_dns_cidrs: tuple[str, ...] = DEFAULT_NODE_LOCAL_DNS_CIDRS
    # Added to what the operator reads from the cluster (node podCIDRs, ServiceCIDRs): never "the internet".
    cluster_cidrs: tuple[str, ...] = ()
    # Added to the `kubernetes` EndpointSlice's addresses (an API server reached through another address).
    api_server_cidrs: tuple[str, ...] = ()
    operator_pod_labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_OPERATOR_POD_LABELS))
    # --- model servers (docs/settings.md) ---
    tei_images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEI_IMAGES))
    # A digest-pinned image is IfNotPresent; a tag may move, so by default it is pulled each time.
    unpinned_image_pull_policy: str = "Always"
    # Refuse weights at a branch (main) rather than a commit: replicas started a day apart may differ.
    require_pinned_revision: bool = False
    # /dev/shm is memory: a share of the memory limit, capped; it counts against the limit and request.
    shm_fraction: float = 0.25
    shm_max: str = "16Gi"
    # Scratch (/tmp) besides the model cache; both are the ephemeral-storage request and limit.
    scratch_size: str = "10Gi"
    run_as_user: int = 65532
    run_as_group: int = 65532
    # Spread replicas over nodes (topology keys) when there can be more than one.
    topology_spread: str = "ScheduleAnyway"
    topology_keys: tuple[str, ...] = ("kubernetes.io/hostname",)
    # Liveness by TCP (a server busy with long generations is not restarted) or by the health path.
    liveness_probe: str = "tcp"
    # Seconds a model server keeps serving after its pod starts terminating, so routers stop picking it first.
    pre_stop_seconds: int = 5
    # Whether a workspace with public network access gets a LoadBalancer router Service. Off by
    # default: a LoadBalancer costs money and opens the cluster, so the platform opts in.
    router_load_balancer: bool = False
    # --- serverless (docs/settings.md) ---
    # Open-weight catalog models the platform offers on its own shared pool, whatever the catalog's
    # serverless offer says (regions, offer lifecycle): the model's own lifecycle still applies.
    serverless_pool_models: tuple[str, ...] = ()
    serverless_pool_replicas: int = 1
    # Replicas of the serverless gateway (metering, limits and upstream credentials; docs/architecture.md).
    serverless_gateway_replicas: int = 2
    # Publishers whose models need no terms acceptance when the catalog has no serverless offer to say so.
    first_party_publishers: tuple[str, ...] = ("Microsoft",)
    # The upstream provider API that serves models without open weights, and its credential Secret
    # (in the serverless namespace). Unset: such models are refused with a condition.
    serverless_upstream_url: str | None = None
    serverless_upstream_secret: str | None = None
    # The limits an endpoint gets when neither it nor the model's offer sets any.
    serverless_requests_per_minute: int = 60
    serverless_tokens_per_minute: int = 100_000
    # The serverless store (an existing Redis, docs/serverless.md): rate limits and usage. Unset: no limits,
    # no usage in status. The password comes from a Secret (the chart's serverlessStore.passwordSecret).
    serverless_store_url: str | None = None
    serverless_store_password: str | None = field(default=None, repr=False)
    # Store down: admit without limits and lose those requests' usage (true), or answer 503 (false).
    serverless_store_fail_open: bool = True
    # Seconds between the operator's reads of the usage counters into each endpoint's status.usage.
    serverless_usage_seconds: float = 5.0
    # --- content safety (docs/content-safety.md): the workspace routers screen with these ---
    # The filters every screened request goes through, all of them (the worst severity counts); none: off.
    content_safety_filters: tuple[str, ...] = ("baseline",)
    # Whether a ServerlessEndpoint whose spec does not say is screened.
    content_safety_serverless: str = "Enabled"
    # A filter that fails or does not answer in time: block (closed) or pass what it did not judge (open).
    content_safety_on_error: str = "closed"
    content_safety_timeout_seconds: float = 5.0
    # An OpenAI-style moderation service (POST <url> {"input": ...}), its model, and the Secret (key
    # `apiKey`, in each workspace namespace that uses it) with its credential.
    content_safety_moderation_url: str | None = None
    content_safety_moderation_model: str | None = None
    content_safety_moderation_secret: str | None = None
    # The endpoint (in each workspace) of a guard model deployed from the catalog.
    content_safety_guard_endpoint: str | None = None
    # --- the admission webhook (docs/policy.md) ---
    # Port of the webhook's TLS server in the operator process; 0: no webhook.
    webhook_port: int = 0
    webhook_host: str = "0.0.0.0"  # noqa: S104 (the chart's Service reaches the pod's address)
    webhook_secret: str = "modelcatalog-webhook-tls"  # noqa: S105 (a Secret's name)
    webhook_configuration: str = "modelcatalog"
    # The Service in front of the webhook (the certificate names it) and any other names or IPs to cover.
    webhook_service: str = "modelcatalog-webhook"
    webhook_hosts: tuple[str, ...] = ()
    # --- shards (docs/sharding.md) ---
    # The namespaces this operator serves (by the label `shard.label`) and whether it owns the shared objects.
    shard: Shard = field(default_factory=Shard)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, configmap: Mapping[str, str] | None = None) -> Settings:
        """From the ConfigMap's data (None: no ConfigMap) with the environment's overrides."""
        env = dict(os.environ if env is None else env)
        data = dict(configmap or {})
        images = dict(DEFAULT_IMAGES)
        for runtime in DEFAULT_IMAGES:
            override = env.get(f"MODELCATALOG_IMAGE_{runtime.upper().replace('-', '_')}")
            if override:
                images[runtime] = override

        def setting(key: str) -> str | None:
            return env.get(CONFIGMAP_KEYS[key]) or data.get(key) or None

        tei_images = dict(DEFAULT_TEI_IMAGES) | _mapping(env, "MODELCATALOG_TEI_IMAGES", {})
        return _check_content_safety(
            cls(
                namespace=env.get("MODELCATALOG_NAMESPACE", cls.namespace),
                serverless_namespace=env.get("MODELCATALOG_SERVERLESS_NAMESPACE", cls.serverless_namespace),
                region=setting("region") or cls.region,
                clock_offset_days=clock.parse_offset(setting("clockOffsetDays"), f"{CONFIGMAP} clockOffsetDays"),
                images=images,
                router_image=env.get("MODELCATALOG_IMAGE_ROUTER", cls.router_image),
                egress_allow_metadata=_flag(env, "MODELCATALOG_EGRESS_ALLOW_METADATA", cls.egress_allow_metadata),
                egress_allow_api_server=_flag(env, "MODELCATALOG_EGRESS_ALLOW_API_SERVER", cls.egress_allow_api_server),
                metadata_cidrs=_cidrs(env, "MODELCATALOG_METADATA_CIDRS", DEFAULT_METADATA_CIDRS),
                node_local_dns_cidrs=_cidrs(env, "MODELCATALOG_NODE_LOCAL_DNS_CIDRS", DEFAULT_NODE_LOCAL_DNS_CIDRS),
                cluster_cidrs=_cidrs(env, "MODELCATALOG_CLUSTER_CIDRS", ()),
                api_server_cidrs=_cidrs(env, "MODELCATALOG_API_SERVER_CIDRS", ()),
                operator_pod_labels=_mapping(env, "MODELCATALOG_OPERATOR_POD_LABELS", DEFAULT_OPERATOR_POD_LABELS),
                model_cache_size=env.get("MODELCATALOG_MODEL_CACHE_SIZE", cls.model_cache_size),
                tei_images=tei_images,
                unpinned_image_pull_policy=_choice(
                    env, "MODELCATALOG_UNPINNED_IMAGE_PULL_POLICY", cls.unpinned_image_pull_policy, PULL_POLICIES
                ),
                require_pinned_revision=_flag(env, "MODELCATALOG_REQUIRE_PINNED_REVISION", cls.require_pinned_revision),
                shm_fraction=_number(env, "MODELCATALOG_SHM_FRACTION", cls.shm_fraction, 0.0, 0.9),
                shm_max=env.get("MODELCATALOG_SHM_MAX", cls.shm_max),
                scratch_size=env.get("MODELCATALOG_SCRATCH_SIZE", cls.scratch_size),
                run_as_user=int(_number(env, "MODELCATALOG_RUN_AS_USER", cls.run_as_user, 1, 2**31 - 1)),
                run_as_group=int(_number(env, "MODELCATALOG_RUN_AS_GROUP", cls.run_as_group, 1, 2**31 - 1)),
                topology_spread=_choice(env, "MODELCATALOG_TOPOLOGY_SPREAD", cls.topology_spread, SPREAD_MODES),
                topology_keys=_list(env, "MODELCATALOG_TOPOLOGY_KEYS", cls.topology_keys),
                liveness_probe=_choice(env, "MODELCATALOG_LIVENESS_PROBE", cls.liveness_probe, LIVENESS_MODES),
                pre_stop_seconds=int(_number(env, "MODELCATALOG_PRE_STOP_SECONDS", cls.pre_stop_seconds, 0, 300)),
                router_load_balancer=_flag(env, "MODELCATALOG_ROUTER_LOAD_BALANCER", cls.router_load_balancer),
                serverless_pool_models=_list(env, "MODELCATALOG_SERVERLESS_POOL_MODELS", cls.serverless_pool_models),
                serverless_pool_replicas=int(
                    _number(env, "MODELCATALOG_SERVERLESS_POOL_REPLICAS", cls.serverless_pool_replicas, 1, 100)
                ),
                first_party_publishers=_list(env, "MODELCATALOG_FIRST_PARTY_PUBLISHERS", cls.first_party_publishers),
                serverless_gateway_replicas=int(
                    _number(env, "MODELCATALOG_SERVERLESS_GATEWAY_REPLICAS", cls.serverless_gateway_replicas, 1, 100)
                ),
                serverless_upstream_url=env.get("MODELCATALOG_SERVERLESS_UPSTREAM_URL") or None,
                serverless_upstream_secret=env.get("MODELCATALOG_SERVERLESS_UPSTREAM_SECRET") or None,
                serverless_requests_per_minute=int(
                    _number(
                        env, "MODELCATALOG_SERVERLESS_REQUESTS_PER_MINUTE", cls.serverless_requests_per_minute, 1, 1e9
                    )
                ),
                serverless_tokens_per_minute=int(
                    _number(env, "MODELCATALOG_SERVERLESS_TOKENS_PER_MINUTE", cls.serverless_tokens_per_minute, 1, 1e12)
                ),
                serverless_store_url=env.get("MODELCATALOG_SERVERLESS_STORE_URL") or None,
                serverless_store_password=env.get("MODELCATALOG_SERVERLESS_STORE_PASSWORD") or None,
                serverless_store_fail_open=_flag(
                    env, "MODELCATALOG_SERVERLESS_STORE_FAIL_OPEN", cls.serverless_store_fail_open
                ),
                serverless_usage_seconds=_number(
                    env, "MODELCATALOG_SERVERLESS_USAGE_SECONDS", cls.serverless_usage_seconds, 1, 3600
                ),
                content_safety_filters=_content_filters(env),
                content_safety_serverless=_choice(
                    env, "MODELCATALOG_CONTENT_SAFETY_SERVERLESS", cls.content_safety_serverless, TOGGLES
                ),
                content_safety_on_error=_choice(
                    env, "MODELCATALOG_CONTENT_SAFETY_ON_ERROR", cls.content_safety_on_error, FAILURE_MODES
                ),
                content_safety_timeout_seconds=_number(
                    env, "MODELCATALOG_CONTENT_SAFETY_TIMEOUT_SECONDS", cls.content_safety_timeout_seconds, 0.1, 60
                ),
                content_safety_moderation_url=env.get("MODELCATALOG_CONTENT_SAFETY_MODERATION_URL") or None,
                content_safety_moderation_model=env.get("MODELCATALOG_CONTENT_SAFETY_MODERATION_MODEL") or None,
                content_safety_moderation_secret=env.get("MODELCATALOG_CONTENT_SAFETY_MODERATION_SECRET") or None,
                content_safety_guard_endpoint=env.get("MODELCATALOG_CONTENT_SAFETY_GUARD_ENDPOINT") or None,
                webhook_port=int(_number(env, "MODELCATALOG_WEBHOOK_PORT", cls.webhook_port, 0, 65535)),
                webhook_host=env.get("MODELCATALOG_WEBHOOK_HOST", cls.webhook_host),
                webhook_secret=env.get("MODELCATALOG_WEBHOOK_SECRET", cls.webhook_secret),
                webhook_configuration=env.get("MODELCATALOG_WEBHOOK_CONFIGURATION", cls.webhook_configuration),
                webhook_service=env.get("MODELCATALOG_WEBHOOK_SERVICE", cls.webhook_service),
                webhook_hosts=_list(env, "MODELCATALOG_WEBHOOK_HOSTS", cls.webhook_hosts),
                shard=Shard.of(
                    env.get("MODELCATALOG_SHARD") or None,
                    env.get("MODELCATALOG_SHARD_LABEL") or SHARD_LABEL,
                    _list(env, "MODELCATALOG_SHARD_VALUES", ()),
                    _flag(env, "MODELCATALOG_SHARD_OWNS_SHARED", True),
                ),
            )
        )

    def apply_clock(self) -> None:
        """Make this process's clock (modelcatalog.clock) follow clockOffsetDays."""
        clock.configure(self.clock_offset_days)


def _content_filters(env: dict[str, str]) -> tuple[str, ...]:
    filters = _list(env, "MODELCATALOG_CONTENT_SAFETY_FILTERS", Settings.content_safety_filters)
    unknown = [f for f in filters if f not in CONTENT_FILTERS]
    if unknown:
        raise SettingError(
            f"MODELCATALOG_CONTENT_SAFETY_FILTERS: {unknown} unknown; expected some of {CONTENT_FILTERS}"
        )
    return filters


def _check_content_safety(settings: Settings) -> Settings:
    """A filter named without the address it needs stops the operator at start, not every request later."""
    prefix = "MODELCATALOG_CONTENT_SAFETY_"
    if "moderation" in settings.content_safety_filters and not settings.content_safety_moderation_url:
        raise SettingError(f"{prefix}FILTERS names moderation: set {prefix}MODERATION_URL")
    if "guard" in settings.content_safety_filters and not settings.content_safety_guard_endpoint:
        raise SettingError(f"{prefix}FILTERS names guard: set {prefix}GUARD_ENDPOINT")
    return settings


async def load(client: KubeClient) -> Settings:
    """The operator's settings: the ConfigMap (when it exists and may be read) under the environment; the
    process clock follows them. Read at start: the chart restarts the operator when the ConfigMap changes."""
    from modelcatalog.kube.client import ApiError

    namespace = os.environ.get("MODELCATALOG_NAMESPACE", DEFAULT_NAMESPACE)
    try:
        found = await client.get("v1", "ConfigMap", CONFIGMAP, namespace)
    except ApiError as error:
        logger.warning("cannot read ConfigMap %s/%s (%s): using the environment only", namespace, CONFIGMAP, error)
        found = None
    settings = Settings.from_env(configmap=(found or {}).get("data"))
    settings.apply_clock()
    return settings
