"""Errors and the one exit-code rule of every command (EPILOG puts it in each --help)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # failed at run time
    USAGE = 2  # argparse's own code for bad arguments; also an unknown filter value
    INTERRUPTED = 130
    # Kinds of run-time failure, kept apart at the call sites for the reader; the code is the same.
    NOT_FOUND = 1  # a named model or object does not exist
    INVALID = 1  # an input file or object does not validate
    UNAVAILABLE = 1  # the cluster cannot be reached or started


EPILOG = """exit codes (every command):
  0  success; an empty list is a success
  1  failure at run time: a named model or object not found, an invalid file, the cluster unreachable
  2  usage error: an unknown command, flag or value; the message names the valid choices"""


class CliError(Exception):
    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def usage_error(flag: str, value: str, valid: list[str]) -> CliError:
    """An unknown filter value: exit 2 with the valid choices."""
    return CliError(f"unknown {flag} value {value!r}; valid: {', '.join(valid) or '(none in this catalog)'}",
                    ExitCode.USAGE)  # fmt: skip
