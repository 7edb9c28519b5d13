"""Catalog manifests on disk (catalog/) or from the cluster: load, validate, derive labels.

Labels are derived from the spec so that `kubectl get catalogmodels -l ...` filters the same way the
CLI does; `normalize` writes them (and the derived GPU memory) and a test keeps catalog/ normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelcatalog import API_VERSION, labels
from modelcatalog.api.base import describe
from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec, min_gpu_memory_gib

CATALOG_DIR = Path(__file__).resolve().parents[3] / "catalog"
SPEC_MODELS: dict[str, type[CatalogModelSpec] | type[InstanceTypeSpec]] = {
    "CatalogModel": CatalogModelSpec,
    "InstanceType": InstanceTypeSpec,
}


class CatalogError(ValueError):
    """A manifest that does not validate; the message names the file, the object and the field."""


@dataclass(frozen=True)
class Entry:
    name: str
    spec: CatalogModelSpec
    labels: dict[str, str]


def load_manifests(directory: Path = CATALOG_DIR) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for path in sorted(directory.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                manifests.append(document)
                _check(document, path)
    return manifests


def _check(manifest: dict[str, Any], path: Path) -> None:
    kind = manifest.get("kind")
    if manifest.get("apiVersion") != API_VERSION or kind not in SPEC_MODELS:
        raise CatalogError(f"{path}: expected apiVersion {API_VERSION} and kind CatalogModel or InstanceType")
    parse_spec(manifest, where=str(path))


def parse_spec(manifest: dict[str, Any], where: str = "") -> CatalogModelSpec | InstanceTypeSpec:
    kind, name = manifest["kind"], manifest.get("metadata", {}).get("name", "?")
    try:
        return SPEC_MODELS[kind].model_validate(manifest.get("spec", {}))
    except ValidationError as error:
        raise CatalogError(f"{where + ': ' if where else ''}{kind} {name}: {describe(error)}") from error


def models(manifests: list[dict[str, Any]]) -> list[Entry]:
    """The CatalogModels among the manifests, parsed, sorted by name."""
    entries = []
    for manifest in manifests:
        if manifest["kind"] == "CatalogModel":
            spec = parse_spec(manifest)
            assert isinstance(spec, CatalogModelSpec)
            entries.append(Entry(manifest["metadata"]["name"], spec, manifest["metadata"].get("labels", {})))
    return sorted(entries, key=lambda e: e.name)


def instance_types(manifests: list[dict[str, Any]]) -> dict[str, InstanceTypeSpec]:
    found = {}
    for manifest in manifests:
        if manifest["kind"] == "InstanceType":
            spec = parse_spec(manifest)
            assert isinstance(spec, InstanceTypeSpec)
            found[manifest["metadata"]["name"]] = spec
    return found


def label_value(text: str) -> str:
    """A label value from free text: lower case, [a-z0-9-.], at most 63 characters."""
    value = "".join(c if c.isalnum() or c in "-." else "-" for c in text.lower()).strip("-.")
    return value[:63].rstrip("-.")


def catalog_labels(spec: CatalogModelSpec) -> dict[str, str]:
    options = spec.deployment_options
    derived = {
        labels.COLLECTION: spec.collection,
        labels.PUBLISHER: label_value(spec.publisher),
        labels.LICENSE: spec.license,
        labels.LIFECYCLE: label_value(str(spec.lifecycle.stage)),
        labels.MANAGED_COMPUTE: str(options.managed_compute is not None).lower(),
        labels.SERVERLESS: str(options.serverless is not None).lower(),
    }
    derived |= {labels.TASK_PREFIX + task: "true" for task in spec.tasks}
    derived |= {labels.FINE_TUNING_PREFIX + task: "true" for task in spec.fine_tuning_tasks}
    return derived


def normalize(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its derived fields set: catalog labels, and minGpuMemoryGiB from the weights."""
    if manifest["kind"] != "CatalogModel":
        return manifest
    spec = parse_spec(manifest)
    assert isinstance(spec, CatalogModelSpec)
    metadata = manifest.setdefault("metadata", {})
    own = {
        k: v
        for k, v in metadata.get("labels", {}).items()
        if not (k.startswith((labels.TASK_PREFIX, labels.FINE_TUNING_PREFIX)) or k in _DERIVED_KEYS)
    }
    metadata["labels"] = own | catalog_labels(spec)
    managed = manifest["spec"].get("deploymentOptions", {}).get("managedCompute")
    weights = spec.weights
    if managed is not None and weights is not None and weights.parameters_billions:
        managed["minGpuMemoryGiB"] = min_gpu_memory_gib(weights.parameters_billions, weights.dtype)
    return manifest


_DERIVED_KEYS = {
    labels.COLLECTION,
    labels.PUBLISHER,
    labels.LICENSE,
    labels.LIFECYCLE,
    labels.MANAGED_COMPUTE,
    labels.SERVERLESS,
}
