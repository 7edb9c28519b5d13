"""`modelcatalog catalog normalize [--check] [DIR]`: keep the catalog manifests in the form `make catalog` writes.

Every YAML file under DIR that holds a CatalogModel or InstanceType is rewritten through `files.normalize` (derived
labels and minGpuMemoryGiB) with the prices of the price list (prices.yaml) written in, in one canonical layout: the
file's leading comment block, then its documents in their order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from modelcatalog.catalog import files, prices
from modelcatalog.cli.errors import CliError, ExitCode


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser("catalog", help="maintain the catalog manifests (catalog/)")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "normalize", help="write the derived labels and minGpuMemoryGiB into every CatalogModel manifest"
    )
    command.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 and name the files that would change"
    )
    command.add_argument(
        "--prices",
        type=Path,
        default=prices.PRICES_FILE,
        metavar="FILE",
        help=f"the price list written into the manifests (default: {prices.PRICES_FILE}; absent: no prices)",
    )
    command.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=files.CATALOG_DIR,
        metavar="DIR",
        help=f"directory searched for *.yaml, recursively (default: {files.CATALOG_DIR})",
    )
    command.set_defaults(run=normalize)


def normalize(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        raise CliError(f"{directory}: no such directory", ExitCode.NOT_FOUND)
    paths = sorted(directory.rglob("*.yaml"))
    try:
        price_list = prices.load(args.prices)
        documents = [d for path in paths for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        prices.check_names(price_list, names_of(documents, "CatalogModel"), names_of(documents, "InstanceType"))
    except (prices.PricesError, yaml.YAMLError, KeyError) as error:
        raise CliError(str(error), ExitCode.INVALID) from error
    changed = []
    for path in paths:
        text = path.read_text()
        try:
            new = normalized_text(text, where=str(path), price_list=price_list)
        except (files.CatalogError, prices.PricesError, yaml.YAMLError) as error:
            raise CliError(str(error), ExitCode.INVALID) from error
        if new is None or new == text:
            continue
        changed.append(path)
        if not args.check:
            path.write_text(new)
    if args.check:
        if changed:
            for path in changed:
                print(f"would change: {path}")
            print("run `make catalog` (modelcatalog catalog normalize) and commit the result", file=sys.stderr)
            return ExitCode.ERROR
        print(f"{directory}: {len(paths)} files, all normalised")
        return ExitCode.OK
    for path in changed:
        print(f"normalised: {path}")
    print(f"{directory}: {len(paths)} files, {len(changed)} changed")
    return ExitCode.OK


def names_of(documents: list[dict[str, Any]], kind: str) -> set[str]:
    return {str(d.get("metadata", {}).get("name")) for d in documents if d.get("kind") == kind}


def normalized_text(text: str, where: str = "", price_list: prices.PriceList | None = None) -> str | None:
    """The file as `normalize` writes it, or None when it holds no catalog object (such files are left alone)."""
    documents = [document for document in yaml.safe_load_all(text) if document is not None]
    if not any(_is_catalog_object(document) for document in documents):
        return None
    for document in documents:
        if _is_catalog_object(document) and price_list is not None:
            prices.apply(document, price_list)
        if _is_catalog_object(document):
            try:
                files.normalize(document)
            except files.CatalogError as error:
                raise files.CatalogError(f"{where}: {error}" if where else str(error)) from error
    return leading_comments(text) + dump(documents)


def dump(documents: list[Any]) -> str:
    """The canonical layout: block style, keys in their given order, one `---` before every document."""
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True, width=120, allow_unicode=True)


def leading_comments(text: str) -> str:
    """The comment lines the file starts with (blank lines among them dropped), each ending in a newline."""
    kept = []
    for line in text.splitlines():
        if line.startswith("#"):
            kept.append(line.rstrip() + "\n")
        elif line.strip():
            break
    return "".join(kept)


def _is_catalog_object(document: object) -> bool:
    return isinstance(document, dict) and document.get("kind") in ("CatalogModel", "InstanceType")
