"""Two shards on the real control plane (docs/sharding.md): two operator processes, each serving the
namespaces labelled with its name, each with its own peering; shard "a" owns the shared pools.

The session's unsharded operator would serve every namespace, so it is stopped for this module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from modelcatalog.localcluster.launcher import OperatorProcess
from modelcatalog.shard import LABEL
from tests.integration.conftest import LOG_DIR
from tests.integration.kube import Kube, wait_for
from tests.integration.test_modeldeployment import apply_md, md_status, wait_ready
from tests.integration.test_serverless import FINALIZER, POOL_MODEL, POOL_NAMESPACE, exists, pools, se, status

OWNER, OTHER = "a", "b"


def shard_operator(kube: Kube, shard: str, owns_shared: bool, replica: str = "") -> OperatorProcess:
    env = {"MODELCATALOG_SHARD": shard, "MODELCATALOG_SHARD_OWNS_SHARED": str(owns_shared).lower()}
    return OperatorProcess(kube.kubeconfig, LOG_DIR / f"shard-{shard}{replica}", env=env)


@pytest.fixture(scope="module")
def shards(installed: Kube, operator: OperatorProcess) -> Iterator[dict[str, OperatorProcess]]:
    operator.stop()  # unsharded, it would serve the shards' namespaces too
    installed.kubectl("create", "namespace", POOL_NAMESPACE, check=False)  # the owner's chart creates it
    found = {OWNER: shard_operator(installed, OWNER, True), OTHER: shard_operator(installed, OTHER, False)}
    try:
        for process in found.values():
            process.start()
        yield found
    finally:
        for process in found.values():
            process.stop()
        operator.start()


@pytest.fixture
def workspace(kube: Kube) -> Iterator[Callable[[str], str]]:
    """Makes a namespace labelled for a shard; deletes them all afterwards."""
    made: list[str] = []

    def make(shard: str) -> str:
        name = f"t-shard-{shard}-{uuid.uuid4().hex[:5]}"
        kube.kubectl("create", "namespace", name)
        kube.kubectl("label", "namespace", name, f"{LABEL}={shard}")
        made.append(name)
        return name

    yield make
    for name in made:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def has_status(kube: Kube, namespace: str, name: str) -> bool:
    return md_status(kube, namespace, name).get("observedGeneration") is not None


def test_an_endpoint_pool_shared_by_two_shards_goes_with_the_last_endpoint_not_before(
    kube: Kube, shards: dict[str, OperatorProcess], workspace: Callable[[str], str]
) -> None:
    # The pool counts every endpoint of the cluster: earlier tests' ones go with their namespaces first.
    wait_for(lambda: not kube.get_json("serverlessendpoints", "-A")["items"], 120, "no other ServerlessEndpoint")
    ours, theirs = workspace(OWNER), workspace(OTHER)
    kube.apply(se(ours, "chat", model=POOL_MODEL))
    kube.apply(se(theirs, "assistant", model=POOL_MODEL))
    for ns, name in ((ours, "chat"), (theirs, "assistant")):
        wait_for(lambda ns=ns, name=name: status(kube, ns, name).get("phase") == "Ready", 120, f"{name} Ready")
    assert pools(kube) == [f"pool-{POOL_MODEL}"]  # one pool, made by the owner, for both shards' endpoints
    body = kube.get_json("serverlessendpoint", "assistant", "-n", theirs)
    assert FINALIZER in body["metadata"]["finalizers"]  # put on by its own shard

    # The non-owner's endpoint first: the owner lets go of it (the pool stays for the other) and releases it.
    kube.kubectl("delete", "serverlessendpoint", "assistant", "-n", theirs, "--wait=false")
    wait_for(lambda: not exists(kube, theirs, "assistant"), 60, "endpoint assistant gone (finalizer released)")
    assert pools(kube) == [f"pool-{POOL_MODEL}"]
    assert status(kube, ours, "chat")["phase"] == "Ready"

    kube.kubectl("delete", "serverlessendpoint", "chat", "-n", ours, "--wait=false")
    wait_for(lambda: not exists(kube, ours, "chat"), 60, "endpoint chat gone")
    assert pools(kube) == []  # its finalizer went only after the pool


def test_a_relabelled_namespace_moves_to_the_other_shard_which_alone_writes_to_it(
    kube: Kube, shards: dict[str, OperatorProcess], workspace: Callable[[str], str]
) -> None:
    ns = workspace(OWNER)
    apply_md(kube, ns, "chat", instanceCount=0)
    wait_ready(kube, ns, "chat")
    reconciles = shards[OTHER].metric("modelcatalog_reconciles_total")
    kube.kubectl("label", "namespace", ns, f"{LABEL}={OTHER}", "--overwrite")
    # Shard b takes the namespace in (and finds nothing to write); shard a lets it go.
    wait_for(lambda: shards[OTHER].metric("modelcatalog_reconciles_total") > reconciles, 30, "shard b taking it in")
    time.sleep(2)  # both watches have the label change
    old_writes = shards[OWNER].metric("modelcatalog_api_writes_total")
    new_writes = shards[OTHER].metric("modelcatalog_api_writes_total")
    apply_md(kube, ns, "chat", instanceCount=1)
    wait_for(lambda: md_status(kube, ns, "chat").get("observedGeneration") == 2, 60, "the edit reconciled")
    assert kube.get_json("deployment", "chat", "-n", ns)["spec"]["replicas"] == 1
    assert shards[OWNER].metric("modelcatalog_api_writes_total") == old_writes, "the old shard wrote"
    assert shards[OTHER].metric("modelcatalog_api_writes_total") > new_writes


def test_a_shard_whose_active_replica_is_killed_fails_over_and_the_other_shard_carries_on(
    kube: Kube, shards: dict[str, OperatorProcess], workspace: Callable[[str], str]
) -> None:
    ours, theirs = workspace(OWNER), workspace(OTHER)
    standby = shards[OTHER]
    active = shard_operator(kube, OTHER, False, replica="-2")
    active.start()  # started last, so it outranks the first replica of shard b
    try:
        wait_for(lambda: "standing by" in standby.tail(200), 30, "shard b's first replica standing by")
        apply_md(kube, theirs, "before", instanceCount=0)
        wait_ready(kube, theirs, "before")
        active.kill()

        apply_md(kube, ours, "chat", instanceCount=0)
        apply_md(kube, theirs, "during", instanceCount=0)
        wait_ready(kube, ours, "chat")  # shard a carries on
        assert not has_status(kube, theirs, "during"), "shard a reconciled shard b's workspace"

        wait_for(lambda: "taking over" in standby.tail(200), 60, "shard b's standby taking over")
        wait_ready(kube, theirs, "during")
    finally:
        active.stop()
