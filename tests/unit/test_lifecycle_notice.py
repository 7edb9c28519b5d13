"""Lifecycle warnings on ModelDeployments: one per threshold (90, 30, 7 days before a date; deprecated), on the
operator's clock (catalog/lifecycle.py `notice`, controllers/deployment.py `announce`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import kopf
import pytest

from modelcatalog import clock
from modelcatalog.api.catalog import Lifecycle
from modelcatalog.api.deployment import ModelDeploymentStatus
from modelcatalog.catalog import lifecycle
from modelcatalog.catalog.lifecycle import Notice
from modelcatalog.controllers import notices
from tests.unit.builders import model_spec

TODAY = date(2026, 6, 1)


def days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def life(**fields: Any) -> Lifecycle:
    return Lifecycle.model_validate({"stage": "GenerallyAvailable"} | fields)


@pytest.mark.parametrize(
    ("ahead", "within"), [(91, None), (90, 90), (31, 90), (30, 30), (8, 30), (7, 7), (1, 7)]
)  # fmt: skip
def test_a_retirement_date_warns_at_the_smallest_threshold_it_is_within(ahead: int, within: int | None) -> None:
    found = lifecycle.notice(life(retirementDate=days(ahead)), TODAY)
    assert found == (Notice("Retired", TODAY + timedelta(days=ahead), within) if within else None)


def test_a_deprecation_date_warns_too_and_the_nearest_date_wins() -> None:
    found = lifecycle.notice(life(deprecationDate=days(20), retirementDate=days(50)), TODAY)
    assert found == Notice("Deprecated", TODAY + timedelta(days=20), 30)
    assert found.key == f"Deprecated/{days(20)}/30d" and found.reason == "DeprecationWithin30Days"


def test_once_deprecated_the_notice_is_deprecated_until_the_retirement_date_comes_near() -> None:
    deprecated = life(stage="Deprecated", deprecationDate=days(-10), retirementDate=days(200), replacement="next")
    found = lifecycle.notice(deprecated, TODAY)
    assert found == Notice("Deprecated", TODAY - timedelta(days=10)) and found.key == f"Deprecated/{days(-10)}/now"
    assert (
        found.message("CatalogModel m", TODAY, "next")
        == f"CatalogModel m is deprecated since {days(-10)}; move to next"
    )
    assert lifecycle.notice(deprecated, TODAY + timedelta(days=110)) == Notice(
        "Retired", TODAY + timedelta(days=200), 90
    )


def test_nothing_near_or_already_retired_gives_no_notice() -> None:
    assert lifecycle.notice(life(), TODAY) is None
    assert lifecycle.notice(life(legacyDate=days(5)), TODAY) is None  # legacy is no warning
    assert lifecycle.notice(life(retirementDate=days(-1)), TODAY) is None  # the Retired phase says it


def test_the_message_says_how_far_and_what_to_move_to() -> None:
    found = lifecycle.notice(life(retirementDate=days(25)), TODAY)
    assert found is not None
    assert (
        found.message("CatalogModel m", TODAY, "next")
        == f"CatalogModel m retires in 25 days ({days(25)}); move to next"
    )


def test_the_next_threshold_day_is_when_the_catalog_rechecks() -> None:
    spec = model_spec(lifecycle={"stage": "GenerallyAvailable", "retirementDate": days(100)})
    assert lifecycle.next_notice_day(spec, TODAY) == TODAY + timedelta(days=10)
    assert lifecycle.next_notice_day(spec, TODAY + timedelta(days=10)) == TODAY + timedelta(days=70)
    assert lifecycle.next_notice_day(spec, TODAY + timedelta(days=93)) is None


class FakeClient:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def create(self, manifest: dict[str, Any]) -> None:
        self.events.append(manifest)


async def test_one_event_per_threshold_not_per_reconcile_as_the_clock_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.ENV, raising=False)
    retires = clock.today() + timedelta(days=40)
    model = model_spec(lifecycle={"stage": "GenerallyAvailable", "retirementDate": retires.isoformat(),
                                  "replacement": "next"})  # fmt: skip
    memo = kopf.Memo()
    memo.client = FakeClient()
    body: dict[str, Any] = {"metadata": {"name": "chat", "namespace": "team-a", "uid": "u"}, "status": {}}

    async def reconcile() -> ModelDeploymentStatus:
        today = clock.today()
        found = lifecycle.option_notice(model, lifecycle.MANAGED, today)
        status = notices.with_notice(ModelDeploymentStatus(), "CatalogModel llama", "next", found, today)
        await notices.announce(memo, "ModelDeployment", body, status, found)
        body["status"] = status.to_wire()  # the status write, as the cache then holds it
        return status

    for offset in (0, 5, 11, 12, 33, 34, 39, 40):
        monkeypatch.setenv(clock.ENV, str(offset))
        status = await reconcile()
        await reconcile()  # a second reconcile the same day announces nothing new
        if offset < 40:
            [condition] = [c for c in status.conditions if c.type == notices.CONDITION]
            assert condition.status == "True" and "move to next" in condition.message
    reasons = [e["reason"] for e in memo.client.events]
    assert reasons == ["RetirementWithin90Days", "RetirementWithin30Days", "RetirementWithin7Days"]
    assert all(e["type"] == "Warning" and e["involvedObject"]["kind"] == "ModelDeployment" for e in memo.client.events)
    assert (
        memo.client.events[1]["message"]
        == f"CatalogModel llama retires in 29 days ({retires.isoformat()}); move to next"
    )
    assert body["status"].get("lifecycleNotice") is None  # retired: the Retired phase and its Event take over
