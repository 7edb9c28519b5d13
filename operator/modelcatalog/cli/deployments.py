"""`modelcatalog deployments list [-n NS | -A]`: the cluster's ModelDeployments and what each costs per hour.

Cost per hour = instances x the InstanceType's `spec.pricing.perHour` (instances: spec.instanceCount, or with
autoscale the replicas the status reports). A type without a price says "not set": nothing is guessed.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from modelcatalog import GROUP, VERSION
from modelcatalog.api.catalog import InstanceTypeSpec
from modelcatalog.api.kinds import MODEL_DEPLOYMENT
from modelcatalog.cli import output
from modelcatalog.cli.errors import ExitCode
from modelcatalog.cli.modelsource import REQUEST_TIMEOUT, ClusterUnavailable, api_client, kubeconfig_path, list_objects
from modelcatalog.cli.modelviews import NOT_SET

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

RESOURCE = f"modeldeployment.{GROUP}"


def register(groups: Subparsers) -> None:
    parser = groups.add_parser("deployments", help="ModelDeployments in the cluster and their estimated cost")
    commands = parser.add_subparsers(dest="command", required=True)
    text = "list ModelDeployments with their estimated cost per hour (instances x the instance type's price)"
    command = commands.add_parser("list", help=text, description=text[0].upper() + text[1:] + ".")
    where = command.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's, else default)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    command.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    output.add_output_flag(command)
    command.set_defaults(run=run_list)


def context_namespace(kubeconfig: str | None) -> str:
    try:
        _, current = config.list_kube_config_contexts(config_file=kubeconfig_path(kubeconfig))
    except (config.ConfigException, OSError, TypeError, ValueError):
        return "default"
    return str((current or {}).get("context", {}).get("namespace") or "default")


def list_deployments(api: Any, namespace: str | None) -> list[dict[str, Any]]:
    if namespace is None:
        return list_objects(api, MODEL_DEPLOYMENT.plural, MODEL_DEPLOYMENT.kind)
    host = api.api_client.configuration.host
    try:
        listing = api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, MODEL_DEPLOYMENT.plural, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as error:
        if error.status == 404:
            raise ClusterUnavailable(f"the cluster at {host} has no ModelDeployment CRD") from error
        raise ClusterUnavailable(f"listing modeldeployments at {host} failed: {error.status} {error.reason}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ClusterUnavailable(f"cannot reach the cluster at {host}: {error}") from error
    return [item | {"apiVersion": MODEL_DEPLOYMENT.api_version, "kind": MODEL_DEPLOYMENT.kind}
            for item in listing.get("items", [])]  # fmt: skip


def instance_types(api: Any) -> dict[str, InstanceTypeSpec]:
    found = {}
    for item in list_objects(api, "instancetypes", "InstanceType"):
        try:
            found[item["metadata"]["name"]] = InstanceTypeSpec.model_validate(item.get("spec") or {})
        except ValidationError:
            continue  # shown as an unknown type: its price cannot be read
    return found


def instances(deployment: dict[str, Any]) -> int:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if spec.get("autoscale") and status.get("replicas") is not None:
        return int(status["replicas"])
    return int(spec.get("instanceCount", 1))


def cost(deployment: dict[str, Any], types: dict[str, InstanceTypeSpec]) -> tuple[str, str, Decimal | None, str]:
    """(price per instance, cost per hour, the cost as a number or None, currency) as cells."""
    name = (deployment.get("spec") or {}).get("instanceType", "")
    it = types.get(name)
    if it is None:
        return f"{NOT_SET} (no InstanceType {name})", NOT_SET, None, ""
    if it.pricing is None:
        return NOT_SET, NOT_SET, None, ""
    total = Decimal(it.pricing.per_hour) * instances(deployment)
    currency = it.pricing.currency
    return f"{it.pricing.per_hour} {currency}/hour", f"{total:.2f} {currency}/hour", total, currency


HEADERS = ("NAME", "MODEL", "INSTANCE TYPE", "INSTANCES", "PRICE PER INSTANCE", "COST PER HOUR", "PHASE")
WIDE_HEADERS = ("ENDPOINT", "TRAFFIC", "READY")


def listing(
    deployments: list[dict[str, Any]], types: dict[str, InstanceTypeSpec], all_namespaces: bool
) -> output.Listing:
    rows, wide = [], []
    totals: dict[str, Decimal] = defaultdict(Decimal)
    unpriced = 0
    for item in deployments:
        meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
        price, per_hour, total, currency = cost(item, types)
        if total is None:
            unpriced += 1
        else:
            totals[currency] += total
        namespace = [meta.get("namespace")] if all_namespaces else []
        rows.append([*namespace, meta["name"], spec.get("model"), spec.get("instanceType"), instances(item),
                     price, per_hour, status.get("phase")])  # fmt: skip
        ready = next((c.get("status") for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
        wide.append([(status.get("endpoint") or {}).get("name"), f"{spec.get('trafficPercent', 100)}%", ready])
    headers = ("NAMESPACE", *HEADERS) if all_namespaces else HEADERS
    notes = []
    if deployments:
        summed = ", ".join(f"{amount:.2f} {currency}/hour" for currency, amount in sorted(totals.items()))
        without = f" ({unpriced} without a price: not counted)" if unpriced else ""
        notes.append(f"total: {summed or NOT_SET} for {len(deployments)} deployment(s){without}")
    return output.Listing(RESOURCE, deployments, headers, rows, WIDE_HEADERS, wide, notes)


def run_list(args: argparse.Namespace) -> int:
    api = client.CustomObjectsApi(api_client(args.kubeconfig))
    namespace = None if args.all_namespaces else (args.namespace or context_namespace(args.kubeconfig))
    found = sorted(list_deployments(api, namespace),
                   key=lambda d: (d["metadata"].get("namespace", ""), d["metadata"]["name"]))  # fmt: skip
    result = listing(found, instance_types(api), args.all_namespaces)
    text = output.render_list(result, args.output, args.no_headers)
    if text:
        print(text)
    if not found and args.output not in output.STRUCTURED:
        print("No resources found" + (f" in {namespace} namespace." if namespace else "."), file=sys.stderr)
    elif args.output in (output.Format.TABLE, output.Format.WIDE):
        for note in result.notes:
            print(note, file=sys.stderr)
    return ExitCode.OK
