"""The router's picture of its namespace: endpoints -> deployments (weight, auth mode, limits) -> pods.

A ServerlessEndpoint is an endpoint of one synthetic deployment (`serverless:<name>`) whose one "pod" is
the serverless gateway's Service address, which the operator writes into the endpoint's status.backend
(`gateway`): the router needs no rights in the serverless namespace, and the gateway, not the router,
holds the pool's address, the upstream credential and the metering (router/gateway.py).

Pure and in memory; the watches (watch.py) or a static file (static.py) fill it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from modelcatalog import labels
from modelcatalog.render.keys import SLOTS, Keys

KEY = "key"
TOKEN = "token"  # noqa: S105 (an auth mode, not a secret)
DEFAULT_TIMEOUT_SECONDS = 90.0
DEFAULT_MAX_CONCURRENT = 16
MODEL_SERVER_PORT_NAME = "http"
SERVERLESS_PREFIX = "serverless:"


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_concurrent: int = DEFAULT_MAX_CONCURRENT


@dataclass(frozen=True)
class ModelLifecycle:
    """What the operator wrote in the ModelDeployment's status.modelLifecycle (dates YYYY-MM-DD)."""

    stage: str
    deprecation_date: str | None = None
    retirement_date: str | None = None
    replacement: str | None = None

    @property
    def retired(self) -> bool:
        return self.stage == "Retired"


@dataclass(frozen=True)
class Deployment:
    name: str
    endpoint: str
    weight: int = 100
    auth_mode: str = KEY
    limits: Limits = field(default_factory=Limits)
    served_model: str | None = None
    lifecycle: ModelLifecycle | None = None
    # spec.contentSafety (None: the spec does not say) and spec.contentSafetyThreshold (router/safety).
    content_safety: bool | None = None
    safety_threshold: str | None = None


@dataclass(frozen=True)
class Pod:
    name: str
    deployment: str
    ip: str
    port: int
    ready: bool = True

    @property
    def target(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Endpoint:
    name: str
    deployments: tuple[Deployment, ...]
    keys: Keys | None

    @property
    def auth_mode(self) -> str:
        """Token mode only when every deployment asks for it; a keys Secret exists otherwise."""
        return TOKEN if all(d.auth_mode == TOKEN for d in self.deployments) else KEY

    def deployment(self, name: str) -> Deployment | None:
        return next((d for d in self.deployments if d.name == name), None)


@dataclass(frozen=True)
class Metering:
    """What the operator wrote in a ServerlessEndpoint's status for the router to meter and limit it by."""

    namespace: str
    uid: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    input_price: Decimal | None = None  # per 1M tokens
    output_price: Decimal | None = None


@dataclass(frozen=True)
class Serverless:
    """A ServerlessEndpoint served through the serverless gateway at `address` (host:port), or not yet (None)."""

    name: str
    model: str
    address: str | None = None
    content_safety: bool | None = None
    safety_threshold: str | None = None

    @property
    def deployment(self) -> Deployment:
        return Deployment(
            name=SERVERLESS_PREFIX + self.name,
            endpoint=self.name,
            served_model=self.model,
            content_safety=self.content_safety,
            safety_threshold=self.safety_threshold,
        )


def is_serverless(deployment: Deployment) -> bool:
    return deployment.name.startswith(SERVERLESS_PREFIX)


@dataclass
class ClusterState:
    deployments: dict[str, Deployment] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    keys: dict[str, Keys] = field(default_factory=dict)
    serverless: dict[str, Serverless] = field(default_factory=dict)
    synced: bool = False
    _by_deployment: dict[str, dict[str, Pod]] = field(default_factory=dict, repr=False)

    def set_deployment(self, deployment: Deployment) -> None:
        self.deployments[deployment.name] = deployment

    def remove_deployment(self, name: str) -> None:
        self.deployments.pop(name, None)

    def set_pod(self, pod: Pod) -> None:
        self.remove_pod(pod.name)
        self.pods[pod.name] = pod
        self._by_deployment.setdefault(pod.deployment, {})[pod.name] = pod

    def remove_pod(self, name: str) -> None:
        old = self.pods.pop(name, None)
        if old is not None:
            self._by_deployment.get(old.deployment, {}).pop(name, None)

    def set_keys(self, endpoint: str, keys: Keys | None) -> None:
        if keys is None:
            self.keys.pop(endpoint, None)
        else:
            self.keys[endpoint] = keys

    def set_serverless(self, endpoint: Serverless) -> None:
        self.serverless[endpoint.name] = endpoint

    def remove_serverless(self, name: str) -> None:
        self.serverless.pop(name, None)

    def clear(self) -> None:
        self.serverless.clear()
        self.deployments.clear()
        self.pods.clear()
        self.keys.clear()
        self._by_deployment.clear()

    def endpoint(self, name: str) -> Endpoint | None:
        deployments = tuple(sorted((d for d in self.deployments.values() if d.endpoint == name), key=_by_name))
        if not deployments and name in self.serverless:
            deployments = (self.serverless[name].deployment,)
        if not deployments:
            return None
        return Endpoint(name, deployments, self.keys.get(name))

    def endpoint_names(self) -> list[str]:
        return sorted({d.endpoint for d in self.deployments.values()} | set(self.serverless))

    def ready_pods(self, deployment: str) -> list[Pod]:
        if deployment.startswith(SERVERLESS_PREFIX):
            found = self.serverless.get(deployment.removeprefix(SERVERLESS_PREFIX))
            if found is None or not found.address:
                return []
            host, _, port = found.address.rpartition(":")
            return [Pod("serverless-gateway", deployment, host.strip("[]"), int(port))]
        return [p for p in self._by_deployment.get(deployment, {}).values() if p.ready]


def _by_name(deployment: Deployment) -> str:
    return deployment.name


def deployment_from_object(obj: dict[str, Any]) -> Deployment:
    """A ModelDeployment as the router needs it, read leniently (fields it does not use are ignored)."""
    name = obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    settings = spec.get("requestSettings") or {}
    limits = Limits(
        float(settings.get("requestTimeoutSeconds", DEFAULT_TIMEOUT_SECONDS)),
        int(settings.get("maxConcurrentRequestsPerInstance", DEFAULT_MAX_CONCURRENT)),
    )
    return Deployment(
        name=name,
        endpoint=spec.get("endpointName") or name,
        weight=int(spec.get("trafficPercent", 100)),
        auth_mode=TOKEN if spec.get("authMode") == TOKEN else KEY,
        limits=limits,
        served_model=spec.get("model"),
        lifecycle=lifecycle_from_status(obj.get("status") or {}),
        content_safety=spec.get("contentSafety") == "Enabled",
        safety_threshold=spec.get("contentSafetyThreshold"),
    )


def lifecycle_from_status(status: dict[str, Any]) -> ModelLifecycle | None:
    found = status.get("modelLifecycle")
    if not isinstance(found, dict) or not isinstance(found.get("stage"), str):
        return None
    return ModelLifecycle(
        found["stage"], found.get("deprecationDate"), found.get("retirementDate"), found.get("replacement")
    )


def serverless_from_object(obj: dict[str, Any]) -> Serverless | None:
    """A ServerlessEndpoint the router serves: one the operator accepted (status.backend, a pool or an upstream
    provider, both behind the gateway); None for a refused one."""
    meta = obj.get("metadata") or {}
    backend = (obj.get("status") or {}).get("backend") or {}
    model = backend.get("servedModel") or (obj.get("spec") or {}).get("model")
    if backend.get("kind") not in ("Pool", "Upstream") or not model or meta.get("deletionTimestamp"):
        return None
    address = backend.get("gateway")
    valid = isinstance(address, str) and address.rpartition(":")[2].isdigit()
    spec = obj.get("spec") or {}
    toggle = spec.get("contentSafety")
    screened = None if toggle not in ("Enabled", "Disabled") else toggle == "Enabled"
    threshold = spec.get("contentSafetyThreshold")
    return Serverless(meta["name"], str(model), address if valid else None, screened, threshold)


def metering_from_object(obj: dict[str, Any]) -> Metering:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    limits = status.get("rateLimits") or {}
    prices = status.get("pricing") or {}
    return Metering(
        namespace=str(meta.get("namespace") or ""),
        uid=str(meta.get("uid") or ""),
        requests_per_minute=_positive(limits.get("requestsPerMinute")),
        tokens_per_minute=_positive(limits.get("tokensPerMinute")),
        input_price=_price(prices.get("inputPer1MTokens")),
        output_price=_price(prices.get("outputPer1MTokens")),
    )


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _price(value: object) -> Decimal | None:
    """A price the operator wrote ("0.15"), or None ("not set", absent)."""
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None


def pod_from_object(obj: dict[str, Any]) -> Pod | None:
    """A model-server pod, or None when it names no deployment or exposes no port."""
    meta = obj.get("metadata") or {}
    deployment = (meta.get("labels") or {}).get(labels.DEPLOYMENT)
    port = container_port(obj.get("spec") or {})
    if not deployment or port is None:
        return None
    status = obj.get("status") or {}
    ip = status.get("podIP") or ""
    ready = bool(ip) and not meta.get("deletionTimestamp") and _condition_true(status, "Ready")
    return Pod(meta["name"], deployment, ip, port, ready)


def container_port(pod_spec: dict[str, Any]) -> int | None:
    """The port named `http` if any container has one, else the first declared port."""
    ports = [p for c in pod_spec.get("containers") or [] for p in c.get("ports") or []]
    named = [p for p in ports if p.get("name") == MODEL_SERVER_PORT_NAME]
    chosen = (named or ports or [None])[0]
    return int(chosen["containerPort"]) if chosen else None


def keys_from_secret(obj: dict[str, Any]) -> tuple[str, Keys | None]:
    """The endpoint a keys Secret belongs to and its keys (None when incomplete or malformed)."""
    meta = obj.get("metadata") or {}
    endpoint = (meta.get("labels") or {}).get(labels.OWNER_NAME) or meta.get("name", "").removesuffix("-keys")
    try:
        return endpoint, Keys.from_secret(obj)
    except (binascii.Error, UnicodeDecodeError, TypeError):
        return endpoint, None


def encoded_keys(keys: Keys) -> dict[str, str]:
    return {slot: base64.b64encode(getattr(keys, slot).encode()).decode() for slot in SLOTS}


def _condition_true(status: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])
