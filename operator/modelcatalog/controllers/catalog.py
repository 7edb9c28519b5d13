"""CatalogModel status: the lifecycle as of today (catalog/lifecycle.py), re-derived when its next date comes.

The status is a pure function of the spec and the clock; an Event says when a date (not an edit)
moved the model or its serverless offer to another stage, and a timer re-queues the model on its
next lifecycle date (at the latest a day later, so nothing drifts for long).
"""

from __future__ import annotations

import asyncio
from datetime import date

import kopf
from pydantic import ValidationError

from modelcatalog import API_VERSION, clock
from modelcatalog.api.base import Condition, describe
from modelcatalog.api.catalog import CatalogModelSpec, CatalogModelStatus, LifecycleStage
from modelcatalog.catalog import lifecycle
from modelcatalog.controllers import work
from modelcatalog.controllers.cluster import MODELS, on_change
from modelcatalog.kube.cache import Obj
from modelcatalog.kube.client import event_manifest
from modelcatalog.kube.resources import resource

KIND = "CatalogModel"
INFO = resource(API_VERSION, KIND)
RECHECK_SECONDS = 24 * 3600.0
SUBJECTS = {"stage": "the model", "serverlessStage": "the serverless offer"}  # status field -> who, in Events


@on_change(MODELS)
def on_catalog_model(memo: kopf.Memo, old: Obj | None, new: Obj | None) -> None:
    entry = new or old
    assert entry is not None
    work.request(memo, KIND, entry["metadata"]["name"])


@work.reconciler(KIND, None)  # every shard: the lifecycle dates recheck its deployments
async def reconcile(memo: kopf.Memo, name: str) -> None:
    body = memo.cluster.models.get(None, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        cancel_recheck(memo, name)
        return
    owner = memo.cluster.shard.owns_shared  # a CatalogModel's status is shared: one shard writes it
    try:
        spec = CatalogModelSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        invalid = Condition.of("Available", None, "InvalidSpec", describe(error))
        if owner:
            await work.write_status(memo.client, INFO, body, CatalogModelStatus(phase="Invalid", conditions=[invalid]))
        return
    status = model_status(spec, clock.today())
    if owner:
        await work.write_status(memo.client, INFO, body, status, events=False)
        await announce_date_changes(memo, body, status)
    notice_day = lifecycle.next_notice_day(spec, clock.today())
    schedule_recheck(memo, name, status.next_change.date if status.next_change else None,
                     notice_day.isoformat() if notice_day else None)  # fmt: skip


def model_status(spec: CatalogModelSpec, today: date) -> CatalogModelStatus:
    derived = CatalogModelStatus.model_validate(lifecycle.status(spec, today))
    stage = LifecycleStage(str(derived.stage))
    change = derived.next_change
    message = lifecycle.WORDS[stage] + (f"; {change.description}" if change else "")
    available = Condition.of("Available", stage != LifecycleStage.RETIRED, stage, message)
    return derived.model_copy(update={"phase": stage, "conditions": [available]})


async def announce_date_changes(memo: kopf.Memo, body: Obj, status: CatalogModelStatus) -> None:
    """An Event for each stage a date changed; an edit (a new generation) changed it knowingly."""
    current = body.get("status") or {}
    if current.get("observedGeneration") != body["metadata"].get("generation"):
        return
    derived = status.to_wire()
    for key, subject in SUBJECTS.items():
        before, after = current.get(key), derived.get(key)
        if before and after and before != after:
            text = f"{subject} is {lifecycle.WORDS[LifecycleStage(after)]} as of {clock.today().isoformat()}"
            warning = after in (LifecycleStage.DEPRECATED, LifecycleStage.RETIRED)
            event = event_manifest(body | {"apiVersion": API_VERSION}, KIND, "LifecycleChanged",
                                   f"{text} (was {before})", warning)  # fmt: skip
            await memo.client.create(event)


def schedule_recheck(memo: kopf.Memo, name: str, *next_dates: str | None) -> None:
    """Re-queue `name` and the ModelDeployments using it when its next lifecycle date or warning threshold
    (90, 30, 7 days ahead of a date) begins (UTC, on the operator's clock), or in a day."""
    delay = RECHECK_SECONDS
    for next_date in next_dates:
        if next_date is not None:
            delay = min(delay, max(clock.seconds_until(date.fromisoformat(next_date)), 0.0) + 1.0)
    cancel_recheck(memo, name)
    timers: dict[str, asyncio.TimerHandle] = memo.setdefault("catalog_rechecks", {})
    timers[name] = asyncio.get_running_loop().call_later(delay, recheck, memo, name)


def recheck(memo: kopf.Memo, name: str) -> None:
    """A date or a threshold came: the model's status, and the warnings of the deployments using it."""
    work.request(memo, KIND, name)
    for body in memo.cluster.deployments_by("model", name):
        work.request(memo, "ModelDeployment", (body["metadata"].get("namespace"), body["metadata"]["name"]))


def cancel_recheck(memo: kopf.Memo, name: str) -> None:
    handle = memo.setdefault("catalog_rechecks", {}).pop(name, None)
    if handle is not None:
        handle.cancel()
