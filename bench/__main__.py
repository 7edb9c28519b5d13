"""`python -m bench [latency|burst|floor|network|router|safety|faults|serverless|shards|all]`: figures for
docs/performance.md.

burst ends with a restart; floor makes the burst's API requests without the operator (bench/floor.py);
faults applies fuzzed specs and kills the operator mid-burst (bench/faults.py);
shards runs the burst with one operator, then with two shard operators (bench/shards.py).
Each run also writes its figures as JSON (.work/bench/<bench>-<commit>-<time>.json, or --json PATH);
`python -m bench compare A.json B.json` prints two runs side by side (bench/record.py).

Every benchmark runs the real operator as its own process against a fresh local control plane.
ModelDeployments are created with instanceCount 0, so what is measured is the operator (children
applied, status written), not the scheduler or kwok placing pods.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes

from bench import floor, record
from bench.router import router_overhead
from bench.safety import safety_overhead
from bench.serverless import metering, status_delay
from modelcatalog.kube.client import KubeClient
from modelcatalog.kube.resources import resource
from modelcatalog.localcluster import LocalCluster
from modelcatalog.localcluster.cluster import REPO_ROOT
from modelcatalog.localcluster.launcher import OperatorProcess

GROUP, VERSION = "modelcatalog.io", "v1alpha1"


def md(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": "meta-llama-3-8b-instruct", "instanceType": "standard-nc24ads-a100-v4",
                 "instanceCount": 0} | spec,
    }  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def process_figures(pid: int) -> tuple[float, float]:
    """Peak RSS (MiB) and CPU seconds (user + system) of a process so far."""
    with open(f"/proc/{pid}/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak, (int(fields[11]) + int(fields[12])) / ticks


CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok-controller")


def control_plane_cpu(cluster: LocalCluster) -> dict[str, float]:
    """CPU seconds so far of each control-plane component (by kwokctl's pid files): where the rest of a burst goes."""
    found = {}
    for name in CONTROL_PLANE:
        try:
            found[name] = process_figures(int((cluster.cluster_dir / "pids" / f"{name}.pid").read_text()))[1]
        except (OSError, ValueError):
            found[name] = 0.0
    return found


class StatusWatch:
    """Records when each ModelDeployment first reports a status for its generation (a watch, in a thread)."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self._custom = kubernetes.client.CustomObjectsApi(api)
        self._watch = kubernetes.watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._stopped = False
        while not self._stopped:  # a watch ends at the server's timeout, or on an error event: start again
            try:
                for event in self._watch.stream(
                    self._custom.list_cluster_custom_object, GROUP, VERSION, "modeldeployments", timeout_seconds=300
                ):
                    self._record(event)
            except Exception as error:
                print(f"  (watch restarted: {error})", file=sys.stderr)

    def _record(self, event: dict[str, Any]) -> None:
        if event.get("type") == "ERROR":
            return
        obj = event["object"]
        meta, status = obj["metadata"], obj.get("status") or {}
        key = (meta["namespace"], meta["name"])
        if status.get("observedGeneration") == meta.get("generation") and key not in self.seen:
            self.seen[key] = time.monotonic()

    def wait(self, keys: set[tuple[str, str]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not keys <= set(self.seen):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(keys - set(self.seen))} objects have no status after {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


@contextmanager
def testbed(
    name: str = "bench", source: Path = REPO_ROOT
) -> Iterator[tuple[LocalCluster, OperatorProcess, kubernetes.client.ApiClient]]:
    cluster = LocalCluster(name, run_pods=False)  # the operator alone: no router or model-server processes
    cluster.up()
    cluster.install()
    operator = OperatorProcess(cluster.kubeconfig, cluster.workdir / f"{name}-logs", source=source)
    try:
        operator.start()
        yield cluster, operator, kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    finally:
        operator.stop()
        cluster.down()


async def create_all(kubeconfig: Path, manifests: list[dict[str, Any]], concurrency: int = 16) -> dict[Any, float]:
    """Apply every manifest (as a user would, with our async client), returning when each was accepted."""
    client = KubeClient.from_config(str(kubeconfig))
    slots = asyncio.Semaphore(concurrency)
    created: dict[Any, float] = {}

    async def one(manifest: dict[str, Any]) -> None:
        async with slots:
            await client.apply(manifest)
            created[(manifest["metadata"].get("namespace"), manifest["metadata"]["name"])] = time.monotonic()

    try:
        await asyncio.gather(*(one(m) for m in manifests))
    finally:
        await client.close()
    return created


def namespaces(cluster: LocalCluster, count: int) -> list[str]:
    names = [f"bench-{i}" for i in range(count)]
    cluster.kubectl("apply", "-f", "-", stdin="".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n" for n in names))  # fmt: skip
    return names


def settle(operator: OperatorProcess, started: float, at_least: int, quiet: float = 3.0, timeout: float = 600) -> float:
    """Seconds from `started` until the operator made `at_least` reconciles and then none for `quiet` seconds
    (waiting at most `timeout` seconds from this call)."""
    last, last_change = -1.0, time.monotonic()
    begun = last_change
    while time.monotonic() - begun < timeout:
        count = operator.metric("modelcatalog_reconciles_total")
        if count != last:
            last, last_change = count, time.monotonic()
        elif count >= at_least and time.monotonic() - last_change >= quiet:
            return last_change - started
        time.sleep(0.2)
    raise TimeoutError("the operator did not settle")


def latency(count: int) -> dict[str, float | int | str]:
    with testbed() as (cluster, _, api):
        [ns] = namespaces(cluster, 1)
        watch = StatusWatch(api)
        samples = []
        for i in range(count):
            created = asyncio.run(create_all(cluster.kubeconfig, [md(ns, f"md-{i}")]))
            key = next(iter(created))
            watch.wait({key}, 60)
            samples.append(watch.seen[key] - created[key])
        watch.stop()
        ms = [s * 1000 for s in samples]
        print(f"latency, create -> children applied and status written, {count} objects one at a time:")
        print(f"  p50 {percentile(ms, 50):.0f} ms  p95 {percentile(ms, 95):.0f} ms  p99 {percentile(ms, 99):.0f} ms"
              f"  mean {statistics.mean(ms):.0f} ms")  # fmt: skip
        quantiles = {f"p{q}_ms": round(percentile(ms, q), 1) for q in (50, 95, 99)}
        return {"count": count, **quantiles, "mean_ms": round(statistics.mean(ms), 1)}


def peer_checkout(ref: str) -> Path:
    """A worktree of this repository at `ref` (kept under .work/ for the next run)."""
    path = REPO_ROOT / ".work" / f"peer-{ref}"
    if not path.exists():
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(path), ref], check=True)
    return path


def burst_and_restart(count: int, spread: int, source: Path = REPO_ROOT) -> dict[str, float | int | str]:
    label = "this checkout" if source == REPO_ROOT else f"peer {source.name}"
    print(f"--- operator of {label}")
    with testbed(source=source) as (cluster, operator, api):
        names = namespaces(cluster, spread)
        manifests = [md(names[i % spread], f"md-{i}") for i in range(count)]
        watch = StatusWatch(api)
        rss0, cpu0 = process_figures(operator.pid)
        plane0 = control_plane_cpu(cluster)
        started = time.monotonic()
        asyncio.run(create_all(cluster.kubeconfig, manifests))
        accepted = time.monotonic() - started
        watch.wait({(m["metadata"]["namespace"], m["metadata"]["name"]) for m in manifests}, max(900, count * 0.5))
        total = max(watch.seen.values()) - started
        plane = {name: seconds - plane0[name] for name, seconds in control_plane_cpu(cluster).items()}
        watch.stop()
        settle(operator, started, count, timeout=max(600, count * 0.5))
        peak, cpu = process_figures(operator.pid)
        print(f"burst, {count} ModelDeployments over {spread} namespaces:")
        print(f"  all accepted by the API server in {accepted:.1f} s; all reconciled (status written) in {total:.1f} s"
              f" ({count / total:.0f}/s)")  # fmt: skip
        print(f"  operator peak RSS {peak:.0f} MiB (idle before: {rss0:.0f} MiB), CPU {cpu - cpu0:.1f} s;"
              f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print("  control plane CPU until all reconciled: " + ", ".join(f"{k} {v:.1f} s" for k, v in plane.items()))
        writes_before = operator.metric("modelcatalog_api_writes_total")
        reconciles = operator.metric("modelcatalog_reconciles_total")
        print(f"  API writes during the burst: {writes_before:.0f} ({writes_before / count:.1f} per object);"
              f" reconciles: {reconciles:.0f}")  # fmt: skip
        figures: dict[str, float | int | str] = {
            "count": count, "namespaces": spread, "accepted_s": round(accepted, 2), "reconciled_s": round(total, 2),
            "per_object_ms": round(total / count * 1000, 2), "peak_rss_mib": round(peak), "idle_rss_mib": round(rss0),
            "cpu_s": round(cpu - cpu0, 1), "apiserver_cpu_s": round(plane["kube-apiserver"], 1),
            "etcd_cpu_s": round(plane["etcd"], 1), "writes": writes_before,
            "controller_manager_cpu_s": round(plane["kube-controller-manager"], 1),
            "writes_per_object": round(writes_before / count, 2), "reconciles": reconciles,
        }  # fmt: skip

        operator.stop()
        started = time.monotonic()
        operator.start()
        seconds = settle(operator, started, count, timeout=max(600, count * 0.5))
        reconciles = operator.metric("modelcatalog_reconciles_total")
        writes = operator.metric("modelcatalog_api_writes_total")
        peak, cpu = process_figures(operator.pid)
        print(f"restart with {count} existing ModelDeployments (nothing changed):")
        print(f"  settled {seconds:.1f} s after the operator started ({reconciles:.0f} reconciles);"
              f" writes: {writes:.0f}; peak RSS {peak:.0f} MiB, CPU {cpu:.1f} s")  # fmt: skip
        return figures | {
            "restart_settled_s": round(seconds, 2), "restart_reconciles": reconciles, "restart_writes": writes,
            "restart_peak_rss_mib": round(peak), "restart_cpu_s": round(cpu, 1),
        }  # fmt: skip


def burst_floor(count: int, spread: int) -> dict[str, float | int | str]:
    """The burst's API requests made by a plain client with the operator stopped (bench/floor.py), each way."""
    figures: dict[str, float | int | str] = {"count": count, "namespaces": spread}
    for lookups in (False, True):
        with testbed("bench-floor") as (cluster, operator, _):
            operator.stop()
            names = namespaces(cluster, spread)
            manifests = [md(names[i % spread], f"md-{i}") for i in range(count)]
            plane0 = control_plane_cpu(cluster)
            seconds = asyncio.run(floor.run(str(cluster.kubeconfig), manifests, lookups))
            plane = {name: cpu - plane0[name] for name, cpu in control_plane_cpu(cluster).items()}
        way = "with a lookup before each child" if lookups else "no lookups"
        print(f"floor, {count} ModelDeployments' requests over {spread} namespaces, no operator ({way}):"
              f" all answered in {seconds:.1f} s ({count / seconds:.0f}/s)")  # fmt: skip
        print("  control plane CPU: " + ", ".join(f"{k} {v:.1f} s" for k, v in plane.items()))
        suffix = "_lookups" if lookups else ""
        figures |= {
            f"answered_s{suffix}": round(seconds, 2), f"apiserver_cpu_s{suffix}": round(plane["kube-apiserver"], 1),
            f"etcd_cpu_s{suffix}": round(plane["etcd"], 1),
            f"controller_manager_cpu_s{suffix}": round(plane["kube-controller-manager"], 1),
        }  # fmt: skip
    return figures


def network(endpoint_counts: list[int], flips: int = 5) -> dict[str, float | int | str]:
    figures: dict[str, float | int | str] = {}
    with testbed() as (cluster, operator, api):
        core = kubernetes.client.NetworkingV1Api(api)
        for count in endpoint_counts:
            ns = f"bench-net-{count}"
            cluster.kubectl("create", "namespace", ns)
            watch = StatusWatch(api)
            manifests = [md(ns, f"ep-{i}") for i in range(count)]
            asyncio.run(create_all(cluster.kubeconfig, manifests))
            watch.wait({(ns, m["metadata"]["name"]) for m in manifests}, 600)
            watch.stop()
            access = AccessWatch(api, ns)
            policy_times, status_times = [], []
            for flip in range(flips):
                disabled = flip % 2 == 0
                policy_times.append(flip_once(cluster, core, ns, disabled))
                status_times.append(endpoints_follow(access, "Disabled" if disabled else "Enabled", count)
                                    + policy_times[-1])  # fmt: skip
            if count == endpoint_counts[-1]:
                operator.stop()  # the floor: the same status writes without the operator's work around them
                modes = ["Disabled" if flip % 2 == 0 else "Enabled" for flip in range(flips, 2 * flips)]  # going on
                alone = [status_writes(cluster.kubeconfig, access, ns, count, mode) for mode in modes]
            access.stop()
            print(f"network flag flip, workspace with {count} endpoint(s), {flips} flips:")
            print(f"  policies in force: median {statistics.median(policy_times) * 1000:.0f} ms,"
                  f" max {max(policy_times) * 1000:.0f} ms")  # fmt: skip
            median, worst = statistics.median(status_times) * 1000, max(status_times) * 1000
            print(f"  every endpoint's status shows the new mode: median {median:.0f} ms, max {worst:.0f} ms")
            if count == endpoint_counts[-1]:
                alone_ms = statistics.median(alone) * 1000
                print(f"  the API server alone (operator stopped), {count} status patches {floor.IN_FLIGHT} at a"
                      f" time until the watch shows them all: median {alone_ms:.0f} ms")  # fmt: skip
                figures[f"floor_median_ms_{count}"] = round(alone_ms, 1)
            figures |= {
                f"policies_median_ms_{count}": round(statistics.median(policy_times) * 1000, 1),
                f"status_median_ms_{count}": round(median, 1), f"status_max_ms_{count}": round(worst, 1),
            }  # fmt: skip
    return figures


def status_writes(kubeconfig: Path, access: AccessWatch, ns: str, count: int, mode: str) -> float:
    """Seconds for `count` endpoint status patches to `mode`, as many at a time as the operator makes, to show in
    the watch."""

    async def patch_all() -> None:
        client = KubeClient.from_config(str(kubeconfig))
        slots = asyncio.Semaphore(floor.IN_FLIGHT)
        info = resource(f"{GROUP}/{VERSION}", "ModelDeployment")

        async def one(i: int) -> None:
            async with slots:
                await client.patch_status(info, f"ep-{i}", ns, {"endpoint": {"networkAccess": mode}})

        try:
            await asyncio.gather(*(one(i) for i in range(count)))
        finally:
            await client.close()

    started = time.monotonic()
    asyncio.run(patch_all())
    endpoints_follow(access, mode, count)
    return time.monotonic() - started


def flip_once(cluster: LocalCluster, core: Any, ns: str, disabled: bool) -> float:
    spec = ('{"publicNetworkAccess":"Disabled","privateEndpoints":[{"name":"vpn","cidrs":["10.8.0.0/16"]}]}'
            if disabled else '{"publicNetworkAccess":"Enabled","privateEndpoints":[]}')  # fmt: skip
    metadata = f'{{"name":"ws","namespace":"{ns}"}}'
    manifest = f'{{"apiVersion":"{GROUP}/{VERSION}","kind":"WorkspaceNetwork","metadata":{metadata},"spec":{spec}}}'
    started = time.monotonic()
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=manifest)

    def enforced() -> bool:
        try:
            policy = core.read_namespaced_network_policy("modelcatalog-router-ingress", ns)
        except kubernetes.client.ApiException:
            return False
        peers = [p for rule in policy.spec.ingress or [] for p in rule._from or []]
        return bool(peers) == disabled

    poll(enforced, 60)
    return time.monotonic() - started


class AccessWatch:
    """The network access each endpoint of one namespace shows, kept current by a watch (in a thread): probing
    costs the API server nothing (a list of 200 objects every 50 ms, or a kubectl per probe, did)."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.modes: dict[str, str | None] = {}
        self._custom = kubernetes.client.CustomObjectsApi(api)
        self._namespace = namespace
        self._watch = kubernetes.watch.Watch()
        self._stopped = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stopped:
            try:
                for event in self._watch.stream(self._custom.list_namespaced_custom_object, GROUP, VERSION,
                                                self._namespace, "modeldeployments", timeout_seconds=300):  # fmt: skip
                    obj = event["object"]
                    if event.get("type") != "ERROR":
                        endpoint = (obj.get("status") or {}).get("endpoint") or {}
                        self.modes[obj["metadata"]["name"]] = endpoint.get("networkAccess")
            except Exception as error:
                print(f"  (watch restarted: {error})", file=sys.stderr)

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def endpoints_follow(access: AccessWatch, mode: str, count: int) -> float:
    """Seconds until every endpoint shows `mode`."""
    started = time.monotonic()
    poll(lambda: len(access.modes) == count and set(access.modes.values()) == {mode}, 120, interval=0.01)
    return time.monotonic() - started


def poll(probe: Callable[[], bool], timeout: float, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(interval)


def faults(fuzz_count: int, burst_count: int) -> dict[str, float | int | str]:
    from bench.faults import (  # hypothesis is a dev dependency: only this bench needs it
        apiserver_bench,
        fuzz_bench,
        kill_bench,
    )

    with testbed("bench-faults") as (cluster, operator, _):
        print(f"faults: {fuzz_count} fuzzed specs")
        failures = fuzz_bench(cluster.kubeconfig, operator, cluster.kubectl, fuzz_count)
        print(f"faults: kill -9 in the middle of a burst of {burst_count} ModelDeployments")
        failures += kill_bench(cluster.kubeconfig, operator, cluster.kubectl, burst_count)
        print(f"faults: kube-apiserver restarted in the middle of a burst of {burst_count // 2}")
        half = burst_count // 2
        failures += apiserver_bench(cluster.kubeconfig, cluster.cluster_dir, operator, cluster.kubectl, half)
    for failure in failures[:50]:
        print(f"  FAILED: {failure}")
    print(f"faults: {len(failures)} failures")
    return {"fuzz_count": fuzz_count, "burst_count": burst_count, "failures": len(failures)}


def run(args: argparse.Namespace) -> record.Figures:
    figures: record.Figures = {}
    if args.which in ("all", "latency"):
        figures["latency"] = latency(args.latency_count)
    if args.which in ("all", "burst"):
        if args.peer:
            figures[f"burst-peer-{args.peer}"] = burst_and_restart(
                args.burst_count, args.namespaces, peer_checkout(args.peer)
            )
        figures["burst"] = burst_and_restart(args.burst_count, args.namespaces)
    if args.which in ("all", "floor"):
        figures["floor"] = burst_floor(args.burst_count, args.namespaces)
    if args.which in ("all", "network"):
        figures["network"] = network([1, 200])
    if args.which in ("all", "router"):
        figures["router"] = record.flat(router_overhead(args.router_count, litellm=not args.no_litellm,
                                                        profile=args.profile))  # fmt: skip
    if args.which in ("all", "safety"):
        figures["safety"] = record.flat(safety_overhead(args.router_count))
    if args.which in ("all", "serverless"):
        metering(args.serverless_count)
        if args.status:
            status_delay()
    if args.which in ("all", "faults"):
        figures["faults"] = faults(args.fuzz_count, args.burst_count)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "which", nargs="?", default="all",
        choices=["all", "latency", "burst", "floor", "network", "router", "safety", "faults", "serverless", "shards",
                 "compare"],
    )  # fmt: skip
    parser.add_argument("records", nargs="*", type=Path, help="compare: two JSON records, A then B")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument("--latency-count", type=int, default=300)
    parser.add_argument("--burst-count", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--peer", metavar="REF", help="burst: also run the operator of this commit, first")
    parser.add_argument("--fuzz-count", type=int, default=1000, help="faults: fuzzed specs applied")
    parser.add_argument("--router-count", type=int, default=500, help="router: requests at concurrency 1 (2x at 20)")
    parser.add_argument("--no-litellm", action="store_true", help="router: skip the LiteLLM proxy")
    parser.add_argument("--profile", action="store_true", help="router: py-spy profile of the router at 20")
    parser.add_argument("--serverless-count", type=int, default=500, help="serverless: requests at concurrency 1")
    parser.add_argument("--status", action="store_true", help="serverless: also the delay to status.usage (a cluster)")
    args = parser.parse_args()
    if args.which == "compare":
        if len(args.records) != 2:
            parser.error("compare takes two JSON records: A.json B.json")
        print("\n".join(record.compare(record.load(args.records[0]), record.load(args.records[1]))))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python {sys.version.split()[0]} ({sys.executable})")
    commit = record.commit_of(REPO_ROOT)
    figures = run(args)
    found = record.new_record(commit, figures)
    for path in [record.default_path(REPO_ROOT / ".work" / "bench", args.which, found), *filter(None, [args.json])]:
        record.write(path, found)
        print(f"figures written to {path}")
    if figures.get("faults", {}).get("failures"):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
