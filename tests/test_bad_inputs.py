"""The bad-input matrix: one row per hostile or mistaken input, each with its exact outcome.

Command lines end with exit code 2 and one line `python -m ...: error: ...`; HTTP
requests get a 4xx with `{"error": ...}`, and after each of them the server still
answers a good request. docs/reliability.md lists the rows.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from format_writers import cifar_batch_bytes, idx_bytes, write_catvnoncat, write_mnist
from http_servers import start_server
from test_serve_limits import bomb_png

import export.cli
import kerasreg.evaluate
import kerasreg.train
import serve.cli
from serve.plane.versions import RULE

MAINS = {
    "kerasreg.train": kerasreg.train.main,
    "kerasreg.evaluate": kerasreg.evaluate.main,
    "export": export.cli.main,
    "serve": serve.cli.main,
}


class Boom:
    """A pickle that would run a command when loaded, if it were allowed to."""

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def place(tmp_path_factory, digits_export) -> dict:
    """Files each row refers to as {name}: broken datasets, models, images, run directories."""
    root = tmp_path_factory.mktemp("bad")
    from serve.server.command import max_workers, usable_cores

    p = {"tmp": root, "model": digits_export, "max_workers": max_workers(), "cores": usable_cores()}
    (root / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
    (root / "rsa.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\nnot really\n-----END RSA PRIVATE KEY-----\n")
    p["empty"] = root / "empty"
    p["empty"].mkdir()
    p["file"] = root / "a-file"
    p["file"].write_text("not a folder")
    write_mnist(root / "mnist-truncated")
    (root / "mnist-truncated" / "train-images-idx3-ubyte.gz").unlink()
    (root / "mnist-truncated" / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((40, 28, 28)))[:-100])
    write_mnist(root / "mnist-magic", gz=False)
    (root / "mnist-magic" / "t10k-labels-idx1-ubyte").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 24)
    cifar = root / "cifar-evil" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    (cifar / "data_batch_1").write_bytes(pickle.dumps(Boom(), protocol=2))
    (cifar / "test_batch").write_bytes(cifar_batch_bytes(np.zeros((2, 32, 32, 3), np.uint8), np.zeros(2, int)))
    short = root / "cifar-short" / "cifar-10-batches-py"
    short.mkdir(parents=True)
    good = cifar_batch_bytes(np.zeros((2, 32, 32, 3), np.uint8), np.zeros(2, int))
    (short / "data_batch_1").write_bytes(good[: len(good) // 2])
    (short / "test_batch").write_bytes(good)
    write_catvnoncat(root / "catvnoncat-bad")
    (root / "catvnoncat-bad" / "test_catvnoncat.h5").write_bytes(b"not hdf5")
    write_mnist(root / "mnist-garbage-gz")
    (root / "mnist-garbage-gz" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"garbage" * 20)
    write_mnist(root / "mnist-no-test", n_test=0)
    run = digits_export.parent.parent / "run"  # a finished run, copied and damaged one way each
    for damage in ("truncated-sample", "labels-out-of-range", "other-classes", "other-shape"):
        shutil.copytree(run, root / damage)
    sample = (root / "truncated-sample" / "test_sample.npz").read_bytes()
    (root / "truncated-sample" / "test_sample.npz").write_bytes(sample[: len(sample) // 2])
    with np.load(run / "test_sample.npz") as stored:
        np.savez(root / "labels-out-of-range" / "test_sample.npz", images=stored["images"], labels=stored["labels"] + 7)
    damages = (("other-classes", "class_names", ["a", "b", "c"]), ("other-shape", "input_shape", [9, 9, 1]))
    for damage, key, value in damages:
        record = json.loads((root / damage / "config.json").read_text())
        record["dataset"][key] = value
        (root / damage / "config.json").write_text(json.dumps(record))
    shutil.copytree(run, root / "nan-weights")  # a tampered model.keras: the export said only "max diff = nan"
    import keras

    model = keras.saving.load_model(root / "nan-weights" / "model.keras")
    kernel, bias = model.get_layer("classifier").get_weights()
    kernel[3, 2] = np.nan
    model.get_layer("classifier").set_weights([kernel, bias])
    model.save(root / "nan-weights" / "model.keras")
    with open(root / "huge.onnx", "wb") as f:
        f.truncate(3 * 2**30)  # sparse: a 3 GB file nobody may read whole
    os.mkfifo(root / "fifo.png")
    p["unfinished"] = root / "unfinished"
    p["unfinished"].mkdir()
    (p["unfinished"] / "config.json").write_text("{}")
    p["corrupt"] = root / "corrupt"
    p["corrupt"].mkdir()
    (p["corrupt"] / "config.json").write_text("{not json")
    (p["corrupt"] / "metrics.json").write_text("{}")
    p["exists"] = root / "exists"
    p["exists"].mkdir()
    (root / "not-onnx.onnx").write_bytes(b"not onnx")
    (root / "text.png").write_text("hello")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "digit.gif")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "digit.tiff")  # a format serve never opens
    (root / "bomb.png").write_bytes(bomb_png())
    import onnx

    tampered = onnx.load(str(digits_export))
    props = {q.key: q.value for q in tampered.metadata_props}
    props["kerasreg.classes"] = json.dumps(["a", "b"])
    onnx.helper.set_model_props(tampered, props)
    onnx.save(tampered, root / "tampered.onnx")
    bare = onnx.load(str(digits_export))
    del bare.metadata_props[:]
    onnx.save(bare, root / "bare.onnx")
    return p


# (command, arguments, the exact error line after "python -m COMMAND: error: " (or its start, ending in "..."))
CLI_ROWS = [
    # loaders
    (
        "kerasreg.train",
        "--dataset mnist --source files --data-dir {empty}",
        "mnist: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte[.gz] not found in {empty}; put the four MNIST IDX files there.",
    ),
    (
        "kerasreg.train",
        "--dataset mnist --source files --data-dir {tmp}/mnist-truncated",
        "mnist: {tmp}/mnist-truncated/"
        "train-images-idx3-ubyte: header says (40, 28, 28) = 31360 bytes but the file holds 31260; it is truncated or "
        "corrupt, download it again.",
    ),
    (
        "kerasreg.train",
        "--dataset mnist --source files --data-dir {tmp}/mnist-magic",
        "mnist: {tmp}/mnist-magic/"
        "t10k-labels-idx1-ubyte: not an IDX file (bad magic number); expected MNIST's *-idx?-ubyte files.",
    ),
    (
        "kerasreg.train",
        "--dataset cifar10 --source files --data-dir {empty}",
        "cifar10: neither cifar-10-batches-py/ nor "
        "cifar-10-python.tar.gz found in {empty}; download cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html and put it there.",
    ),
    (
        "kerasreg.train",
        "--dataset cifar10 --source files --data-dir {tmp}/cifar-evil",
        "cifar10: {tmp}/cifar-evil/cifar-10-batches-py/data_batch_1: refused to load (global posix.system is not "
        "allowed in a CIFAR batch); this is not a CIFAR-10 batch.",
    ),
    (
        "kerasreg.train",
        "--dataset cat --source files --data-dir {tmp}/cifar-short",
        "cat: {tmp}/cifar-short/cifar-10-batches-py/data_batch_1: truncated or corrupt CIFAR-10 batch ...",
    ),
    (
        "kerasreg.train",
        "--dataset catvnoncat --data-dir {empty}",
        "catvnoncat: train_catvnoncat.h5, test_catvnoncat.h5 "
        "not found in {empty}; copy the course's week-2 datasets/ files there.",
    ),
    (
        "kerasreg.train",
        "--dataset catvnoncat --data-dir {tmp}/catvnoncat-bad",
        "catvnoncat: {tmp}/catvnoncat-bad/test_catvnoncat.h5: not a readable HDF5 file ...",
    ),
    (
        "kerasreg.train",
        "--dataset catvnoncat",
        "catvnoncat: needs --data-dir, the folder holding train_catvnoncat.h5 and test_catvnoncat.h5.",
    ),
    (
        "kerasreg.train",
        "--dataset catvnoncat --source tfds",
        "catvnoncat: not in tensorflow-datasets; use --source files with --data-dir.",
    ),
    (
        "kerasreg.train",
        "--dataset digits --source files",
        "digits: it is bundled with scikit-learn; use --source auto (the default).",
    ),
    (
        "kerasreg.train",
        "--dataset mnist --data-dir {file}",
        "mnist: --data-dir {file} is not a folder; create it and put the files there.",
    ),
    (
        "kerasreg.train",
        "--dataset mnist --source files --data-dir {tmp}/mnist-garbage-gz",
        "mnist: {tmp}/mnist-garbage-gz/train-images-idx3-ubyte.gz: cannot read this IDX file (...); download it again.",
    ),
    (
        "kerasreg.train",
        "--dataset mnist --source files --data-dir {tmp}/mnist-no-test",
        "mnist: the test split holds no images; a run needs some to measure the model on.",
    ),
    # training options
    (
        "kerasreg.train",
        "--out ''",  # '' stands for an empty argument
        "Received --out ''. Expected a folder to write the run to (without --out: runs/<dataset>-<time>).",
    ),
    ("kerasreg.train", "--batch-size 0", "Received batch_size=0. Expected auto, full or a positive integer."),
    # Options the chosen dataset never reads (a forgotten --dataset folder trained the bundled digits, exit 0).
    (
        "kerasreg.train",
        "--data-dir photos",
        "Received --data-dir with --dataset digits, which is bundled and reads no folder. Pass --dataset folder to "
        "train on your own images in it (or mnist, cifar10, cat, catvnoncat for their files).",
    ),
    (
        "kerasreg.train",
        "--dataset mnist --image-size 32",
        "Received --image-size with --dataset mnist, which does not read it. --image-size shapes your own images "
        "(--dataset folder) and tfds:NAME sets.",
    ),
    ("kerasreg.train", "--epochs -1", "Received epochs=-1. Expected a positive integer."),
    ("kerasreg.train", "--patience 0", "Received patience=0. Expected a positive integer."),
    ("kerasreg.train", "--learning-rate 0", "Received learning_rate=0.0. Expected a positive number."),
    ("kerasreg.train", "--learning-rate nan", "Received learning_rate=nan. Expected a positive number."),
    ("kerasreg.train", "--l2 -1", "Received l2=-1.0. Expected auto, or a number >= 0 (0 turns L2 off)."),
    ("kerasreg.train", "--val-split 1", "Received val_split=1.0. Expected a fraction in [0, 1)."),
    ("kerasreg.train", "--l2 strong", "argument --l2: expected auto or a number, got 'strong'"),
    ("kerasreg.train", "--batch-size big", "argument --batch-size: expected auto, full or an integer, got 'big'"),
    (
        "kerasreg.train",
        "--val-split 0",
        "Received l2=auto with val_split=0: auto chooses the strength on the validation split. "
        "Use a val_split above 0, or give l2 a number.",
    ),
    (
        "kerasreg.train",
        "--val-split 0.9999",
        "Received val_split=0.9999 on 1437 training images: it leaves no training or "
        "no held-out data. Use another fraction, or 0.",
    ),
    ("kerasreg.train", "--seed -1", "Received seed=-1. Expected an integer 0..4294967295."),
    (
        "kerasreg.train",
        "--seed 18446744073709551616",
        "Received seed=18446744073709551616. Expected an integer 0..4294967295.",
    ),
    ("kerasreg.train", "--backup-interval -1", "Received backup_interval=-1.0. Expected seconds >= 0."),
    (
        "kerasreg.train",
        "--optimizer rmsprop",
        "argument --optimizer: invalid choice: 'rmsprop' (choose from 'adam', 'sgd')",
    ),
    ("kerasreg.train", "--epochs ten", "argument --epochs: invalid int value: 'ten'"),
    ("kerasreg.train", "--devices 5", "Received devices='5'. 0 GPUs are visible; --devices needs at least one."),
    ("kerasreg.train", "--out {file}", "--out {file} is a file; expected a directory."),
    (
        "kerasreg.train",
        "--epochs 1 --out {file}/run",
        "{file}/run: Not a directory; check the path and its permissions.",
    ),
    (
        "kerasreg.train",
        "--out {tmp}/nothing-here --resume",
        "{tmp}/nothing-here holds no unfinished run to resume; run without --resume to start one.",
    ),
    ("kerasreg.train", "--resume --restart", "argument --restart: not allowed with argument --resume"),
    # evaluate and export
    (
        "kerasreg.evaluate",
        "{tmp}/missing",
        "{tmp}/missing is not a directory; pass a run directory written by python -m kerasreg.train.",
    ),
    (
        "kerasreg.evaluate",
        "{unfinished}",
        "{unfinished}/metrics.json not found; is {unfinished} a finished kerasreg run directory?",
    ),
    (
        "export",
        "{tmp}/missing --out {tmp}/x",
        "{tmp}/missing is not a directory; pass a run directory written by python -m kerasreg.train.",
    ),
    ("export", "{corrupt} --out {tmp}/x", "{corrupt}/config.json: unreadable or not JSON ..."),
    (
        "export",
        "{tmp}/nan-weights --out {tmp}/x --c",
        "{tmp}/nan-weights/model.keras: the classifier's weights are not finite (kernel[3, 2] = nan, 1 such values); "
        "retrain the run (it diverged, or the file was altered).",
    ),
    (
        "serve",
        "predict {tmp}/huge.onnx {tmp}/text.png",
        "{tmp}/huge.onnx: 3,221,225,472 bytes is over the limit of 268,435,456 (--max-model-bytes); a kerasreg "
        "export is far smaller: check the file, or raise the limit.",
    ),
    (
        "export",
        "{unfinished} --out {tmp}/x --opset 9",
        "Received opset=9. Expected 13..18 (18: the newest tf2onnx 1.17 writes and onnxruntime 1.32 runs).",
    ),
    ("export", "{unfinished} --out {tmp}/x --atol -1", "Received atol=-1.0. Expected a number >= 0."),
    (
        "kerasreg.evaluate",
        "{tmp}/truncated-sample --on sample",
        "{tmp}/truncated-sample/test_sample.npz: missing or unreadable (...",
    ),
    (
        "kerasreg.evaluate",
        "{tmp}/labels-out-of-range --on sample",
        "{tmp}/labels-out-of-range/test_sample.npz: labels 7..16 outside the 10 classes: the run directory is damaged.",
    ),
    (
        "export",
        "{tmp}/other-classes --out {tmp}/x-other-classes",
        "{tmp}/other-classes: config.json says images of [8, 8, 1] and 3 classes, but model.keras takes [8, 8, 1] and "
        "gives 10 outputs: the run directory is damaged.",
    ),
    (
        "kerasreg.evaluate",
        "{tmp}/other-shape --on sample",
        "{tmp}/other-shape/test_sample.npz: images of [8, 8, 1], but config.json says [9, 9, 1]: the run directory is "
        "damaged.",
    ),
    (
        "export",
        "{unfinished} --out {tmp}/x --quantize int4",
        "argument --quantize: invalid choice: 'int4' (choose from 'int8')",
    ),
    # serve
    (
        "serve",
        "predict {tmp}/missing.onnx {tmp}/text.png",
        "{tmp}/missing.onnx not found; pass the model.onnx (or .tflite) written by python -m export.",
    ),
    ("serve", "predict {tmp}/not-onnx.onnx {tmp}/text.png", "{tmp}/not-onnx.onnx: not a loadable ONNX model ..."),
    (
        "serve",
        "predict {tmp}/bare.onnx {tmp}/text.png",
        "{tmp}/bare.onnx: the ONNX file lacks kerasreg.classes, "
        "kerasreg.task, kerasreg.input; export it with python -m export.",
    ),
    (
        "serve",
        "predict {tmp}/tampered.onnx {tmp}/text.png",
        "{tmp}/tampered.onnx: kerasreg.classes names 2 classes but the graph's output is ['batch', 10].",
    ),
    ("serve", "predict {model} {tmp}/missing.png", "{tmp}/missing.png: cannot read (No such file or directory)."),
    ("serve", "predict {model} {tmp}/fifo.png", "{tmp}/fifo.png: not a regular file; pass an image file."),
    ("serve", "predict {model} /dev/zero", "/dev/zero: not a regular file; pass an image file."),
    (
        "serve",
        "predict {model} {tmp}/text.png",
        "{tmp}/text.png: not a readable PNG, JPEG, BMP, GIF or WebP image (UnidentifiedImageError).",
    ),
    (
        "serve",
        "predict {model} {tmp}/digit.tiff",
        "{tmp}/digit.tiff: not a readable PNG, JPEG, BMP, GIF or WebP image (UnidentifiedImageError).",
    ),
    (
        "serve",
        "predict {model} {tmp}/bomb.png",
        "{tmp}/bomb.png: 9999x9999 pixels exceeds the limit of 4,000,000; send it smaller.",
    ),
    (
        "serve",
        "predict {model} {tmp}/digit.gif --top-k 0",
        "argument --top-k: Received '0'. Expected a positive integer.",
    ),
    ("serve", "http {model} --max-batch 0", "argument --max-batch: Received '0'. Expected a positive integer."),
    ("serve", "http {model} --timeout -1", "argument --timeout: Received '-1'. Expected a positive number."),
    ("serve", "http {model} --port 70000", "argument --port: Received '70000'. Expected a port number 0..65535."),
    (
        "serve",
        "http {model} --workers 100000",
        "argument --workers: Received '100000'. Expected 1..{max_workers} (at most 4 per core; this machine gives "
        "{cores}).",
    ),
    (
        "serve",
        "http {model} --request-timeout 61",
        "argument --request-timeout: Received '61'. Expected seconds in (0, 60].",
    ),
    (
        "serve",
        "http {model} --ssl-certificate {tmp}/cert.pem",
        "--ssl-certificate and --ssl-keyfile go together; pass both, or neither.",
    ),
    (
        "serve",
        "http {model} --ssl-certificate {tmp}/cert.pem --ssl-keyfile {tmp}/rsa.pem",
        "--ssl-keyfile {tmp}/rsa.pem: the key is not PKCS#8 PEM; the server reads unencrypted PKCS#8 keys: "
        "openssl pkcs8 -topk8 -nocrypt -in {tmp}/rsa.pem -out key.pk8.pem",
    ),
    ("serve", "http {empty} --name x", "--name is for one model file; in {empty} each model is named by its folder."),
    (
        "serve",
        "http {empty}",
        "{empty}: no model to serve; expected NAME/VERSION/model.onnx, e.g. {empty}/mnist/1/model.onnx",
    ),
]


@pytest.mark.parametrize("command, arguments, expected", CLI_ROWS, ids=[f"{c} {a}"[:60] for c, a, _ in CLI_ROWS])
def test_a_bad_command_line_is_exit_2_and_one_line(place, capsys, monkeypatch, command, arguments, expected):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    argv = ["" if part == "''" else part.format(**place) for part in arguments.split()]
    if command == "kerasreg.train" and "--out" not in argv:
        argv += ["--out", str(place["tmp"] / "runs" / str(abs(hash(arguments))))]
    try:
        code = MAINS[command](argv)
    except SystemExit as e:  # argparse's own one-line error
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    line = err[-1] if err else ""
    sub = f" {argv[0]}" if command == "serve" and line.startswith(f"python -m serve {argv[0]}") else ""
    prefix = f"python -m {command}{sub}: error: "
    want = expected.format(**place)
    assert code == 2, err
    assert line.startswith(prefix), line
    message = line[len(prefix) :]
    if want.endswith("..."):
        assert message.startswith(want[:-3]), message
    elif "..." in want:
        head, tail = want.split("...", 1)
        assert message.startswith(head) and message.endswith(tail), message
    else:
        assert message == want
    assert "Traceback" not in "\n".join(err)


IMAGE = [[[0]] * 8] * 8


def npy_b64(header: bytes) -> dict:
    """A b64 .npy instance with this header dict and a few bytes of data (whatever its shape claims)."""
    import base64

    header = header + b" " * (-(len(header) + 11) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 16
    return {"b64": base64.b64encode(data).decode()}


def _tensor(**fields):
    return {"inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": [0] * 64, **fields}]}


# (method, path, body: a JSON value, or raw bytes; status; the exact error)
HTTP_ROWS = [
    (
        "POST",
        "/v1/models/digits:predict",
        b"{nope",
        400,
        "request body is not valid JSON (unexpected character, expected a string key: line 1 column 2 (char 1)).",
    ),
    ("POST", "/v1/models/digits:predict", [1, 2], 400, "request body must be a JSON object."),
    (
        "POST",
        "/v1/models/digits:predict",
        {},
        400,
        'request must have exactly one of "instances" (row format) or "inputs" (columnar format).',
    ),
    ("POST", "/v1/models/digits:predict", {"instances": 5}, 400, '"instances" must be a list of images.'),
    ("POST", "/v1/models/digits:predict", {"instances": []}, 400, "no images in the request."),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [[[0]] * 8, [[0]] * 7]},
        400,
        "instances have different shapes: [(7, 1), (8, 1)].",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [IMAGE, [[0]]]},
        400,
        "instances have different shapes: [(1, 1), (8, 8, 1)].",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [[["a"] * 8] * 8]},
        400,
        "instances[0] must hold numbers 0..255, got text.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [[[True] * 8] * 8]},
        400,
        "instances[0] must hold numbers 0..255, got true or false.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [[[300] * 8] * 8]},
        400,
        "pixel values range 300..300; expected 0..255.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [[[-1] * 8] * 8]},
        400,
        "pixel values range -1..-1; expected 0..255.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [[[None] * 8] * 8]},
        400,
        "instances[0] must hold numbers 0..255, got nulls or mixed values.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [{"b64": "not base64!"}]},
        400,
        "instances[0]: b64 is not valid base64.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [{"b64": "aGVsbG8="}]},
        400,
        "instances[0]: not a readable PNG, JPEG, BMP, GIF or WebP image (UnidentifiedImageError).",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [{"b64": 5}]},
        400,
        'instances[0]: expected {"b64": "<base64 image bytes>"}.',
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [{"x": 1}]},
        400,
        'instances[0]: expected an image array, {"images": ...} or {"b64": ...}.',
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [IMAGE] * 9},
        400,
        "batch of 9 images exceeds this server's limit of 8; split it.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"inputs": {"pixels": [IMAGE]}},
        400,
        '"inputs" must name exactly the input "images", got [\'pixels\'].',
    ),
    ("POST", "/v1/models/digits:predict", {"instances": [[[0.5] * 8] * 7 + [[float("1e400")] * 8]]}, 400, None),
    (
        "POST",
        "/v1/models/mnist:predict",
        {"instances": [IMAGE]},
        404,
        "model 'mnist' not found; this server has: digits.",
    ),
    (
        "POST",
        "/v1/models/digits/versions/7:predict",
        {"instances": [IMAGE]},
        404,
        "model 'digits' has no version 7; it has: 1.",
    ),
    ("GET", "/v1/models/digits:predict", None, 405, "Method Not Allowed"),
    ("POST", "/v1/nothing", {}, 404, "Not Found"),
    ("POST", "/v1/models/digits:predict", b"[" * 5000, 400, "request body nests JSON too deeply."),
    (
        "POST",
        "/v1/models/digits:predict",
        b" " * 300_000,
        413,
        "request body of 300000 bytes exceeds the limit of 200000.",
    ),
    ("POST", "/v2/models/digits/infer", {"inputs": {}}, 400, '"inputs" must be a list with one tensor named "images".'),
    (
        "POST",
        "/v2/models/digits/infer",
        {"inputs": [1]},
        400,
        '"inputs" must be a list with one tensor named "images".',
    ),
    ("POST", "/v2/models/digits/infer", _tensor(name="x"), 400, "input tensor is named 'x'; expected \"images\"."),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(datatype="BYTES"),
        400,
        "\"datatype\" 'BYTES' is not supported; send UINT8 pixel values (or UINT16, UINT32, UINT64, INT8, INT16, "
        "INT32, INT64, FP16, FP32, FP64).",
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(datatype={"a": 1}),
        400,
        "\"datatype\" {'a': 1} is not supported; send UINT8 pixel values (or UINT16, UINT32, UINT64, INT8, INT16, "
        "INT32, INT64, FP16, FP32, FP64).",
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(shape=[1, 8, 8, True]),
        400,
        '"shape" must be a list of non-negative integers, e.g. [N, H, W, C].',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(shape=[1, -8, -8, 1]),
        400,
        '"shape" must be a list of non-negative integers, e.g. [N, H, W, C].',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(shape="1,8,8,1"),
        400,
        '"shape" must be a list of non-negative integers, e.g. [N, H, W, C].',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(data=[0] * 63),
        400,
        '"data" holds 63 values but shape [1, 8, 8, 1] needs 64.',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(data=[False] * 64),
        400,
        '"data" must hold numbers 0..255, got true or false.',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(data="0" * 64),
        400,
        '"data" must hold numbers 0..255, got text.',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(data=[256] * 64),
        400,
        '"data" holds 256..256, outside UINT8\'s range 0..255.',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(datatype="UINT16", data=[256] * 64),
        400,
        "pixel values range 256..256; expected 0..255.",
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(shape=[9, 8, 8, 1], data=[0] * 576),
        400,
        "batch of 9 images exceeds this server's limit of 8; split it.",
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(shape=[1, 4, 4, 4], data=[0] * 64),
        400,
        '"shape" [1, 4, 4, 4] does not hold images of this model; expected [N,8,8,1] or [8,8,1].',
    ),
    # Found by an outside probe (20,000 fuzzed bodies, ~60 framing cases); each was a 500 or a wrong 200.
    (
        "POST",
        "/v2/models/digits/infer",
        {"inputs": [{"name": "images", "shape": [], "datatype": "UINT8", "data": [0]}]},
        400,
        '"shape" must be a list of non-negative integers, e.g. [N, H, W, C].',
    ),
    ("POST", "/v1/models/digits:predict", {"inputs": 5}, 400, "images must be an array [N,8,8,1], got a single value."),
    (
        "POST",
        "/v1/models/digits:predict",
        {"inst ances": [IMAGE]},
        400,
        'request must have exactly one of "instances" (row format) or "inputs" (columnar format).',
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        b'{"in\nstances": [' + json.dumps(IMAGE).encode() + b"]}",  # a whole image: the fast path took it
        400,
        "request body is not valid JSON (unexpected control character in string: line 1 column 5 (char 4)).",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [npy_b64(b"{'descr': '|u1', 'fortran_order': False, 'shape': (99999999, 99999999), }")]},
        400,
        "instances[0]: 9,999,999,800,000,001 pixels exceeds the limit of 4,000,000; send it smaller.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [npy_b64(b"{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1), 'x': __import__}")]},
        400,
        "instances[0]: unreadable .npy header (ValueError).",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [npy_b64(b"{'descr': '|u1', 'fortran_order': False, 'shape': (2400, 2400), }")]},
        400,
        "instances[0]: 5,760,000 pixels exceeds the limit of 4,000,000; send it smaller.",
    ),
    (
        "POST",
        "/v1/models/digits:predict",
        {"instances": [npy_b64(b"{'descr': '|u1', 'fortran_order': False, 'shape': (0, 0), }")]},
        400,
        "instances[0]: .npy image is empty (0x0).",
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(datatype="INT8", data=[255] * 64),
        400,
        '"data" holds 255..255, outside INT8\'s range -128..127.',
    ),
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(data=[3.7] * 64),
        400,
        '"data" holds non-integer values but datatype UINT8 takes integers.',
    ),
    ("GET", "/v2/models/mnist/ready", None, 404, "model 'mnist' not found; this server has: digits."),
    ("DELETE", "/v2/health/live", None, 405, "Method Not Allowed"),
    # Versions that are not canonical (issue 24): each was a 500 (², ①, 5,000 digits) or a label of its own (0001).
    *(
        ("GET", f"/v2/models/digits/versions/{version}", None, 404, f"model 'digits' has no version {shown}; {RULE}.")
        for version, shown in (
            ("0001", "'0001'"),
            ("\u0661", "'\u0661'"),
            ("\u00b2", "'\u00b2'"),
            ("\u2460", "'\u2460'"),
            ("9" * 5000, "'" + "9" * 40 + "...'"),
            ("9223372036854775808", "'9223372036854775808'"),
        )
    ),
    (
        "POST",
        "/v1/models/digits/versions/01:predict",
        {"instances": [IMAGE]},
        404,
        f"model 'digits' has no version '01'; {RULE}.",
    ),  # fmt: skip
    (
        "POST",
        "/v2/models/digits/infer",
        _tensor(datatype="INT64", data=[2**70] * 64),
        400,
        '"data" holds 1180591620717411303424..1180591620717411303424, outside INT64\'s range '
        "-9223372036854775808..9223372036854775807.",
    ),
]


@pytest.fixture(scope="module")
def server(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--max-batch", "8", "--max-body-bytes", "200000")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client
    process.terminate()
    process.communicate(timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, path, body, status, error", HTTP_ROWS, ids=[f"{r[0]} {r[1]} {i}" for i, r in enumerate(HTTP_ROWS)]
)
def test_a_bad_request_is_a_4xx_json_error_and_the_server_serves_on(server, method, path, body, status, error):
    if isinstance(body, bytes):
        content = body
    else:
        content = None if body is None else json.dumps(body).encode()
    response = server.request(method, path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    if error is not None:
        assert response.json() == {"error": error}
    else:
        assert set(response.json()) == {"error"}
    good = server.post("/v1/models/digits:predict", json={"instances": [IMAGE]})
    assert good.status_code == 200 and len(good.json()["predictions"][0]) == 10


def test_the_matrix_has_a_row_for_every_class_of_input():
    assert len(CLI_ROWS) + len(HTTP_ROWS) >= 60
    commands = {command for command, _, _ in CLI_ROWS}
    assert commands == {"kerasreg.train", "kerasreg.evaluate", "export", "serve"}
    assert {path.split("/")[1] for _, path, _, _, _ in HTTP_ROWS} == {"v1", "v2"}
    assert Path(__file__).name == "test_bad_inputs.py"
