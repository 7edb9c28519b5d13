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

import asyncio
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from modelcatalog import GROUP
from modelcatalog.kube import quantity
from modelcatalog.kube.client import FIELD_MANAGER, ApiError, KubeClient
from modelcatalog.kube.resources import resource
from modelcatalog.labels import MANAGED_BY, OWNER_KIND, OWNER_NAME
from modelcatalog.metrics import CHILD_WRITES

ObjectKey = tuple[str, str, str]  # apiVersion, kind, name
APPLIED_HASH = f"{GROUP}/applied-hash"
GUARDED = ("spec", "data")
OWNER_LABELS = (MANAGED_BY, OWNER_KIND, OWNER_NAME)
QUANTITY_FIELDS = frozenset({"requests", "limits", "sizeLimit"})  # top-level fields where others' additions are drift


def key_of(manifest: dict[str, Any]) -> ObjectKey:
    return manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]


def stamped(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with the hash of its content in an annotation (Secret data is left out of the hash)."""
    hashed = {k: v for k, v in manifest.items() if k != "data"}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    metadata = dict(manifest["metadata"])
    metadata["annotations"] = {**metadata.get("annotations", {}), APPLIED_HASH: digest}
    return {**manifest, "metadata": metadata}


def contains(live: Any, desired: Any, quantities: bool = False) -> bool:
    """True when every field of `desired` has the same value in `live` (server defaults aside).

    Under resource requests and limits and in sizeLimit, values are quantities the API server writes
    in its own form (1024Mi comes back as 1Gi): those compare by amount, or every resync would apply."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            k in live and contains(live[k], v, quantities or k in QUANTITY_FIELDS) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b, quantities) for a, b in zip(live, desired, strict=True))
        )
    if quantities and live != desired:
        return same_quantity(live, desired)
    return bool(live == desired)


def same_quantity(live: Any, desired: Any) -> bool:
    try:
        return quantity.parse(str(live)) == quantity.parse(str(desired))
    except ValueError:
        return False


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


class ChildConflict(Exception):
    """Objects of the same names exist that the operator did not create: it neither writes nor deletes them."""

    def __init__(self, owner: str, objects: list[ObjectKey]) -> None:
        names = ", ".join(f"{kind} {name}" for _, kind, name in objects)
        super().__init__(
            f"{names} already exist{'s' if len(objects) == 1 else ''} and {'was' if len(objects) == 1 else 'were'}"
            f" not created for {owner}: rename or delete {'it' if len(objects) == 1 else 'them'},"
            f" or give {owner} another name"
        )
        self.objects = objects


class ChildRefused(Exception):
    """The API server refused a child for good (invalid): retrying the same object cannot help."""

    def __init__(self, key: ObjectKey, error: ApiError) -> None:
        super().__init__(f"{key[1]} {key[2]}: {error.message or error}")
        self.key = key
        self.error = error


def is_ours(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True when the live object was created for the same owner as `desired`.

    By owner reference uid where the child has one (a label can be set by anyone); otherwise (no owner
    reference can cross namespaces or scopes) by the applied-hash marker plus the owner labels.
    """
    meta = live.get("metadata") or {}
    wanted = {ref["uid"] for ref in desired["metadata"].get("ownerReferences") or []}
    if wanted:
        return bool(wanted & {ref.get("uid") for ref in meta.get("ownerReferences") or []})
    labels = meta.get("labels") or {}
    owner_labels = {k: v for k, v in desired["metadata"].get("labels", {}).items() if k in OWNER_LABELS}
    return APPLIED_HASH in (meta.get("annotations") or {}) and all(labels.get(k) == v for k, v in owner_labels.items())


def prunable(live: dict[str, Any], owner_uid: str | None) -> bool:
    """We delete only what we made: it carries our applied-hash marker and, if it has owners, our owner."""
    meta = live.get("metadata") or {}
    owners = {ref.get("uid") for ref in meta.get("ownerReferences") or []}
    made_by_us = APPLIED_HASH in (meta.get("annotations") or {})
    return made_by_us and (not owners or owner_uid is None or owner_uid in owners)


async def sync(
    client: KubeClient,
    namespace: str | None,
    desired: list[dict[str, Any]],
    live: Iterable[dict[str, Any]],
    owner: str = "its owner",
    owner_uid: str | None = None,
) -> None:
    """Apply each desired object unless the live copy is up to date; delete live objects not desired.

    `live` holds what the caches know as ours. A desired object missing from it is looked up first:
    one of the same name that is not ours is left alone and reported (ChildConflict) after the rest
    are applied. A child the API server refuses as invalid raises ChildRefused.
    """
    current = {key_of(obj): obj for obj in live}
    manifests = [stamped(m) for m in desired]
    # The children are independent objects: their round trips overlap instead of adding up.
    outcomes = await asyncio.gather(
        *(_bring(client, namespace, m, current.get(key_of(m))) for m in manifests), return_exceptions=True
    )
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if errors:
        raise errors[0]
    conflicts = [key_of(m) for m, free in zip(manifests, outcomes, strict=True) if free is False]
    wanted = {key_of(m) for m in desired}
    for key in sorted(set(current) - wanted):
        api_version, kind, name = key
        if prunable(current[key], owner_uid) and await client.delete(api_version, kind, name, namespace):
            CHILD_WRITES.labels(kind, "delete").inc()
    if conflicts:
        raise ChildConflict(owner, conflicts)


async def _bring(
    client: KubeClient, namespace: str | None, manifest: dict[str, Any], existing: dict[str, Any] | None
) -> bool:
    """Apply one stamped manifest unless `existing` is up to date; False when its name is taken by another."""
    key = key_of(manifest)
    if existing is None and not await _free_or_ours(client, manifest):
        return False
    taken = foreign_fields(existing) if existing is not None else []
    if existing is not None and up_to_date(existing, manifest) and not taken:
        return True
    await _apply(client, key, manifest)  # forced: fields of ours that others took over come back to us
    added = [path for path in taken if not _has_path(manifest, path)]
    if added:
        info = resource(manifest["apiVersion"], manifest["kind"])
        await client.merge_patch(info, key[2], namespace, removal_patch(added))
    CHILD_WRITES.labels(manifest["kind"], "apply").inc()
    return True


async def _free_or_ours(client: KubeClient, manifest: dict[str, Any]) -> bool:
    meta = manifest["metadata"]
    live = await client.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
    return live is None or is_ours(live, manifest)


async def _apply(client: KubeClient, key: ObjectKey, manifest: dict[str, Any]) -> None:
    try:
        await client.apply(manifest)
    except ApiError as error:
        if error.status in (400, 422):
            raise ChildRefused(key, error) from error
        raise
