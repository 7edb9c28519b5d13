"""A work queue for level-triggered reconciles: requests coalesce per key, failures retry with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

logger = logging.getLogger(__name__)


class WorkQueue:
    def __init__(
        self,
        name: str,
        work: Callable[[Hashable], Awaitable[None]],
        concurrency: int = 8,
        first_backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.name = name
        self._work = work
        self._slots = asyncio.Semaphore(concurrency)
        self._queued: set[Hashable] = set()
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff

    def request(self, key: Hashable) -> None:
        """Reconcile `key` soon; a request while it runs makes it run once more afterwards."""
        if key in self._running:
            self._again.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        task = asyncio.get_running_loop().create_task(self._run(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def idle(self) -> bool:
        return not (self._queued or self._running)

    async def _run(self, key: Hashable) -> None:
        async with self._slots:
            self._queued.discard(key)
            self._running.add(key)
            try:
                await self._work(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(self._first_backoff * 2 ** (failures - 1), self._max_backoff)
                logger.warning(
                    "%s %s failed (attempt %d), retrying in %.0f s: %s", self.name, key, failures, delay, error
                )
                asyncio.get_running_loop().call_later(delay, self.request, key)
            finally:
                self._running.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.request(key)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
