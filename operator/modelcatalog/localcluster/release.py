"""The operator as users install it: `helm upgrade --install` of charts/modelcatalog with the test bed's values
(testbed-values.yaml, as `make demo`), its pod run by the pod runner with a token of the chart's ServiceAccount.

The integration suite's operator (tests/integration/conftest.py). Stopping, starting and killing it go through
the Deployment (scale) and the pod runner's process for the pod, as a node failure would; other settings
through `helm upgrade --reuse-values`, which rolls the pod (the chart's checksum annotation).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modelcatalog.localcluster import store
from modelcatalog.localcluster.cluster import REPO_ROOT
from modelcatalog.localcluster.launcher import TESTBED_VALUES

CHART = REPO_ROOT / "charts" / "modelcatalog"
RELEASE, NAMESPACE = "modelcatalog", "modelcatalog-system"
DEPLOYMENT = "deployment/modelcatalog-operator"
PODS = "app.kubernetes.io/name=modelcatalog,app.kubernetes.io/component=operator"
OWNER = {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NAMESPACE}
# What the suite's operator adds to the demo's values: one replica that still peers (a second operator a test
# starts stands by rather than reconciling too), LoadBalancer routers allowed for public workspaces (nothing
# provisions one here: the Service keeps its ClusterIP, which the pod runner forwards), and the admission webhook
# off, as the suite's tests of the reconcile expect to see what it reports (test_policy.py turns it on).
SUITE_VALUES: dict[str, Any] = {
    "replicas": 1,
    "peering": "always",
    "webhook": {"enabled": False},
    "settings": {"ROUTER_LOAD_BALANCER": "true"},
}
# Objects a user may have made with kubectl before installing (crds/, localcluster/manifests/, the serverless
# namespace): handed to the release, as docs/install.md tells users to.
ADOPTED = (
    ("crd", "-l", "app.kubernetes.io/part-of=modelcatalog"),
    ("crd", "clusterkopfpeerings.kopf.dev"),
    ("clusterrole", "modelcatalog-router-tokenreview"),
    ("clusterrole", "modelcatalog-serverless-gateway"),
    ("namespace", "modelcatalog-serverless"),
)


class ChartOperator:
    """One release of the chart; its operator pod is found by label (the Deployment replaces it)."""

    def __init__(self, kubeconfig: Path, tools: Path, pods_dir: Path, values: dict[str, Any] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.tools = tools
        self.log_dir = pods_dir  # the pod runner writes each pod's output there
        self.values = SUITE_VALUES if values is None else values
        self.replicas = int(self.values.get("replicas", 2))

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(self.tools / "kubectl", args, stdin, check)

    def helm(self, *args: str, values: dict[str, Any] | None = None) -> str:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            yaml.safe_dump(values or {}, file)
            file.flush()
            return self._run(self.tools / "helm", (*args, "-f", file.name), None, True).stdout

    def _run(
        self, binary: Path, args: tuple[str, ...], stdin: str | None, check: bool
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"{binary.name} {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def install(self) -> None:
        self.adopt()
        found = store.read_settings(self.kubeconfig.with_suffix(".store.json"))
        values = store.chart_values(found, self.kubectl, NAMESPACE) | self.values
        self.helm(
            "upgrade", "--install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace", "--timeout", "2m",
            "-f", str(TESTBED_VALUES), values=values,
        )  # fmt: skip
        self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        self.wait_ready()

    def adopt(self) -> None:
        for kind, *which in ADOPTED:
            found = self.kubectl("get", kind, *which, "-o", "name", check=False).stdout.split()
            for name in found:
                self.kubectl("label", "--overwrite", name, "app.kubernetes.io/managed-by=Helm")
                self.kubectl("annotate", "--overwrite", name, *(f"{k}={v}" for k, v in OWNER.items()))

    def upgrade(self, values: dict[str, Any]) -> None:
        """`helm upgrade --reuse-values` with `values` on top; a changed setting rolls the pod. `reset()` undoes
        it (a null in `values` does not remove a reused value)."""
        self.helm("upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values", values=values)
        self.wait_ready()

    def reset(self) -> None:
        """Back to the session's values: `helm upgrade` with them alone, no --reuse-values."""
        self.install()

    def uninstall(self) -> None:
        """Scaled to 0 first, so the pod leaves the peering while its RBAC still allows it; then `helm uninstall`
        (the CRDs, the serverless namespace and the users' objects stay)."""
        if self.kubectl("get", DEPLOYMENT, "-n", NAMESPACE, check=False).returncode == 0:
            self.stop()
        self.kubectl("delete", "--ignore-not-found", "-n", NAMESPACE, "pods", "-l", PODS)
        self._run(self.tools / "helm", ("uninstall", RELEASE, "-n", NAMESPACE, "--wait"), None, False)
        self._wait(lambda: not self.pods(), "the operator pods to go")

    def pods(self) -> list[dict[str, Any]]:
        """The operator's pods that are not being deleted."""
        listed = self.kubectl("get", "pods", "-n", NAMESPACE, "-l", PODS, "-o", "yaml", check=False).stdout
        items: list[dict[str, Any]] = (yaml.safe_load(listed) or {}).get("items") or []
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def pod(self) -> dict[str, Any]:
        pods = self.pods()
        if len(pods) != 1:
            raise RuntimeError(f"expected one operator pod, found {[p['metadata']['name'] for p in pods]}")
        return pods[0]

    @property
    def ip(self) -> str:
        return str(self.pod()["status"]["podIP"])

    @property
    def log(self) -> Path:
        return self.log_dir / f"{NAMESPACE}_{self.pod()['metadata']['name']}.log"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.ip}:{self._port('metrics')}/metrics"

    @property
    def pid(self) -> int:
        """The pod runner's process for the pod (the operator bound to the pod's IP)."""
        pid = process_of(self.pod())
        if pid is None:
            raise RuntimeError(f"no operator process for pod {self.pod()['metadata']['name']}")
        return pid

    def metric(self, name: str) -> float:
        """The sum of a counter over its labels, from the pod's Prometheus endpoint."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # noqa: S310 (a loopback pod IP)
            text = response.read().decode()
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))

    def tail(self, lines: int = 40) -> str:
        log = self.log
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def start(self) -> None:
        self.kubectl("scale", DEPLOYMENT, "-n", NAMESPACE, f"--replicas={self.replicas}")
        self.wait_ready()

    def stop(self) -> None:
        """Scaled to 0: the pod runner stops the process with SIGTERM, as a kubelet would."""
        pods = self.pods()
        self.kubectl("scale", DEPLOYMENT, "-n", NAMESPACE, "--replicas=0")
        self._wait(lambda: not self.pods() and not any(process_of(p) for p in pods), "the operator pods to stop")

    def kill(self) -> None:
        """Stopped without a clean shutdown, as a node failure would: the process is frozen at once, its pod
        deleted (scaled to 0, so nothing restarts it), then the process killed with SIGKILL."""
        pid = self.pid
        os.kill(pid, signal.SIGSTOP)
        self.kubectl("scale", DEPLOYMENT, "-n", NAMESPACE, "--replicas=0")
        self._wait(lambda: not self.pods(), "the operator pod to be deleted")
        os.kill(pid, signal.SIGKILL)
        self._wait(lambda: not Path(f"/proc/{pid}").exists(), "the operator process to go")

    def restart(self) -> None:
        """The pod deleted; the Deployment makes a new one, which the pod runner starts."""
        old = self.pod()["metadata"]["name"]
        self.kubectl("delete", "pod", old, "-n", NAMESPACE, "--wait=false")
        self._wait(lambda: all(p["metadata"]["name"] != old for p in self.pods()), "a new operator pod")
        self.wait_ready()

    def wait_ready(self, timeout: float = 180) -> None:
        """The Deployment's pods rolled out, each one's operator answering its health check and its pod Ready (as
        the pod runner's probe sets it, which is what its Services follow: the webhook's among them)."""
        self.kubectl("rollout", "status", DEPLOYMENT, "-n", NAMESPACE, f"--timeout={timeout:.0f}s")
        port = self._port("health")
        self._wait(lambda: len(pods := self.pods()) == self.replicas and all(_serving(p, port) for p in pods),
                   f"{self.replicas} healthy operator pod(s)", timeout)  # fmt: skip

    def _port(self, name: str) -> int:
        container = self.pod()["spec"]["containers"][0]
        return int(next(p["containerPort"] for p in container["ports"] if p["name"] == name))

    def _wait(self, probe: Callable[[], object], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def _serving(pod: dict[str, Any], port: int) -> bool:
    """Ready (kwok marks a new pod Ready before the runner's first probe; the runner's probes then decide) and
    answering its health check."""
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    ip = status.get("podIP")
    if not ready or not ip or process_of(pod) is None:
        return False
    try:
        with urllib.request.urlopen(f"http://{ip}:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _cmdline(pid: str) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def process_of(pod: dict[str, Any]) -> int | None:
    """The operator process the pod runner started for `pod`: bound to its IP (the metrics address) and named
    by it (POD_ID); a deleted pod's process may still be stopping on the same IP."""
    name, ip = pod["metadata"]["name"], (pod.get("status") or {}).get("podIP")
    for entry in os.listdir("/proc"):
        argv = _cmdline(entry) if entry.isdigit() else []
        if b"operator" in argv and f"--metrics-address={ip}".encode() in argv:
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"POD_ID={name}".encode() in environ:
                return int(entry)
    return None
