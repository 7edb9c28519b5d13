"""Who may call an endpoint: its keys (constant-time), or Kubernetes tokens (TokenReview + SubjectAccessReview).

Status codes: 401 when the credential is missing, is not a key of this endpoint (another
endpoint's key included: no hint that it is valid elsewhere) or is a token the API server does not
authenticate; 403 when an authenticated token may not `score` the deployment.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from multidict import CIMultiDictProxy

from modelcatalog.router.errors import RouterError
from modelcatalog.router.state import TOKEN, ClusterState, Deployment, Endpoint

# How long a TokenReview or SubjectAccessReview verdict is reused: a revoked token or a removed
# RoleBinding takes effect within this many seconds, and a busy caller costs the API server two
# reviews per this period and deployment instead of two per request.
VERDICT_TTL_SECONDS = 10.0
MAX_CACHED_VERDICTS = 10_000
VERB = "score"
RESOURCE = "modeldeployments"


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


class Reviewer(Protocol):
    """The API server's verdicts; kubeauth.KubeReviewer asks a real one, tests pass a fake."""

    async def authenticate(self, token: str) -> User | None: ...

    async def authorize(self, user: User, namespace: str, deployment: str) -> bool: ...


def credential(headers: CIMultiDictProxy[str]) -> str | None:
    """The key or token from `Authorization: Bearer ...` or `api-key: ...`."""
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = headers.get("api-key", "").strip()
    return api_key or None


@dataclass
class VerdictCache:
    ttl: float = VERDICT_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _entries: dict[tuple[str, ...], tuple[float, object]] = field(default_factory=dict)

    def get(self, key: tuple[str, ...]) -> tuple[bool, object]:
        entry = self._entries.get(key)
        if entry is None or entry[0] < self.clock():
            return False, None
        return True, entry[1]

    def put(self, key: tuple[str, ...], value: object) -> None:
        if len(self._entries) >= MAX_CACHED_VERDICTS:
            now = self.clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= MAX_CACHED_VERDICTS:
                self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl, value)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def reviewed_user(reviewer: Reviewer, cache: VerdictCache, token: str) -> User:
    """Who the token is, per the API server's TokenReview, the verdict cached by the token's digest (never the
    token); 401 when the API server does not authenticate it."""
    key = ("user", _digest(token))
    found, cached = cache.get(key)
    if not found:
        cached = await reviewer.authenticate(token)
        cache.put(key, cached)
    if not isinstance(cached, User):
        raise RouterError(401, "The token was not accepted by the Kubernetes API server.", "invalid_token")
    return cached


class Authenticator:
    def __init__(self, state: ClusterState, namespace: str, reviewer: Reviewer | None) -> None:
        self.state = state
        self.namespace = namespace
        self.reviewer = reviewer
        self.cache = VerdictCache()

    def check_key(self, endpoint: Endpoint, given: str | None) -> None:
        if given is None:
            raise RouterError(401, "Provide a key: 'Authorization: Bearer <key>' or 'api-key: <key>'.", "missing_key")
        if endpoint.keys is None or not endpoint.keys.matches(given):
            raise RouterError(401, f"The key is not valid for endpoint {endpoint.name}.", "invalid_api_key")

    async def user(self, token: str | None) -> User:
        if token is None:
            raise RouterError(401, "Provide a Kubernetes token: 'Authorization: Bearer <token>'.", "missing_token")
        if self.reviewer is None:
            raise RouterError(401, "This router cannot check Kubernetes tokens.", "token_auth_unavailable")
        return await reviewed_user(self.reviewer, self.cache, token)

    async def allowed(self, user: User, deployment: str) -> bool:
        assert self.reviewer is not None
        key = ("sar", user.name, user.uid, *user.groups, "|", deployment)
        found, cached = self.cache.get(key)
        if not found:
            cached = await self.reviewer.authorize(user, self.namespace, deployment)
            self.cache.put(key, cached)
        return bool(cached)

    async def check(self, endpoint: Endpoint, deployment: Deployment, given: str | None) -> None:
        """Raise the RouterError that refuses this caller, or return when it may use `deployment`."""
        if endpoint.auth_mode != TOKEN:
            self.check_key(endpoint, given)
            return
        user = await self.user(given)
        if not await self.allowed(user, deployment.name):
            raise RouterError(
                403,
                f"{user.name} may not {VERB} {RESOURCE}/{deployment.name} in namespace {self.namespace}.",
                "permission_denied",
            )

    async def usable_endpoints(self, given: str | None) -> list[str]:
        """The endpoints GET /v1/models lists for this caller; 401 when the credential opens none."""
        if given is None:
            raise RouterError(401, "Provide a key or token: 'Authorization: Bearer <credential>'.", "missing_key")
        endpoints = [e for e in map(self.state.endpoint, self.state.endpoint_names()) if e is not None]
        by_key = [e.name for e in endpoints if e.auth_mode != TOKEN and e.keys is not None and e.keys.matches(given)]
        token_mode = [e for e in endpoints if e.auth_mode == TOKEN]
        if by_key or not token_mode or self.reviewer is None:
            if not by_key:
                raise RouterError(401, "The credential is not valid for any endpoint.", "invalid_api_key")
            return by_key
        user = await self.user(given)
        return [e.name for e in token_mode if any([await self.allowed(user, d.name) for d in e.deployments])]
