"""The `modelcatalog` command (also `kubectl modelcatalog`): browse the catalog, see deployments and their cost,
run the operator, drive the local cluster."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence

from modelcatalog.cli import catalog, cluster, completion, demo, deployments, models, operator
from modelcatalog.cli.errors import EPILOG, CliError, ExitCode

COMMAND_GROUPS = (cluster, models, deployments, catalog, operator, demo, completion)


def build_parser(prog: str = "modelcatalog") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for module in COMMAND_GROUPS:
        module.register(groups)
    parser.set_defaults(root_parser=parser)  # completion walks the whole tree
    for each in walk(parser):  # one exit-code rule, in every --help
        each.epilog = EPILOG
        each.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subcommand's parser below it, each once."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from walk(sub)


def main(argv: Sequence[str] | None = None, prog: str = "modelcatalog") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        result: int = args.run(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return result


def kubectl_plugin() -> int:
    """`kubectl modelcatalog ...`: kubectl runs the `kubectl-modelcatalog` script found on PATH."""
    return main(prog="kubectl modelcatalog")


if __name__ == "__main__":
    sys.exit(main())
