"""Router overhead: the same requests straight to the test server, through the router (static config), and
through the LiteLLM proxy.

Four processes on 127.0.0.1: the test server, the router, the LiteLLM proxy, and this client. Figures:
latency p50/p99 at concurrency 1 (added over direct), requests/s at concurrency 20, each way; the RSS of
the router and of the proxy after the run. Printed, and written to bench/out/router.json.

LiteLLM runs from its own virtualenv (.work/litellm-venv, made once with `python3.11 -m venv` and pip):
its pins must not touch the project's. It gets the same backend and a key check with a master key, no
database, and LITELLM_LOCAL_MODEL_COST_MAP=True (it would fetch its price list from the internet
otherwise); HTTP(S)_PROXY point at a closed loopback port so any other outbound call fails instead of
leaving the machine. When it cannot be installed or started, the output says why and the rest runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

HOST = "127.0.0.1"
KEY = "bench-key"
LITELLM_KEY = "sk-bench-key"  # LiteLLM's master keys start with sk-
LITELLM_VERSION = "1.106.12"  # the newest whose [proxy] extra resolves here (see pyproject.toml, extra bench)
BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "one two three four five six"}]}'
START_TIMEOUT = 30
LITELLM_START_TIMEOUT = 180  # imports a few hundred modules on first start
REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
LITELLM_VENV = REPO / ".work" / "litellm-venv"
CLOSED = f"http://{HOST}:9"  # the discard port: nothing listens, so a stray outbound call is refused


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def process(*args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m args` of this interpreter; output to `log` (a pipe nobody reads would block it)."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)])}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop(proc)


def descendants(pid: int) -> list[int]:
    """`pid` and the processes under it (LiteLLM may run its server in a child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_mib(pid: int) -> float:
    """VmRSS of `pid` and its descendants, MiB."""
    total = 0
    for each in descendants(pid):
        try:
            with open(f"/proc/{each}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1024


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_up(url: str, proc: subprocess.Popen[bytes], within: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} before {url} answered")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {within:.0f} s")


async def timed(session: aiohttp.ClientSession, url: str, key: str) -> float:
    started = time.perf_counter()
    async with session.post(url, data=BODY, headers={"Authorization": f"Bearer {key}"}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {(await response.text())[:300]}")
    return time.perf_counter() - started


async def latencies(url: str, key: str, count: int) -> list[float]:
    async with aiohttp.ClientSession() as session:
        for _ in range(min(50, count)):  # warm up connections and code paths
            await timed(session, url, key)
        return [await timed(session, url, key) for _ in range(count)]


async def throughput(url: str, key: str, count: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        left = iter(range(count))

        async def worker() -> None:
            for _ in left:
                await timed(session, url, key)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(url: str, key: str, count: int, concurrency: int) -> dict[str, float]:
    values = await latencies(url, key, count)
    return {
        "p50_ms": statistics.median(values) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "rps": await throughput(url, key, count * 2, concurrency),
    }


# --- LiteLLM, from its own virtualenv


def litellm_venv() -> Path:
    """The `litellm` command of .work/litellm-venv, installing it the first time; raises with the reason."""
    command = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / f"installed-{LITELLM_VERSION}"
    if command.exists() and marker.exists():
        return command
    python = shutil.which("python3.11")
    if python is None:
        raise RuntimeError("no python3.11 on PATH to make LiteLLM's virtualenv")
    print(f"  installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (once) ...", flush=True)
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = subprocess.run(
        [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0 or not command.exists():
        last = (pip.stderr or pip.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pip install litellm[proxy]=={LITELLM_VERSION} failed: {' / '.join(last)}")
    marker.touch()
    return command


def litellm_config(backend_port: int) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": "bench",
                "litellm_params": {
                    "model": "openai/bench",  # any OpenAI-compatible server at api_base
                    "api_base": f"http://{HOST}:{backend_port}/v1",
                    "api_key": "unused",
                },
            }
        ],
        "general_settings": {"master_key": LITELLM_KEY},  # key check without a database
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }


@contextmanager
def litellm_proxy(backend_port: int, port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = litellm_venv()
    config = workdir / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(backend_port)))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no price list from the internet
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "HF_HUB_OFFLINE": "1",
        "HTTP_PROXY": CLOSED,
        "HTTPS_PROXY": CLOSED,
        "http_proxy": CLOSED,
        "https_proxy": CLOSED,
        "NO_PROXY": f"{HOST},localhost",
        "no_proxy": f"{HOST},localhost",
    }
    args = [str(command), "--config", str(config), "--host", HOST, "--port", str(port), "--num_workers", "1"]
    log = workdir / "litellm.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        yield proc
    finally:
        stop(proc)


def run_litellm(backend_port: int, count: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    log = workdir / "litellm.log"
    try:
        with litellm_proxy(backend_port, port, workdir) as proc:
            asyncio.run(wait_up(f"http://{HOST}:{port}/health/liveliness", proc, LITELLM_START_TIMEOUT))
            figures: dict[str, Any] = asyncio.run(
                measure(f"http://{HOST}:{port}/v1/chat/completions", LITELLM_KEY, count, concurrency)
            )
            figures["rss_mib"] = rss_mib(proc.pid)
            figures["version"] = LITELLM_VERSION
            return figures
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        logged = tail(log)
        return {"error": reason + (f"\n{logged}" if logged else "")}


# --- the run


def endpoint(name: str, backend: str, **deployment: Any) -> dict[str, Any]:
    """A router config endpoint keyed by KEY, with one deployment of the same name on `backend`."""
    settings = {"maxConcurrentRequestsPerInstance": 256}
    return {
        "name": name,
        "keys": {"primary": KEY, "secondary": KEY + "-2"},
        "deployments": [{"name": name, "backends": [backend], "requestSettings": settings} | deployment],
    }


@dataclass(frozen=True)
class Served:
    backend_port: int
    router_port: int
    router: subprocess.Popen[bytes]
    workdir: Path


@contextmanager
def served(endpoints: Callable[[str], list[dict[str, Any]]], prefix: str) -> Iterator[Served]:
    """The test server and a router configured with `endpoints(backend address)` in front of it, both answering."""
    backend_port, router_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        (workdir / "router.yaml").write_text(yaml.safe_dump({"endpoints": endpoints(f"{HOST}:{backend_port}")}))
        server_args = ("modelcatalog.localcluster.testserver", "--host", HOST, "--port", str(backend_port))
        router_args = ("modelcatalog.router", "--config", str(workdir / "router.yaml"))
        with (
            process(*server_args, log=workdir / "testserver.log") as server,
            process(*router_args, "--host", HOST, "--port", str(router_port), log=workdir / "router.log") as router,
        ):
            asyncio.run(wait_up(f"http://{HOST}:{backend_port}/health", server))
            asyncio.run(wait_up(f"http://{HOST}:{router_port}/readyz", router))
            yield Served(backend_port, router_port, router, workdir)


def router_overhead(
    count: int = 500, concurrency: int = 20, litellm: bool = True, profile: bool = False
) -> dict[str, Any]:
    """Run every way; returns the figures, prints them and writes bench/out/router.json."""
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"count_c1": count, "count_c20": count * 2, "concurrency": concurrency}
    with served(lambda backend: [endpoint("bench", backend)], "routerbench-") as up:
        direct = f"http://{HOST}:{up.backend_port}/v1/chat/completions"
        routed = f"http://{HOST}:{up.router_port}/v1/chat/completions"
        results["direct"] = asyncio.run(measure(direct, KEY, count, concurrency))
        results["router"] = asyncio.run(measure(routed, KEY, count, concurrency))
        results["router"]["rss_mib"] = rss_mib(up.router.pid)
        if profile:
            results["profile"] = profile_router(up.router.pid, routed, count * 10, concurrency)
        if litellm:
            results["litellm"] = run_litellm(up.backend_port, count, concurrency, up.workdir)
    report(results)
    (OUT / "router.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def report(results: dict[str, Any]) -> None:
    direct, router, litellm = results["direct"], results["router"], results.get("litellm")
    concurrency = results["concurrency"]
    for name in ("router", "litellm"):
        figures = results.get(name)
        if figures and "error" not in figures:
            figures["added_p50_ms"] = figures["p50_ms"] - direct["p50_ms"]
            figures["added_p99_ms"] = figures["p99_ms"] - direct["p99_ms"]
    print(f"router: {results['count_c1']} requests at concurrency 1, {results['count_c20']} at concurrency"
          f" {concurrency}, same test server behind each")  # fmt: skip
    print(f"  {'':8} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} {'req/s c' + str(concurrency):>11}"
          f" {'RSS MiB':>8}")  # fmt: skip
    rows = [("direct", direct), ("router", router)] + ([("litellm", litellm)] if litellm else [])
    for name, figures in rows:
        if "error" in figures:
            print(f"  {name:8} not measured: {figures['error']}")
            continue
        added = (f"{figures['added_p50_ms']:10.2f} {figures['added_p99_ms']:10.2f}" if name != "direct"
                 else f"{'':10} {'':10}")  # fmt: skip
        rss = f"{figures['rss_mib']:8.0f}" if "rss_mib" in figures else f"{'':8}"
        print(f"  {name:8} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} {added} {figures['rps']:11.0f} {rss}")
    if litellm and "error" not in litellm:
        results["router_over_litellm_rps"] = router["rps"] / litellm["rps"]
        results["litellm_over_router_rss"] = litellm["rss_mib"] / router["rss_mib"]
        print(f"  router/LiteLLM requests/s at concurrency {concurrency}: {results['router_over_litellm_rps']:.1f}x;"
              f" LiteLLM {litellm['version']} RSS / router RSS: {results['litellm_over_router_rss']:.1f}x")  # fmt: skip
    print(f"  router/direct requests/s: {router['rps'] / direct['rps']:.2f}")


# --- profile (optional: py-spy in the project's virtualenv)


def profile_router(pid: int, url: str, count: int, concurrency: int) -> dict[str, Any]:
    """py-spy samples the router while `count` requests run at `concurrency`; raw stacks in bench/out."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    raw = OUT / "router-profile.txt"
    sampler = subprocess.Popen(
        [spy, "record", "-p", str(pid), "-r", "500", "-f", "raw", "-o", str(raw)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # attached
    rps = asyncio.run(throughput(url, KEY, count, concurrency))
    sampler.send_signal(2)  # SIGINT: py-spy writes what it has and exits
    sampler.wait(30)
    summary = summarize(raw)
    print(f"  profile of the router at concurrency {concurrency} ({count} requests, {rps:.0f}/s): {raw}")
    for line in summary["top"]:
        print(f"    {line}")
    return summary


def summarize(raw: Path, top: int = 12) -> dict[str, Any]:
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frame = stack.rsplit(";", 1)[-1]
        name = frame.split(" (")[0] + " (" + frame.split(" (")[-1].split("/")[-1].split(":")[0]
        own[name] = own.get(name, 0) + int(n)
        total += int(n)
    ranked = sorted(own.items(), key=lambda item: -item[1])[:top]
    return {"samples": total, "top": [f"{100 * n / max(total, 1):5.1f}% self  {name})" for name, n in ranked]}


if __name__ == "__main__":
    router_overhead()
