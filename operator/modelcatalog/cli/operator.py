"""`modelcatalog operator run`: the kopf operator, cluster-wide (also `kopf run -m modelcatalog.controllers -A`)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import time

from modelcatalog.cli.errors import ExitCode


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser("operator", help="run the operator")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="reconcile every namespace until stopped")
    run_parser.add_argument("--kubeconfig", help="kubeconfig to use (default: in-cluster, then KUBECONFIG)")
    run_parser.add_argument("--standalone", action="store_true", help="no peering (only one replica may run)")
    run_parser.add_argument("--liveness", default="http://0.0.0.0:8081/healthz", help="liveness endpoint URL")
    run_parser.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics port (0: off)")
    run_parser.add_argument(
        "--metrics-address",
        default="0.0.0.0",  # noqa: S104 (in a pod: the pod's own addresses)
        help="address the metrics server binds (default: all; the chart sets the pod IP)",
    )
    run_parser.add_argument("--verbose", action="store_true", help="debug logging")
    run_parser.set_defaults(run=run)


def bracket_ipv6(url: str) -> str:
    """`http://$(POD_IP):8081/healthz` of an IPv6 pod (`fd00::5`) as a URL: the address in brackets."""
    match = re.fullmatch(r"(\w+://)([^/\[\]]*:[^/\[\]]*):(\d+)(/.*)?", url)
    return f"{match[1]}[{match[2]}]:{match[3]}{match[4] or ''}" if match else url


def run(args: argparse.Namespace) -> int:
    import kopf

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
        os.environ["MODELCATALOG_KUBECONFIG"] = args.kubeconfig
    os.environ["MODELCATALOG_METRICS_PORT"] = str(args.metrics_port)
    os.environ["MODELCATALOG_METRICS_ADDRESS"] = args.metrics_address
    if args.standalone:
        os.environ["MODELCATALOG_STANDALONE"] = "1"
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    if not args.verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # not one line per handled event
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # nor per probe of /healthz
    import modelcatalog.controllers  # noqa: F401  (registers the handlers)

    kopf.run(
        clusterwide=True,
        standalone=args.standalone,
        liveness_endpoint=bracket_ipv6(args.liveness) if args.liveness else None,
        # The newest replica outranks the others: a restart never waits for its dead predecessor's record.
        priority=time.time_ns() // 1_000_000,
    )
    return ExitCode.OK
