"""Shards (docs/sharding.md): which namespaces a shard's caches hold, which reconciles it runs, who owns
the shared objects, and the settings that say so."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from modelcatalog.controllers import serverless, work
from modelcatalog.controllers.catalog import KIND as CATALOG
from modelcatalog.controllers.cluster import SERVERLESS, ClusterView, on_change
from modelcatalog.kube.cache import WatchCache
from modelcatalog.kube.client import KubeClient
from modelcatalog.kube.resources import resource
from modelcatalog.render.deployment import KIND as DEPLOYMENT
from modelcatalog.render.network import KIND as NETWORK
from modelcatalog.settings import Settings
from modelcatalog.shard import LABEL, Shard, ShardError

SERVERLESS_NS = "modelcatalog-serverless"


def obj(namespace: str | None, name: str, version: str = "1", **fields: Any) -> dict[str, Any]:
    meta = {"name": name, "resourceVersion": version} | ({"namespace": namespace} if namespace else {})
    return {"metadata": meta, **fields}


def namespace(name: str, shard: str, version: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version, "labels": {LABEL: shard}}}


def event(cache: WatchCache, body: dict[str, Any], deleted: bool = False) -> None:
    """What the cache's watch does with one event."""
    meta = body["metadata"]
    cache._store((meta.get("namespace"), meta["name"]), None if deleted else body)


# The settings.


def test_unsharded_by_default_serves_every_namespace_and_owns_the_shared_objects() -> None:
    shard = Settings.from_env({}).shard
    assert not shard.sharded and shard.owns_shared
    assert shard.serves_labels({}) and shard.serves_labels({LABEL: "b"})
    assert shard.peering() == "modelcatalog"


def test_a_shard_serves_the_namespaces_labelled_with_its_name_and_has_its_own_peering() -> None:
    shard = Settings.from_env({"MODELCATALOG_SHARD": "a", "MODELCATALOG_SHARD_OWNS_SHARED": "false"}).shard
    assert shard.selector() == f"{LABEL} in (a)"
    assert shard.serves_labels({LABEL: "a"})
    assert not shard.serves_labels({LABEL: "b"}) and not shard.serves_labels({})
    assert not shard.owns_shared
    assert shard.peering() == "modelcatalog-a"


def test_a_shard_may_serve_several_label_values_under_another_label() -> None:
    env = {"MODELCATALOG_SHARD": "east", "MODELCATALOG_SHARD_VALUES": "team-1, team-2",
           "MODELCATALOG_SHARD_LABEL": "example.com/operator-shard"}  # fmt: skip
    shard = Settings.from_env(env).shard
    assert shard.selector() == "example.com/operator-shard in (team-1,team-2)"
    assert shard.serves_labels({"example.com/operator-shard": "team-2"})


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODELCATALOG_SHARD_VALUES": "a"}, "MODELCATALOG_SHARD"),
        ({"MODELCATALOG_SHARD": "a b"}, "'a b'"),
        ({"MODELCATALOG_SHARD": "a", "MODELCATALOG_SHARD_VALUES": "ok,-bad"}, "'-bad'"),
        ({"MODELCATALOG_SHARD": "a", "MODELCATALOG_SHARD_LABEL": "not a key"}, "MODELCATALOG_SHARD_LABEL"),
    ],
)
def test_a_shard_setting_the_operator_cannot_use_is_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(ShardError, match=named):
        Settings.from_env(env)


# The watch caches.


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[Any, Any]] = []

    def __call__(self, old: Any, new: Any) -> None:
        self.changes.append((old and old["metadata"]["name"], new and new["metadata"]["name"]))


def scoped_cache(served: set[str], changes: Recorder) -> WatchCache:
    client = KubeClient("http://127.0.0.1:1", False, None, None)
    by_spec = {"by-spec": lambda o: [o.get("spec")]}
    info = resource("modelcatalog.io/v1alpha1", "ModelDeployment")
    return WatchCache(client, info, indexes=by_spec, on_change=changes, scope=served.__contains__)


def test_a_scoped_cache_holds_only_its_namespaces_and_announces_a_namespace_when_it_joins() -> None:
    served, changes = {"mine"}, Recorder()
    cache = scoped_cache(served, changes)
    event(cache, obj("mine", "a", spec="x"))
    event(cache, obj("theirs", "b", spec="x"))
    event(cache, obj("theirs", "b", version="2", spec="y"))  # kept current while set aside
    event(cache, obj("theirs", "gone", spec="x"))
    event(cache, obj("theirs", "gone", spec="x"), deleted=True)
    assert [o["metadata"]["name"] for o in cache.all()] == ["a"]
    assert cache.get("theirs", "b") is None and cache.by("by-spec", "y") == []
    assert changes.changes == [(None, "a")]

    served.add("theirs")
    cache.admit("theirs")
    assert cache.get("theirs", "b")["metadata"]["resourceVersion"] == "2"  # type: ignore[index]
    assert [o["metadata"]["name"] for o in cache.by("by-spec", "y")] == ["b"]
    assert changes.changes[1:] == [(None, "b")]  # "gone" never appears


def test_a_namespace_that_leaves_is_set_aside_silently_and_comes_back_current() -> None:
    served, changes = {"mine"}, Recorder()
    cache = scoped_cache(served, changes)
    event(cache, obj("mine", "a", spec="x"))
    served.discard("mine")
    cache.release("mine")
    assert cache.all() == [] and cache.by("by-spec", "x") == []
    event(cache, obj("mine", "a", version="2", spec="z"))
    assert changes.changes == [(None, "a")]  # no reconcile here for another shard's objects
    served.add("mine")
    cache.admit("mine")
    assert cache.by("by-spec", "z")[0]["metadata"]["resourceVersion"] == "2"


# The cluster view and the ownership rule.


async def close(cluster: ClusterView) -> None:
    """Cancel what the controllers' listeners queued (each waits for caches this test never lists)."""
    for queue in cluster._memo.queues.values():
        await queue.close()


def view(owns_shared: bool) -> ClusterView:
    shard = Shard.of("a", LABEL, (), owns_shared)
    client = KubeClient("http://127.0.0.1:1", False, None, None)
    memo = kopf.Memo()
    found = ClusterView(client, memo, [], "modelcatalog-a", shard=shard, shared_namespace=SERVERLESS_NS)
    memo.cluster = found
    memo.queues = {}
    return found


def endpoint(namespace: str, name: str, model: str = "phi") -> dict[str, Any]:
    return obj(namespace, name, spec={"model": model})


async def test_a_shard_reconciles_its_namespaces_and_only_the_owner_reconciles_the_shared_objects() -> None:
    for owner in (True, False):
        cluster = view(owner)
        assert cluster.namespaces is not None
        event(cluster.namespaces, namespace("ws-a", "a"))
        memo = kopf.Memo(cluster=cluster)
        assert work.in_scope(memo, DEPLOYMENT, ("ws-a", "chat"))
        assert work.in_scope(memo, NETWORK, "ws-a")
        assert not work.in_scope(memo, DEPLOYMENT, ("ws-b", "chat"))
        assert not work.in_scope(memo, serverless.KIND, ("ws-b", "ep"))
        assert work.in_scope(memo, serverless.POOL, "phi") is owner
        assert work.in_scope(memo, CATALOG, "phi")  # every shard: lifecycle dates recheck its own deployments
        await close(cluster)


async def test_the_pool_owner_counts_every_shards_endpoints_and_a_shard_reads_the_pools() -> None:
    cluster = view(owns_shared=True)
    event(cluster.serverless, endpoint("ws-a", "mine"))
    event(cluster.serverless, endpoint("ws-b", "theirs"))
    names = {b["metadata"]["name"] for b in cluster.serverless_by("model", "phi")}
    assert names == {"mine", "theirs"}
    assert cluster.holds(SERVERLESS_NS) and not cluster.holds("ws-b")
    # The owner reconciles the pool, and the gateway and pool policy (key "") every endpoint needs.
    assert set(cluster._memo.queues[serverless.POOL]._queued) == {"phi", ""}
    assert serverless.KIND not in cluster._memo.queues  # each endpoint is its own shard's
    await close(cluster)


async def test_a_relabelled_namespace_moves_in_with_its_endpoints_and_out_without_a_write() -> None:
    cluster = view(owns_shared=False)
    assert cluster.namespaces is not None
    heard: list[str] = []
    on_change(SERVERLESS)(lambda memo, old, new: heard.append((new or old)["metadata"]["name"]))
    try:
        event(cluster.deployments, obj("ws-b", "chat", spec={}))
        event(cluster.serverless, endpoint("ws-b", "ep"))
        heard.clear()
        event(cluster.namespaces, namespace("ws-b", "a"))  # relabelled to this shard
        assert cluster.serves("ws-b") and cluster.deployments.get("ws-b", "chat") is not None
        assert heard == ["ep"]  # its endpoints are announced to this shard's controllers
        assert ("ws-b", "chat") in cluster._memo.queues[DEPLOYMENT]._queued
        event(cluster.namespaces, namespace("ws-b", "a"), deleted=True)  # relabelled away
        assert not cluster.serves("ws-b") and cluster.deployments.get("ws-b", "chat") is None
        assert not work.in_scope(cluster._memo, DEPLOYMENT, ("ws-b", "chat"))  # a queued run returns at once
        work.request(cluster._memo, DEPLOYMENT, ("ws-b", "other"))
        assert ("ws-b", "other") not in cluster._memo.queues[DEPLOYMENT]._queued  # another shard's: dropped
    finally:
        await close(cluster)
        from modelcatalog.controllers.cluster import LISTENERS

        LISTENERS[SERVERLESS].pop()
