"""The one printer of every command: tables like `kubectl get` (also -o wide, --no-headers), -o name, and
JSON/YAML, where a list is a `kind: List` of full objects as kubectl prints it. Pure functions, no I/O."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml


class Format(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    NAME = "name"
    JSON = "json"
    YAML = "yaml"


STRUCTURED = (Format.JSON, Format.YAML)


def add_output_flag(
    parser: argparse.ArgumentParser, default: Format = Format.TABLE, formats: Sequence[Format] = tuple(Format)
) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=[f.value for f in formats],
        default=default.value,
        help=f"output format (default: {default.value}); wide adds columns, name prints kind/name",
    )
    if Format.TABLE in formats:
        parser.add_argument("--no-headers", action="store_true", help="tables without the header line")


@dataclass(frozen=True)
class Listing:
    """A list as every format shows it: `items` are full objects (json, yaml, name), rows the table cells."""

    resource: str  # kind.group, as `-o name` prints it: catalogmodel.modelcatalog.io
    items: list[dict[str, Any]]
    headers: Sequence[str]
    rows: list[list[object]]
    wide_headers: Sequence[str] = ()
    wide_rows: list[list[object]] = field(default_factory=list)  # cells appended to each row by -o wide
    notes: list[str] = field(default_factory=list)  # said under the table, on stderr


def render_list(listing: Listing, fmt: Format | str, no_headers: bool = False) -> str:
    if fmt in STRUCTURED:
        return structured(kube_list(listing.items), fmt)
    if fmt == Format.NAME:
        return "\n".join(f"{listing.resource}/{item['metadata']['name']}" for item in listing.items)
    headers, rows = list(listing.headers), [list(row) for row in listing.rows]
    if fmt == Format.WIDE:
        headers += listing.wide_headers
        rows = [row + list(extra) for row, extra in zip(rows, listing.wide_rows, strict=True)]
    return table(headers, rows, headers_shown=not no_headers) if rows else ""


def render_object(obj: dict[str, Any], resource: str, fmt: Format | str, text: str) -> str:
    """One object: its data for json/yaml, kind/name for name, `text` (a card) for table and wide."""
    if fmt in STRUCTURED:
        return structured(obj, fmt)
    if fmt == Format.NAME:
        return f"{resource}/{obj['metadata']['name']}"
    return text


def kube_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    max_width: int | None = None,
    *,
    headers_shown: bool = True,
) -> str:
    """Columns padded to their widest cell, like `kubectl get`; None shows as '-'; longer cells end in '…'."""
    lines = [list(headers), *rows] if headers_shown else list(rows)
    cells = [[shorten(cell_text(cell), max_width) for cell in row] for row in lines]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def shorten(text: str, max_width: int | None) -> str:
    return text if max_width is None or len(text) <= max_width else text[: max_width - 1] + "…"


def cell_text(value: object) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fields(pairs: Sequence[tuple[str, object]], indent: str = "") -> str:
    """`Label:  value` lines with the values aligned, for cards."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return "\n".join(f"{indent}{(label + ':').ljust(width)}  {cell_text(value)}" for label, value in pairs)


def structured(data: Any, fmt: Format | str) -> str:
    """JSON or YAML text of plain data (dicts, lists, strings, numbers)."""
    if fmt == Format.JSON:
        return json.dumps(data, indent=2, ensure_ascii=False)
    if fmt == Format.YAML:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120).rstrip("\n")
    raise ValueError(f"{fmt} is not a structured format")
