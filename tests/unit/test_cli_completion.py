"""`modelcatalog completion bash|zsh` and the kubectl plugin entry point."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from modelcatalog.cli.main import kubectl_plugin, main


def script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def complete(tmp_path: Path, text: str, *words: str) -> list[str]:
    """What bash offers after `words` (the last one being completed), with the generated script loaded."""
    (tmp_path / "completion.bash").write_text(text)
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {tmp_path / 'completion.bash'}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
        "_modelcatalog; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_flags_and_flag_values(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = script(capsys, "bash")
    assert "complete -F _modelcatalog modelcatalog kubectl-modelcatalog" in text
    assert {"models", "deployments", "completion", "catalog"} <= set(complete(tmp_path, text, "modelcatalog", ""))
    assert complete(tmp_path, text, "modelcatalog", "models", "c") == ["compare"]
    flags = complete(tmp_path, text, "modelcatalog", "models", "list", "--inc")
    assert flags == ["--include-retired"]
    assert complete(tmp_path, text, "modelcatalog", "models", "list", "-o", "") == [
        "table", "wide", "name", "json", "yaml"
    ]  # fmt: skip
    assert complete(tmp_path, text, "modelcatalog", "models", "list", "--collection", "h") == ["huggingface"]
    assert "Retired" in complete(tmp_path, text, "modelcatalog", "models", "list", "--task", "x", "--lifecycle", "")
    assert complete(tmp_path, text, "modelcatalog", "deployments", "list", "-A", "--no") == ["--no-headers"]
    assert complete(tmp_path, text, "kubectl-modelcatalog", "completion", "") == ["-h", "--help", "bash", "zsh"]


def test_zsh_gets_the_same_completion_through_bashcompinit(capsys: pytest.CaptureFixture[str]) -> None:
    text = script(capsys, "zsh")
    assert text.startswith("#compdef modelcatalog kubectl-modelcatalog\nautoload -U +X bashcompinit && bashcompinit\n")
    assert "complete -F _modelcatalog" in text


def test_kubectl_plugin_is_a_console_script_named_as_kubectl_looks_for_it(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-modelcatalog"] == "modelcatalog.cli.main:kubectl_plugin"
    monkeypatch.setattr("sys.argv", ["kubectl-modelcatalog", "models", "--help"])
    with pytest.raises(SystemExit):
        kubectl_plugin()
    assert capsys.readouterr().out.startswith("usage: kubectl modelcatalog models")
