"""Pure picking: weighted deployments, least outstanding pods, the bounded wait for a free slot."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from modelcatalog.router.picker import PodLoad, choose_deployment
from modelcatalog.router.state import Deployment, Pod

A, B, PARKED = Deployment("a", "e", 90), Deployment("b", "e", 10), Deployment("c", "e", 0)
PODS = [Pod("p1", "a", "127.1.0.2", 8000), Pod("p2", "a", "127.1.0.3", 8000)]


def rng() -> random.Random:
    return random.Random(1)  # noqa: S311


def test_weights_split_traffic() -> None:
    generator = rng()
    counts = Counter(choose_deployment([A, B, PARKED], lambda d: True, generator).name for _ in range(10_000))  # type: ignore[union-attr]
    assert counts["c"] == 0
    assert 0.88 <= counts["a"] / 10_000 <= 0.92


def test_share_of_a_deployment_without_ready_pods_goes_to_the_others() -> None:
    generator = rng()
    chosen = {choose_deployment([A, B], lambda d: d.name == "b", generator) for _ in range(100)}
    assert chosen == {B}


def test_nothing_ready_still_names_a_deployment_and_all_parked_names_none() -> None:
    assert choose_deployment([A], lambda d: False, rng()) == A
    assert choose_deployment([PARKED], lambda d: True, rng()) is None


def test_least_outstanding_below_the_limit() -> None:
    load = PodLoad(rng())
    load.take(PODS[0])
    assert load.least_loaded(PODS, limit=2) == PODS[1]
    load.take(PODS[1])
    load.take(PODS[1])
    assert load.least_loaded(PODS, limit=2) == PODS[0]
    assert load.least_loaded(PODS, limit=1) is None
    assert load.least_loaded(PODS, limit=5, exclude=frozenset({PODS[0].target})) == PODS[1]


async def test_acquire_waits_for_a_release_and_gives_up_after_its_wait() -> None:
    load = PodLoad(rng())
    first = await load.acquire(lambda: PODS[:1], limit=1, wait_seconds=0)
    assert first == PODS[0]
    assert await load.acquire(lambda: PODS[:1], limit=1, wait_seconds=0.05) is None
    waiting = asyncio.create_task(load.acquire(lambda: PODS[:1], limit=1, wait_seconds=30))
    await asyncio.sleep(0)
    load.release(PODS[0])
    assert await asyncio.wait_for(waiting, 30) == PODS[0]
    assert load.outstanding == {PODS[0].target: 1}
