"""CustomResourceDefinitions generated from the pydantic models: the single source of the schemas."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from modelcatalog import GROUP, VERSION
from modelcatalog.api.kinds import CATEGORY, KINDS, Kind

DROPPED_KEYS = {"title", "$defs"}


class _KubeSchema(GenerateJsonSchema):
    """Gives fields with a default factory the default the API server applies: the whole defaulted object,
    since the API server checks a default against the CEL rules without filling nested defaults first."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        if "default_factory" not in schema:
            return super().default_schema(schema)
        value = schema["default_factory"]()  # type: ignore[call-arg]
        json_schema = self.generate_inner(schema["schema"])
        json_schema["default"] = (
            value.model_dump(by_alias=True, exclude_none=True, mode="json") if isinstance(value, BaseModel) else value
        )
        return json_schema


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI v3 structural schema: $refs inlined, optional (nullable) fields made plain."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_KubeSchema)
    cleaned: dict[str, Any] = _clean(raw, raw.get("$defs", {}))
    return cleaned


def _clean(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_clean(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = copy.copy(node)
    options = node.get("anyOf")
    if options is not None:
        non_null = [o for o in options if o.get("type") != "null"]
        if len(non_null) == 1:
            del node["anyOf"]
            node = {**non_null[0], **node}
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        node = {**target, **node}
    if node.get("default", ...) is None:
        del node["default"]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(node.get(exclusive), int | float) and not isinstance(node[exclusive], bool):
            node[bound], node[exclusive] = node[exclusive], True  # OpenAPI v3.0 spells it this way
    out = {k: _clean(v, defs) for k, v in node.items() if k not in DROPPED_KEYS}
    if "properties" in out:
        out["properties"] = {name: _clean(v, defs) for name, v in node["properties"].items()}
    if out.get("type") == "object" and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def crd(kind: Kind) -> dict[str, Any]:
    spec_schema = structural(kind.spec)
    status_schema = structural(kind.status)
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": f"{GROUP}/{VERSION}"},
            "kind": {"type": "string", "description": kind.kind},
            "metadata": {"type": "object"},  # the API server allows nothing more here
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if kind.name_rules:
        root["x-kubernetes-validations"] = list(kind.name_rules)
    subresources: dict[str, Any] = {"status": {}}
    if kind.scale:
        subresources["scale"] = dict(kind.scale)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "modelcatalog"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": subresources,
                    "additionalPrinterColumns": list(kind.columns),
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(kind) for kind in KINDS]


def write(directory: str = "crds") -> list[str]:
    """Write one file per CRD; returns the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for manifest in all_crds():
        path = out / f"{manifest['metadata']['name']}.yaml"
        path.write_text("# Generated from operator/modelcatalog/api by `make crds`; do not edit.\n"
                        + yaml.safe_dump(manifest, sort_keys=False, width=120))  # fmt: skip
        paths.append(str(path))
    return paths


if __name__ == "__main__":
    print("\n".join(write()))
