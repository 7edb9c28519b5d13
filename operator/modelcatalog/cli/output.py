"""Rendering for every command: aligned text tables, JSON and YAML. Pure functions, no I/O."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import yaml


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def add_output_flag(parser: argparse.ArgumentParser, default: Format = Format.TABLE) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=[f.value for f in Format],
        default=default.value,
        help=f"output format (default: {default.value})",
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int | None = None) -> str:
    """Columns padded to their widest cell, like `kubectl get`; None shows as '-'; longer cells end in '…'."""
    cells = [[shorten(cell_text(cell), max_width) for cell in row] for row in [list(headers), *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


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
