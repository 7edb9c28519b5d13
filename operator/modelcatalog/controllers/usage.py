"""status.usage of ServerlessEndpoints, from the serverless store: the routers add to the counters, the operator
alone writes status.

Every `serverless_usage_seconds` (5 by default) the operator reads the lifetime totals of every endpoint in one
pipelined round trip; an endpoint whose totals changed is reconciled, and the serverless controller writes them
into its status with the rest (so status has one writer, and an endpoint's status is patched at most once per
interval for usage).
"""

from __future__ import annotations

import asyncio
import logging

import kopf
from redis.exceptions import RedisError

from modelcatalog.api.serverless import Usage
from modelcatalog.controllers import work
from modelcatalog.render.serverless import KIND
from modelcatalog.router.store import Store, StoreSettings, Totals, endpoint_id

log = logging.getLogger(__name__)


def usage_of(totals: Totals) -> Usage:
    return Usage(
        requests=totals.requests,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        cost=f"{totals.cost:.6f}",
    )


async def poll_forever(memo: kopf.Memo) -> None:
    """Read the counters into memo.usage ((namespace, name) -> Usage) until cancelled; nothing without a store."""
    settings = memo.settings
    if not settings.serverless_store_url:
        return
    store = Store(StoreSettings(settings.serverless_store_url, settings.serverless_store_password))
    await memo.cluster.ready()
    try:
        while True:
            try:
                await poll_once(memo, store)
            except (RedisError, OSError) as error:
                log.warning("cannot read usage from the serverless store: %s", error)
            await asyncio.sleep(settings.serverless_usage_seconds)
    finally:
        await store.close()


async def poll_once(memo: kopf.Memo, store: Store) -> None:
    bodies = [b for b in memo.cluster.serverless.all() if not b["metadata"].get("deletionTimestamp")]
    keys = [(b["metadata"]["namespace"], b["metadata"]["name"]) for b in bodies]
    pairs = [(endpoint_id(*key), str(b["metadata"].get("uid") or "")) for key, b in zip(keys, bodies, strict=True)]
    found = await store.lifetimes(pairs)
    known: dict[tuple[str, str], Usage] = memo.usage
    for key, totals in zip(keys, found, strict=True):
        usage = usage_of(totals)
        if known.get(key) != usage:
            known[key] = usage
            work.request(memo, KIND, key)
    for gone in set(known) - set(keys):
        del known[gone]
