"""Token mode with a fake reviewer standing in for the API server; the verdict cache; credential parsing."""

from __future__ import annotations

from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from modelcatalog.router.auth import User, VerdictCache, credential
from modelcatalog.router.kubeauth import access_review, user_from_review
from tests.unit.routerbed import backends, router_bed

CHAT = {"model": "chat", "messages": []}


class FakeReviewer:
    """Authenticates `good-token` and `other-token`; only alice may score deployment `a`."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def authenticate(self, token: str) -> User | None:
        self.calls.append("authenticate")
        users = {"good-token": User("alice", "u1"), "other-token": User("bob", "u2")}
        return users.get(token)

    async def authorize(self, user: User, namespace: str, deployment: str) -> bool:
        self.calls.append(f"authorize {user.name} {namespace} {deployment}")
        return user.name == "alice" and deployment == "a"


def token_config(backend: str) -> dict[str, Any]:
    deployment = {"name": "a", "authMode": "token", "backends": [backend]}
    return {"endpoints": [{"name": "chat", "deployments": [deployment]}]}


async def test_token_mode_401_403_and_allowed() -> None:
    reviewer = FakeReviewer()
    async with backends(1) as [b], router_bed(token_config(b), reviewer, namespace="ws") as bed:
        unknown, e401 = await bed.post("/v1/chat/completions", CHAT, "bad-token")
        denied, e403 = await bed.post("/v1/chat/completions", CHAT, "other-token")
        allowed, _ = await bed.post("/v1/chat/completions", CHAT, "good-token")
        again, _ = await bed.post("/v1/chat/completions", CHAT, "good-token")
        status, listed = await bed.get("/v1/models", "good-token")
    assert (unknown, denied, allowed, again, status) == (401, 403, 200, 200, 200)
    assert e401["error"]["code"] == "invalid_token" and e403["error"]["code"] == "permission_denied"
    assert '"id": "chat"' in listed
    assert reviewer.calls.count("authorize alice ws a") == 1


async def test_a_key_does_not_open_a_token_endpoint() -> None:
    async with backends(1) as [b], router_bed(token_config(b), FakeReviewer()) as bed:
        status, _ = await bed.post("/v1/chat/completions", CHAT, "chat-primary")
    assert status == 401


def test_verdicts_expire_after_the_ttl() -> None:
    now = [0.0]
    cache = VerdictCache(ttl=10, clock=lambda: now[0])
    cache.put(("k",), True)
    now[0] = 9.9
    assert cache.get(("k",)) == (True, True)
    now[0] = 10.1
    assert cache.get(("k",)) == (False, None)


def test_credential_from_either_header() -> None:
    def headers(**values: str) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(CIMultiDict(values))

    assert credential(headers(Authorization="Bearer abc")) == "abc"
    assert credential(headers(Authorization="bearer  abc ")) == "abc"
    assert credential(headers(**{"api-key": "xyz"})) == "xyz"
    assert credential(headers(Authorization="Basic abc")) is None
    assert credential(headers()) is None


def test_access_review_asks_for_score_on_the_deployment() -> None:
    user = user_from_review({"username": "system:serviceaccount:ws:app", "uid": "1", "groups": ["g"],
                             "extra": {"k": ["v"]}})  # fmt: skip
    review = access_review(user, "ws", "blue")
    assert review["kind"] == "LocalSubjectAccessReview"
    assert review["spec"]["resourceAttributes"] == {
        "namespace": "ws", "verb": "score", "group": "modelcatalog.io", "resource": "modeldeployments", "name": "blue",
    }  # fmt: skip
    assert review["spec"]["user"] == "system:serviceaccount:ws:app" and review["spec"]["extra"] == {"k": ["v"]}
