"""Lifecycle warnings for the users of a model: a condition while one is due, one Warning Event per threshold."""

from __future__ import annotations

from datetime import date
from typing import TypeVar

import kopf

from modelcatalog.api.base import Condition, Status
from modelcatalog.catalog import lifecycle
from modelcatalog.kube.cache import Obj
from modelcatalog.kube.client import event_manifest

CONDITION = "LifecycleWarning"
S = TypeVar("S", bound=Status)


def with_notice(status: S, subject: str, replacement: str | None, notice: lifecycle.Notice | None, today: date) -> S:
    """The warning as a condition (present only while one is due) and, in `lifecycleNotice`, the key announced."""
    if notice is None:
        return status
    condition = Condition.of(CONDITION, True, notice.reason, notice.message(subject, today, replacement))
    return status.model_copy(update={"conditions": [*status.conditions, condition], "lifecycle_notice": notice.key})


async def announce(memo: kopf.Memo, kind: str, body: Obj, status: Status, notice: lifecycle.Notice | None) -> None:
    """One Warning Event per notice (threshold), not per reconcile: the key is remembered in the status (and,
    until the cache holds that write, in memory)."""
    meta = body["metadata"]
    key = (kind, meta.get("namespace"), meta["name"])
    announced: dict[tuple[str, str | None, str], str] = memo.setdefault("lifecycle_notices", {})
    if notice is None:
        announced.pop(key, None)
        return
    if notice.key in ((body.get("status") or {}).get("lifecycleNotice"), announced.get(key)):
        return
    announced[key] = notice.key
    condition = next(c for c in status.conditions if c.type == CONDITION)
    await memo.client.create(event_manifest(body, kind, condition.reason, condition.message, True))
