"""The `modelcatalog` command: browse the catalog, run the operator, drive the local cluster."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelcatalog.cli import catalog, cluster, demo, models, operator
from modelcatalog.cli.errors import CliError, ExitCode

COMMAND_GROUPS = (cluster, models, catalog, operator, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelcatalog", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for module in COMMAND_GROUPS:
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return result


if __name__ == "__main__":
    sys.exit(main())
