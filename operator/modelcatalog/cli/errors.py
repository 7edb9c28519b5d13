"""Errors and exit codes a script can rely on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # anything unexpected
    USAGE = 2  # argparse's own code for bad arguments
    NOT_FOUND = 3  # a named model or object does not exist
    INVALID = 4  # an input file or object does not validate
    UNAVAILABLE = 5  # the cluster cannot be reached or started
    INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code
