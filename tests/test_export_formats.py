"""The device formats: LiteRT (float and full-integer int8) and C99 (float and int8), each held to Keras."""

import json
import re
import subprocess

import numpy as np
import onnx
import pytest
from trained_runs import synthetic_dataset, train_small

from export.cli import main as export_main
from export.errors import ValidationFailed
from export.exporter import FORMATS, export_run
from kerasreg.run_directory import files
from serve import Model

SHAPES = {
    "mnist-like": ((28, 28, 1), 10, "multiclass"),
    "binary": ((32, 32, 3), 2, "binary"),
}


@pytest.fixture(scope="module", params=list(SHAPES))
def exported(request, tmp_path_factory):
    shape, classes, task = SHAPES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    run = train_small(root / "run", synthetic_dataset(shape, classes, task, n=400), epochs=3)
    card = export_run(run, root / "export", quantize="int8", formats=("litert", "c"))
    return run, root / "export", card, (shape, classes, task)


def test_every_artifact_passed_its_check_and_the_card_lists_it(exported):
    run, out, card, (shape, classes, task) = exported
    artifacts = card["parity"]["artifacts"]
    assert set(artifacts) == {
        "saved_model",
        "model.onnx",
        "model.int8.onnx",
        "model.tflite",
        "model.int8.tflite",
        "c/model.c",
        "c/int8/model.c",
    }
    for name in ("saved_model", "model.onnx", "model.tflite", "c/model.c"):  # float: to atol, every argmax
        assert artifacts[name]["passed"] and artifacts[name]["max_abs_diff"] <= 1e-5, (name, artifacts[name])
        assert artifacts[name]["argmax_disagreements"] == 0
    for name in ("model.int8.onnx", "model.int8.tflite", "c/int8/model.c"):  # int8: within a point of accuracy
        entry = artifacts[name]
        assert entry["passed"] and entry["accuracy_change"] >= -entry["max_accuracy_drop"], (name, entry)
    written = {"saved_model", "model.onnx", "model.int8.onnx", "model.tflite", "model.int8.tflite", "c"}
    assert set(card["files"]) == written
    for name, facts in card["files"].items():
        assert facts["bytes"] > 0 and re.fullmatch("[0-9a-f]{64}", facts["sha256"]), name
    assert card["c"]["flash_bytes"]["int8"] < card["c"]["flash_bytes"]["float"] / 3  # int8: a quarter, plus scales
    assert card["litert"]["int8"]["calibrated_on"] == "training images (train_sample.npz)"


def test_litert_files_take_uint8_pixels_on_a_resizable_batch_and_carry_the_card(exported):
    from ai_edge_litert.interpreter import Interpreter

    from export.litert import flex_ops

    run, out, card, (shape, classes, task) = exported
    for name in ("model.tflite", "model.int8.tflite"):
        data = (out / name).read_bytes()
        assert flex_ops(data) == []
        interpreter = Interpreter(model_content=data)
        (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
        assert inp["dtype"] == np.uint8 and list(inp["shape_signature"]) == [-1, *shape]
        assert outp["dtype"] == np.float32 and list(outp["shape_signature"]) == [-1, classes]
        if name == "model.int8.tflite":
            assert inp["quantization"] == (1.0, 0)  # raw pixel values, unchanged
            ops = {op["op_name"] for op in interpreter._get_ops_details()}
            assert "FULLY_CONNECTED" in ops and not ops & {"CAST", "FLEX"}
        model = Model.load(out / name)  # serve reads its metadata as it reads an ONNX file's
        assert model.info.classes == tuple(card["classes"]) and model.info.input_shape == shape
        images, _ = files.read_sample(run / files.TEST_SAMPLE)
        for batch in (1, 7, len(images)):  # the batch resizes, back and forth
            assert model.predict(images[:batch]).shape == (batch, classes)
        expected = "int8 full-integer (uint8 pixels in)" if "int8" in name else None
        assert model.info.meta("quantization") == expected


def test_the_c_model_declares_the_contract_and_answers_like_keras(exported, tmp_path):
    run, out, card, (shape, classes, task) = exported
    header = (out / "c" / "model.h").read_text()
    height, width, channels = shape
    for macro, value in (("HEIGHT", height), ("WIDTH", width), ("CHANNELS", channels), ("CLASSES", classes)):
        assert f"#define KERASREG_{macro} {value}\n" in header
    assert "int kerasreg_predict(const unsigned char *pixels, float *probabilities);" in header
    source = (out / "c" / "model.c").read_text()
    assert "#include <math.h>" in source and "malloc" not in source and "static const float kerasreg_weights" in source
    assert "static const signed char kerasreg_weights" in (out / "c" / "int8" / "model.c").read_text()
    # Compile it as a user would, with a main of their own, and check one image against Keras.
    from export.c_model import CFLAGS, find_compiler

    compiler = find_compiler()
    if compiler is None:
        pytest.skip("no C compiler here")
    images, _ = files.read_sample(run / files.TEST_SAMPLE)
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdio.h>\n#include "model.h"\n'
        "int main(void) { static unsigned char p[KERASREG_INPUTS]; float q[KERASREG_CLASSES]; int k, top;\n"
        "  if (fread(p, 1, KERASREG_INPUTS, stdin) != KERASREG_INPUTS) return 2;\n"
        '  top = kerasreg_predict(p, q); printf("%d %s", top, kerasreg_class_names[top]);\n'
        '  for (k = 0; k < KERASREG_CLASSES; k++) {\n    printf(" %.9g", q[k]);\n  }\n'
        '  printf("\\n");\n  return 0;\n}\n'
    )
    program = tmp_path / "predict"
    subprocess.run(
        [compiler, *CFLAGS, f"-I{out / 'c'}", str(out / "c" / "model.c"), str(main), "-o", str(program), "-lm"],
        check=True,
    )
    printed = subprocess.run([str(program)], input=images[0].tobytes(), capture_output=True, check=True).stdout.split()
    expected = Model.load(out / "model.onnx").predict(images[:1])[0]
    assert int(printed[0]) == expected.argmax() and printed[1].decode() == card["classes"][expected.argmax()]
    np.testing.assert_allclose(np.asarray(printed[2:], float), expected, atol=1e-5)


def test_adding_a_format_is_one_module_and_one_line():
    names = [f.name for f in FORMATS]
    assert names == ["saved_model", "onnx", "litert", "c"]
    assert {f.flag for f in FORMATS} == {None, "litert", "c"}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return train_small(tmp_path_factory.mktemp("small") / "run", synthetic_dataset((28, 28, 1), 10, n=400), epochs=3)


def test_a_litert_file_with_a_fixed_batch_is_refused_and_nothing_is_written(small_run, tmp_path, monkeypatch):
    import tensorflow as tf

    from export import litert

    def fixed_batch(saved_model_dir):  # what a converter given a fixed input signature writes
        module = tf.saved_model.load(str(saved_model_dir))
        loaded = module.signatures["serving_default"]
        spec = loaded.structured_input_signature[1]["images"]

        @tf.function(input_signature=[tf.TensorSpec((1, *spec.shape[1:]), tf.uint8, name="images")])
        def fixed(images):
            return loaded(images=images)

        return tf.lite.TFLiteConverter.from_concrete_functions([fixed.get_concrete_function()], fixed).convert()

    monkeypatch.setattr(litert, "convert_float", fixed_batch)
    with pytest.raises(ValidationFailed) as e:
        export_run(small_run, tmp_path / "out", formats=("litert",))
    assert e.value.failures == ["model.tflite: its batch dimension is fixed at 1; expected a resizable one"]
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_a_c_model_that_answers_wrong_is_refused(small_run, tmp_path, monkeypatch):
    from export import c_model

    real = c_model.write_c_model

    def favouring_class_0(job, folder, int8):  # a slip in the generated code: class 0's logit raised
        flash = real(job, folder, int8)
        source = (folder / "model.c").read_text()
        wrong = source.replace("logits[unit] = sum;", "logits[unit] = sum + (unit == 0 ? 3.0f : 0.0f);")
        assert wrong != source
        (folder / "model.c").write_text(wrong)
        return flash

    monkeypatch.setattr(c_model, "write_c_model", favouring_class_0)
    if c_model.find_compiler() is None:
        pytest.skip("no C compiler here")
    assert export_main([str(small_run), "--out", str(tmp_path / "out"), "--c"]) == 1
    assert not (tmp_path / "out").exists()


def test_an_int8_file_that_loses_accuracy_is_refused(small_run, tmp_path, monkeypatch):
    from export import litert

    real = litert.convert_int8

    def classes_swapped(affine, input_shape, binary, calibration):  # a converter that mixed up the outputs
        kernel, bias = affine
        return real((kernel[:, ::-1], bias[::-1]), input_shape, binary, calibration)

    monkeypatch.setattr(litert, "convert_int8", classes_swapped)
    with pytest.raises(ValidationFailed) as e:
        export_run(small_run, tmp_path / "out", formats=("litert",), quantize="int8")
    (failure,) = e.value.failures
    assert failure.startswith("model.int8.tflite: accuracy ") and "below Keras's" in failure, failure
    assert not (tmp_path / "out").exists()


def test_without_a_compiler_the_c_check_is_skipped_and_the_card_says_so(small_run, tmp_path, monkeypatch):
    from export import c_model

    monkeypatch.setattr(c_model, "find_compiler", lambda: None)
    card = export_run(small_run, tmp_path / "out", formats=("c",))
    assert card["parity"]["artifacts"]["c/model.c"] == {"passed": None, "skipped": "no C compiler on this machine"}
    assert card["c"]["not_checked_because"] == "no C compiler on this machine ($CC, cc, gcc, clang)"
    assert (tmp_path / "out" / "c" / "model.c").is_file()


def test_int8_litert_calibrates_on_training_images_never_test_images(small_run, tmp_path, monkeypatch):
    from export import litert
    from kerasreg.run_directory.record import RunRecord

    seen = {}
    real = litert.convert_int8

    def spy(affine, input_shape, binary, calibration):
        seen["calibration"] = calibration
        return real(affine, input_shape, binary, calibration)

    monkeypatch.setattr(litert, "convert_int8", spy)
    export_run(small_run, tmp_path / "out", formats=("litert",), quantize="int8")
    train, _ = files.read_sample(small_run / files.TRAIN_SAMPLE)
    test, _ = files.read_sample(small_run / files.TEST_SAMPLE)
    np.testing.assert_array_equal(seen["calibration"], train)
    assert not {image.tobytes() for image in seen["calibration"]} & {image.tobytes() for image in test}
    assert RunRecord.open(small_run).calibration_images().shape == train.shape


def test_onnx_metadata_still_names_the_contract_keys(exported):
    _, out, _, _ = exported
    props = {p.key for p in onnx.load(str(out / "model.onnx")).metadata_props}
    from shared import contract

    assert {contract.key(name) for name in (*contract.CARD_PROPERTIES, contract.VERSION)} == props
    assert json.loads((out / "model.json").read_text())["parity"]["passed"]
