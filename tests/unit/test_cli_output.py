"""What a kubectl user expects of every command: exit codes, List output, -o wide/name, --no-headers,
retired offers hidden, filter values checked, the region filter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelcatalog import clock
from modelcatalog.api.catalog import CatalogModelSpec
from modelcatalog.cli.errors import EPILOG, ExitCode
from modelcatalog.cli.main import build_parser, main, walk
from tests.unit.fake_apiserver import fake_apiserver
from tests.unit.test_cli_models import ALL, API, MANIFESTS, catalog_dir, list_response, no_real_cluster, run

__all__ = ["catalog_dir", "no_real_cluster"]  # fixtures shared with test_cli_models


@pytest.fixture(autouse=True)
def real_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A cluster's clockOffsetDays moves this process's clock: put it back after each test."""
    monkeypatch.delenv(clock.ENV, raising=False)
    yield
    clock.configure(None)


def listing(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[list[str], str]:
    code, out, err = run(capsys, "models", "list", *argv)
    assert code == ExitCode.OK, err
    return [line.split()[0] for line in out.splitlines()[1:]], err


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_list_is_a_kubernetes_list_of_full_objects(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, fmt: str
) -> None:
    _, out, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "-o", fmt)
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert (data["apiVersion"], data["kind"], data["metadata"]) == ("v1", "List", {})
    assert {item["metadata"]["name"] for item in data["items"]} == ALL
    for item in data["items"]:
        assert (item["apiVersion"], item["kind"]) == ("modelcatalog.io/v1alpha1", "CatalogModel")
        CatalogModelSpec.model_validate(item["spec"])
        assert item["status"]["stage"] in {"Preview", "GenerallyAvailable", "Deprecated"}


def test_a_list_deserialises_with_the_kubernetes_client(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    from kubernetes import client

    _, out, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "-o", "json")
    # Any typed List reads the envelope; a Namespace's spec and status accept what they do not know.
    parsed = client.ApiClient().deserialize(out, "V1NamespaceList", "application/json")
    assert (parsed.api_version, parsed.kind, len(parsed.items)) == ("v1", "List", len(ALL))


def test_name_wide_and_no_headers(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    _, out, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "-o", "name", "--task", "embeddings")
    assert out == "catalogmodel.modelcatalog.io/bge-m3\n"
    _, out, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "-o", "wide", "--publisher", "meta")
    header, row = out.splitlines()
    assert header.endswith("NEXT CHANGE") and "TOKEN PRICE" in header and "SERVERLESS" in header
    assert "live" not in row and "deprecated, 2 regions (eastus, swedencentral)" in row
    assert "0.30 in / 0.61 out USD per 1M tokens" in row
    _, out, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "--no-headers", "--task", "embeddings")
    assert out.split()[0] == "bge-m3"
    _, out, _ = run(capsys, "models", "show", "bge-m3", "--catalog-dir", catalog_dir, "-o", "name")
    assert out == "catalogmodel.modelcatalog.io/bge-m3\n"


def test_retired_offers_are_hidden_and_counted_under_the_table(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    names, err = listing(capsys, "--catalog-dir", catalog_dir, "--deployment-option", "serverless")
    assert names == ["gpt-4o", "llama-3-8b-instruct"]
    assert "1 retired offer hidden; --include-retired shows them" in err
    names, err = listing(capsys, "--catalog-dir", catalog_dir, "--deployment-option", "serverless", "--include-retired")
    assert names == ["gpt-4o", "llama-3-8b-instruct", "phi-3-mini"]
    assert "hidden" not in err
    _, out, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "--search", "phi", "--include-retired")
    row = out.splitlines()[1]
    assert "managed, serverless" in row
    assert "managed: generally available; serverless: retired 12 days ago" in row


@pytest.mark.parametrize(
    ("flag", "value", "valid"),
    [
        ("--collection", "azure", "curated, huggingface, openai"),
        ("--publisher", "nobody", "Azure OpenAI, BAAI, Meta, Microsoft"),
        ("--task", "chat", "chat-completion, embeddings, text-generation"),
        ("--license", "gpl", "custom, llama3, mit"),
        ("--fine-tuning-task", "x", "text-generation"),
        ("--region", "mars", "any, eastus, swedencentral"),
    ],
)
def test_an_unknown_filter_value_is_a_usage_error_naming_the_valid_ones(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, flag: str, value: str, valid: str
) -> None:
    code, out, err = run(capsys, "models", "list", "--catalog-dir", catalog_dir, flag, value)
    assert (code, out) == (ExitCode.USAGE, "")
    assert err == f"error: unknown {flag} value {value!r}; valid: {valid}\n"


def test_one_exit_code_rule_across_commands(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    for argv in (["models", "show", "nope"], ["models", "compare", "bge-m3", "nope"]):
        assert run(capsys, *argv, "--catalog-dir", catalog_dir)[0] == 1  # not found
    assert run(capsys, "models", "list", "--catalog-dir", catalog_dir / "missing")[0] == 1
    assert run(capsys, "models", "compare", "bge-m3", "--catalog-dir", catalog_dir)[0] == 2
    for argv in (["models", "list", "--bogus"], ["models", "list", "-o", "table2"], ["modelz"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    assert run(capsys, "models", "list", "--catalog-dir", catalog_dir, "--search", "zzz")[0] == 0  # empty is fine


def test_every_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    parsers = list(walk(build_parser()))
    assert len(parsers) > 10
    assert all(p.epilog == EPILOG for p in parsers)
    with pytest.raises(SystemExit):
        main(["models", "list", "--help"])
    out = capsys.readouterr().out
    assert "exit codes (every command):" in out
    assert "  2  usage error" in out
    assert "An offer listing no regions is not restricted: it is in every region." in " ".join(out.split())


def test_region_filter_applies_to_serverless_offers_only(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    names, err = listing(capsys, "--catalog-dir", catalog_dir, "--region", "swedencentral")
    assert names == ["bge-m3", "llama-3-8b-instruct", "phi-3-mini"]  # managed compute has no region
    assert "1 serverless offer not in region swedencentral hidden; --region any shows them" in err
    names, _ = listing(capsys, "--catalog-dir", catalog_dir, "--region", "swedencentral", "--deployment-option",
                       "serverless")  # fmt: skip
    assert names == ["llama-3-8b-instruct"]
    names, _ = listing(capsys, "--catalog-dir", catalog_dir, "--region", "any", "--deployment-option", "serverless")
    assert names == ["gpt-4o", "llama-3-8b-instruct"]


def test_an_offer_without_regions_is_in_every_region(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    unlisted = [m for m in MANIFESTS if m["metadata"]["name"] in ("gpt-4o", "llama-3-8b-instruct")]
    unlisted = [yaml.safe_load(yaml.safe_dump(m)) for m in unlisted]
    unlisted[1]["spec"]["deploymentOptions"]["serverless"]["regions"] = []
    (tmp_path / "m.yaml").write_text(yaml.safe_dump_all(unlisted))
    names, _ = listing(capsys, "--catalog-dir", tmp_path, "--region", "eastus")
    assert "gpt-4o" in names
    _, card, _ = run(capsys, "models", "show", "gpt-4o", "--catalog-dir", tmp_path, "--region", "westus")
    assert "In region westus:" in card and "not restricted" in card


def test_the_region_defaults_to_the_clusters_settings_configmap(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with fake_apiserver() as server:
        server.answer("GET", f"{API}/catalogmodels", list_response("CatalogModel"))
        server.answer("GET", f"{API}/instancetypes", list_response("InstanceType"))
        server.answer(
            "GET",
            "/api/v1/namespaces/modelcatalog-system/configmaps/modelcatalog-settings",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "modelcatalog-settings"},
             "data": {"region": "swedencentral", "clockOffsetDays": "31"}},
        )  # fmt: skip
        kubeconfig = server.kubeconfig(tmp_path)
        code, out, err = run(capsys, "models", "list", "--source", "cluster", "--kubeconfig", kubeconfig,
                             "--deployment-option", "serverless", "--include-retired")  # fmt: skip
        names = [line.split()[0] for line in out.splitlines()[1:]]
        # swedencentral only has llama, and 31 days on its retirement (in 30 days) has passed
        assert names == ["llama-3-8b-instruct"], err
        assert "retired 1 day ago" in out
        code, out, _ = run(capsys, "models", "list", "--source", "cluster", "--kubeconfig", kubeconfig,
                           "--region", "any", "--deployment-option", "serverless")  # fmt: skip
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["gpt-4o"]
