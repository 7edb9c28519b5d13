"""Operator settings: the `modelcatalog-settings` ConfigMap, overridden by MODELCATALOG_* environment variables.

The ConfigMap `modelcatalog-settings` in the operator's namespace (`modelcatalog-system`) is the one place the
operator, the CLI and the Helm chart read cluster-wide settings from. Its keys:

  region            the cluster's region: serverless offers are filtered by it (`models list --region`). Default
                    "local".
  clockOffsetDays   days to move the clock by (a whole number, may be negative): lifecycle stages and "retires in
                    N days" are computed for that day. Default 0. For tests and demos only.

An environment variable wins over the ConfigMap for the process that has it (MODELCATALOG_REGION,
MODELCATALOG_CLOCK_OFFSET_DAYS); the rest (namespaces, images) come from the environment only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelcatalog import clock

if TYPE_CHECKING:
    from modelcatalog.kube.client import KubeClient

logger = logging.getLogger(__name__)

DEFAULT_IMAGES = {
    "vllm": "docker.io/vllm/vllm-openai:v0.11.0",
    "text-embeddings-inference": "ghcr.io/huggingface/text-embeddings-inference:1.8",
}
DEFAULT_NAMESPACE = "modelcatalog-system"
CONFIGMAP = "modelcatalog-settings"
# ConfigMap key -> environment variable that overrides it.
CONFIGMAP_KEYS = {"region": "MODELCATALOG_REGION", "clockOffsetDays": clock.ENV}


@dataclass(frozen=True)
class Settings:
    namespace: str = DEFAULT_NAMESPACE
    serverless_namespace: str = "modelcatalog-serverless"
    region: str = "local"
    clock_offset_days: int = 0
    model_server_port: int = 8000
    images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    model_cache_size: str = "200Gi"
    router_image: str = "ghcr.io/modelcatalog/modelcatalog-router:0.1.0"

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

        return cls(
            namespace=env.get("MODELCATALOG_NAMESPACE", cls.namespace),
            serverless_namespace=env.get("MODELCATALOG_SERVERLESS_NAMESPACE", cls.serverless_namespace),
            region=setting("region") or cls.region,
            clock_offset_days=clock.parse_offset(setting("clockOffsetDays"), f"{CONFIGMAP} clockOffsetDays"),
            images=images,
            router_image=env.get("MODELCATALOG_IMAGE_ROUTER", cls.router_image),
        )

    def apply_clock(self) -> None:
        """Make this process's clock (modelcatalog.clock) follow clockOffsetDays."""
        clock.configure(self.clock_offset_days)


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
