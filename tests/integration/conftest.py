"""One real control plane per test session, a fresh namespace per test.

By default the session starts the local cluster (kwokctl, binary runtime, GPU node pools) and stops
it at the end, whatever happens. Set MODELCATALOG_TEST_KUBECONFIG to run against an existing
cluster instead (kind, for users with Docker); the fake GPU nodes are then applied to it.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelcatalog.localcluster import LocalCluster, node_manifests
from modelcatalog.localcluster.cluster import find_tools, install_catalog
from modelcatalog.localcluster.launcher import OperatorProcess
from modelcatalog.localcluster.release import ChartOperator
from tests.conftest import REPO
from tests.integration.kube import Kube

pytestmark = pytest.mark.integration
LOG_DIR = REPO / ".work" / "test-logs"


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    existing = os.environ.get("MODELCATALOG_TEST_KUBECONFIG")
    tools = find_tools()
    if existing:
        handle = Kube(Path(existing), str(tools / "kubectl"))
        handle.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(node_manifests()))
        yield handle
        return
    # SIGTERM (CI time-outs, kill) unwinds like Ctrl-C, so the cluster below is stopped.
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    cluster = LocalCluster(name="mc-test", tools=tools)
    OperatorProcess(cluster.kubeconfig, LOG_DIR).end_leftover()  # of a run killed midway
    try:
        seconds = cluster.up()
        print(f"\nlocal cluster up in {seconds:.1f} s")
        yield Kube(cluster.kubeconfig, str(tools / "kubectl"), cluster.pods_dir)
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def installed(kube: Kube) -> Kube:
    """The CRDs and the default catalog, installed once per session, as a user would with kubectl."""
    install_catalog(kube.kubectl)
    return kube


@pytest.fixture(scope="session")
def operator(installed: Kube) -> Iterator[ChartOperator]:
    """The operator as users install it: `helm install` of the chart with the test bed's values (as `make demo`);
    the pod runner runs its pod with a token of the chart's ServiceAccount, so every test that uses it proves
    the chart's RBAC is enough (release.py, docs/development.md)."""
    if installed.pods_dir is None:
        pytest.skip("the chart's operator pod runs on the local cluster's pod runner (the image is not built here)")
    chart = ChartOperator(installed.kubeconfig, Path(installed.kubectl_binary).parent, installed.pods_dir)
    chart.install()
    yield chart
    chart.uninstall()


@pytest.fixture
def restricted_namespace(kube: Kube, namespace: str) -> str:
    """A namespace that admits only pods meeting the `restricted` Pod Security Standard."""
    kube.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    return namespace


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c for c in name if c.isalnum() or c == "-")
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
