"""A bench run's figures as JSON, and two runs side by side (`python -m bench compare A.json B.json`).

A record: {"commit", "timestamp", "machine", "python", "load", "figures": {bench: {figure: value}}}.
Figures are flat per bench (names say the unit: `_s`, `_ms`, `_mib`), so any two runs compare by name.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

Figures = dict[str, dict[str, float | int | str]]


def commit_of(repo: Path) -> str:
    """The checkout's short commit, with `+` when it has uncommitted changes ("unknown" outside git)."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def new_record(commit: str, figures: Figures) -> dict[str, Any]:
    return {
        "commit": commit,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"arch": platform.machine(), "cores": os.cpu_count()},
        "python": {"version": sys.version.split()[0], "executable": sys.executable},
        "load": [round(x, 2) for x in os.getloadavg()],
        "figures": figures,
    }


def default_path(out_dir: Path, which: str, record: dict[str, Any]) -> Path:
    stamp = record["timestamp"].replace("-", "").replace(":", "")
    return out_dir / f"{which}-{record['commit'].replace('+', '-dirty')}-{stamp}.json"


def write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def load(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text())
    if not isinstance(record.get("figures"), dict):
        raise ValueError(f"{path}: not a bench record (no 'figures' object)")
    return record


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "-" if value is None else str(value)


def _ratio(a: Any, b: Any) -> str:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return f"{b / a:.2f}x" if numbers and a else ""


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Lines of a table: every figure of either record, A's value, B's, and B/A where both are numbers."""
    rows = [("figure", f"A {a.get('commit', '?')}", f"B {b.get('commit', '?')}", "B/A")]
    rows.append(("load (1 min)", _shown((a.get("load") or [None])[0]), _shown((b.get("load") or [None])[0]), ""))
    for bench in sorted(set(a["figures"]) | set(b["figures"])):
        fa, fb = a["figures"].get(bench) or {}, b["figures"].get(bench) or {}
        for name in sorted(set(fa) | set(fb)):
            va, vb = fa.get(name), fb.get(name)
            rows.append((f"{bench}.{name}", _shown(va), _shown(vb), _ratio(va, vb)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def flat(nested: dict[str, Any], prefix: str = "") -> dict[str, float | int | str]:
    """Nested figures (the router bench's) as one level, `a.b` names; lists and None left out."""
    found: dict[str, float | int | str] = {}
    for name, value in nested.items():
        if isinstance(value, dict):
            found |= flat(value, f"{prefix}{name}.")
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            found[f"{prefix}{name}"] = value
    return found
