"""Shared pieces of every kind: the camelCase base model, conditions, status, label selectors."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SLUG = r"^[a-z0-9]+([-.][a-z0-9]+)*$"
DECIMAL = r"^[0-9]+(\.[0-9]+)?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry: a CEL rule with the message a user sees when it fails."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = f".{field_path}"  # a JSONPath relative to the object the rule is on
    if reason:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class KubeModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Toggle(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class SafetyThreshold(StrEnum):
    """The lowest content-safety severity that is blocked (docs/content-safety.md)."""

    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KubeModel):
    """The standard Kubernetes condition shape, so `kubectl wait --for=condition=Ready` works."""

    type: str = Field(description="Condition type, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="One CamelCase word a program can act on.")
    message: str = Field(default="", description="What happened and what to do, for a person.")
    last_transition_time: str | None = Field(default=None, description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this condition was computed for."
    )

    @classmethod
    def of(cls, type_: str, ok: bool | None, reason: str, message: str = "") -> Condition:
        """A condition whose status is True, False, or Unknown (None)."""
        status = ConditionStatus.UNKNOWN if ok is None else ConditionStatus(str(ok))
        return cls(type=type_, status=status, reason=reason, message=message)

    @property
    def is_true(self) -> bool:
        return self.status == ConditionStatus.TRUE


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(previous: list[Condition], new: list[Condition], generation: int | None) -> list[Condition]:
    """The new conditions stamped with the generation; one whose status did not change keeps its time."""
    before = {c.type: c for c in previous}
    merged = []
    for cond in new:
        old = before.get(cond.type)
        kept = old is not None and old.status == cond.status and old.last_transition_time
        stamp = old.last_transition_time if kept and old is not None else now()
        merged.append(cond.model_copy(update={"last_transition_time": stamp, "observed_generation": generation}))
    return merged


class Status(KubeModel):
    """What every kind reports: the generation seen, a phase for printer columns, conditions."""

    model_config = ConfigDict(extra="ignore")
    observed_generation: int | None = Field(default=None, description="The last generation acted on.")
    phase: str | None = Field(default=None, description="A one-word summary for `kubectl get`.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Standard conditions; Ready summarises the others.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class LabelSelectorRequirement(KubeModel):
    key: str = Field(description="The label key.")
    operator: str = Field(description="In, NotIn, Exists or DoesNotExist.", pattern="^(In|NotIn|Exists|DoesNotExist)$")
    values: list[str] = Field(default_factory=list, description="Values for In and NotIn.")


class LabelSelector(KubeModel):
    """A standard Kubernetes label selector; an empty selector selects everything."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="Labels that must all match.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Set-based requirements that must all match."
    )


def describe(error: ValidationError, prefix: str = "spec") -> str:
    """Every problem of a validation error, each naming its field: `spec.autoscale.maxReplicas: ...`."""
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *item["loc"]))
        problems.append(f"{path}: {item['msg']}")
    return "; ".join(problems)
