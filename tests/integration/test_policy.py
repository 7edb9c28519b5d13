"""Cluster-level policy on the real API server (issue 19): the operator's admission webhook, with the operator up
and down, and the ValidatingAdmissionPolicies of policy/, which the API server evaluates without the operator."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import yaml

from modelcatalog.localcluster.release import ChartOperator
from tests.integration.kube import Kube, wait_for

LLAMA = "meta-llama-3-8b-instruct"
THIRD_PARTY_ON_POOL = "mistralai-mistral-7b-instruct-v01"  # on the test bed's pool, terms required
OTHER_REGIONS = "cohere-embed-v3-english"  # offered serverless in cloud regions, not the test bed's "local"
A100_1X = "standard-nc24ads-a100-v4"
T4_1X = "standard-nc4as-t4-v3"  # 16 GiB: too small for LLAMA (18 GiB)
TODAY = date.today()
DENIED = 'admission webhook "validate.modelcatalog.io" denied the request: '


def md(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"model": LLAMA, "instanceType": A100_1X} | spec}  # fmt: skip


def apply(kube: Kube, *manifests: dict[str, Any], user: str | None = None) -> tuple[bool, str]:
    """Whether the API server admitted the objects, and what kubectl printed on stderr (refusals, warnings)."""
    who = [f"--as={user}"] if user else []
    result = kube.kubectl("apply", "--server-side", "--field-manager=test-user", *who, "-f", "-",
                          stdin=yaml.safe_dump_all(manifests), check=False)  # fmt: skip
    return result.returncode == 0, " ".join(result.stderr.split())


def catalog_model(kube: Kube, name: str, lifecycle: dict[str, Any]) -> None:
    """A copy of LLAMA under another name with the given lifecycle (dates relative to today)."""
    base = kube.get_json("catalogmodel", LLAMA)
    spec = base["spec"] | {"lifecycle": lifecycle}
    manifest = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "CatalogModel", "metadata": {"name": name},
                "spec": spec}  # fmt: skip
    kube.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(manifest))


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def ca_published(kube: Kube) -> bool:
    config = kube.get_json("validatingwebhookconfiguration", "modelcatalog")
    return all(w["clientConfig"].get("caBundle") for w in config["webhooks"])


@pytest.fixture(scope="module")
def webhook(installed: Kube, operator: ChartOperator) -> Iterator[ChartOperator]:
    """The session's operator (the chart's) with the chart's webhook turned on: the ValidatingWebhookConfiguration
    calls the chart's Service, which the pod runner forwards to the pod. The admission policies are the chart's."""
    catalog_model(installed, "policy-deprecated", {"stage": "Deprecated", "deprecationDate": day(-10),
                                                   "retirementDate": day(60), "replacement": LLAMA})  # fmt: skip
    catalog_model(installed, "policy-legacy", {"stage": "Legacy", "legacyDate": day(-5), "replacement": LLAMA})
    catalog_model(installed, "policy-retired", {"stage": "Deprecated", "deprecationDate": day(-30),
                                                "retirementDate": day(-1), "replacement": LLAMA})  # fmt: skip
    operator.upgrade({"webhook": {"enabled": True}})
    try:
        wait_for(lambda: ca_published(installed), 60, "the operator writing the webhook's caBundle")
        yield operator
    finally:
        operator.upgrade({"webhook": {"enabled": False}})


@contextmanager
def clock_moved(operator: ChartOperator, days: int) -> Iterator[None]:
    """The operator's clock `days` ahead (the chart's clockOffsetDays; the upgrade rolls the pod), then back."""
    operator.upgrade({"clockOffsetDays": days})
    try:
        yield
    finally:
        operator.upgrade({"clockOffsetDays": 0})


def test_the_webhook_refuses_what_the_reconcile_could_not_place_naming_field_and_fix(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    ok, err = apply(kube, md(namespace, "unknown", model="no-such-model"))
    assert not ok and DENIED + "spec.model: CatalogModel no-such-model does not exist" in err
    ok, err = apply(kube, md(namespace, "small", instanceType=T4_1X))
    assert not ok and f"spec.instanceType: InstanceType {T4_1X} has 16 GiB of GPU memory" in err
    assert "instance types that fit: " in err and A100_1X in err
    ok, err = apply(kube, md(namespace, "nosuchtype", instanceType="no-such-type"))
    assert not ok and "spec.instanceType: InstanceType no-such-type does not exist; fitting types:" in err
    ok, err = apply(kube, md(namespace, "retired", model="policy-retired"))
    assert not ok and f"CatalogModel policy-retired was retired on {day(-1)}; move to {LLAMA}" in err
    ok, err = apply(kube, md(namespace, "deprecated", model="policy-deprecated"))
    assert not ok and "spec.model: CatalogModel policy-deprecated is deprecated" in err
    assert f"use {LLAMA} instead" in err
    assert kube.kubectl("get", "modeldeployments", "-n", namespace, "-o", "name").stdout == ""


def test_the_webhook_admits_good_and_legacy_objects_with_warnings_and_caps_endpoint_weights(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    ok, err = apply(kube, md(namespace, "blue", instanceCount=0))
    assert ok and "Warning" not in err, err
    ok, err = apply(kube, md(namespace, "old", model="policy-legacy", instanceCount=0))
    assert ok and "Warning: CatalogModel policy-legacy is legacy" in err, err
    wait_for(lambda: len(kube.get_json("modeldeployments", "-n", namespace)["items"]) == 2, 10, "both in the cache")
    green = md(namespace, "green", endpointName="blue", trafficPercent=30, instanceCount=0)
    ok, err = apply(kube, green)
    assert not ok and "spec.trafficPercent: endpoint blue would take 130%" in err and "at most 0" in err, err
    ok, _ = apply(kube, md(namespace, "blue", instanceCount=0, trafficPercent=70))
    assert ok
    wait_for(lambda: kube.get_json("modeldeployment", "blue", "-n", namespace)["spec"]["trafficPercent"] == 70, 5,
             "the new weight")  # fmt: skip
    wait_for(lambda: apply(kube, green)[0], 10, "green admitted once blue gave up 30%")


def test_a_deprecated_model_keeps_its_existing_deployments_updatable_with_a_warning(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    # created while the webhook is off for the namespace (as a deployment made before the deprecation would be)
    kube.kubectl("label", "namespace", namespace, "modelcatalog.io/webhook=Disabled")
    assert apply(kube, md(namespace, "kept", model="policy-deprecated", instanceCount=0))[0]
    kube.kubectl("label", "namespace", namespace, "modelcatalog.io/webhook-")
    wait_for(lambda: "Disabled" not in json.dumps(kube.get_json("namespace", namespace)["metadata"]), 5, "unlabelled")
    ok, err = apply(kube, md(namespace, "kept", model="policy-deprecated", instanceCount=1))
    assert ok and "Warning: CatalogModel policy-deprecated is deprecated" in err and LLAMA in err, err


def test_serverless_endpoints_need_the_offer_the_region_and_accepted_terms(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    offered = THIRD_PARTY_ON_POOL  # the test bed's region is "local": only the platform's pool offers it
    endpoint = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ServerlessEndpoint",
                "metadata": {"name": "api", "namespace": namespace}, "spec": {"model": offered}}  # fmt: skip
    ok, err = apply(kube, endpoint)
    assert not ok and f"spec.acceptTerms: CatalogModel {offered}" in err and "set spec.acceptTerms: true" in err
    endpoint["spec"]["acceptTerms"] = True
    assert apply(kube, endpoint)[0]
    ended = endpoint | {"metadata": {"name": "ended", "namespace": namespace}, "spec": {"model": LLAMA}}
    ok, err = apply(kube, ended)  # its serverless offer retired on 2025-06-30
    assert not ok and f"spec.model: the serverless offer of CatalogModel {LLAMA} is retired" in err, err
    elsewhere = endpoint | {"metadata": {"name": "elsewhere", "namespace": namespace}, "spec": {"model": OTHER_REGIONS}}
    ok, err = apply(kube, elsewhere)
    assert not ok and "spec.model: " in err and "not in this cluster's region local" in err, err


def test_private_workspaces_expose_nothing_whatever_the_operator(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    network = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "WorkspaceNetwork",
               "metadata": {"name": "net", "namespace": namespace},
               "spec": {"publicNetworkAccess": "Disabled", "privateEndpoints": [
                   {"name": "apps", "namespaceSelector": {"matchLabels": {"team": "apps"}}}]}}  # fmt: skip
    ok, err = apply(kube, network)
    assert ok, err
    label = "modelcatalog.io/public-network-access"
    wait_for(lambda: kube.get_json("namespace", namespace)["metadata"].get("labels", {}).get(label) == "Disabled",
             30, "the network controller labelling the namespace")  # fmt: skip

    def service(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}} | spec}  # fmt: skip

    ok, err = apply(kube, service("lb", type="LoadBalancer"))
    assert not ok and "Service lb refused: spec.type LoadBalancer exposes it outside the cluster" in err, err
    assert "use type ClusterIP" in err
    ok, err = apply(kube, service("np", type="NodePort"))
    assert not ok and "spec.type NodePort" in err
    ok, err = apply(kube, service("ext", externalIPs=["203.0.113.9"]))  # documentation range, never contacted
    assert not ok and "remove spec.externalIPs" in err
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "web", "namespace": namespace},
               "spec": {"defaultBackend": {"service": {"name": "plain", "port": {"number": 80}}}}}  # fmt: skip
    ok, err = apply(kube, ingress)
    assert not ok and "Ingress web refused" in err and "private workspace" in err
    assert apply(kube, service("plain"))[0]
    # without the operator: the API server alone decides
    webhook.stop()
    try:
        ok, err = apply(kube, service("lb2", type="LoadBalancer"))
        assert not ok and "spec.type LoadBalancer" in err
        kube.kubectl("label", "namespace", namespace, "modelcatalog.io/policy-private-exposure=Disabled")
        wait_for(lambda: apply(kube, service("lb3", type="LoadBalancer"))[0], 10, "the per-namespace opt-out")
    finally:
        webhook.start()
        wait_for(lambda: ca_published(kube), 30, "the caBundle")


def test_only_the_operator_creates_model_server_and_router_workloads(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    kube.kubectl("create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", namespace)
    template = {"metadata": {"labels": {"app": "fake", "app.kubernetes.io/component": "model-server"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}  # fmt: skip
    always = template | {"spec": template["spec"] | {"restartPolicy": "Always"}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fake", "namespace": namespace},
                  "spec": {"selector": {"matchLabels": {"app": "fake"}}, "template": always}}  # fmt: skip
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fake", "namespace": namespace},
           "spec": {"template": template}}  # fmt: skip
    meta = {"name": "fake", "namespace": namespace}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta | template["metadata"], "spec": template["spec"]}
    for obj in (deployment, job, pod):
        ok, err = apply(kube, obj, user="alice")
        assert not ok, f"{obj['kind']} admitted"
        assert f"{obj['kind']} fake refused: the label app.kubernetes.io/component=model-server is reserved" in err, err
    router = template | {"metadata": {"labels": {"app.kubernetes.io/component": "router"}}}
    router_job = job | {"metadata": {"name": "router", "namespace": namespace}, "spec": {"template": router}}
    assert "component=router is reserved" in apply(kube, router_job, user="alice")[1]
    plain = pod | {"metadata": {"name": "plain", "namespace": namespace, "labels": {"app": "mine"}}}
    ok, err = apply(kube, plain, user="alice")
    assert ok, err
    kube.kubectl("label", "namespace", namespace, "modelcatalog.io/policy-operator-workloads=Disabled")
    wait_for(lambda: apply(kube, pod, user="alice")[0], 10, "the per-namespace opt-out")


def test_with_the_operator_down_the_cluster_stays_usable_and_the_reconcile_catches_it(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    webhook.stop()
    try:
        ok, err = apply(kube, md(namespace, "slipped", model="no-such-model"))
        assert ok, err  # failurePolicy Ignore: admitted unchecked
    finally:
        webhook.start()
    wait_for(lambda: (kube.get_json("modeldeployment", "slipped", "-n", namespace).get("status") or {})
             .get("phase") == "Failed", 60, "the reconcile's verdict")  # fmt: skip
    status = kube.get_json("modeldeployment", "slipped", "-n", namespace)["status"]
    resolved = next(c for c in status["conditions"] if c["type"] == "ModelResolved")
    assert resolved["reason"] == "UnknownModel" and "no-such-model does not exist" in resolved["message"]
    wait_for(lambda: ca_published(kube), 30, "the caBundle")
    # Back, the webhook checks again. Each try is a new object (an admitted one would make the next an update);
    # a call the API server cannot complete in the first moments after the restart is admitted unchecked.
    tries = iter(range(100))
    wait_for(lambda: not apply(kube, md(namespace, f"again-{next(tries)}", model="no-such-model"))[0], 30,
             "the webhook refusing again")  # fmt: skip


def test_past_its_retirement_date_a_deployment_scales_to_zero_and_says_why(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    catalog_model(kube, "policy-sunset", {"stage": "Deprecated", "deprecationDate": day(-3),
                                          "retirementDate": day(3), "replacement": LLAMA})  # fmt: skip
    kube.kubectl("label", "namespace", namespace, "modelcatalog.io/webhook=Disabled")  # made before deprecation
    assert apply(kube, md(namespace, "sunset", model="policy-sunset", instanceCount=1))[0]

    def status() -> dict[str, Any]:
        found: dict[str, Any] = kube.get_json("modeldeployment", "sunset", "-n", namespace).get("status") or {}
        return found

    wait_for(lambda: (status().get("modelLifecycle") or {}).get("stage") == "Deprecated", 60, "deprecated")
    resolved = next(c for c in status()["conditions"] if c["type"] == "ModelResolved")
    assert resolved["reason"] == "Deprecated" and day(3) in resolved["message"]
    # Through the workspace's router pod: API clients are told too.
    wait_for(lambda: call_router(kube, namespace, "sunset")[0] == 200, 60, "a completion through the router")
    _, headers, _ = call_router(kube, namespace, "sunset")
    assert headers["Deprecation"].startswith("@") and day(3) in str(parsedate_to_datetime(headers["Sunset"]).date())
    assert LLAMA in headers["Link"] and 'rel="successor-version"' in headers["Link"]
    with clock_moved(webhook, 5):  # the retirement date has passed
        wait_for(lambda: status().get("phase") == "Retired", 60, "phase Retired")
        ready = next(c for c in status()["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "ModelRetired" and f"retired on {day(3)}; move to {LLAMA}" in ready["message"]
        assert status()["modelLifecycle"]["retirementDate"] == day(3)
        deployments = kube.get_json("deployments", "-n", namespace, "-l", "modelcatalog.io/owner-name=sunset")
        assert [d["spec"]["replicas"] for d in deployments["items"]] == [0]
        assert kube.get_json("hpa", "-n", namespace)["items"] == []
        assert any(e["reason"] == "Retired" for e in kube.events(namespace, "sunset"))
        _, headers, body = wait_for(lambda: (r := call_router(kube, namespace, "sunset"))[0] == 410 and r, 30,
                                       "410 Gone from the router")  # fmt: skip
        assert (
            "retired" in body["error"]["message"]
            and day(3) in body["error"]["message"]
            and LLAMA in body["error"]["message"]
        )
        assert "Sunset" in headers


def call_router(kube: Kube, namespace: str, endpoint: str) -> tuple[int, dict[str, str], Any]:
    """A chat completion through the workspace's router pod with the endpoint's key: status, headers, body."""
    pods = kube.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/component=router")["items"]
    ips = [p["status"].get("podIP") for p in pods if p.get("status", {}).get("podIP")]
    if not ips:
        return 0, {}, None
    key = kube.secret_data(f"{endpoint}-keys", namespace)["primary"]
    request = urllib.request.Request(
        f"http://{ips[0]}:8080/v1/chat/completions",
        data=json.dumps({"model": endpoint, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a loopback pod IP)
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")
    except OSError:
        return 0, {}, None


EMBED = "sentence-transformers-all-minilm-l6-v2"  # fits a T4 and an A100: one GPU either way
T4_NODE_TYPE = "Standard_NC4as_T4_v3"


def test_at_its_gpu_quota_a_deployment_still_rolls_out_a_new_instance_type_and_one_more_is_refused(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    gpu_quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "gpus", "namespace": namespace},
                 "spec": {"hard": {"requests.nvidia.com/gpu": "1"}}}  # fmt: skip
    assert apply(kube, gpu_quota)[0]
    wait_for(lambda: (kube.get_json("resourcequota", "gpus", "-n", namespace).get("status") or {}).get("hard"), 30,
             "the quota controller counting the quota")  # fmt: skip
    assert apply(kube, md(namespace, "embed", model=EMBED, instanceType=A100_1X, instanceCount=1))[0]

    def deployment() -> dict[str, Any]:
        found = kube.get_json("deployments", "-n", namespace, "-l", "modelcatalog.io/owner-name=embed")["items"]
        return dict(found[0]) if found else {"metadata": {"generation": -1}}  # not rendered yet

    def rolled_out_on(node_type: str) -> bool:
        live = deployment()
        status = live.get("status") or {}
        if status.get("observedGeneration") != live["metadata"]["generation"]:
            return False
        if not status.get("replicas") == status.get("updatedReplicas") == status.get("availableReplicas") == 1:
            return False
        pods = kube.get_json("pods", "-n", namespace, "-l", "modelcatalog.io/deployment=embed")["items"]
        live_pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        running = [p for p in live_pods if p["status"].get("phase") == "Running"]
        nodes = {p["spec"].get("nodeName") for p in running}
        labels = [kube.get_json("node", n)["metadata"]["labels"] for n in nodes if n]
        return len(live_pods) == len(running) == 1 and [
            lbl.get("node.kubernetes.io/instance-type") for lbl in labels
        ] == [node_type]

    wait_for(lambda: rolled_out_on("Standard_NC24ads_A100_v4"), 120, "the first replica on an A100 node")
    strategy = deployment()["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 0, "maxUnavailable": 1}, strategy  # a surge pod would never fit the quota

    ok, err = apply(kube, md(namespace, "more", model=EMBED, instanceType=T4_1X, instanceCount=1))
    assert not ok and DENIED + "spec.instanceCount: ResourceQuota gpus allows 1 requests.nvidia.com/gpu" in err, err
    assert "the other ModelDeployments need 1 (embed=1)" in err, err

    ok, err = apply(kube, md(namespace, "embed", model=EMBED, instanceType=T4_1X, instanceCount=1))
    assert ok, err
    wait_for(lambda: rolled_out_on(T4_NODE_TYPE), 180, "the new replica Running on the T4 node")
    wait_for(lambda: (kube.get_json("modeldeployment", "embed", "-n", namespace).get("status") or {}).get("phase")
             == "Ready", 30, "the ModelDeployment Ready again")  # fmt: skip


def test_a_retirement_date_coming_near_warns_once_per_threshold_as_the_clock_moves(
    installed: Kube, webhook: ChartOperator, namespace: str
) -> None:
    kube = installed
    catalog_model(kube, "policy-warned", {"stage": "GenerallyAvailable", "retirementDate": day(40),
                                          "replacement": LLAMA})  # fmt: skip
    assert apply(kube, md(namespace, "warned", model="policy-warned", instanceCount=0))[0]

    def notice() -> str:
        status = kube.get_json("modeldeployment", "warned", "-n", namespace).get("status") or {}
        return str(status.get("lifecycleNotice"))

    def warnings() -> list[str]:
        return sorted(e["reason"] for e in kube.events(namespace, "warned") if e["reason"].startswith("Retirement"))

    wait_for(lambda: notice() == f"Retired/{day(40)}/90d", 60, "the 90-day notice")
    wait_for(lambda: warnings() == ["RetirementWithin90Days"], 10, "its Event")
    status = kube.get_json("modeldeployment", "warned", "-n", namespace)["status"]
    warning = next(c for c in status["conditions"] if c["type"] == "LifecycleWarning")
    assert f"retires in 40 days ({day(40)}); move to {LLAMA}" in warning["message"], warning
    with clock_moved(webhook, 11):  # 29 days left
        wait_for(lambda: notice() == f"Retired/{day(40)}/30d", 60, "the 30-day notice")
        wait_for(lambda: warnings() == ["RetirementWithin30Days", "RetirementWithin90Days"], 10, "its Event")
        kube.kubectl("annotate", "modeldeployment", "warned", "-n", namespace, "touched=1")  # one more reconcile
        wait_for(lambda: kube.get_json("modeldeployment", "warned", "-n", namespace)["metadata"]["annotations"], 5,
                 "the annotation")  # fmt: skip
        assert warnings() == ["RetirementWithin30Days", "RetirementWithin90Days"]
