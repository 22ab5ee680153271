"""serve's library and CLI, on a model exported by the export code."""

import io
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from PIL import Image

from kerasreg.datasets import load_dataset
from serve import BadInput, Model, ModelLoadError
from serve.runtime.image_input import decode_image, load_image_file


@pytest.fixture(scope="module")
def model(digits_export):
    return Model.load(digits_export)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_metadata_drives_the_model(model):
    assert model.info.classes == tuple("0123456789")
    assert model.info.input_shape == (8, 8, 1) and model.info.task == "multiclass"
    assert model.info.properties["kerasreg.metrics"]["n_test"] == 360


def test_predict_batch_single_and_channelless(model, digits):
    batch = model.predict(digits.test_images[:5])
    assert batch.shape == (5, 10)
    np.testing.assert_allclose(batch.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(model.predict(digits.test_images[0]), batch[:1], atol=1e-6)
    np.testing.assert_allclose(model.predict(digits.test_images[:5, ..., 0]), batch, atol=1e-6)
    accuracy = (model.predict(digits.test_images).argmax(1) == digits.test_labels).mean()
    assert accuracy > 0.85


def test_classify_returns_names_highest_first(model, digits):
    (top,) = model.classify(digits.test_images[0], top_k=3)
    assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert top[0][0] == str(model.predict(digits.test_images[0]).argmax())


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 28, 28, 1), np.uint8), r"images have shape \[2, 28, 28, 1\]; expected \[N,8,8,1\] or \[8,8,1\]."),
        (np.full((8, 8, 1), np.nan), "images contain NaN or infinity"),
        (np.full((8, 8, 1), 300), r"pixel values range 300..300; expected 0..255."),
        (np.array([["a"] * 8] * 8), "images have dtype <U1; expected integers 0..255"),
        ([[1, 2], [3]], "ragged"),
    ],
)
def test_bad_input_is_a_clear_error(model, images, message):
    with pytest.raises(BadInput, match=message):
        model.predict(images)


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match=r"not found; pass the model.onnx \(or .tflite\) written by python -m"):
        Model.load(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        Model.load(tmp_path / "junk.onnx")
    x = onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["images"], ["y"])],
        "g",
        [x],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), tmp_path / "bare.onnx")
    with pytest.raises(ModelLoadError, match="lacks kerasreg.classes, kerasreg.task, kerasreg.input"):
        Model.load(tmp_path / "bare.onnx")


def _png(array, mode):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_are_converted_to_the_models_channels_and_size():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[8:24, 8:24] = 255
    out = decode_image(_png(rgb, "RGB"), "x.png", (8, 8), 1)
    assert out.shape == (8, 8, 1) and out.dtype == np.uint8
    assert out[4, 4, 0] == 255 and out[0, 0, 0] == 0
    inverted = decode_image(_png(rgb, "RGB"), "x.png", (8, 8), 1, invert=True)
    assert inverted[4, 4, 0] == 0 and inverted[0, 0, 0] == 255
    gray = np.full((10, 10), 128, np.uint8)
    assert decode_image(_png(gray, "L"), "g.png", (32, 32), 3).shape == (32, 32, 3)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((8, 8), np.uint8))
    assert decode_image(buffer.getvalue(), "a.npy", (8, 8), 1).shape == (8, 8, 1)


def test_corrupt_image_is_bad_input(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(_png(np.zeros((8, 8), np.uint8), "L")[:30])
    with pytest.raises(BadInput, match="broken.png: not a readable PNG, JPEG, BMP, GIF or WebP image"):
        load_image_file(path, (8, 8), 1)


@pytest.mark.slow
def test_cli_predict_runs_where_tensorflow_cannot_be_imported(digits_export, digits, no_tensorflow_env, tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(digits.test_images[i, ..., 0], "L").save(path)
        paths.append(str(path))
    probe = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=no_tensorflow_env, capture_output=True, text=True
    )
    assert probe.returncode != 0 and "tensorflow is blocked" in probe.stderr  # the block really works
    result = subprocess.run(
        [sys.executable, "-m", "serve", "predict", str(digits_export), *paths, "--json", "--top-k", "2"],
        env=no_tensorflow_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["image"] for line in lines] == paths
    expected = Model.load(digits_export).classify(digits.test_images[:3], top_k=2)
    for line, top in zip(lines, expected, strict=True):
        assert [p["class"] for p in line["predictions"]] == [c for c, _ in top]
        assert line["predictions"][0]["probability"] == pytest.approx(top[0][1], abs=1e-6)


@pytest.mark.slow
def test_cli_info_and_errors(digits_export, no_tensorflow_env, tmp_path):
    info = subprocess.run(
        [sys.executable, "-m", "serve", "info", str(digits_export)],
        env=no_tensorflow_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert info.returncode == 0 and "classes:  0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in info.stdout
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    result = subprocess.run(
        [sys.executable, "-m", "serve", "predict", str(digits_export), str(bad)],
        env=no_tensorflow_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"python -m serve: error: {bad}: not a readable PNG, JPEG, BMP, GIF or WebP image (UnidentifiedImageError)."
    )


def test_serve_extras_do_not_pull_in_tensorflow():
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent.parent / "setup.py").read_text())
    lists = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    for extra in ("SERVE", "HTTP"):
        text = ast.unparse(lists[extra])
        assert "tensorflow" not in text and "keras" not in text and "tf2onnx" not in text and "TRAIN" not in text


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP"])
def test_every_supported_file_format_decodes(tmp_path, fmt):
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, 8:] = 255
    path = tmp_path / f"x.{fmt.lower()}"
    Image.fromarray(image, "RGB").save(path, format=fmt)
    out = load_image_file(path, (8, 8), 1)
    assert out.shape == (8, 8, 1)
    assert out[:, :3].max() < 30 and out[:, 5:].min() > 225  # left dark, right light, whatever the codec


@pytest.mark.parametrize("mode, shape", [("L", (30, 20)), ("RGB", (16, 24, 3))])
@pytest.mark.parametrize("channels", [1, 3])
def test_fast_png_decoder_gives_what_pillow_gives(monkeypatch, mode, shape, channels):
    pyspng = pytest.importorskip("pyspng", reason="the fast PNG path is pyspng's (the serve extra installs it)")
    from serve.runtime import image_input as images

    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    data = _png(array, mode)
    calls = []
    real_load = pyspng.load
    monkeypatch.setattr(images.pyspng, "load", lambda raw: calls.append(len(raw)) or real_load(raw))
    fast = decode_image(data, "x.png", (8, 8), channels)
    assert calls == [len(data)]  # libspng decoded it, not Pillow
    monkeypatch.setattr(images, "_plain_png", lambda *args: None)  # Pillow alone
    np.testing.assert_array_equal(fast, decode_image(data, "x.png", (8, 8), channels))
    assert len(calls) == 1


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
    data = _png(np.zeros((40, 50), np.uint8), "L")
    with pytest.raises(BadInput, match=r"^x.png: 50x40 pixels exceeds the limit of 1,999; send it smaller.$"):
        decode_image(data, "x.png", (8, 8), 1, max_pixels=1999)
    jpeg = io.BytesIO()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(jpeg, format="JPEG")
    with pytest.raises(BadInput, match="50x40 pixels exceeds the limit"):
        decode_image(jpeg.getvalue(), "x.jpg", (8, 8), 1, max_pixels=1999)


@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            "kerasreg.input",
            {"name": "images", "shape": [None, 28, 28, 1]},
            "says images of [28, 28, 1] but the graph takes [8, 8, 1]",
        ),
        ("kerasreg.classes", ["a", "b", "c"], "names 3 classes but the graph's output is ['batch', 10]"),
        (
            "kerasreg.input",
            {"name": "pixels", "shape": [None, 8, 8, 1]},
            "names 'pixels' but the graph's input is 'images'",
        ),
    ],
)
def test_metadata_that_disagrees_with_the_graph_is_one_clear_error(digits_export, tmp_path, key, value, message):
    model = onnx.load(str(digits_export))
    props = {p.key: p.value for p in model.metadata_props}
    props[key] = json.dumps(value)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, tmp_path / "tampered.onnx")
    with pytest.raises(ModelLoadError) as e:
        Model.load(tmp_path / "tampered.onnx")
    assert message in str(e.value) and str(e.value).startswith(str(tmp_path / "tampered.onnx"))


def test_a_litert_file_serves_like_the_onnx_file(digits_litert, model, digits):
    from http_servers import answer, app_for, respond

    litert = Model.load(digits_litert / "model.tflite")
    for field in ("classes", "task", "input_name", "input_shape", "output_name", "dataset"):  # read from its metadata
        assert getattr(litert.info, field) == getattr(model.info, field), field
    assert type(litert.session).__name__ == "LiteRTSession" and litert.info.input_shape == (8, 8, 1)
    np.testing.assert_allclose(litert.predict(digits.test_images), model.predict(digits.test_images), atol=1e-5)
    (mine,), (theirs,) = litert.classify(digits.test_images[0]), model.classify(digits.test_images[0])
    assert [name for name, _ in mine] == [name for name, _ in theirs]
    with pytest.raises(BadInput, match=r"pixel values range 300..300; expected 0..255."):
        litert.predict(np.full((8, 8, 1), 300))
    int8 = Model.load(digits_litert / "model.int8.tflite")
    agreement = (int8.predict(digits.test_images).argmax(1) == model.predict(digits.test_images).argmax(1)).mean()
    assert agreement >= 0.95
    app = app_for(digits_litert / "model.tflite")
    body = json.dumps({"instances": [[[0]] * 8] * 8}).encode()
    status, reply = answer(app, "POST", "/v1/models/digits:predict", body)
    assert status == 200 and len(reply["predictions"][0]) == 10
    status, reply = answer(app, "GET", "/v2/models/digits")
    assert reply["platform"] == "litert_tflite"
    page = respond(app, "GET", "/models/digits/model.onnx")
    assert (page.status, json.loads(page.body)) == (404, {"error": "model 'digits' is a LiteRT file, not ONNX."})


@pytest.mark.slow
def test_a_tflite_file_without_its_runtime_is_one_line_naming_the_extra(digits_litert, tmp_path, digits_export):
    from conftest import env_blocking

    sample = sorted((digits_export.parent / "samples").glob("*.png"))[0]
    result = subprocess.run(
        [sys.executable, "-m", "serve", "predict", str(digits_litert / "model.tflite"), str(sample)],
        env=env_blocking(tmp_path, ("ai_edge_litert", "tensorflow")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"python -m serve: error: {digits_litert / 'model.tflite'}: a .tflite file runs on ai-edge-litert, which "
        'is not installed: pip install "kerasreg[litert]"'
    )


def test_cli_predict_classifies_a_folder_recursively_with_a_summary(digits_export, digits, tmp_path):
    from collections import Counter

    photos = tmp_path / "photos"
    for i in range(6):
        folder = photos / ("a" if i < 3 else "a/b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.test_images[i, ..., 0], "L").save(folder / f"digit{i}.png")
    (photos / "notes.txt").write_text("no image")
    (photos / ".hidden.png").write_bytes(b"never read")
    result = subprocess.run(
        [sys.executable, "-m", "serve", "predict", str(digits_export), str(photos), "--top-k", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    *lines, summary = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == sorted(str(p) for p in photos.rglob("digit*.png"))
    said = Counter(line.rsplit(": ", 1)[1].split(" ")[0] for line in lines)
    counts = ", ".join(f"{n} as {c}" for c, n in sorted(said.items(), key=lambda item: (-item[1], item[0])))
    assert summary == f"6 images classified: {counts}"
    (tmp_path / "empty").mkdir()
    empty = subprocess.run(
        [sys.executable, "-m", "serve", "predict", str(digits_export), str(tmp_path / "empty")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert empty.returncode == 2
    assert empty.stderr.strip().endswith(
        f"{tmp_path / 'empty'}: no image files in it (.png, .jpg, .bmp, .gif, .webp, .npy)."
    )


def test_a_run_folder_classifies_pictures_as_its_export_does_without_exporting(digits_export, digits, tmp_path, capsys):
    from kerasreg.predict import main as predict_main

    photos = tmp_path / "photos"
    (photos / "b").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(digits.test_images[i, ..., 0], "L").save(photos / ("b" if i % 2 else "") / f"digit{i}.png")
    (photos / "broken.png").write_bytes(b"not a png")
    np.save(photos / "array.npy", digits.test_images[0])  # serve predict's, not a picture: passed over here
    run = digits_export.parent.parent / "run"
    code = predict_main([str(run), str(photos), "--top-k", "2"])
    out, err = capsys.readouterr()
    assert code == 2  # one picture failed; the others were still classified
    broken = f"{photos / 'broken.png'}: not a readable PNG, JPEG, BMP, GIF or WebP image (UnidentifiedImageError)."
    assert err.strip() == f"python -m kerasreg.predict: error: {broken}"
    *lines, summary = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == sorted(str(p) for p in photos.rglob("digit*.png"))
    assert summary.startswith("5 images classified: ") and summary.endswith("; 1 failed")
    # The export gives the same likeliest class and, to float precision, the same probability.
    model = Model.load(digits_export)
    for line in lines:
        path, said = line.split(": ")
        (top,) = model.classify(load_image_file(path, (8, 8), 1), 1)
        name, probability = said.split(", ")[0].rstrip(")").split(" (")
        assert name == top[0][0] and abs(float(probability) - top[0][1]) <= 1.5e-3, (path, said, top)
    assert predict_main([str(run), str(photos / "digit0.png"), "--top-k", "11"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "python -m kerasreg.predict: error: --top-k 11: expected 1..10 (the run's classes)."
    )
