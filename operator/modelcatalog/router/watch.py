"""List+watch of the router's own namespace: ModelDeployments, ServerlessEndpoints, endpoint key Secrets,
model-server Pods."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from modelcatalog import API_VERSION, labels
from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.router.settings import RouterSettings
from modelcatalog.router.state import (
    ClusterState,
    deployment_from_object,
    keys_from_secret,
    pod_from_object,
    serverless_from_object,
)

log = logging.getLogger(__name__)

WATCH_SECONDS = 300  # the server ends each watch after this; the next one resumes from the last resourceVersion
READ_TIMEOUT_SECONDS = WATCH_SECONDS + 30
RETRY_SECONDS = 2.0
GONE = 410


class Synced(Protocol):
    synced: bool


S = TypeVar("S", bound=Synced)  # the state a source fills: the router's ClusterState, the gateway's GatewayState


@dataclass(frozen=True)
class Source(Generic[S]):
    """One watched collection and how its objects update the state."""

    name: str
    path: str
    selector: str | None
    upsert: Callable[[S, dict[str, Any]], None]
    delete: Callable[[S, dict[str, Any]], None]
    reset: Callable[[S], None]


def _upsert_deployment(state: ClusterState, obj: dict[str, Any]) -> None:
    state.set_deployment(deployment_from_object(obj))


def _upsert_serverless(state: ClusterState, obj: dict[str, Any]) -> None:
    found = serverless_from_object(obj)
    if found is None:
        state.remove_serverless(obj["metadata"]["name"])
    else:
        state.set_serverless(found)


def _upsert_secret(state: ClusterState, obj: dict[str, Any]) -> None:
    state.set_keys(*keys_from_secret(obj))


def _delete_secret(state: ClusterState, obj: dict[str, Any]) -> None:
    state.set_keys(keys_from_secret(obj)[0], None)


def _upsert_pod(state: ClusterState, obj: dict[str, Any]) -> None:
    pod = pod_from_object(obj)
    if pod is None:
        state.remove_pod(obj["metadata"]["name"])
    else:
        state.set_pod(pod)


def sources(namespace: str) -> list[Source[ClusterState]]:
    return [
        Source(
            "modeldeployments",
            f"/apis/{API_VERSION}/namespaces/{namespace}/modeldeployments",
            None,
            _upsert_deployment,
            lambda s, o: s.remove_deployment(o["metadata"]["name"]),
            lambda s: s.deployments.clear(),
        ),
        Source(
            "serverlessendpoints",
            f"/apis/{API_VERSION}/namespaces/{namespace}/serverlessendpoints",
            None,
            _upsert_serverless,
            lambda s, o: s.remove_serverless(o["metadata"]["name"]),
            lambda s: s.serverless.clear(),
        ),
        Source(
            "secrets",
            f"/api/v1/namespaces/{namespace}/secrets",
            f"{labels.OWNER_KIND}=Endpoint",
            _upsert_secret,
            _delete_secret,
            lambda s: s.keys.clear(),
        ),
        Source(
            "pods",
            f"/api/v1/namespaces/{namespace}/pods",
            f"{labels.COMPONENT}={labels.MODEL_SERVER}",
            _upsert_pod,
            lambda s, o: s.remove_pod(o["metadata"]["name"]),
            _clear_pods,
        ),
    ]


def _clear_pods(state: ClusterState) -> None:
    for name in list(state.pods):
        state.remove_pod(name)


async def list_into(client: KubeClient, source: Source[S], state: S) -> str:
    """Replace the source's part of the state with a fresh list; returns its resourceVersion."""
    params = {"labelSelector": source.selector} if source.selector else {}
    listed = await client.get_path(source.path, params) or {}
    source.reset(state)
    for item in listed.get("items") or []:
        source.upsert(state, item)
    return str((listed.get("metadata") or {}).get("resourceVersion", ""))


async def follow(client: KubeClient, source: Source[S], state: S, version: str) -> None:
    """Watch from `version` until the server says it is too old (410), then list again; forever."""
    while True:
        params = {"resourceVersion": version, "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_SECONDS)}
        if source.selector:
            params["labelSelector"] = source.selector
        try:
            async for event in client.watch(source.path, params, READ_TIMEOUT_SECONDS):
                version = apply_event(source, state, event) or version
        except ApiError as error:
            if error.status != GONE:
                log.warning("watch of %s failed: %s", source.name, error)
                await asyncio.sleep(RETRY_SECONDS)
            version = await _relist(client, source, state)
        except Expired:
            version = await _relist(client, source, state)
        except (OSError, TimeoutError, ValueError) as error:
            log.warning("watch of %s broke (%s); resuming", source.name, type(error).__name__)
            await asyncio.sleep(RETRY_SECONDS)


class Expired(Exception):
    """The watch's resourceVersion is too old: list again."""


async def _relist(client: KubeClient, source: Source[S], state: S) -> str:
    while True:
        try:
            return await list_into(client, source, state)
        except (ApiError, OSError, TimeoutError) as error:
            log.warning("list of %s failed: %s", source.name, error)
            await asyncio.sleep(RETRY_SECONDS)


def apply_event(source: Source[S], state: S, event: dict[str, Any]) -> str | None:
    """Apply one watch event; returns the resourceVersion to resume from."""
    kind, obj = event.get("type"), event.get("object") or {}
    if kind == "ERROR":
        if obj.get("code") == GONE:
            raise Expired()
        raise ApiError(int(obj.get("code") or 500), str(obj.get("reason", "")), str(obj.get("message", "")))
    if kind in ("ADDED", "MODIFIED"):
        source.upsert(state, obj)
    elif kind == "DELETED":
        source.delete(state, obj)
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


async def run(client: KubeClient, state: ClusterState, namespace: str) -> None:
    await run_sources(client, state, sources(namespace), f"namespace {namespace}")


async def run_sources(client: KubeClient, state: S, watched: list[Source[S]], where: str) -> None:
    """List everything (then the state is `synced`: /readyz answers ok), then follow each watch."""
    versions = [await _relist(client, source, state) for source in watched]
    state.synced = True
    log.info("cluster state listed in %s", where)
    await asyncio.gather(*(follow(client, s, state, v) for s, v in zip(watched, versions, strict=True)))


def kube_client(settings: RouterSettings) -> KubeClient:
    """From MODELCATALOG_KUBECONFIG, else in-cluster (KUBERNETES_SERVICE_HOST/PORT, token and CA files)."""
    if settings.kubeconfig:
        return KubeClient.from_config(settings.kubeconfig)
    if not settings.api_host:
        raise SystemExit("set MODELCATALOG_KUBECONFIG, KUBERNETES_SERVICE_HOST or MODELCATALOG_ROUTER_CONFIG")
    host = f"[{settings.api_host}]" if ":" in settings.api_host else settings.api_host
    context = ssl.create_default_context(cafile=str(settings.ca_file))
    return KubeClient(f"https://{host}:{settings.api_port}", context, None, settings.token_file)
