"""The app: both protocols' routes over one data plane, one error handler, one body shape. No transport.

It takes a `Request` and answers a `Response` (or an awaitable of one when the work
leaves the event loop); the engine's adapter (serve/rsgi_app.py) does the HTTP. No
web framework: a single-image request does ~50 us of work, and a framework's
request, routing and response objects cost as much again. What a framework would
give is here in a few lines: routes with path parameters, HEAD, OPTIONS, 404/405
with `Allow`, CORS when asked for, and every error as `{"error": "..."}` with its status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from serve import oip_v2, tfserving_v1, web_page
from serve.dataplane import DataPlane
from serve.errors import ServeError
from serve.http_common import Request, Response, json_response

log = logging.getLogger("serve.http")
Endpoint = Callable[[Request], "Response | Awaitable[Response]"]
CORS_MAX_AGE = "600"  # seconds a browser may cache a preflight's answer


class Router:
    """Routes "/v1/models/{name}:predict" style patterns (a parameter never spans "/" or ":")."""

    _CACHE_SIZE = 1024  # paths remembered; clients repeat the same few

    def __init__(self):
        self._routes: list[tuple[re.Pattern, dict[str, Endpoint]]] = []
        self._cache: dict[tuple[str, str], tuple[Endpoint, dict[str, str]]] = {}

    def add(self, pattern: str, methods: dict[str, Endpoint]) -> None:
        """Serve `pattern` with one endpoint per HTTP method (HEAD answers as GET, without the body)."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"))
        if "GET" in methods:
            methods = {**methods, "HEAD": methods["GET"]}
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

    def allowed(self, path: str) -> list[str]:
        """The methods some route takes for `path` (empty when none has it)."""
        methods: set[str] = set()
        for regex, endpoints in self._routes:
            if regex.match(path):
                methods.update(endpoints)
        return sorted(methods)

    def _search(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        for regex, methods in self._routes:
            found = regex.match(path)
            if found and method in methods:
                return methods[method], found.groupdict()
        allowed = self.allowed(path)
        raise MethodNotAllowed(allowed) if allowed else RouteNotFound()


class RouteNotFound(ServeError):
    """No route has this path."""

    status_code = 404

    def __init__(self):
        super().__init__("Not Found")


class MethodNotAllowed(ServeError):
    """A route has this path, but not for this method."""

    status_code = 405

    def __init__(self, allowed: list[str]):
        super().__init__("Method Not Allowed")
        self.allowed = allowed


class HttpApp:
    """Routes a request to its endpoint and turns every failure into `{"error": ...}`.

    Args:
        plane: the data plane the endpoints serve.
        cors_origins: origins whose browsers may call the API (`*` for any); none: no CORS headers at all.
    """

    def __init__(self, plane: DataPlane, cors_origins: tuple[str, ...] = ()):
        self.plane = plane
        self.cors_origins = frozenset(cors_origins)
        self.router = Router()
        tfserving_v1.register(self.router, plane)
        oip_v2.register(self.router, plane)
        web_page.register(self.router, plane)
        if plane.metrics is not None:
            self.router.add("/metrics", {"GET": self._metrics})

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        """The response to `request`, or an awaitable of it when the endpoint's work leaves the event loop."""
        if request.method == "OPTIONS":
            return self._finish(request, self._options(request))
        try:
            endpoint, request.path_params = self.router.match(request.method, request.path)
            result = endpoint(request)
        except Exception as e:  # noqa: BLE001 - every failure becomes a response; error_response logs the unexpected
            result = self.error_response(request, e)
        if isinstance(result, Response):
            return self._finish(request, result)
        return self._finish_later(request, result)

    async def _finish_later(self, request: Request, awaitable) -> Response:
        try:
            response = await awaitable
        except Exception as e:  # noqa: BLE001 - as in handle
            response = self.error_response(request, e)
        return self._finish(request, response)

    def _finish(self, request: Request, response: Response) -> Response:
        """Release the model version the request held; add the CORS headers its origin is owed."""
        if request.served is not None:
            self.plane.finish(request.served)
        if self.cors_origins:
            origin = request.headers.get("origin")
            if origin and ("*" in self.cors_origins or origin in self.cors_origins):
                response.headers += [("access-control-allow-origin", origin), ("vary", "Origin")]
        return response

    def _options(self, request: Request) -> Response:
        """OPTIONS: the methods the path takes; for a CORS preflight from an allowed origin, what it may send."""
        allowed = self.router.allowed(request.path)
        if not allowed:
            return self.error_response(request, RouteNotFound())
        response = Response(204, b"", headers=[("allow", ", ".join([*allowed, "OPTIONS"]))])
        origin = request.headers.get("origin")
        asked = request.headers.get("access-control-request-method")
        if asked and origin and ("*" in self.cors_origins or origin in self.cors_origins):
            wanted = request.headers.get("access-control-request-headers") or "content-type"
            response.headers += [
                ("access-control-allow-methods", ", ".join(allowed)),
                ("access-control-allow-headers", wanted),
                ("access-control-max-age", CORS_MAX_AGE),
            ]
        return response

    def _metrics(self, request: Request) -> Response:
        body, content_type = self.plane.metrics.exposition()
        return Response(200, body, content_type)

    def error_response(self, request: Request, error: BaseException) -> Response:
        """`{"error": ...}` with the error's status; anything not a ServeError is a logged 500 that says nothing."""
        if isinstance(error, ServeError):
            if error.status_code >= 500:
                log.error("%s %s: %s", request.method, request.path, error)
            response = json_response({"error": str(error)}, error.status_code)
            if isinstance(error, MethodNotAllowed):
                response.headers.append(("allow", ", ".join([*error.allowed, "OPTIONS"])))
            return response
        log.error("%s %s failed", request.method, request.path, exc_info=error)
        return json_response({"error": "internal server error"}, 500)


def build_app(plane: DataPlane, cors_origins: tuple[str, ...] = ()) -> HttpApp:
    """The app serving `plane` over TF Serving REST (v1) and the Open Inference Protocol (v2)."""
    return HttpApp(plane, cors_origins)
