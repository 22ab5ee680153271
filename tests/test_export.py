"""Export: SavedModel and ONNX parity, names, metadata, refusals and atomicity."""

import hashlib
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from trained_runs import synthetic_dataset, train_small

from export.cli import main as export_main
from export.errors import ExportError, ValidationFailed
from export.exporter import export_run
from kerasreg.errors import RunDirError
from kerasreg.model import class_probabilities
from kerasreg.run_directory import files

SHAPES = {
    "mnist-like": ((28, 28, 1), 10, "multiclass"),
    "cifar-like": ((32, 32, 3), 10, "multiclass"),
    "binary": ((32, 32, 3), 2, "binary"),
}


@pytest.fixture(scope="module", params=list(SHAPES))
def exported(request, tmp_path_factory):
    shape, classes, task = SHAPES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    run = train_small(root / "run", synthetic_dataset(shape, classes, task))
    card = export_run(run, root / "export")
    return run, root / "export", card, (shape, classes, task)


def test_onnx_contract_names_shapes_and_parity(exported):
    run, out, card, (shape, classes, task) = exported
    model = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(model)
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert inp.name == "images" and outp.name == "probabilities"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", *shape]
    assert [d.dim_param or d.dim_value for d in outp.type.tensor_type.shape.dim] == ["batch", classes]
    # Rescale and standardisation are folded into the classifier: one affine map, then the activation.
    ops = [n.op_type for n in model.graph.node]
    assert ops[:4] == ["Cast", "Reshape", "MatMul", "Add"] and ops.count("MatMul") == 1 and len(ops) <= 7, ops

    images, _ = files.read_sample(run / files.TEST_SAMPLE)
    keras_probs = class_probabilities(files.load_run_model(run).predict(images, verbose=0), task)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {"images": images})[0]
    assert onnx_probs.shape == (len(images), classes)
    np.testing.assert_allclose(onnx_probs, keras_probs, atol=1e-5)
    np.testing.assert_allclose(onnx_probs.sum(axis=1), 1.0, atol=1e-5)  # binary too: (1-p, p)
    assert (onnx_probs.argmax(1) == keras_probs.argmax(1)).all()
    single = session.run(None, {"images": images[:1]})[0]
    assert single.shape == (1, classes)


def test_saved_model_serving_signature(exported):
    run, out, _, (shape, classes, _) = exported
    signature = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["images"]
    assert signature.structured_input_signature[1]["images"].dtype == tf.uint8
    assert list(signature.structured_outputs) == ["probabilities"]
    images, _ = files.read_sample(run / files.TEST_SAMPLE)
    assert signature(images=tf.constant(images[:3]))["probabilities"].shape == (3, classes)


@pytest.mark.slow
def test_saved_model_runs_without_kerasreg(exported, tmp_path):
    import subprocess
    import sys

    from conftest import env_blocking

    run, out, _, (shape, classes, _) = exported
    code = (
        "import numpy as np, tensorflow as tf; "
        f"f = tf.saved_model.load({str(out / 'saved_model')!r}).signatures['serving_default']; "
        f"print(f(images=tf.zeros((2, *{shape!r}), tf.uint8))['probabilities'].shape)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env_blocking(tmp_path, ("kerasreg", "export")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == f"(2, {classes})"


def test_metadata_and_model_card(exported):
    run, out, card, (shape, classes, task) = exported
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert {
        "kerasreg.classes",
        "kerasreg.task",
        "kerasreg.input",
        "kerasreg.dataset",
        "kerasreg.metrics",
        "kerasreg.version",
        "kerasreg.exported_at",
    } <= set(props)
    assert len(json.loads(props["kerasreg.classes"])) == classes
    assert props["kerasreg.task"] == task and props["kerasreg.dataset"] == "synthetic"
    assert json.loads(props["kerasreg.input"]) == {
        "name": "images",
        "shape": [None, *shape],
        "dtype": "uint8",
        "range": [0, 255],
        "layout": "NHWC",
    }
    assert json.loads(props["kerasreg.metrics"]) == json.loads((run / files.METRICS).read_text())
    stored = json.loads((out / "model.json").read_text())
    assert stored == card
    assert card["parity"]["passed"] and card["parity"]["artifacts"]["model.onnx"]["max_abs_diff"] <= 1e-5
    assert card["files"]["model.onnx"]["sha256"] == hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    assert card["files"]["model.onnx"]["bytes"] == (out / "model.onnx").stat().st_size
    assert {"tensorflow", "tf2onnx", "onnxruntime"} <= set(card["versions"])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return train_small(tmp_path_factory.mktemp("small") / "run", synthetic_dataset((28, 28, 1), 10), epochs=1)


def test_existing_output_is_refused_then_swapped_with_overwrite(small_run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert export_main([str(small_run), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"python -m export: error: {out} already exists; pass --overwrite to replace it, or choose another --out."
    )
    assert export_main([str(small_run), "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx", "samples", "saved_model"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the old copy and the stage are gone


def test_failed_validation_leaves_nothing(small_run, tmp_path, capsys):
    out = tmp_path / "out"
    # atol 0 is unreachable for float32 sums of 784 products in another runtime.
    with pytest.raises(ValidationFailed) as e:
        export_run(small_run, out, atol=0.0)
    assert any(f.startswith("model.onnx: max diff = ") and f.endswith("(atol: 0)") for f in e.value.failures)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert export_main([str(small_run), "--out", str(out), "--atol", "0"]) == 1
    assert "validation failed, nothing written" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "is not a directory; pass a run directory written by python -m kerasreg.train."),
        ("corrupt", "config.json: unreadable or not JSON"),
        ("no-metrics", "metrics.json not found; is"),
    ],
)
def test_bad_run_directories_are_one_line(small_run, tmp_path, setup, message, capsys):

    run = tmp_path / "run"
    if setup != "missing":
        shutil.copytree(small_run, run)
    if setup == "corrupt":
        (run / files.CONFIG).write_text("{not json")
    if setup == "no-metrics":
        (run / files.METRICS).unlink()
    with pytest.raises(RunDirError, match=message):
        export_run(run, tmp_path / "out")
    assert export_main([str(run), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m export: error: ") and "\n" not in err


def test_bad_opset_and_unwritable_output(small_run, tmp_path):
    with pytest.raises(ExportError, match=r"Received opset=19. Expected 13..18"):
        export_run(small_run, tmp_path / "out", opset=19)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot create .*; choose a writable --out."):
        export_run(small_run, blocker / "sub" / "out")


def test_older_opset_exports(small_run, tmp_path):
    export_run(small_run, tmp_path / "out", opset=13)
    opsets = {o.domain: o.version for o in onnx.load(str(tmp_path / "out" / "model.onnx")).opset_import}
    assert opsets[""] == 13


def test_mixed_precision_run_exports_at_float32(tmp_path):
    from kerasreg.config import TrainConfig
    from kerasreg.pipeline import train_and_evaluate

    train_and_evaluate(
        TrainConfig(dataset="digits", epochs=2, l2=0.01, learning_rate=0.01, mixed_precision=True), tmp_path / "run"
    )
    trained = files.load_run_model(tmp_path / "run")
    assert trained.get_layer("classifier").dtype_policy.name == "mixed_float16"
    assert trained.output.dtype == "float32"  # the final activation is kept in float32
    card = export_run(tmp_path / "run", tmp_path / "out")  # default atol 1e-5 holds
    assert card["parity"]["artifacts"]["model.onnx"]["max_abs_diff"] <= 1e-5
    model = onnx.load(str(tmp_path / "out" / "model.onnx"))
    assert all(t.data_type != onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


@pytest.mark.slow
def test_a_killed_export_leaves_no_export_dir(small_run, tmp_path):
    import signal
    import subprocess
    import sys

    from kill_points import env_killed_at

    out = tmp_path / "out"
    # SIGKILL mid-export: the SavedModel is written, the ONNX file is being converted from it.
    env = env_killed_at(tmp_path / "hook", "export.onnx_convert", "OnnxFormat.build")
    killed = subprocess.run([sys.executable, "-m", "export", str(small_run), "--out", str(out)], env=env, timeout=240)
    assert killed.returncode == -signal.SIGKILL
    (stage,) = tmp_path.glob(".out.partial-*")
    assert (stage / "saved_model").is_dir() and not out.exists()
    # The next export is not confused by the leftover stage, and removes it.
    export_run(small_run, out)
    assert (out / "model.onnx").is_file() and not (out / ".owner").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_a_stage_of_an_export_still_running_is_left_alone(small_run, tmp_path):
    import os
    import socket

    from export.staging import OWNER, remove_stale_stages

    out = tmp_path / "out"
    running = tmp_path / ".out.partial-running"
    running.mkdir()
    (running / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")  # this process: alive
    dead = tmp_path / ".out.partial-dead"
    dead.mkdir()
    (dead / OWNER).write_text(f"{socket.gethostname()} 999999999\n")
    assert remove_stale_stages(out) == [dead]
    assert running.is_dir() and not dead.exists()


def test_wrong_onnx_names_fail_validation_with_every_problem_listed(small_run, tmp_path, monkeypatch):
    from export import onnx_convert

    real_convert = onnx_convert.convert_saved_model

    def misnamed(saved_model_dir, opset):
        model = real_convert(saved_model_dir, opset)
        model.graph.output[0].name = "output_0"  # what a plain model.export would have called it
        for node in model.graph.node:
            node.output[:] = ["output_0" if o == "probabilities" else o for o in node.output]
        return model

    monkeypatch.setattr(onnx_convert, "convert_saved_model", misnamed)
    with pytest.raises(ValidationFailed) as e:
        export_run(small_run, tmp_path / "out")
    assert e.value.failures == ["model.onnx: outputs are ['output_0'], expected ['probabilities']"]
    assert not (tmp_path / "out").exists()


def test_int8_export_without_real_data_and_the_root_logger_untouched(small_run, tmp_path, caplog):
    import logging

    level = logging.getLogger().level
    with caplog.at_level(logging.WARNING):
        card = export_run(small_run, tmp_path / "out", quantize="int8")
    assert logging.getLogger().level == level
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
    entry = card["parity"]["artifacts"]["model.int8.onnx"]
    assert entry["argmax_agreement"] >= 0.9 and "accuracy_change" in entry
    session = ort.InferenceSession(str(tmp_path / "out" / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    images, _ = files.read_sample(small_run / files.TEST_SAMPLE)
    assert session.run(None, {"images": images[:4]})[0].shape[0] == 4
    props = {p.key for p in onnx.load(str(tmp_path / "out" / "model.int8.onnx")).metadata_props}
    assert {"kerasreg.classes", "kerasreg.quantization"} <= props


def test_the_card_keeps_the_l2_searchs_outcome_not_its_path():
    from export.card import card_metrics

    points = [{"l2": 1.0}, {"l2": 0.1}, {"l2": 0.0316}]
    search = {"grid": [1.0, 0.1], "points": points, "chosen_l2": 0.1, "refit_l2": 0.09}
    search.update(C=0.005, n_search=900, n_all=1000, seconds=1.5, added=[0.0316], at_bound=False)
    metrics = {"accuracy": 0.9, "l2_search": search}
    assert card_metrics(metrics) == {
        "accuracy": 0.9,
        "l2_search": {"chosen_l2": 0.1, "refit_l2": 0.09, "C": 0.005, "n_search": 900, "n_all": 1000},
    }
    assert card_metrics({"accuracy": 0.9}) == {"accuracy": 0.9}


def test_the_samples_show_every_class_in_turn():
    from export.exporter import across_classes

    sorted_by_class = np.array([0] * 40 + [1] * 40)  # five of the first class, before
    assert across_classes(sorted_by_class, 5).tolist() == [0, 1, 2, 40, 41]
    assert sorted(set(sorted_by_class[across_classes(sorted_by_class, 5)])) == [0, 1]
    assert across_classes(np.array([2, 0, 1, 2, 0]), 3).tolist() == [0, 1, 2]  # one of each
    assert across_classes(np.array([1, 1]), 5).tolist() == [0, 1]  # no more than there are
