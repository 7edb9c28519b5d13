"""The platform's price list (prices.yaml at the repository root): token prices per CatalogModel and an hourly
price per InstanceType, written into the manifests by `modelcatalog catalog normalize` (make catalog).

The manifests then carry the prices (`spec.deploymentOptions.serverless.pricing`, `spec.pricing` of an
InstanceType), so the cluster, `kubectl get` and the CLI all read them from the objects; the Helm chart overrides
them with a values block of the same shape. A model or type the file does not name keeps what its manifest says.
No figures are shipped: the catalog has no public source for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from modelcatalog.api.base import DECIMAL, KubeModel, describe

PRICES_FILE = Path(__file__).resolve().parents[3] / "prices.yaml"


class PricesError(ValueError):
    """A price list that does not validate or names what the catalog lacks."""


def _decimal_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class TokenPrices(KubeModel):
    input_per_1m_tokens: str | None = Field(default=None, alias="inputPer1MTokens", pattern=DECIMAL)
    output_per_1m_tokens: str | None = Field(default=None, alias="outputPer1MTokens", pattern=DECIMAL)

    _text = field_validator("input_per_1m_tokens", "output_per_1m_tokens", mode="before")(_decimal_text)


class HourlyPrice(KubeModel):
    per_hour: str = Field(pattern=DECIMAL)

    _text = field_validator("per_hour", mode="before")(_decimal_text)


class PriceList(KubeModel):
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    models: dict[str, TokenPrices] = Field(default_factory=dict)
    instance_types: dict[str, HourlyPrice] = Field(default_factory=dict)


def load(path: Path) -> PriceList:
    if not path.exists():
        return PriceList()
    try:
        return PriceList.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as error:
        raise PricesError(f"{path}: {describe(error, 'prices')}") from error
    except yaml.YAMLError as error:
        raise PricesError(f"{path}: {error}") from error


def check_names(prices: PriceList, models: set[str], instance_types: set[str]) -> None:
    for kind, named, known in (("CatalogModel", prices.models, models), ("InstanceType", prices.instance_types,
                                                                         instance_types)):  # fmt: skip
        unknown = sorted(set(named) - known)
        if unknown:
            raise PricesError(f"prices name no {kind} {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def apply(manifest: dict[str, Any], prices: PriceList) -> None:
    """Write the manifest's prices from the list, when it names the object."""
    name = manifest.get("metadata", {}).get("name")
    spec = manifest.setdefault("spec", {})
    if manifest.get("kind") == "CatalogModel" and name in prices.models:
        serverless = spec.get("deploymentOptions", {}).get("serverless")
        if serverless is None:
            raise PricesError(f"prices give CatalogModel {name} token prices, but it has no serverless offer")
        serverless["pricing"] = {"currency": prices.currency, **prices.models[name].to_wire()}
    elif manifest.get("kind") == "InstanceType" and name in prices.instance_types:
        spec["pricing"] = {"currency": prices.currency, **prices.instance_types[name].to_wire()}
