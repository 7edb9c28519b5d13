"""Two releases of the chart, one per shard (docs/sharding.md), rendered with `helm template`: no cluster-scoped
name in common, the shared objects only in the owner's, each shard's operator told its shard."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog.chartgen import CHART
from modelcatalog.localcluster.cluster import ClusterStartError, find_tools

SHARED_KINDS = {
    "CustomResourceDefinition", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "Namespace",
}  # fmt: skip


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        found = find_tools() / "helm"
    except ClusterStartError:
        found = Path(shutil.which("helm") or "/nonexistent")
    if not found.exists():
        pytest.skip("no helm binary: hack/tools.sh builds it (make tools)")
    return found


def render(helm: Path, release: str, namespace: str, *values: str) -> list[dict[str, Any]]:
    command = [str(helm), "template", release, str(CHART), "-n", namespace, "--kube-version", "1.37.2", *values]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def cluster_scoped(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs if "namespace" not in d["metadata"]}


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_two_shards_releases_share_no_cluster_scoped_name_and_one_owns_the_shared_objects(helm: Path) -> None:
    owner = render(helm, "mc-a", "modelcatalog-a", "--set", "shard.name=a")
    other = render(helm, "mc-b", "modelcatalog-b", "--set", "shard.name=b", "--set", "shard.ownsShared=false")
    assert cluster_scoped(owner) & cluster_scoped(other) == set()
    assert {d["kind"] for d in other} & SHARED_KINDS == set()
    assert {d["kind"] for d in owner} >= SHARED_KINDS
    assert ("ClusterRole", "modelcatalog-router-tokenreview") in cluster_scoped(owner)

    env = env_of(other)
    assert env["MODELCATALOG_SHARD"] == "b" and env["MODELCATALOG_SHARD_OWNS_SHARED"] == "false"
    webhook = next(d for d in other if d["kind"] == "ValidatingWebhookConfiguration")
    assert env["MODELCATALOG_WEBHOOK_CONFIGURATION"] == webhook["metadata"]["name"] == "modelcatalog-b"
    selects = webhook["webhooks"][0]["namespaceSelector"]["matchExpressions"]
    assert {"key": "modelcatalog.io/shard", "operator": "In", "values": ["b"]} in selects  # its own workspaces


def test_an_unsharded_release_renders_as_before(helm: Path) -> None:
    docs = render(helm, "modelcatalog", "modelcatalog-system")
    assert ("ClusterRole", "modelcatalog-operator") in cluster_scoped(docs)
    assert ("ValidatingWebhookConfiguration", "modelcatalog") in cluster_scoped(docs)
    assert not [name for name in env_of(docs) if name.startswith("MODELCATALOG_SHARD")]
