"""An asyncio Kubernetes client on aiohttp: get, list, server-side apply, status patches, delete, events."""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes

from modelcatalog.api.base import now
from modelcatalog.kube.resources import ResourceInfo, resource
from modelcatalog.metrics import API_WRITES

FIELD_MANAGER = "modelcatalog"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER_TOKEN = SERVICE_ACCOUNT_DIR / "token"
TOKEN_REFRESH_SECONDS = 60
WATCH_BUFFER_BYTES = 4 * 1024 * 1024  # one watch event (one object) must fit


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class InCluster:
    """How a process in a pod reaches the API server: KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount's
    token and CA files (MODELCATALOG_TOKEN_FILE / MODELCATALOG_CA_FILE when set: a pod runner or a
    projected volume mounted elsewhere; else the kubelet's fixed paths)."""

    server: str
    token_file: Path
    ca_file: Path
    namespace: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> InCluster | None:
        """None outside a pod (no KUBERNETES_SERVICE_HOST, or no token file)."""
        env = os.environ if env is None else env
        host = env.get("KUBERNETES_SERVICE_HOST")
        token_file = Path(env.get("MODELCATALOG_TOKEN_FILE") or IN_CLUSTER_TOKEN)
        if not host or not token_file.exists():
            return None
        host = f"[{host}]" if ":" in host else host
        namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
        namespace = env.get("MODELCATALOG_NAMESPACE") or (
            namespace_file.read_text().strip() if namespace_file.exists() else None
        )
        return cls(
            server=f"https://{host}:{env.get('KUBERNETES_SERVICE_PORT', '443')}",
            token_file=token_file,
            ca_file=Path(env.get("MODELCATALOG_CA_FILE") or SERVICE_ACCOUNT_DIR / "ca.crt"),
            namespace=namespace or None,
        )

    def token(self) -> str:
        """Read each time: the kubelet rotates a projected token (hourly by default)."""
        return self.token_file.read_text().strip()


class KubeClient:
    def __init__(self, server: str, ssl_context: ssl.SSLContext | bool, token: str | None, token_file: Path | None):
        self.server = server.rstrip("/")
        self._ssl = ssl_context
        self._token = token
        self._token_file = token_file
        self._token_read_at = 0.0
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, kubeconfig: str | None = None) -> KubeClient:
        """From a kubeconfig (path, KUBECONFIG, ~/.kube/config) or, inside a pod (no kubeconfig named), the
        ServiceAccount (InCluster: token and CA files from the environment when set)."""
        in_cluster = InCluster.from_env() if kubeconfig is None else None
        if in_cluster is not None:
            pod_context = ssl.create_default_context(cafile=in_cluster.ca_file)
            return cls(in_cluster.server, pod_context, None, in_cluster.token_file)
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=config)
        context: ssl.SSLContext | bool = False
        if config.verify_ssl:
            context = ssl.create_default_context(cafile=config.ssl_ca_cert)
            if config.cert_file:
                context.load_cert_chain(config.cert_file, config.key_file)
        # kubernetes>=35 names a kubeconfig token "BearerToken"; earlier releases "authorization".
        token = config.api_key.get("BearerToken") or config.api_key.get("authorization")
        return cls(config.host, context, token, None)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64),
                timeout=aiohttp.ClientTimeout(total=60),
            )
        return self._session

    def _headers(self) -> dict[str, str]:
        if self._token_file and time.monotonic() - self._token_read_at > TOKEN_REFRESH_SECONDS:
            self._token = f"Bearer {self._token_file.read_text().strip()}"
            self._token_read_at = time.monotonic()
        return {"Authorization": self._token} if self._token else {}

    async def _request(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None, content_type: str = ""
    ) -> Any:
        session = self._ensure_session()
        headers = self._headers()
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = json.dumps(body)
        if method != "GET":
            API_WRITES.labels(method).inc()
        async with session.request(method, self.server + path, data=data, params=params, headers=headers) as r:
            text = await r.text()
            payload = json.loads(text) if text and r.content_type == "application/json" else None
            if r.status >= 400:
                detail = payload if isinstance(payload, dict) else {"message": text.strip()}
                raise ApiError(r.status, detail.get("reason", r.reason or ""), detail.get("message", ""))
            return payload

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._request("GET", resource(api_version, kind).path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return result

    async def get_path(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """A raw GET (discovery, selectors); None when the path does not exist."""
        try:
            result: dict[str, Any] = await self._request("GET", path, params=params)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return result

    async def list_page(self, info: ResourceInfo, params: dict[str, str]) -> dict[str, Any]:
        """One page of a list (`limit`/`continue` in params)."""
        result: dict[str, Any] = await self._request("GET", info.path(), params=params)
        return result

    async def apply(
        self, manifest: dict[str, Any], field_manager: str = FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply with our one field manager, taking over fields others changed (drift);
        `force=False`: a field another manager set is a 409 conflict, not taken."""
        info = resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        path = info.path(meta.get("namespace"), meta["name"])
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        result: dict[str, Any] = await self._request(
            "PATCH", path, manifest, params, content_type="application/apply-patch+yaml"
        )
        return result

    async def merge_patch(
        self,
        info: ResourceInfo,
        name: str,
        namespace: str | None,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = info.path(namespace, name, subresource)
        result: dict[str, Any] = await self._request("PATCH", path, patch, content_type="application/merge-patch+json")
        return result

    async def patch_status(
        self, info: ResourceInfo, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.merge_patch(info, name, namespace, {"status": status}, "status")

    async def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            await self._request("DELETE", resource(api_version, kind).path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        info = resource(manifest["apiVersion"], manifest["kind"])
        result: dict[str, Any] = await self._request("POST", info.path(meta.get("namespace")), manifest)
        return result

    async def strategic_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A strategic merge patch: lists such as status.conditions merge by their key."""
        result: dict[str, Any] = await self._request(
            "PATCH", path, patch, content_type="application/strategic-merge-patch+json"
        )
        return result

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A raw POST (reviews: TokenReview, SubjectAccessReview)."""
        result: dict[str, Any] = await self._request("POST", path, body)
        return result

    async def watch(self, path: str, params: dict[str, str], read_timeout: float) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request until the server ends it; ApiError when it refuses."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        async with self._ensure_session().get(
            self.server + path,
            params=params | {"watch": "true"},
            headers=self._headers(),
            timeout=timeout,
            read_bufsize=WATCH_BUFFER_BYTES,
        ) as r:
            if r.status >= 400:
                raise ApiError(r.status, r.reason or "", (await r.text()).strip())
            async for line in r.content:
                if line.strip():
                    yield json.loads(line)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def event_manifest(involved: dict[str, Any], kind: str, reason: str, message: str, warning: bool) -> dict[str, Any]:
    """A core/v1 Event about one of our objects (what `kubectl describe` shows)."""
    meta = involved["metadata"]
    stamp = now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace") or "default"},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": kind,
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": "Warning" if warning else "Normal",
        "reason": reason,
        "message": message[:1024],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
    }
