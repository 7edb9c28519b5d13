"""Bring a set of children to the desired state: apply what differs, delete what is no longer desired.

A child is up to date when three things hold, and then no write is made (a restart over unchanged
objects writes nothing):
- it carries the hash of the desired object we last applied (so a field we stopped setting, which
  "contains" cannot see, still triggers an apply that removes it);
- every field we set has the value we want (edits by hand are undone by a forced apply);
- no other field manager owns fields of its spec or data: the forced apply takes back the fields we
  set, and a merge patch removes those only others set (server-side apply never removes them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from modelcatalog import GROUP
from modelcatalog.kube.client import FIELD_MANAGER, KubeClient
from modelcatalog.kube.resources import resource
from modelcatalog.metrics import CHILD_WRITES

ObjectKey = tuple[str, str, str]  # apiVersion, kind, name
APPLIED_HASH = f"{GROUP}/applied-hash"
GUARDED = ("spec", "data")  # top-level fields where others' additions are drift


def key_of(manifest: dict[str, Any]) -> ObjectKey:
    return manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]


def stamped(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with the hash of its content in an annotation (Secret data is left out of the hash)."""
    hashed = {k: v for k, v in manifest.items() if k != "data"}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    metadata = dict(manifest["metadata"])
    metadata["annotations"] = {**metadata.get("annotations", {}), APPLIED_HASH: digest}
    return {**manifest, "metadata": metadata}


def contains(live: Any, desired: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (server defaults aside)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


def foreign_fields(live: dict[str, Any]) -> list[list[str]]:
    """Map keys under spec/data that another field manager set (from managedFields), as paths."""
    paths: list[list[str]] = []
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1") or {}
        for top in GUARDED:
            if f"f:{top}" in fields:
                _owned_leaves(fields[f"f:{top}"], [top], paths)
    return paths


def _owned_leaves(node: dict[str, Any], prefix: list[str], out: list[list[str]]) -> None:
    children = {k: v for k, v in node.items() if k.startswith("f:")}
    if not children:
        out.append(prefix)
        return
    for key, child in children.items():
        name = key[2:]
        if name != "metadata":  # labels and annotations others add (kubectl rollout restart) are theirs to keep
            _owned_leaves(child, [*prefix, name], out)


def _has_path(obj: Any, path: list[str]) -> bool:
    for name in path:
        if not isinstance(obj, dict) or name not in obj:
            return False
        obj = obj[name]
    return True


def removal_patch(paths: list[list[str]]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for path in paths:
        node = patch
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = None
    return patch


def up_to_date(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    applied = (live.get("metadata", {}).get("annotations") or {}).get(APPLIED_HASH)
    return applied == desired["metadata"]["annotations"][APPLIED_HASH] and contains(live, desired)


async def sync(
    client: KubeClient, namespace: str, desired: list[dict[str, Any]], live: Iterable[dict[str, Any]]
) -> None:
    """Apply each desired object unless the live copy is up to date; delete live objects not desired."""
    current = {key_of(obj): obj for obj in live}
    for manifest in map(stamped, desired):
        key = key_of(manifest)
        existing = current.get(key)
        taken = foreign_fields(existing) if existing is not None else []
        if existing is not None and up_to_date(existing, manifest) and not taken:
            continue
        await client.apply(manifest)  # forced: fields of ours that others took over come back to us
        added = [path for path in taken if not _has_path(manifest, path)]
        if added:
            info = resource(manifest["apiVersion"], manifest["kind"])
            await client.merge_patch(info, key[2], namespace, removal_patch(added))
        CHILD_WRITES.labels(manifest["kind"], "apply").inc()
    wanted = {key_of(m) for m in desired}
    for key in sorted(set(current) - wanted):
        api_version, kind, name = key
        if await client.delete(api_version, kind, name, namespace):
            CHILD_WRITES.labels(kind, "delete").inc()
