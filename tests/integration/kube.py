"""A small handle on the test cluster: API clients, kubectl, and polling helpers."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import yaml
from kubernetes.client import ApiClient

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll until `probe` returns something truthy; fail naming what was awaited and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")


@dataclass
class Kube:
    kubeconfig: Path
    kubectl_binary: str
    # The pod runner's workdir (each pod's log and token), on the local cluster; None on another cluster.
    pods_dir: Path | None = None
    api: ApiClient = field(init=False)

    def __post_init__(self) -> None:
        self.api = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.rbac = kubernetes.client.RbacAuthorizationV1Api(self.api)
        self.networking = kubernetes.client.NetworkingV1Api(self.api)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_binary, "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def apply(self, *manifests: dict[str, Any]) -> None:
        """Server-side apply as a user would (field manager test-user)."""
        stdin = yaml.safe_dump_all(manifests)
        self.kubectl("apply", "--server-side", "--field-manager=test-user", "-f", "-", stdin=stdin)

    def secret_data(self, name: str, namespace: str) -> dict[str, str]:
        """A Secret's data, decoded."""
        data = self.get_json("secret", name, "-n", namespace)["data"]
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def events(self, namespace: str, involved: str) -> list[dict[str, Any]]:
        items = self.get_json("events", "-n", namespace)["items"]
        return [e for e in items if e["involvedObject"]["name"] == involved]

    def ready_pods(self, namespace: str, component: str) -> list[dict[str, Any]]:
        """Pods of one component (app.kubernetes.io/component) that are Ready and not being deleted, by IP."""
        pods = self.get_json("pods", "-n", namespace, "-l", f"app.kubernetes.io/component={component}")["items"]
        ready = [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        ]
        return sorted(ready, key=lambda p: str(p["status"]["podIP"]))

    def ready_ips(self, namespace: str, component: str) -> list[str]:
        return [str(p["status"]["podIP"]) for p in self.ready_pods(namespace, component)]
