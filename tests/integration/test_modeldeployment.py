"""ModelDeployments reconciled by the real operator on the real control plane with simulated GPU pools."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import yaml

from modelcatalog.localcluster.launcher import OperatorProcess
from modelcatalog.localcluster.release import ChartOperator
from tests.integration.kube import Kube, wait_for

pytestmark = pytest.mark.usefixtures("operator")

A100_1X = "standard-nc24ads-a100-v4"  # the local cluster has two 1-GPU A100 nodes
H100_8X = "standard-nd96isr-h100-v5"  # one 8-GPU H100 node
A100_8X = "standard-nd96amsr-a100-v4"  # no node pool at all
MODEL = "meta-llama-3-8b-instruct"


def apply_md(kube: Kube, namespace: str, name: str, **spec: Any) -> None:
    manifest = {
        "apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": MODEL, "instanceType": A100_1X} | spec,
    }  # fmt: skip
    kube.kubectl("apply", "--server-side", "--field-manager=test-user", "-f", "-", stdin=yaml.safe_dump(manifest))


def md_status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kube.get_json("modeldeployment", name, "-n", namespace).get("status") or {}
    return status


def condition(kube: Kube, namespace: str, name: str, kind: str) -> dict[str, Any]:
    conditions = md_status(kube, namespace, name).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


def wait_condition(
    kube: Kube, namespace: str, name: str, kind: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    return wait_for(lambda: (c := condition(kube, namespace, name, kind)).get("reason") == reason and c,
                    timeout, f"{kind} reason {reason} on {name}")  # fmt: skip


def wait_ready(kube: Kube, namespace: str, name: str, timeout: str = "90s") -> None:
    kube.kubectl("wait", "--for=condition=Ready", f"modeldeployment/{name}", "-n", namespace, f"--timeout={timeout}")


def keys(kube: Kube, namespace: str, secret: str) -> dict[str, str]:
    return kube.secret_data(secret, namespace)


def test_becomes_ready_when_its_pods_run_under_the_restricted_standard(kube: Kube, restricted_namespace: str) -> None:
    ns = restricted_namespace
    apply_md(kube, ns, "chat")
    wait_ready(kube, ns, "chat")
    # The pod runner marks the pod unready until its process answers, after kwok first said Ready.
    status = wait_for(lambda: (s := md_status(kube, ns, "chat")).get("phase") == "Ready" and s, 30, "phase Ready")
    assert status["readyReplicas"] == 1
    assert status["observedGeneration"] == kube.get_json("modeldeployment", "chat", "-n", ns)["metadata"]["generation"]
    assert status["endpoint"] == {"name": "chat", "url": f"http://modelcatalog-router.{ns}.svc.cluster.local/v1",
                                  "service": "chat", "keysSecret": "chat-keys", "networkAccess": "Enabled"}  # fmt: skip
    pod = kube.get_json("pods", "-n", ns, "-l", "modelcatalog.io/deployment=chat")["items"][0]
    node = kube.get_json("node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"]["modelcatalog.io/node-pool"] == "a100-1x"
    assert set(keys(kube, ns, "chat-keys")) == {"primary", "secondary"}
    for kind in ("service/chat", "poddisruptionbudget/chat"):
        kube.kubectl("get", kind, "-n", ns)
    assert any(e["reason"] == "Ready" for e in kube.events(ns, "chat")), "a Ready event for kubectl describe"
    assert keys(kube, ns, "chat-keys")["primary"] not in json.dumps(status), "keys never appear in status"


def test_stays_pending_when_no_node_pool_exists_for_the_instance_type(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "big", instanceType=A100_8X, model="meta-llama-3-70b-instruct")
    capacity = wait_condition(kube, namespace, "big", "CapacityAvailable", "NoNodePool")
    assert "node.kubernetes.io/instance-type=Standard_ND96amsr_A100_v4" in capacity["message"]
    assert md_status(kube, namespace, "big")["phase"] == "Pending"
    assert condition(kube, namespace, "big", "Ready")["status"] == "False"


def test_a_full_pool_leaves_the_extra_replica_pending_with_the_schedulers_reason(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "wide", instanceType=H100_8X, instanceCount=2)
    capacity = wait_condition(kube, namespace, "wide", "CapacityAvailable", "InsufficientCapacity")
    assert "1 replica(s) cannot be scheduled" in capacity["message"]
    assert "Insufficient nvidia.com/gpu" in capacity["message"]
    wait_for(lambda: md_status(kube, namespace, "wide").get("phase") == "Degraded", 60, "phase Degraded (1 of 2)")


def test_the_gpu_quota_refusal_is_reported(kube: Kube, namespace: str) -> None:
    kube.core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "0"}}}
    )
    apply_md(kube, namespace, "chat")
    capacity = wait_condition(kube, namespace, "chat", "CapacityAvailable", "QuotaExceeded", timeout=90)
    assert "exceeded quota: no-gpus" in capacity["message"]
    assert md_status(kube, namespace, "chat")["phase"] == "Pending"


def test_an_unknown_model_fails_until_the_catalog_has_it(kube: Kube, namespace: str) -> None:
    name = f"custom-{namespace}"[:60]
    apply_md(kube, namespace, "chat", model=name)
    ready = wait_condition(kube, namespace, "chat", "ModelResolved", "UnknownModel")
    assert f"CatalogModel {name} does not exist" in ready["message"]
    assert md_status(kube, namespace, "chat")["phase"] == "Failed"
    model = kube.get_json("catalogmodel", MODEL)
    model["metadata"] = {"name": name}
    kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump(model))
    try:
        wait_ready(kube, namespace, "chat")
    finally:
        kube.kubectl("delete", "catalogmodel", name, check=False)


def test_too_small_an_instance_type_names_the_ones_that_fit(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "big", model="meta-llama-3-70b-instruct", instanceType="standard-nc4as-t4-v3")
    problem = wait_condition(kube, namespace, "big", "InstanceTypeResolved", "InsufficientGPUMemory")
    assert "InstanceType standard-nc4as-t4-v3 has 16 GiB of GPU memory" in problem["message"]
    assert H100_8X in problem["message"]
    assert kube.kubectl("get", "deployment", "big", "-n", namespace, check=False).returncode != 0, "nothing deployed"


def test_scales_up_and_down_including_through_the_scale_subresource(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "chat")
    wait_ready(kube, namespace, "chat")
    apply_md(kube, namespace, "chat", instanceCount=2)
    wait_for(lambda: md_status(kube, namespace, "chat").get("readyReplicas") == 2, 60, "2 ready replicas")
    kube.kubectl("scale", "modeldeployment/chat", "-n", namespace, "--replicas=1")
    wait_for(lambda: kube.get_json("deployment", "chat", "-n", namespace)["spec"]["replicas"] == 1, 30,
             "the Deployment to follow kubectl scale")  # fmt: skip


def test_autoscale_hands_the_replica_count_to_an_autoscaler(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "chat", instanceCount=1, autoscale={"minReplicas": 1, "maxReplicas": 2})
    hpa = wait_for(lambda: kube.kubectl("get", "hpa", "chat", "-n", namespace, "-o", "json", check=False).stdout, 30,
                   "the HorizontalPodAutoscaler")  # fmt: skip
    spec = json.loads(hpa)["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 2)
    managed = kube.get_json("deployment", "chat", "-n", namespace, "--show-managed-fields")["metadata"]["managedFields"]
    ours = [f for f in managed if f["manager"] == "modelcatalog"]
    assert ours and all("f:replicas" not in json.dumps(f["fieldsV1"].get("f:spec", {})) for f in ours)
    apply_md(kube, namespace, "chat", instanceCount=1)  # autoscale removed: the HPA is pruned
    wait_for(lambda: kube.kubectl("get", "hpa", "chat", "-n", namespace, check=False).returncode != 0, 30,
             "the autoscaler to be pruned")  # fmt: skip


def test_blue_green_weights_are_checked_on_every_deployment_of_the_endpoint(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "blue", endpointName="chat", trafficPercent=90)
    apply_md(kube, namespace, "green", endpointName="chat", trafficPercent=10)
    wait_ready(kube, namespace, "blue")
    wait_ready(kube, namespace, "green")
    secret = kube.get_json("secret", "chat-keys", "-n", namespace)
    assert sorted(o["name"] for o in secret["metadata"]["ownerReferences"]) == ["blue", "green"]
    apply_md(kube, namespace, "green", endpointName="chat", trafficPercent=20)
    for name in ("blue", "green"):
        ready = wait_condition(kube, namespace, name, "Ready", "InvalidTrafficSplit")
        assert "adds up to 110, not 100 (blue=90, green=20)" in ready["message"]
    apply_md(kube, namespace, "blue", endpointName="chat", trafficPercent=80)
    wait_ready(kube, namespace, "blue")
    wait_ready(kube, namespace, "green")


def test_drift_is_restored_in_seconds(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "chat")
    wait_ready(kube, namespace, "chat")
    old_uid = kube.get_json("deployment", "chat", "-n", namespace)["metadata"]["uid"]
    kube.kubectl("delete", "deployment", "chat", "-n", namespace)

    def deployment_uid() -> str:
        jsonpath = "jsonpath={.metadata.uid}"
        return kube.kubectl("get", "deployment", "chat", "-n", namespace, "-o", jsonpath, check=False).stdout

    wait_for(lambda: deployment_uid() not in ("", old_uid), 20, "the Deployment to be recreated")
    kube.kubectl("patch", "service", "chat", "-n", namespace, "--type=merge", "-p", '{"spec":{"selector":{"app":"x"}}}')
    wait_for(lambda: kube.get_json("service", "chat", "-n", namespace)["spec"]["selector"].get("app") is None, 20,
             "the Service selector to be restored")  # fmt: skip
    kube.kubectl("delete", "secret", "chat-keys", "-n", namespace)
    wait_for(lambda: kube.kubectl("get", "secret", "chat-keys", "-n", namespace, check=False).returncode == 0, 20,
             "the keys Secret to be recreated")  # fmt: skip
    assert set(keys(kube, namespace, "chat-keys")) == {"primary", "secondary"}


def rotation(kube: Kube, namespace: str, request: str) -> dict[str, Any]:
    kube.kubectl("annotate", "--overwrite", "modeldeployment", "chat", "-n", namespace,
                 f"modelcatalog.io/rotate-key={request}")  # fmt: skip
    return wait_for(lambda: (r := md_status(kube, namespace, "chat").get("keyRotation") or {}).get("request") == request
                    and r, 20, f"the rotation request {request} to be handled")  # fmt: skip


def test_rotating_one_key_keeps_the_other_and_happens_once_per_request_id(
    kube: Kube, namespace: str, operator: ChartOperator
) -> None:
    apply_md(kube, namespace, "chat")
    wait_ready(kube, namespace, "chat")
    before = keys(kube, namespace, "chat-keys")
    assert rotation(kube, namespace, "secondary/2026-12-01")["outcome"] == "Rotated"
    after = keys(kube, namespace, "chat-keys")
    assert after["primary"] == before["primary"] and after["secondary"] != before["secondary"]
    annotations = kube.get_json("modeldeployment", "chat", "-n", namespace)["metadata"].get("annotations", {})
    assert annotations["modelcatalog.io/rotate-key"] == "secondary/2026-12-01", "the user's object is never edited"
    # A GitOps sync re-applies the same request: nothing rotates again.
    apply_md(kube, namespace, "chat", instanceCount=1)
    kube.kubectl("label", "modeldeployment", "chat", "-n", namespace, "synced=again")
    wait_for(lambda: md_status(kube, namespace, "chat").get("observedGeneration"), 10, "a status")
    assert keys(kube, namespace, "chat-keys") == after
    # A new id rotates once more; a request without an id is explained, not guessed at.
    rotation(kube, namespace, "secondary/2026-12-02")
    assert keys(kube, namespace, "chat-keys")["secondary"] != after["secondary"]
    assert "must be <slot>/<id>" in rotation(kube, namespace, "primary")["outcome"]
    assert sum(e["reason"] == "KeyRotated" for e in kube.events(namespace, "chat")) == 2
    log = operator.log_dir.glob("*operator*.log")
    assert not any(after["secondary"] in p.read_text(errors="replace") for p in log), "a key reached the log"


def test_an_object_the_user_made_under_a_childs_name_is_never_taken_over(kube: Kube, namespace: str) -> None:
    kube.kubectl("create", "secret", "generic", "chat-keys", "-n", namespace, "--from-literal=mine=do-not-touch")
    apply_md(kube, namespace, "chat")
    ready = wait_condition(kube, namespace, "chat", "Ready", "ChildConflict")
    assert "Secret chat-keys already exists and was not created for ModelDeployment chat" in ready["message"]
    secret = kube.get_json("secret", "chat-keys", "-n", namespace)
    assert set(secret["data"]) == {"mine"} and not secret["metadata"].get("ownerReferences")
    kube.kubectl("delete", "modeldeployment", "chat", "-n", namespace)
    kube.kubectl("wait", "--for=delete", "deployment/chat", "-n", namespace, "--timeout=60s", check=False)
    assert kube.get_json("secret", "chat-keys", "-n", namespace)["data"]["mine"], "the user's Secret is still there"


def test_names_that_cannot_name_every_child_are_refused_at_apply_time(kube: Kube, namespace: str) -> None:
    for name in ("x" * 48, "1chat", "chat.v2"):
        manifest = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"model": MODEL, "instanceType": A100_1X}}  # fmt: skip
        result = kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
        assert result.returncode != 0, name
        assert "metadata.name must be at most 47 characters" in result.stderr, result.stderr


def test_keys_that_are_not_text_fail_only_their_deployment(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "chat")
    apply_md(kube, namespace, "other")
    wait_ready(kube, namespace, "chat")
    not_utf8 = base64.b64encode(bytes([0xFF, 0xFE, 0x00])).decode()
    kube.kubectl("patch", "secret", "chat-keys", "-n", namespace, "--type=merge",
                 "-p", json.dumps({"data": {"primary": not_utf8}}))  # fmt: skip
    ready = wait_condition(kube, namespace, "chat", "Ready", "InvalidKeys")
    assert "Secret chat-keys holds a key that is not UTF-8 text" in ready["message"]
    wait_ready(kube, namespace, "other")
    kube.kubectl("delete", "secret", "chat-keys", "-n", namespace)
    wait_ready(kube, namespace, "chat")


def test_deleting_needs_no_operator(kube: Kube, namespace: str, operator: ChartOperator) -> None:
    apply_md(kube, namespace, "chat", instanceCount=0)
    wait_ready(kube, namespace, "chat")
    assert not kube.get_json("modeldeployment", "chat", "-n", namespace)["metadata"].get("finalizers")
    operator.kill()
    try:
        kube.kubectl("delete", "modeldeployment", "chat", "-n", namespace, "--timeout=20s")
    finally:
        operator.start()


def test_deleting_leaves_nothing_behind(kube: Kube, namespace: str) -> None:
    apply_md(kube, namespace, "chat")
    wait_ready(kube, namespace, "chat")
    kube.kubectl("delete", "modeldeployment", "chat", "-n", namespace)
    selector = "app.kubernetes.io/managed-by=modelcatalog"
    wait_for(lambda: not kube.get_json("deployments,services,secrets,poddisruptionbudgets,pods", "-n", namespace,
                                       "-l", selector)["items"], 60, "every child to be garbage-collected")  # fmt: skip


def test_instance_type_changes_roll_out(kube: Kube, namespace: str) -> None:
    instance_type = kube.get_json("instancetype", A100_1X)
    name = f"it-{namespace}"[:60]
    instance_type["metadata"] = {"name": name}
    kube.kubectl("create", "-f", "-", stdin=yaml.safe_dump(instance_type))
    try:
        apply_md(kube, namespace, "chat", instanceType=name)
        wait_ready(kube, namespace, "chat")
        kube.kubectl("patch", "instancetype", name, "--type=merge", "-p", '{"spec":{"cpu":"12"}}')

        def cpu() -> str:
            pod = kube.get_json("deployment", "chat", "-n", namespace)["spec"]["template"]["spec"]
            return str(pod["containers"][0]["resources"]["limits"]["cpu"])

        wait_for(lambda: cpu() == "12", 30, "the new CPU size to reach the Deployment")
    finally:
        kube.kubectl("delete", "instancetype", name, check=False)


def test_a_restart_converges_without_duplicates_and_without_writes(
    kube: Kube, namespace: str, operator: ChartOperator
) -> None:
    operator.kill()
    try:
        apply_md(kube, namespace, "chat")  # created while no operator runs
        apply_md(kube, namespace, "other", instanceCount=0)
    finally:
        operator.start()
    wait_ready(kube, namespace, "chat")
    wait_ready(kube, namespace, "other")
    deployments = kube.get_json("deployments", "-n", namespace, "-l", "modelcatalog.io/owner-kind=ModelDeployment")
    assert sorted(d["metadata"]["name"] for d in deployments["items"]) == ["chat", "other"]
    # Every child kind: an autoscaler, and the workspace's policies and router.
    apply_md(kube, namespace, "scaled", instanceCount=1, autoscale={"minReplicas": 1, "maxReplicas": 2})
    network = {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "WorkspaceNetwork",
               "metadata": {"name": "workspace", "namespace": namespace},
               "spec": {"outbound": {"mode": "AllowInternetOutbound"}}}  # fmt: skip
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(network))
    wait_ready(kube, namespace, "scaled")
    kube.kubectl("wait", "--for=condition=Ready", "workspacenetwork/workspace", "-n", namespace, "--timeout=60s")
    children = "deployments,services,secrets,pdb,hpa,networkpolicies,serviceaccounts,roles,rolebindings"
    before = versions(kube, namespace, children)
    operator.restart()
    status_before = md_status(kube, namespace, "chat")
    wait_for(lambda: operator.metric("modelcatalog_reconciles_total") >= 5, 30, "the restarted operator to reconcile")
    time.sleep(3)  # the rest of the first pass, and any write it would make
    assert versions(kube, namespace, children) == before, "a restart with nothing changed wrote children"
    assert md_status(kube, namespace, "chat") == status_before


def versions(kube: Kube, namespace: str, kinds: str) -> dict[str, list[Any]]:
    """Per child, when the operator last wrote it (its managedFields entry) and its generation; status
    updates by the cluster's controllers (which change resourceVersion) do not count."""
    items = kube.get_json(kinds, "-n", namespace, "--show-managed-fields")["items"]
    return {
        f"{i['kind']}/{i['metadata']['name']}": [
            i["metadata"].get("generation"),
            [(m.get("operation"), m.get("time")) for m in i["metadata"].get("managedFields") or []
             if m.get("manager") == "modelcatalog"],
        ]
        for i in items
    }  # fmt: skip


def test_a_child_the_api_server_refuses_is_reported_and_retried(kube: Kube, namespace: str) -> None:
    kube.core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-services"}, "spec": {"hard": {"services": "0"}}}
    )
    apply_md(kube, namespace, "chat")
    ready = wait_condition(kube, namespace, "chat", "Ready", "ApplyFailed")
    assert "exceeded quota: no-services" in ready["message"]
    kube.core.delete_namespaced_resource_quota("no-services", namespace)
    wait_ready(kube, namespace, "chat", timeout="120s")  # the retry with backoff succeeds once allowed


def test_a_restart_over_more_objects_than_kopf_workers_still_reconciles(
    kube: Kube, namespace: str, operator: ChartOperator
) -> None:
    many = "".join(
        yaml.safe_dump({"apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
                        "metadata": {"name": f"idle-{i}", "namespace": namespace},
                        "spec": {"model": MODEL, "instanceType": A100_1X, "instanceCount": 0}}, explicit_start=True)
        for i in range(100)
    )  # fmt: skip
    kube.kubectl("apply", "-f", "-", stdin=many)
    operator.restart()
    apply_md(kube, namespace, "after-restart", instanceCount=0)
    wait_ready(kube, namespace, "after-restart", timeout="120s")
    wait_ready(kube, namespace, "idle-99", timeout="120s")


def test_a_standby_replica_writes_nothing_and_takes_over_when_the_active_one_leaves(
    kube: Kube, namespace: str, operator: ChartOperator
) -> None:
    # A second operator process beside the chart's pod (admin kubeconfig, a local process): started last, it
    # outranks the chart's operator, which peers even as the only replica (peering: always).
    newer = OperatorProcess(kube.kubeconfig, kube.kubeconfig.parent / "test-logs" / "standby-test")
    newer.start()
    try:
        wait_for(lambda: "standing by" in operator.tail(200), 30, "the older replica to stand by")
        writes = operator.metric("modelcatalog_api_writes_total")
        reconciles = operator.metric("modelcatalog_reconciles_total")
        apply_md(kube, namespace, "chat", instanceCount=0)
        wait_ready(kube, namespace, "chat")  # the newer replica did it
        assert operator.metric("modelcatalog_api_writes_total") == writes, "a standby wrote"
        assert operator.metric("modelcatalog_reconciles_total") == reconciles
    finally:
        newer.stop()
    wait_for(lambda: "taking over" in operator.tail(200), 60, "the older replica to take over")
    apply_md(kube, namespace, "after", instanceCount=0)
    wait_ready(kube, namespace, "after")
