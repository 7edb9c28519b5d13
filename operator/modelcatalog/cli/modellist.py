"""`models list` as a pure function of the catalog and a day: filters checked against what exists, offers
(a model's deployment options) that are retired or not in the region hidden and counted, rows people read.

Regions: only serverless offers have regions (managed compute runs wherever the cluster has the GPUs). An offer
with no regions listed is not restricted to any: it is listed for every region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from modelcatalog import GROUP
from modelcatalog.api.catalog import Collection, LifecycleStage
from modelcatalog.catalog import lifecycle
from modelcatalog.catalog.files import Entry, label_value
from modelcatalog.cli import modelviews, output
from modelcatalog.cli.errors import usage_error
from modelcatalog.cli.modelviews import deployment_option_names

RESOURCE = f"catalogmodel.{GROUP}"
ANY_REGION = "any"
OPTIONS = (lifecycle.MANAGED, lifecycle.SERVERLESS)


@dataclass(frozen=True)
class Filters:
    """Values are ORed within one field and the fields are ANDed; an empty field does not filter."""

    collections: Sequence[str] = ()
    publishers: Sequence[str] = ()
    tasks: Sequence[str] = ()
    fine_tuning_tasks: Sequence[str] = ()
    deployment_options: Sequence[str] = ()
    licenses: Sequence[str] = ()
    lifecycles: Sequence[str] = ()  # the stage today of a listed offer
    search: Sequence[str] = ()
    region: str | None = None  # None or "any": every region
    include_retired: bool = False


def check(entries: Sequence[Entry], filters: Filters, region_given: bool) -> None:
    """Every filter value must name something that exists (any case); else a usage error naming the choices."""
    known: list[tuple[str, Sequence[str], list[str]]] = [
        ("--collection", filters.collections, sorted(Collection)),
        ("--publisher", filters.publishers, sorted({e.spec.publisher for e in entries})),
        ("--task", filters.tasks, sorted({t for e in entries for t in e.spec.tasks})),
        ("--fine-tuning-task", filters.fine_tuning_tasks,
         sorted({t for e in entries for t in e.spec.fine_tuning_tasks})),
        ("--license", filters.licenses, sorted({e.spec.license for e in entries})),
    ]  # fmt: skip
    if region_given and filters.region:
        known.append(("--region", [filters.region], [ANY_REGION, *all_regions(entries)]))
    for flag, values, valid in known:
        labels = {label_value(v) for v in valid}
        for value in values:
            if label_value(value) not in labels:
                raise usage_error(flag, value, valid)


def all_regions(entries: Sequence[Entry]) -> list[str]:
    offers = [e.spec.deployment_options.serverless for e in entries]
    return sorted({region for offer in offers if offer is not None for region in offer.regions})


def in_region(entry: Entry, option: str, region: str | None) -> bool:
    serverless = entry.spec.deployment_options.serverless
    if option != lifecycle.SERVERLESS or serverless is None or region in (None, ANY_REGION):
        return True
    return not serverless.regions or region in serverless.regions


@dataclass
class Selection:
    offers: dict[str, list[str]] = field(default_factory=dict)  # model name -> the options listed
    entries: list[Entry] = field(default_factory=list)
    retired_hidden: int = 0
    region_hidden: int = 0


def select(entries: Sequence[Entry], filters: Filters, today: date) -> Selection:
    found = Selection()
    stages = {label_value(s) for s in filters.lifecycles}
    include_retired = filters.include_retired or label_value(LifecycleStage.RETIRED) in stages
    for entry in entries:
        if not matches(entry, filters):
            continue
        listed = []
        for option in deployment_option_names(entry.spec):
            if filters.deployment_options and option not in filters.deployment_options:
                continue
            stage = lifecycle.option_stage(entry.spec, option, today)
            if stages and label_value(str(stage)) not in stages:
                continue
            if stage == LifecycleStage.RETIRED and not include_retired:
                found.retired_hidden += 1
            elif not in_region(entry, option, filters.region):
                found.region_hidden += 1
            else:
                listed.append(option)
        if listed:
            found.offers[entry.name] = listed
            found.entries.append(entry)
    return found


def matches(entry: Entry, filters: Filters) -> bool:
    spec = entry.spec
    checks: list[tuple[Sequence[str], Callable[[str], bool]]] = [
        (filters.collections, lambda v: label_value(v) == spec.collection),
        (filters.publishers, lambda v: label_value(v) == label_value(spec.publisher)),
        (filters.tasks, lambda v: v.lower() in spec.tasks),
        (filters.fine_tuning_tasks, lambda v: v.lower() in spec.fine_tuning_tasks),
        (filters.licenses, lambda v: v.lower() == spec.license),
        (filters.search, lambda v: v.lower() in f"{entry.name}\n{spec.display_name}\n{spec.description}".lower()),
    ]
    return all(any(check(value) for value in values) for values, check in checks if values)


def lifecycle_text(entry: Entry, options: Sequence[str], today: date) -> str:
    """The lifecycle of the offers listed: one text when they share it, else each offer's."""
    texts = {option: lifecycle.describe_option(entry.spec, option, today) or "" for option in options}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{option}: {text}" for option, text in texts.items())


def serverless_cell(entry: Entry, today: date) -> str | None:
    serverless = entry.spec.deployment_options.serverless
    if serverless is None:
        return None
    summary = lifecycle.serverless_summary(entry.spec, today) or ""
    if serverless.regions and len(serverless.regions) <= 3 and not lifecycle.retired(entry.spec, "serverless", today):
        summary += f" ({', '.join(serverless.regions)})"
    return summary


HEADERS = ("NAME", "DISPLAY NAME", "PUBLISHER", "TASKS", "DEPLOYMENT", "LIFECYCLE")
WIDE_HEADERS = ("COLLECTION", "LICENSE", "SERVERLESS", "TOKEN PRICE", "NEXT CHANGE")


def listing(selection: Selection, today: date, region: str | None) -> output.Listing:
    rows: list[list[object]] = []
    wide: list[list[object]] = []
    for entry in selection.entries:
        options = selection.offers[entry.name]
        spec = entry.spec
        rows.append([entry.name, spec.display_name, spec.publisher, spec.tasks, options,
                     lifecycle_text(entry, options, today)])  # fmt: skip
        change = lifecycle.upcoming(spec, today)
        serverless = spec.deployment_options.serverless
        price = modelviews.price_text(serverless, short=True) if serverless else None
        wide.append([spec.collection, spec.license, serverless_cell(entry, today), price,
                     change.description() if change else None])  # fmt: skip
    notes = []
    if selection.retired_hidden:
        offers = "offer" if selection.retired_hidden == 1 else "offers"
        notes.append(f"{selection.retired_hidden} retired {offers} hidden; --include-retired shows them")
    if selection.region_hidden:
        offers = "offer" if selection.region_hidden == 1 else "offers"
        notes.append(f"{selection.region_hidden} serverless {offers} not in region {region} hidden; "
                     "--region any shows them")  # fmt: skip
    items = [object_of(entry, today) for entry in selection.entries]
    return output.Listing(RESOURCE, items, HEADERS, rows, WIDE_HEADERS, wide, notes)


def object_of(entry: Entry, today: date) -> dict[str, Any]:
    """The full CatalogModel, with the status the operator would write today."""
    return modelviews.manifest(entry) | {"status": lifecycle.status(entry.spec, today)}
