"""GET /openapi.json: an OpenAPI 3.1 document of every HTTP route the server answers (serve/protocols/routes.py).

Written as code, not a file: its schemas share pieces (the error, the tensors), the
server's version and limits go in, and tests/test_openapi.py holds it to the route
table both ways (every route described, nothing described that is not a route), to
openapi-spec-validator, and to schemathesis against a live server: no 5xx, no answer
the document does not allow, and every request it forbids refused.
"""

from __future__ import annotations

import functools

import orjson

from serve.limits import MAX_COUNT
from serve.plane.versions import MAX_VERSION
from serve.protocols import v2_tensors
from serve.protocols.classify_upload import IMAGE_TYPES
from serve.protocols.http_messages import Request, Response

JSON = "application/json"
OCTET = "application/octet-stream"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    why = {
        400: "the request is malformed: its body, shape, datatype, values, image or query (the error says which)",
        404: "no such model, version or route",
        408: "the body did not arrive within --request-timeout",
        413: "the body is larger than --max-body-bytes",
        415: "a body of a media type (or a Content-Encoding) the route does not take",
        503: "not ready (no model, or stopping), or the inference timed out",
    }
    return {str(s): _json(_ref("Error"), why[s]) for s in statuses}


_POST_ERRORS = (400, 404, 408, 413, 415, 503)
_GET_ERRORS = (404,)

_PARAMETERS = {
    "name": {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "the model's name (its folder in a repository)",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
    },
    "version": {
        "name": "version",
        "in": "path",
        "required": True,
        "description": "a version: a whole number from 1 to 2^63-1 in ASCII digits, without leading zeros "
        "(without it the newest answers)",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,18}$"},
    },
}


def _schemas() -> dict:
    number_arrays = _ref("Numbers")
    parameters = {
        "type": "object",
        "additionalProperties": {"type": ["boolean", "integer", "number", "string"]},
    }
    tensor_out = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"const": "FP32"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array", "items": {"type": "number"}},
            "parameters": parameters,
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string", "description": "what was wrong, and what to do"}},
        },
        "Pixels": {
            "description": "pixel values 0..255 nested [H][W][C] (or [H][W] for one channel), an image's bytes "
            'as {"b64": ...}, or {"<input name>": pixels}',
            "anyOf": [number_arrays, {"type": "object"}],
        },
        "Numbers": {
            "description": "numbers, nested as deep as the tensor",
            "type": "array",
            "items": {"anyOf": [{"type": "number"}, _ref("Numbers")]},
        },
        "PredictRequest": {
            "description": "TF Serving's predict: exactly one of instances (row format) and inputs (columnar)",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["instances"],
                    "not": {"required": ["inputs"]},
                    "properties": {"instances": {"type": "array", "minItems": 1, "items": _ref("Pixels")}},
                },
                {
                    "type": "object",
                    "required": ["inputs"],
                    "not": {"required": ["instances"]},
                    "properties": {
                        "inputs": {
                            "anyOf": [
                                {"type": "array", "minItems": 1},
                                {"type": "object", "required": ["images"], "maxProperties": 1},
                            ]
                        }
                    },
                },
            ],
        },
        "PredictResponse": {
            "type": "object",
            "required": ["model_version"],
            "properties": {
                "predictions": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "outputs": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "model_version": {"type": "string"},
            },
        },
        "ModelStatus": {
            "type": "object",
            "required": ["model_version_status"],
            "properties": {
                "model_version_status": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["version", "state", "status"],
                        "properties": {
                            "version": {"type": "string"},
                            "state": {"enum": ["AVAILABLE", "UNLOADING", "END", "LOADING"]},
                            "status": {"type": "object"},
                        },
                    },
                }
            },
        },
        "SignatureMetadata": {"type": "object", "required": ["model_spec", "metadata"]},
        "InferInput": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
                "datatype": {"enum": list(v2_tensors.SUPPORTED)},
                "data": number_arrays,
                "parameters": {
                    "type": "object",
                    "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                    "additionalProperties": {"type": ["boolean", "integer", "number", "string"]},
                },
            },
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": _ref("InferInput")},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "parameters": parameters},
                    },
                },
                "parameters": parameters,
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": tensor_out},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array"},
                "outputs": {"type": "array"},
                "parameters": {"type": "object"},
            },
        },
        "ClassifyResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "predictions"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "predictions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["top"],
                        "properties": {
                            "filename": {"type": "string"},
                            "top": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["class", "probability"],
                                    "properties": {
                                        "class": {"type": "string"},
                                        "probability": {"type": "number", "minimum": 0, "maximum": 1},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    }


def _operation(summary: str, tag: str, responses: dict, **extra) -> dict:
    return {"summary": summary, "tags": [tag], "responses": responses, **extra}


def _model_paths(base: str, versioned: bool) -> dict:
    """The v1, v2, classify and page paths of one model (and version)."""
    params = [_PARAMETERS["name"], *([_PARAMETERS["version"]] if versioned else [])]
    which = "the version the path names" if versioned else "the newest version"
    binary_header = {
        "name": "Inference-Header-Content-Length",
        "in": "header",
        "required": False,
        "description": "binary tensor data extension: the length of the JSON header that starts the body; "
        "the inputs' raw bytes follow it, sized by their parameters.binary_data_size",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
    }
    binary_answer = {
        "schema": {
            "type": "string",
            "format": "binary",
            "description": "the JSON header, then the outputs' raw little-endian bytes (when the request asked "
            "for binary outputs: parameters.binary_data_output, or an output's parameters.binary_data)",
        }
    }
    infer_answer = {
        "description": f"the probabilities [N, classes] from {which}",
        "headers": {
            "Inference-Header-Content-Length": {
                "description": "with binary outputs: the length of the JSON header that starts the body",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
            }
        },
        "content": {JSON: {"schema": _ref("InferResponse")}, OCTET: binary_answer},
    }
    top_k = {
        "name": "top_k",
        "in": "query",
        "required": False,
        "description": "classes per image, likeliest first (default 3, at most the model's classes)",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
    }
    classify_body = {
        "required": True,
        "content": {
            **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}}
                    },
                    "additionalProperties": False,
                }
            },
        },
    }
    v1 = "/v1" + base
    v2 = "/v2" + base
    page = base
    return {
        v1: {"get": _operation(f"TF Serving: the state of {which}", "v1", {
            "200": _json(_ref("ModelStatus"), "each version's state"), **_errors(*_GET_ERRORS)}, parameters=params)},
        v1 + "/metadata": {"get": _operation("TF Serving: the signature", "v1", {
            "200": _json(_ref("SignatureMetadata"), "the serving signature"), **_errors(*_GET_ERRORS)},
            parameters=params)},
        v1 + ":predict": {"post": _operation("TF Serving: predict", "v1", {
            "200": _json(_ref("PredictResponse"), f"the probabilities from {which}"), **_errors(*_POST_ERRORS)},
            parameters=params, requestBody={"required": True, "content": {JSON: {"schema": _ref("PredictRequest")}}})},
        v2: {"get": _operation("Open Inference Protocol: the model's metadata", "v2", {
            "200": _json(_ref("ModelMetadata"), "inputs, outputs, versions, classes"), **_errors(404, 503)},
            parameters=params)},
        v2 + "/ready": {"get": _operation("Open Inference Protocol: model readiness", "v2", {
            "200": _json({"type": "object", "required": ["name", "ready"]}, "whether it answers"),
            **_errors(404, 503)}, parameters=params)},
        v2 + "/infer": {"post": _operation("Open Inference Protocol: infer (JSON, or binary tensor data)", "v2", {
            "200": infer_answer, **_errors(*_POST_ERRORS)}, parameters=[*params, binary_header],
            requestBody={"required": True, "content": {
                JSON: {"schema": _ref("InferRequest")},
                OCTET: {"schema": {"type": "string", "format": "binary",
                                   "description": "a JSON InferRequest header, then the inputs' raw bytes"}},
            }})},
        page + "/classify": {"post": _operation("an image (or a form of images) uploaded as it is", "classify", {
            "200": _json(_ref("ClassifyResponse"), "each image's top classes"), **_errors(*_POST_ERRORS)},
            parameters=[*params, top_k], requestBody=classify_body)},
        page + "/model.onnx": {"get": _operation("the ONNX file served", "page", {
            "200": {"description": "the file's bytes", "content": {OCTET: {"schema": {"type": "string",
                                                                                     "format": "binary"}}}},
            **_errors(404)}, parameters=params)},
    }  # fmt: skip


def _fixed_paths() -> dict:
    text = {"schema": {"type": "string"}}
    return {
        "/v2/health/live": {"get": _operation("Open Inference Protocol: the process is up", "v2", {
            "200": _json({"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
                         "live")})},
        "/v2/health/ready": {"get": _operation("Open Inference Protocol: ready to answer", "v2", {
            "200": _json({"type": "object", "required": ["ready"]}, "ready"), **_errors(503)})},
        "/v2": {"get": _operation("Open Inference Protocol: the server's metadata", "v2", {
            "200": _json({"type": "object", "required": ["name", "version", "extensions"],
                          "properties": {"extensions": {"type": "array", "items": {"type": "string"}}}},
                         "name, version and extensions")})},
        "/": {"get": _operation("the page", "page", {"200": {"description": "the page",
                                                            "content": {"text/html": text}}})},
        "/web/{file}": {"get": _operation("the page's script and style", "page", {
            "200": {"description": "the file", "content": {"text/javascript": text, "text/css": text}},
            **_errors(404)}, parameters=[{"name": "file", "in": "path", "required": True,
                                           "schema": {"type": "string"}}])},
        "/web/ort/{file}": {"get": _operation("onnxruntime-web's files, once installed", "page", {
            "200": {"description": "the file", "content": {"text/javascript": text,
                                                           "application/wasm": {"schema": {"type": "string"}}}},
            **_errors(404)}, parameters=[{"name": "file", "in": "path", "required": True,
                                           "schema": {"type": "string"}}])},
        "/models": {"get": _operation("the models served, with their versions", "page", {
            "200": _json({"type": "object", "required": ["models", "browser_engine"]}, "models")})},
        "/metrics": {"get": _operation("Prometheus metrics", "metrics", {
            "200": {"description": "the exposition", "content": {"text/plain": text}}, **_errors(404)})},
        "/openapi.json": {"get": _operation("this document", "openapi", {
            "200": _json({"type": "object"}, "the OpenAPI document")})},
    }  # fmt: skip


@functools.cache
def build() -> dict:
    """The document (one per process: nothing in it changes while the server runs)."""
    from shared.extras import version

    paths = {**_fixed_paths()}
    for base, versioned in (("/models/{name}", False), ("/models/{name}/versions/{version}", True)):
        for path, item in _model_paths(base, versioned).items():
            paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kerasreg serve",
            "version": version(),
            "description": "TensorFlow Serving's REST API (v1), the Open Inference Protocol (v2, with its binary "
            "tensor data extension), an image upload, the page and its files, and metrics. Every error is "
            f'{{"error": "..."}}. Versions run 1..{MAX_VERSION}. gRPC (inference.GRPCInferenceService) is '
            "described by serve/protocols/grpc/inference.proto.",
        },
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


@functools.cache
def _encoded() -> bytes:
    return orjson.dumps(build())


async def document(plane, request: Request) -> Response:
    """This API's OpenAPI 3.1 document."""
    return Response(200, _encoded())
