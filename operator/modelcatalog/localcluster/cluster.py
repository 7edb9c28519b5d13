"""Start and stop a local control plane with kwokctl's binary runtime, from locally built binaries."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from modelcatalog.localcluster.nodes import node_manifests
from modelcatalog.localcluster.pidfile import stop_process
from modelcatalog.localcluster.store import PORT as STORE_PORT
from modelcatalog.localcluster.store import RedisProcess, redis_binary

REPO_ROOT = Path(__file__).resolve().parents[3]
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")
LOG_TAIL_LINES = 25
# Loopback pod and Service ranges: the pod runner's processes bind pod IPs and ClusterIPs here.


class ClusterStartError(RuntimeError):
    """The local control plane did not come up; the message names the component and its log tail."""


def find_tools() -> Path:
    """The directory holding every test-bed binary, built or found by hack/tools.sh (cached)."""
    script = REPO_ROOT / "hack" / "tools.sh"
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise ClusterStartError(f"{script} failed with exit code {result.returncode}; see its output above")
    return Path(result.stdout.strip().splitlines()[-1])


MANIFESTS = Path(__file__).with_name("manifests")  # cluster-wide objects the chart will ship too


def install_catalog(kubectl: Callable[..., str]) -> None:
    """The CRDs, the cluster-wide RBAC the operator binds to, and the default catalog, as a user would
    install them with kubectl."""
    kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    kubectl("apply", "--server-side", "-f", str(MANIFESTS))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    kubectl("apply", "--server-side", "-R", "-f", str(REPO_ROOT / "catalog"))


@dataclass
class LocalCluster:
    """One named cluster; its state, logs and kubeconfig live under `workdir`."""

    name: str = "modelcatalog"
    workdir: Path = field(default_factory=lambda: REPO_ROOT / ".work")
    tools: Path | None = None
    start_timeout: int = 60  # seconds for the components to come up; a healthy start takes ~5
    run_pods: bool = True  # the pod runner; the operator benchmarks measure the operator alone without it

    @property
    def loopback_octet(self) -> int:
        """1-99, from the cluster's name and folder, skipping the ranges of clusters already running on this machine
        (two checkouts can hash alike): their pods' processes never bind the same address."""
        first = zlib.crc32(f"{self.workdir.resolve()}/{self.name}".encode()) % 99
        taken = loopback_octets_in_use()
        return next((1 + (first + step) % 99 for step in range(99) if 1 + (first + step) % 99 not in taken), 1 + first)

    @property
    def pod_range(self) -> str:
        return f"127.{self.loopback_octet}.0.1/16"

    @property
    def service_range(self) -> str:
        return f"127.{100 + self.loopback_octet}.0.0/16"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / f"{self.name}.kubeconfig"

    @property
    def kwok_workdir(self) -> Path:
        return self.workdir / "kwok"

    @property
    def cluster_dir(self) -> Path:
        return self.kwok_workdir / "clusters" / self.name

    @property
    def pods_dir(self) -> Path:
        """The pod runner's log, and each pod's process log and token."""
        return self.workdir / "pods" / self.name

    @property
    def store_settings(self) -> Path:
        """The serverless store's URL and password (JSON, mode 0600); absent when no redis-server is installed."""
        return self.workdir / f"{self.name}.store.json"

    def store(self) -> RedisProcess | None:
        """The cluster's redis-server, on the last address of its pod range (kwok hands pod IPs out from the
        first), or None when hack/redis.sh could not install one."""
        binary = redis_binary(self.tools)
        if binary is None:
            return None
        host = f"127.{self.loopback_octet}.255.254"
        return RedisProcess(binary, host, STORE_PORT, self.workdir / "store" / self.name)

    @property
    def runner_pidfile(self) -> Path:
        return self.pods_dir / "podrunner.pid"

    def tool(self, binary: str) -> str:
        if self.tools is None:
            self.tools = find_tools()
        return str(self.tools / binary)

    def env(self) -> dict[str, str]:
        self.tool("kubectl")
        assert self.tools is not None
        return os.environ | {
            "KWOK_WORKDIR": str(self.kwok_workdir),
            "PATH": f"{self.tools}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(self.kubeconfig),
        }

    def up(self) -> float:
        """Start from scratch (removing any leftover of an interrupted run); returns the seconds it took."""
        self.down()
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        create = [
            self.tool("kwokctl"), "create", "cluster", "--name", self.name,
            "--runtime", "binary", "--kube-authorization", "--kube-admission",
            "--kubeconfig", str(self.kubeconfig), "--wait", f"{self.start_timeout}s",
            "--etcd-binary", self.tool("etcd"),
            "--kube-apiserver-binary", self.tool("kube-apiserver"),
            "--kube-controller-manager-binary", self.tool("kube-controller-manager"),
            "--kube-scheduler-binary", self.tool("kube-scheduler"),
            "--kwok-controller-binary", self.tool("kwok"),
            # The API server's default Service range has ~250 addresses; benchmarks create 1,000 Services.
            "--extra-args", f"kube-apiserver=service-cluster-ip-range={self.service_range}",
            "--extra-args", f"kube-controller-manager=service-cluster-ip-range={self.service_range}",
            "--extra-args", f"kwok-controller=cidr={self.pod_range}",
        ]  # fmt: skip
        stderr = self._create_retrying_port_races(create)
        if not self._api_ready():
            raise ClusterStartError(self._failure_report("the API server answering /readyz", stderr))
        try:
            self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(node_manifests()))
            self._wait_ready()
        except ClusterStartError as error:
            raise ClusterStartError(self._failure_report("creating the node pools", str(error))) from error
        self.start_store()
        if self.run_pods:
            self.start_pod_runner()
        return time.monotonic() - started

    def start_store(self) -> None:
        store = self.store()
        if store is None:
            print("local cluster: no redis-server (hack/redis.sh): serverless endpoints run without limits or usage")
            return
        store.start()
        store.write_settings(self.store_settings)

    def start_pod_runner(self) -> None:
        """Real local processes for the pods of known images, for the cluster's lifetime (docs/development.md).

        A session of its own, so it outlives the command that started the cluster (the demo's);
        `down()` stops it by its pid file."""
        self._stop_pod_runner()
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "modelcatalog.localcluster.podrunner",
            "--kubeconfig", str(self.kubeconfig), "--workdir", str(self.pods_dir),
        ]  # fmt: skip
        with (self.pods_dir / "podrunner.log").open("ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True
            )  # fmt: skip
        self.runner_pidfile.write_text(str(process.pid))

    def _stop_pod_runner(self) -> None:
        """SIGTERM (the runner stops its pods' processes), then SIGKILL of whatever is left of its session."""
        stop_process(self.runner_pidfile, b"modelcatalog.localcluster.podrunner", grace=10, session=True)

    def down(self) -> None:
        """Stop every process of the cluster and remove its state; safe to call when nothing runs."""
        self._stop_pod_runner()
        store = self.store()
        if store is not None:
            store.stop()
        self.store_settings.unlink(missing_ok=True)
        if not self.cluster_dir.exists():
            return
        subprocess.run(
            [self.tool("kwokctl"), "delete", "cluster", "--name", self.name],
            env=self.env(), capture_output=True, check=False,
        )  # fmt: skip
        self._kill_leftovers()
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)

    def install(self) -> None:
        install_catalog(self.kubectl)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [self.tool("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, env=self.env(), check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise ClusterStartError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def _create_retrying_port_races(self, command: list[str], attempts: int = 3) -> str:
        """kwokctl picks free ports when it starts each component, so two clusters started at once
        (other worktrees, other sessions) can pick the same one: start again with fresh ports."""
        for attempt in range(1, attempts + 1):
            try:
                return self._create(command)
            except ClusterStartError as error:
                if attempt == attempts or "address already in use" not in str(error):
                    raise
                self.down()
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _create(self, command: list[str]) -> str:
        """Run kwokctl create, stopping it as soon as a component has exited (kwokctl itself would wait
        two minutes for an API server that is not coming)."""
        with subprocess.Popen(
            command, env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        ) as create:
            while create.poll() is None:
                exited = self._exited_components()
                if exited:
                    create.kill()
                    create.wait()
                    detail = f"{exited[0]} exited; its log comes first below"
                    raise ClusterStartError(self._failure_report(f"starting {exited[0]}", detail, exited[0]))
                time.sleep(0.5)
            stderr = create.stderr.read() if create.stderr else ""
        if create.returncode != 0:
            raise ClusterStartError(self._failure_report("kwokctl create cluster", stderr))
        return stderr

    def _exited_components(self) -> list[str]:
        exited = []
        for pidfile in sorted(self.cluster_dir.glob("pids/*.pid")):
            try:
                stat = Path(f"/proc/{int(pidfile.read_text().strip())}/stat").read_text()
            except (OSError, ValueError):
                exited.append(pidfile.stem)
                continue
            if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:  # a zombie has exited too
                exited.append(pidfile.stem)
        return exited

    def _api_ready(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubectl("get", "--raw", "/readyz", "--request-timeout=2s", check=False).strip() == "ok":
                return True
            time.sleep(0.5)
        return False

    def _wait_ready(self, timeout: float = 90) -> None:
        """Nodes Ready (kwok heartbeats) and the default ServiceAccount present (pods need it)."""
        deadline = time.monotonic() + timeout
        expected = len(node_manifests())
        while time.monotonic() < deadline:
            nodes = json.loads(self.kubectl("get", "nodes", "-o", "json"))["items"]
            ready = [n for n in nodes if _condition_true(n, "Ready")]
            has_sa = self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False)
            if len(ready) == expected and has_sa:
                return
            time.sleep(0.5)
        raise ClusterStartError(self._failure_report("waiting for nodes and the default ServiceAccount", ""))

    def _failure_report(self, step: str, detail: str, culprit: str | None = None) -> str:
        lines = [f"local cluster {self.name!r}: {step} failed", detail.strip()]
        for component in sorted(COMPONENTS, key=lambda c: c != culprit):
            log = self.cluster_dir / "logs" / f"{component}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                lines += [f"--- {component} ({log}), last {len(tail)} lines:", *tail]
            else:
                lines.append(f"--- {component}: no log at {log} (not started)")
        return "\n".join(lines)

    def _kill_leftovers(self) -> None:
        """Processes of an interrupted run that kwokctl could not stop, found by their pid files."""
        for pidfile in self.cluster_dir.glob("pids/*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


POD_RANGE = re.compile(rb"--cidr=127\.(\d+)\.0\.1/16")


def loopback_octets_in_use() -> set[int]:
    """The pod ranges (127.N.0.1/16) of the kwok controllers running on this machine."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"kwok-controller"):
            found |= {int(m.group(1)) for arg in argv if (m := POD_RANGE.fullmatch(arg))}
    return found


def _condition_true(obj: dict[str, object], kind: str) -> bool:
    status = obj.get("status")
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)
