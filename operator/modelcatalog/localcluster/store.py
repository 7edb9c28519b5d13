"""The test bed's serverless store: a real `redis-server` (hack/redis.sh installs Debian's) per local cluster.

It listens on a loopback address of the cluster's own pod range (127.N.255.254), requires a password, keeps
nothing on disk, and is stopped with the cluster. Its URL and password are written next to the kubeconfig
(`<name>.store.json`, mode 0600) for the operator the tests, the demo and the benchmarks start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelcatalog.localcluster.pidfile import stop_process

CHART_SECRET = "modelcatalog-serverless-store"  # noqa: S105 (a Secret's name, in the release namespace)

PORT = 6379


class StoreStartError(RuntimeError):
    """redis-server did not start; the message has its log's tail."""


def redis_binary(tools: Path | None = None) -> Path | None:
    """redis-server of the tools directory (hack/tools.sh: MODELCATALOG_TOOLS_DIR, else the cache), else of
    PATH; None when there is none."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelcatalog" / "tools"
    given = os.environ.get("MODELCATALOG_TOOLS_DIR")
    places = [tools] if tools is not None else [*([Path(given)] if given else []), *sorted(cache.glob("*/"))]
    for place in places:
        if (place / "redis-server").exists():
            return place / "redis-server"
    found = shutil.which("redis-server")
    return Path(found) if found else None


@dataclass
class RedisProcess:
    binary: Path
    host: str
    port: int
    workdir: Path
    password: str = ""

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "redis.pid"

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = 10) -> None:
        self.stop()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password = self.password or secrets.token_urlsafe(24)
        config = self.workdir / "redis.conf"  # the password in a 0600 file, not on the command line
        config.touch(mode=0o600)
        config.write_text(
            f'bind {self.host}\nport {self.port}\nrequirepass {self.password}\nsave ""\nappendonly no\n'
            f"dir {self.workdir}\nlogfile {self.log}\npidfile {self.pidfile}\ndaemonize no\n"
            "protected-mode yes\n"
        )
        process = subprocess.Popen(
            [str(self.binary), str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StoreStartError(f"redis-server exited with {process.returncode}:\n{self._tail()}")
            if self._answers():
                self.pidfile.write_text(str(process.pid))
                return
            time.sleep(0.05)
        process.kill()
        raise StoreStartError(f"redis-server did not answer on {self.host}:{self.port} in {timeout:.0f} s")

    def stop(self) -> None:
        stop_process(self.pidfile, b"redis-server", grace=5)

    def write_settings(self, path: Path) -> None:
        path.touch(mode=0o600)
        path.write_text(json.dumps({"url": self.url, "password": self.password}))

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as conn:
                conn.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                answer = b""
                while b"+PONG" not in answer and b"-" not in answer:
                    answer += conn.recv(64) or b"-"
                return b"+PONG" in answer
        except OSError:
            return False

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"


def read_settings(path: Path) -> dict[str, str]:
    """The store's URL and password a cluster wrote (empty when it runs none)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in found.items() if k in ("url", "password")}


def chart_values(found: dict[str, str], kubectl: Callable[..., Any], namespace: str) -> dict[str, Any]:
    """The cluster's redis-server as the chart's existing serverless store (`found`: read_settings), its password
    put in a Secret of the release's namespace as a platform team would; {} when the cluster runs no store."""
    if not found:
        return {}
    kubectl("create", "namespace", namespace, check=False)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CHART_SECRET, "namespace": namespace},
              "stringData": {"password": found["password"]}}  # fmt: skip
    kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    return {"serverless": {"store": {"url": found["url"], "passwordSecret": CHART_SECRET}}}
