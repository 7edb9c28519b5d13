"""Unit tests run on one frozen moment: dates a test computes at import ("30 days from today") and the
ones the code computes later agree, even when the run crosses midnight (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelcatalog import clock

FROZEN = datetime.now(UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: FROZEN + timedelta(days=clock.offset_days()))
