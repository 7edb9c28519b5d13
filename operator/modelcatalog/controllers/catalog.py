"""CatalogModel status: the lifecycle as of today (catalog/lifecycle.py), re-derived when its next date comes.

Thin: the object comes from this module's own index, the status is a pure function of the spec and the clock,
an Event says when a date (not an edit) moved the model or its serverless offer to another stage, and a timer
re-queues the model on its next lifecycle date (at the latest a day later, so nothing drifts for long).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION, GROUP, VERSION, clock
from modelcatalog.api.base import describe
from modelcatalog.api.catalog import CatalogModelSpec, LifecycleStage
from modelcatalog.catalog import lifecycle
from modelcatalog.conditions import Cond, merge, same_status
from modelcatalog.controllers import work
from modelcatalog.controllers.queue import WorkQueue
from modelcatalog.kube.client import KubeClient, event_manifest
from modelcatalog.kube.resources import resource

KIND = "CatalogModel"
INFO = resource(API_VERSION, KIND)
INDEX = "catalog_model_objects"
RECHECK_SECONDS = 24 * 3600.0
DERIVED = ("stage", "tasks", "managed", "serverless", "serverlessStage", "nextChange")
# status field -> who it is about, in Events
SUBJECTS = {"stage": "the model", "serverlessStage": "the serverless offer"}


def queue(memo: kopf.Memo) -> WorkQueue:
    return work.queue(memo, KIND, reconcile)


@kopf.index(GROUP, VERSION, "catalogmodels", id=INDEX)
async def catalog_model_objects(name: str, body: kopf.Body, **_: Any) -> Any:
    metadata = {k: v for k, v in body.metadata.items() if k != "managedFields"}
    return {name: {"metadata": metadata, "spec": dict(body.spec), "status": dict(body.status)}}


@kopf.on.event(GROUP, VERSION, "catalogmodels", id="catalog_model_lifecycle")
async def on_catalog_model(name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    work.remember(memo, kwargs)
    queue(memo).request(name)


async def reconcile(memo: kopf.Memo, name: str) -> None:
    store = memo.indexes[INDEX].get(name)
    body = next(iter(store), None) if store is not None else None
    if body is None or body["metadata"].get("deletionTimestamp"):
        cancel_recheck(memo, name)
        return
    today = clock.today()
    try:
        spec = CatalogModelSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        await write(memo.client, body, "Invalid", {}, Cond("Available", None, "InvalidSpec", describe(error)))
        return
    derived = lifecycle.status(spec, today)
    stage = derived["stage"]
    change = derived.get("nextChange")
    message = lifecycle.WORDS[LifecycleStage(stage)] + (f"; {change['description']}" if change else "")
    available = Cond("Available", stage != LifecycleStage.RETIRED, stage, message)
    await write(memo.client, body, stage, derived, available)
    schedule_recheck(memo, name, change["date"] if change else None)


async def write(client: KubeClient, body: dict[str, Any], phase: str, derived: dict[str, Any], cond: Cond) -> None:
    """Patch the status when it differs; an Event for each stage a date (not an edit) changed."""
    meta = body["metadata"]
    current = body.get("status") or {}
    generation = meta.get("generation")
    desired = {
        "observedGeneration": generation,
        "phase": phase,
        **derived,
        "conditions": merge(current.get("conditions", []), [cond], generation),
    }
    if same_status({k: v for k, v in current.items() if k in desired}, desired) and not stale_keys(current, desired):
        return
    patch = desired | dict.fromkeys(stale_keys(current, desired))  # a merge patch removes keys set to null
    await client.patch_status(INFO, meta["name"], None, patch)
    if current.get("observedGeneration") != generation:
        return  # an edit, not a date: the user who made it knows
    for key, subject in SUBJECTS.items():
        before, after = current.get(key), derived.get(key)
        if before and after and before != after:
            text = f"{subject} is {lifecycle.WORDS[LifecycleStage(after)]} as of {clock.today().isoformat()}"
            warning = after in (LifecycleStage.DEPRECATED, LifecycleStage.RETIRED)
            await client.create(event_manifest(body | {"apiVersion": API_VERSION}, KIND, "LifecycleChanged",
                                               f"{text} (was {before})", warning))  # fmt: skip


def stale_keys(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    return [k for k in DERIVED if k in current and k not in desired]


def schedule_recheck(memo: kopf.Memo, name: str, next_date: str | None) -> None:
    """Re-queue `name` when its next lifecycle date begins (UTC, on the operator's clock), or in a day."""
    delay = RECHECK_SECONDS
    if next_date is not None:
        delay = min(delay, max(clock.seconds_until(date.fromisoformat(next_date)), 0.0) + 1.0)
    cancel_recheck(memo, name)
    timers: dict[str, asyncio.TimerHandle] = memo.setdefault("catalog_rechecks", {})
    timers[name] = asyncio.get_running_loop().call_later(delay, queue(memo).request, name)


def cancel_recheck(memo: kopf.Memo, name: str) -> None:
    handle = memo.setdefault("catalog_rechecks", {}).pop(name, None)
    if handle is not None:
        handle.cancel()
