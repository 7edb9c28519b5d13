"""The local cluster's loopback ranges: each running cluster on the machine keeps its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelcatalog.localcluster import cluster
from modelcatalog.localcluster.cluster import LocalCluster


def test_a_range_another_running_cluster_holds_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalCluster(name="mc-test", workdir=tmp_path)
    monkeypatch.setattr(cluster, "loopback_octets_in_use", set)
    hashed = local.loopback_octet
    monkeypatch.setattr(cluster, "loopback_octets_in_use", lambda: {hashed})
    moved = local.loopback_octet
    assert moved != hashed and 1 <= moved <= 99
    assert local.pod_range == f"127.{moved}.0.1/16" and local.service_range == f"127.{100 + moved}.0.0/16"
