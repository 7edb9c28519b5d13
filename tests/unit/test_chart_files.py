"""The chart's generated files match their sources: CRDs (api/), RBAC (render/rbac.py), catalog (catalog/),
admission webhook and policies (policy/)."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelcatalog import chartgen
from modelcatalog.catalog.seed import manifests
from modelcatalog.render.rbac import operator_rules, webhook_rules
from modelcatalog.settings import Settings


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
    assert rbac["webhook"] == webhook_rules()


def test_the_webhook_configuration_is_granted_by_name_only() -> None:
    """The operator patches the caBundle of one ValidatingWebhookConfiguration: no rule names the kind unnamed."""
    names = {"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}
    assert not any(names & set(rule["resources"]) for rule in operator_rules())
    (rule,) = webhook_rules()["cluster"]
    assert rule["resourceNames"] == [Settings().webhook_configuration] and rule["verbs"] == ["get", "patch"]


def test_the_charts_policy_is_policy_dir(repo: Path) -> None:
    policy = yaml.safe_load((chartgen.CHART / "files/policy.yaml").read_text())
    assert policy["webhook"] == yaml.safe_load((repo / "policy/webhook.yaml").read_text())
    assert policy["params"] == yaml.safe_load((repo / "policy/params.yaml").read_text())
    kinds = sorted((p["kind"], p["metadata"]["name"]) for p in policy["policies"])
    expected = sorted(
        (d["kind"], d["metadata"]["name"])
        for path in (repo / "policy").glob("*.yaml")
        if path.name not in ("webhook.yaml", "params.yaml")
        for d in yaml.safe_load_all(path.read_text())
    )
    assert kinds == expected and len(kinds) == 4
    # What docs/policy.md decided: the operator's absence never blocks an apply, and it is noticed quickly.
    for hook in policy["webhook"]["webhooks"]:
        assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] <= 5
        assert "caBundle" not in hook["clientConfig"], "the operator writes the caBundle"


def test_the_default_catalog_orders_instance_types_first() -> None:
    data = {p.name: p.read_text() for p in (chartgen.CHART / "files/catalog").glob("*.yaml")}
    kinds = [m["kind"] for m in manifests(data)]
    assert kinds.index("CatalogModel") > max(i for i, k in enumerate(kinds) if k == "InstanceType")
    assert not any(p.is_symlink() for p in (chartgen.CHART / "files").rglob("*"))


def test_every_platform_setting_can_be_given_through_the_chart() -> None:
    """Each MODELCATALOG_* variable settings.py reads is set by the chart's templates, comes from the settings
    ConfigMap, or is a key of the `settings` value that values.schema.json accepts."""
    import json
    import re

    from tests.conftest import REPO

    read = set(
        re.findall(r'"MODELCATALOG_([A-Z][A-Z_]*[A-Z])"', (REPO / "operator/modelcatalog/settings.py").read_text())
    )
    templates = "".join(p.read_text() for p in (REPO / "charts/modelcatalog/templates").glob("*.yaml"))
    by_chart = set(re.findall(r"MODELCATALOG_([A-Z][A-Z_]*[A-Z])", templates))
    schema = json.loads((REPO / "charts/modelcatalog/values.schema.json").read_text())
    accepted = set(schema["properties"]["settings"]["propertyNames"]["enum"])
    from_configmap = {"REGION", "CLOCK_OFFSET_DAYS"}
    assert read - by_chart - from_configmap - accepted == set()
