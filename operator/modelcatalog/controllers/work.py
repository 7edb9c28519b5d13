"""What every controller shares: its work queue, the indexes, timed reconciles, status writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import kopf

from modelcatalog.conditions import Cond, merge, same_status
from modelcatalog.controllers.queue import WorkQueue
from modelcatalog.kube.client import KubeClient, event_manifest
from modelcatalog.kube.resources import ResourceInfo
from modelcatalog.metrics import RECONCILE_SECONDS, RECONCILES

WARNING_PHASES = {"Failed", "Pending", "Conflict"}


def remember(memo: kopf.Memo, kwargs: dict[str, Any]) -> None:
    """Keep kopf's indexes (passed to every handler) where the background reconciles can read them."""
    memo.indexes.update({k: v for k, v in kwargs.items() if isinstance(v, kopf.Index)})


def queue(memo: kopf.Memo, kind: str, reconcile: Callable[[kopf.Memo, Any], Awaitable[None]]) -> WorkQueue:
    """The kind's work queue, created on first use; each run is timed and counted."""
    if kind not in memo.queues:

        async def work(key: Hashable) -> None:
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
    client: KubeClient,
    info: ResourceInfo,
    body: dict[str, Any],
    phase: str,
    conds: list[Cond],
    extra: dict[str, Any] | None = None,
) -> None:
    """Patch the status when a user would see a difference; an Event when the phase changes."""
    meta = body["metadata"]
    current = body.get("status") or {}
    generation = meta.get("generation")
    status = {
        "observedGeneration": generation,
        "phase": phase,
        **(extra or {}),
        "conditions": merge(current.get("conditions", []), conds, generation),
    }
    if same_status(current, status):
        return
    await client.patch_status(info, meta["name"], meta.get("namespace"), status)
    if current.get("phase") != phase:
        ready = next((c for c in conds if c.type == "Ready"), None)
        message = (ready.message if ready else "") or f"phase {phase}"
        await client.create(event_manifest(body, info.kind, phase, message, warning=phase in WARNING_PHASES))
