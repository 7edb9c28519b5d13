"""`modelcatalog models import DIR`: a Hugging Face directory written by the test becomes a CatalogModel."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog.catalog import files
from modelcatalog.catalog.importer import count_parameters, first_paragraph, split_front_matter
from modelcatalog.cli.errors import ExitCode
from modelcatalog.cli.main import main
from tests.unit.fake_apiserver import closed_port_url, fake_apiserver, write_kubeconfig

CHAT_CARD = """---
license: apache-2.0
pipeline_tag: text-generation
tags: [conversational, llama]
base_model: acme/tiny-base
language: [en, fr]
---
# Tiny chat

![logo](logo.png)

A tiny chat model
for tests.

## Usage
Run it.
"""
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 4096, "torch_dtype": "bfloat16"}
# 4*8 + 8 + 3*5*7 = 145 parameters across three tensors
TENSORS = {"embed.weight": [4, 8], "norm.weight": [8], "conv.weight": [3, 5, 7]}


def write_safetensors(path: Path, shapes: dict[str, list[int]], dtype: str = "BF16", item_bytes: int = 2) -> None:
    """A real safetensors file: u64 little-endian header length, JSON header, then the (zero) tensor bytes."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = item_bytes
        for dimension in shape:
            size *= dimension
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    write_header_and_data(path, header, offset)


def write_header_and_data(path: Path, header: dict[str, Any], data_bytes: int = 0) -> None:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(data_bytes))


def model_dir(
    root: Path, name: str = "tiny-chat", config: dict[str, Any] | None = None, card: str | None = CHAT_CARD
) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(LLAMA_CONFIG if config is None else config))
    if card is not None:
        (directory / "README.md").write_text(card)
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["models", "import", *(str(a) for a in argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def imported(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> dict[str, Any]:
    code, out, err = run(capsys, *argv)
    assert code == ExitCode.OK, err
    manifest: dict[str, Any] = yaml.safe_load(out)
    return manifest


def test_a_single_safetensors_file_gives_parameters_gpu_memory_labels_and_card_facts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = model_dir(tmp_path)
    write_safetensors(directory / "model.safetensors", TENSORS)
    manifest = imported(capsys, directory, "--publisher", "Acme Labs")
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == "tiny-chat"
    assert spec["collection"] == "huggingface"
    assert spec["publisher"] == "Acme Labs"
    assert spec["tasks"] == ["chat-completion", "text-generation"]
    assert spec["license"] == "apache-2.0"
    assert spec["contextWindow"] == 4096
    assert spec["description"] == "A tiny chat model for tests."
    assert spec["weights"]["parametersBillions"] == 145e-9
    assert spec["weights"]["dtype"] == "bfloat16"
    assert spec["deploymentOptions"]["managedCompute"] == {"runtime": "vllm", "minGpuMemoryGiB": 1}
    labels = manifest["metadata"]["labels"]
    assert labels["modelcatalog.io/collection"] == "huggingface"
    assert labels["modelcatalog.io/publisher"] == "acme-labs"
    assert labels["task.modelcatalog.io/chat-completion"] == "true"
    annotations = manifest["metadata"]["annotations"]
    assert annotations["modelcatalog.io/base-model"] == "acme/tiny-base"
    assert annotations["modelcatalog.io/languages"] == "en,fr"


def test_the_sharded_index_total_size_gives_the_parameter_count_and_gpu_memory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = model_dir(tmp_path, "llama-8b")
    index = {"metadata": {"total_size": 16_000_000_000}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    spec = imported(capsys, directory, "--publisher", "meta")["spec"]
    # 16e9 bytes of bfloat16 = 8e9 parameters; 16e9 bytes * 1.2 overhead = 17.9 GiB, rounded up.
    assert spec["weights"]["parametersBillions"] == 8.0
    assert spec["deploymentOptions"]["managedCompute"]["minGpuMemoryGiB"] == 18


def test_float32_weights_count_four_bytes_per_parameter(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = LLAMA_CONFIG | {"torch_dtype": "float32"}
    directory = model_dir(tmp_path, "fp32", config=config)
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 4_000_000_000}}))
    spec = imported(capsys, directory, "--publisher", "acme")["spec"]
    assert spec["weights"] == spec["weights"] | {"parametersBillions": 1.0, "dtype": "float32"}
    assert spec["deploymentOptions"]["managedCompute"]["minGpuMemoryGiB"] == 5  # 4e9 * 1.2 / 2**30 = 4.47


def test_several_safetensors_shards_without_an_index_are_summed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = model_dir(tmp_path)
    write_safetensors(directory / "model-00001-of-00002.safetensors", {"a": [10, 10]})
    write_safetensors(directory / "model-00002-of-00002.safetensors", {"b": [5, 4]})
    assert imported(capsys, directory, "--publisher", "acme")["spec"]["weights"]["parametersBillions"] == 120e-9


def test_embedding_models_get_text_embeddings_inference(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    card = "---\nlicense: mit\npipeline_tag: sentence-similarity\n---\nSentence embeddings.\n"
    directory = model_dir(
        tmp_path, "bge-small", config={"architectures": ["BertModel"], "torch_dtype": "float32"}, card=card
    )
    write_safetensors(directory / "model.safetensors", {"w": [2, 3]}, dtype="F32", item_bytes=4)
    spec = imported(capsys, directory, "--publisher", "BAAI")["spec"]
    assert spec["tasks"] == ["embeddings"]
    assert spec["deploymentOptions"]["managedCompute"]["runtime"] == "text-embeddings-inference"
    assert "contextWindow" not in spec


def test_a_hugging_face_cache_snapshot_names_repository_revision_and_publisher(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    snapshot = model_dir(tmp_path / "models--acme--tiny-chat" / "snapshots", "0123abcd")
    write_safetensors(snapshot / "model.safetensors", TENSORS)
    manifest = imported(capsys, snapshot)
    assert manifest["metadata"]["name"] == "tiny-chat"
    assert manifest["spec"]["publisher"] == "acme"
    assert manifest["spec"]["weights"]["repository"] == "acme/tiny-chat"
    assert manifest["spec"]["weights"]["revision"] == "0123abcd"


def test_flags_override_what_the_files_say(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    manifest = imported(
        capsys, directory, "--name", "my-chat", "--publisher", "Me", "--license", "MIT",
        "--repository", "me/chat", "--revision", "v1", "--task", "text-generation",
    )  # fmt: skip
    assert manifest["metadata"]["name"] == "my-chat"
    assert manifest["spec"]["license"] == "mit"
    assert manifest["spec"]["tasks"] == ["text-generation"]
    assert manifest["spec"]["weights"]["repository"] == "me/chat"
    assert manifest["spec"]["weights"]["revision"] == "v1"


def test_a_guessed_repository_and_a_missing_parameter_count_are_noted_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, model_dir(tmp_path), "--publisher", "acme")
    assert code == ExitCode.OK
    assert "note: weights.repository guessed as 'acme/tiny-chat'; pass --repository" in err
    assert "no parameter count and no minGpuMemoryGiB" in err
    assert "minGpuMemoryGiB" not in out


def test_json_output_and_output_file_give_a_manifest_the_catalog_loader_accepts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = model_dir(tmp_path)
    write_safetensors(directory / "model.safetensors", TENSORS)
    code, out, _ = run(capsys, directory, "--publisher", "acme", "-o", "json")
    assert code == ExitCode.OK
    as_json = json.loads(out)
    written = tmp_path / "out" / "tiny-chat.yaml"
    written.parent.mkdir()
    code, out, err = run(capsys, directory, "--publisher", "acme", "--output-file", written)
    assert (code, out) == (ExitCode.OK, "")
    assert f"wrote {written}" in err
    assert yaml.safe_load(written.read_text()) == as_json
    entries = files.models(files.load_manifests(written.parent))
    assert [(e.name, e.spec.publisher) for e in entries] == [("tiny-chat", "acme")]


def test_table_output_summarises_what_was_detected(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    write_safetensors(directory / "model.safetensors", TENSORS)
    code, out, _ = run(capsys, directory, "--publisher", "acme", "-o", "table")
    assert code == ExitCode.OK
    assert "Runtime:                vllm" in out
    assert "Context window:         4096" in out


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda d: (d / "config.json").unlink(), "config.json: missing"),
        (lambda d: (d / "config.json").write_text("{not json"), "config.json: not valid JSON"),
        (lambda d: (d / "config.json").write_text("[1, 2]"), "config.json: expected a JSON object"),
        (lambda d: (d / "README.md").write_text("---\npipeline_tag: text-generation\n---\nhi\n"), "no license"),
        (lambda d: (d / "README.md").unlink(), "README.md: missing, so the license is unknown"),
        (lambda d: (d / "README.md").write_text("---\nlicense: [unclosed\n---\n"), "README.md: the front matter"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\x05\x00"), "model.safetensors: too short"),
        (
            lambda d: (d / "model.safetensors").write_bytes(struct.pack("<Q", 10_000) + b"{}"),
            "model.safetensors: header length 10000 is larger than the file",
        ),
        (
            lambda d: (d / "model.safetensors").write_bytes(struct.pack("<Q", 4) + b"{oops"),
            "model.safetensors: the safetensors header is not valid JSON",
        ),
        (
            lambda d: write_header_and_data(d / "model.safetensors", {"w": {"dtype": "F16", "shape": "3x3"}}),
            "tensor 'w' has no valid shape",
        ),
        (
            lambda d: (d / "model.safetensors.index.json").write_text('{"metadata": {}}'),
            "model.safetensors.index.json: metadata.total_size",
        ),
    ],
)
def test_missing_or_invalid_files_exit_invalid_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, prepare: Any, message: str
) -> None:
    directory = model_dir(tmp_path)
    write_safetensors(directory / "model.safetensors", TENSORS)
    prepare(directory)
    code, out, err = run(capsys, directory, "--publisher", "acme")
    assert (code, out) == (ExitCode.INVALID, "")
    assert err.startswith("error: ")
    assert message in err


def test_an_unknown_task_without_pipeline_tag_asks_for_task(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    directory = model_dir(tmp_path, config={"architectures": ["BertModel"]}, card="---\nlicense: mit\n---\n")
    code, _, err = run(capsys, directory, "--publisher", "acme")
    assert code == ExitCode.INVALID
    assert "no pipeline_tag" in err and "pass --task" in err


def test_a_directory_that_does_not_exist_is_invalid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path / "nope")
    assert code == ExitCode.INVALID
    assert "nope: not a directory" in err


def test_apply_sends_a_server_side_apply_as_the_modelcatalog_field_manager(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = model_dir(tmp_path)
    write_safetensors(directory / "model.safetensors", TENSORS)
    path = "/apis/modelcatalog.io/v1alpha1/catalogmodels/tiny-chat"
    with fake_apiserver() as server:
        server.answer("PATCH", path, {"kind": "CatalogModel", "metadata": {"name": "tiny-chat"}})
        code, out, err = run(
            capsys, directory, "--publisher", "acme", "--apply", "--kubeconfig", server.kubeconfig(tmp_path)
        )
    assert code == ExitCode.OK, err
    assert "catalogmodel tiny-chat applied" in out
    [request] = server.requests
    assert (request.method, request.path) == ("PATCH", path)
    assert request.content_type == "application/apply-patch+yaml"
    assert request.query["fieldManager"] == ["modelcatalog"]
    assert request.query["force"] == ["true"]
    assert request.body["spec"]["publisher"] == "acme"
    assert request.body["metadata"]["labels"]["modelcatalog.io/collection"] == "huggingface"


def test_apply_rejected_by_the_cluster_is_invalid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    with fake_apiserver() as server:
        server.answer(
            "PATCH", "/apis/modelcatalog.io/v1alpha1/catalogmodels/tiny-chat", {"message": "spec.x: bad"}, status=422
        )
        code, _, err = run(
            capsys, directory, "--publisher", "acme", "--apply", "--kubeconfig", server.kubeconfig(tmp_path)
        )
    assert code == ExitCode.INVALID
    assert "the cluster rejected CatalogModel tiny-chat" in err and "spec.x: bad" in err


def test_apply_to_an_unreachable_cluster_exits_unavailable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "down.kubeconfig", closed_port_url())
    code, _, err = run(capsys, model_dir(tmp_path), "--publisher", "acme", "--apply", "--kubeconfig", kubeconfig)
    assert code == ExitCode.UNAVAILABLE
    assert "cannot reach the cluster" in err


def test_front_matter_is_only_the_leading_block_between_dashes() -> None:
    assert split_front_matter("---\na: 1\n---\nbody\n---\nmore") == ("a: 1", "body\n---\nmore")
    assert split_front_matter("# no front matter\n---\n") == ("", "# no front matter\n---\n")
    assert split_front_matter("---\nunterminated: yes\n") == ("", "---\nunterminated: yes\n")


def test_the_description_is_the_first_prose_paragraph_cut_at_a_word() -> None:
    markdown = "# Title\n\n[![badge](b.svg)](x)\n\nFirst words here\nand there.\n\nSecond paragraph."
    assert first_paragraph(markdown) == "First words here and there."
    assert first_paragraph("word " * 100, limit=20) == "word word word word…"
    assert first_paragraph("abc defghij", limit=8) == "abc…"


def test_parameter_count_ignores_the_metadata_entry_and_sums_shape_products() -> None:
    header = {"__metadata__": {"format": "pt"}, "a": {"shape": [2, 3]}, "scalar": {"shape": []}, "b": {"shape": [4]}}
    assert count_parameters(header, Path("x.safetensors")) == 6 + 1 + 4
