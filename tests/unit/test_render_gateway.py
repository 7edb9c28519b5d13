"""The serverless gateway's objects: least-privilege RBAC, a restricted pod, and who may reach it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml

from modelcatalog import labels
from modelcatalog.localcluster.cluster import MANIFESTS
from modelcatalog.render import gateway, router
from modelcatalog.render.objects import RESTRICTED_CONTAINER, RESTRICTED_POD
from modelcatalog.render.owners import OWNERSHIP
from modelcatalog.render.rbac import gateway_rules
from modelcatalog.settings import Settings

UPSTREAM = Settings(serverless_upstream_url="https://provider.example", serverless_upstream_secret="provider-key")
STORE = {"serverless_store_url": "redis://redis.platform:6379/0", "serverless_store_password": "s3cret"}


def by_kind(settings: Settings, uid: str | None = "ns-uid") -> dict[str, dict[str, object]]:
    return {obj["kind"]: obj for obj in gateway.render(settings, uid)}


def test_everything_lives_in_the_serverless_namespace_labelled_as_the_gateways() -> None:
    objects = gateway.render(replace(UPSTREAM, **STORE), "ns-uid")
    assert [o["kind"] for o in objects] == [
        "ServiceAccount", "Role", "RoleBinding", "ClusterRoleBinding", "Deployment", "Service", "NetworkPolicy",
        "Secret",
    ]  # fmt: skip
    for obj in objects:
        meta = obj["metadata"]
        assert meta["labels"][labels.OWNER_KIND] == gateway.KIND and meta["labels"][labels.OWNER_NAME] == "gateway"
        assert meta.get("namespace", "modelcatalog-serverless") == "modelcatalog-serverless"
    assert {info.kind for info in OWNERSHIP[gateway.KIND]} == {o["kind"] for o in objects}  # declared once


def test_the_gateway_reads_the_upstream_credential_by_name_and_nothing_else_of_its_namespace() -> None:
    objects = by_kind(UPSTREAM)
    assert objects["Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["provider-key"]}
    ]
    assert "Role" not in by_kind(Settings())  # no upstream Secret, no Secret read at all
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == gateway.CLUSTER_ROLE == "modelcatalog-serverless-gateway"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": gateway.NAME, "namespace": "modelcatalog-serverless"}
    ]
    assert binding["metadata"]["ownerReferences"][0]["uid"] == "ns-uid"  # gone with the namespace


def test_the_chart_role_reviews_tokens_and_reads_serverless_endpoints_only() -> None:
    assert gateway_rules() == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["modelcatalog.io"], "resources": ["serverlessendpoints"], "verbs": ["get", "list", "watch"]},
    ]
    test_bed = yaml.safe_load((MANIFESTS / "serverless-gateway-clusterrole.yaml").read_text())
    assert test_bed["metadata"]["name"] == gateway.CLUSTER_ROLE
    assert [{**rule} for rule in test_bed["rules"]] == gateway_rules()


def test_the_deployment_runs_the_router_image_in_gateway_mode_restricted_and_probed() -> None:
    deployment = by_kind(UPSTREAM)["Deployment"]
    spec = deployment["spec"]
    assert (
        spec["replicas"] == 2
        and by_kind(Settings(serverless_gateway_replicas=3))["Deployment"]["spec"]["replicas"] == 3
    )
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == UPSTREAM.router_image and container["args"] == ["--mode", "gateway"]
    assert pod["securityContext"] == RESTRICTED_POD and container["securityContext"] == RESTRICTED_CONTAINER
    assert pod["serviceAccountName"] == gateway.NAME
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELCATALOG_SERVERLESS_UPSTREAM_URL"] == "https://provider.example"
    assert env["MODELCATALOG_SERVERLESS_UPSTREAM_SECRET"] == "provider-key"  # the Secret's name, not its value
    template_labels = spec["template"]["metadata"]["labels"]
    service = by_kind(UPSTREAM)["Service"]
    assert service["spec"]["selector"].items() <= template_labels.items()
    assert spec["selector"]["matchLabels"].items() <= template_labels.items()


def test_only_workspace_routers_of_any_namespace_reach_the_gateway_port() -> None:
    policy = by_kind(UPSTREAM)["NetworkPolicy"]
    assert policy["spec"]["podSelector"] == {"matchLabels": {labels.COMPONENT: labels.SERVERLESS_GATEWAY}}
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {labels.COMPONENT: labels.ROUTER, labels.MANAGED_BY: labels.MANAGER}},
        }
    ]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_the_routers_target_is_the_gateway_services_cluster_ip() -> None:
    assert gateway.address({"spec": {"clusterIP": "127.3.0.4"}}) == "127.3.0.4:80"
    assert gateway.address({"spec": {"clusterIP": "None"}}) is None
    assert gateway.address(None) is None
    assert gateway.ready_replicas({"status": {"readyReplicas": 2}}) == 2 and gateway.ready_replicas(None) == 0


def test_only_the_gateway_gets_the_stores_password_as_a_mounted_secret() -> None:
    settings = Settings(**STORE)
    objects = render_all(settings)
    secret = objects["Secret"]
    assert secret["metadata"]["namespace"] == "modelcatalog-serverless" and set(secret["data"]) == {"password"}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELCATALOG_ROUTER_STORE_URL"] == "redis://redis.platform:6379/0"
    assert env["MODELCATALOG_ROUTER_STORE_PASSWORD_FILE"] == "/etc/modelcatalog/store/password"
    assert "s3cret" not in str(objects["Deployment"]) and "s3cret" not in repr(settings)
    assert {"name": "store", "secret": {"secretName": "modelcatalog-gateway-store"}} in pod["volumes"]
    assert "Secret" not in render_all(Settings())  # no store: nothing to hold
    workspace = router.render(router.RouterInputs("team-a", settings))
    assert "s3cret" not in str(workspace) and "STORE" not in str(workspace)  # workspaces never see the store


def render_all(settings: Settings) -> dict[str, Any]:
    return {o["kind"]: o for o in gateway.render(settings)}
