"""What `modelcatalog models` shows, as pure functions of the catalog: filters, the card, the comparison."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from modelcatalog import API_VERSION
from modelcatalog.api.catalog import (
    Benchmark,
    CatalogModelSpec,
    InstanceTypeSpec,
    Lifecycle,
    ServerlessOption,
)
from modelcatalog.catalog import placement
from modelcatalog.catalog.files import Entry, label_value
from modelcatalog.cli.errors import CliError, ExitCode


@dataclass(frozen=True)
class Filters:
    """Values are ORed within one field and the fields are ANDed; an empty field does not filter."""

    collections: Sequence[str] = ()
    publishers: Sequence[str] = ()
    tasks: Sequence[str] = ()
    fine_tuning_tasks: Sequence[str] = ()
    deployment_options: Sequence[str] = ()
    licenses: Sequence[str] = ()
    lifecycles: Sequence[str] = ()
    search: Sequence[str] = ()


def select(entries: Sequence[Entry], filters: Filters) -> list[Entry]:
    return [entry for entry in entries if matches(entry, filters)]


def matches(entry: Entry, filters: Filters) -> bool:
    spec = entry.spec
    checks: list[tuple[Sequence[str], Callable[[str], bool]]] = [
        (filters.collections, lambda v: label_value(v) == spec.collection),
        (filters.publishers, lambda v: label_value(v) == label_value(spec.publisher)),
        (filters.tasks, lambda v: v.lower() in spec.tasks),
        (filters.fine_tuning_tasks, lambda v: v.lower() in spec.fine_tuning_tasks),
        (filters.deployment_options, lambda v: v in deployment_option_names(spec)),
        (filters.licenses, lambda v: v.lower() == spec.license),
        (filters.lifecycles, lambda v: label_value(v) == label_value(str(spec.lifecycle.stage))),
        (filters.search, lambda v: v.lower() in f"{entry.name}\n{spec.display_name}\n{spec.description}".lower()),
    ]
    return all(any(check(value) for value in values) for values, check in checks if values)


def deployment_option_names(spec: CatalogModelSpec) -> list[str]:
    options = spec.deployment_options
    return [
        name
        for name, option in (("managed", options.managed_compute), ("serverless", options.serverless))
        if option is not None
    ]


LIST_HEADERS = ("NAME", "DISPLAY NAME", "PUBLISHER", "COLLECTION", "TASKS", "DEPLOYMENT", "LICENSE", "LIFECYCLE")


def list_rows(entries: Sequence[Entry]) -> list[list[object]]:
    return [
        [
            e.name,
            e.spec.display_name,
            e.spec.publisher,
            e.spec.collection,
            e.spec.tasks,
            deployment_option_names(e.spec),
            e.spec.license,
            e.spec.lifecycle.stage,
        ]
        for e in entries
    ]


def manifest(entry: Entry) -> dict[str, Any]:
    """The entry as a CatalogModel manifest, so `-o yaml` output can be applied or put in catalog/."""
    metadata: dict[str, Any] = {"name": entry.name}
    if entry.labels:
        metadata["labels"] = dict(entry.labels)
    return {"apiVersion": API_VERSION, "kind": "CatalogModel", "metadata": metadata, "spec": entry.spec.to_wire()}


def find(entries: Sequence[Entry], name: str) -> Entry:
    """By object name, else by display name (any case); NOT_FOUND names the closest matches."""
    for entry in entries:
        if entry.name == name:
            return entry
    for entry in entries:
        if entry.spec.display_name.lower() == name.lower():
            return entry
    raise CliError(not_found_message(name, entries), ExitCode.NOT_FOUND)


def not_found_message(name: str, entries: Sequence[Entry]) -> str:
    close = suggestions(name, entries)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; `modelcatalog models list` shows them all"
    return f"no model named {name!r}{hint}"


def suggestions(name: str, entries: Sequence[Entry], limit: int = 3) -> list[str]:
    """Names spelled alike (difflib, on names and display names), then names containing what was typed."""
    wanted = name.lower()
    by_spelling = {e.name: e.name for e in entries} | {e.spec.display_name.lower(): e.name for e in entries}
    close = [by_spelling[m] for m in difflib.get_close_matches(wanted, list(by_spelling), n=limit, cutoff=0.6)]
    typed = alphanumerics(name)
    containing = [e.name for e in entries if typed and typed in alphanumerics(e.name + e.spec.display_name)]
    return list(dict.fromkeys(close + containing))[:limit]


def alphanumerics(text: str) -> str:
    """Lower case letters and digits only, so llama3 is found in Meta-Llama-3-8B."""
    return "".join(c for c in text.lower() if c.isalnum())


def days_until(day: str | None, today: date) -> int | None:
    return (date.fromisoformat(day) - today).days if day else None


def relative(days: int, future: str, past: str) -> str:
    if days == 0:
        return f"{future} today"
    return f"{future} in {days} days" if days > 0 else f"{past} {-days} days ago"


def lifecycle_summary(lifecycle: Lifecycle, today: date) -> str:
    parts = [str(lifecycle.stage)]
    for label, day in (
        ("preview since", lifecycle.preview_date),
        ("generally available since", lifecycle.generally_available_date),
        ("legacy since", lifecycle.legacy_date),
        ("deprecated from", lifecycle.deprecation_date),
    ):
        if day:
            parts.append(f"{label} {day}")
    retirement = days_until(lifecycle.retirement_date, today)
    if retirement is not None:
        parts.append(f"{relative(retirement, 'retires', 'retired')} ({lifecycle.retirement_date})")
    if lifecycle.replacement:
        parts.append(f"replaced by {lifecycle.replacement}")
    return "; ".join(parts)


def weights_text(spec: CatalogModelSpec) -> str | None:
    weights = spec.weights
    if weights is None:
        return None
    size = f"{weights.parameters_billions:g}B parameters" if weights.parameters_billions else "size unknown"
    return f"{weights.repository}@{weights.revision}, {size}, {weights.dtype}"


def price_text(serverless: ServerlessOption) -> str | None:
    pricing = serverless.pricing
    if pricing is None or (pricing.input_per_1m_tokens is None and pricing.output_per_1m_tokens is None):
        return None
    input_, output = pricing.input_per_1m_tokens or "-", pricing.output_per_1m_tokens or "-"
    text = f"input {input_} {pricing.currency}, output {output} {pricing.currency} per 1M tokens"
    return f"{text} (source: {pricing.source})" if pricing.source else text


def rate_limits_text(serverless: ServerlessOption) -> str | None:
    limits = serverless.default_rate_limits
    if limits is None:
        return None
    parts = []
    if limits.requests_per_minute:
        parts.append(f"{limits.requests_per_minute} requests/min")
    if limits.tokens_per_minute:
        parts.append(f"{limits.tokens_per_minute} tokens/min")
    return ", ".join(parts) or None


def benchmark_label(benchmark: Benchmark) -> str:
    return f"{benchmark.name} ({benchmark.dataset})" if benchmark.dataset else benchmark.name


def benchmark_value(benchmark: Benchmark) -> str:
    return f"{benchmark.value:g} {benchmark.unit}".rstrip()


@dataclass(frozen=True)
class Card:
    """Everything `models show` prints; `data` is the same for -o json/yaml."""

    title: str
    description: str
    facts: list[tuple[str, object]]
    managed: list[tuple[str, object]] | None
    serverless: list[tuple[str, object]] | None
    benchmarks: list[list[object]]
    instance_types: list[list[object]]
    data: dict[str, Any] = field(default_factory=dict)


def card(entry: Entry, types: dict[str, InstanceTypeSpec], today: date) -> Card:
    spec = entry.spec
    needed = placement.gpu_memory_needed_gib(spec)
    fitting = placement.fitting_types(entry.name, spec, types)
    retirement = days_until(spec.lifecycle.retirement_date, today)
    context = f"{spec.context_window} tokens" if spec.context_window else None
    if context and spec.context_window_source:
        context += f" (source: {spec.context_window_source})"
    facts: list[tuple[str, object]] = [
        ("Publisher", spec.publisher),
        ("Collection", spec.collection),
        ("Tasks", spec.tasks),
        ("Fine-tuning tasks", spec.fine_tuning_tasks),
        ("License", f"{spec.license} ({spec.license_url})" if spec.license_url else spec.license),
        ("Weights", weights_text(spec)),
        ("Context window", context),
        ("Min GPU memory", f"{needed} GiB" if needed else None),
        ("Lifecycle", lifecycle_summary(spec.lifecycle, today)),
    ]
    return Card(
        title=f"{spec.display_name} ({entry.name})",
        description=spec.description,
        facts=facts,
        managed=managed_facts(spec),
        serverless=serverless_facts(spec.deployment_options.serverless, today),
        benchmarks=[[benchmark_label(b), b.kind, benchmark_value(b), b.source] for b in spec.benchmarks],
        instance_types=[instance_type_row(name, types[name]) for name in fitting],
        data={
            **manifest(entry),
            "derived": {
                "minGpuMemoryGiB": needed,
                "fittingInstanceTypes": fitting,
                "retiresInDays": retirement,
                "serverlessRetiresInDays": days_until(serverless_retirement(spec), today),
            },
        },
    )


def serverless_retirement(spec: CatalogModelSpec) -> str | None:
    """The serverless offer's own retirement date, else the model's; None without a serverless offer."""
    serverless = spec.deployment_options.serverless
    if serverless is None:
        return None
    return (serverless.lifecycle or spec.lifecycle).retirement_date


def managed_facts(spec: CatalogModelSpec) -> list[tuple[str, object]] | None:
    managed = spec.deployment_options.managed_compute
    if managed is None:
        return None
    return [
        ("Runtime", managed.runtime),
        ("Allowed instance types", managed.allowed_instance_types or "any that fits"),
    ]


def serverless_facts(serverless: ServerlessOption | None, today: date) -> list[tuple[str, object]] | None:
    if serverless is None:
        return None
    regions = ", ".join(serverless.regions) or None
    if regions and serverless.regions_source:
        regions += f" (source: {serverless.regions_source})"
    lifecycle = [("Lifecycle", lifecycle_summary(serverless.lifecycle, today))] if serverless.lifecycle else []
    return [
        ("Regions", regions),
        *lifecycle,
        ("Price", price_text(serverless) or "no public price"),
        ("Default rate limits", rate_limits_text(serverless)),
        ("Publisher terms", "must be accepted" if serverless.terms_required else "not required"),
    ]


INSTANCE_TYPE_HEADERS = ("NAME", "DISPLAY NAME", "GPU", "GPU MEMORY (GIB)", "CPU", "MEMORY")


def instance_type_row(name: str, it: InstanceTypeSpec) -> list[object]:
    gpu = f"{it.gpu.count} x {it.gpu.model} {it.gpu.memory_gib} GiB" if it.gpu else None
    return [name, it.display_name, gpu, it.gpu_memory_gib, it.cpu, it.memory]


@dataclass(frozen=True)
class Row:
    """One attribute across the models; numeric rows a chart can plot name their chart `panel`."""

    label: str
    values: list[Any]
    unit: str | None = None
    panel: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Rows are attributes, columns are models; values stay raw (numbers, lists) for json/yaml and charts."""

    models: list[str]
    rows: list[Row]

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "attributes": {row.label: dict(zip(self.models, row.values, strict=True)) for row in self.rows},
        }

    def charted(self) -> list[Row]:
        return [row for row in self.rows if row.panel is not None and any(v is not None for v in row.values)]


def compare(entries: Sequence[Entry], today: date) -> Comparison:
    specs = [e.spec for e in entries]

    def row(label: str, value: Callable[[CatalogModelSpec], Any]) -> Row:
        return Row(label, [value(s) for s in specs])

    price_unit = f"{currency_of(specs)} per 1M tokens"
    prices = f"Prices ({price_unit})"
    rows = [
        row("display name", lambda s: s.display_name),
        row("publisher", lambda s: s.publisher),
        row("collection", lambda s: str(s.collection)),
        row("tasks", lambda s: s.tasks),
        row("fine-tuning tasks", lambda s: s.fine_tuning_tasks),
        row("license", lambda s: s.license),
        row("parameters (billions)", lambda s: s.weights.parameters_billions if s.weights else None),
        row("dtype", lambda s: str(s.weights.dtype) if s.weights else None),
        row("context window", lambda s: s.context_window),
        row("min GPU memory (GiB)", placement.gpu_memory_needed_gib),
        row("deployment options", deployment_option_names),
        row("serverless regions", serverless_regions),
        Row("price input", [price(s, "input") for s in specs], price_unit, prices),
        Row("price output", [price(s, "output") for s in specs], price_unit, prices),
        row("lifecycle", lambda s: str(s.lifecycle.stage)),
        row("days until retirement", lambda s: days_until(s.lifecycle.retirement_date, today)),
        row("serverless lifecycle", serverless_stage),
        row("days until serverless retirement", lambda s: days_until(serverless_retirement(s), today)),
    ]  # fmt: skip
    rows += [
        Row(label, [benchmark_figure(s, label, unit) for s in specs], unit, f"Benchmarks ({unit})")
        for label, unit in benchmark_labels(specs)
    ]
    return Comparison([e.name for e in entries], rows)


def comparison_rows(comparison: Comparison) -> list[list[object]]:
    """The table cells: the attribute (with its unit) then one cell per model."""
    return [[f"{row.label} ({row.unit})" if row.unit else row.label, *row.values] for row in comparison.rows]


def serverless_regions(spec: CatalogModelSpec) -> list[str] | None:
    serverless = spec.deployment_options.serverless
    return serverless.regions if serverless else None


def serverless_stage(spec: CatalogModelSpec) -> str | None:
    serverless = spec.deployment_options.serverless
    if serverless is None:
        return None
    return str((serverless.lifecycle or spec.lifecycle).stage)


def price(spec: CatalogModelSpec, direction: str) -> float | None:
    serverless = spec.deployment_options.serverless
    if serverless is None or serverless.pricing is None:
        return None
    pricing = serverless.pricing
    text = pricing.input_per_1m_tokens if direction == "input" else pricing.output_per_1m_tokens
    return float(text) if text is not None else None


def benchmark_labels(specs: Sequence[CatalogModelSpec]) -> list[tuple[str, str]]:
    """Every (benchmark, unit) any of the models has, in first-seen order."""
    return list(dict.fromkeys((benchmark_label(b), b.unit) for spec in specs for b in spec.benchmarks))


def benchmark_figure(spec: CatalogModelSpec, label: str, unit: str) -> float | None:
    return next((b.value for b in spec.benchmarks if (benchmark_label(b), b.unit) == (label, unit)), None)


def currency_of(specs: Sequence[CatalogModelSpec]) -> str:
    currencies = {
        s.deployment_options.serverless.pricing.currency
        for s in specs
        if s.deployment_options.serverless and s.deployment_options.serverless.pricing
    }
    return "/".join(sorted(currencies)) or "USD"
