"""`python -m modelcatalog.router [--mode router|gateway] [--config FILE] [--host H] [--port P]`: run the workspace
router, or the serverless gateway (router/gateway.py).

With a config file (or MODELCATALOG_ROUTER_CONFIG) the router serves the endpoints listed there (SIGHUP
reloads it); otherwise it watches its namespace in the cluster. TLS when MODELCATALOG_ROUTER_TLS_CERT
and MODELCATALOG_ROUTER_TLS_KEY name files. The gateway watches every namespace's ServerlessEndpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from modelcatalog.router import gateway, static, watch
from modelcatalog.router.app import Router, build_app
from modelcatalog.router.auth import Reviewer
from modelcatalog.router.kubeauth import KubeReviewer
from modelcatalog.router.settings import GATEWAY, MODES, RouterSettings
from modelcatalog.router.state import ClusterState

log = logging.getLogger("modelcatalog.router")


def parse_settings(argv: list[str] | None = None) -> RouterSettings:
    parser = argparse.ArgumentParser(prog="python -m modelcatalog.router", description=__doc__)
    parser.add_argument("--mode", choices=MODES, help="router (default) or gateway (the serverless gateway)")
    parser.add_argument("--config", type=Path, help="static YAML config (see router/static.py)")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    settings = RouterSettings.from_env()
    overrides = {"config_file": args.config, "host": args.host, "port": args.port, "mode": args.mode}
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def tls_context(settings: RouterSettings) -> ssl.SSLContext | None:
    if not (settings.tls_cert and settings.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def serve(settings: RouterSettings) -> None:
    if settings.mode == GATEWAY:
        await serve_app(settings, *gateway.start(settings))
        return
    state = ClusterState()
    reviewer: Reviewer | None = None
    background: asyncio.Task[None] | None = None
    if settings.config_file:
        config_file = settings.config_file
        static.load(config_file, state)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: static.load(config_file, state))
    else:
        client = watch.kube_client(settings)
        reviewer = KubeReviewer(client)
        background = asyncio.create_task(watch.run(client, state, settings.namespace))
    await serve_app(settings, build_app(Router(state, settings, reviewer)), background)


async def serve_app(settings: RouterSettings, app: web.Application, background: asyncio.Task[None] | None) -> None:
    """Serve until SIGTERM or SIGINT, or until the background watch ends (it only ends by failing)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls_context(settings), backlog=1024)
    await site.start()
    log.info("%s listening on %s:%s (namespace %s)", settings.mode, settings.host, settings.port, settings.namespace)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    waits = [asyncio.create_task(stop.wait())] + ([background] if background else [])
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    await runner.cleanup()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where installed, the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = parse_settings(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve(settings))


if __name__ == "__main__":
    main()
