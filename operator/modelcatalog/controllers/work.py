"""What every controller shares: one work queue per kind, cross-kind requests, status writes.

A controller registers its reconcile with `@reconciler(KIND, scope)`; anyone asks for a reconcile with
`request(memo, KIND, key)`, so controllers never import each other. The scope says which namespace a
key's object lives in (None: a shared object), so a shard (docs/sharding.md) drops the requests of other
shards' namespaces, and of shared objects unless it owns them, and checks again before each run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import kopf

from modelcatalog.api.base import Condition, Status, merge_conditions
from modelcatalog.controllers.queue import WorkQueue
from modelcatalog.kube.client import KubeClient, event_manifest
from modelcatalog.kube.resources import ResourceInfo
from modelcatalog.metrics import RECONCILE_SECONDS, RECONCILES

Reconcile = Callable[[kopf.Memo, Any], Awaitable[None]]
R = TypeVar("R", bound=Reconcile)
RECONCILERS: dict[str, Reconcile] = {}
Scope = Callable[[Any], str | None]  # the namespace of a key's object; None: a shared object
SCOPES: dict[str, Scope | None] = {}  # None: every shard runs it (and writes only what it owns)
WARNING_PHASES = {"Failed", "Pending", "Conflict", "Retired"}


def namespaced(key: tuple[str, str]) -> str:
    """The scope of a (namespace, name) key."""
    return key[0]


def namespace(key: str) -> str:
    """The scope of a key that is a namespace (a workspace's network, its router)."""
    return key


def shared(key: Any) -> None:
    """The scope of a key of the shared objects (the model pools, the catalog): only their owner's."""
    return None


def reconciler(kind: str, scope: Scope | None) -> Callable[[R], R]:
    def register(fn: R) -> R:
        RECONCILERS[kind] = fn
        SCOPES[kind] = scope
        return fn

    return register


def in_scope(memo: kopf.Memo, kind: str, key: Hashable) -> bool:
    """Whether this operator reconciles `key`: its namespace is this shard's, or it owns the shared objects."""
    scope = SCOPES[kind]
    if scope is None:
        return True
    where = scope(key)
    return memo.cluster.shard.owns_shared if where is None else bool(memo.cluster.serves(where))


def request(memo: kopf.Memo, kind: str, key: Hashable) -> None:
    """Reconcile the object of `kind` named by `key` soon (requests coalesce per key); another shard's, never."""
    if in_scope(memo, kind, key):
        queue_of(memo, kind).request(key)


def queue_of(memo: kopf.Memo, kind: str) -> WorkQueue:
    """The kind's work queue, created on first use; each run waits for the caches, then is timed and counted."""
    if kind not in memo.queues:
        reconcile = RECONCILERS[kind]

        async def work(key: Hashable) -> None:
            await memo.cluster.ready()
            await memo.gate.wait()  # a standby replica writes nothing
            if not in_scope(memo, kind, key):  # its namespace moved to another shard meanwhile
                return
            with RECONCILE_SECONDS.labels(kind).time():
                try:
                    await reconcile(memo, key)
                except Exception:
                    RECONCILES.labels(kind, "error").inc()
                    raise
                RECONCILES.labels(kind, "ok").inc()

        memo.queues[kind] = WorkQueue(kind, work)
    found: WorkQueue = memo.queues[kind]
    return found


async def write_status(
    client: KubeClient, info: ResourceInfo, body: dict[str, Any], status: Status, events: bool = True
) -> None:
    """Patch the status when a user would see a difference; an Event when the phase changes (if `events`).

    Fields the new status no longer has are removed (a merge patch removes a key set to null)."""
    meta = body["metadata"]
    current = body.get("status") or {}
    generation = meta.get("generation")
    previous = [Condition.model_validate(c) for c in current.get("conditions") or [] if _well_formed(c)]
    stamped = status.model_copy(
        update={
            "observed_generation": generation,
            "conditions": merge_conditions(previous, status.conditions, generation),
        }
    )
    wire = stamped.to_wire()
    if same_status(current, wire):
        return
    await client.patch_status(info, meta["name"], meta.get("namespace"), wire | dict.fromkeys(set(current) - set(wire)))
    phase = str(status.phase)
    if events and current.get("phase") != phase:
        ready = next((c for c in status.conditions if c.type == "Ready"), None)
        message = (ready.message if ready else "") or f"phase {phase}"
        await client.create(event_manifest(body, info.kind, phase, message, warning=phase in WARNING_PHASES))


def _well_formed(condition: Any) -> bool:
    return isinstance(condition, dict) and "type" in condition and "status" in condition


def same_status(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True when writing `desired` would change nothing a user can see (transition times aside)."""
    return _without_times(current) == _without_times(desired)


def _without_times(status: dict[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in status.items() if k != "conditions"}
    stripped["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []
    ]
    return stripped
