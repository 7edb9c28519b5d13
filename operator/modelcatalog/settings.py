"""Operator settings, read once from the environment (the Helm chart sets them).

Every setting a platform team may disagree with is here, with its environment variable; docs/settings.md
lists them with their defaults and why.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

DEFAULT_IMAGES = {
    "vllm": "docker.io/vllm/vllm-openai:v0.11.0",
    "text-embeddings-inference": "ghcr.io/huggingface/text-embeddings-inference:1.8",
}

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
    namespace: str = "modelcatalog-system"
    serverless_namespace: str = "modelcatalog-serverless"
    region: str = "local"
    model_server_port: int = 8000
    images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    model_cache_size: str = "200Gi"
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

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        images = dict(DEFAULT_IMAGES)
        for runtime in DEFAULT_IMAGES:
            override = env.get(f"MODELCATALOG_IMAGE_{runtime.upper().replace('-', '_')}")
            if override:
                images[runtime] = override
        return cls(
            namespace=env.get("MODELCATALOG_NAMESPACE", cls.namespace),
            serverless_namespace=env.get("MODELCATALOG_SERVERLESS_NAMESPACE", cls.serverless_namespace),
            region=env.get("MODELCATALOG_REGION", cls.region),
            images=images,
            egress_allow_metadata=_flag(env, "MODELCATALOG_EGRESS_ALLOW_METADATA", cls.egress_allow_metadata),
            egress_allow_api_server=_flag(env, "MODELCATALOG_EGRESS_ALLOW_API_SERVER", cls.egress_allow_api_server),
            metadata_cidrs=_cidrs(env, "MODELCATALOG_METADATA_CIDRS", DEFAULT_METADATA_CIDRS),
            node_local_dns_cidrs=_cidrs(env, "MODELCATALOG_NODE_LOCAL_DNS_CIDRS", DEFAULT_NODE_LOCAL_DNS_CIDRS),
            cluster_cidrs=_cidrs(env, "MODELCATALOG_CLUSTER_CIDRS", ()),
            api_server_cidrs=_cidrs(env, "MODELCATALOG_API_SERVER_CIDRS", ()),
            operator_pod_labels=_mapping(env, "MODELCATALOG_OPERATOR_POD_LABELS", DEFAULT_OPERATOR_POD_LABELS),
        )
