"""The page at `/`: draw a digit or drop a picture, and watch the model think in the browser.

    GET /                          the page (serve/web/index.html); `/?model=NAME&version=N` picks one
    GET /web/app.js, /web/style.css
    GET /web/ort/...               onnxruntime-web's script and wasm, once `make web` installed them
    GET /models                    {"models": [{"name", "versions"}], "browser_engine": onnxruntime-web installed}
    GET /models/NAME[/versions/N]/model.onnx
                                   the ONNX file itself, as loaded (the newest version without N)

Everything the page needs comes from this server: it works offline and on a
device. It is one more client of the data plane: it reads the v2 model metadata,
posts drawings to the v1 predict endpoint, uploads dropped pictures as they are to the classify route
and fetches the ONNX file; no fourth layer.
Only the files named here are served, never a path from the request. The routes
are registered in serve/protocols/routes.py's table.
"""

from __future__ import annotations

from pathlib import Path

from serve.errors import ServeError, shown
from serve.plane.dataplane import DataPlane
from serve.protocols.http_messages import Request, Response, json_response, view

WEB = Path(__file__).resolve().parent.parent / "web"  # serve/web/
ORT_DIST = WEB / "node_modules" / "onnxruntime-web" / "dist"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
# onnxruntime-web's wasm build: the script (a global `ort`), the wasm and the module that loads it.
ORT_FILES = {
    "ort.wasm.min.js": "text/javascript",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
    "ort-wasm-simd-threaded.mjs": "text/javascript",
}


class NotInstalled(ServeError):
    """onnxruntime-web is not installed (`make web`): the page falls back to the server's predict."""

    status_code = 404


def _file(path: Path, content_type: str) -> Response:
    return Response(200, path.read_bytes(), content_type)


async def page(plane: DataPlane, request: Request) -> Response:
    """The page."""
    return _file(WEB / "index.html", "text/html; charset=utf-8")


async def asset(plane: DataPlane, request: Request) -> Response:
    """The page's script and style sheet."""
    name = request.path_params["file"]
    if name not in PAGE_FILES:
        raise NotInstalled(f"no page file {shown(name)}.")
    return _file(WEB / name, PAGE_FILES[name])


async def ort(plane: DataPlane, request: Request) -> Response:
    """onnxruntime-web's files, once `make web` installed them."""
    name = request.path_params["file"]
    if name not in ORT_FILES or not (ORT_DIST / name).is_file():
        raise NotInstalled(f"onnxruntime-web's {shown(name)} is not installed here; run `make web`.")
    return _file(ORT_DIST / name, ORT_FILES[name])


async def models(plane: DataPlane, request: Request) -> Response:
    """The models served, with their versions, and whether the page's browser engine is installed."""
    installed = all((ORT_DIST / name).is_file() for name in ORT_FILES)
    repository = plane.repository
    listed = [{"name": name, "versions": repository.versions(name)} for name in repository.names()]
    return json_response({"models": listed, "browser_engine": installed})


async def onnx_file(plane: DataPlane, request: Request) -> Response:
    """The ONNX file of the version the path names, as the server loaded it."""
    # The bytes the server loaded: the same model it answers with, even if the file has changed or gone since.
    found = view(plane, request)
    if found.model.session.kind != "ONNX":  # the page's browser engine runs ONNX: it asks the server instead
        raise NotInstalled(f"model {found.name!r} is a {found.model.session.kind} file, not ONNX.")
    return Response(200, found.model.data, "application/octet-stream", labels=found.labels)
