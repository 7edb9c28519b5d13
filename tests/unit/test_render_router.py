"""The workspace router's objects: RBAC it needs and no more, a restricted pod, the Service's exposure."""

from __future__ import annotations

from typing import Any

from modelcatalog.render.objects import RESTRICTED_CONTAINER, RESTRICTED_POD
from modelcatalog.render.router import NAME, TOKENREVIEW_CLUSTER_ROLE, RouterInputs, render, url
from modelcatalog.settings import Settings


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def test_objects_carry_managed_labels_and_router_component() -> None:
    objects = render(RouterInputs("team-a", Settings()))
    assert [o["kind"] for o in objects] == [
        "ServiceAccount", "Role", "RoleBinding", "ClusterRoleBinding", "Deployment", "Service",
    ]  # fmt: skip
    for obj in objects:
        meta_labels = obj["metadata"]["labels"]
        assert meta_labels["app.kubernetes.io/component"] == "router"
        assert meta_labels["modelcatalog.io/owner-kind"] == "Workspace"
        assert meta_labels["modelcatalog.io/owner-name"] == "team-a"
        assert "ownerReferences" not in obj["metadata"], "no API object named Workspace can own them"


def test_rbac_reads_its_inputs_and_reviews_tokens() -> None:
    objects = by_kind(render(RouterInputs("team-a", Settings())))
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r["verbs"] for r in objects["Role"]["rules"]}
    assert rules[(("modelcatalog.io",), ("modeldeployments", "serverlessendpoints"))] == ["get", "list", "watch"]
    assert rules[(("",), ("secrets", "pods"))] == ["get", "list", "watch"]
    assert rules[(("authorization.k8s.io",), ("localsubjectaccessreviews",))] == ["create"]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == TOKENREVIEW_CLUSTER_ROLE
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": "team-a"}]
    assert "ownerReferences" not in binding["metadata"]  # no namespace uid given


def test_deployment_is_restricted_and_probed() -> None:
    settings = Settings(router_image="example.test/router:1")
    pod = by_kind(render(RouterInputs("team-a", settings)))["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "example.test/router:1"
    assert pod["securityContext"] == RESTRICTED_POD and container["securityContext"] == RESTRICTED_CONTAINER
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"] == NAME


def test_service_is_internal_unless_public() -> None:
    internal = by_kind(render(RouterInputs("team-a", Settings())))["Service"]["spec"]
    public = by_kind(render(RouterInputs("team-a", Settings(), public=True,
                                         allowed_source_ranges=("203.0.113.0/24",))))["Service"]["spec"]  # fmt: skip
    assert internal["type"] == "ClusterIP" and "loadBalancerSourceRanges" not in internal
    assert public["type"] == "LoadBalancer" and public["externalTrafficPolicy"] == "Local"
    assert public["loadBalancerSourceRanges"] == ["203.0.113.0/24"]


def test_the_namespace_owns_the_cluster_scoped_binding_for_the_garbage_collector() -> None:
    binding = by_kind(render(RouterInputs("team-a", Settings(), namespace_uid="ns-uid")))["ClusterRoleBinding"]
    assert binding["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Namespace", "name": "team-a", "uid": "ns-uid"}
    ]
    assert "namespace" not in binding["metadata"]


def test_tls_mounts_the_secret_probes_https_and_serves_443() -> None:
    objects = by_kind(render(RouterInputs("team-a", Settings(), tls_secret="router-tls")))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert pod["volumes"] == [{"name": "tls", "secret": {"secretName": "router-tls"}}]
    mount = container["volumeMounts"][0]["mountPath"]
    assert env["MODELCATALOG_ROUTER_TLS_CERT"] == f"{mount}/tls.crt"
    assert env["MODELCATALOG_ROUTER_TLS_KEY"] == f"{mount}/tls.key"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert objects["Service"]["spec"]["ports"][0]["port"] == 443
    plain = by_kind(render(RouterInputs("team-a", Settings())))
    assert plain["Service"]["spec"]["ports"][0]["port"] == 80
    assert "volumes" not in plain["Deployment"]["spec"]["template"]["spec"]


def test_url_names_the_router_service() -> None:
    assert url("team-a", tls=False) == "http://modelcatalog-router.team-a.svc.cluster.local/v1"
    assert url("team-a", tls=True) == "https://modelcatalog-router.team-a.svc.cluster.local/v1"


def test_with_a_store_the_router_gets_its_url_and_the_password_as_a_mounted_secret_only() -> None:
    settings = Settings(serverless_store_url="redis://redis.platform:6379/0", serverless_store_password="s3cret")
    objects = by_kind(render(RouterInputs("team-a", settings)))
    secret = objects["Secret"]
    assert secret["metadata"]["name"] == "modelcatalog-router-store" and set(secret["data"]) == {"password"}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELCATALOG_ROUTER_STORE_URL"] == "redis://redis.platform:6379/0"
    assert env["MODELCATALOG_ROUTER_STORE_PASSWORD_FILE"] == "/etc/modelcatalog/store/password"
    assert "s3cret" not in str(objects["Deployment"]) and "s3cret" not in repr(settings)
    assert {"name": "store", "secret": {"secretName": "modelcatalog-router-store"}} in pod["volumes"]
    assert "Secret" not in by_kind(render(RouterInputs("team-a", Settings())))  # no store: nothing to hold
