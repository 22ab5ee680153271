"""The app: both protocols' routes over one data plane, one error handler, one body shape.

No web framework: a single-image request does ~60 us of work, and a framework's
request, routing and response objects cost as much again (Starlette under
uvicorn served half the requests/s of this app on uvicorn, and uvicorn itself
another 25 us a request; see http_server.py). What a framework would give is
here in a few lines: routes with path parameters, 404/405, and every error as
`{"error": "..."}` with its status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from serve import oip_v2, tfserving_v1, web_page
from serve.dataplane import DataPlane
from serve.errors import ServeError
from serve.http_common import Request, Response, json_response
from serve.limits import Limits

log = logging.getLogger("serve.http")
Endpoint = Callable[[Request], "Response | Awaitable[Response]"]


class Router:
    """Routes "/v1/models/{name}:predict" style patterns (a parameter never spans "/" or ":")."""

    _CACHE_SIZE = 1024  # paths remembered; clients repeat the same few

    def __init__(self):
        self._routes: list[tuple[re.Pattern, dict[str, Endpoint]]] = []
        self._cache: dict[tuple[str, str], tuple[Endpoint, dict[str, str]]] = {}

    def add(self, pattern: str, methods: dict[str, Endpoint]) -> None:
        """Serve `pattern` with one endpoint per HTTP method."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"))
        self._routes.append((re.compile(regex + r"\Z"), methods))
        self._cache.clear()

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        """The endpoint and path parameters for a request, or a 404/405 ServeError."""
        found = self._cache.get((method, path))
        if found is not None:
            return found[0], dict(found[1])
        endpoint, params = self._search(method, path)
        if len(self._cache) >= self._CACHE_SIZE:
            self._cache.clear()
        self._cache[(method, path)] = (endpoint, params)
        return endpoint, dict(params)

    def _search(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
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
    """Routes a request to its endpoint and turns every failure into `{"error": ...}`."""

    def __init__(self, plane: DataPlane, limits: Limits):
        self.plane = plane
        self.limits = limits
        self.router = Router()
        tfserving_v1.register(self.router, plane, limits)
        oip_v2.register(self.router, plane, limits)
        web_page.register(self.router, plane)

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        """The response to `request`, or an awaitable of it when the endpoint's work leaves the event loop."""
        try:
            endpoint, request.path_params = self.router.match(request.method, request.path)
            return endpoint(request)
        except Exception as e:  # noqa: BLE001 - every failure becomes a response; error_response logs the unexpected
            return self.error_response(request, e)

    def error_response(self, request: Request, error: BaseException) -> Response:
        """`{"error": ...}` with the error's status; anything not a ServeError is a logged 500 that says nothing."""
        if isinstance(error, ServeError):
            if error.status_code >= 500:
                log.error("%s %s: %s", request.method, request.path, error)
            return json_response({"error": str(error)}, error.status_code)
        log.error("%s %s failed", request.method, request.path, exc_info=error)
        return json_response({"error": "internal server error"}, 500)


def build_app(plane: DataPlane, limits: Limits | None = None) -> HttpApp:
    """The app serving `plane` over TF Serving REST (v1) and the Open Inference Protocol (v2)."""
    return HttpApp(plane, limits or Limits())
