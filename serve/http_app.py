"""The ASGI app: both protocols' routes over one data plane, one error handler, one body shape.

A plain ASGI callable rather than a web framework: a single-image request does
~100 us of work, and a framework's request, routing and response objects cost
about as much again (measured: Starlette halves the requests/s of this app).
What a framework would give is here in a few lines: routes with path
parameters, 404/405, and every error as `{"error": "..."}` with its status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from serve import oip_v2, tfserving_v1
from serve.dataplane import DataPlane
from serve.errors import ClientDisconnected, ServeError
from serve.http_common import Limits, Request, Response, json_response

log = logging.getLogger("serve.http")
Endpoint = Callable[[Request], Awaitable[Response]]


class Router:
    """Routes "/v1/models/{name}:predict" style patterns (a parameter never spans "/" or ":")."""

    def __init__(self):
        self._routes: list[tuple[re.Pattern, dict[str, Endpoint]]] = []

    def add(self, pattern: str, methods: dict[str, Endpoint]) -> None:
        """Serve `pattern` with one endpoint per HTTP method."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"))
        self._routes.append((re.compile(regex + r"\Z"), methods))

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        """The endpoint and path parameters for a request, or a 404/405 ServeError."""
        allowed = False
        for regex, methods in self._routes:
            found = regex.match(path)
            if found:
                if method in methods:
                    return methods[method], found.groupdict()
                allowed = True
        raise (MethodNotAllowed if allowed else RouteNotFound)()


class RouteNotFound(ServeError):
    """No route has this path."""

    status_code = 404

    def __init__(self):
        super().__init__("Not Found")


class MethodNotAllowed(ServeError):
    """A route has this path, but not for this method."""

    status_code = 405

    def __init__(self):
        super().__init__("Method Not Allowed")


class HttpApp:
    """The ASGI application over a `DataPlane`."""

    def __init__(self, plane: DataPlane, limits: Limits):
        self.plane = plane
        self.limits = limits
        self.router = Router()
        tfserving_v1.register(self.router, plane, limits)
        oip_v2.register(self.router, plane, limits)

    async def __call__(self, scope: dict, receive, send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            endpoint, params = self.router.match(scope["method"], scope["path"])
            response = await endpoint(Request(scope, receive, params, self.limits))
        except ClientDisconnected as e:
            log.info("%s %s: %s", scope["method"], scope["path"], e)
            return
        except ServeError as e:
            if e.status_code >= 500:
                log.error("%s %s: %s", scope["method"], scope["path"], e)
            response = json_response({"error": str(e)}, e.status_code)
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            response = json_response({"error": "internal server error"}, 500)
        headers = [(b"content-type", response.content_type), *response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.plane.draining = True
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_app(plane: DataPlane, limits: Limits | None = None) -> HttpApp:
    """An ASGI app serving `plane` over TF Serving REST (v1) and the Open Inference Protocol (v2)."""
    return HttpApp(plane, limits or Limits())
