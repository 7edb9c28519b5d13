"""The categories and severities a filter reports, and how a verdict is reached from them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal, Protocol

log = logging.getLogger(__name__)

Role = Literal["prompt", "completion"]


class Category(StrEnum):
    HATE = "hate"
    SEXUAL = "sexual"
    VIOLENCE = "violence"
    SELF_HARM = "self_harm"


class Severity(IntEnum):
    """The content-safety severity scale (0, 2, 4, 6), named as the cloud's filters name it."""

    SAFE = 0
    LOW = 2
    MEDIUM = 4
    HIGH = 6

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, name: str) -> Severity:
        """`Low`, `medium`, `HIGH`, ... -> the severity; ValueError naming the choices otherwise."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"{name!r} is not a severity: expected low, medium or high") from None


Scores = dict[Category, Severity]


class FilterError(Exception):
    """The filter could not judge (a service down, an answer it cannot read)."""


class Filter(Protocol):
    name: str

    async def screen(self, text: str, role: Role) -> Scores:
        """Each category's severity in `text` (a category left out is safe)."""
        ...


@dataclass(frozen=True)
class Verdict:
    """What the filters found at or above the threshold, or why they could not judge (failing closed)."""

    flagged: tuple[tuple[Category, Severity], ...] = ()
    error: str | None = None

    @property
    def blocked(self) -> bool:
        return bool(self.flagged) or self.error is not None

    def describe(self) -> str:
        if self.error is not None:
            return f"the content filter could not judge ({self.error})"
        return ", ".join(f"{category.value} (severity {severity.label})" for category, severity in self.flagged)

    def results(self) -> dict[str, object]:
        """Per category, filtered and severity, in the shape of the cloud's `content_filter_results`."""
        if self.error is not None:
            return {"error": {"code": "content_filter_unavailable", "message": self.error}}
        found = dict(self.flagged)
        return {c.value: {"filtered": c in found, "severity": found.get(c, Severity.SAFE).label} for c in Category}


async def judge(
    filters: Sequence[Filter], text: str, role: Role, threshold: Severity, seconds: float, fail_open: bool
) -> Verdict:
    """Every filter at once; a category is flagged at the highest severity any filter gives it."""
    if not text.strip() or not filters:
        return Verdict()
    found = await asyncio.gather(*(_screen(f, text, role, seconds) for f in filters), return_exceptions=True)
    worst: Scores = {}
    for filter_, scores in zip(filters, found, strict=True):
        if isinstance(scores, BaseException):
            if not isinstance(scores, FilterError):
                raise scores
            log.warning("content filter %s failed: %s", filter_.name, scores)
            if not fail_open:
                return Verdict(error=f"{filter_.name}: {scores}")
            continue
        for category, severity in scores.items():
            worst[category] = max(worst.get(category, Severity.SAFE), severity)
    flagged = tuple((c, s) for c in Category if (s := worst.get(c, Severity.SAFE)) >= threshold)
    return Verdict(flagged)


async def _screen(filter_: Filter, text: str, role: Role, seconds: float) -> Scores:
    try:
        async with asyncio.timeout(seconds):
            return await filter_.screen(text, role)
    except TimeoutError:
        raise FilterError(f"no answer within {seconds:g} s") from None
