"""An OpenAI-style moderation service (`POST /v1/moderations`): its category scores mapped to severities.

Its categories fold into the four: hate (+ hate/threatening, harassment, harassment/threatening), sexual
(+ sexual/minors), violence (+ violence/graphic), self_harm (self-harm, /intent, /instructions); others
(illicit, ...) are not screened. A score (0..1) becomes a severity at the cut-offs below; a category the
service itself flags is at least medium.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from modelcatalog.router.safety.filters import Category, FilterError, Role, Scores, Severity

CATEGORIES = {
    "hate": Category.HATE, "hate/threatening": Category.HATE,
    "harassment": Category.HATE, "harassment/threatening": Category.HATE,
    "sexual": Category.SEXUAL, "sexual/minors": Category.SEXUAL,
    "violence": Category.VIOLENCE, "violence/graphic": Category.VIOLENCE,
    "self-harm": Category.SELF_HARM, "self-harm/intent": Category.SELF_HARM,
    "self-harm/instructions": Category.SELF_HARM,
}  # fmt: skip
CUTOFFS = ((0.8, Severity.HIGH), (0.5, Severity.MEDIUM), (0.2, Severity.LOW))


def severity(score: float) -> Severity:
    return next((s for cutoff, s in CUTOFFS if score >= cutoff), Severity.SAFE)


def scores_from_answer(answer: Any) -> Scores:
    """The worst severity per category over the answer's results; FilterError when it is not one."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or not results:
        raise FilterError("the moderation answer has no `results`")
    found: Scores = {}
    for result in results:
        raw = result.get("category_scores") if isinstance(result, dict) else None
        if not isinstance(raw, dict):
            raise FilterError("a moderation result has no `category_scores`")
        flags = result.get("categories") or {}
        for name, score in raw.items():
            category = CATEGORIES.get(name)
            if category is None or not isinstance(score, int | float):
                continue
            level = severity(float(score))
            if flags.get(name) is True:
                level = max(level, Severity.MEDIUM)
            found[category] = max(found.get(category, Severity.SAFE), level)
    return found


class Moderation:
    name = "moderation"

    def __init__(
        self,
        url: str,
        session: Callable[[], aiohttp.ClientSession],
        key_file: Path | None = None,
        model: str | None = None,
    ) -> None:
        self.url = url
        self.session = session
        self.key_file = key_file  # read per request: a rotated Secret takes effect without a restart
        self.model = model

    def _headers(self) -> dict[str, str]:
        if self.key_file is None:
            return {}
        try:
            key = self.key_file.read_text().strip()
        except OSError as error:
            raise FilterError(f"cannot read the moderation credential ({type(error).__name__})") from error
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def screen(self, text: str, role: Role) -> Scores:
        body: dict[str, Any] = {"input": text} | ({"model": self.model} if self.model else {})
        headers = self._headers()
        try:
            async with self.session().post(self.url, json=body, headers=headers) as response:
                if response.status != 200:
                    raise FilterError(f"the moderation service answered {response.status}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as error:
            raise FilterError(f"the moderation service failed: {type(error).__name__}") from error
        return scores_from_answer(answer)
