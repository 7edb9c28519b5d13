"""Which updates change nothing but the status (for a child other than its Deployment: no reconcile)."""

from __future__ import annotations

from typing import Any

from modelcatalog.controllers.deployment import status_only


def body(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "apiVersion": "modelcatalog.io/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "chat", "namespace": "team-a", "resourceVersion": "10", "generation": 1,
                     "labels": {"team": "a"}, "managedFields": [{"manager": "kubectl"}]},
        "spec": {"model": "m", "instanceType": "t", "instanceCount": 1},
        "status": {"phase": "Provisioning"},
    }  # fmt: skip
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = found
        for name in parents:
            node = node[name]
        node[leaf] = value
    return found


def test_a_status_write_seen_back_is_status_only() -> None:
    fields = [{"manager": "kubectl"}, {"manager": "modelcatalog", "subresource": "status"}]
    written = body(status={"phase": "Ready"}, metadata__resourceVersion="11", metadata__managedFields=fields)
    assert status_only(body(), written)


def test_an_edit_of_the_spec_or_the_metadata_is_not() -> None:
    assert not status_only(body(), body(spec__instanceCount=2, metadata__resourceVersion="11"))
    assert not status_only(body(), body(metadata__labels={"team": "b"}, metadata__resourceVersion="11"))
    assert not status_only(body(), body(metadata__deletionTimestamp="2026-12-02T00:00:00Z"))


def test_creation_and_deletion_are_not() -> None:
    assert not status_only(None, body())
    assert not status_only(body(), None)
