"""Endpoint keys: generated with the OS's cryptographic RNG, compared in constant time, never printed."""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

KEY_BYTES = 32
SLOTS = ("primary", "secondary")


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


@dataclass(frozen=True)
class Keys:
    primary: str = field(repr=False)
    secondary: str = field(repr=False)

    @classmethod
    def generate(cls) -> Keys:
        return cls(new_key(), new_key())

    @classmethod
    def from_secret(cls, secret: dict[str, Any] | None) -> Keys | None:
        """The keys held by an existing Secret, or None when it has none to reuse."""
        data = (secret or {}).get("data") or {}
        if not all(data.get(slot) for slot in SLOTS):
            return None
        primary, secondary = (base64.b64decode(data[slot]).decode() for slot in SLOTS)
        return cls(primary, secondary)

    def rotated(self, slot: str) -> Keys:
        if slot not in SLOTS:
            raise ValueError(f"key slot must be one of {', '.join(SLOTS)}, not {slot!r}")
        return Keys(new_key(), self.secondary) if slot == "primary" else Keys(self.primary, new_key())

    def string_data(self) -> dict[str, str]:
        return {"primary": self.primary, "secondary": self.secondary}

    def matches(self, candidate: str) -> bool:
        """True when `candidate` is either key; constant time in the key contents."""
        given = candidate.encode()
        return hmac.compare_digest(given, self.primary.encode()) | hmac.compare_digest(given, self.secondary.encode())
