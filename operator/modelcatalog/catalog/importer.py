"""Turn a local Hugging Face model directory into a huggingface-collection CatalogModel manifest.

Reads config.json (architecture, context length, dtype), the model card's YAML front matter (license,
pipeline_tag, tags, base_model, language) and the safetensors files (parameter count), without loading
any weights: a safetensors file starts with a little-endian u64 header length and a JSON header.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelcatalog import API_VERSION, GROUP
from modelcatalog.api.catalog import BYTES_PER_PARAMETER, URL, DType, Runtime
from modelcatalog.catalog import files
from modelcatalog.catalog.files import CatalogError, label_value

CONFIG = "config.json"
README = "README.md"
INDEX = "model.safetensors.index.json"
HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors format's own limit

EMBEDDING_PIPELINES = ("feature-extraction", "sentence-similarity")
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length", "n_ctx")
PARAMETER_KEYS = ("num_parameters", "num_params", "n_params")

BASE_MODEL_ANNOTATION = f"{GROUP}/base-model"
LANGUAGES_ANNOTATION = f"{GROUP}/languages"
ARCHITECTURES_ANNOTATION = f"{GROUP}/architectures"


class ModelImportError(ValueError):
    """A file of the model directory is missing or invalid; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ImportOptions:
    """What the user says on the command line; each overrides what the files say."""

    name: str | None = None
    publisher: str | None = None
    license: str | None = None
    repository: str | None = None
    revision: str | None = None
    tasks: Sequence[str] = ()


@dataclass(frozen=True)
class Imported:
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # guesses the user should check


def import_model(directory: Path, options: ImportOptions = ImportOptions()) -> Imported:
    if not directory.is_dir():
        raise ModelImportError(f"{directory}: not a directory")
    notes: list[str] = []
    config = read_json(directory / CONFIG)
    card = read_card(directory / README)
    repository, revision = weights_source(directory, options, card, notes)
    dtype = weights_dtype(config, directory, notes)
    parameters = parameter_count(directory, config, dtype, notes)
    pipeline_tag = str(card.front_matter.get("pipeline_tag") or "")
    display_name = repository.rsplit("/", 1)[-1]
    spec: dict[str, Any] = {
        "displayName": display_name,
        "description": card.summary,
        "publisher": publisher(options, repository, directory),
        "collection": "huggingface",
        "tasks": list(options.tasks) or tasks_for(pipeline_tag, card.tags, config, directory),
        "license": license_id(options, card, directory),
        "weights": {"repository": repository, "revision": revision, "dtype": dtype},
        "deploymentOptions": {"managedCompute": {"runtime": runtime_for(pipeline_tag, options.tasks)}},
    }
    if parameters:
        spec["weights"]["parametersBillions"] = float(f"{parameters / 1e9:.4g}")
    if url := license_url(card):
        spec["licenseUrl"] = url
    if context := context_window(config):
        spec["contextWindow"] = context
    name = options.name or label_value(display_name)
    manifest: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "CatalogModel",
        "metadata": {"name": name, "annotations": extra_annotations(card, config)},
        "spec": spec,
    }
    if not manifest["metadata"]["annotations"]:
        del manifest["metadata"]["annotations"]
    try:
        return Imported(files.normalize(manifest), notes)
    except CatalogError as error:
        raise ModelImportError(f"{directory}: the imported model does not validate: {error}") from error


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelImportError(f"{path}: missing (a Hugging Face model directory has one)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelImportError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ModelImportError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


@dataclass(frozen=True)
class ModelCard:
    path: Path
    exists: bool
    front_matter: dict[str, Any]
    summary: str

    @property
    def tags(self) -> list[str]:
        return [str(t) for t in as_list(self.front_matter.get("tags"))]


def read_card(path: Path) -> ModelCard:
    if not path.is_file():
        return ModelCard(path, False, {}, "")
    text = path.read_text(errors="replace")
    matter, body = split_front_matter(text)
    try:
        front_matter = yaml.safe_load(matter) if matter else {}
    except yaml.YAMLError as error:
        raise ModelImportError(f"{path}: the front matter between the --- lines is not valid YAML: {error}") from error
    if not isinstance(front_matter, dict):
        raise ModelImportError(f"{path}: the front matter between the --- lines is not a YAML mapping")
    return ModelCard(path, True, front_matter, first_paragraph(body))


def split_front_matter(text: str) -> tuple[str, str]:
    """(the YAML between the leading `---` lines, the rest); no front matter gives ('', text)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return "", text
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "\n".join(lines[1:end]), "\n".join(lines[end + 1 :])
    return "", text


def first_paragraph(markdown: str, limit: int = 300) -> str:
    """The first prose paragraph: skips headings, images, HTML, tables, code and link-only lines."""
    paragraph: list[str] = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped:
            if paragraph:
                break
            continue
        if stripped.startswith(("#", "!", "<", "|", "```", "[", ">", "-", "*")) and not paragraph:
            continue
        paragraph.append(stripped)
    text = " ".join(paragraph)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]  # drop the word that was cut through
    return cut.rstrip() + "…"


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def weights_source(directory: Path, options: ImportOptions, card: ModelCard, notes: list[str]) -> tuple[str, str]:
    """Repository and revision: from the options, else from a Hugging Face cache path
    (.../models--ORG--NAME/snapshots/REVISION), else a guess from the directory name."""
    cached = cache_location(directory.resolve())
    repository = options.repository or (cached[0] if cached else None)
    revision = options.revision or (cached[1] if cached else "main")
    if repository is None:
        owner = label_value(options.publisher) if options.publisher else None
        repository = f"{owner}/{directory.resolve().name}" if owner else directory.resolve().name
        notes.append(f"weights.repository guessed as {repository!r}; pass --repository ORG/NAME to set it")
    return repository, revision


def cache_location(directory: Path) -> tuple[str, str] | None:
    parts = directory.parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3].removeprefix("models--").replace("--", "/"), parts[-1]
    return None


def publisher(options: ImportOptions, repository: str, directory: Path) -> str:
    if options.publisher:
        return options.publisher
    if "/" in repository:
        return repository.split("/", 1)[0]
    raise ModelImportError(f"{directory}: cannot tell the publisher (no ORG/ in the repository); pass --publisher")


def license_id(options: ImportOptions, card: ModelCard, directory: Path) -> str:
    if options.license:
        return label_value(options.license)
    if not card.exists:
        raise ModelImportError(f"{card.path}: missing, so the license is unknown; pass --license")
    value = card.front_matter.get("license")
    if value == "other":
        value = card.front_matter.get("license_name") or value
    if not value:
        raise ModelImportError(f"{card.path}: the front matter has no license; pass --license")
    return label_value(str(as_list(value)[0]))


def license_url(card: ModelCard) -> str | None:
    link = card.front_matter.get("license_link")
    return str(link) if link and re.match(URL, str(link)) else None


def tasks_for(pipeline_tag: str, tags: list[str], config: dict[str, Any], directory: Path) -> list[str]:
    if pipeline_tag in EMBEDDING_PIPELINES:
        return ["embeddings"]
    if pipeline_tag == "text-generation" or (not pipeline_tag and is_causal_lm(config)):
        return ["chat-completion", "text-generation"] if "conversational" in tags else ["text-generation"]
    if pipeline_tag:
        return [label_value(pipeline_tag)]
    raise ModelImportError(
        f"{directory / README}: no pipeline_tag in the front matter, and {CONFIG}'s architectures "
        f"{config.get('architectures')} do not tell the task; pass --task"
    )


def is_causal_lm(config: dict[str, Any]) -> bool:
    return any(str(a).endswith("ForCausalLM") for a in as_list(config.get("architectures")))


def runtime_for(pipeline_tag: str, tasks: Sequence[str]) -> str:
    embeddings = pipeline_tag in EMBEDDING_PIPELINES or (bool(tasks) and set(tasks) <= {"embeddings"})
    return (Runtime.TEXT_EMBEDDINGS_INFERENCE if embeddings else Runtime.VLLM).value


def text_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config and, for multimodal models, its nested text model config."""
    nested = config.get("text_config")
    return [config, nested] if isinstance(nested, dict) else [config]


def context_window(config: dict[str, Any]) -> int | None:
    for section in text_configs(config):
        for key in CONTEXT_KEYS:
            value = section.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def weights_dtype(config: dict[str, Any], directory: Path, notes: list[str]) -> str:
    for section in text_configs(config):
        declared = section.get("torch_dtype") or section.get("dtype")
        if declared in BYTES_PER_PARAMETER:
            return str(declared)
        if declared:
            notes.append(f"{directory / CONFIG}: torch_dtype {declared!r} is not one of {', '.join(DType)}")
    notes.append(f"{directory / CONFIG}: no torch_dtype; assuming {DType.BFLOAT16}")
    return DType.BFLOAT16.value


def parameter_count(directory: Path, config: dict[str, Any], dtype: str, notes: list[str]) -> int | None:
    """From config.json when it says, else the safetensors index's total size, else the tensor shapes."""
    for key in PARAMETER_KEYS:
        if isinstance(config.get(key), int) and config[key] > 0:
            return int(config[key])
    if (directory / INDEX).is_file():
        return parameters_from_index(directory / INDEX, dtype)
    shards = sorted(directory.glob("*.safetensors"))
    if shards:
        return sum(count_parameters(safetensors_header(shard), shard) for shard in shards)
    notes.append(f"{directory}: no {INDEX} or *.safetensors file, so no parameter count and no minGpuMemoryGiB")
    return None


def parameters_from_index(path: Path, dtype: str) -> int:
    total_size = read_json(path).get("metadata", {}).get("total_size")
    if not isinstance(total_size, int) or isinstance(total_size, bool) or total_size <= 0:
        raise ModelImportError(f"{path}: metadata.total_size (the weights' size in bytes) is missing or not a number")
    return round(total_size / BYTES_PER_PARAMETER[dtype])


def safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        prefix = file.read(HEADER_LENGTH_BYTES)
        if len(prefix) < HEADER_LENGTH_BYTES:
            raise ModelImportError(f"{path}: too short for a safetensors file (no 8-byte header length)")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, path.stat().st_size - HEADER_LENGTH_BYTES):
            raise ModelImportError(f"{path}: header length {length} is larger than the file; not a safetensors file")
        raw = file.read(length)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelImportError(f"{path}: the safetensors header is not valid JSON: {error}") from error
    if not isinstance(header, dict):
        raise ModelImportError(f"{path}: the safetensors header is not a JSON object")
    return header


def count_parameters(header: dict[str, Any], path: Path) -> int:
    total = 0
    for tensor, info in header.items():
        if tensor == "__metadata__":
            continue
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ModelImportError(f"{path}: tensor {tensor!r} has no valid shape in the safetensors header")
        total += math.prod(shape)
    return total


def extra_annotations(card: ModelCard, config: dict[str, Any]) -> dict[str, str]:
    """What the files say that the spec has no field for, kept for people reading the object."""
    found = {
        BASE_MODEL_ANNOTATION: ",".join(str(m) for m in as_list(card.front_matter.get("base_model"))),
        LANGUAGES_ANNOTATION: ",".join(str(lang) for lang in as_list(card.front_matter.get("language"))),
        ARCHITECTURES_ANNOTATION: ",".join(str(a) for a in as_list(config.get("architectures"))),
    }
    return {key: value for key, value in found.items() if value}
