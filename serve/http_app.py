"""The ASGI app: both protocols' routes over one data plane, one error handler, one body shape."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from serve import oip_v2, tfserving_v1
from serve.dataplane import DataPlane
from serve.errors import ServeError
from serve.http_common import Limits

log = logging.getLogger("serve.http")


async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
    if exc.status_code >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": str(exc)}, status_code=exc.status_code)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    # The framework's own 404/405 take the same body shape as ours.
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": "internal server error"}, status_code=500)


def build_app(plane: DataPlane, limits: Limits | None = None) -> Starlette:
    """A Starlette app serving `plane` over TF Serving REST (v1) and the Open Inference Protocol (v2)."""
    limits = limits or Limits()
    return Starlette(
        routes=[*tfserving_v1.register(plane, limits), *oip_v2.register(plane, limits)],
        exception_handlers={ServeError: _serve_error, HTTPException: _http_error, Exception: _internal_error},
    )
