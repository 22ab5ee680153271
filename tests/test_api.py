"""kerasreg from Python: kerasreg.train on arrays and on a dataset, kerasreg.Run read back, its answers held to the
exported ONNX file, its mistakes raised (never an exit) with the command line's messages."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kerasreg
from kerasreg.errors import KerasregError

pytestmark = pytest.mark.slow  # each trains a model


def _digits():
    from kerasreg.datasets import load_dataset

    data = load_dataset("digits")
    return data.train_images, data.train_labels, data.test_images, data.test_labels


def test_train_on_arrays_draws_a_stratified_test_split_and_returns_a_run(tmp_path, capsys):
    images, labels, _, _ = _digits()
    run = kerasreg.train(tmp_path / "arrays", images=images, labels=labels, l2=0.01, epochs=5, test_split=0.25)
    assert isinstance(run, kerasreg.Run) and run.path == tmp_path / "arrays"
    dataset = run.config["dataset"]
    assert (dataset["name"], dataset["source"], dataset["n_test"]) == ("arrays", "arrays", int(np.ceil(0.25 * 1437)))
    assert dataset["class_names"] == [str(k) for k in range(10)]
    assert run.metrics["accuracy"] > 0.9 and 0 < run.metrics["train_accuracy"] <= 1
    assert 0 <= run.metrics["brier"] < 0.2 and 0 <= run.metrics["ece"] < 0.2
    assert len(run.history) == run.metrics["epochs_trained"] == 5 and set(run.history[0]) >= {"epoch", "loss"}
    probabilities = run.predict_proba(images[:7])
    assert probabilities.shape == (7, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    top = run.classify(images[:7], top_k=3)
    assert [len(answer) for answer in top] == [3] * 7
    assert [answer[0][0] for answer in top] == [str(k) for k in probabilities.argmax(axis=1)]
    assert all(a[1] >= b[1] for answer in top for a, b in zip(answer, answer[1:], strict=False))
    assert run.predict_proba(images[0]).shape == (1, 10)  # one image [H,W,C]
    card = run._repr_html_()
    assert "test accuracy" in card and f"{run.metrics['accuracy']:.4f}" in card
    assert card.count("<img src='data:image/png;base64,") == len(list((run.path / "plots").glob("*.png")))
    capsys.readouterr()


def test_train_with_no_out_writes_a_temporary_run_and_says_where(capsys):
    images, labels, test_images, test_labels = _digits()
    run = kerasreg.train(
        images=images, labels=labels, test_images=test_images, test_labels=test_labels, l2=0.01, epochs=2
    )
    printed = capsys.readouterr().out
    assert f"no out given: writing the run to {run.path}, removed when this Python process ends" in printed
    assert (run.path / "metrics.json").is_file() and run.metrics["n_test"] == len(test_labels)


@pytest.mark.slow
def test_a_temporary_run_is_gone_once_its_process_ends(tmp_path):
    script = (
        "import kerasreg; run = kerasreg.train(dataset='digits', l2=0.01, epochs=1); "
        "print('RUN', run.path, (run.path / 'metrics.json').is_file())"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RUN ")]
    _, path, written = line.split(" ")
    assert written == "True" and not Path(path).exists()  # each notebook run no longer leaves one behind


def test_train_on_a_dataset_takes_the_command_lines_options_and_load_reads_it_back(tmp_path):
    out = tmp_path / "digits"
    run = kerasreg.train(str(out), dataset="digits", epochs=3, l2=0.001, optimizer="sgd", seed=4)
    options = run.config["options"]
    assert (options["dataset"], options["epochs"], options["l2"], options["optimizer"], options["seed"]) == (
        "digits",
        3,
        0.001,
        "sgd",
        4,
    )
    again = kerasreg.Run.load(out)
    assert again.metrics == run.metrics and again.history == run.history and again.config == run.config
    assert "digits" in repr(again)


def test_predict_proba_matches_the_exported_onnx_file(tmp_path):
    import onnxruntime

    from export.exporter import export_run

    images, labels, _, _ = _digits()
    binary = (labels == 3).astype(np.int64)  # two classes: a binary task, one sigmoid output
    run = kerasreg.train(tmp_path / "run", images=images, labels=binary, class_names=["other", "three"], epochs=4)
    export_run(run.path, tmp_path / "export")
    session = onnxruntime.InferenceSession(str(tmp_path / "export" / "model.onnx"))
    batch = images[:64]
    from_onnx = session.run(["probabilities"], {"images": batch})[0]
    ours = run.predict_proba(batch)
    assert ours.shape == from_onnx.shape == (64, 2)
    np.testing.assert_allclose(ours, from_onnx, atol=1e-5)
    assert run.class_names == ["other", "three"]


def test_mistakes_raise_with_the_command_lines_message_and_never_exit(tmp_path):
    images, labels, _, _ = _digits()
    cases = [
        ({"l2": -1.0}, ["--l2", "-1"]),
        ({"epochs": 0}, ["--epochs", "0"]),
        ({"val_split": 1.5}, ["--val-split", "1.5"]),
        ({"preset": "course", "l2": "auto"}, ["--preset", "course", "--l2", "auto"]),
    ]
    for options, argv in cases:
        with pytest.raises(KerasregError) as raised:
            kerasreg.train(tmp_path / "never", dataset="digits", **options)
        done = subprocess.run(
            [sys.executable, "-m", "kerasreg.train", "--dataset", "digits", "--out", str(tmp_path / "never"), *argv],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        assert done.returncode == 2
        assert str(raised.value) == done.stderr.strip().splitlines()[-1].split(": error: ", 1)[1], options
    assert not (tmp_path / "never").exists()
    with pytest.raises(KerasregError, match=r"unknown option epoch=3\. Did you mean epochs\?"):
        kerasreg.train(tmp_path / "never", epoch=3)
    with pytest.raises(KerasregError, match="Expected one or the other"):
        kerasreg.train(tmp_path / "never", images=images, labels=labels, dataset="mnist")
    with pytest.raises(KerasregError, match=r"images must be uint8 \[N,H,W,C\], got float64"):
        kerasreg.train(tmp_path / "never", images=images / 255.0, labels=labels)
    with pytest.raises(KerasregError, match="1437 images but 10 labels"):
        kerasreg.train(tmp_path / "never", images=images, labels=labels[:10])
    with pytest.raises(KerasregError, match="not found; is .* a finished kerasreg run directory"):
        kerasreg.Run.load(tmp_path)


def test_arrays_the_probe_sent_raise_the_apis_own_error_before_any_work(tmp_path):
    # Each was numpy's own error, a MemoryError after 23 s, or a run trained on a class with no image (issue 32).
    images, labels, _, _ = _digits()
    few = images[:40]
    cases = [
        ({"labels": np.zeros(40, np.int64)}, "the labels name 1 class; a classifier needs two or more"),
        ({"labels": np.array([2**63] + [0] * 39, np.uint64)}, f"labels holds {2**63}, which is no class number"),
        ({"images": np.zeros((40, 0, 0, 1), np.uint8)}, r"images of shape \(40, 0, 0, 1\) hold no pixels"),
        ({"labels": np.array([0, 999_999] * 20)}, "1,000,000 classes but 32 training images"),
        ({"labels": labels[:40] % 2, "test_images": few[:10], "test_labels": np.full(10, 2)},
         r"class 2 \('2'\) has no training image"),
        ({"labels": labels[:40] % 2, "class_names": ["a", "b", "c"]}, r"class 2 \('c'\) has no training image"),
    ]  # fmt: skip
    for arrays, message in cases:
        given = {"images": few, "labels": labels[:40], **arrays}
        with pytest.raises(KerasregError, match=message):
            kerasreg.train(tmp_path / "never", epochs=1, **given)
    assert not (tmp_path / "never").exists()


def test_a_run_read_back_answers_the_probes_calls_in_its_own_words(tmp_path):
    images, labels, _, _ = _digits()
    run = kerasreg.train(tmp_path / "run", images=images, labels=labels, l2=0.01, epochs=1)
    assert run.predict_proba(np.zeros((0, 8, 8, 1), np.uint8)).shape == (0, 10)  # (0, 0) before
    os.mkfifo(tmp_path / "fifo.png")
    with pytest.raises(KerasregError, match="fifo.png: not a regular file"):
        run.image(tmp_path / "fifo.png")  # said "no such file" before
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    (deep / "metrics.json").write_text("{}")
    with pytest.raises(KerasregError, match="nests too deeply"):
        kerasreg.Run.load(deep)  # RecursionError before
