"""Stopping a process the test bed started in the background and recorded in a pid file."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def stop_process(pidfile: Path, command: bytes, grace: float, session: bool = False) -> None:
    """Stop the process `pidfile` names if its command line still holds `command` (a pid can be reused):
    SIGTERM, up to `grace` seconds to exit, then SIGKILL, of its whole session when `session`. The pid file goes
    either way."""
    try:
        pid = int(pidfile.read_text())
        if command not in Path(f"/proc/{pid}/cmdline").read_bytes():
            raise ValueError("the pid file names another process")
    except (OSError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
        time.sleep(0.05)
    kill = os.killpg if session else os.kill  # its session: processes it started that outlived it
    with contextlib.suppress(ProcessLookupError, PermissionError):
        kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
