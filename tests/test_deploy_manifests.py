"""deploy/'s manifests, held to what they deploy: each custom resource valid against its engine's published CRD
(strictly: an unknown field fails, as under `kubectl --validate=strict`), the built-in kinds against
Kubernetes' own schemas, every container's arguments parsed by the command's own parser, images and ports as
`make image` and the server name them, and KServe's /mnt/models layout served as it is."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
import yaml
from http_servers import start_server

from serve.limits import GRPC_PORT, HTTP_PORT

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
CRDS = {  # (apiVersion, kind) -> the CRD file in ../shared/k8s-schemas
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "serving.kserve.io_servingruntimes.yaml",
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"): "serving.kserve.io_clusterservingruntimes.yaml",
    ("serving.kserve.io/v1beta1", "InferenceService"): "serving.kserve.io_inferenceservices.yaml",
    ("kubeflow.org/v1", "TFJob"): "kubeflow.org_tfjobs.yaml",
}
KUBERNETES_VERSION = "1.31"  # a version kubernetes-validate ships the schemas of


def _documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((str(path.relative_to(REPO)), document))
    return found


DOCUMENTS = _documents()
CUSTOM = [(where, d) for where, d in DOCUMENTS if (d["apiVersion"], d["kind"]) in CRDS]
BUILT_IN = [(where, d) for where, d in DOCUMENTS if (d["apiVersion"], d["kind"]) not in CRDS]


def _ids(documents):
    return [f"{where}:{d['kind']}" for where, d in documents]


@pytest.fixture(scope="module")
def schemas() -> Path:
    """The engines' CRDs (../shared/k8s-schemas in CI); skips where they are not given."""
    value = os.environ.get("KERASREG_K8S_SCHEMAS")
    if not value or not Path(value).is_dir():
        pytest.skip("KERASREG_K8S_SCHEMAS is not set to a folder: the CRD checks need ../shared/k8s-schemas")
    return Path(value)


def _strict(schema):
    """`schema` with unknown fields refused wherever the CRD lists an object's fields (the API server would
    prune them silently: a misspelt field would deploy and do nothing)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _crd_errors(schemas: Path, document: dict) -> list[str]:
    import jsonschema

    crd = yaml.safe_load((schemas / CRDS[(document["apiVersion"], document["kind"])]).read_text())
    version = document["apiVersion"].split("/")[1]
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    validator = jsonschema.Draft7Validator(_strict(served["schema"]["openAPIV3Schema"]))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_manifests_hold_every_kind_the_deploy_issue_asks_for():
    kinds = {d["kind"] for _, d in DOCUMENTS}
    assert {"ServingRuntime", "InferenceService", "Deployment", "Service", "TFJob"} <= kinds


@pytest.mark.parametrize(("where", "document"), CUSTOM, ids=_ids(CUSTOM))
def test_each_custom_resource_is_valid_against_its_published_crd(schemas, where, document):
    assert _crd_errors(schemas, document) == []


def test_the_crd_check_refuses_a_misspelt_field_and_a_wrong_type(schemas):
    [runtime] = [d for _, d in CUSTOM if d["kind"] == "ServingRuntime"]
    misspelt = json.loads(json.dumps(runtime))
    misspelt["spec"]["protocolVersion"] = misspelt["spec"].pop("protocolVersions")
    assert any("protocolVersion" in error for error in _crd_errors(schemas, misspelt))
    wrong = json.loads(json.dumps(runtime))
    wrong["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    assert any("containerPort" in error for error in _crd_errors(schemas, wrong))


@pytest.mark.parametrize(("where", "document"), BUILT_IN, ids=_ids(BUILT_IN))
def test_each_built_in_kind_is_valid_against_kubernetes_schemas(where, document):
    import kubernetes_validate

    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)  # raises ValidationError


def _containers(document: dict) -> list[dict]:
    """Every container a manifest starts, wherever its kind keeps them."""
    spec = document["spec"]
    if document["kind"] in ("ServingRuntime", "ClusterServingRuntime"):
        return spec["containers"]
    if document["kind"] == "Deployment":
        return spec["template"]["spec"]["containers"]
    if document["kind"] == "TFJob":
        return [c for replica in spec["tfReplicaSpecs"].values() for c in replica["template"]["spec"]["containers"]]
    return []


CONTAINERS = [(where, d["kind"], c) for where, d in DOCUMENTS for c in _containers(d)]


def _image_names() -> dict[str, str]:
    """The images `make image` builds, by the Containerfile each comes from."""
    makefile = (REPO / "Makefile").read_text()
    return dict(re.findall(r"^(SERVE|TRAIN)_IMAGE \?= (\S+)$", makefile, re.M))


@pytest.mark.parametrize(("where", "kind", "container"), CONTAINERS, ids=[f"{w}:{k}" for w, k, _ in CONTAINERS])
def test_every_container_runs_an_image_make_builds_with_arguments_its_command_takes(where, kind, container):
    images = _image_names()
    assert set(images) == {"SERVE", "TRAIN"}
    args = [arg.replace("{{.Name}}", "mnist") for arg in container["args"]]  # KServe fills the name in
    if container["image"] == images["SERVE"] + ":latest":
        from serve.cli import build_parser

        parsed = build_parser().parse_args(args)  # SystemExit on a renamed or unknown flag
        ports = {p["containerPort"] for p in container["ports"]}
        assert ports == {parsed.port, parsed.grpc_port}
        for probe in ("readinessProbe", "livenessProbe"):
            port = container[probe]["httpGet"]["port"]
            assert port in (parsed.port, "http"), f"{where}: the {probe} asks another port than HTTP's"
        if kind == "Deployment":  # plain Kubernetes keeps the server's own defaults, as a stock client expects
            assert (parsed.port, parsed.grpc_port) == (HTTP_PORT, GRPC_PORT)
    else:
        assert container["image"] == images["TRAIN"] + ":latest"
        from kerasreg.train import build_parser

        build_parser().parse_args(args)


def test_a_renamed_flag_fails_the_argument_check():
    from serve.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["http", "/mnt/models", "--grpc_port=8081"])


def test_the_service_forwards_to_the_ports_the_deployment_opens():
    [deployment] = [d for _, d in BUILT_IN if d["kind"] == "Deployment"]
    [service] = [d for _, d in BUILT_IN if d["kind"] == "Service"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(named)
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_tfjob_gives_every_worker_the_same_arguments_and_its_volume_for_out():
    [job] = [d for _, d in CUSTOM if d["kind"] == "TFJob"]
    [worker] = job["spec"]["tfReplicaSpecs"].values()
    assert worker["replicas"] >= 2
    [container] = worker["template"]["spec"]["containers"]
    out = next(arg.split("=", 1)[1] for arg in container["args"] if arg.startswith("--out="))
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert any(out.startswith(mount + "/") for mount in mounts), f"--out {out} is on no volume"


def test_serve_http_serves_the_folder_kserve_lays_out_at_mnt_models(tmp_path, digits_export, no_tensorflow_env):
    """KServe's storage initializer copies the export folder's files to /mnt/models; the runtime's own
    arguments must serve them, under the InferenceService's name."""
    import shutil

    mnt_models = tmp_path / "mnt" / "models"
    shutil.copytree(digits_export.parent, mnt_models)
    [runtime] = [d for _, d in CUSTOM if d["kind"] == "ServingRuntime"]
    args = [a.replace("{{.Name}}", "mnist") for a in runtime["spec"]["containers"][0]["args"]]
    assert args[:2] == ["http", "/mnt/models"]
    kept = [a for a in args[2:] if a.startswith("--name=")]  # the port and host are the test's own
    process, port = start_server(mnt_models, no_tensorflow_env, *kept)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/mnist/ready", timeout=10) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/mnist", timeout=10) as answer:
            assert json.loads(answer.read())["versions"] == ["1"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_built_in_check_refuses_a_misspelt_field():
    import kubernetes_validate

    [deployment] = [d for _, d in BUILT_IN if d["kind"] == "Deployment"]
    misspelt = json.loads(json.dumps(deployment))
    misspelt["spec"]["replica"] = misspelt["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)
