"""Standard Kubernetes conditions: set one, keep lastTransitionTime while the status holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Cond:
    type: str
    status: bool | None  # None = Unknown
    reason: str
    message: str = ""

    @property
    def status_text(self) -> str:
        return "Unknown" if self.status is None else str(self.status)


def merge(previous: list[dict[str, Any]], new: list[Cond], generation: int | None) -> list[dict[str, Any]]:
    """The new conditions in the standard shape; a condition whose status did not change keeps its time."""
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in new:
        old = before.get(cond.type, {})
        changed = old.get("status") != cond.status_text
        merged.append({
            "type": cond.type,
            "status": cond.status_text,
            "reason": cond.reason,
            "message": cond.message,
            "lastTransitionTime": now() if changed or "lastTransitionTime" not in old else old["lastTransitionTime"],
            "observedGeneration": generation,
        })  # fmt: skip
    return merged


def same_status(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True when writing `desired` would change nothing a user can see (times aside)."""
    return _strip_times(current) == _strip_times(desired)


def _strip_times(status: dict[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in status.items() if k != "conditions"}
    stripped["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions", [])
    ]
    return stripped
