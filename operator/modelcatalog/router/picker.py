"""Which deployment and which pod serve a request: weighted split, pinning, least outstanding requests."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from modelcatalog.router.state import Deployment, Pod


def choose_deployment(
    deployments: Sequence[Deployment], has_ready_pod: Callable[[Deployment], bool], rng: random.Random
) -> Deployment | None:
    """Weighted random by trafficPercent over the deployments that have a ready pod, so a share
    whose pods are all down goes to the others; over all weighted ones when none is ready (the
    caller then answers 503 after checking the credential against that deployment)."""
    weighted = [d for d in deployments if d.weight > 0]
    ready = [d for d in weighted if has_ready_pod(d)]
    pool = ready or weighted
    if not pool:
        return None
    return rng.choices(pool, weights=[d.weight for d in pool])[0]


class PodLoad:
    """Outstanding requests per pod; a request waits (bounded) for a free slot when all are full."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.outstanding: dict[str, int] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._rng = rng or random.Random()  # noqa: S311 (load spreading, not security)

    def least_loaded(self, pods: Sequence[Pod], limit: int, exclude: frozenset[str] = frozenset()) -> Pod | None:
        """A pod with the fewest outstanding requests below `limit`, ties broken at random."""
        best: list[Pod] = []
        fewest = limit
        for pod in pods:
            if pod.target in exclude:
                continue
            count = self.outstanding.get(pod.target, 0)
            if count < fewest:
                best, fewest = [pod], count
            elif count == fewest and count < limit:
                best.append(pod)
        if not best:
            return None
        return best[0] if len(best) == 1 else self._rng.choice(best)

    def take(self, pod: Pod) -> None:
        self.outstanding[pod.target] = self.outstanding.get(pod.target, 0) + 1

    def release(self, pod: Pod) -> None:
        left = self.outstanding.get(pod.target, 0) - 1
        if left > 0:
            self.outstanding[pod.target] = left
        else:
            self.outstanding.pop(pod.target, None)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def acquire(
        self, pods: Callable[[], Sequence[Pod]], limit: int, wait_seconds: float, exclude: frozenset[str] = frozenset()
    ) -> Pod | None:
        """Take a slot on the least loaded pod, waiting up to `wait_seconds` for one to free up;
        `pods` is called again after each wait, so pods that become ready meanwhile count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            pod = self.least_loaded(pods(), limit, exclude)
            if pod is not None:
                self.take(pod)
                return pod
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(remaining):
                    await waiter
            except TimeoutError:
                pass
