"""The page at `/`: draw a digit or drop a picture, and watch the model think in the browser.

    GET /                          the page (serve/web/index.html); `/?model=NAME&version=N` picks one
    GET /web/app.js, /web/style.css
    GET /web/ort/...               onnxruntime-web's script and wasm, once `make web` installed them
    GET /models                    {"models": [{"name", "versions"}], "browser_engine": onnxruntime-web installed}
    GET /models/NAME[/versions/N]/model.onnx
                                   the ONNX file itself, as loaded (the newest version without N)

Everything the page needs comes from this server: it works offline and on a
device. It is one more client of the data plane: it reads the v2 model metadata,
posts to the v1 predict endpoint and fetches the ONNX file; no fourth layer.
Only the files named here are served, never a path from the request.
"""

from __future__ import annotations

from pathlib import Path

from serve import contract
from serve.dataplane import DataPlane
from serve.errors import ServeError
from serve.http_common import Request, Response, json_response, resolve

WEB = Path(__file__).resolve().parent / "web"
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


def register(router, plane: DataPlane) -> None:
    """Add the page's routes over `plane` to `router`."""

    def page(request: Request) -> Response:
        return _file(WEB / "index.html", "text/html; charset=utf-8")

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
        repository = plane.repository
        listed = [{"name": name, "versions": repository.versions(name)} for name in repository.names()]
        return json_response({"models": listed, "browser_engine": installed})

    def onnx_file(request: Request) -> Response:
        # The bytes the server loaded: the same model it answers with, even if the file has changed or gone since.
        model = resolve(plane, request).model
        if model.session.kind != "ONNX":  # the page's browser engine runs ONNX: it asks the server instead
            raise NotInstalled(f"model {request.path_params['name']!r} is a {model.session.kind} file, not ONNX.")
        return Response(200, model.data, "application/octet-stream")

    router.add("/", {"GET": page})
    router.add("/web/{file}", {"GET": asset})
    router.add("/web/ort/{file}", {"GET": ort})
    router.add("/models", {"GET": models})
    router.add(f"/models/{{name}}/{contract.ONNX}", {"GET": onnx_file})
    router.add(f"/models/{{name}}/versions/{{version}}/{contract.ONNX}", {"GET": onnx_file})
