"""Endpoint keys: generated with the OS's cryptographic RNG, compared in constant time, never printed."""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

KEY_BYTES = 32
SLOTS = ("primary", "secondary")
ROTATION_ID = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.:]{0,62}$")


class InvalidKeys(ValueError):
    """The keys Secret holds data that is not a usable key (not base64 text in UTF-8)."""


@dataclass(frozen=True)
class RotationRequest:
    """`<slot>/<id>`: rotate `slot` once for this id; a new id rotates again, the same id never does."""

    slot: str
    id: str

    @classmethod
    def parse(cls, value: str) -> RotationRequest:
        slot, _, request_id = value.partition("/")
        if slot not in SLOTS or not ROTATION_ID.match(request_id):
            raise ValueError(
                f"rotate-key must be <slot>/<id> with slot {' or '.join(SLOTS)} and an id of letters, digits,"
                f" '-', '_', '.' or ':' (e.g. primary/2026-12-01), not {value!r}"
            )
        return cls(slot, request_id)

    @property
    def text(self) -> str:
        return f"{self.slot}/{self.id}"


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
        """The keys held by an existing Secret, or None when it has none to reuse; InvalidKeys if unusable."""
        data = (secret or {}).get("data") or {}
        if not all(data.get(slot) for slot in SLOTS):
            return None
        try:
            primary, secondary = (base64.b64decode(data[slot], validate=True).decode() for slot in SLOTS)
        except (ValueError, UnicodeDecodeError) as error:
            name = (secret or {}).get("metadata", {}).get("name")
            raise InvalidKeys(
                f"Secret {name} holds a key that is not UTF-8 text: put text keys in data.primary and"
                " data.secondary, or delete the Secret to have new keys generated"
            ) from error
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
