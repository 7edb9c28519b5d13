"""Operator settings, read once from the environment (the local launcher, or a Deployment's env)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_IMAGES = {
    "vllm": "docker.io/vllm/vllm-openai:v0.11.0",
    "text-embeddings-inference": "ghcr.io/huggingface/text-embeddings-inference:1.8",
}


@dataclass(frozen=True)
class Settings:
    namespace: str = "modelcatalog-system"
    serverless_namespace: str = "modelcatalog-serverless"
    region: str = "local"
    model_server_port: int = 8000
    images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    model_cache_size: str = "200Gi"
    router_image: str = "ghcr.io/modelcatalog/modelcatalog-router:0.1.0"
    # Whether a workspace with public network access gets a LoadBalancer router Service. Off by
    # default: a LoadBalancer costs money and opens the cluster, so the platform opts in.
    router_load_balancer: bool = False

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
            router_image=env.get("MODELCATALOG_IMAGE_ROUTER", cls.router_image),
            router_load_balancer=env.get("MODELCATALOG_ROUTER_LOAD_BALANCER", "").lower() in ("1", "true", "yes"),
        )
