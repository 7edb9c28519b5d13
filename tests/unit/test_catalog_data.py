"""The default catalog (catalog/): valid, normalised, true to the seed's deployment-options table, sourced."""

from __future__ import annotations

import datetime
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog import labels
from modelcatalog.api.base import DNS_LABEL
from modelcatalog.api.catalog import CatalogModelSpec, InstanceTypeSpec, Lifecycle, min_gpu_memory_gib
from modelcatalog.catalog import files, prices
from modelcatalog.cli import catalog as catalog_cli
from modelcatalog.cli.errors import ExitCode
from modelcatalog.cli.main import main

CATALOG = files.CATALOG_DIR
NODE_POOLS = Path(files.__file__).parents[1] / "localcluster" / "nodepools.yaml"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"

# The "Deployment options" table of the seed (000_*.txt), column by column, names as the table spells them.
# A model in both columns gets both options; the families marked "Not available" have no managed-compute entries.
MANAGED_COLUMN = [
    # Llama family models
    "Llama-2-7b", "Llama-2-7b-chat", "Llama-2-13b", "Llama-2-13b-chat", "Llama-2-70b", "Llama-2-70b-chat",
    "Llama-3-8B-Instruct", "Llama-3-70B-Instruct", "Llama-3-8B", "Llama-3-70B",
    # Mistral family models
    "mistralai-Mixtral-8x22B-v0-1", "mistralai-Mixtral-8x22B-Instruct-v0-1", "mistral-community-Mixtral-8x22B-v0-1",
    "mistralai-Mixtral-8x7B-v01", "mistralai-Mistral-7B-Instruct-v0-2", "mistralai-Mistral-7B-v01",
    "mistralai-Mixtral-8x7B-Instruct-v01", "mistralai-Mistral-7B-Instruct-v01",
    # Phi-3 family models
    "Phi-3-mini-4k-Instruct", "Phi-3-mini-128k-Instruct", "Phi-3-small-8k-Instruct", "Phi-3-small-128k-Instruct",
    "Phi-3-medium-4k-instruct", "Phi-3-medium-128k-instruct", "Phi-3-vision-128k-Instruct", "Phi-3.5-mini-Instruct",
    "Phi-3.5-vision-Instruct", "Phi-3.5-MoE-Instruct",
]  # fmt: skip
SERVERLESS_COLUMN = [
    # Llama family models
    "Llama-3-70B-Instruct", "Llama-3-8B-Instruct", "Llama-2-7b", "Llama-2-7b-chat", "Llama-2-13b", "Llama-2-13b-chat",
    "Llama-2-70b", "Llama-2-70b-chat",
    # Mistral family models
    "Mistral-large (2402)", "Mistral-large (2407)", "Mistral-small", "Ministral-3B", "Mistral-Nemo",
    # Cohere family models
    "Cohere-command-r-plus-08-2024", "Cohere-command-r-08-2024", "Cohere-command-r-plus", "Cohere-command-r",
    "Cohere-embed-v3-english", "Cohere-embed-v3-multilingual", "Cohere-rerank-v3-english",
    "Cohere-rerank-v3-multilingual",
    # JAIS
    "jais-30b-chat",
    # Phi-3 family models
    "Phi-3-mini-4k-Instruct", "Phi-3-mini-128k-Instruct", "Phi-3-small-8k-Instruct", "Phi-3-small-128k-Instruct",
    "Phi-3-medium-4k-instruct", "Phi-3-medium-128k-instruct", "Phi-3.5-mini-Instruct", "Phi-3.5-vision-Instruct",
    "Phi-3.5-MoE-Instruct",
    # Nixtla
    "TimeGEN-1",
]  # fmt: skip
SEED_TABLE = {name: (name in MANAGED_COLUMN, name in SERVERLESS_COLUMN) for name in MANAGED_COLUMN + SERVERLESS_COLUMN}

# Tasks a text-embeddings-inference server answers; everything else on managed compute is served by vLLM.
TEI_TASKS = {"embeddings", "text-classification", "rerank"}

# Azure's retirement schedule for Foundry Models: it covers serverless API offers only, not managed compute.
SERVERLESS_RETIREMENT_PAGE = "https://learn.microsoft.com/en-us/azure/ai-foundry/concepts/model-lifecycle-retirement"


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return files.load_manifests(CATALOG)


@pytest.fixture(scope="module")
def entries(manifests: list[dict[str, Any]]) -> list[files.Entry]:
    return files.models(manifests)


@pytest.fixture(scope="module")
def instance_types(manifests: list[dict[str, Any]]) -> dict[str, InstanceTypeSpec]:
    return files.instance_types(manifests)


def by_display_name(entries: list[files.Entry]) -> dict[str, files.Entry]:
    found: dict[str, files.Entry] = {}
    for entry in entries:
        assert entry.spec.display_name not in found, f"display name {entry.spec.display_name!r} is used twice"
        found[entry.spec.display_name] = entry
    return found


def lifecycles(entry: files.Entry) -> Iterator[tuple[str, Lifecycle]]:
    """The model's lifecycle and, where it has its own, the serverless offer's, each with the field it sits in."""
    yield f"{entry.name}: lifecycle", entry.spec.lifecycle
    serverless = entry.spec.deployment_options.serverless
    if serverless is not None and serverless.lifecycle is not None:
        yield f"{entry.name}: deploymentOptions.serverless.lifecycle", serverless.lifecycle


def test_every_manifest_loads_and_names_are_unique_dns_labels(manifests: list[dict[str, Any]]) -> None:
    kinds = [manifest["kind"] for manifest in manifests]
    assert kinds.count("CatalogModel") >= len(SEED_TABLE)
    assert kinds.count("InstanceType") >= 1
    seen = set()
    for manifest in manifests:
        key = (manifest["kind"], manifest["metadata"]["name"])
        assert re.match(DNS_LABEL, key[1]) and len(key[1]) <= 63, key
        assert key not in seen, f"{key} is defined twice"
        seen.add(key)


def test_catalog_models_live_in_one_file_per_family() -> None:
    for path in sorted(CATALOG.rglob("*.yaml")):
        kinds = {document["kind"] for document in yaml.safe_load_all(path.read_text()) if document}
        if "CatalogModel" in kinds:
            assert path.parent == CATALOG / "models", f"{path}: CatalogModels belong under catalog/models/"
            assert kinds == {"CatalogModel"}, f"{path} mixes kinds: {kinds}"


def test_catalog_is_normalised() -> None:
    for path in sorted(CATALOG.rglob("*.yaml")):
        text = path.read_text()
        assert catalog_cli.normalized_text(text, str(path)) in (None, text), f"{path} is not normalised: make catalog"


def test_availability_matches_the_seed_table_exactly(entries: list[files.Entry]) -> None:
    models = by_display_name(entries)
    missing = sorted(set(SEED_TABLE) - set(models))
    assert not missing, f"models of the seed table missing from the catalog: {missing}"
    for name, (managed, serverless) in SEED_TABLE.items():
        options = models[name].spec.deployment_options
        got = (options.managed_compute is not None, options.serverless is not None)
        assert got == (managed, serverless), (
            f"{name}: (managed, serverless) is {got}, the seed says {(managed, serverless)}"
        )


def test_models_outside_the_table_follow_their_collection(entries: list[files.Entry]) -> None:
    # "Other models: managed compute available, serverless not available"; Azure OpenAI models are API only.
    for entry in entries:
        if entry.spec.display_name in SEED_TABLE:
            continue
        options = entry.spec.deployment_options
        if entry.spec.collection == "openai":
            assert options.managed_compute is None and options.serverless is not None, entry.name
            assert entry.spec.weights is None, f"{entry.name}: Azure OpenAI models have no downloadable weights"
        else:
            assert options.managed_compute is not None and options.serverless is None, entry.name


def test_seed_families_are_all_present(entries: list[files.Entry]) -> None:
    publishers = {entry.spec.publisher for entry in entries}
    assert {"Meta", "Mistral AI", "Cohere", "Core42", "Microsoft", "Nixtla"} <= publishers
    assert {entry.spec.collection for entry in entries} == {"curated", "openai", "huggingface"}


def test_every_outside_figure_carries_its_source(entries: list[files.Entry]) -> None:
    for entry in entries:
        spec = entry.spec
        if spec.context_window is not None:
            assert spec.context_window_source, f"{entry.name}: contextWindow without contextWindowSource"
        serverless = spec.deployment_options.serverless
        # Prices are the platform's own (prices.yaml), not outside figures: they need no source.
        if serverless is not None and serverless.regions:
            assert serverless.regions_source, f"{entry.name}: serverless.regions without serverless.regionsSource"
        for where, life in lifecycles(entry):
            stated = (life.preview_date, life.generally_available_date, life.legacy_date, life.deprecation_date)
            if any((*stated, life.retirement_date, life.replacement)):
                assert life.source, f"{where}: dates without a source"
        for benchmark in spec.benchmarks:
            assert benchmark.source.startswith("https://"), f"{entry.name}: benchmark {benchmark.name} has no source"


def test_no_price_figures_are_shipped(entries: list[files.Entry], instance_types: dict[str, InstanceTypeSpec]) -> None:
    # The catalog has no public source for prices: the platform team sets them in prices.yaml.
    assert prices.load(prices.PRICES_FILE) == prices.PriceList()
    assert all(e.spec.deployment_options.serverless is None or e.spec.deployment_options.serverless.pricing is None
               for e in entries)  # fmt: skip
    assert all(it.pricing is None for it in instance_types.values())


def test_normalize_writes_the_price_list_into_the_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = copy_catalog(tmp_path)
    price_list = tmp_path / "prices.yaml"
    price_list.write_text(yaml.safe_dump({
        "currency": "EUR",
        "models": {"timegen-1": {"inputPer1MTokens": "1.5", "outputPer1MTokens": 2}},
        "instanceTypes": {"standard-nc24ads-a100-v4": {"perHour": "3.40"}},
    }))  # fmt: skip
    assert main(["catalog", "normalize", "--prices", str(price_list), str(directory)]) == ExitCode.OK
    loaded = files.load_manifests(directory)
    timegen = next(e for e in files.models(loaded) if e.name == "timegen-1").spec.deployment_options.serverless
    assert timegen is not None and timegen.pricing is not None
    assert (timegen.pricing.currency, timegen.pricing.input_per_1m_tokens, timegen.pricing.output_per_1m_tokens) == (
        "EUR", "1.5", "2"
    )  # fmt: skip
    a100 = files.instance_types(loaded)["standard-nc24ads-a100-v4"].pricing
    assert a100 is not None and (a100.per_hour, a100.currency) == ("3.40", "EUR")
    assert main(["catalog", "normalize", "--check", "--prices", str(price_list), str(directory)]) == ExitCode.OK
    capsys.readouterr()
    price_list.write_text(yaml.safe_dump({"instanceTypes": {"h200-1": {"perHour": "9"}}}))
    assert main(["catalog", "normalize", "--prices", str(price_list), str(directory)]) == ExitCode.ERROR
    assert "prices name no InstanceType h200-1; known: standard-" in capsys.readouterr().err


def test_lifecycle_stages_have_their_dates_in_order(entries: list[files.Entry]) -> None:
    names = {entry.name for entry in entries}
    today = datetime.date.today().isoformat()
    for entry in entries:
        for where, life in lifecycles(entry):
            # What the CRD's CEL rules enforce at admission, checked here without a cluster.
            if life.stage == "Deprecated":
                assert life.deprecation_date, f"{where}: Deprecated without deprecationDate"
            if life.stage == "Retired":
                assert life.retirement_date, f"{where}: Retired without retirementDate"
                assert life.retirement_date <= today, f"{where}: Retired before its retirementDate"
            dates = [d for d in (life.legacy_date, life.deprecation_date, life.retirement_date) if d]
            assert dates == sorted(dates), f"{where}: legacy <= deprecation <= retirement expected, got {dates}"
            if life.replacement:
                assert life.replacement in names, f"{where}: replacement {life.replacement} is not in the catalog"


def test_serverless_retirement_dates_do_not_retire_managed_compute(entries: list[files.Entry]) -> None:
    # Azure's retirement page is about serverless offers; the open weights stay deployable on managed compute.
    # So a model that offers managed compute is past GA at model level only on a source about the model itself.
    for entry in entries:
        if entry.spec.deployment_options.managed_compute is None:
            continue
        life = entry.spec.lifecycle
        if life.stage in ("Legacy", "Deprecated", "Retired"):
            assert life.source and life.source != SERVERLESS_RETIREMENT_PAGE, (
                f"{entry.name}: offers managed compute but is {life.stage} at model level on "
                f"{life.source or 'no source'}; serverless dates go in deploymentOptions.serverless.lifecycle"
            )


def test_serverless_lifecycle_is_given_only_where_it_differs_from_the_model(
    entries: list[files.Entry],
) -> None:
    for entry in entries:
        options = entry.spec.deployment_options
        life = options.serverless.lifecycle if options.serverless else None
        if life is None:
            continue
        where = f"{entry.name}: deploymentOptions.serverless.lifecycle"
        # A serverless-only model's lifecycle is its serverless offer's: one place, not two.
        assert options.managed_compute is not None, f"{where}: serverless is the only offer, use spec.lifecycle"
        assert life != entry.spec.lifecycle, f"{where}: repeats spec.lifecycle"
        if life.stage in ("Deprecated", "Retired"):
            assert life.deprecation_date, f"{where}: {life.stage} without deprecationDate"
            assert life.stage != "Retired" or life.retirement_date, f"{where}: Retired without retirementDate"
            assert life.source, f"{where}: {life.stage} without a source"


def test_managed_compute_models_have_weights_and_a_fitting_runtime(entries: list[files.Entry]) -> None:
    for entry in entries:
        managed = entry.spec.deployment_options.managed_compute
        if managed is None:
            continue
        weights = entry.spec.weights
        # The CRD's CEL rule, checked without a cluster; a size is needed to derive the GPU memory.
        assert weights is not None, f"{entry.name}: managed compute without weights"
        assert weights.parameters_billions, f"{entry.name}: weights without parametersBillions"
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", weights.repository), f"{entry.name}: {weights.repository}"
        assert weights.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", weights.revision), entry.name
        expected = "text-embeddings-inference" if set(entry.spec.tasks) <= TEI_TASKS else "vllm"
        assert managed.runtime == expected, f"{entry.name}: tasks {entry.spec.tasks} want runtime {expected}"


def test_min_gpu_memory_is_derived_from_the_weights(entries: list[files.Entry]) -> None:
    for entry in entries:
        managed = entry.spec.deployment_options.managed_compute
        if managed is None or entry.spec.weights is None or not entry.spec.weights.parameters_billions:
            continue
        expected = min_gpu_memory_gib(entry.spec.weights.parameters_billions, entry.spec.weights.dtype)
        assert managed.min_gpu_memory_gib == expected, f"{entry.name}: minGpuMemoryGiB should be {expected}"


def test_every_managed_model_fits_some_instance_type(
    entries: list[files.Entry], instance_types: dict[str, InstanceTypeSpec]
) -> None:
    largest = max(spec.gpu_memory_gib for spec in instance_types.values())
    for entry in entries:
        managed = entry.spec.deployment_options.managed_compute
        if managed is not None and managed.min_gpu_memory_gib is not None:
            assert managed.min_gpu_memory_gib <= largest, f"{entry.name} fits no InstanceType"


def test_allowed_instance_types_exist(entries: list[files.Entry], instance_types: dict[str, InstanceTypeSpec]) -> None:
    for entry in entries:
        managed = entry.spec.deployment_options.managed_compute
        for name in managed.allowed_instance_types if managed else []:
            assert name in instance_types, f"{entry.name}: allowedInstanceTypes names unknown InstanceType {name}"
            need = managed.min_gpu_memory_gib if managed else None
            assert need is None or instance_types[name].gpu_memory_gib >= need, f"{entry.name}: {name} is too small"


def test_labels_are_consistent_with_the_spec(entries: list[files.Entry]) -> None:
    for entry in entries:
        derived = files.catalog_labels(entry.spec)
        assert {k: entry.labels.get(k) for k in derived} == derived, f"{entry.name}: labels differ from the spec"
        stray = {
            k
            for k in entry.labels
            if k.startswith((labels.TASK_PREFIX, labels.FINE_TUNING_PREFIX)) and k not in derived
        }
        assert not stray, f"{entry.name}: labels for tasks the spec does not list: {stray}"


def test_task_slugs_are_the_known_ones(entries: list[files.Entry]) -> None:
    known = {
        "chat-completion", "text-generation", "embeddings", "image-embeddings", "text-classification", "rerank",
        "time-series-forecasting",
    }  # fmt: skip
    for entry in entries:
        unknown = set(entry.spec.tasks + entry.spec.fine_tuning_tasks) - known
        assert not unknown, f"{entry.name}: unknown task slugs {unknown} (keep one spelling per task)"


def quantity(text: str) -> float:
    """A Kubernetes quantity, for the few suffixes the catalog and the node pools use."""
    units = {"": 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text)
    assert match, text
    return float(match[1]) * units[match[2]]


def test_instance_types_are_well_formed(instance_types: dict[str, InstanceTypeSpec]) -> None:
    for name, spec in instance_types.items():
        sku = spec.node_selector.get(INSTANCE_TYPE_LABEL)
        assert sku == spec.display_name, f"{name}: nodeSelector {INSTANCE_TYPE_LABEL} should be {spec.display_name}"
        assert name == sku.lower().replace("_", "-"), f"{name}: name should be the Azure size, lower case, dashes"
        if spec.gpu:
            assert any(
                t.key == "nvidia.com/gpu" and t.operator == "Exists" and t.effect == "NoSchedule"
                for t in spec.tolerations
            ), f"{name}: GPU types tolerate the nvidia.com/gpu taint"
    gpu_counts = {(spec.gpu.model, spec.gpu.count) for spec in instance_types.values() if spec.gpu}
    for model, counts in {"A100": (1, 2, 4, 8), "H100": (1, 2, 8), "T4": (1, 4)}.items():
        assert {(model, count) for count in counts} <= gpu_counts, f"{model}: expected {counts} GPU sizes"
    assert any(spec.gpu is None for spec in instance_types.values()), "one CPU-only type for the cpu pool"


def test_every_local_node_pool_has_an_instance_type_that_fits_on_it(
    instance_types: dict[str, InstanceTypeSpec],
) -> None:
    by_sku = {spec.display_name: spec for spec in instance_types.values()}
    for pool in yaml.safe_load(NODE_POOLS.read_text())["pools"]:
        spec = by_sku.get(pool["instanceType"])
        assert spec is not None, f"node pool {pool['name']} ({pool['instanceType']}) has no InstanceType"
        assert quantity(spec.cpu) <= quantity(pool["cpu"]), f"{pool['name']}: cpu request exceeds the node"
        assert quantity(spec.memory) <= quantity(pool["memory"]), f"{pool['name']}: memory request exceeds the node"
        pool_gpus = pool.get("gpu", {}).get("count", 0)
        assert (spec.gpu.count if spec.gpu else 0) == pool_gpus, f"{pool['name']}: GPU count differs"


def copy_catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG, target)
    return target


def test_normalize_check_names_the_files_that_would_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = copy_catalog(tmp_path)
    path = directory / "models" / "phi.yaml"
    original = path.read_text()
    documents = list(yaml.safe_load_all(original))
    del documents[0]["metadata"]["labels"][labels.LICENSE]
    del documents[1]["spec"]["deploymentOptions"]["managedCompute"]["minGpuMemoryGiB"]
    path.write_text("# kept comment\n" + catalog_cli.dump(documents))

    assert main(["catalog", "normalize", "--check", str(directory)]) == 1
    out = capsys.readouterr().out
    assert str(path) in out and "llama.yaml" not in out
    assert path.read_text().startswith("# kept comment\n"), "--check changes nothing"

    assert main(["catalog", "normalize", str(directory)]) == 0
    fixed = path.read_text()
    assert fixed.startswith("# kept comment\n---\n"), "the leading comment survives"
    assert list(yaml.safe_load_all(fixed)) == list(yaml.safe_load_all(original)), "labels and GPU memory restored"
    assert main(["catalog", "normalize", "--check", str(directory)]) == 0


def test_normalize_rejects_an_invalid_model_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = copy_catalog(tmp_path)
    path = directory / "models" / "nixtla.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    documents[0]["spec"]["collection"] = "somewhere"
    path.write_text(catalog_cli.dump(documents))
    assert main(["catalog", "normalize", str(directory)]) == ExitCode.ERROR  # a run-time failure: 1
    assert "nixtla.yaml" in capsys.readouterr().err


def test_spec_models_round_trip_through_the_wire_form(entries: list[files.Entry]) -> None:
    # What the loader parsed is what the cluster would store: no field silently dropped or renamed.
    for entry in entries:
        assert CatalogModelSpec.model_validate(entry.spec.to_wire()) == entry.spec
