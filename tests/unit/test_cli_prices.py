"""Prices on cards and in compare ("not set" where none is), and `deployments list` with each one's cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog.cli.errors import ExitCode
from tests.unit.fake_apiserver import fake_apiserver
from tests.unit.test_cli_models import API, MANIFESTS, no_real_cluster, run

__all__ = ["no_real_cluster"]

PRICED_TYPES = {"a100-1": "3.40", "a10-2": "1.25"}  # this test's own figures, not the catalog's


@pytest.fixture
def priced(tmp_path: Path) -> Path:
    manifests = yaml.safe_load(yaml.safe_dump(MANIFESTS))
    for manifest in manifests:
        if manifest["metadata"]["name"] in PRICED_TYPES:
            manifest["spec"]["pricing"] = {"currency": "USD", "perHour": PRICED_TYPES[manifest["metadata"]["name"]]}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump_all(manifests))
    return tmp_path


def test_the_card_shows_token_and_hourly_prices_with_units_or_not_set(
    capsys: pytest.CaptureFixture[str], priced: Path
) -> None:
    _, card, _ = run(capsys, "models", "show", "llama-3-8b-instruct", "--catalog-dir", priced)
    assert "input 0.30 USD, output 0.61 USD per 1M tokens" in card
    types = {line.split()[0]: line for line in card.splitlines()[-3:]}
    assert types["a100-1"].endswith("3.40 USD/hour")
    assert types["a10-2"].endswith("1.25 USD/hour")
    _, card, _ = run(capsys, "models", "show", "phi-3-mini", "--catalog-dir", priced)
    assert any(line.split()[0] == "t4-1" and line.endswith("not set") for line in card.splitlines() if line.strip())
    _, card, _ = run(capsys, "models", "show", "gpt-4o", "--catalog-dir", priced)
    assert "Price:                not set" in card


def test_compare_shows_prices_with_their_unit_and_not_set(capsys: pytest.CaptureFixture[str], priced: Path) -> None:
    _, out, _ = run(capsys, "models", "compare", "llama-3-8b-instruct", "gpt-4o", "--catalog-dir", priced)
    row = next(line for line in out.splitlines() if line.startswith("price input"))
    assert row.split()[:6] == ["price", "input", "(USD", "per", "1M", "tokens)"]
    assert row.split()[6:] == ["0.3", "not", "set"]


def deployment(name: str, namespace: str, instance_type: str, count: int, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelcatalog.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": "llama-3-8b-instruct", "instanceType": instance_type, "instanceCount": count, **extra},
        "status": {"phase": "Ready", "replicas": 4},
    }


DEPLOYMENTS = [
    deployment("chat", "team-a", "a100-1", 3),
    deployment("embed", "team-a", "t4-1", 2),  # no price set for t4-1
    deployment("burst", "team-b", "a10-2", 1, autoscale={"minReplicas": 1, "maxReplicas": 8}),  # 4 replicas now
]


def types_list() -> dict[str, Any]:
    items = [m for m in MANIFESTS if m["kind"] == "InstanceType"]
    items = [m | {"spec": m["spec"] | {"pricing": {"perHour": PRICED_TYPES[m["metadata"]["name"]]}}}
             if m["metadata"]["name"] in PRICED_TYPES else m for m in items]  # fmt: skip
    return {"kind": "InstanceTypeList", "items": items}


def test_deployments_list_shows_the_cost_per_hour_from_the_cluster(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with fake_apiserver() as server:
        server.answer("GET", f"{API}/instancetypes", types_list())
        server.answer("GET", f"{API}/modeldeployments", {"items": DEPLOYMENTS})
        server.answer("GET", f"{API}/namespaces/team-a/modeldeployments", {"items": DEPLOYMENTS[:2]})
        kubeconfig = server.kubeconfig(tmp_path)
        code, out, err = run(capsys, "deployments", "list", "-A", "--kubeconfig", kubeconfig)
        rows = {line.split()[1]: " ".join(line.split()) for line in out.splitlines()[1:]}
        assert code == ExitCode.OK, err
        assert out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
        assert rows["chat"] == "team-a chat llama-3-8b-instruct a100-1 3 3.40 USD/hour 10.20 USD/hour Ready"
        assert rows["embed"].endswith("t4-1 2 not set not set Ready")
        assert rows["burst"].endswith("a10-2 4 1.25 USD/hour 5.00 USD/hour Ready")  # autoscaled: 4 replicas run
        assert "total: 15.20 USD/hour for 3 deployment(s) (1 without a price: not counted)" in err
        code, out, _ = run(capsys, "deployments", "list", "-n", "team-a", "--kubeconfig", kubeconfig, "-o", "json")
        data = json.loads(out)
        assert (data["kind"], [d["metadata"]["name"] for d in data["items"]]) == ("List", ["chat", "embed"])
        _, out, _ = run(capsys, "deployments", "list", "-n", "team-a", "--kubeconfig", kubeconfig, "-o", "name")
        assert out.split() == ["modeldeployment.modelcatalog.io/chat", "modeldeployment.modelcatalog.io/embed"]
        code, out, err = run(capsys, "deployments", "list", "-n", "empty", "--kubeconfig", kubeconfig)
    assert code == ExitCode.ERROR  # no answer for that namespace: the fake server says 404, as without the CRD
    assert "no ModelDeployment CRD" in err


def test_deployments_list_without_a_cluster_fails_at_run_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "deployments", "list")
    assert code == ExitCode.ERROR
    assert "no kubeconfig" in err
