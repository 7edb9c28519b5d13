"""The API server itself enforces the schemas and CEL rules generated from the pydantic models."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from modelcatalog.catalog.files import load_manifests
from tests.conftest import REPO
from tests.integration.kube import Kube

API = "modelcatalog.io/v1alpha1"


def obj(kind: str, spec: dict[str, Any], name: str = "x") -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}


def md(**spec: Any) -> dict[str, Any]:
    return obj(
        "ModelDeployment", {"model": "meta-llama-3-8b-instruct", "instanceType": "standard-nc24ads-a100-v4"} | spec
    )


def wsn(**spec: Any) -> dict[str, Any]:
    return obj("WorkspaceNetwork", spec, name="workspace")


def create(kube: Kube, namespace: str, manifest: dict[str, Any], dry_run: bool = True) -> tuple[bool, str]:
    args = ["create", "-n", namespace, "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    result = kube.kubectl(*args, stdin=yaml.safe_dump(manifest), check=False)
    return result.returncode == 0, result.stderr


def test_the_default_catalog_is_accepted_and_listed_by_category(installed: Kube) -> None:
    manifests = load_manifests(REPO / "catalog")
    models = installed.get_json("catalogmodels")["items"]
    types = installed.get_json("instancetypes")["items"]
    assert {m["metadata"]["name"] for m in models} == {
        m["metadata"]["name"] for m in manifests if m["kind"] == "CatalogModel"
    }
    assert len(types) == sum(1 for m in manifests if m["kind"] == "InstanceType")
    everything = installed.kubectl("get", "modelcatalog", "-o", "name").stdout.split()
    assert "catalogmodel.modelcatalog.io/meta-llama-3-8b-instruct" in everything
    assert "instancetype.modelcatalog.io/standard-nc24ads-a100-v4" in everything


def test_catalog_labels_filter_with_kubectl(installed: Kube) -> None:
    serverless_chat = installed.kubectl(
        "get", "catalogmodels", "-o", "name",
        "-l", "modelcatalog.io/serverless=true,task.modelcatalog.io/chat-completion=true,"
        "modelcatalog.io/publisher=cohere",
    ).stdout.split()  # fmt: skip
    assert serverless_chat and all("cohere-command" in name for name in serverless_chat)


GOOD_AND_BAD = [
    (md(autoscale={"minReplicas": 3, "maxReplicas": 2}, instanceCount=3),
     "autoscale.minReplicas must be less than or equal to autoscale.maxReplicas"),
    (md(autoscale={"minReplicas": 1, "maxReplicas": 2}, instanceCount=5),
     "instanceCount must lie within autoscale.minReplicas and autoscale.maxReplicas"),
    (md(trafficPercent=150), "spec.trafficPercent: Invalid value: 150"),
    (md(instanceCount=-1), "spec.instanceCount: Invalid value: -1"),
    (md(authMode="password"), 'spec.authMode: Unsupported value: "password"'),
    (md(endpointName="Blue_Endpoint"), "spec.endpointName: Invalid value"),
    (wsn(publicNetworkAccess="Disabled"),
     "privateEndpoints must list at least one entry when publicNetworkAccess is Disabled"),
    (wsn(allowedIpRanges=["203.0.113.0/24", "not-a-cidr"]), "every entry must be a CIDR such as 203.0.113.0/24"),
    (wsn(publicNetworkAccess="Disabled", allowedIpRanges=["203.0.113.0/24"],
         privateEndpoints=[{"name": "corp", "cidrs": ["10.1.0.0/16"]}]),
     "allowedIpRanges applies only when publicNetworkAccess is Enabled"),
    (wsn(publicNetworkAccess="Disabled", privateEndpoints=[{"name": "empty"}]),
     "a private endpoint needs namespaceSelector, podSelector or cidrs"),
    (wsn(publicNetworkAccess="Disabled", privateEndpoints=[{"name": "all", "namespaceSelector": {}}]),
     "an empty namespaceSelector admits every namespace of the cluster"),
    (wsn(outbound={"mode": "Disabled", "rules": [{"name": "hf", "type": "FQDN", "destination": "huggingface.co"}]}),
     "outbound.rules apply only with mode AllowOnlyApprovedOutbound"),
    (wsn(outbound={"mode": "AllowOnlyApprovedOutbound",
                   "rules": [{"name": "db", "type": "CIDR", "destination": "example.com"}]}),
     "a CIDR rule's destination must be a CIDR such as 10.0.0.0/8"),
    (obj("ServerlessEndpoint", {}), 'spec.model: Required value'),
]  # fmt: skip


@pytest.mark.parametrize(("manifest", "message"), GOOD_AND_BAD, ids=[m for _, m in GOOD_AND_BAD])
def test_the_api_server_rejects_bad_objects_naming_the_field(
    installed: Kube, namespace: str, manifest: dict[str, Any], message: str
) -> None:
    accepted, error = create(installed, namespace, manifest)
    assert not accepted, f"the API server accepted {manifest}"
    assert message in error


@pytest.mark.parametrize(
    "manifest",
    [
        md(),
        md(autoscale={"minReplicas": 1, "maxReplicas": 4}, instanceCount=2, trafficPercent=0, authMode="token"),
        wsn(),
        wsn(publicNetworkAccess="Disabled", privateEndpoints=[
            {"name": "corp", "namespaceSelector": {"matchLabels": {"team": "apps"}}},
            {"name": "vpn", "cidrs": ["10.8.0.0/16", "2001:db8::/48"]}]),
        wsn(outbound={"mode": "AllowOnlyApprovedOutbound", "rules": [
            {"name": "hub", "type": "FQDN", "destination": "*.huggingface.co", "ports": [443]},
            {"name": "db", "type": "CIDR", "destination": "10.20.0.0/16", "ports": [5432]}]}),
        obj("ServerlessEndpoint", {"model": "cohere-command-r-plus-08-2024", "acceptTerms": True}),
    ],
    ids=["md-minimal", "md-autoscale-token", "wsn-default", "wsn-private", "wsn-outbound", "serverless"],
)  # fmt: skip
def test_the_api_server_accepts_good_objects(installed: Kube, namespace: str, manifest: dict[str, Any]) -> None:
    accepted, error = create(installed, namespace, manifest)
    assert accepted, error


def test_defaults_are_filled_in_by_the_api_server(installed: Kube, namespace: str) -> None:
    create(installed, namespace, md(), dry_run=False)
    spec = installed.get_json("modeldeployment", "x", "-n", namespace)["spec"]
    assert spec["instanceCount"] == 1
    assert spec["authMode"] == "key"
    assert spec["trafficPercent"] == 100
    assert spec["probes"]["startupTimeoutSeconds"] == 1800
    assert spec["requestSettings"]["requestTimeoutSeconds"] == 90


def test_a_serverless_endpoints_model_cannot_change(installed: Kube, namespace: str) -> None:
    endpoint = obj("ServerlessEndpoint", {"model": "cohere-command-r-plus-08-2024", "acceptTerms": True})
    assert create(installed, namespace, endpoint, dry_run=False)[0]
    result = installed.kubectl(
        "patch", "serverlessendpoint", "x", "-n", namespace, "--type=merge", "-p", '{"spec":{"model":"jais-30b-chat"}}',
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "model is immutable: create a new ServerlessEndpoint for another model" in result.stderr


def test_a_catalog_model_must_say_when_it_retires(installed: Kube) -> None:
    bad = obj("CatalogModel", {
        "displayName": "Old", "publisher": "Example", "collection": "curated", "tasks": ["chat-completion"],
        "license": "mit", "deploymentOptions": {"serverless": {}}, "lifecycle": {"stage": "Retired"},
    }, name="old-model")  # fmt: skip
    result = installed.kubectl("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(bad), check=False)
    assert "lifecycle.retirementDate is required when stage is Retired" in result.stderr


def test_kubectl_explain_shows_the_descriptions(installed: Kube) -> None:
    text = installed.kubectl("explain", "modeldeployment.spec").stdout
    assert "Dedicated GPU replicas of a catalog model" in text
    assert "instanceType" in text and "Name of the InstanceType each replica runs on." in text
    text = " ".join(installed.kubectl("explain", "workspacenetwork.spec.publicNetworkAccess").stdout.split())
    assert "Disabled: only from privateEndpoints" in text
