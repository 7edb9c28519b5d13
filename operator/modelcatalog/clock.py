"""The one clock for every date decision (lifecycle stages, "retires in 30 days"), shiftable for tests and demos.

`today()` and `now()` are the real UTC date and time moved by an offset in days. The offset comes from the
environment variable MODELCATALOG_CLOCK_OFFSET_DAYS when it is set (like every MODELCATALOG_* variable it wins for
the local process), else from `configure(days)` (the operator and the CLI call it with the `clockOffsetDays` key of
the `modelcatalog-settings` ConfigMap), else 0.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta

ENV = "MODELCATALOG_CLOCK_OFFSET_DAYS"

_configured: int | None = None


def configure(offset_days: int | None) -> None:
    """Move the clock by this many days unless MODELCATALOG_CLOCK_OFFSET_DAYS is set (None: no offset)."""
    global _configured
    _configured = offset_days


def parse_offset(text: str | None, where: str = ENV) -> int:
    if text is None or not text.strip():
        return 0
    try:
        return int(text.strip())
    except ValueError as error:
        raise ValueError(f"{where} must be a whole number of days, not {text!r}") from error


def offset_days() -> int:
    if os.environ.get(ENV, "").strip():
        return parse_offset(os.environ[ENV])
    return _configured or 0


def now() -> datetime:
    return datetime.now(UTC) + timedelta(days=offset_days())


def today() -> date:
    return now().date()


def seconds_until(day: date) -> float:
    """Seconds from now (on this clock) to the start of `day` in UTC; negative when it has begun."""
    return (datetime.combine(day, time(), tzinfo=UTC) - now()).total_seconds()
