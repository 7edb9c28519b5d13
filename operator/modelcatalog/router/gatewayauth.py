"""Who may spend a serverless endpoint at the gateway: a workspace router, and only its own workspace's.

The caller shows a ServiceAccount token; the gateway asks the API server (TokenReview) who it is, and reuses
the verdict for VERDICT_TTL_SECONDS, keyed by the token's digest (never the token). Only the operator's
workspace router ServiceAccount, `system:serviceaccount:<namespace>:modelcatalog-router`, is accepted, and
the endpoint's namespace is that `<namespace>`, never a header: a router (or whoever took its token out of
its pod) spends its own workspace's endpoints and no other's.

401 when the token is missing or the API server does not authenticate it; 403 when it does but the
caller is not a workspace router.
"""

from __future__ import annotations

from modelcatalog.render.router import NAME as ROUTER_SERVICE_ACCOUNT
from modelcatalog.router.auth import Reviewer, User, VerdictCache, reviewed_user
from modelcatalog.router.errors import RouterError

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def router_namespace(user: User | None) -> str | None:
    """The workspace whose router this authenticated user is, or None for anyone else."""
    if user is None or not user.name.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, _, account = user.name.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    if not namespace or account != ROUTER_SERVICE_ACCOUNT:
        return None
    return namespace


class GatewayAuth:
    def __init__(self, reviewer: Reviewer | None, cache: VerdictCache | None = None) -> None:
        self.reviewer = reviewer
        self.cache = cache or VerdictCache()

    async def workspace(self, token: str | None) -> str:
        """The namespace whose endpoints the caller may spend, or the RouterError that refuses it."""
        if token is None:
            raise RouterError(401, "Provide the workspace router's ServiceAccount token.", "missing_token")
        if self.reviewer is None:
            raise RouterError(401, "This gateway cannot check Kubernetes tokens.", "token_auth_unavailable")
        cached = await reviewed_user(self.reviewer, self.cache, token)
        namespace = router_namespace(cached)
        if namespace is None:
            raise RouterError(
                403, f"{cached.name} is not a workspace router: only they call the serverless gateway.", "not_a_router"
            )
        return namespace
