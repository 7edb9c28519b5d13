"""Each kind declares once what it owns: the watch caches, pruning and RBAC follow from that one list."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from modelcatalog.controllers.cluster import ClusterView
from modelcatalog.kube.client import KubeClient
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import APPLIED_HASH, ChildConflict, sync
from modelcatalog.render import owners
from modelcatalog.render.rbac import operator_rules

CONFIG_MAP = resource("v1", "ConfigMap")


@pytest.fixture
def dummy_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child kind added to the ModelDeployment's declaration, and nowhere else."""
    ownership = dict(owners.OWNERSHIP)
    ownership["ModelDeployment"] = (*ownership["ModelDeployment"], CONFIG_MAP)
    monkeypatch.setattr(owners, "OWNERSHIP", ownership)


def granted(rules: list[dict[str, Any]], group: str, plural: str) -> set[str]:
    return {verb for r in rules if group in r["apiGroups"] and plural in r["resources"] for verb in r["verbs"]}


@pytest.mark.usefixtures("dummy_child")
def test_a_declared_child_kind_is_watched_and_granted_with_no_other_edit() -> None:
    view = ClusterView(KubeClient("http://127.0.0.1:1", False, None, None), kopf.Memo(), owners.child_resources())
    assert CONFIG_MAP in view.children
    assert {"get", "list", "watch", "create", "patch", "delete"} <= granted(operator_rules(), "", "configmaps")


class RecordingClient:
    """Records what sync asks of the API server (a stand-in named as such; sync's decisions are under test)."""

    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.deleted: list[tuple[str, str, str]] = []
        self.applied: list[str] = []
        self.existing = existing

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.existing

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest["kind"])
        return manifest

    async def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        self.deleted.append((api_version, kind, name))
        return True


async def test_a_child_of_any_owned_kind_no_longer_rendered_is_deleted() -> None:
    client = RecordingClient()
    live = [
        {
            "apiVersion": info.api_version,
            "kind": info.kind,
            "metadata": {"name": "stale", "namespace": "ns", "annotations": {APPLIED_HASH: "h"}},
        }
        for info in owners.child_resources()
    ]
    await sync(client, "ns", [], live)  # type: ignore[arg-type]
    assert {(v, k) for v, k, _ in client.deleted} == {(i.api_version, i.kind) for i in owners.child_resources()}
    assert ("cilium.io/v2", "CiliumNetworkPolicy", "stale") in client.deleted


def test_rbac_has_no_wildcards_nor_privilege_verbs() -> None:
    for rule in operator_rules():
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert not {"escalate", "impersonate"} & set(rule["verbs"])
        if "bind" in rule["verbs"]:  # only the routers' token-review and the gateway's ClusterRoles, by name
            assert rule == {
                "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
                "resourceNames": ["modelcatalog-router-tokenreview", "modelcatalog-serverless-gateway"],
            }  # fmt: skip


def secret(name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "ns", **metadata}}


async def test_an_object_the_user_made_under_a_childs_name_is_neither_written_nor_deleted() -> None:
    users = secret("chat-keys", labels={"app.kubernetes.io/managed-by": "modelcatalog"})  # labels prove nothing
    client = RecordingClient(existing=users)
    desired = secret("chat-keys", ownerReferences=[{"uid": "md-uid"}], labels={})
    with pytest.raises(ChildConflict, match="Secret chat-keys already exists and was not created for"):
        await sync(client, "ns", [desired], [], owner="ModelDeployment chat")  # type: ignore[arg-type]
    assert client.applied == []
    await sync(client, "ns", [], [users], owner_uid="md-uid")  # type: ignore[arg-type]
    assert client.deleted == [], "an object without our marker is not ours to prune"


async def test_a_child_of_ours_missing_from_the_cache_is_still_applied() -> None:
    ours = secret("chat-keys", ownerReferences=[{"uid": "md-uid"}])
    client = RecordingClient(existing=ours)
    await sync(client, "ns", [secret("chat-keys", ownerReferences=[{"uid": "md-uid"}])], [])  # type: ignore[arg-type]
    assert client.applied == ["Secret"]
