"""The router's settings, from its environment (the Deployment sets them) and optional flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from modelcatalog.router.safety.settings import SafetySettings

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# How long a request waits for a free slot when every pod is at maxConcurrentRequestsPerInstance.
DEFAULT_QUEUE_WAIT_SECONDS = 2.0
# Pods tried per request when connections are refused (the first one included).
DEFAULT_CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 5.0


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
            safety=SafetySettings.from_env(env),
        )


def own_namespace() -> str | None:
    try:
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or None
    except OSError:
        return None
