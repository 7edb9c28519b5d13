"""The bench's JSON records: what a run writes, and two runs side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import record


def test_a_record_holds_the_figures_and_where_they_were_measured(tmp_path: Path) -> None:
    figures: record.Figures = {"burst": {"count": 1000, "reconciled_s": 24.5}}
    found = record.new_record("abc1234", figures)
    path = record.default_path(tmp_path, "burst", found)
    record.write(path, found)

    read = json.loads(path.read_text())
    assert read["figures"] == figures
    assert read["commit"] == "abc1234"
    assert set(read) >= {"timestamp", "machine", "python", "load"}
    assert path.name.startswith("burst-abc1234-") and path.suffix == ".json"
    assert record.load(path) == read


def test_a_dirty_checkout_is_named_so_in_the_file_name(tmp_path: Path) -> None:
    found = record.new_record("abc1234+", {})
    assert record.default_path(tmp_path, "all", found).name.startswith("all-abc1234-dirty-")


def test_a_file_without_figures_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "router.json"
    path.write_text('{"direct": {}}')
    with pytest.raises(ValueError, match=r"router\.json: not a bench record"):
        record.load(path)


def test_compare_lists_every_figure_of_either_run_with_the_ratio() -> None:
    a = {"commit": "old", "load": [3.0], "figures": {"burst": {"reconciled_s": 60.0, "count": 1000}}}
    b = {"commit": "new", "load": [2.5], "figures": {"burst": {"reconciled_s": 20.0, "count": 1000},
                                                     "latency": {"p99_ms": 80.0}}}  # fmt: skip
    lines = record.compare(a, b)

    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert lines[0].split()[:5] == ["figure", "A", "old", "B", "new"]
    assert rows["burst.reconciled_s"] == ["60", "20", "0.33x"]
    assert rows["burst.count"] == ["1000", "1000", "1.00x"]
    assert rows["latency.p99_ms"] == ["-", "80"]  # only in B: no ratio
    assert rows["load"] == ["(1", "min)", "3", "2.5"]


def test_nested_figures_flatten_to_dotted_names() -> None:
    nested = {"count": 500, "router": {"p50_ms": 1.3, "samples": [1, 2]}, "note": None, "ok": True}
    assert record.flat(nested) == {"count": 500, "router.p50_ms": 1.3}
