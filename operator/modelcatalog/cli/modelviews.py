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
    ServerlessOption,
)
from modelcatalog.catalog import lifecycle, placement
from modelcatalog.catalog.files import Entry
from modelcatalog.cli.errors import CliError, ExitCode


def deployment_option_names(spec: CatalogModelSpec) -> list[str]:
    options = spec.deployment_options
    return [
        name
        for name, option in (("managed", options.managed_compute), ("serverless", options.serverless))
        if option is not None
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


def weights_text(spec: CatalogModelSpec) -> str | None:
    weights = spec.weights
    if weights is None:
        return None
    size = f"{weights.parameters_billions:g}B parameters" if weights.parameters_billions else "size unknown"
    return f"{weights.repository}@{weights.revision}, {size}, {weights.dtype}"


NOT_SET = "not set"


def price_text(serverless: ServerlessOption, short: bool = False) -> str:
    """'input 0.30 USD, output 0.61 USD per 1M tokens' (short: '0.30 / 0.61 USD per 1M tokens'), or 'not set'."""
    pricing = serverless.pricing
    if pricing is None or (pricing.input_per_1m_tokens is None and pricing.output_per_1m_tokens is None):
        return NOT_SET
    input_, output = pricing.input_per_1m_tokens or NOT_SET, pricing.output_per_1m_tokens or NOT_SET
    if short:
        return f"{input_} in / {output} out {pricing.currency} per 1M tokens"
    text = f"input {input_} {pricing.currency}, output {output} {pricing.currency} per 1M tokens"
    return f"{text} (source: {pricing.source})" if pricing.source else text


def hourly_price_text(it: InstanceTypeSpec) -> str:
    return f"{it.pricing.per_hour} {it.pricing.currency}/hour" if it.pricing else NOT_SET


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


def card(entry: Entry, types: dict[str, InstanceTypeSpec], today: date, region: str | None = None) -> Card:
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
        ("Lifecycle", lifecycle.describe(spec.lifecycle, today)),
    ]
    return Card(
        title=f"{spec.display_name} ({entry.name})",
        description=spec.description,
        facts=facts,
        managed=managed_facts(spec),
        serverless=serverless_facts(spec, today, region),
        benchmarks=[[benchmark_label(b), b.kind, benchmark_value(b), b.source] for b in spec.benchmarks],
        instance_types=[instance_type_row(name, types[name]) for name in fitting],
        data={
            **manifest(entry),
            "derived": {
                "minGpuMemoryGiB": needed,
                "fittingInstanceTypes": fitting,
                "retiresInDays": retirement,
                "serverlessRetiresInDays": days_until(serverless_retirement(spec), today),
                "lifecycle": lifecycle.describe(spec.lifecycle, today),
                "serverlessLifecycle": lifecycle.describe_option(spec, lifecycle.SERVERLESS, today),
                "availableInRegion": {"region": region, "available": available_in(spec, region)} if region else None,
            },
            "status": lifecycle.status(spec, today),
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


def available_in(spec: CatalogModelSpec, region: str) -> bool | None:
    """Whether the serverless offer is in `region` (an offer listing no regions is in every region)."""
    serverless = spec.deployment_options.serverless
    if serverless is None:
        return None
    return not serverless.regions or region in serverless.regions


def region_fact(spec: CatalogModelSpec, region: str | None, today: date) -> list[tuple[str, object]]:
    serverless = spec.deployment_options.serverless
    if region is None or serverless is None:
        return []
    if lifecycle.retired(spec, lifecycle.SERVERLESS, today):
        return [(f"In region {region}", "no: the offer is retired")]
    if not serverless.regions:
        return [(f"In region {region}", "yes (no regions listed: not restricted)")]
    return [(f"In region {region}", "yes" if region in serverless.regions else "no")]


def serverless_facts(spec: CatalogModelSpec, today: date, region: str | None) -> list[tuple[str, object]] | None:
    serverless = spec.deployment_options.serverless
    if serverless is None:
        return None
    regions = ", ".join(serverless.regions) or "none listed (not restricted to any region)"
    if serverless.regions and serverless.regions_source:
        regions += f" (source: {serverless.regions_source})"
    own = serverless.lifecycle is not None or lifecycle.option_stage(spec, lifecycle.SERVERLESS, today) != (
        lifecycle.stage_on(spec.lifecycle, today)
    )
    stage = [("Lifecycle", lifecycle.describe_option(spec, lifecycle.SERVERLESS, today))] if own else []
    return [
        ("Regions", regions),
        *region_fact(spec, region, today),
        *stage,
        ("Price", price_text(serverless)),
        ("Default rate limits", rate_limits_text(serverless)),
        ("Publisher terms", "must be accepted" if serverless.terms_required else "not required"),
    ]


INSTANCE_TYPE_HEADERS = ("NAME", "DISPLAY NAME", "GPU", "GPU MEMORY (GIB)", "CPU", "MEMORY", "PRICE PER REPLICA")


def instance_type_row(name: str, it: InstanceTypeSpec) -> list[object]:
    gpu = f"{it.gpu.count} x {it.gpu.model} {it.gpu.memory_gib} GiB" if it.gpu else None
    return [name, it.display_name, gpu, it.gpu_memory_gib, it.cpu, it.memory, hourly_price_text(it)]


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
        row("lifecycle", lambda s: lifecycle.describe(s.lifecycle, today)),
        row("serverless lifecycle", lambda s: lifecycle.describe_option(s, lifecycle.SERVERLESS, today)),
    ]  # fmt: skip
    rows += [
        Row(label, [benchmark_figure(s, label, unit) for s in specs], unit, f"Benchmarks ({unit})")
        for label, unit in benchmark_labels(specs)
    ]
    return Comparison([e.name for e in entries], rows)


def comparison_rows(comparison: Comparison) -> list[list[object]]:
    """The table cells: the attribute (with its unit) then one cell per model; a price nobody set says so."""
    return [
        [f"{row.label} ({row.unit})" if row.unit else row.label,
         *(NOT_SET if v is None and row.label.startswith("price") else v for v in row.values)]
        for row in comparison.rows
    ]  # fmt: skip


def serverless_regions(spec: CatalogModelSpec) -> list[str] | None:
    serverless = spec.deployment_options.serverless
    return serverless.regions if serverless else None


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
