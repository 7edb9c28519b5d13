"""Token mode against the real API server: TokenReview, then LocalSubjectAccessReview on `score`."""

from __future__ import annotations

from typing import Any

from modelcatalog import GROUP
from modelcatalog.kube.client import KubeClient
from modelcatalog.router.auth import RESOURCE, VERB, User


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
