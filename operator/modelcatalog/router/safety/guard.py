"""A guard model (Llama Guard style) deployed from the catalog: the router sends it a chat completion and
reads its verdict, `safe`, or `unsafe` and a line of hazard codes (`S1,S10`).

The guard is an endpoint of the router's own namespace (a ModelDeployment); the router reaches its pods as
for any endpoint, without a key (the request never leaves the router's own routing). Llama Guard's hazard
codes fold into the four categories (S1 violent crimes, S9 indiscriminate weapons -> violence; S3
sex-related crimes, S4 child sexual exploitation, S12 sexual content -> sexual; S10 hate -> hate; S11
suicide and self-harm -> self_harm); the others (defamation, privacy, ...) are not screened. A guard gives
no severity: a hazard it names is high.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import aiohttp

from modelcatalog.router.picker import choose_deployment
from modelcatalog.router.safety.filters import Category, FilterError, Role, Scores, Severity
from modelcatalog.router.state import ClusterState, Deployment

HAZARDS = {
    "S1": Category.VIOLENCE, "S9": Category.VIOLENCE,
    "S3": Category.SEXUAL, "S4": Category.SEXUAL, "S12": Category.SEXUAL,
    "S10": Category.HATE,
    "S11": Category.SELF_HARM,
}  # fmt: skip
# The guard judges the last turn: a completion is the assistant's turn after a user turn it cannot see.
UNSEEN_PROMPT = "(the prompt is screened on its own)"
VERDICT_TOKENS = 20


def scores_from_verdict(text: str) -> Scores:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or lines[0].lower() not in ("safe", "unsafe"):
        raise FilterError(f"the guard's answer is not a verdict: {text[:40]!r}")
    if lines[0].lower() == "safe":
        return {}
    codes = [code.strip().upper() for code in ",".join(lines[1:]).split(",") if code.strip()]
    return {HAZARDS[code]: Severity.HIGH for code in codes if code in HAZARDS}


def messages(text: str, role: Role) -> list[dict[str, str]]:
    if role == "prompt":
        return [{"role": "user", "content": text}]
    return [{"role": "user", "content": UNSEEN_PROMPT}, {"role": "assistant", "content": text}]


class Guard:
    name = "guard"

    def __init__(
        self,
        endpoint: str,
        state: ClusterState,
        session: Callable[[], aiohttp.ClientSession],
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.state = state
        self.session = session
        self.rng = rng or random.Random()  # noqa: S311 (load spreading, not security)

    def _target(self) -> tuple[Deployment, str]:
        endpoint = self.state.endpoint(self.endpoint)
        if endpoint is None:
            raise FilterError(f"the guard endpoint {self.endpoint!r} does not exist in this namespace")
        deployment = choose_deployment(endpoint.deployments, lambda d: bool(self.state.ready_pods(d.name)), self.rng)
        pods = self.state.ready_pods(deployment.name) if deployment else []
        if deployment is None or not pods:
            raise FilterError(f"the guard endpoint {self.endpoint!r} has no ready model server")
        return deployment, self.rng.choice(pods).target

    async def screen(self, text: str, role: Role) -> Scores:
        deployment, target = self._target()
        body: dict[str, Any] = {"messages": messages(text, role), "max_tokens": VERDICT_TOKENS, "temperature": 0}
        if deployment.served_model:
            body["model"] = deployment.served_model
        try:
            async with self.session().post(f"http://{target}/v1/chat/completions", json=body) as response:
                if response.status != 200:
                    raise FilterError(f"the guard answered {response.status}")
                answer = await response.json(content_type=None)
            verdict = answer["choices"][0]["message"]["content"]
        except (aiohttp.ClientError, ValueError, KeyError, IndexError, TypeError) as error:
            raise FilterError(f"the guard failed: {type(error).__name__}") from error
        return scores_from_verdict(str(verdict or ""))
