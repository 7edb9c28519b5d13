"""What the webhook answers for one object: pure functions of the object and the catalog as the operator sees it.

The verdicts on a ModelDeployment are the reconcile's own (render/deployment_status.py `resolve()`, the one
placement rule), so a deployment the webhook admits is one the reconcile can place, and the reconcile still
reports what slipped in while the webhook was down (failurePolicy Ignore, docs/policy.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from modelcatalog.api.base import describe
from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec, LifecycleStage
from modelcatalog.api.deployment import ModelDeploymentSpec
from modelcatalog.api.serverless import ServerlessEndpointSpec
from modelcatalog.catalog import lifecycle
from modelcatalog.render import quota, serverless
from modelcatalog.render.deployment_status import Placement, Problem, resolve, stage_of
from modelcatalog.settings import Settings

CREATE = "CREATE"
UPDATE = "UPDATE"
# Which field a reconcile verdict is about, so the message names it.
FIELDS = {"ModelResolved": "spec.model", "InstanceTypeResolved": "spec.instanceType"}
SERVERLESS_FIELDS = {"TermsNotAccepted": "spec.acceptTerms"}  # every other refusal is about spec.model


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    message: str = ""
    reason: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def refuse(cls, reason: str, where: str, message: str) -> Verdict:
        return cls(False, f"{where}: {message}", reason)


ALLOW = Verdict(True)
ModelLookup = Callable[[str], CatalogModelSpec | ValidationError | None]


@dataclass(frozen=True)
class Catalog:
    """The catalog as of `today`, from the operator's watch caches."""

    model: ModelLookup
    types: Mapping[str, InstanceTypeSpec | ValidationError]
    today: date
    require_pinned_revision: bool = False
    settings: Settings = field(default_factory=Settings)  # the platform's pool offers, its region


def _spec_changed(obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    return old is None or (old.get("spec") or {}) != (obj.get("spec") or {})


def _successor(model: CatalogModelSpec) -> str:
    replacement = model.lifecycle.replacement
    return f"; use {replacement} instead" if replacement else ""


def review_deployment(
    operation: str,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    catalog: Catalog,
    endpoint_weights: Mapping[str, int],
    workspace: quota.Workspace | None = None,
) -> Verdict:
    """`endpoint_weights`: trafficPercent of every other live deployment of the same endpoint, by name;
    `workspace`: the namespace's GPU quotas and what its other ModelDeployments need."""
    if operation == UPDATE and not _spec_changed(obj, old):
        return ALLOW  # labels, annotations, finalizers: never the webhook's business
    try:
        spec = ModelDeploymentSpec.model_validate(obj.get("spec") or {})
    except ValidationError as error:  # the schema lets through what pydantic refuses: say it here too
        return Verdict(False, describe(error), "InvalidSpec")
    model = catalog.model(spec.model)
    placed = resolve(spec.model, model, spec.instance_type, catalog.types, catalog.require_pinned_revision,
                     catalog.today)  # fmt: skip
    if isinstance(placed, Problem):
        fix = " (change spec.model to a model that is not retired)" if placed.reason == "ModelRetired" else ""
        return Verdict.refuse(placed.reason, FIELDS.get(placed.condition, "spec"), placed.message + fix)
    warnings = list(_lifecycle_warnings(spec.model, placed, catalog.today))
    stage = stage_of(placed.model, catalog.today)
    if stage == LifecycleStage.DEPRECATED and operation == CREATE:
        message = (
            f"CatalogModel {spec.model} is deprecated ({lifecycle.describe(placed.model.lifecycle, catalog.today)}):"
            f" no new deployments{_successor(placed.model)}; existing deployments keep serving until retirement"
        )
        return Verdict.refuse("ModelDeprecated", "spec.model", message)
    weight_problem = _weights(obj, spec, endpoint_weights)
    if weight_problem is not None:
        return weight_problem
    quota_problem = _gpu_quota(operation, obj, old, spec, placed, workspace or quota.Workspace())
    if quota_problem is not None:
        return quota_problem
    return Verdict(True, warnings=tuple(warnings))


def _gpu_quota(
    operation: str,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    spec: ModelDeploymentSpec,
    placed: Placement,
    workspace: quota.Workspace,
) -> Verdict | None:
    """Over the namespace's GPU quota; an update that does not raise the deployment's GPUs always passes."""
    wanted = quota.need(spec, placed.instance_type)
    if not workspace.quotas or not wanted.gpus:
        return None
    if operation == UPDATE and old is not None:
        try:
            before = ModelDeploymentSpec.model_validate(old.get("spec") or {})
        except ValidationError:
            before = None
        same_type = before is not None and before.instance_type == spec.instance_type
        if same_type and before is not None and quota.need(before, placed.instance_type).gpus >= wanted.gpus:
            return None
    namespace = obj["metadata"].get("namespace") or ""
    found = quota.refusal(namespace, wanted, spec.instance_type, workspace)
    if found is None:
        return None
    where, message = found
    return Verdict.refuse("GPUQuotaExceeded", where, message)


def _lifecycle_warnings(name: str, placed: Placement, today: date) -> list[str]:
    stage = stage_of(placed.model, today)
    described = lifecycle.describe(placed.model.lifecycle, today)
    if stage == LifecycleStage.DEPRECATED:
        return [f"CatalogModel {name} is {described}: plan the move{_successor(placed.model)}"]
    if stage == LifecycleStage.LEGACY:
        return [f"CatalogModel {name} is {described}{_successor(placed.model)}"]
    return []


def _weights(obj: dict[str, Any], spec: ModelDeploymentSpec, others: Mapping[str, int]) -> Verdict | None:
    name = obj["metadata"].get("name", "")
    endpoint = spec.endpoint_name or name
    total = spec.traffic_percent + sum(w for other, w in others.items() if other != name)
    if total <= 100:
        return None
    listed = ", ".join(f"{other}={w}" for other, w in sorted(others.items()) if other != name)
    room = 100 - (total - spec.traffic_percent)
    return Verdict.refuse(
        "TrafficOver100",
        "spec.trafficPercent",
        f"endpoint {endpoint} would take {total}% of its traffic ({listed}, this one {spec.traffic_percent}):"
        f" set it to at most {max(room, 0)}, or lower another deployment's trafficPercent first",
    )


def review_serverless(operation: str, obj: dict[str, Any], old: dict[str, Any] | None, catalog: Catalog) -> Verdict:
    """The reconcile's rule (render/serverless.py `resolve()`), plus what only admission can say: no new
    endpoints on a deprecated offer, and a warning on a deprecated or legacy one."""
    if operation == UPDATE and not _spec_changed(obj, old):
        return ALLOW
    try:
        spec = ServerlessEndpointSpec.model_validate(obj.get("spec") or {})
    except ValidationError as error:
        return Verdict(False, describe(error), "InvalidSpec")
    found = serverless.resolve(spec.model, catalog.model(spec.model), spec, catalog.settings, catalog.today)
    if isinstance(found, serverless.Refusal):
        return Verdict.refuse(found.reason, SERVERLESS_FIELDS.get(found.reason, "spec.model"), found.message)
    if spec.model in catalog.settings.serverless_pool_models:
        return ALLOW  # the platform's own offer replaces the catalog's, and its lifecycle
    return _offer_stage(operation, found.model_name, found.model, catalog.today)


def _offer_stage(operation: str, name: str, model: CatalogModelSpec, today: date) -> Verdict:
    stage = lifecycle.option_stage(model, lifecycle.SERVERLESS, today)
    if stage not in (LifecycleStage.DEPRECATED, LifecycleStage.LEGACY):
        return ALLOW
    described = lifecycle.describe_option(model, lifecycle.SERVERLESS, today)
    described = f"the serverless offer of CatalogModel {name} is {described}"
    if stage == LifecycleStage.DEPRECATED and operation == CREATE:
        return Verdict.refuse("ModelDeprecated", "spec.model", f"{described}: no new endpoints{_successor(model)}")
    return Verdict(True, warnings=(f"{described}{_successor(model)}",))


def response(uid: str, verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview (admission.k8s.io/v1) the API server reads."""
    answer: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        answer["status"] = {"code": 403, "reason": "Forbidden", "message": verdict.message}
    if verdict.warnings:
        answer["warnings"] = list(verdict.warnings)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}
