"""The pod runner's pure decisions: which pods become which processes, with what env, and restarts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelcatalog.localcluster.podrunner import (
    ROUTER,
    TESTSERVER,
    ApiServer,
    SecretMount,
    known_images,
    launch_for,
    ready_patch,
    remap,
    repository,
    should_restart,
)
from modelcatalog.settings import DEFAULT_IMAGES, Settings

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
