"""`modelcatalog models list|show|compare|import`: discover, filter, compare and import catalog models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from modelcatalog import clock
from modelcatalog.api.catalog import Collection, LifecycleStage
from modelcatalog.catalog.files import label_value
from modelcatalog.catalog.importer import ImportOptions, ModelImportError, import_model
from modelcatalog.cli import modellist, modelviews, output
from modelcatalog.cli.errors import CliError, ExitCode
from modelcatalog.cli.modellist import Filters
from modelcatalog.cli.modelsource import Catalog, Source, apply_catalog_model, load_catalog
from modelcatalog.cli.modelviews import Card, Comparison
from modelcatalog.cli.output import Format

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(groups: Subparsers) -> None:
    parser = groups.add_parser("models", help="discover, filter, compare and import catalog models")
    commands = parser.add_subparsers(dest="command", required=True)
    register_list(commands)
    register_show(commands)
    register_compare(commands)
    register_import(commands)


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        choices=[s.value for s in Source],
        default=Source.AUTO.value,
        help="cluster: the cluster's CatalogModels; files: the catalog/ manifests; "
        "auto (default): the cluster when a kubeconfig works, else the files (the files when --catalog-dir is given)",
    )
    parser.add_argument(
        "--catalog-dir", type=Path, help="directory of catalog manifests (default: the repo's catalog/)"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    output.add_output_flag(parser)


def register_list(commands: Subparsers) -> None:
    text = "list models; repeat a filter to OR its values, combine filters to AND them"
    command = commands.add_parser("list", help=text, description=text[0].upper() + text[1:] + ".")
    for flag, metavar, text in (
        ("--collection", "NAME", f"collection: {', '.join(Collection)}"),
        ("--publisher", "NAME", "publisher, e.g. Meta or 'Mistral AI' (any case)"),
        ("--task", "TASK", "inference task, e.g. chat-completion, embeddings"),
        ("--fine-tuning-task", "TASK", "task the model can be fine-tuned for"),
        ("--license", "ID", "license id, e.g. mit, apache-2.0, llama3"),
        ("--search", "TEXT", "text in the name, display name or description (any case)"),
    ):
        command.add_argument(flag, action="append", default=[], metavar=metavar, help=text)
    command.add_argument(
        "--deployment-option", action="append", default=[], choices=["managed", "serverless"], help="how it can run"
    )
    command.add_argument(
        "--include-retired", action="store_true", help="also list offers retired today (hidden by default)"
    )
    command.add_argument(
        "--lifecycle",
        action="append",
        default=[],
        type=lifecycle_stage,
        metavar="STAGE",
        help=f"lifecycle stage today of the offer: {', '.join(LifecycleStage)} (any case)",
    )
    add_region_flag(command)
    add_source_flags(command)
    command.set_defaults(run=run_list)


REGION_HELP = (
    "serverless offers in this region only; 'any' for all. Default: the cluster's region (the region key of the "
    "modelcatalog-settings ConfigMap) when reading a cluster; without a cluster, $MODELCATALOG_REGION, else any. "
    "An offer listing no regions is not restricted: it is in every region. Managed compute has no region."
)


def add_region_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", metavar="REGION", help=REGION_HELP)


def region_of(args: argparse.Namespace, catalog: Catalog) -> str | None:
    region: str | None = args.region or catalog.region
    return None if region == modellist.ANY_REGION else region


def lifecycle_stage(text: str) -> str:
    for stage in LifecycleStage:
        if label_value(stage) == label_value(text):
            return stage.value
    raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LifecycleStage)}")


def register_show(commands: Subparsers) -> None:
    command = commands.add_parser("show", help="the model card: weights, requirements, options, prices, benchmarks")
    command.add_argument("name", help="CatalogModel name or display name")
    add_region_flag(command)
    add_source_flags(command)
    command.set_defaults(run=run_show)


def register_compare(commands: Subparsers) -> None:
    command = commands.add_parser("compare", help="models side by side: attributes, prices and benchmarks")
    command.add_argument("names", nargs="+", metavar="NAME", help="two or more CatalogModel names")
    command.add_argument("--chart", type=Path, metavar="PNG", help="also write a bar chart of benchmarks and prices")
    add_source_flags(command)
    command.set_defaults(run=run_compare)


def register_import(commands: Subparsers) -> None:
    command = commands.add_parser("import", help="a CatalogModel manifest from a local Hugging Face model directory")
    command.add_argument("directory", type=Path, help="directory with config.json, README.md, *.safetensors")
    command.add_argument("--name", help="CatalogModel name (default: from the repository or directory name)")
    command.add_argument("--publisher", help="publisher (default: the repository's organisation)")
    command.add_argument("--license", help="license id (default: the model card's license)")
    command.add_argument("--repository", help="Hub repository ORG/NAME the weights come from")
    command.add_argument("--revision", help="pinned commit or tag (default: the cache snapshot, else main)")
    command.add_argument("--task", action="append", default=[], help="inference task (default: from pipeline_tag)")
    command.add_argument("--output-file", type=Path, help="write the manifest here instead of stdout")
    command.add_argument("--apply", action="store_true", help="create or update it in the cluster (server-side apply)")
    command.add_argument("--kubeconfig", help="kubeconfig for --apply (default: $KUBECONFIG, then ~/.kube/config)")
    output.add_output_flag(command, default=Format.YAML, formats=(Format.TABLE, Format.JSON, Format.YAML))
    command.set_defaults(run=run_import)


def run_list(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.source, args.catalog_dir, args.kubeconfig)
    today = clock.today()
    region = region_of(args, catalog)
    filters = Filters(
        collections=args.collection,
        publishers=args.publisher,
        tasks=args.task,
        fine_tuning_tasks=args.fine_tuning_task,
        deployment_options=args.deployment_option,
        licenses=args.license,
        lifecycles=args.lifecycle,
        search=args.search,
        region=region,
        include_retired=args.include_retired,
    )
    modellist.check(catalog.models, filters, region_given=args.region is not None)
    selection = modellist.select(catalog.models, filters, today)
    listing = modellist.listing(selection, today, region)
    text = output.render_list(listing, args.output, getattr(args, "no_headers", False))
    if text:
        print(text)
    if not selection.entries and args.output not in output.STRUCTURED:
        print(f"no models match (of {len(catalog.models)} in {catalog.origin})", file=sys.stderr)
    for note in listing.notes:
        print(note, file=sys.stderr)
    return ExitCode.OK


def run_show(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.source, args.catalog_dir, args.kubeconfig)
    entry = modelviews.find(catalog.models, args.name)
    model_card = modelviews.card(entry, catalog.instance_types, clock.today(), region_of(args, catalog))
    print(output.render_object(model_card.data, modellist.RESOURCE, args.output, render_card(model_card)))
    return ExitCode.OK


def render_card(model_card: Card) -> str:
    sections = [model_card.title, "=" * len(model_card.title)]
    if model_card.description:
        sections.append(model_card.description)
    sections += ["", output.fields(model_card.facts), "", "Deployment options:"]
    if model_card.managed:
        sections += ["  Managed compute:", output.fields(model_card.managed, indent="    ")]
    if model_card.serverless:
        sections += ["  Serverless API:", output.fields(model_card.serverless, indent="    ")]
    sections += ["", "Benchmarks:"]
    if model_card.benchmarks:
        sections.append(indent(output.table(("BENCHMARK", "KIND", "VALUE", "SOURCE"), model_card.benchmarks)))
    else:
        sections.append("  none published")
    if model_card.managed is not None:
        sections += ["", "Instance types that fit:"]
        if model_card.instance_types:
            sections.append(indent(output.table(modelviews.INSTANCE_TYPE_HEADERS, model_card.instance_types)))
        else:
            sections.append("  none of the known InstanceTypes has enough GPU memory")
    return "\n".join(sections)


def indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


COMPARE_CELL_WIDTH = 48  # long lists (regions) would push the other models off screen; -o yaml has them all


def run_compare(args: argparse.Namespace) -> int:
    if len(args.names) < 2:
        raise CliError("compare needs at least two model names", ExitCode.USAGE)
    catalog = load_catalog(args.source, args.catalog_dir, args.kubeconfig)
    entries = [modelviews.find(catalog.models, name) for name in args.names]
    comparison = modelviews.compare(entries, clock.today())
    if args.output in output.STRUCTURED:
        print(output.structured(comparison.as_dict(), args.output))
    elif args.output == Format.NAME:
        print("\n".join(f"{modellist.RESOURCE}/{name}" for name in comparison.models))
    else:
        rows = modelviews.comparison_rows(comparison)
        headers = ["ATTRIBUTE", *comparison.models]
        width = None if args.output == Format.WIDE else COMPARE_CELL_WIDTH
        print(output.table(headers, rows, max_width=width, headers_shown=not args.no_headers))
    if args.chart:
        write_chart(comparison, args.chart)
    return ExitCode.OK


def write_chart(comparison: Comparison, path: Path) -> None:
    if not comparison.charted():
        raise CliError("nothing to chart: none of the models has benchmarks or prices", ExitCode.INVALID)
    from modelcatalog.cli import charts  # matplotlib is slow to import; only --chart needs it

    try:
        charts.write_chart(comparison, path)
    except OSError as error:
        raise CliError(f"cannot write {path}: {error}") from error
    print(f"wrote chart {path}", file=sys.stderr)


def run_import(args: argparse.Namespace) -> int:
    options = ImportOptions(
        name=args.name,
        publisher=args.publisher,
        license=args.license,
        repository=args.repository,
        revision=args.revision,
        tasks=args.task,
    )
    try:
        imported = import_model(args.directory, options)
    except ModelImportError as error:
        raise CliError(str(error), ExitCode.INVALID) from error
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    manifest = imported.manifest
    text = output.structured(manifest, Format.JSON if args.output == Format.JSON else Format.YAML)
    if args.output_file:
        args.output_file.write_text(text + "\n")
        print(f"wrote {args.output_file}", file=sys.stderr)
    elif args.output == Format.TABLE:
        print(render_import_summary(manifest))
    else:
        print(text)
    if args.apply:
        apply_catalog_model(manifest, args.kubeconfig)
        print(f"catalogmodel {manifest['metadata']['name']} applied (server-side, field manager modelcatalog)")
    return ExitCode.OK


def render_import_summary(manifest: dict[str, object]) -> str:
    spec = manifest["spec"]
    metadata = manifest["metadata"]
    assert isinstance(spec, dict) and isinstance(metadata, dict)
    weights = spec.get("weights", {})
    managed = spec["deploymentOptions"]["managedCompute"]
    return output.fields(
        [
            ("Name", metadata["name"]),
            ("Display name", spec["displayName"]),
            ("Publisher", spec["publisher"]),
            ("Tasks", spec["tasks"]),
            ("License", spec["license"]),
            ("Weights", f"{weights.get('repository')}@{weights.get('revision')} ({weights.get('dtype')})"),
            ("Parameters (billions)", weights.get("parametersBillions")),
            ("Context window", spec.get("contextWindow")),
            ("Runtime", managed.get("runtime")),
            ("Min GPU memory (GiB)", managed.get("minGpuMemoryGiB")),
        ]
    )
