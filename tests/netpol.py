"""Ask cyclonus, an independent NetworkPolicy analyzer, whether a connection would be allowed.

Nothing on the test bed enforces NetworkPolicies (kwok pods run no containers), so reachability is
checked by analysis instead: the policies are written to a directory, the connections to a traffic
file, and `cyclonus analyze --mode query-traffic` answers allowed or denied for each, applying the
ingress policies of the destination and the egress policies of the source as Kubernetes does.

Only `networking.k8s.io/v1` NetworkPolicies are analysed: CiliumNetworkPolicies (FQDN rules) are
beyond cyclonus, so a connection they alone would allow is reported as denied.

The binary comes from the `cyclonus` argument, else the `CYCLONUS` environment variable, else the
test-bed tool cache filled by hack/tools.sh, else PATH.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_POD_IP = "10.244.0.10"
_VERDICT = re.compile(r"IS ALLOWED\?\s*\|\s*(TRUE|FALSE)\b")


class CyclonusError(RuntimeError):
    """cyclonus failed or answered something this module cannot read."""


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (namespace and labels) or an address outside the cluster (no namespace)."""

    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def pod(cls, namespace: str, labels: Mapping[str, str] | None = None, ip: str = DEFAULT_POD_IP) -> Peer:
        # A pod needs an address too: ipBlock peers match pods by it.
        return cls(ip=ip, namespace=namespace, labels=dict(labels or {}))

    @classmethod
    def external(cls, ip: str) -> Peer:
        return cls(ip=ip)


@dataclass(frozen=True)
class Connection:
    source: Peer
    destination: Peer
    port: int
    protocol: str = "TCP"


def find_cyclonus(binary: str | os.PathLike[str] | None = None) -> str | None:
    """The cyclonus binary to run, or None when there is none."""
    if binary:
        return str(binary)
    if os.environ.get("CYCLONUS"):
        return os.environ["CYCLONUS"]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelcatalog" / "tools"
    cached = [path for path in sorted(glob.glob(str(cache / "*" / "cyclonus"))) if os.access(path, os.X_OK)]
    if cached:
        return cached[-1]
    return shutil.which("cyclonus")


def reachable(
    policies: Sequence[Mapping[str, Any]],
    source: Peer,
    destination: Peer,
    port: int,
    protocol: str = "TCP",
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    cyclonus: str | os.PathLike[str] | None = None,
) -> bool:
    """Whether `policies` let `source` open a connection to `destination` on `port`/`protocol`.

    `namespaces` maps a namespace name to its labels (`kubernetes.io/metadata.name` is added, as
    the API server does); a namespace not listed has only that label.
    """
    return query_traffic(policies, [Connection(source, destination, port, protocol)], namespaces, cyclonus)[0]


def query_traffic(
    policies: Sequence[Mapping[str, Any]],
    connections: Sequence[Connection],
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    cyclonus: str | os.PathLike[str] | None = None,
) -> list[bool]:
    """One cyclonus run for many connections: whether each is allowed, in order."""
    binary = find_cyclonus(cyclonus)
    if binary is None:
        raise CyclonusError("no cyclonus binary: pass one, set CYCLONUS, or run hack/tools.sh")
    with tempfile.TemporaryDirectory(prefix="netpol-") as work:
        policy_dir = Path(work) / "policies"
        policy_dir.mkdir()
        for index, policy in enumerate(network_policies(policies)):
            meta = policy["metadata"]
            (policy_dir / f"{index:03d}-{meta.get('namespace', '')}-{meta['name']}.json").write_text(json.dumps(policy))
        traffic_path = Path(work) / "traffic.json"
        traffic_path.write_text(json.dumps([_traffic(c, namespaces or {}) for c in connections]))
        command = [binary, "analyze", "--mode", "query-traffic"]
        command += ["--policy-path", str(policy_dir), "--traffic-path", str(traffic_path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise CyclonusError(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
    verdicts = [match == "TRUE" for match in _VERDICT.findall(result.stdout)]
    if len(verdicts) != len(connections):
        raise CyclonusError(
            f"expected {len(connections)} verdicts from cyclonus, read {len(verdicts)}:\n{result.stdout}"
        )
    return verdicts


def network_policies(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The NetworkPolicies among `objects`, reduced to what cyclonus's strict parser accepts."""
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"].get("namespace", "default")},
            "spec": obj["spec"],
        }
        for obj in objects
        if obj.get("kind") == "NetworkPolicy"
        and obj.get("apiVersion", "networking.k8s.io/v1") == "networking.k8s.io/v1"
    ]


def _traffic(connection: Connection, namespaces: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    return {
        "Source": _traffic_peer(connection.source, namespaces),
        "Destination": _traffic_peer(connection.destination, namespaces),
        "Protocol": connection.protocol,
        "ResolvedPort": connection.port,
        "ResolvedPortName": "",
    }


def _traffic_peer(peer: Peer, namespaces: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    if peer.namespace is None:
        return {"IP": peer.ip}
    namespace_labels = {NAMESPACE_NAME_LABEL: peer.namespace} | dict(namespaces.get(peer.namespace, {}))
    return {
        "IP": peer.ip,
        "Internal": {"Namespace": peer.namespace, "NamespaceLabels": namespace_labels, "PodLabels": dict(peer.labels)},
    }


# --- against a live cluster ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """How to reach a live cluster with kubectl."""

    kubeconfig: str | os.PathLike[str] | None = None
    context: str | None = None
    kubectl: str = "kubectl"

    def get_json(self, *args: str) -> dict[str, Any]:
        command = [self.kubectl]
        if self.kubeconfig:
            command += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            command += ["--context", self.context]
        command += ["get", *args, "-o", "json"]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
        document: dict[str, Any] = json.loads(result.stdout)
        return document


def live_policies(cluster: Cluster) -> list[dict[str, Any]]:
    """Every NetworkPolicy in the cluster, as the API server has them now."""
    return network_policies(
        [{"kind": "NetworkPolicy", **item} for item in cluster.get_json("networkpolicies", "-A").get("items", [])]
    )


def live_namespaces(cluster: Cluster) -> dict[str, dict[str, str]]:
    """Every namespace's labels."""
    return {
        item["metadata"]["name"]: dict(item["metadata"].get("labels") or {})
        for item in cluster.get_json("namespaces").get("items", [])
    }


def live_pod(cluster: Cluster, namespace: str, name: str) -> Peer:
    """A running pod as a peer: its labels and the address the cluster gave it."""
    pod = cluster.get_json("pod", "-n", namespace, name)
    ip = (pod.get("status") or {}).get("podIP") or DEFAULT_POD_IP
    return Peer.pod(namespace, pod["metadata"].get("labels") or {}, ip)


def live_reachable(
    source: Peer,
    destination: Peer,
    port: int,
    protocol: str = "TCP",
    *,
    cluster: Cluster,
    cyclonus: str | os.PathLike[str] | None = None,
) -> bool:
    """`reachable` with the cluster's current NetworkPolicies and namespace labels."""
    return reachable(
        live_policies(cluster), source, destination, port, protocol, live_namespaces(cluster), cyclonus=cyclonus
    )
