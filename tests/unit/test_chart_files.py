"""The chart's generated files match their sources: CRDs (api/), RBAC (render/rbac.py), catalog (catalog/)."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelcatalog import chartgen
from modelcatalog.catalog.seed import manifests
from modelcatalog.render.rbac import operator_rules


def test_the_charts_generated_files_are_up_to_date() -> None:
    stale = [
        relative
        for relative, content in chartgen.files().items()
        if not (chartgen.CHART / relative).exists() or (chartgen.CHART / relative).read_text() != content
    ]
    assert not stale, f"run `make chart`: {stale}"
    for directory in ("files/crds", "files/catalog"):
        extra = {f"{directory}/{p.name}" for p in (chartgen.CHART / directory).glob("*")} - set(chartgen.files())
        assert not extra, f"not generated any more, remove (or run `make chart`): {extra}"


def test_the_chart_holds_every_crd_of_crds_dir(repo: Path) -> None:
    for path in (repo / "crds").glob("*.yaml"):
        chart_copy = chartgen.CHART / "files/crds" / path.name
        assert yaml.safe_load(path.read_text()) == yaml.safe_load(chart_copy.read_text())


def test_the_charts_rbac_is_render_rbac() -> None:
    rbac = yaml.safe_load((chartgen.CHART / "files/rbac.yaml").read_text())
    assert rbac["operator"] == operator_rules()


def test_the_default_catalog_orders_instance_types_first() -> None:
    data = {p.name: p.read_text() for p in (chartgen.CHART / "files/catalog").glob("*.yaml")}
    kinds = [m["kind"] for m in manifests(data)]
    assert kinds.index("CatalogModel") > max(i for i, k in enumerate(kinds) if k == "InstanceType")
    assert not any(p.is_symlink() for p in (chartgen.CHART / "files").rglob("*"))
