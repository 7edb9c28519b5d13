"""What the watch caches keep of each object: what reconciles read, not the rest."""

from __future__ import annotations

from typing import Any

from modelcatalog.controllers.cluster import without_managed_fields, without_status_edits
from modelcatalog.kube.sync import foreign_fields

OURS = {"manager": "modelcatalog", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
HAND = {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}}
STATUS = {"manager": "kube-controller-manager", "subresource": "status", "fieldsV1": {"f:status": {}}}


def child() -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "chat", "managedFields": [OURS, HAND, STATUS]},
            "spec": {"replicas": 1, "paused": True}}  # fmt: skip


def test_a_child_keeps_only_others_edits_of_its_spec_which_still_show_as_drift() -> None:
    slim = without_status_edits(child())
    assert slim["metadata"]["managedFields"] == [HAND]
    assert foreign_fields(slim) == foreign_fields(child()) == [["spec", "paused"]]
    assert slim["spec"] == child()["spec"]


def test_a_child_only_we_wrote_keeps_no_managed_fields() -> None:
    ours_only = {"metadata": {"name": "chat", "managedFields": [OURS, STATUS]}, "spec": {}}
    assert "managedFields" not in without_status_edits(ours_only)["metadata"]


def test_a_model_deployment_is_kept_without_managed_fields() -> None:
    body = {"metadata": {"name": "chat", "uid": "u", "managedFields": [HAND]}, "spec": {"model": "m"}, "status": {}}
    assert without_managed_fields(body) == {
        "metadata": {"name": "chat", "uid": "u"},
        "spec": {"model": "m"},
        "status": {},
    }
