"""A work queue for level-triggered reconciles: requests coalesce per key, failures retry with backoff.

A key is queued, running, or waiting for its one retry, never more than one of each: a request while
it runs makes it run once more afterwards, and a failure replaces any retry already pending. The
delay doubles per consecutive failure up to `max_backoff`, with jitter (so many objects failing
together do not retry in step), and never overflows however long an object keeps failing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Hashable

from modelcatalog.kube.client import ApiError
from modelcatalog.metrics import RETRIES

logger = logging.getLogger(__name__)
MAX_DOUBLINGS = 30  # 2**30 x first_backoff is far past any max_backoff: the exponent stops growing here


def backoff(failures: int, first: float, most: float) -> float:
    """Seconds before retry number `failures`: doubling, capped, with up to 50 % jitter below the value."""
    capped = min(first * (1 << min(failures - 1, MAX_DOUBLINGS)), most)
    return capped * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


def reason_of(error: Exception) -> str:
    return f"api-{error.status}" if isinstance(error, ApiError) else type(error).__name__


class WorkQueue:
    def __init__(
        self,
        name: str,
        work: Callable[[Hashable], Awaitable[None]],
        concurrency: int = 8,
        first_backoff: float = 1.0,
        max_backoff: float = 300.0,
    ) -> None:
        self.name = name
        self._work = work
        self._slots = asyncio.Semaphore(concurrency)
        self._queued: set[Hashable] = set()
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._retries: dict[Hashable, asyncio.TimerHandle] = {}
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

    def pending_retries(self) -> int:
        return len(self._retries)

    async def _run(self, key: Hashable) -> None:
        async with self._slots:
            self._queued.discard(key)
            self._running.add(key)
            try:
                await self._work(key)
                self._failures.pop(key, None)
                self._cancel_retry(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._schedule_retry(key, error)
            finally:
                self._running.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.request(key)

    def _schedule_retry(self, key: Hashable, error: Exception) -> None:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = backoff(failures, self._first_backoff, self._max_backoff)
        RETRIES.labels(self.name, reason_of(error)).inc()
        logger.warning("%s %s failed (attempt %d), retrying in %.1f s: %s", self.name, key, failures, delay, error)
        self._cancel_retry(key)
        self._retries[key] = asyncio.get_running_loop().call_later(delay, self._retry, key)

    def _retry(self, key: Hashable) -> None:
        self._retries.pop(key, None)
        self.request(key)

    def _cancel_retry(self, key: Hashable) -> None:
        handle = self._retries.pop(key, None)
        if handle is not None:
            handle.cancel()

    async def close(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
