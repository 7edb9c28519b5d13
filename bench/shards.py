"""`python -m bench shards`: the same burst of ModelDeployments over namespaces, reconciled by one operator,
then by two shard operators that split the namespaces by label (docs/sharding.md), each on a fresh local
control plane. Prints the total time and, per shard, its objects' time, RSS, CPU and writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import kubernetes

from modelcatalog.localcluster import LocalCluster
from modelcatalog.localcluster.launcher import OperatorProcess
from modelcatalog.shard import LABEL

SHARD_NAMES = ("a", "b")


@contextmanager
def sharded_testbed(shards: int) -> Iterator[tuple[LocalCluster, dict[str, OperatorProcess]]]:
    """A fresh control plane and its operators: one unsharded (shards=1), or shards a (owning the shared
    objects), b, ... each serving the namespaces labelled with its name."""
    cluster = LocalCluster(f"bench-shards-{shards}", run_pods=False)
    cluster.up()
    cluster.install()
    logs = cluster.workdir / "bench-logs"
    operators = (
        {"": OperatorProcess(cluster.kubeconfig, logs)}
        if shards == 1
        else {
            name: OperatorProcess(cluster.kubeconfig, logs / f"shard-{name}", env={
                "MODELCATALOG_SHARD": name, "MODELCATALOG_SHARD_OWNS_SHARED": str(i == 0).lower()})
            for i, name in enumerate(SHARD_NAMES[:shards])
        }
    )  # fmt: skip
    try:
        for operator in operators.values():
            operator.start()
        yield cluster, operators
    finally:
        for operator in operators.values():
            operator.stop()
        cluster.down()


def labelled_namespaces(cluster: LocalCluster, count: int, shards: list[str]) -> dict[str, str]:
    """Namespace -> the shard it is labelled for ("" unsharded: no label), round robin."""
    found = {f"bench-{i}": shards[i % len(shards)] for i in range(count)}
    cluster.kubectl("apply", "-f", "-", stdin="".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n"
        + (f"  labels:\n    {LABEL}: {shard}\n" if shard else "")
        for n, shard in found.items()))  # fmt: skip
    return found


def burst(count: int, spread: int, shards: int) -> float:
    """The burst's time to the last status; prints the per-operator figures."""
    from bench.__main__ import StatusWatch, create_all, md, process_figures, settle

    with sharded_testbed(shards) as (cluster, operators):
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        owner_of = labelled_namespaces(cluster, spread, list(operators))
        names = list(owner_of)
        manifests = [md(names[i % spread], f"md-{i}") for i in range(count)]
        keys = {(m["metadata"]["namespace"], m["metadata"]["name"]) for m in manifests}
        watch = StatusWatch(api)
        before = {name: process_figures(op.pid) for name, op in operators.items()}
        started = time.monotonic()
        asyncio.run(create_all(cluster.kubeconfig, manifests))
        accepted = time.monotonic() - started
        watch.wait(keys, 900)
        total = max(watch.seen.values()) - started
        watch.stop()
        label = "one operator" if shards == 1 else f"{shards} shards"
        print(f"shards: burst of {count} ModelDeployments over {spread} namespaces, {label}:")
        print(f"  all accepted in {accepted:.1f} s; all reconciled (status written) in {total:.1f} s"
              f" ({count / total:.0f}/s)")  # fmt: skip
        for name, operator in operators.items():
            own = [k for k in keys if owner_of[k[0]] == name]
            settle(operator, started, len(own), timeout=total + 600)  # the timeout counts from `started`
            peak, cpu = process_figures(operator.pid)
            writes = operator.metric("modelcatalog_api_writes_total")
            last = max(watch.seen[k] for k in own) - started
            print(f"  {'shard ' + name if name else 'operator'}: {len(own)} objects, last status at {last:.1f} s;"
                  f" peak RSS {peak:.0f} MiB (idle {before[name][0]:.0f}), CPU {cpu - before[name][1]:.1f} s,"
                  f" {writes:.0f} writes")  # fmt: skip
        return total


def shards_bench(count: int, spread: int) -> None:
    one = burst(count, spread, 1)
    two = burst(count, spread, 2)
    print(f"shards: two shards took {two / one:.2f}x the time of one operator ({two:.1f} s vs {one:.1f} s)")
