"""Which replica works: the one no live peer outranks, read from kopf's peering object.

kopf pauses only its own watchers when a peer with a higher priority is alive; our reconciles run off
our own watch caches, so they wait on this gate too. A standby replica keeps its caches warm and
writes nothing; when it takes over it requeues every object it may have missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)
RECHECK_SECONDS = 5.0  # a dead peer stops counting at its lastseen + lifetime; look again this often


def outranked_by(peering: dict[str, Any] | None, priority: int, now: datetime) -> list[str]:
    """The live peers whose priority is above ours (our own entry has ours)."""
    found = []
    for identity, peer in ((peering or {}).get("status") or {}).items():
        if not isinstance(peer, dict) or peer.get("priority") is None:
            continue
        seen = _parse_time(peer.get("lastseen"))
        alive = seen is not None and seen + timedelta(seconds=int(peer.get("lifetime", 60))) > now
        if alive and int(peer["priority"]) > priority:
            found.append(identity)
    return sorted(found)


def _parse_time(text: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Gate:
    """Open while this replica may write; `wait()` blocks reconciles while a peer outranks it."""

    def __init__(self, priority: int | None, on_takeover: Callable[[], None]) -> None:
        self.open = asyncio.Event()
        self._priority = priority
        self._on_takeover = on_takeover
        self._decided = priority is None
        if priority is None:  # standalone: no peers to defer to
            self.open.set()

    async def wait(self) -> None:
        await self.open.wait()

    def update(self, peering: dict[str, Any] | None) -> None:
        if self._priority is None:
            return
        ahead = outranked_by(peering, self._priority, datetime.now(UTC))
        if ahead and self.open.is_set():
            logger.info("standing by: %s outrank this replica", ", ".join(ahead))
            self.open.clear()
        elif not ahead and not self.open.is_set():
            logger.info("no live peer outranks this replica: %s", "taking over" if self._decided else "working")
            self.open.set()
            if self._decided:
                self._on_takeover()
        self._decided = True

    async def follow(self, read: Callable[[], dict[str, Any] | None]) -> None:
        """Re-evaluate now and then: a peer's death shows only as time passing."""
        while True:
            try:
                self.update(read())
            except Exception:  # a malformed peering object must not end the gate's watch
                logger.exception("cannot read the peering object")
            await asyncio.sleep(RECHECK_SECONDS)
