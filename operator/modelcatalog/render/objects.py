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


# The `restricted` Pod Security Standard, at pod and container level.
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
