"""Lifecycle as of a day: the stage each date has brought, the next change, and the words people read.

Pure functions of a spec and a day (the caller passes `clock.today()`), shared by the CLI (cards, compare, lists)
and the CatalogModel controller (the status `kubectl get catalogmodels` prints).

A stage written in the spec holds until a later stage's date has passed: a model written `Deprecated` with a
retirementDate of 2026-01-31 is Retired from that day on. A deployment option with a lifecycle of its own
(`deploymentOptions.serverless.lifecycle`) follows it, and is never in an earlier stage than the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from modelcatalog.api.catalog import CatalogModelSpec, Lifecycle, LifecycleStage

ORDER = [
    LifecycleStage.PREVIEW,
    LifecycleStage.GENERALLY_AVAILABLE,
    LifecycleStage.LEGACY,
    LifecycleStage.DEPRECATED,
    LifecycleStage.RETIRED,
]
WORDS = {
    LifecycleStage.PREVIEW: "preview",
    LifecycleStage.GENERALLY_AVAILABLE: "generally available",
    LifecycleStage.LEGACY: "legacy",
    LifecycleStage.DEPRECATED: "deprecated",
    LifecycleStage.RETIRED: "retired",
}
# What reaching a stage is called, ahead of it and after it.
EVENTS = {
    LifecycleStage.PREVIEW: ("enters preview", "entered preview"),
    LifecycleStage.GENERALLY_AVAILABLE: ("becomes generally available", "became generally available"),
    LifecycleStage.LEGACY: ("becomes legacy", "became legacy"),
    LifecycleStage.DEPRECATED: ("is deprecated", "was deprecated"),
    LifecycleStage.RETIRED: ("retires", "retired"),
}
MANAGED = "managed"
SERVERLESS = "serverless"


def rank(stage: str) -> int:
    return ORDER.index(LifecycleStage(stage))


def dates(lifecycle: Lifecycle) -> list[tuple[date, LifecycleStage]]:
    found = [
        (lifecycle.preview_date, LifecycleStage.PREVIEW),
        (lifecycle.generally_available_date, LifecycleStage.GENERALLY_AVAILABLE),
        (lifecycle.legacy_date, LifecycleStage.LEGACY),
        (lifecycle.deprecation_date, LifecycleStage.DEPRECATED),
        (lifecycle.retirement_date, LifecycleStage.RETIRED),
    ]
    return [(date.fromisoformat(day), stage) for day, stage in found if day]


def stage_on(lifecycle: Lifecycle, day: date, at_least: str | None = None) -> LifecycleStage:
    """The written stage, moved on by every date that has passed (and not before `at_least`)."""
    stage = LifecycleStage(lifecycle.stage)
    for when, later in dates(lifecycle):
        if when <= day and rank(later) > rank(stage):
            stage = later
    if at_least is not None and rank(at_least) > rank(stage):
        stage = LifecycleStage(at_least)
    return stage


def next_change(lifecycle: Lifecycle, day: date, at_least: str | None = None) -> tuple[date, LifecycleStage] | None:
    """The first date after `day` that moves the stage on, with the stage it brings."""
    current = stage_on(lifecycle, day, at_least)
    ahead = [(when, stage) for when, stage in dates(lifecycle) if when > day and rank(stage) > rank(current)]
    return min(ahead) if ahead else None


def option_lifecycle(spec: CatalogModelSpec, option: str) -> Lifecycle | None:
    """The lifecycle an option follows (its own or the model's); None when the model lacks the option."""
    options = spec.deployment_options
    if option == MANAGED:
        return spec.lifecycle if options.managed_compute is not None else None
    if options.serverless is None:
        return None
    return options.serverless.lifecycle or spec.lifecycle


def option_stage(spec: CatalogModelSpec, option: str, day: date) -> LifecycleStage | None:
    lifecycle = option_lifecycle(spec, option)
    if lifecycle is None:
        return None
    return stage_on(lifecycle, day, at_least=stage_on(spec.lifecycle, day))


def option_next_change(spec: CatalogModelSpec, option: str, day: date) -> tuple[date, LifecycleStage] | None:
    """The option's next change: its own dates, or the model's when those come first (a model retiring ends all)."""
    lifecycle = option_lifecycle(spec, option)
    if lifecycle is None:
        return None
    current = option_stage(spec, option, day)
    assert current is not None
    changes = [c for c in (next_change(lifecycle, day), next_change(spec.lifecycle, day)) if c is not None]
    changes = [c for c in changes if rank(c[1]) > rank(current)]
    return min(changes) if changes else None


def retired(spec: CatalogModelSpec, option: str, day: date) -> bool:
    return option_stage(spec, option, day) == LifecycleStage.RETIRED


def days_text(days: int) -> str:
    return "1 day" if abs(days) == 1 else f"{abs(days)} days"


def relative(stage: LifecycleStage, when: date, today: date) -> str:
    """'retires in 30 days', 'retired 519 days ago', 'retired today' (a date's own day has its stage)."""
    ahead, behind = EVENTS[stage]
    days = (when - today).days
    if days == 0:
        return f"{behind} today"
    return f"{ahead} in {days_text(days)}" if days > 0 else f"{behind} {days_text(days)} ago"


def last_change(lifecycle: Lifecycle, stage: LifecycleStage, day: date) -> date | None:
    """The date that brought `stage`, when one did."""
    return next((when for when, s in dates(lifecycle) if s == stage and when <= day), None)


def describe(lifecycle: Lifecycle, today: date, at_least: str | None = None) -> str:
    """The lifecycle as people read it: 'retired 519 days ago (2025-06-30)', 'deprecated, retires in 30 days
    (2026-01-31); replaced by X', 'generally available'."""
    stage = stage_on(lifecycle, today, at_least)
    since = last_change(lifecycle, stage, today)
    if stage == LifecycleStage.RETIRED and since is not None:
        text = f"{relative(stage, since, today)} ({since.isoformat()})"
    else:
        text = WORDS[stage]
    upcoming = next_change(lifecycle, today, at_least)
    if upcoming is not None:
        when, later = upcoming
        text += f", {relative(later, when, today)} ({when.isoformat()})"
    if lifecycle.replacement and rank(stage) >= rank(LifecycleStage.LEGACY):
        text += f"; replaced by {lifecycle.replacement}"
    return text


def describe_option(spec: CatalogModelSpec, option: str, today: date) -> str | None:
    lifecycle = option_lifecycle(spec, option)
    if lifecycle is None:
        return None
    if lifecycle is spec.lifecycle:
        return describe(lifecycle, today)
    model_stage = stage_on(spec.lifecycle, today)
    if model_stage == LifecycleStage.RETIRED:
        return describe(spec.lifecycle, today)  # the model's retirement ends every offer
    return describe(lifecycle, today, at_least=model_stage)


def regions_text(regions: list[str]) -> str:
    if not regions:
        return "every region"
    return f"{len(regions)} region" if len(regions) == 1 else f"{len(regions)} regions"


def serverless_summary(spec: CatalogModelSpec, today: date) -> str | None:
    """'live in 7 regions', 'preview in every region', 'deprecated, 2 regions', 'retired'."""
    serverless = spec.deployment_options.serverless
    stage = option_stage(spec, SERVERLESS, today)
    if serverless is None or stage is None:
        return None
    regions = regions_text(serverless.regions)
    if stage == LifecycleStage.RETIRED:
        return "retired"
    if stage == LifecycleStage.GENERALLY_AVAILABLE:
        return f"live in {regions}"
    if stage == LifecycleStage.PREVIEW:
        return f"preview in {regions}"
    return f"{WORDS[stage]}, {regions}"


def managed_summary(spec: CatalogModelSpec, today: date) -> str | None:
    managed = spec.deployment_options.managed_compute
    stage = option_stage(spec, MANAGED, today)
    if managed is None or stage is None:
        return None
    if stage == LifecycleStage.GENERALLY_AVAILABLE:
        return str(managed.runtime)
    return f"{WORDS[stage]} ({managed.runtime})" if stage != LifecycleStage.RETIRED else "retired"


@dataclass(frozen=True)
class Change:
    day: date
    stage: LifecycleStage
    subject: str  # "model" or a deployment option

    def description(self) -> str:
        who = "the model" if self.subject == "model" else f"the {self.subject} offer"
        return f"{who} {EVENTS[self.stage][0]} on {self.day.isoformat()}"


def upcoming(spec: CatalogModelSpec, today: date) -> Change | None:
    """The next date on which the model or one of its options changes stage."""
    changes = []
    model = next_change(spec.lifecycle, today)
    if model is not None:
        changes.append(Change(model[0], model[1], "model"))
    own = spec.deployment_options.serverless
    if own is not None and own.lifecycle is not None:
        serverless = option_next_change(spec, SERVERLESS, today)
        if serverless is not None and (model is None or serverless[0] < model[0]):
            changes.append(Change(serverless[0], serverless[1], SERVERLESS))
    return min(changes, key=lambda c: (c.day, c.subject != "model"), default=None)


def status(spec: CatalogModelSpec, today: date) -> dict[str, Any]:
    """The CatalogModel status fields (beyond phase and conditions) for `today`: no relative words, so the
    status changes only on the dates themselves."""
    stage = stage_on(spec.lifecycle, today)
    found: dict[str, Any] = {
        "stage": str(stage),
        "tasks": ", ".join(spec.tasks),
        "managed": managed_summary(spec, today),
        "serverless": serverless_summary(spec, today),
        "serverlessStage": option_stage(spec, SERVERLESS, today),
    }
    change = upcoming(spec, today)
    if change is not None:
        found["nextChange"] = {
            "date": change.day.isoformat(),
            "stage": str(change.stage),
            "subject": change.subject,
            "description": change.description(),
        }
    return {k: (str(v) if isinstance(v, LifecycleStage) else v) for k, v in found.items() if v is not None}


NOTICE_DAYS = (7, 30, 90)  # warn when a deprecation or retirement date is this close (docs/policy.md)
NOTICE_REASONS = {LifecycleStage.DEPRECATED: "Deprecation", LifecycleStage.RETIRED: "Retirement"}


@dataclass(frozen=True)
class Notice:
    """A lifecycle warning for the users of a model: a date within 90, 30 or 7 days, or deprecated now."""

    stage: LifecycleStage  # the stage the date brings (or, with `within` None, the stage in force)
    day: date | None
    within: int | None = None  # 90, 30 or 7; None: the stage is in force

    @property
    def key(self) -> str:
        """What a deployment remembers as announced: one Event per key."""
        return f"{self.stage}/{self.day.isoformat() if self.day else '-'}/{f'{self.within}d' if self.within else 'now'}"

    @property
    def reason(self) -> str:
        return f"{NOTICE_REASONS[self.stage]}Within{self.within}Days" if self.within else str(self.stage)

    def message(self, subject: str, today: date, replacement: str | None) -> str:
        instead = f"; move to {replacement}" if replacement else ""
        if self.within is None or self.day is None:
            since = f" since {self.day.isoformat()}" if self.day else ""
            return f"{subject} is {WORDS[self.stage]}{since}{instead}"
        return f"{subject} {relative(self.stage, self.day, today)} ({self.day.isoformat()}){instead}"


def notice(lifecycle: Lifecycle, today: date, at_least: str | None = None) -> Notice | None:
    """The warning due today: the nearest deprecation or retirement date within NOTICE_DAYS (the smallest
    threshold it is within), else Deprecated while deprecated; None when retired or nothing is near."""
    current = stage_on(lifecycle, today, at_least)
    if current == LifecycleStage.RETIRED:
        return None
    ahead = sorted((when, stage) for when, stage in dates(lifecycle)
                   if stage in NOTICE_REASONS and when > today and rank(stage) > rank(current))  # fmt: skip
    if ahead:
        when, stage = ahead[0]
        within = next((days for days in NOTICE_DAYS if (when - today).days <= days), None)
        if within is not None:
            return Notice(stage, when, within)
    if current == LifecycleStage.DEPRECATED:
        return Notice(current, last_change(lifecycle, current, today))
    return None


def option_notice(spec: CatalogModelSpec, option: str, today: date) -> Notice | None:
    """The warning for the users of an option: its own dates, or the model's when those are nearer."""
    lifecycle = option_lifecycle(spec, option)
    if lifecycle is None:
        return None
    found = [n for n in (notice(lifecycle, today, stage_on(spec.lifecycle, today)), notice(spec.lifecycle, today))
             if n is not None]  # fmt: skip
    dated = [n for n in found if n.within is not None and n.day is not None]
    if dated:
        return min(dated, key=lambda n: (n.day or today, -rank(n.stage)))
    return found[0] if found else None


def next_notice_day(spec: CatalogModelSpec, today: date) -> date | None:
    """The next day a notice threshold is crossed (a date's 90, 30 or 7 days ahead), for the model or an option."""
    lifecycles = [spec.lifecycle, *[own for own in [option_lifecycle(spec, SERVERLESS)] if own is not None]]
    days = [
        when - timedelta(days=within)
        for lifecycle in lifecycles
        for when, stage in dates(lifecycle)
        if stage in NOTICE_REASONS
        for within in NOTICE_DAYS
        if when - timedelta(days=within) > today
    ]
    return min(days, default=None)
