"""What a caller learns of a model's lifecycle: Deprecation (RFC 9745) and Sunset (RFC 8594) headers on every
response of a deprecated model's endpoint, a Link to the successor, and 410 Gone once the model is retired."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime

from aiohttp import web

from modelcatalog.router.errors import RouterError
from modelcatalog.router.state import Deployment, Endpoint, ModelLifecycle

REQUEST_SLOT = web.RequestKey("modelcatalog_lifecycle", dict[str, str])
SUCCESSOR_URI = "urn:modelcatalog:catalogmodel:{}"  # a CatalogModel name: `kubectl get catalogmodel NAME`


def _midnight(day: str) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        return None


def headers(lifecycle: ModelLifecycle | None) -> dict[str, str]:
    """Deprecation: @<epoch seconds> (a structured-field date); Sunset: an HTTP-date; Link rel=successor-version."""
    if lifecycle is None or lifecycle.stage not in ("Deprecated", "Retired"):
        return {}
    found: dict[str, str] = {}
    deprecated = _midnight(lifecycle.deprecation_date) if lifecycle.deprecation_date else None
    found["Deprecation"] = f"@{int(deprecated.timestamp())}" if deprecated else "@0"
    sunset = _midnight(lifecycle.retirement_date) if lifecycle.retirement_date else None
    if sunset is not None:
        found["Sunset"] = format_datetime(sunset, usegmt=True)
    if lifecycle.replacement:
        found["Link"] = f'<{SUCCESSOR_URI.format(lifecycle.replacement)}>; rel="successor-version"'
    return found


def endpoint_lifecycle(endpoint: Endpoint) -> ModelLifecycle | None:
    """The lifecycle the endpoint's callers are told: its deployments' latest stage (a blue/green move to the
    successor keeps the headers until the deprecated deployment is gone)."""
    found = [d.lifecycle for d in endpoint.deployments if d.lifecycle is not None]
    order = ("Legacy", "Deprecated", "Retired")
    return max(found, key=lambda lc: order.index(lc.stage) if lc.stage in order else -1, default=None)


def gone(deployment: Deployment) -> RouterError | None:
    lifecycle = deployment.lifecycle
    if lifecycle is None or not lifecycle.retired:
        return None
    instead = f"; move to {lifecycle.replacement}" if lifecycle.replacement else ""
    return RouterError(
        410,
        f"The model {deployment.served_model} behind endpoint {deployment.endpoint} was retired on"
        f" {lifecycle.retirement_date}{instead}.",
        "model_retired",
        "model",
    )


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streamed or not, error or not, gets the endpoint's headers."""
    for name, value in (request.get(REQUEST_SLOT) or {}).items():
        response.headers[name] = value
