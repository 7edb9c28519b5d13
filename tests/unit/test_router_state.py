"""The router's in-memory picture of its namespace, from Kubernetes objects, watch events and a static file."""

from __future__ import annotations

from typing import Any

import pytest

from modelcatalog.render.keys import Keys
from modelcatalog.router import static, watch
from modelcatalog.router.state import (
    TOKEN,
    ClusterState,
    Limits,
    deployment_from_object,
    encoded_keys,
    keys_from_secret,
    pod_from_object,
)


def md(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"model": "m", "instanceType": "t"} | spec}


def pod(name: str, deployment: str, ip: str = "127.1.0.2", ready: bool = True, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"modelcatalog.io/deployment": deployment}} | meta,
        "spec": {"containers": [{"name": "model-server", "ports": [{"name": "http", "containerPort": 8000}]}]},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def secret(endpoint: str, primary: str = "p", secondary: str = "s") -> dict[str, Any]:
    data = encoded_keys(Keys(primary, secondary))
    labels = {"modelcatalog.io/owner-kind": "Endpoint", "modelcatalog.io/owner-name": endpoint}
    return {"metadata": {"name": f"{endpoint}-keys", "labels": labels}, "data": data}


def test_deployment_reads_endpoint_weight_mode_and_limits() -> None:
    spec = {"endpointName": "chat", "trafficPercent": 30, "authMode": "token",
            "requestSettings": {"requestTimeoutSeconds": 5, "maxConcurrentRequestsPerInstance": 2}}  # fmt: skip
    d = deployment_from_object(md("blue", **spec))
    assert (d.endpoint, d.weight, d.auth_mode, d.limits, d.served_model) == ("chat", 30, TOKEN, Limits(5, 2), "m")


def test_deployment_defaults_follow_the_api() -> None:
    d = deployment_from_object(md("solo", someFutureField=True))
    assert (d.endpoint, d.weight, d.auth_mode, d.limits) == ("solo", 100, "key", Limits(90, 16))


@pytest.mark.parametrize(
    ("obj", "ready"),
    [
        (pod("p", "d"), True),
        (pod("p", "d", ready=False), False),
        (pod("p", "d", ip=""), False),
        (pod("p", "d", deletionTimestamp="2026-01-01T00:00:00Z"), False),
    ],
)
def test_pod_is_ready_only_with_ip_ready_condition_and_not_deleting(obj: dict[str, Any], ready: bool) -> None:
    parsed = pod_from_object(obj)
    assert parsed is not None and parsed.ready is ready and parsed.port == 8000


def test_pod_without_deployment_label_or_port_is_ignored() -> None:
    unlabelled = pod("p", "d") | {"metadata": {"name": "p"}}
    portless = pod("p", "d") | {"spec": {"containers": [{"name": "c"}]}}
    assert pod_from_object(unlabelled) is None
    assert pod_from_object(portless) is None


def test_keys_secret_names_its_endpoint() -> None:
    endpoint, keys = keys_from_secret(secret("chat", "one", "two"))
    assert endpoint == "chat" and keys is not None and keys.matches("two") and not keys.matches("three")
    assert keys_from_secret({"metadata": {"name": "x-keys"}, "data": {"primary": "!!"}}) == ("x", None)


def test_endpoint_groups_deployments_and_mode() -> None:
    state = ClusterState()
    state.set_deployment(deployment_from_object(md("a", endpointName="chat", authMode="token")))
    state.set_deployment(deployment_from_object(md("b", endpointName="chat", authMode="token")))
    state.set_deployment(deployment_from_object(md("c", endpointName="mixed", authMode="token")))
    state.set_deployment(deployment_from_object(md("d", endpointName="mixed")))
    chat, mixed = state.endpoint("chat"), state.endpoint("mixed")
    assert chat is not None and [d.name for d in chat.deployments] == ["a", "b"] and chat.auth_mode == TOKEN
    assert mixed is not None and mixed.auth_mode == "key"
    assert state.endpoint("none") is None
    assert state.endpoint_names() == ["chat", "mixed"]


def test_ready_pods_follow_updates_and_removal() -> None:
    state = ClusterState()
    for obj in (pod("p1", "a"), pod("p2", "a", ip="127.1.0.3", ready=False), pod("p3", "b", ip="127.1.0.4")):
        parsed = pod_from_object(obj)
        assert parsed is not None
        state.set_pod(parsed)
    assert [p.name for p in state.ready_pods("a")] == ["p1"]
    moved = pod_from_object(pod("p1", "b"))
    assert moved is not None
    state.set_pod(moved)
    state.remove_pod("p3")
    assert state.ready_pods("a") == [] and [p.name for p in state.ready_pods("b")] == ["p1"]


def test_watch_events_update_state_and_410_means_relist() -> None:
    state = ClusterState()
    deployments, _serverless, secrets, pods = watch.sources("ws")
    assert secrets.selector == "modelcatalog.io/owner-kind=Endpoint"
    assert pods.selector == "app.kubernetes.io/component=model-server"
    added = md("a") | {"metadata": {"name": "a", "resourceVersion": "5"}}
    assert watch.apply_event(deployments, state, {"type": "ADDED", "object": added}) == "5"
    watch.apply_event(secrets, state, {"type": "ADDED", "object": secret("a")})
    watch.apply_event(pods, state, {"type": "MODIFIED", "object": pod("p", "a")})
    assert state.endpoint("a") is not None and state.keys["a"].matches("p") and state.ready_pods("a")
    watch.apply_event(secrets, state, {"type": "DELETED", "object": secret("a")})
    watch.apply_event(pods, state, {"type": "DELETED", "object": pod("p", "a")})
    assert "a" not in state.keys and not state.ready_pods("a")
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}
    assert watch.apply_event(pods, state, bookmark) == "9"
    with pytest.raises(watch.Expired):
        watch.apply_event(pods, state, {"type": "ERROR", "object": {"code": 410, "reason": "Expired"}})


def test_static_config_replaces_the_whole_state() -> None:
    config = {"endpoints": [{"name": "e", "keys": {"primary": "p", "secondary": "s"},
                             "deployments": [{"name": "d", "backends": ["127.0.0.1:9", "[::1]:10"]}]}]}  # fmt: skip
    state = static.apply(config)
    assert state.synced and [p.target for p in state.ready_pods("d")] == ["127.0.0.1:9", "[::1]:10"]
    static.apply({"endpoints": []}, state)
    assert state.endpoint("e") is None and not state.keys and not state.pods
