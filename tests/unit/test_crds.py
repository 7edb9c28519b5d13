"""The checked-in CRDs are exactly what the pydantic models generate."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelcatalog.api.crdgen import all_crds
from modelcatalog.api.kinds import KINDS


def test_checked_in_crds_match_the_models(repo: Path) -> None:
    for manifest in all_crds():
        path = repo / "crds" / f"{manifest['metadata']['name']}.yaml"
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert yaml.safe_load(path.read_text()) == manifest, f"{path} differs from the models: run `make crds`"


def test_no_refs_and_every_property_has_a_type_and_description() -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node, where
            assert "anyOf" not in node, f"{where}: structural schemas need one type"
            for bound in ("exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(bound)
                assert value is None or isinstance(value, bool), f"{where}: OpenAPI v3.0 wants a boolean {bound}"
            for rule in node.get("x-kubernetes-validations", []):
                assert rule.get("fieldPath", ".").startswith("."), f"{where}: fieldPath must be a JSONPath"
            for name, prop in node.get("properties", {}).items():
                if where.endswith("openAPIV3Schema") and name == "metadata":
                    assert prop == {"type": "object"}, "the API server allows nothing more on metadata"
                    continue
                assert "type" in prop, f"{where}.{name} has no type"
                assert prop.get("description"), f"{where}.{name} has no description (kubectl explain shows it)"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    for manifest in all_crds():
        schema = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(schema, f"{manifest['metadata']['name']}.openAPIV3Schema")


def test_every_kind_is_in_the_modelcatalog_category_with_status_subresource() -> None:
    for kind, manifest in zip(KINDS, all_crds(), strict=True):
        assert manifest["spec"]["names"]["categories"] == ["modelcatalog"]
        assert "status" in manifest["spec"]["versions"][0]["subresources"], kind.kind
