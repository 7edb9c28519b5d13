"""The workspace router's objects: RBAC it needs and no more, a restricted pod, the Service's exposure."""

from __future__ import annotations

from typing import Any

from modelcatalog.render.objects import RESTRICTED_CONTAINER, RESTRICTED_POD, Owner
from modelcatalog.render.router import NAME, TOKENREVIEW_CLUSTER_ROLE, RouterInputs, render
from modelcatalog.settings import Settings

OWNER = Owner("Workspace", "team-a", "uid-1")


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def test_objects_carry_managed_labels_and_router_component() -> None:
    objects = render(RouterInputs("team-a", OWNER, Settings()))
    assert [o["kind"] for o in objects] == [
        "ServiceAccount", "Role", "RoleBinding", "ClusterRoleBinding", "Deployment", "Service",
    ]  # fmt: skip
    for obj in objects:
        meta_labels = obj["metadata"]["labels"]
        assert meta_labels["app.kubernetes.io/component"] == "router"
        assert meta_labels["modelcatalog.io/owner-kind"] == "Workspace"


def test_rbac_reads_its_inputs_and_reviews_tokens() -> None:
    objects = by_kind(render(RouterInputs("team-a", OWNER, Settings())))
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r["verbs"] for r in objects["Role"]["rules"]}
    assert rules[(("modelcatalog.io",), ("modeldeployments",))] == ["get", "list", "watch"]
    assert rules[(("",), ("secrets", "pods"))] == ["get", "list", "watch"]
    assert rules[(("authorization.k8s.io",), ("localsubjectaccessreviews",))] == ["create"]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == TOKENREVIEW_CLUSTER_ROLE
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": "team-a"}]
    assert "ownerReferences" not in binding["metadata"]


def test_deployment_is_restricted_and_probed() -> None:
    settings = Settings(router_image="example.test/router:1")
    pod = by_kind(render(RouterInputs("team-a", OWNER, settings)))["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "example.test/router:1"
    assert pod["securityContext"] == RESTRICTED_POD and container["securityContext"] == RESTRICTED_CONTAINER
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"] == NAME


def test_service_is_internal_unless_public() -> None:
    internal = by_kind(render(RouterInputs("team-a", OWNER, Settings())))["Service"]["spec"]
    public = by_kind(render(RouterInputs("team-a", OWNER, Settings(), public=True,
                                         allowed_source_ranges=("203.0.113.0/24",))))["Service"]["spec"]  # fmt: skip
    assert internal["type"] == "ClusterIP" and "loadBalancerSourceRanges" not in internal
    assert public["type"] == "LoadBalancer" and public["externalTrafficPolicy"] == "Local"
    assert public["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
