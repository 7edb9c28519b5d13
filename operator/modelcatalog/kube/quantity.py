"""Kubernetes resource quantities, as far as the renderers need them: parse to a number, write back."""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIXES = {
    "": Decimal(1), "m": Decimal("0.001"),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50),
}  # fmt: skip
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?")


def parse(text: str) -> Decimal:
    """'12Gi' -> 12884901888; '1.5G' -> 1500000000."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    return Decimal(match[1]) * _SUFFIXES[match[2] or ""]


def mebibytes(amount: Decimal) -> str:
    """Bytes, rounded down to whole MiB (Gi when exact), as a quantity."""
    mib = int(amount // _SUFFIXES["Mi"])
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"
