"""The router's content-safety settings, from its environment (the operator renders them from its own
settings, docs/content-safety.md), and which deployment is screened at what threshold."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelcatalog.router.safety.filters import Severity
from modelcatalog.router.state import Deployment, is_serverless

FILTERS = ("baseline", "moderation", "guard")
DEFAULT_THRESHOLD = Severity.MEDIUM
DEFAULT_TIMEOUT_SECONDS = 5.0
PREFIX = "MODELCATALOG_CONTENT_SAFETY_"


@dataclass(frozen=True)
class SafetySettings:
    # The filters every screened request goes through (all of them; the worst severity counts). Empty: none.
    filters: tuple[str, ...] = ("baseline",)
    # Whether a ServerlessEndpoint whose spec does not say is screened.
    serverless_default: bool = True
    # A filter that fails: block (closed) or let the text through unscreened by it (open).
    fail_open: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    moderation_url: str | None = None
    moderation_model: str | None = None
    moderation_key_file: Path | None = None
    guard_endpoint: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SafetySettings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(PREFIX + name) or None

        filters = tuple(f.strip() for f in env.get(PREFIX + "FILTERS", ",".join(cls.filters)).split(",") if f.strip())
        unknown = [f for f in filters if f not in FILTERS]
        if unknown:
            raise SystemExit(f"{PREFIX}FILTERS: unknown filter(s) {unknown}; expected some of {', '.join(FILTERS)}")
        settings = cls(
            filters=filters,
            serverless_default=(get("SERVERLESS") or "Enabled").lower() in ("enabled", "true"),
            fail_open=(get("ON_ERROR") or "closed").lower() == "open",
            timeout_seconds=float(get("TIMEOUT_SECONDS") or cls.timeout_seconds),
            moderation_url=get("MODERATION_URL"),
            moderation_model=get("MODERATION_MODEL"),
            moderation_key_file=Path(path) if (path := get("MODERATION_KEY_FILE")) else None,
            guard_endpoint=get("GUARD_ENDPOINT"),
        )
        if "moderation" in filters and not settings.moderation_url:
            raise SystemExit(f"{PREFIX}FILTERS names moderation: set {PREFIX}MODERATION_URL")
        if "guard" in filters and not settings.guard_endpoint:
            raise SystemExit(f"{PREFIX}FILTERS names guard: set {PREFIX}GUARD_ENDPOINT")
        return settings

    def threshold(self, deployment: Deployment) -> Severity | None:
        """The severity from which `deployment`'s traffic is blocked; None: it is not screened."""
        screened = deployment.content_safety
        if screened is None:
            screened = is_serverless(deployment) and self.serverless_default
        if not screened or not self.filters:
            return None
        try:
            return Severity.named(deployment.safety_threshold) if deployment.safety_threshold else DEFAULT_THRESHOLD
        except ValueError:
            return DEFAULT_THRESHOLD
