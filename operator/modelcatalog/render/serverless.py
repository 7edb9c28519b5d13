"""ServerlessEndpoint -> its keys Secret; open-weight models -> one shared model pool per model.

Pure: which offer an endpoint gets (or why it is refused), the pool's objects, the pool namespace's
ingress policy, and the reference count, which is derived from the endpoints themselves (never
stored): a model's pool is desired exactly when some ServerlessEndpoint that is not being deleted
uses it, and a deleting endpoint's finalizer may go once the pool has been brought to a state that
no longer counts it. A restart between any two steps re-derives the same answer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from modelcatalog import GROUP, labels
from modelcatalog.api.base import Condition
from modelcatalog.api.catalog import (
    CatalogModelSpec,
    Collection,
    InstanceTypeSpec,
    RateLimits,
    ServerlessOption,
)
from modelcatalog.api.deployment import ModelDeploymentSpec
from modelcatalog.api.serverless import (
    Backend,
    BackendKind,
    LimitsStatus,
    PricingStatus,
    ServerlessEndpointSpec,
    ServerlessEndpointStatus,
    ServerlessPhase,
)
from modelcatalog.catalog import lifecycle
from modelcatalog.catalog.placement import unfit
from modelcatalog.kube.resources import resource
from modelcatalog.render import deployment as md
from modelcatalog.render import gateway
from modelcatalog.render.keys import Keys
from modelcatalog.render.objects import Owner, metadata
from modelcatalog.settings import Settings

KIND = "ServerlessEndpoint"
OWNS = (resource("v1", "Secret"),)
POOL_KIND = "ModelPool"  # the owner-kind label of a pool's objects; owner-name is the model
POOL_NETWORK_KIND = "ServerlessNamespace"  # the pool namespace's ingress policy
POOL_OWNS = (
    resource("apps/v1", "Deployment"),
    resource("v1", "Service"),
    resource("networking.k8s.io/v1", "NetworkPolicy"),
)
FINALIZER = f"{GROUP}/model-pool"
ENDPOINT_OWNER = "Endpoint"  # keys Secrets carry owner-kind=Endpoint, as ModelDeployment endpoints' do
POOL_INGRESS = "modelcatalog-pool-ingress"
SERVICE_PORT = 80
NOT_SET = "not set"
NAME_MAX = 63


def keys_secret_name(endpoint: str) -> str:
    return md.keys_secret_name(endpoint)


def pool_name(model: str) -> str:
    """`pool-<model>`, shortened with a hash when the model's name is long (a Service name is a DNS label)."""
    name = f"pool-{model}"
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"{name[: NAME_MAX - 9].rstrip('-')}-{digest}"


# Which offer an endpoint gets.


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


@dataclass(frozen=True)
class Offer:
    model_name: str
    model: CatalogModelSpec
    backend: BackendKind
    third_party: bool
    option: ServerlessOption  # the catalog's offer, or the platform's own (an empty one) for an override
    limits: LimitsStatus
    pricing: PricingStatus | None


def third_party(model: CatalogModelSpec, settings: Settings) -> bool:
    """The catalog's offer says (termsRequired); without one, models of other publishers than the platform's."""
    if model.deployment_options.serverless is not None:
        return model.deployment_options.serverless.terms_required
    return model.collection != Collection.OPENAI and model.publisher not in settings.first_party_publishers


def open_weights(model: CatalogModelSpec) -> bool:
    return model.weights is not None and model.deployment_options.managed_compute is not None


def limits_in_force(spec: ServerlessEndpointSpec, option: ServerlessOption, settings: Settings) -> LimitsStatus:
    """Per field: the endpoint's, else the model offer's defaults, else the platform's; `source` names the
    most specific one that set anything."""
    layers: list[tuple[str, RateLimits | None]] = [
        ("endpoint", spec.rate_limits),
        ("model", option.default_rate_limits),
    ]
    requests = next((lim.requests_per_minute for _, lim in layers if lim and lim.requests_per_minute), None)
    tokens = next((lim.tokens_per_minute for _, lim in layers if lim and lim.tokens_per_minute), None)
    source = next((name for name, lim in layers if lim and (lim.requests_per_minute or lim.tokens_per_minute)), None)
    return LimitsStatus(
        requests_per_minute=requests or settings.serverless_requests_per_minute,
        tokens_per_minute=tokens or settings.serverless_tokens_per_minute,
        source=source or "platform",
    )


def pricing(option: ServerlessOption) -> PricingStatus | None:
    prices = option.pricing
    if prices is None or (prices.input_per_1m_tokens is None and prices.output_per_1m_tokens is None):
        return None
    return PricingStatus(
        currency=prices.currency,
        input_per_1m_tokens=prices.input_per_1m_tokens or NOT_SET,
        output_per_1m_tokens=prices.output_per_1m_tokens or NOT_SET,
    )


def resolve(
    model_name: str,
    model: CatalogModelSpec | Exception | None,
    spec: ServerlessEndpointSpec,
    settings: Settings,
    today: date,
) -> Offer | Refusal:
    """The offer the endpoint gets, or the first refusal, each naming its fix."""
    if model is None:
        return Refusal(
            "ModelNotFound",
            f"CatalogModel {model_name} does not exist: name a model of the catalog (`kubectl get catalogmodels`)",
        )
    if isinstance(model, Exception):
        return Refusal("InvalidModel", f"CatalogModel {model_name} is malformed: {model}")
    override = model_name in settings.serverless_pool_models
    if override and not open_weights(model):
        return Refusal(
            "NoOpenWeights",
            f"CatalogModel {model_name} is listed in MODELCATALOG_SERVERLESS_POOL_MODELS but has no open weights"
            " and runtime to run on the pool: remove it from that setting",
        )
    catalog_option = model.deployment_options.serverless
    if catalog_option is None and not override:
        return Refusal(
            "NotOfferedServerless",
            f"CatalogModel {model_name} is not offered as a serverless API: deploy it with a ModelDeployment"
            " (managed compute), or ask the platform team to offer it on the pool"
            " (MODELCATALOG_SERVERLESS_POOL_MODELS)",
        )
    if lifecycle.stage_on(model.lifecycle, today) == "Retired":
        move_to = f": move to {model.lifecycle.replacement}" if model.lifecycle.replacement else ""
        return Refusal("ModelRetired", f"CatalogModel {model_name} is retired{move_to}; delete this endpoint")
    option = ServerlessOption() if override else catalog_option
    assert option is not None
    if not override and lifecycle.retired(model, lifecycle.SERVERLESS, today):
        own = catalog_option.lifecycle if catalog_option is not None else None
        replacement = (own.replacement if own is not None else None) or model.lifecycle.replacement
        move = f"move to {replacement}, or " if replacement else ""
        described = lifecycle.describe_option(model, lifecycle.SERVERLESS, today)
        return Refusal(
            "OfferRetired",
            f"the serverless offer of CatalogModel {model_name} is {described}: {move}deploy it with a ModelDeployment",
        )
    if option.regions and settings.region not in option.regions:
        return Refusal(
            "RegionNotOffered",
            f"CatalogModel {model_name} is offered serverless in {', '.join(option.regions)}, not in this cluster's"
            f" region {settings.region}: use a ModelDeployment, or another model",
        )
    party = third_party(model, settings)
    if party and not spec.accept_terms:
        return Refusal(
            "TermsNotAccepted",
            f"CatalogModel {model_name} is a third-party model ({model.publisher}): set spec.acceptTerms: true to"
            " accept the publisher's terms and prices",
        )
    backend = BackendKind.POOL if open_weights(model) else BackendKind.UPSTREAM
    if backend == BackendKind.UPSTREAM and not settings.serverless_upstream_url:
        return Refusal(
            "NoUpstream",
            f"CatalogModel {model_name} has no open weights to run on the pool and the platform has no upstream"
            " provider configured (MODELCATALOG_SERVERLESS_UPSTREAM_URL): ask the platform team",
        )
    # The catalog's prices and default limits hold for the platform's own offer too, when the catalog has them.
    priced = catalog_option or option
    return Offer(model_name, model, backend, party, option, limits_in_force(spec, priced, settings), pricing(priced))


def offer_notice(offer: Offer, settings: Settings, today: date) -> tuple[str, str | None, lifecycle.Notice | None]:
    """The lifecycle warning due for the offer's users (subject, replacement, notice): the platform's own pool
    follows the model's dates, a catalog offer its own dates or the model's, whichever are nearer."""
    model = offer.model
    if offer.model_name in settings.serverless_pool_models:
        return f"CatalogModel {offer.model_name}", model.lifecycle.replacement, lifecycle.notice(model.lifecycle, today)
    own = offer.option.lifecycle
    replacement = (own.replacement if own is not None else None) or model.lifecycle.replacement
    subject = f"the serverless offer of CatalogModel {offer.model_name}"
    return subject, replacement, lifecycle.option_notice(model, lifecycle.SERVERLESS, today)


# The reference count.


def uses_pool(body: Mapping[str, Any]) -> bool:
    """Counted by its model's pool: a ServerlessEndpoint not being deleted (its backend decided by the caller)."""
    return not body["metadata"].get("deletionTimestamp")


def pool_users(bodies: Iterable[Mapping[str, Any]], on_pool: Callable[[Mapping[str, Any]], bool]) -> list[str]:
    """`namespace/name` of each endpoint the pool counts: live, not deleting, and served by the pool."""
    return sorted(
        f"{b['metadata'].get('namespace')}/{b['metadata']['name']}" for b in bodies if uses_pool(b) and on_pool(b)
    )


def releasable(bodies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deleting endpoints still holding our finalizer: the pool no longer counts them once it is synced."""
    return [b for b in bodies if b["metadata"].get("deletionTimestamp") and FINALIZER in finalizers(b)]


def finalizers(body: Mapping[str, Any]) -> list[str]:
    return list(body["metadata"].get("finalizers") or [])


# The pool.


def pool_instance_type(
    model_name: str, model: CatalogModelSpec, types: Mapping[str, InstanceTypeSpec | Exception]
) -> str | None:
    """The smallest instance type that fits the model (least GPU memory, fewest GPUs, then by name)."""
    fitting = [
        (spec.gpu_memory_gib, spec.gpu.count if spec.gpu else 0, name)
        for name, spec in types.items()
        if isinstance(spec, InstanceTypeSpec) and unfit(model_name, model, name, spec) is None
    ]
    return min(fitting)[2] if fitting else None


def pool_labels(model: str) -> dict[str, str]:
    return labels.managed(POOL_KIND, model) | {labels.MODEL: model}


def pool_selector(model: str) -> dict[str, str]:
    return {labels.COMPONENT: labels.MODEL_POOL, labels.MODEL: model}


def render_pool(
    model_name: str, model: CatalogModelSpec, type_name: str, instance_type: InstanceTypeSpec, settings: Settings
) -> list[dict[str, Any]]:
    """The pool's Deployment and Service, the model server rendered as for a ModelDeployment."""
    name = pool_name(model_name)
    namespace = settings.serverless_namespace
    spec = ModelDeploymentSpec(
        model=model_name, instance_type=type_name, instance_count=settings.serverless_pool_replicas
    )
    inputs = md.DeploymentInputs(
        namespace=namespace,
        owner=Owner(POOL_KIND, name, ""),
        spec=spec,
        model_name=model_name,
        model=model,
        instance_type=instance_type,
        settings=settings,
    )
    pod = md.pod_spec(inputs)
    for constraint in pod.get("topologySpreadConstraints") or []:
        constraint["labelSelector"] = {"matchLabels": pool_selector(model_name)}
    meta = metadata(name, namespace, pool_labels(model_name), [])
    del meta["ownerReferences"]  # nothing in this namespace can own it: the endpoints' finalizers count it
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": settings.serverless_pool_replicas,
            "selector": {"matchLabels": pool_selector(model_name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "revisionHistoryLimit": 3,
            "template": {"metadata": {"labels": pool_labels(model_name) | pool_selector(model_name)}, "spec": pod},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": dict(meta),
        "spec": {
            "type": "ClusterIP",
            "selector": pool_selector(model_name),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def pool_network_policy(settings: Settings) -> dict[str, Any]:
    """Pool pods take traffic only from the serverless gateway's pods (this namespace): not from workspace
    routers, which would skip metering, limits and screening."""
    meta = metadata(POOL_INGRESS, settings.serverless_namespace, labels.managed(POOL_NETWORK_KIND, "pools"), [])
    del meta["ownerReferences"]
    gateway_pods = {"matchLabels": gateway.selector() | {labels.MANAGED_BY: labels.MANAGER}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": {labels.COMPONENT: labels.MODEL_POOL}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": gateway_pods}],
                    "ports": [{"port": settings.model_server_port, "protocol": "TCP"}],
                }
            ],
        },
    }


def keys_secret(namespace: str, owner: Owner, keys: Keys) -> dict[str, Any]:
    """Labelled like a ModelDeployment endpoint's keys Secret, so the workspace router finds it; owned by the
    endpoint (the same namespace), so it goes with it."""
    encoded = {slot: base64.b64encode(value.encode()).decode() for slot, value in keys.string_data().items()}
    secret_labels = labels.managed(ENDPOINT_OWNER, owner.name) | {labels.ENDPOINT: owner.name}
    meta = metadata(keys_secret_name(owner.name), namespace, secret_labels, [owner.reference()])
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": encoded}


# Status.


def pool_backend(
    model_name: str, settings: Settings, service: Mapping[str, Any] | None, gateway_address: str | None
) -> Backend:
    ip = ((service or {}).get("spec") or {}).get("clusterIP")
    address = f"{ip}:{SERVICE_PORT}" if ip and ip != "None" else None
    return Backend(
        kind=BackendKind.POOL,
        namespace=settings.serverless_namespace,
        service=pool_name(model_name),
        address=address,
        gateway=gateway_address,
        served_model=model_name,
    )


def upstream_backend(model_name: str, settings: Settings, gateway_address: str | None) -> Backend:
    """The URL and the Secret's name only: the credential stays in the Secret, read by the gateway alone."""
    return Backend(
        kind=BackendKind.UPSTREAM,
        url=settings.serverless_upstream_url,
        credential_secret=settings.serverless_upstream_secret,
        gateway=gateway_address,
        served_model=model_name,
    )


def refused_status(refusal: Refusal) -> ServerlessEndpointStatus:
    return ServerlessEndpointStatus(
        phase=ServerlessPhase.FAILED,
        conditions=[
            Condition.of("Accepted", False, refusal.reason, refusal.message),
            Condition.of("Ready", False, refusal.reason, refusal.message),
        ],
    )


def pool_ready_replicas(deployment: Mapping[str, Any] | None) -> int:
    return int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)


def offer_status(
    name: str,
    offer: Offer,
    url: str,
    backend: Backend,
    ready_replicas: int | None,
    problem: Refusal | None = None,
    gateway_ready: int = 0,
) -> ServerlessEndpointStatus:
    """`ready_replicas`: the pool's ready replicas (None for an upstream backend); `gateway_ready`: the serverless
    gateway's, which every request goes through."""
    accepted = Condition.of(
        "Accepted", True, "Accepted", f"served from the {backend.kind.lower()} of {offer.model_name}"
    )
    if problem is not None:
        ready, phase = Condition.of("Ready", False, problem.reason, problem.message), ServerlessPhase.FAILED
    elif not backend.gateway or not gateway_ready:
        message = f"the serverless gateway {gateway.NAME} has no address or no ready replica yet"
        ready, phase = Condition.of("Ready", False, "GatewayStarting", message), ServerlessPhase.PENDING
    elif backend.kind == BackendKind.UPSTREAM:
        message = f"the upstream provider answers through the serverless gateway ({gateway_ready} ready replica(s))"
        ready, phase = Condition.of("Ready", True, "UpstreamReady", message), ServerlessPhase.READY
    elif not backend.address:
        message = "the model pool's Service has no address yet"
        ready, phase = Condition.of("Ready", False, "PoolStarting", message), ServerlessPhase.PENDING
    elif not ready_replicas:
        message = f"the model pool {backend.service} has no ready replica yet"
        ready, phase = Condition.of("Ready", False, "PoolStarting", message), ServerlessPhase.PENDING
    else:
        message = f"the model pool {backend.service} has {ready_replicas} ready replica(s)"
        ready, phase = Condition.of("Ready", True, "PoolReady", message), ServerlessPhase.READY
    price = offer.pricing or PricingStatus(input_per_1m_tokens=NOT_SET, output_per_1m_tokens=NOT_SET)
    return ServerlessEndpointStatus(
        phase=phase,
        conditions=[accepted, ready],
        url=url,
        keys_secret=keys_secret_name(name),
        backend=backend,
        pricing=price,
        rate_limits=offer.limits,
    )
