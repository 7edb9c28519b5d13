"""Lifecycle as of a day (catalog/lifecycle.py), the one clock (clock.py) and the settings it follows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from modelcatalog import clock
from modelcatalog.api.catalog import CatalogModelSpec, Lifecycle
from modelcatalog.catalog import lifecycle
from modelcatalog.settings import Settings

DAY = date(2026, 12, 1)


def spec(lifecycle_: dict[str, Any] | None = None, serverless: dict[str, Any] | None = None) -> CatalogModelSpec:
    options: dict[str, Any] = {"managedCompute": {"runtime": "vllm"}}
    if serverless is not None:
        options["serverless"] = serverless
    return CatalogModelSpec.model_validate({
        "displayName": "M", "publisher": "P", "collection": "curated", "tasks": ["chat-completion", "embeddings"],
        "license": "mit", "weights": {"repository": "o/m"}, "deploymentOptions": options,
        "lifecycle": lifecycle_ or {},
    })  # fmt: skip


DEPRECATED = {"stage": "Deprecated", "deprecationDate": "2026-06-01", "retirementDate": "2026-12-31"}


@pytest.mark.parametrize(
    ("day", "stage"),
    [
        (date(2026, 5, 31), "Deprecated"),  # a written stage holds before its own date
        (date(2026, 12, 30), "Deprecated"),
        (date(2026, 12, 31), "Retired"),  # the retirement date is the first day retired
        (date(2028, 1, 1), "Retired"),
    ],
)
def test_the_stage_moves_on_as_dates_pass(day: date, stage: str) -> None:
    assert lifecycle.stage_on(Lifecycle.model_validate(DEPRECATED), day) == stage


def test_a_legacy_date_moves_a_ga_model_on_and_the_next_change_is_the_next_date() -> None:
    dated = Lifecycle.model_validate({"legacyDate": "2026-11-01", "deprecationDate": "2027-01-01"})
    assert lifecycle.stage_on(dated, DAY) == "Legacy"
    assert lifecycle.next_change(dated, DAY) == (date(2027, 1, 1), "Deprecated")
    assert lifecycle.next_change(dated, date(2027, 1, 1)) is None


@pytest.mark.parametrize(
    ("data", "day", "text"),
    [
        (DEPRECATED, DAY, "deprecated, retires in 30 days (2026-12-31)"),
        (DEPRECATED, date(2026, 12, 30), "deprecated, retires in 1 day (2026-12-31)"),
        (DEPRECATED, date(2026, 12, 31), "retired today (2026-12-31)"),
        (DEPRECATED, date(2028, 6, 2), "retired 519 days ago (2026-12-31)"),
        ({}, DAY, "generally available"),
        ({"stage": "Preview"}, DAY, "preview"),
        ({**DEPRECATED, "replacement": "m2"}, DAY, "deprecated, retires in 30 days (2026-12-31); replaced by m2"),
    ],
)
def test_lifecycle_reads_as_people_say_it(data: dict[str, Any], day: date, text: str) -> None:
    assert lifecycle.describe(Lifecycle.model_validate(data), day) == text


def test_the_serverless_offer_follows_its_own_dates_and_never_trails_the_model() -> None:
    own = {"regions": ["eastus", "westus"], "lifecycle": {"stage": "Retired", "retirementDate": "2025-06-30"}}
    model = spec(serverless=own)
    assert lifecycle.option_stage(model, "serverless", DAY) == "Retired"
    assert lifecycle.option_stage(model, "managed", DAY) == "GenerallyAvailable"
    assert lifecycle.describe_option(model, "serverless", DAY) == "retired 519 days ago (2025-06-30)"
    retired_model = spec({"stage": "Retired", "retirementDate": "2026-01-01"}, {"regions": ["eastus"]})
    assert lifecycle.option_stage(retired_model, "serverless", DAY) == "Retired"
    ga_offer_of_retired_model = spec(
        {"stage": "Retired", "retirementDate": "2026-01-01"}, {"lifecycle": {"stage": "GenerallyAvailable"}}
    )
    assert lifecycle.retired(ga_offer_of_retired_model, "serverless", DAY)


def test_status_summarises_stages_regions_and_the_next_date() -> None:
    live = spec(DEPRECATED, {"regions": ["a", "b", "c"], "lifecycle": {"stage": "GenerallyAvailable",
                                                                     "deprecationDate": "2026-12-10"}})  # fmt: skip
    assert lifecycle.status(live, DAY) == {
        "stage": "Deprecated",
        "tasks": "chat-completion, embeddings",
        "managed": "deprecated (vllm)",
        "serverless": "deprecated, 3 regions",  # the model is deprecated, so its offer is too
        "serverlessStage": "Deprecated",
        "nextChange": {
            "date": "2026-12-31",
            "stage": "Retired",
            "subject": "model",
            "description": "the model retires on 2026-12-31",
        },
    }
    offer_first = spec({}, {"lifecycle": {"stage": "Legacy", "retirementDate": "2027-02-01"}})
    assert lifecycle.status(offer_first, DAY)["nextChange"]["description"] == (
        "the serverless offer retires on 2027-02-01"
    )
    assert lifecycle.status(spec({}, {}), DAY)["serverless"] == "live in every region"
    assert lifecycle.status(spec({}, {"regions": ["x"]}), DAY)["serverless"] == "live in 1 region"
    gone = lifecycle.status(spec({"stage": "Retired", "retirementDate": "2025-01-01"}, {"regions": ["x"]}), DAY)
    assert (gone["managed"], gone["serverless"], "nextChange" in gone) == ("retired", "retired", False)


def test_status_after_moving_the_clock_past_the_retirement_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.ENV, raising=False)
    due = (clock.today() + timedelta(days=10)).isoformat()
    model = spec({"stage": "Deprecated", "deprecationDate": "2020-01-01", "retirementDate": due})
    assert lifecycle.status(model, clock.today())["stage"] == "Deprecated"
    monkeypatch.setenv(clock.ENV, "10")
    assert clock.today().isoformat() == due
    assert lifecycle.status(model, clock.today())["stage"] == "Retired"


def test_the_clock_offset_comes_from_the_environment_before_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.ENV, raising=False)
    real = clock.today()
    try:
        Settings.from_env({}, {"clockOffsetDays": "-3"}).apply_clock()
        assert clock.today() == real - timedelta(days=3)
        monkeypatch.setenv(clock.ENV, "5")
        assert clock.today() == real + timedelta(days=5)
    finally:
        clock.configure(None)
    monkeypatch.setenv(clock.ENV, "soon")
    with pytest.raises(ValueError, match="whole number of days"):
        clock.today()


def test_settings_come_from_the_configmap_with_environment_overrides() -> None:
    assert Settings.from_env({}, None).region == "local"
    from_map = Settings.from_env({}, {"region": "eastus", "clockOffsetDays": "7"})
    assert (from_map.region, from_map.clock_offset_days) == ("eastus", 7)
    overridden = Settings.from_env({"MODELCATALOG_REGION": "westus"}, {"region": "eastus"})
    assert overridden.region == "westus"
    with pytest.raises(ValueError, match="clockOffsetDays"):
        Settings.from_env({}, {"clockOffsetDays": "tomorrow"})
