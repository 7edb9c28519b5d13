"""`modelcatalog cluster up|down|status`: the local control plane with simulated GPU node pools."""

from __future__ import annotations

import argparse
import signal

from modelcatalog.cli.errors import CliError, ExitCode
from modelcatalog.localcluster import ClusterStartError, LocalCluster
from modelcatalog.localcluster.launcher import OperatorProcess


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser("cluster", help="start or stop the local cluster")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run, text in (
        ("up", up, "start etcd, the API server, controller manager, scheduler and kwok with GPU node pools"),
        ("down", down, "stop every process of the local cluster and remove its state"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--name", default="modelcatalog", help="cluster name (default: modelcatalog)")
        command.set_defaults(run=run)


def up(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    try:
        seconds = cluster.up()
    except ClusterStartError as error:
        raise CliError(str(error), ExitCode.UNAVAILABLE) from error
    print(f"cluster {args.name!r} is up in {seconds:.1f} s")
    print(cluster.kubectl("get", "nodes", "-L", "modelcatalog.io/node-pool", "-L", "nvidia.com/gpu.product"))
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return ExitCode.OK


def down(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    OperatorProcess(cluster.kubeconfig, cluster.workdir).end_leftover(signal.SIGTERM)  # the demo's
    cluster.down()
    print(f"cluster {args.name!r} is down")
    return ExitCode.OK
