"""GET /openapi.json: a valid OpenAPI 3.1 document of every route, held to the live server by schemathesis."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest
from http_servers import app_for, respond, start_server

from serve.protocols import openapi
from serve.protocols.routes import ROUTES

# schemathesis's examples per operation: a short deterministic run in `make test`, a long random one in `make fuzz`.
EXAMPLES = int(os.environ.get("KERASREG_SCHEMATHESIS_EXAMPLES", "25"))


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate

    document = openapi.build()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_described_and_nothing_else():
    described = {path: {method.upper() for method in item} for path, item in openapi.build()["paths"].items()}
    routes = {route.pattern: set(route.methods) for route in ROUTES}
    assert described == routes


def test_the_server_serves_the_document(digits_export):
    response = respond(app_for(digits_export), "GET", "/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert json.loads(response.body) == json.loads(json.dumps(openapi.build()))


def _schema(name: str) -> dict:
    """A component schema, resolvable on its own (its $refs point into the whole document)."""
    document = openapi.build()
    return {**document["components"]["schemas"][name], "components": document["components"]}


# What schemathesis found, kept as fixed examples: requests its generator built from a looser document and the
# server refused. The document now forbids each, and the server still refuses each.
FOUND = [
    ("PredictRequest", "/v1/models/digits:predict", {"inputs": {}}, "application/json"),
    ("PredictRequest", "/v1/models/digits:predict", {"instances": []}, "application/json"),
    ("InferRequest", "/v2/models/digits/infer", {"inputs": [], "id": 5}, "application/json"),
    ("InferRequest", "/v2/models/digits/infer",
     {"inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": [0] * 64}],
      "parameters": "binary"}, "application/json"),
]  # fmt: skip


@pytest.mark.parametrize("schema, path, body, content_type", FOUND)
def test_what_the_fuzzer_found_is_forbidden_and_refused(digits_export, schema, path, body, content_type):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, _schema(schema))
    response = respond(app_for(digits_export), "POST", path, json.dumps(body).encode(), {"content-type": content_type})
    assert response.status == 400 and set(json.loads(response.body)) == {"error"}


def test_an_empty_form_is_forbidden_and_refused(digits_export):
    form = openapi.build()["paths"]["/models/{name}/classify"]["post"]["requestBody"]["content"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"image": []}, form["multipart/form-data"]["schema"])
    response = respond(
        app_for(digits_export), "POST", "/models/digits/classify", b"--b--\r\n",
        {"content-type": "multipart/form-data; boundary=b"},
    )  # fmt: skip
    assert response.status == 400


@pytest.mark.slow
@pytest.mark.fuzz
def test_schemathesis_finds_no_5xx_and_no_answer_the_document_does_not_allow(
    digits_export, no_tensorflow_env, tmp_path
):
    """Every check but positive_data_acceptance: a schema cannot say that a tensor's data must fill its shape, or
    that an image's bytes must decode, so schema-valid requests the server rightly refuses are no finding."""
    process, port = start_server(digits_export, no_tensorflow_env, "--max-batch", "8", "--drain-seconds", "0")
    config = tmp_path / "schemathesis.toml"
    # Real names, so the generated requests reach the models and files, not only the 404s of made-up ones.
    config.write_text('[parameters]\n"path.name" = "digits"\n"path.version" = "1"\n"path.file" = "app.js"\n')
    deterministic = ["--generation-deterministic"] if os.environ.get("CI") else []
    try:
        done = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
             f"http://127.0.0.1:{port}/openapi.json", "--checks", "all", "--exclude-checks",
             "positive_data_acceptance", "--max-examples", str(EXAMPLES), "--workers", "1", "--continue-on-failure",
             *deterministic],
            capture_output=True, text=True, timeout=1800, cwd=tmp_path,  # its example database goes there
        )  # fmt: skip
    finally:
        process.terminate()
        process.communicate(timeout=20)
    summary = done.stdout[done.stdout.find("SUMMARY") :]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "generated" in summary and "failures" not in summary.lower().replace("no failures", "")
