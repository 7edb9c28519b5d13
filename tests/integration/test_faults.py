"""Faults at a small size (`python -m bench faults` runs the same at full size): fuzzed specs, kill -9 mid-burst."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import kubernetes
import pytest
from bench.faults import (
    Outcome,
    apply_all,
    burst_manifest,
    convergence_problems,
    corpus,
    manifests,
    metrics_text,
    other_retries,
    restart_apiserver,
    settle_all,
)

from modelcatalog.api.deployment import ModelDeploymentSpec
from modelcatalog.api.network import WorkspaceNetworkSpec
from modelcatalog.localcluster.release import ChartOperator
from tests.integration.kube import Kube, wait_for

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture
def network_namespaces(kube: Kube) -> Iterator[list[str]]:
    """Four namespaces for WorkspaceNetworks: a namespace has one in force, the others report Conflict."""
    names = [f"t-fuzz-net-{i}-{uuid.uuid4().hex[:5]}" for i in range(4)]
    for name in names:
        kube.kubectl("create", "namespace", name)
    yield names
    for name in names:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_fuzzed_specs_are_refused_naming_a_field_or_end_with_a_phase_never_a_crash(
    kube: Kube, namespace: str, network_namespaces: list[str], operator: ChartOperator
) -> None:
    outcomes = manifests("ModelDeployment", lambda i: namespace, corpus(ModelDeploymentSpec, 24))
    outcomes += manifests("WorkspaceNetwork", lambda i: network_namespaces[i % 4], corpus(WorkspaceNetworkSpec, 16))
    log_start = operator.log.stat().st_size
    before = metrics_text(operator)
    asyncio.run(apply_all(kube.kubeconfig, outcomes))
    unsettled = asyncio.run(settle_all(kube.kubeconfig, outcomes, seconds=60))
    assert not unsettled, "\n".join(f"{o.kind} {o.name} ({o.made}) {o.spec}: {o.problem()}" for o in unsettled)
    problems = [f"{o.kind} {o.name} ({o.made}) {o.spec}: {p}" for o in outcomes if (p := o.problem())]
    assert not problems, "\n".join(problems)
    refused, accepted = sum(o.refused is not None for o in outcomes), sum(o.refused is None for o in outcomes)
    phases = Counter(f"{o.kind}/{o.status.get('phase')}" for o in outcomes if o.refused is None)
    print(f"\nfuzz: {refused} refused at apply, {accepted} accepted: {dict(phases)}")
    assert refused and accepted, f"the corpus should hold both ({refused} refused, {accepted} accepted)"
    time.sleep(1)  # any retry of a failed reconcile is counted by now
    after = metrics_text(operator)
    assert other_retries(after) == other_retries(before), "a reconcile failed with something other than an API error"
    log = operator.log.read_bytes()[log_start:].decode(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


def test_kill_9_in_the_middle_of_a_burst_converges_without_duplicates_orphans_or_lost_updates(
    kube: Kube, namespace: str, operator: ChartOperator
) -> None:
    count, pairs = 60, 5
    api = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))
    burst = [Outcome("ModelDeployment", namespace, m["metadata"]["name"], "burst", m["spec"])
             for m in (burst_manifest(namespace, i, pairs) for i in range(count))]  # fmt: skip
    started = operator.metric("modelcatalog_reconciles_total")
    asyncio.run(apply_all(kube.kubeconfig, burst))
    assert not [o for o in burst if o.refused]
    wait_for(lambda: operator.metric("modelcatalog_reconciles_total") >= started + count // 4, 60, "a quarter done",
             interval=0.05)  # fmt: skip
    operator.kill()
    try:
        children = kube.get_json("deployments", "-n", namespace, "-l", "modelcatalog.io/owner-kind=ModelDeployment")
        done = len(children["items"])
        print(f"\nkill -9 after {done} of {count} Deployments")
        assert 0 < done < count, f"the kill should land mid-burst ({done} of {count} Deployments)"
        # While the operator is dead: an edit, a deletion of one of a shared endpoint's pair, and a new object.
        edited, deleted = burst[-1], burst[0]
        edited.spec = edited.spec | {"instanceCount": 1}
        added = Outcome("ModelDeployment", namespace, "md-late", "burst", burst_manifest(namespace, 0, 0)["spec"])
        asyncio.run(apply_all(kube.kubeconfig, [edited, added]))
        kube.kubectl("delete", "modeldeployment", deleted.name, "-n", namespace)
    finally:
        operator.start()  # a failure above must not leave the next tests without an operator
    survivors = [o for o in burst if o is not deleted] + [added]
    unsettled = asyncio.run(settle_all(kube.kubeconfig, survivors, seconds=120))
    assert not unsettled, [(o.name, o.status) for o in unsettled]
    replicas = {edited.name: 1}
    deadline = time.monotonic() + 60  # the garbage collector removes the deleted one's children meanwhile
    while (problems := convergence_problems(api, namespace, replicas)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not problems, problems
    assert "Traceback" not in operator.log.read_text(errors="replace")


def test_the_watch_caches_survive_an_api_server_restart(kube: Kube, namespace: str, operator: ChartOperator) -> None:
    if os.environ.get("MODELCATALOG_TEST_KUBECONFIG"):
        pytest.skip("restarts the local cluster's API server process")
    before = Outcome("ModelDeployment", namespace, "before", "restart", burst_manifest(namespace, 0, 0)["spec"])
    asyncio.run(apply_all(kube.kubeconfig, [before]))
    assert not asyncio.run(settle_all(kube.kubeconfig, [before], seconds=30))
    cluster_dir = kube.kubeconfig.parent / "kwok" / "clusters" / kube.kubeconfig.stem
    log_start, pid = operator.log.stat().st_size, operator.pid
    restart_apiserver(cluster_dir, down_seconds=5)
    wait_for(lambda: kube.kubectl("get", "--raw", "/readyz", check=False).stdout.strip() == "ok", 60, "API server")
    # Both need the caches: a new object, and an edit of one the operator saw before the restart.
    after = Outcome("ModelDeployment", namespace, "after", "restart", burst_manifest(namespace, 0, 0)["spec"])
    before.spec = before.spec | {"requestSettings": {"requestTimeoutSeconds": 30}}
    asyncio.run(apply_all(kube.kubeconfig, [before, after]))
    assert not asyncio.run(settle_all(kube.kubeconfig, [before, after], seconds=60))
    assert operator.pid == pid, "the operator exited (the pod runner restarted it)"
    assert "relisting" in operator.log.read_bytes()[log_start:].decode(errors="replace"), "the watches saw no error"
    kube.kubectl("delete", "deployment", "after", "-n", namespace)  # drift after the restart is seen too
    wait_for(lambda: kube.kubectl("get", "deployment", "after", "-n", namespace, check=False).returncode == 0, 30,
             "the Deployment to be recreated")  # fmt: skip
