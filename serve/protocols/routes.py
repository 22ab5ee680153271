"""The app: every HTTP route in one table over one data plane, one error handler, one body shape. No transport.

The routes: TF Serving's REST API (tfserving_v1.py), the Open Inference Protocol v2 with its binary tensor data
extension (oip_v2.py, v2_binary.py), an image upload (classify_upload.py), the page (web_page.py), metrics and
this API's OpenAPI document (openapi.py). gRPC is served beside it, over the same data plane (grpc/).

It takes a `Request` and answers a `Response`; the engine's adapter
(serve/server/rsgi_adapter.py) does the HTTP. No web framework: a single-image request does
~50 us of work, and a framework's request, routing and response objects cost as
much again. What a framework would give is here in a few lines: routes with path
parameters, HEAD, OPTIONS, 404/405 with `Allow`, CORS when asked for, and every
error as `{"error": "..."}` with its status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from serve.errors import ServeError, let_go
from serve.plane.dataplane import NO_LABELS, DataPlane
from serve.protocols import classify_upload, oip_v2, openapi, tfserving_v1, web_page
from serve.protocols.classify_upload import UnsupportedMediaType
from serve.protocols.http_messages import Request, Response, json_response
from shared import contract
from shared.escaping import one_line

log = logging.getLogger("serve.http")
Endpoint = Callable[[DataPlane, Request], Awaitable[Response]]
CORS_MAX_AGE = "600"  # seconds a browser may cache a preflight's answer
# What a browser may send: the headers the API reads, and nothing a preflight asks for beyond them.
CORS_ALLOWED_HEADERS = "content-type, inference-header-content-length"


@dataclass(frozen=True)
class Route:
    """A path pattern ("/v1/models/{name}:predict"; a parameter never spans "/" or ":"), the protocol it belongs to
    (the metrics' `protocol` label), and one endpoint per HTTP method."""

    pattern: str
    protocol: str
    methods: dict[str, Endpoint]


async def _metrics(plane: DataPlane, request: Request) -> Response:
    if plane.metrics is None:
        raise RouteNotFound()
    body, content_type = plane.metrics.exposition()
    return Response(200, body, content_type)


_V1_MODEL, _V1_VERSION = "/v1/models/{name}", "/v1/models/{name}/versions/{version}"
_V2_MODEL, _V2_VERSION = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
# Every route the server answers. The OpenAPI document (serve/protocols/openapi.py, at /openapi.json) describes each.
ROUTES: tuple[Route, ...] = (
    # TensorFlow Serving's REST API (serve/protocols/tfserving_v1.py)
    *(
        route
        for base in (_V1_MODEL, _V1_VERSION)
        for route in (
            Route(base + ":predict", "v1", {"POST": tfserving_v1.predict}),
            Route(base + "/metadata", "v1", {"GET": tfserving_v1.metadata}),
            Route(base, "v1", {"GET": tfserving_v1.status}),
        )
    ),
    # The Open Inference Protocol, v2 (serve/protocols/oip_v2.py)
    Route("/v2/health/live", "v2", {"GET": oip_v2.live}),
    Route("/v2/health/ready", "v2", {"GET": oip_v2.ready}),
    Route("/v2", "v2", {"GET": oip_v2.server_metadata}),
    *(
        route
        for base in (_V2_MODEL, _V2_VERSION)
        for route in (
            Route(base, "v2", {"GET": oip_v2.metadata}),
            Route(base + "/ready", "v2", {"GET": oip_v2.model_ready}),
            Route(base + "/infer", "v2", {"POST": oip_v2.infer}),
        )
    ),
    # An image uploaded as it is (serve/protocols/classify_upload.py)
    Route("/models/{name}/classify", "classify", {"POST": classify_upload.classify}),
    Route("/models/{name}/versions/{version}/classify", "classify", {"POST": classify_upload.classify}),
    # The page (serve/protocols/web_page.py)
    Route("/", "page", {"GET": web_page.page}),
    Route("/web/{file}", "page", {"GET": web_page.asset}),
    Route("/web/ort/{file}", "page", {"GET": web_page.ort}),
    Route("/models", "page", {"GET": web_page.models}),
    Route(f"/models/{{name}}/{contract.ONNX}", "page", {"GET": web_page.onnx_file}),
    Route(f"/models/{{name}}/versions/{{version}}/{contract.ONNX}", "page", {"GET": web_page.onnx_file}),
    # Prometheus
    Route("/metrics", "metrics", {"GET": _metrics}),
    # This API, described (serve/protocols/openapi.py)
    Route("/openapi.json", "openapi", {"GET": openapi.document}),
)
OTHER = "other"  # the protocol label of a request no route takes


class Router:
    """Finds a request's route: its endpoint, its protocol and the path's parameters."""

    _CACHE_SIZE = 1024  # paths remembered; clients repeat the same few

    def __init__(self, routes: tuple[Route, ...]):
        self._routes = []
        for route in routes:
            escaped = re.escape(route.pattern).replace(r"\{", "{").replace(r"\}", "}")
            regex = re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", escaped) + r"\Z")
            methods = dict(route.methods)
            if "GET" in methods:
                methods["HEAD"] = methods["GET"]  # HEAD answers as GET, without the body
            self._routes.append((regex, route.protocol, methods))
        self._cache: dict[tuple[str, str], tuple[Endpoint, str, dict[str, str]]] = {}

    def match(self, method: str, path: str) -> tuple[Endpoint, str, dict[str, str]]:
        """The endpoint, protocol and path parameters for a request, or a 404/405 ServeError."""
        found = self._cache.get((method, path))
        if found is None:
            found = self._search(method, path)
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            self._cache[(method, path)] = found
        return found[0], found[1], dict(found[2])

    def protocol(self, path: str) -> str:
        """The protocol of the route that has `path`, whatever the method; OTHER when none has it."""
        return next((protocol for regex, protocol, _ in self._routes if regex.match(path)), OTHER)

    def allowed(self, path: str) -> list[str]:
        """The methods some route takes for `path` (empty when none has it)."""
        methods: set[str] = set()
        for regex, _, endpoints in self._routes:
            if regex.match(path):
                methods.update(endpoints)
        return sorted(methods)

    def _search(self, method: str, path: str) -> tuple[Endpoint, str, dict[str, str]]:
        for regex, protocol, methods in self._routes:
            found = regex.match(path)
            if found and method in methods:
                return methods[method], protocol, found.groupdict()
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


@dataclass(slots=True)
class Answer:
    """A request's response, the protocol its route belongs to, and the metrics' model and version labels."""

    response: Response
    protocol: str
    labels: tuple[str, str]


class HttpApp:
    """Routes a request to its endpoint and turns every failure into `{"error": ...}`.

    Args:
        plane: the data plane the endpoints serve.
        cors_origins: origins whose browsers may call the API (`*` for any); none: no CORS headers at all.
    """

    def __init__(self, plane: DataPlane, cors_origins: tuple[str, ...] = ()):
        self.plane = plane
        self.cors_origins = frozenset(cors_origins)
        self.router = Router(ROUTES)

    async def handle(self, request: Request) -> Answer:
        """The answer to `request`: its response, protocol and labels."""
        if request.method == "OPTIONS":
            response = self._options(request)
            return self._answer(request, response, self.router.protocol(request.path), cors=response.status == 204)
        protocol = OTHER
        try:
            endpoint, protocol, request.path_params = self.router.match(request.method, request.path)
            encoding = request.headers.get("content-encoding") if request.body else None
            if encoding is not None and encoding.strip().lower() != "identity":
                raise UnsupportedMediaType(
                    f"Content-Encoding {encoding.strip().lower()[:40]!r} is not taken; send the body uncompressed."
                )
            response = await endpoint(self.plane, request)
        except Exception as e:  # noqa: BLE001 - every failure becomes a response; error_response logs the unexpected
            response = self.error_response(request, e)
            let_go(e)
        return self._answer(request, response, protocol)

    def _answer(self, request: Request, response: Response, protocol: str, cors: bool = True) -> Answer:
        """The answer, its labels (the data plane's, for an answer no version gave), and the CORS headers it owes.

        `cors` False: a preflight that is refused (no such route) grants nothing.
        """
        labels = response.labels
        if labels is None:
            params = request.path_params
            labels = self.plane.labels(params.get("name"), params.get("version")) if params else NO_LABELS
        if self.cors_origins:
            response.headers += self._cors_headers(request, cors)
        return Answer(response, protocol, labels)

    def _cors_headers(self, request: Request, grant: bool) -> list[tuple[str, str]]:
        """`*` as it is (never an echo: an origin of `null` is not granted by name); a listed origin echoed, with
        `Vary: Origin` on every answer, so caches keep the answers of different origins apart."""
        if "*" in self.cors_origins:
            return [("access-control-allow-origin", "*")] if grant else []
        headers = [("vary", "Origin")]
        origin = request.headers.get("origin")
        if grant and origin in self.cors_origins:
            headers.append(("access-control-allow-origin", origin))
        return headers

    def _options(self, request: Request) -> Response:
        """OPTIONS: the methods the path takes; for a CORS preflight from an allowed origin, what it may send."""
        allowed = self.router.allowed(request.path)
        if not allowed:
            return self.error_response(request, RouteNotFound())
        response = Response(204, b"", None, headers=[("allow", ", ".join([*allowed, "OPTIONS"]))])
        origin = request.headers.get("origin")
        asked = request.headers.get("access-control-request-method")
        if asked and origin and ("*" in self.cors_origins or origin in self.cors_origins):
            response.headers += [
                ("access-control-allow-methods", ", ".join(allowed)),
                ("access-control-allow-headers", CORS_ALLOWED_HEADERS),
                ("access-control-max-age", CORS_MAX_AGE),
            ]
        return response

    def error_response(self, request: Request, error: BaseException) -> Response:
        """`{"error": ...}` with the error's status; anything not a ServeError is a logged 500 that says nothing."""
        if isinstance(error, ServeError):
            if error.status_code >= 500:
                log.error("%s %s: %s", one_line(request.method), one_line(request.path), one_line(str(error)))
            response = json_response({"error": str(error)}, error.status_code)
            if isinstance(error, MethodNotAllowed):
                response.headers.append(("allow", ", ".join([*error.allowed, "OPTIONS"])))
            return response
        log.error("%s %s failed", one_line(request.method), one_line(request.path), exc_info=error)
        return json_response({"error": "internal server error"}, 500)


def build_app(plane: DataPlane, cors_origins: tuple[str, ...] = ()) -> HttpApp:
    """The app serving `plane` over TF Serving REST (v1), the Open Inference Protocol (v2), the page and metrics."""
    return HttpApp(plane, cors_origins)
