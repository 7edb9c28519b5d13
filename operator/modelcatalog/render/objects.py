"""Pieces every renderer uses: owner references and the restricted pod security context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelcatalog import API_VERSION


@dataclass(frozen=True)
class Owner:
    kind: str
    name: str
    uid: str
    api_version: str = API_VERSION

    def reference(self, controller: bool = True) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": controller,
            "blockOwnerDeletion": True,
        }


def metadata(name: str, namespace: str, labels: dict[str, str], owners: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels), "ownerReferences": owners}


# The `restricted` Pod Security Standard, at pod and container level. The IDs are high and unnamed
# (65532, distroless's "nonroot"): no account of the node or the image shares them, as 1000 often does.
NONROOT_ID = 65532


def restricted_pod(user: int = NONROOT_ID, group: int = NONROOT_ID) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": group,
        "fsGroup": group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


RESTRICTED_POD = restricted_pod()
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
