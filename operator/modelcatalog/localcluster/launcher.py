"""The real operator as a separate process, for the demo, the tests and the benchmarks (admin kubeconfig)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from modelcatalog.localcluster.cluster import REPO_ROOT as REPO
from modelcatalog.localcluster.store import read_settings

# The test bed's platform settings, the same the demo gives the chart (testbed-values.yaml): two
# open-weight models on the platform's own serverless pool (the catalog's serverless offers of them are
# retired): Phi-3-mini (first party, fits the one T4 node) and Mistral-7B-Instruct (third party: terms
# required). The tests' operator also allows LoadBalancer routers for public workspaces (nothing provisions
# one here: the Service keeps its ClusterIP, which the pod runner forwards).
TESTBED_VALUES = Path(__file__).resolve().parent / "testbed-values.yaml"
TEST_BED_SETTINGS = {
    f"MODELCATALOG_{key}": str(value) for key, value in yaml.safe_load(TESTBED_VALUES.read_text())["settings"].items()
} | {"MODELCATALOG_ROUTER_LOAD_BALANCER": "true"}


def store_env(kubeconfig: Path) -> dict[str, str]:
    """The operator's settings for the serverless store the local cluster of this kubeconfig runs (if any)."""
    found = read_settings(kubeconfig.with_suffix(".store.json"))
    if not found:
        return {}
    return {
        "MODELCATALOG_SERVERLESS_STORE_URL": found["url"],
        "MODELCATALOG_SERVERLESS_STORE_PASSWORD": found["password"],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_recorded(pidfile: Path, signum: int) -> None:
    """Signal the operator a pid file names, if that pid is still an operator, and remove the file."""
    try:
        pid = int(pidfile.read_text())
        if b"modelcatalog\x00operator\x00run" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signum)
    except (OSError, ValueError):
        pass
    pidfile.unlink(missing_ok=True)


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        detached: bool = False,
        env: dict[str, str] | None = None,
        source: Path = REPO,
    ) -> None:
        """`detached`: the operator outlives this process (the demo leaves it running for the user).
        `env`: settings on top of this process's environment (settings.py).
        `source`: a checkout whose operator to run (the benchmarks compare against another commit's)."""
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.detached = detached
        self.env = TEST_BED_SETTINGS | store_env(kubeconfig) | (env or {})
        self.source = source
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.health_port = free_port()
        self.metrics_port = free_port()

    @property
    def log(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    @property
    def pidfile(self) -> Path:
        return self.log_dir / "operator.pid"

    def end_leftover(self, signum: int = signal.SIGKILL) -> None:
        """Stop an operator an earlier run left behind (its pid file names it)."""
        stop_recorded(self.pidfile, signum)

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.end_leftover()
        command = [
            sys.executable, "-m", "modelcatalog", "operator", "run", "--kubeconfig", str(self.kubeconfig),
            "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
            "--metrics-address", "127.0.0.1", "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.source,
                env=os.environ | self.env | {"PYTHONPATH": str(self.source / "operator")},
                start_new_session=self.detached,
            )  # fmt: skip
        self.pidfile.write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.tail()}")
            if self._healthy():
                return
            time.sleep(0.3)
        raise RuntimeError(f"the operator did not become healthy in {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """Stop without a clean shutdown, as a node failure would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metric(self, name: str) -> float:
        """The sum of a counter over its labels, from the operator's Prometheus endpoint."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # noqa: S310 (loopback)
            text = response.read().decode()
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False
