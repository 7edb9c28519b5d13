"""Every error the router answers, in the OpenAI error shape."""

from __future__ import annotations

import json

from aiohttp import web

from modelcatalog.router.metrics import REJECTIONS

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    410: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}


class RouterError(Exception):
    """A request the router answers itself; `reason` labels the rejection metric."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry_after: int | None = None  # seconds, sent as Retry-After (429)


def error_body(status: int, message: str, code: str, param: str | None = None) -> bytes:
    error = {"message": message, "type": TYPES.get(status, "api_error"), "param": param, "code": code}
    return json.dumps({"error": error}).encode()


def error_response(error: RouterError) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return web.Response(
        status=error.status,
        body=error_body(error.status, error.message, error.code, error.param),
        content_type="application/json",
        headers=headers,
    )


def rejected(error: RouterError) -> web.Response:
    """The answer to a request the router refuses itself, counted by reason."""
    REJECTIONS.labels(error.code).inc()
    return error_response(error)
