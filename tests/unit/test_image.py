"""The Dockerfile (it cannot be built here: no Docker): standard, pinned, non-root, and the entry points
it and the chart run exist and start."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def instructions(repo: Path) -> list[tuple[str, str]]:
    lines = (repo / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [
        (line.split()[0].upper(), line.partition(" ")[2].strip())
        for line in lines
        if line.strip() and not line.startswith("#")
    ]


def test_the_base_is_an_exact_tag_and_the_final_stage_runs_as_a_numeric_non_root_user(repo: Path) -> None:
    steps = instructions(repo)
    base = next(arg for op, arg in steps if op == "ARG" and arg.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=[\w./-]+:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    stages = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    assert len(stages) == 2, "multi-stage: build, then a final stage without build tools"
    final = steps[stages[-1] :]
    assert not any(op == "RUN" for op, _ in final), "nothing is installed or compiled in the final stage"
    user = next(arg for op, arg in reversed(final) if op == "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0


@pytest.mark.parametrize("module", ["modelcatalog.router", "modelcatalog"])
def test_the_entry_points_start(repo: Path, module: str) -> None:
    args = ["--help"] if module == "modelcatalog.router" else ["operator", "run", "--help"]
    result = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_images_default_command_is_the_router_and_the_chart_runs_the_operator(repo: Path) -> None:
    cmd = next(arg for op, arg in reversed(instructions(repo)) if op == "CMD")
    assert json.loads(cmd) == ["python", "-m", "modelcatalog.router"]
    template = (repo / "charts/modelcatalog/templates/deployment.yaml").read_text()
    assert 'command: ["python", "-m", "modelcatalog"]' in template
    values = yaml.safe_load((repo / "charts/modelcatalog/values.yaml").read_text())
    assert values["image"]["repository"] == "ghcr.io/modelcatalog/modelcatalog"
    assert values["images"]["router"] == "", "the router runs from the operator's image by default"
