"""The model repository: versions found, loaded and checked before they serve, swapped, drained, refused."""

import logging
import os
import shutil
from pathlib import Path

import onnx
import pytest
from http_servers import answer

from serve.errors import ModelNotFound, NotReady
from serve.plane.dataplane import DataPlane
from serve.plane.repository import ModelRepository
from serve.protocols.routes import build_app


def _place(root: Path, name: str, version: int, model: Path) -> Path:
    folder = root / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, folder / "model.onnx")
    return folder / "model.onnx"


def _poll(repository: ModelRepository, times: int = 1) -> None:
    for _ in range(times):
        repository.apply(repository.prepare())


@pytest.fixture
def lying(tmp_path, digits_export) -> Path:
    """A model whose metadata claims 2 classes while the graph has 10."""
    model = onnx.load(str(digits_export))
    props = {p.key: p.value for p in model.metadata_props}
    props["kerasreg.classes"] = '["a", "b"]'
    onnx.helper.set_model_props(model, props)
    path = tmp_path / "lying.onnx"
    onnx.save(model, path)
    return path


def test_every_version_is_served_and_the_newest_answers_by_default(tmp_path, digits_export):
    root = tmp_path / "models"
    for version in (1, 2, 10):
        _place(root, "digits", version, digits_export)
    _place(root, "other", 3, digits_export)
    (root / "digits" / "latest").mkdir()  # not a version: ignored
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    assert repository.names() == ["digits", "other"]
    assert repository.versions("digits") == [10, 2, 1]
    served = repository.acquire("digits")
    assert (served.version, served.in_flight) == (10, 1)
    repository.release(served)
    assert repository.acquire("digits", 2).version == 2
    with pytest.raises(ModelNotFound, match=r"model 'digits' has no version 3; it has: 1, 2, 10."):
        repository.acquire("digits", 3)
    with pytest.raises(ModelNotFound, match=r"model 'mnist' not found; this server has: digits, other."):
        repository.acquire("mnist")


def test_a_new_version_is_loaded_once_its_file_has_held_still_for_a_poll(tmp_path, digits_export):
    root = tmp_path / "models"
    _place(root, "digits", 1, digits_export)
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    _place(root, "digits", 2, digits_export)
    _poll(repository)
    assert repository.versions("digits") == [1]  # seen once: it may still be being copied
    _poll(repository)
    assert repository.versions("digits") == [2, 1]


def test_a_removed_version_stops_taking_requests_and_drains_its_own(tmp_path, digits_export, caplog):
    root = tmp_path / "models"
    for version in (1, 2):
        _place(root, "digits", version, digits_export)
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    busy = repository.acquire("digits", 2)  # a request in flight on version 2
    shutil.rmtree(root / "digits" / "2")
    _poll(repository)
    assert repository.versions("digits") == [2, 1]  # gone at one read only: it may be an atomic swap
    with caplog.at_level(logging.INFO, logger="serve.plane.repository"):
        _poll(repository)
        assert repository.versions("digits") == [1]
        assert repository.acquire("digits").version == 1  # new requests go to what is left
        assert [s["state"] for s in repository.states("digits")] == ["UNLOADING", "AVAILABLE"]
        assert "drained" not in caplog.text
        busy.model.predict(busy.model.validate([[[0]] * 8] * 8))  # the request in flight finishes on it
        repository.release(busy)
    assert "model digits version 2 drained" in caplog.text
    assert [s["state"] for s in repository.states("digits")] == ["AVAILABLE"]


def test_a_broken_version_is_not_served_is_logged_once_and_the_others_serve_on(tmp_path, digits_export, lying, caplog):
    root = tmp_path / "models"
    _place(root, "digits", 1, digits_export)
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    (root / "digits" / "2").mkdir()
    (root / "digits" / "2" / "model.onnx").write_bytes(b"garbage")
    _place(root, "digits", 3, lying)
    with caplog.at_level(logging.ERROR, logger="serve.plane.repository"):
        _poll(repository, times=5)
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 2, errors  # once each, not once per poll
    assert errors[0].startswith("model digits version 2 is not served: ") and "not a loadable ONNX model" in errors[0]
    assert "kerasreg.classes names 2 classes but the graph's output is ['batch', 10]" in errors[1]
    assert repository.versions("digits") == [1] and repository.ready()
    states = repository.states("digits")
    assert [(s["version"], s["state"]) for s in states] == [(3, "FAILED"), (2, "FAILED"), (1, "AVAILABLE")]


def test_a_served_file_replaced_by_a_broken_one_keeps_the_loaded_copy(tmp_path, digits_export, caplog):
    root = tmp_path / "models"
    path = _place(root, "digits", 1, digits_export)
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.ERROR, logger="serve.plane.repository"):
        _poll(repository, times=3)
    assert "model digits version 1 is not served (the loaded copy serves on)" in caplog.text
    assert repository.acquire("digits").model.data == digits_export.read_bytes()


def test_a_changed_file_is_reloaded_and_the_old_copy_drains(tmp_path, digits_export, caplog):
    root = tmp_path / "models"
    path = _place(root, "digits", 1, digits_export)
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    old = repository.acquire("digits")
    shutil.copy(digits_export, path)
    os.utime(path, ns=(1, 1))  # another mtime: a new file as far as the repository can tell
    with caplog.at_level(logging.INFO, logger="serve.plane.repository"):
        _poll(repository, times=2)
        new = repository.acquire("digits")
        assert new is not old and old.retired and "reloaded model digits version 1" in caplog.text
        repository.release(old)
    assert "model digits version 1 drained" in caplog.text


def test_one_model_file_stays_served_when_it_disappears_for_a_moment(tmp_path, digits_export):
    path = tmp_path / "model.onnx"
    shutil.copy(digits_export, path)
    repository = ModelRepository(path, "digits")
    repository.apply(repository.prepare(initial=True))
    path.unlink()  # export --overwrite swaps the folder: the file is gone for an instant
    _poll(repository, times=3)
    assert repository.versions("digits") == [1]


def test_a_model_with_no_version_that_loads_answers_503_saying_why(tmp_path, digits_export):
    root = tmp_path / "models"
    _place(root, "digits", 1, digits_export)
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"garbage")
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    with pytest.raises(NotReady, match="model 'broken' has no version that loads: .*not a loadable ONNX model"):
        repository.acquire("broken")
    app = build_app(DataPlane(repository))
    status, body = answer(app, "GET", "/v1/models/broken")
    assert status == 200 and body["model_version_status"][0]["state"] == "END"
    assert answer(app, "GET", "/v2/health/ready") == (200, {"ready": True})  # every served model has a version


def test_the_model_file_route_serves_what_was_loaded_even_once_the_file_is_gone(tmp_path, digits_export):
    from http_servers import app_for, respond

    path = tmp_path / "model.onnx"
    shutil.copy(digits_export, path)
    app = app_for(path)
    path.unlink()
    response = respond(app, "GET", "/models/digits/model.onnx")
    assert (response.status, response.body) == (200, digits_export.read_bytes())


def _folder(root: Path, name: str, version: str, model: Path) -> None:
    (root / name / version).mkdir(parents=True)
    shutil.copy(model, root / name / version / "model.onnx")


def test_only_canonical_folder_names_are_versions_each_warned_of_once(tmp_path, digits_export, caplog):
    root = tmp_path / "models"
    for version in ("2", "\u00b2", "\u2460", "0", "007", "9" * 29, "x\ny"):
        _folder(root, "digits", version, digits_export)
    repository = ModelRepository(root)
    with caplog.at_level(logging.WARNING, logger="serve.plane.repository"):
        repository.apply(repository.prepare(initial=True))
        _poll(repository, 3)  # a poll after a poll: no traceback, no warning said twice
    assert repository.versions("digits") == [2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 6 and all("\n" not in w for w in warnings), warnings
    assert any("x\\ny" in w for w in warnings)  # a folder name is escaped where it is logged
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    _folder(root, "digits", "3", digits_export)  # a later change is still applied
    _poll(repository, 2)
    assert repository.versions("digits") == [3, 2]
    status, listed = answer(build_app(DataPlane(repository)), "GET", "/models")  # was a 500 for the 29 nines
    assert status == 200 and listed["models"] == [{"name": "digits", "versions": [3, 2]}]


def test_two_folders_naming_one_version_are_both_refused(tmp_path, digits_export, caplog):
    root = tmp_path / "models"
    for version in ("1", "01", "\u0661", "2"):
        _folder(root, "digits", version, digits_export)
    repository = ModelRepository(root)
    with caplog.at_level(logging.WARNING, logger="serve.plane.repository"):
        repository.apply(repository.prepare(initial=True))
    assert repository.versions("digits") == [2]
    (clash,) = [r.getMessage() for r in caplog.records if "all name version 1" in r.getMessage()]
    assert f"{root / 'digits' / '01'}" in clash and f"{root / 'digits' / '1'}" in clash


def test_a_model_file_over_the_limit_is_not_read(tmp_path, digits_export, caplog):
    root = tmp_path / "models"
    _place(root, "digits", 1, digits_export)
    big = root / "digits" / "2" / "model.onnx"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate(3 * 2**30)  # 3 GB, sparse: no disk, and nothing may read it
    repository = ModelRepository(root)
    with caplog.at_level(logging.ERROR, logger="serve.plane.repository"):
        repository.apply(repository.prepare(initial=True))
    assert repository.versions("digits") == [1]
    (said,) = [r.getMessage() for r in caplog.records if "version 2" in r.getMessage()]
    assert "3,221,225,472 bytes is over the limit of 268,435,456 (--max-model-bytes)" in said


def test_a_served_file_replaced_by_a_fifo_or_a_folder_keeps_its_copy_serving(tmp_path, digits_export, caplog):
    root = tmp_path / "models"
    path = _place(root, "digits", 1, digits_export)
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    path.unlink()
    os.mkfifo(path)
    with caplog.at_level(logging.WARNING, logger="serve.plane.repository"):
        _poll(repository, 4)
    assert repository.versions("digits") == [1] and repository.ready()
    assert answer(build_app(DataPlane(repository)), "GET", "/v2/health/ready") == (200, {"ready": True})
    said = [r.getMessage() for r in caplog.records if "not a regular file" in r.getMessage()]
    assert len(said) == 1 and "the copy loaded before serves on" in said[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", ["/v1/models/digits:predict", "/v2/models/digits/infer"])
def test_a_version_swapped_out_mid_request_answers_the_request_that_named_none(
    tmp_path, digits_export, path, monkeypatch
):
    # The reload lands while the request is parsed. Before, every protocol looked the version up, parsed, then asked
    # for that version again to infer: by then it was gone, and a request that named no version got a 404.
    import json

    from serve.protocols import oip_v2, tfserving_v1

    root = tmp_path / "models"
    _place(root, "digits", 1, digits_export)
    repository = ModelRepository(root)
    repository.apply(repository.prepare(initial=True))
    app = build_app(DataPlane(repository))
    swapped = []

    def parse_during_a_reload(body):
        if not swapped:
            shutil.rmtree(root / "digits" / "1")
            _place(root, "digits", 2, digits_export)
            repository.apply(repository.prepare(initial=True))
            _poll(repository, 2)  # gone at two reads in a row: version 1 is taken out
            swapped.append(repository.versions("digits"))
        return json.loads(body)

    for module in (oip_v2, tfserving_v1):
        monkeypatch.setattr(module, "parse_json", parse_during_a_reload)
    image = [[[0.0]] * 8] * 8  # floats: not the v1 fast path, so the JSON parser runs
    tensor = {"name": "images", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": [0.0] * 64}
    body = json.dumps({"instances": [image]} if "v1" in path else {"inputs": [tensor]}).encode()
    status, reply = answer(app, "POST", path, body)
    assert swapped == [[2]]
    assert status == 200, reply  # 404 "model 'digits' has no version 1" before
    assert reply["model_version"] == "1"  # it finished on the version it started with, which then drained
    status, reply = answer(app, "POST", path, body)
    assert (status, reply["model_version"]) == (200, "2")
