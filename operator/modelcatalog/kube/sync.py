"""Bring a set of children to the desired state: apply what differs, delete what is no longer desired."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from modelcatalog.kube.client import KubeClient
from modelcatalog.metrics import CHILD_WRITES

ObjectKey = tuple[str, str, str]  # apiVersion, kind, name


def key_of(manifest: dict[str, Any]) -> ObjectKey:
    return manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]


def contains(live: Any, desired: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (server defaults aside).

    Then a server-side apply would change nothing, so it is skipped: a restart with nothing changed
    makes no writes.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


@dataclass
class SyncResult:
    applied: list[ObjectKey] = field(default_factory=list)
    deleted: list[ObjectKey] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.deleted)


async def sync(
    client: KubeClient, namespace: str, desired: list[dict[str, Any]], live: Iterable[dict[str, Any]]
) -> SyncResult:
    """Apply each desired object unless the live copy already matches; delete live objects not desired."""
    result = SyncResult()
    current = {key_of(obj): obj for obj in live}
    for manifest in desired:
        key = key_of(manifest)
        if key in current and contains(current[key], manifest):
            continue
        await client.apply(manifest)
        CHILD_WRITES.labels(manifest["kind"], "apply").inc()
        result.applied.append(key)
    wanted = {key_of(m) for m in desired}
    for key in sorted(set(current) - wanted):
        api_version, kind, name = key
        if await client.delete(api_version, kind, name, namespace):
            CHILD_WRITES.labels(kind, "delete").inc()
            result.deleted.append(key)
    return result
