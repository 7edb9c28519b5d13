"""The router's settings, from its environment (the Deployment sets them) and optional flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from modelcatalog.router.safety.settings import SafetySettings
from modelcatalog.router.store import StoreSettings

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# How long a request waits for a free slot when every pod is at maxConcurrentRequestsPerInstance.
DEFAULT_QUEUE_WAIT_SECONDS = 2.0
# Pods tried per request when connections are refused (the first one included).
DEFAULT_CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 5.0
ROUTER = "router"
GATEWAY = "gateway"
MODES = (ROUTER, GATEWAY)
# Completion tokens reserved at admission for a request that names no max_tokens (serverless rate limits).
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True)
class RouterSettings:
    host: str = "0.0.0.0"  # noqa: S104 (a server in a pod listens on the pod's addresses)
    port: int = DEFAULT_PORT
    config_file: Path | None = None
    namespace: str = "default"
    kubeconfig: str | None = None
    token_file: Path = SERVICE_ACCOUNT_DIR / "token"
    ca_file: Path = SERVICE_ACCOUNT_DIR / "ca.crt"
    api_host: str | None = None
    api_port: str = "443"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    queue_wait_seconds: float = DEFAULT_QUEUE_WAIT_SECONDS
    connect_attempts: int = DEFAULT_CONNECT_ATTEMPTS
    # router: a workspace's; gateway: the serverless gateway (router/gateway.py), with the upstream provider
    # (its base URL, requests go to <url>/v1/...) and the Secret, in its own namespace, holding its credential.
    mode: str = ROUTER
    upstream_url: str | None = None
    upstream_secret: str | None = None
    # The serverless store (router/store.py): none, no limits and no shared usage.
    store: StoreSettings | None = None
    store_fail_open: bool = True
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    safety: SafetySettings = field(default_factory=SafetySettings)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RouterSettings:
        env = dict(os.environ if env is None else env)

        def path(name: str) -> Path | None:
            return Path(env[name]) if env.get(name) else None

        return cls(
            host=env.get("MODELCATALOG_ROUTER_HOST", cls.host),
            port=int(env.get("MODELCATALOG_ROUTER_PORT", cls.port)),
            config_file=path("MODELCATALOG_ROUTER_CONFIG"),
            namespace=env.get("MODELCATALOG_ROUTER_NAMESPACE") or own_namespace() or cls.namespace,
            kubeconfig=env.get("MODELCATALOG_KUBECONFIG") or None,
            token_file=path("MODELCATALOG_TOKEN_FILE") or cls.token_file,
            ca_file=path("MODELCATALOG_CA_FILE") or cls.ca_file,
            api_host=env.get("KUBERNETES_SERVICE_HOST") or None,
            api_port=env.get("KUBERNETES_SERVICE_PORT", cls.api_port),
            tls_cert=path("MODELCATALOG_ROUTER_TLS_CERT"),
            tls_key=path("MODELCATALOG_ROUTER_TLS_KEY"),
            max_body_bytes=int(env.get("MODELCATALOG_ROUTER_MAX_BODY_BYTES", cls.max_body_bytes)),
            queue_wait_seconds=float(env.get("MODELCATALOG_ROUTER_QUEUE_WAIT_SECONDS", cls.queue_wait_seconds)),
            connect_attempts=int(env.get("MODELCATALOG_ROUTER_CONNECT_ATTEMPTS", cls.connect_attempts)),
            upstream_url=env.get("MODELCATALOG_SERVERLESS_UPSTREAM_URL") or None,
            upstream_secret=env.get("MODELCATALOG_SERVERLESS_UPSTREAM_SECRET") or None,
            store=StoreSettings.from_env("MODELCATALOG_ROUTER_", env),
            store_fail_open=env.get("MODELCATALOG_ROUTER_STORE_FAIL_OPEN", "true").lower() != "false",
            default_max_tokens=int(env.get("MODELCATALOG_ROUTER_DEFAULT_MAX_TOKENS", cls.default_max_tokens)),
            safety=SafetySettings.from_env(env),
        )


def own_namespace() -> str | None:
    try:
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or None
    except OSError:
        return None
