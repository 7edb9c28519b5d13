"""The CatalogModel controller: status from the spec and the clock, Events when a date moves a stage."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import kopf
import pytest

from modelcatalog import clock
from modelcatalog.controllers import catalog
from modelcatalog.shard import Shard


class FakeClient:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    async def patch_status(self, info: Any, name: str, namespace: str | None, status: dict[str, Any]) -> None:
        self.patches.append(status)

    async def create(self, manifest: dict[str, Any]) -> None:
        self.events.append(manifest)


def model(retirement: str, status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "uid": "u1", "generation": generation},
        "spec": {
            "displayName": "M", "publisher": "P", "collection": "curated", "tasks": ["chat-completion"],
            "license": "mit", "deploymentOptions": {"serverless": {
                "regions": ["eastus"], "lifecycle": {"stage": "Deprecated", "deprecationDate": "2020-01-01",
                                                     "retirementDate": retirement}}},
        },
        "status": status or {},
    }  # fmt: skip


class FakeModels:
    """The CatalogModel watch cache, holding the one object under test."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.body


@pytest.fixture
def memo() -> kopf.Memo:
    found = kopf.Memo()
    found.client = FakeClient()
    found.queues = {}
    found.cluster = kopf.Memo(models=FakeModels(), shard=Shard())
    return found


async def reconcile(memo: kopf.Memo, body: dict[str, Any]) -> dict[str, Any]:
    memo.cluster.models.body = body
    await catalog.reconcile(memo, "m")
    return memo.client.patches[-1] if memo.client.patches else {}


async def test_status_then_an_event_when_the_clock_passes_the_retirement_date(
    memo: kopf.Memo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(clock.ENV, raising=False)
    due = (clock.today() + timedelta(days=3)).isoformat()
    status = await reconcile(memo, model(due))
    assert (status["phase"], status["stage"], status["serverlessStage"]) == (
        "GenerallyAvailable", "GenerallyAvailable", "Deprecated"
    )  # fmt: skip
    assert status["serverless"] == "deprecated, 1 region"
    assert status["nextChange"]["description"] == f"the serverless offer retires on {due}"
    assert status["conditions"][0]["type"] == "Available" and status["conditions"][0]["status"] == "True"
    timer = memo["catalog_rechecks"]["m"]
    assert timer.when() - asyncio.get_running_loop().time() == pytest.approx(catalog.RECHECK_SECONDS, abs=5)

    await reconcile(memo, model(due, status))  # nothing changed: nothing written
    assert len(memo.client.patches) == 1

    monkeypatch.setenv(clock.ENV, "3")
    moved = await reconcile(memo, model(due, status))
    assert (moved["serverlessStage"], moved["serverless"], moved["nextChange"]) == ("Retired", "retired", None)
    [event] = memo.client.events
    assert (event["reason"], event["type"]) == ("LifecycleChanged", "Warning")
    assert event["message"].startswith("the serverless offer is retired as of ")
    assert event["involvedObject"]["kind"] == "CatalogModel"
    catalog.cancel_recheck(memo, "m")


async def test_the_recheck_is_due_when_the_next_date_begins(memo: kopf.Memo) -> None:
    tomorrow = clock.today() + timedelta(days=1)
    await reconcile(memo, model(tomorrow.isoformat()))
    delay = memo["catalog_rechecks"]["m"].when() - asyncio.get_running_loop().time()
    assert delay == pytest.approx(clock.seconds_until(tomorrow) + 1, abs=5)
    catalog.cancel_recheck(memo, "m")
    assert memo["catalog_rechecks"] == {}


async def test_an_edit_changes_the_status_without_a_date_event(memo: kopf.Memo) -> None:
    old = (clock.today() - timedelta(days=1)).isoformat()
    status = await reconcile(memo, model((clock.today() + timedelta(days=5)).isoformat()))
    await reconcile(memo, model(old, status, generation=2))
    assert memo.client.patches[-1]["serverlessStage"] == "Retired"
    assert memo.client.events == []
    catalog.cancel_recheck(memo, "m")


async def test_an_invalid_spec_is_reported_not_raised(memo: kopf.Memo) -> None:
    body = model("2030-01-01")
    body["spec"]["collection"] = "nope"
    status = await reconcile(memo, body)
    assert status["phase"] == "Invalid"
    assert status["conditions"][0]["reason"] == "InvalidSpec"
    assert "spec.collection" in status["conditions"][0]["message"]
