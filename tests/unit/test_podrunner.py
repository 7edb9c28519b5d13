"""The pod runner's pure decisions: which pods become which processes, with what env, and restarts."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog.localcluster.podrunner import (
    ROUTER,
    TESTSERVER,
    ApiServer,
    PodRunner,
    SecretMount,
    expand,
    is_ready,
    known_images,
    launch_for,
    local_command,
    ready_patch,
    remap,
    repository,
    should_restart,
)
from modelcatalog.settings import DEFAULT_IMAGES, Settings
from tests.conftest import REPO

API = ApiServer("127.0.0.1", "32766", "/tmp/ca.crt")
IMAGES = known_images(Settings())


def pod(image: str, ip: str = "127.1.0.2", phase: str = "Running", **spec: Any) -> dict[str, Any]:
    container = {
        "name": "model-server",
        "image": image,
        "args": ["--model", "org/m", "--port", "8000"],
        "env": [{"name": "HOME", "value": "/tmp"},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [{"name": "http", "containerPort": 8000}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
    }  # fmt: skip
    return {
        "metadata": {"name": "p", "namespace": "ws", "uid": "u1"},
        "spec": {"containers": [container]} | spec,
        "status": {"phase": phase, "podIP": ip},
    }


def test_repository_drops_tag_and_digest_but_keeps_registry_port() -> None:
    assert repository("docker.io/vllm/vllm-openai:v0.11.0") == "docker.io/vllm/vllm-openai"
    assert repository("registry:5000/router@sha256:abc") == "registry:5000/router"


def test_model_server_images_become_the_test_server() -> None:
    launch = launch_for(pod(DEFAULT_IMAGES["vllm"].replace("v0.11.0", "v0.12.0")), IMAGES, API)
    assert launch is not None
    assert launch.argv[:3] == (sys.executable, "-m", *TESTSERVER)
    assert launch.argv[-4:] == ("--host", "127.1.0.2", "--port", "8000")
    assert (launch.probe_path, launch.probe_port, launch.port) == ("/health", 8000, 8000)
    assert launch.env["NS"] == "ws" and launch.env["KUBERNETES_SERVICE_PORT"] == "32766"


def test_router_image_becomes_the_router_with_a_token() -> None:
    launch = launch_for(pod(Settings().router_image), IMAGES, API)
    assert launch is not None and launch.argv[2:3] == ROUTER
    assert launch.env["MODELCATALOG_ROUTER_NAMESPACE"] == "ws" and launch.env["MODELCATALOG_ROUTER_HOST"] == "127.1.0.2"
    assert launch.service_account == "default"


def test_other_pods_are_left_alone() -> None:
    assert launch_for(pod("busybox:1"), IMAGES, API) is None
    assert launch_for(pod(DEFAULT_IMAGES["vllm"], phase="Pending"), IMAGES, API) is None
    assert launch_for(pod(DEFAULT_IMAGES["vllm"], ip="10.0.0.5"), IMAGES, API) is None  # never bind off loopback


def test_no_token_when_the_pod_does_not_mount_one() -> None:
    launch = launch_for(pod(DEFAULT_IMAGES["vllm"], automountServiceAccountToken=False), IMAGES, API)
    assert launch is not None and launch.service_account is None


def test_restart_policy() -> None:
    assert should_restart("Always", 0) and should_restart("OnFailure", 1)
    assert not should_restart("OnFailure", 0) and not should_restart("Never", 1)


def test_a_ready_pod_stays_ready_until_failure_threshold_probes_in_a_row_fail() -> None:
    assert not is_ready(None, 1, 3) and not is_ready(False, 2, 3)  # not ready before a probe has passed
    assert is_ready(None, 0, 3) and is_ready(False, 0, 3)
    assert is_ready(True, 1, 3) and is_ready(True, 2, 3)  # one slow probe on a busy machine is not an outage
    assert not is_ready(True, 3, 3)


def test_the_readiness_threshold_is_the_probes_or_the_kubelets_default() -> None:
    routed = pod(Settings().router_image)
    assert (launch_for(routed, IMAGES, API) or pytest.fail("no launch")).probe_failures == 3
    routed["spec"]["containers"][0]["readinessProbe"]["failureThreshold"] = 5
    launch = launch_for(routed, IMAGES, API)
    assert launch is not None and launch.probe_failures == 5


def test_ready_patch_sets_both_conditions() -> None:
    conditions = ready_patch(True)["status"]["conditions"]
    assert {(c["type"], c["status"]) for c in conditions} == {("Ready", "True"), ("ContainersReady", "True")}


def test_secret_volumes_are_files_under_the_workdir_and_https_probes_stay_https() -> None:
    tls = pod(Settings().router_image, volumes=[{"name": "tls", "secret": {"secretName": "router-tls"}}])
    container = tls["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": "tls", "mountPath": "/etc/tls/", "readOnly": True}]
    container["readinessProbe"]["httpGet"]["scheme"] = "HTTPS"
    launch = launch_for(tls, IMAGES, API)
    assert launch is not None
    assert launch.secret_mounts == (SecretMount("tls", "router-tls", "/etc/tls"),)
    assert launch.probe_scheme == "HTTPS"
    local = {"/etc/tls": Path("/w/ws_p.volumes/tls")}
    assert remap("/etc/tls/tls.crt", local) == "/w/ws_p.volumes/tls/tls.crt"
    assert remap("/etc/tlsx/a", local) == "/etc/tlsx/a" and remap("8080", local) == "8080"


def test_the_default_router_image_is_the_charts_image() -> None:
    chart = yaml.safe_load((REPO / "charts/modelcatalog/Chart.yaml").read_text())
    values = yaml.safe_load((REPO / "charts/modelcatalog/values.yaml").read_text())
    assert Settings().router_image == f"{values['image']['repository']}:{chart['appVersion']}"


def operator_pod() -> dict[str, Any]:
    """The chart's operator container, as templates/deployment.yaml renders it."""
    image = pod(Settings().router_image, ip="127.1.0.7", serviceAccountName="modelcatalog-operator")
    image["metadata"] |= {"name": "modelcatalog-operator-abc", "namespace": "modelcatalog-system"}
    image["spec"]["containers"][0] = {
        "name": "operator",
        "image": Settings().router_image,
        "command": ["python", "-m", "modelcatalog"],
        "args": ["operator", "run", "--liveness=http://$(POD_IP):8081/healthz", "--metrics-address=$(POD_IP)",
                 "--metrics-port=8080", "--cost=$$(NOT_EXPANDED)", "--x=$(UNDEFINED)"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "URL", "value": "http://$(POD_IP):8081"},
                {"name": "MODELCATALOG_NAMESPACE", "value": "modelcatalog-system"}],
        "ports": [{"name": "metrics", "containerPort": 8080}, {"name": "health", "containerPort": 8081}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "health"}},
    }  # fmt: skip
    return image


def test_the_projects_image_with_a_command_runs_that_command_as_a_kubelet_would() -> None:
    launch = launch_for(operator_pod(), IMAGES, API)
    assert launch is not None
    assert launch.argv == (
        sys.executable, "-m", "modelcatalog", "operator", "run", "--liveness=http://127.1.0.7:8081/healthz",
        "--metrics-address=127.1.0.7", "--metrics-port=8080", "--cost=$(NOT_EXPANDED)", "--x=$(UNDEFINED)",
    )  # fmt: skip
    assert launch.env["POD_IP"] == "127.1.0.7" and launch.env["POD_ID"] == "modelcatalog-operator-abc"
    assert launch.env["URL"] == "http://127.1.0.7:8081", "env values expand the variables defined before them"
    assert "MODELCATALOG_ROUTER_HOST" not in launch.env, "the router's variables only for the router"
    assert (launch.probe_path, launch.probe_port) == ("/healthz", 8081)
    assert launch.service_account == "modelcatalog-operator"


def test_expansion_and_the_local_interpreter() -> None:
    assert expand("$(A)-$(B)-$$(A)-$$-$(", {"A": "1"}) == "1-$(B)-$(A)-$-$("
    assert local_command(["python3", "-c", "x"]) == (sys.executable, "-c", "x")
    assert local_command(["/bin/sh", "-c", "x"]) == ("/bin/sh", "-c", "x")


def test_a_liveness_url_of_an_ipv6_pod_ip_gets_brackets() -> None:
    from modelcatalog.cli.operator import bracket_ipv6

    assert bracket_ipv6("http://fd00::5:8081/healthz") == "http://[fd00::5]:8081/healthz"
    assert bracket_ipv6("http://127.1.0.7:8081/healthz") == "http://127.1.0.7:8081/healthz"
    assert bracket_ipv6("http://[fd00::5]:8081/healthz") == "http://[fd00::5]:8081/healthz"


def test_env_from_a_secret_key_is_read_when_the_process_starts_not_rendered_into_the_launch() -> None:
    from modelcatalog.localcluster.podrunner import secret_env

    container = {"env": [
        {"name": "PLAIN", "value": "x"},
        {"name": "STORE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "store", "key": "password"}}},
    ]}  # fmt: skip
    assert secret_env(container) == (("STORE_PASSWORD", "store", "password"),)


async def test_a_pod_given_the_ip_of_a_deleted_pod_starts_once_that_pods_process_has_stopped(tmp_path: Path) -> None:
    """kwok hands a deleted pod's IP out again at once; a kubelet would still be stopping its containers."""
    runner = PodRunner(client=None, api=API, workdir=tmp_path, settings=Settings())  # type: ignore[arg-type]
    still_stopping = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    runner.stopping[still_stopping] = "127.1.0.2"
    elsewhere = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    runner.stopping[elsewhere] = "127.1.0.3"
    await runner.on_pod("ADDED", pod(DEFAULT_IMAGES["vllm"], automountServiceAccountToken=False))
    process = runner.processes["ws/p"]
    assert process.after == (still_stopping,)
    await asyncio.sleep(0.05)
    assert not process.task.done() and not await asyncio.to_thread(os.listdir, tmp_path), (
        "started before its IP was free"
    )
    for task in (process.task, still_stopping, elsewhere):
        task.cancel()
    await asyncio.gather(process.task, still_stopping, elsewhere, return_exceptions=True)
