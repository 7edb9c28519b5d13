"""The router's filters, as its settings choose them, and per request whether and how it is screened."""

from __future__ import annotations

import random
from collections.abc import Callable

import aiohttp

from modelcatalog.router.safety.baseline import Baseline
from modelcatalog.router.safety.filters import Filter
from modelcatalog.router.safety.guard import Guard
from modelcatalog.router.safety.moderation import Moderation
from modelcatalog.router.safety.screen import SCREENED_APIS, Screening
from modelcatalog.router.safety.settings import SafetySettings
from modelcatalog.router.state import ClusterState, Deployment


def build_filters(
    settings: SafetySettings, state: ClusterState, session: Callable[[], aiohttp.ClientSession], rng: random.Random
) -> list[Filter]:
    built: list[Filter] = []
    for name in settings.filters:
        if name == "baseline":
            built.append(Baseline())
        elif name == "moderation" and settings.moderation_url:
            key_file, model = settings.moderation_key_file, settings.moderation_model
            built.append(Moderation(settings.moderation_url, session, key_file, model))
        elif name == "guard" and settings.guard_endpoint:
            built.append(Guard(settings.guard_endpoint, state, session, rng))
    return built


class ContentSafety:
    """The router's filters, and per request whether and how it is screened."""

    def __init__(self, settings: SafetySettings, state: ClusterState, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        rng = rng or random.Random()  # noqa: S311 (load spreading, not security)
        self.filters = build_filters(settings, state, self.session, rng)

    def session(self) -> aiohttp.ClientSession:
        """Its own session: the forwarding one passes bodies compressed, and a filter service's answer is read."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def screening(self, deployment: Deployment, path: str) -> Screening | None:
        """None when this request is not screened: its deployment's setting, or an API without generated text."""
        if path not in SCREENED_APIS:
            return None
        threshold = self.settings.threshold(deployment)
        if threshold is None:
            return None
        s = self.settings
        return Screening(deployment.endpoint, self.filters, threshold, s.timeout_seconds, s.fail_open)
