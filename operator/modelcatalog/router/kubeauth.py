"""Token mode against the real API server: TokenReview, then LocalSubjectAccessReview on `score`; and the
router's own ServiceAccount token, for the serverless gateway."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelcatalog import GROUP
from modelcatalog.kube.client import KubeClient
from modelcatalog.router.auth import RESOURCE, VERB, User

TOKEN_REREAD_SECONDS = 60.0  # the kubelet refreshes a projected token well before it expires


class KubeReviewer:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def authenticate(self, token: str) -> User | None:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        result = await self.client.post("/apis/authentication.k8s.io/v1/tokenreviews", review)
        status = result.get("status") or {}
        if not status.get("authenticated"):
            return None
        return user_from_review(status.get("user") or {})

    async def authorize(self, user: User, namespace: str, deployment: str) -> bool:
        review = access_review(user, namespace, deployment)
        path = f"/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews"
        result = await self.client.post(path, review)
        return bool((result.get("status") or {}).get("allowed"))


def user_from_review(user: dict[str, Any]) -> User:
    extra = tuple(sorted((k, tuple(v)) for k, v in (user.get("extra") or {}).items()))
    return User(str(user.get("username", "")), str(user.get("uid", "")), tuple(user.get("groups") or ()), extra)


def access_review(user: User, namespace: str, deployment: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "user": user.name,
        "groups": list(user.groups),
        "resourceAttributes": {
            "namespace": namespace,
            "verb": VERB,
            "group": GROUP,
            "resource": RESOURCE,
            "name": deployment,
        },
    }
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra}
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "LocalSubjectAccessReview",
        "metadata": {"namespace": namespace},
        "spec": spec,
    }


class ServiceAccountToken:
    """The router's own ServiceAccount token (the projected file the kubelet rotates), which it shows the
    serverless gateway instead of the caller's key; re-read every `ttl` seconds."""

    def __init__(self, path: Path, ttl: float = TOKEN_REREAD_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.ttl = ttl
        self.clock = clock
        self._token: str | None = None
        self._read_at = -math.inf

    def get(self) -> str | None:
        if self.clock() - self._read_at >= self.ttl:
            try:
                self._token = self.path.read_text().strip() or None
            except OSError:
                self._token = None
            self._read_at = self.clock()
        return self._token
