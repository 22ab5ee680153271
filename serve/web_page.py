"""The page at `/`: draw a digit or drop a picture, and watch the model think in the browser.

    GET /                          the page (serve/web/index.html); `/?model=NAME` picks a model
    GET /web/app.js, /web/style.css
    GET /web/ort/...               onnxruntime-web's script and wasm, once `make web` installed them
    GET /models                    {"models": [names], "browser_engine": whether onnxruntime-web is installed}
    GET /models/NAME/model.onnx    the ONNX file itself, for the browser to run

Everything the page needs comes from this server: it works offline and on a
device. It is one more client of the data plane: it reads the v2 model metadata,
posts to the v1 predict endpoint and fetches the ONNX file; no fourth layer.
Only the files named here are served, never a path from the request.
"""

from __future__ import annotations

from pathlib import Path

from serve.dataplane import DataPlane
from serve.errors import ServeError
from serve.http_common import Request, Response, json_response

WEB = Path(__file__).resolve().parent / "web"
ORT_DIST = WEB / "node_modules" / "onnxruntime-web" / "dist"
PAGE_FILES = {"app.js": b"text/javascript", "style.css": b"text/css"}
# onnxruntime-web's wasm build: the script (a global `ort`), the wasm and the module that loads it.
ORT_FILES = {
    "ort.wasm.min.js": b"text/javascript",
    "ort-wasm-simd-threaded.wasm": b"application/wasm",
    "ort-wasm-simd-threaded.mjs": b"text/javascript",
}


class NotInstalled(ServeError):
    """onnxruntime-web is not installed (`make web`): the page falls back to the server's predict."""

    status_code = 404


def _file(path: Path, content_type: bytes) -> Response:
    return Response(200, path.read_bytes(), content_type)


def register(router, plane: DataPlane) -> None:
    """Add the page's routes over `plane` to `router`."""

    def page(request: Request) -> Response:
        return _file(WEB / "index.html", b"text/html; charset=utf-8")

    def asset(request: Request) -> Response:
        name = request.path_params["file"]
        if name not in PAGE_FILES:
            raise NotInstalled(f"no page file {name!r}.")
        return _file(WEB / name, PAGE_FILES[name])

    def ort(request: Request) -> Response:
        name = request.path_params["file"]
        if name not in ORT_FILES or not (ORT_DIST / name).is_file():
            raise NotInstalled(f"onnxruntime-web's {name!r} is not installed here; run `make web`.")
        return _file(ORT_DIST / name, ORT_FILES[name])

    def models(request: Request) -> Response:
        installed = all((ORT_DIST / name).is_file() for name in ORT_FILES)
        return json_response({"models": sorted(plane.models), "browser_engine": installed})

    def onnx_file(request: Request) -> Response:
        model = plane.model(request.path_params["name"])
        return Response(200, model.path.read_bytes(), b"application/octet-stream")

    router.add("/", {"GET": page})
    router.add("/web/{file}", {"GET": asset})
    router.add("/web/ort/{file}", {"GET": ort})
    router.add("/models", {"GET": models})
    router.add("/models/{name}/model.onnx", {"GET": onnx_file})
