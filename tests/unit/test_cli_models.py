"""`modelcatalog models list|show|compare`: what a user sees, from small catalogs written per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog.catalog import files
from modelcatalog.cli.errors import ExitCode
from modelcatalog.cli.main import main
from tests.unit.conftest import FROZEN
from tests.unit.fake_apiserver import closed_port_url, fake_apiserver, write_kubeconfig

API = "/apis/modelcatalog.io/v1alpha1"
SOURCE = "https://example.com/source"
TODAY = FROZEN.date()  # the unit tests' clock (tests/unit/conftest.py)
RETIREMENT = (TODAY + timedelta(days=30)).isoformat()
SERVERLESS_RETIRED = (TODAY - timedelta(days=12)).isoformat()


def catalog_model(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "modelcatalog.io/v1alpha1", "kind": "CatalogModel", "metadata": {"name": name}, "spec": spec}


def instance_type(name: str, model: str, count: int, memory_gib: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelcatalog.io/v1alpha1",
        "kind": "InstanceType",
        "metadata": {"name": name},
        "spec": {"gpu": {"model": model, "count": count, "memoryGiB": memory_gib}, "cpu": "8", "memory": "64Gi"},
    }


def benchmark(name: str, value: float, dataset: str | None = None, unit: str = "%") -> dict[str, Any]:
    found = {"name": name, "value": value, "unit": unit, "source": SOURCE}
    return found | ({"dataset": dataset} if dataset else {})


MANIFESTS = [
    catalog_model(
        "llama-3-8b-instruct",
        displayName="Meta-Llama-3-8B-Instruct",
        description="Instruction tuned chat model.",
        publisher="Meta",
        collection="curated",
        tasks=["chat-completion", "text-generation"],
        fineTuningTasks=["text-generation"],
        license="llama3",
        weights={"repository": "meta-llama/Meta-Llama-3-8B-Instruct", "revision": "abc123", "parametersBillions": 8},
        contextWindow=8192,
        deploymentOptions={
            "managedCompute": {"runtime": "vllm"},
            "serverless": {
                "regions": ["eastus", "swedencentral"],
                "pricing": {"inputPer1MTokens": "0.30", "outputPer1MTokens": "0.61", "source": SOURCE},
                "defaultRateLimits": {"requestsPerMinute": 200, "tokensPerMinute": 400000},
            },
        },
        lifecycle={"stage": "Deprecated", "deprecationDate": "2025-01-01", "retirementDate": RETIREMENT},
        benchmarks=[benchmark("accuracy", 68.4, "mmlu"), benchmark("coherence", 4.2, unit="score")],
    ),
    catalog_model(
        "phi-3-mini",
        displayName="Phi-3-mini-4k-instruct",
        publisher="Microsoft",
        collection="curated",
        tasks=["chat-completion"],
        license="mit",
        weights={"repository": "microsoft/Phi-3-mini-4k-instruct", "parametersBillions": 3.8},
        deploymentOptions={
            "managedCompute": {"runtime": "vllm", "allowedInstanceTypes": ["t4-1", "a100-1"]},
            "serverless": {
                "regions": ["eastus"],
                "regionsSource": SOURCE,
                "pricing": {"inputPer1MTokens": "0.13", "outputPer1MTokens": "0.52"},
                "lifecycle": {"stage": "Retired", "retirementDate": SERVERLESS_RETIRED},
            },
        },
        benchmarks=[benchmark("accuracy", 70.9, "mmlu")],
    ),
    catalog_model(
        "gpt-4o",
        displayName="gpt-4o",
        publisher="Azure OpenAI",
        collection="openai",
        tasks=["chat-completion"],
        license="custom",
        deploymentOptions={"serverless": {"regions": ["eastus"], "termsRequired": False}},
        lifecycle={"stage": "Preview"},
    ),
    catalog_model(
        "bge-m3",
        displayName="bge-m3",
        description="Multilingual EMBEDDINGS for retrieval.",
        publisher="BAAI",
        collection="huggingface",
        tasks=["embeddings"],
        license="mit",
        weights={"repository": "BAAI/bge-m3", "parametersBillions": 0.57, "dtype": "float32"},
        deploymentOptions={"managedCompute": {"runtime": "text-embeddings-inference"}},
    ),
    instance_type("t4-1", "T4", 1, 16),
    instance_type("a10-2", "A10", 2, 24),
    instance_type("a100-1", "A100", 1, 80),
]
ALL = {"llama-3-8b-instruct", "phi-3-mini", "gpt-4o", "bge-m3"}


@pytest.fixture(autouse=True)
def no_real_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach a cluster the developer happens to have configured."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent.kubeconfig"))


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir()
    (directory / "models.yaml").write_text(yaml.safe_dump_all(MANIFESTS))
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listed(capsys: pytest.CaptureFixture[str], catalog_dir: Path, *filters: str) -> set[str]:
    code, out, err = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "-o", "json", *filters)
    assert code == ExitCode.OK, err
    return {item["metadata"]["name"] for item in json.loads(out)["items"]}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ((), ALL),
        (("--collection", "huggingface"), {"bge-m3"}),
        (("--collection", "curated", "--collection", "openai"), {"llama-3-8b-instruct", "phi-3-mini", "gpt-4o"}),
        (("--publisher", "meta"), {"llama-3-8b-instruct"}),
        (("--publisher", "Azure OpenAI"), {"gpt-4o"}),
        (("--publisher", "azure-openai"), {"gpt-4o"}),
        (("--task", "embeddings"), {"bge-m3"}),
        (("--task", "chat-completion"), {"llama-3-8b-instruct", "phi-3-mini", "gpt-4o"}),
        (("--fine-tuning-task", "text-generation"), {"llama-3-8b-instruct"}),
        (("--deployment-option", "serverless"), {"llama-3-8b-instruct", "gpt-4o"}),  # phi-3-mini's is retired
        (("--deployment-option", "serverless", "--include-retired"), {"llama-3-8b-instruct", "phi-3-mini", "gpt-4o"}),
        (("--lifecycle", "retired"), {"phi-3-mini"}),  # asking for retired offers shows them
        (("--deployment-option", "managed"), {"llama-3-8b-instruct", "phi-3-mini", "bge-m3"}),
        (("--license", "mit"), {"phi-3-mini", "bge-m3"}),
        (("--license", "llama3", "--license", "custom"), {"llama-3-8b-instruct", "gpt-4o"}),
        (("--lifecycle", "deprecated"), {"llama-3-8b-instruct"}),
        (("--lifecycle", "Preview", "--lifecycle", "generallyavailable"), {"phi-3-mini", "gpt-4o", "bge-m3"}),
        (("--search", "embeddings"), {"bge-m3"}),
        (("--search", "Llama-3"), {"llama-3-8b-instruct"}),
        (("--search", "phi", "--search", "gpt"), {"phi-3-mini", "gpt-4o"}),
        (("--task", "chat-completion", "--license", "mit"), {"phi-3-mini"}),
        (("--deployment-option", "managed", "--collection", "curated", "--publisher", "meta"), {"llama-3-8b-instruct"}),
        (("--task", "embeddings", "--deployment-option", "serverless"), set()),
    ],
)
def test_list_filters_or_within_a_flag_and_across_flags(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, filters: tuple[str, ...], expected: set[str]
) -> None:
    assert listed(capsys, catalog_dir, *filters) == expected


def test_list_table_has_one_row_per_model_with_its_deployment_options(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    code, out, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "--publisher", "meta")
    header, *rows = out.splitlines()
    assert code == ExitCode.OK
    assert header.split()[:3] == ["NAME", "DISPLAY", "NAME"]
    assert len(rows) == 1
    assert rows[0].startswith("llama-3-8b-instruct")
    assert "managed, serverless" in rows[0]
    assert "deprecated, retires in 30 days" in rows[0]


def test_list_without_matches_says_so_on_stderr_and_succeeds(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    code, out, err = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "--search", "nobody")
    assert (code, out) == (ExitCode.OK, "")
    assert "no models match (of 4" in err


def test_list_yaml_is_the_same_data_as_json_and_loads_back_as_a_catalog(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, tmp_path: Path
) -> None:
    _, as_json, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "-o", "json")
    _, as_yaml, _ = run(capsys, "models", "list", "--catalog-dir", catalog_dir, "-o", "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "models.yaml").write_text(yaml.safe_dump_all(yaml.safe_load(as_yaml)["items"]))
    assert [e.name for e in files.models(files.load_manifests(exported))] == sorted(ALL)


def test_an_unknown_lifecycle_stage_is_a_usage_error_listing_the_stages(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["models", "list", "--catalog-dir", str(catalog_dir), "--lifecycle", "ancient"])
    assert exited.value.code == ExitCode.USAGE
    assert "GenerallyAvailable" in capsys.readouterr().err


def section(card: str, title: str) -> list[str]:
    """The indented lines under `title:` in a card, up to the next blank line."""
    lines = card.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_show_prints_the_card_with_prices_limits_lifecycle_and_benchmarks(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    code, out, _ = run(capsys, "models", "show", "llama-3-8b-instruct", "--catalog-dir", catalog_dir)
    assert code == ExitCode.OK
    assert out.startswith("Meta-Llama-3-8B-Instruct (llama-3-8b-instruct)")
    assert "meta-llama/Meta-Llama-3-8B-Instruct@abc123, 8B parameters, bfloat16" in out
    assert "8192 tokens" in out
    assert "Min GPU memory:     18 GiB" in out
    assert f"retires in 30 days ({RETIREMENT})" in out
    assert f"input 0.30 USD, output 0.61 USD per 1M tokens (source: {SOURCE})" in out
    assert "200 requests/min, 400000 tokens/min" in out
    assert "eastus, swedencentral" in out
    benchmarks = section(out, "Benchmarks:")
    assert any("accuracy (mmlu)" in line and "68.4 %" in line and SOURCE in line for line in benchmarks)
    assert any("coherence" in line and "4.2 score" in line for line in benchmarks)


def fitting(out: str) -> set[str]:
    return {line.split()[0] for line in section(out, "Instance types that fit:")[1:]}


def test_show_lists_instance_types_with_enough_total_gpu_memory(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    # 8B parameters in bfloat16 need 18 GiB: the 2 x 24 GiB A10 fits, a single 16 GiB T4 does not.
    _, out, _ = run(capsys, "models", "show", "llama-3-8b-instruct", "--catalog-dir", catalog_dir)
    assert fitting(out) == {"a10-2", "a100-1"}


def test_show_limits_fitting_types_to_the_allowed_ones(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    # 3.8B needs 9 GiB, so all three would fit, but the publisher only allows t4-1 and a100-1.
    _, out, _ = run(capsys, "models", "show", "phi-3-mini", "--catalog-dir", catalog_dir)
    assert fitting(out) == {"t4-1", "a100-1"}
    assert "not set" not in section(out, "  Serverless API:")[2]


def test_show_gives_the_serverless_offer_its_own_lifecycle_and_regions_source(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    _, out, _ = run(capsys, "models", "show", "phi-3-mini", "--catalog-dir", catalog_dir)
    model_lifecycle = next(line for line in out.splitlines() if line.startswith("Lifecycle:"))
    serverless = section(out, "  Serverless API:")
    assert model_lifecycle.split(maxsplit=1)[1].strip() == "generally available"
    assert f"Regions:              eastus (source: {SOURCE})" in serverless[0]
    assert f"Lifecycle:            retired 12 days ago ({SERVERLESS_RETIRED})" in serverless[1]


def test_show_of_a_serverless_only_model_has_no_instance_types_and_no_terms(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    _, out, _ = run(capsys, "models", "show", "gpt-4o", "--catalog-dir", catalog_dir)
    assert "Instance types that fit:" not in out
    assert "Managed compute:" not in out
    assert "Price:                not set" in out
    assert "Publisher terms:      not required" in out
    assert "none published" in section(out, "Benchmarks:")[0]


def test_show_finds_a_model_by_display_name_in_any_case(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    code, out, _ = run(capsys, "models", "show", "phi-3-MINI-4k-instruct", "--catalog-dir", catalog_dir)
    assert code == ExitCode.OK
    assert out.startswith("Phi-3-mini-4k-instruct (phi-3-mini)")


@pytest.mark.parametrize(("typed", "suggested"), [("llama3", "llama-3-8b-instruct"), ("phi-3-mni", "phi-3-mini")])
def test_show_of_an_unknown_model_exits_not_found_and_suggests_close_names(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, typed: str, suggested: str
) -> None:
    code, out, err = run(capsys, "models", "show", typed, "--catalog-dir", catalog_dir)
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert err.startswith(f"error: no model named '{typed}'; did you mean")
    assert suggested in err


def test_show_json_and_yaml_carry_the_spec_and_derived_facts(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    _, as_json, _ = run(capsys, "models", "show", "llama-3-8b-instruct", "--catalog-dir", catalog_dir, "-o", "json")
    _, as_yaml, _ = run(capsys, "models", "show", "llama-3-8b-instruct", "--catalog-dir", catalog_dir, "-o", "yaml")
    card = json.loads(as_json)
    assert yaml.safe_load(as_yaml) == card
    assert card["spec"]["weights"]["revision"] == "abc123"
    assert card["derived"] == {
        "minGpuMemoryGiB": 18,
        "fittingInstanceTypes": ["a10-2", "a100-1"],
        "retiresInDays": 30,
        "serverlessRetiresInDays": 30,  # no lifecycle of its own: the model's
        "lifecycle": f"deprecated, retires in 30 days ({RETIREMENT})",
        "serverlessLifecycle": f"deprecated, retires in 30 days ({RETIREMENT})",
        "availableInRegion": None,
    }
    assert card["status"]["stage"] == "Deprecated"


def compare_table(out: str) -> dict[str, list[str]]:
    """Attribute -> cells, splitting on the runs of spaces between columns."""
    rows = [[cell.strip() for cell in line.split("   ") if cell.strip()] for line in out.splitlines()]
    return {row[0]: row[1:] for row in rows}


def test_compare_puts_models_in_columns_and_attributes_prices_and_benchmarks_in_rows(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path
) -> None:
    code, out, _ = run(capsys, "models", "compare", "llama-3-8b-instruct", "phi-3-mini", "--catalog-dir", catalog_dir)
    table = compare_table(out)
    assert code == ExitCode.OK
    assert table["ATTRIBUTE"] == ["llama-3-8b-instruct", "phi-3-mini"]
    assert table["publisher"] == ["Meta", "Microsoft"]
    assert table["min GPU memory (GiB)"] == ["18", "9"]
    assert table["price input (USD per 1M tokens)"] == ["0.3", "0.13"]
    assert table["price output (USD per 1M tokens)"] == ["0.61", "0.52"]
    assert table["accuracy (mmlu) (%)"] == ["68.4", "70.9"]
    assert table["coherence (score)"] == ["4.2", "-"]
    assert table["lifecycle"] == [f"deprecated, retires in 30 days ({RETIREMENT})", "generally available"]
    assert table["serverless lifecycle"] == [
        f"deprecated, retires in 30 days ({RETIREMENT})",
        f"retired 12 days ago ({SERVERLESS_RETIRED})",
    ]


def test_compare_shortens_long_cells_but_json_keeps_every_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    regions = [f"region-number-{i}" for i in range(10)]
    wide = [
        catalog_model(name, displayName=name, publisher="P", collection="curated", tasks=["chat-completion"],
                      license="mit", deploymentOptions={"serverless": {"regions": regions}})
        for name in ("one", "two")
    ]  # fmt: skip
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump_all(wide))
    _, out, _ = run(capsys, "models", "compare", "one", "two", "--catalog-dir", tmp_path)
    cells = compare_table(out)["serverless regions"]
    assert all(cell.startswith("region-number-0, region-number-1") and cell.endswith("…") for cell in cells)
    assert max(len(line) for line in out.splitlines()) < 160
    _, as_json, _ = run(capsys, "models", "compare", "one", "two", "--catalog-dir", tmp_path, "-o", "json")
    assert json.loads(as_json)["attributes"]["serverless regions"]["two"] == regions


def test_compare_json_keeps_numbers_and_yaml_matches(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    names = ("compare", "phi-3-mini", "gpt-4o", "bge-m3", "--catalog-dir", catalog_dir)
    _, as_json, _ = run(capsys, "models", *names, "-o", "json")
    _, as_yaml, _ = run(capsys, "models", *names, "-o", "yaml")
    data = json.loads(as_json)
    assert yaml.safe_load(as_yaml) == data
    assert data["models"] == ["phi-3-mini", "gpt-4o", "bge-m3"]
    assert data["attributes"]["price input"] == {"phi-3-mini": 0.13, "gpt-4o": None, "bge-m3": None}
    assert data["attributes"]["accuracy (mmlu)"]["phi-3-mini"] == 70.9
    assert data["attributes"]["dtype"]["bge-m3"] == "float32"


def test_compare_needs_two_models_and_known_names(capsys: pytest.CaptureFixture[str], catalog_dir: Path) -> None:
    code, _, err = run(capsys, "models", "compare", "phi-3-mini", "--catalog-dir", catalog_dir)
    assert code == ExitCode.USAGE
    assert "at least two" in err
    code, _, err = run(capsys, "models", "compare", "phi-3-mini", "lama-3-8b", "--catalog-dir", catalog_dir)
    assert code == ExitCode.NOT_FOUND
    assert "llama-3-8b-instruct" in err


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_compare_chart_writes_a_png_of_benchmarks_and_prices(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, tmp_path: Path
) -> None:
    chart = tmp_path / "compare.png"
    code, out, err = run(
        capsys, "models", "compare", "llama-3-8b-instruct", "phi-3-mini", "--catalog-dir", catalog_dir, "--chart", chart
    )
    data = chart.read_bytes()
    assert code == ExitCode.OK
    assert "ATTRIBUTE" in out
    assert f"wrote chart {chart}" in err
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 600  # prices, % benchmarks and score benchmarks: three panels


def test_compare_chart_of_models_without_figures_is_refused(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, tmp_path: Path
) -> None:
    chart = tmp_path / "empty.png"
    code, _, err = run(capsys, "models", "compare", "gpt-4o", "bge-m3", "--catalog-dir", catalog_dir, "--chart", chart)
    assert code == ExitCode.INVALID
    assert "nothing to chart" in err
    assert not chart.exists()


def test_compare_without_chart_does_not_load_matplotlib(catalog_dir: Path) -> None:
    script = (
        "import sys; from modelcatalog.cli.main import main; "
        f"code = main(['models', 'compare', 'phi-3-mini', 'gpt-4o', '--catalog-dir', {str(catalog_dir)!r}]); "
        "assert code == 0; assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_python_dash_m_runs_the_models_group(catalog_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelcatalog",
            "models",
            "list",
            "--catalog-dir",
            str(catalog_dir),
            "--task",
            "embeddings",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"KUBECONFIG": os.devnull},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("bge-m3")


def test_a_missing_catalog_dir_is_not_found(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "models", "list", "--catalog-dir", tmp_path / "nope")
    assert code == ExitCode.NOT_FOUND
    assert "nope does not exist" in err


def test_an_invalid_manifest_is_reported_with_its_file_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = catalog_model(
        "broken", displayName="B", publisher="X", collection="curated", tasks=["chat"], license="mit"
    )
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    code, _, err = run(capsys, "models", "list", "--catalog-dir", tmp_path)
    assert code == ExitCode.INVALID
    assert "broken.yaml" in err
    assert "deploymentOptions" in err


def list_response(kind: str) -> dict[str, Any]:
    # The API server omits nothing here, but clients must not rely on kind per item: drop it.
    items = [{k: v for k, v in m.items() if k != "kind"} for m in MANIFESTS if m["kind"] == kind]
    return {"apiVersion": "modelcatalog.io/v1alpha1", "kind": f"{kind}List", "items": items}


def test_source_cluster_reads_catalog_models_and_instance_types_from_the_api(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with fake_apiserver() as server:
        server.answer("GET", f"{API}/catalogmodels", list_response("CatalogModel"))
        server.answer("GET", f"{API}/instancetypes", list_response("InstanceType"))
        kubeconfig = server.kubeconfig(tmp_path)
        code, out, err = run(capsys, "models", "list", "--source", "cluster", "--kubeconfig", kubeconfig, "-o", "json")
        assert code == ExitCode.OK, err
        assert {m["metadata"]["name"] for m in json.loads(out)["items"]} == ALL
        _, card, _ = run(
            capsys, "models", "show", "llama-3-8b-instruct", "--source", "cluster", "--kubeconfig", kubeconfig
        )
    assert fitting(card) == {"a10-2", "a100-1"}
    assert {r.path for r in server.requests} == {
        f"{API}/catalogmodels",
        f"{API}/instancetypes",
        "/api/v1/namespaces/modelcatalog-system/configmaps/modelcatalog-settings",
    }


def test_auto_source_uses_the_cluster_when_kubeconfig_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_bge = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [m for m in MANIFESTS if m["metadata"]["name"] == "bge-m3"],
    }
    with fake_apiserver() as server:
        server.answer("GET", f"{API}/catalogmodels", only_bge)
        server.answer("GET", f"{API}/instancetypes", {"items": []})
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path)))
        code, out, _ = run(capsys, "models", "list", "-o", "json")
    assert code == ExitCode.OK
    assert [m["metadata"]["name"] for m in json.loads(out)["items"]] == ["bge-m3"]


def test_source_cluster_that_cannot_be_reached_exits_unavailable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "down.kubeconfig", closed_port_url())
    code, out, err = run(capsys, "models", "list", "--source", "cluster", "--kubeconfig", kubeconfig)
    assert (code, out) == (ExitCode.UNAVAILABLE, "")
    assert err.startswith("error: cannot reach the cluster at http://127.0.0.1:")


def test_source_cluster_without_a_kubeconfig_exits_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "models", "list", "--source", "cluster")
    assert code == ExitCode.UNAVAILABLE
    assert "no kubeconfig" in err


def test_source_cluster_without_the_crd_exits_unavailable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with fake_apiserver() as server:
        code, _, err = run(capsys, "models", "list", "--source", "cluster", "--kubeconfig", server.kubeconfig(tmp_path))
    assert code == ExitCode.UNAVAILABLE
    assert "no CatalogModel CRD (catalogmodels.modelcatalog.io)" in err


def test_auto_source_falls_back_to_the_catalog_files_when_the_cluster_is_down(
    capsys: pytest.CaptureFixture[str], catalog_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "CATALOG_DIR", catalog_dir)
    kubeconfig = write_kubeconfig(tmp_path / "down.kubeconfig", closed_port_url())
    code, out, err = run(capsys, "models", "list", "--kubeconfig", kubeconfig, "-o", "json")
    assert code == ExitCode.OK
    assert {m["metadata"]["name"] for m in json.loads(out)["items"]} == ALL
    assert f"reading {catalog_dir} instead" in err
