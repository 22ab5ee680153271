import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kerasreg.datasets import FolderOptions, load_dataset, tfds_source
from kerasreg.datasets.views import balanced_class_weights, one_vs_rest, split_validation, undersampled
from kerasreg.errors import DatasetError, KerasregError


def test_digits_is_real_offline_and_split_deterministically():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.train_images.shape == (1437, 8, 8, 1) and a.test_images.shape == (360, 8, 8, 1)
    assert a.train_images.dtype == np.uint8 and a.train_images.max() == 255
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    assert np.bincount(a.test_labels).min() >= 35  # every class in the test split


@pytest.fixture
def tfds_host_reachable(monkeypatch):
    # mock_data serves examples, but its builders still report "not prepared".
    monkeypatch.setattr(tfds_source, "check_download_reachable", lambda *args: None)


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_source_under_mock_data(name, shape, tfds_host_reachable):
    with tfds.testing.mock_data(num_examples=12):
        data = load_dataset(name, source="tfds")
    assert data.input_shape == shape
    assert len(data.train_labels) == 12 and len(data.test_labels) == 12
    assert data.train_images.dtype == np.uint8 and data.num_classes == 10
    assert data.source.startswith(f"tfds:{name}")


def test_auto_falls_back_to_tfds_without_files(tmp_path, tfds_host_reachable):
    with tfds.testing.mock_data(num_examples=5):
        data = load_dataset("cat", source="auto", data_dir=tmp_path)
    assert data.task == "binary" and data.source.startswith("tfds:cifar10")


def test_unreachable_download_fails_fast(tmp_path, monkeypatch):
    def no_route(address, timeout):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(tfds_source.socket, "create_connection", no_route)
    with pytest.raises(DatasetError) as e:
        load_dataset("mnist", source="tfds", data_dir=tmp_path)
    assert str(e.value) == (
        f"mnist: not prepared in {tmp_path} and its download host storage.googleapis.com is unreachable "
        "(Network is unreachable); with no network, put the distribution files in a folder and pass "
        "--data-dir DIR --source files."
    )


def test_tfds_failure_is_one_line_that_names_the_fix(monkeypatch, tfds_host_reachable):
    def offline(*args, **kwargs):
        raise ConnectionError("Max retries exceeded\nwith url")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(DatasetError) as e:
        load_dataset("mnist", source="tfds")
    assert str(e.value) == (
        "mnist: tensorflow-datasets could not load it (ConnectionError: Max retries exceeded); with no network, "
        "put the distribution files in a folder and pass --data-dir DIR --source files."
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"name": "imagenet"},
            "Received dataset='imagenet'. Expected one of mnist, cifar10, cat, catvnoncat, digits, folder, or "
            "tfds:NAME.",
        ),
        ({"name": "digits", "source": "files"}, "digits: it is bundled with scikit-learn; use --source auto"),
        ({"name": "catvnoncat"}, "catvnoncat: needs --data-dir"),
        ({"name": "catvnoncat", "source": "tfds"}, "catvnoncat: not in tensorflow-datasets"),
        ({"name": "mnist", "source": "files"}, "mnist: --source files needs --data-dir"),
        ({"name": "mnist", "data_dir": "/no/such/dir"}, "mnist: --data-dir /no/such/dir is not a folder"),
    ],
)
def test_unusable_requests_are_clear_errors(kwargs, message):
    with pytest.raises(DatasetError) as e:
        load_dataset(**kwargs)
    assert str(e.value).startswith(message)


def test_one_vs_rest_and_its_range():
    data = load_dataset("digits")
    view = one_vs_rest(data, 8, name="eights")
    assert view.class_names == ("non-8", "8") and view.task == "binary"
    assert view.train_labels.sum() == (data.train_labels == 8).sum()
    with pytest.raises(KerasregError, match="Expected a class index in 0..9"):
        one_vs_rest(data, 10, name="x")


def test_validation_split_is_stratified_and_seeded():
    labels = np.array([0] * 90 + [1] * 10)
    images = np.arange(100)
    (tx, ty), (vx, vy) = split_validation(images, labels, 0.2, seed=1)
    assert len(vy) == 20 and vy.sum() == 2 and ty.sum() == 8
    assert not set(tx) & set(vx)
    (_, _), (vx2, _) = split_validation(images, labels, 0.2, seed=1)
    np.testing.assert_array_equal(vx, vx2)
    assert (np.diff(tx) > 0).all() and (np.diff(vx) > 0).all()  # each part keeps the original order
    assert split_validation(images, labels, 0, seed=1)[1] is None
    with pytest.raises(KerasregError, match=r"Received val_split=0.01 on 100 training images: cannot hold out a "):
        split_validation(images, labels, 0.01, seed=1)  # 1 image cannot hold one of each of 2 classes


def test_the_training_and_validation_parts_index_one_array_of_pixels_and_copy_none():
    from kerasreg.config import TrainConfig
    from kerasreg.datasets.views import rows_of
    from kerasreg.training.setup import prepare_training_data

    data = load_dataset("digits")
    aligned = dataclasses.replace(data, train_images=rows_of(data.train_images, np.arange(len(data.train_labels))))
    split = prepare_training_data(aligned, TrainConfig(dataset="digits", val_split=0.2, seed=3))
    assert np.shares_memory(split.pixels, aligned.train_images)  # before: a copy of each part, 1x the pixels more
    rows = np.concatenate([split.train_rows, split.val_rows])
    assert sorted(rows.tolist()) == list(range(len(data.train_labels)))  # disjoint, and every image in one part
    np.testing.assert_array_equal(split.train_labels, data.train_labels[split.train_rows])
    np.testing.assert_array_equal(split.val_labels, data.train_labels[split.val_rows])
    under = prepare_training_data(aligned, TrainConfig(dataset="digits", val_split=0.2, seed=3, balance="undersample"))
    assert under.pixels is split.pixels or np.shares_memory(under.pixels, aligned.train_images)
    assert len(set(np.bincount(under.train_labels).tolist())) == 1 and set(under.train_rows) <= set(split.train_rows)


def test_undersample_and_class_weights_balance_classes():
    labels = np.array([0] * 90 + [1] * 10)
    kept = labels[undersampled(labels, seed=0)]
    assert np.bincount(kept).tolist() == [10, 10]
    weights = balanced_class_weights(labels, 2)
    np.testing.assert_allclose(weights, [100 / 180, 100 / 20])
    assert (weights[labels]).sum() == pytest.approx(100)


@pytest.mark.parametrize(
    "spec, shape, classes",
    [("fashion_mnist", (28, 28, 1), 10), ("eurosat/rgb", (64, 64, 3), 10), ("svhn_cropped", (32, 32, 3), 10)],
)
def test_any_tfds_image_classification_set_by_name(spec, shape, classes, tfds_host_reachable):
    with tfds.testing.mock_data(num_examples=20):
        data = load_dataset(f"tfds:{spec}")
    assert data.input_shape == shape and data.num_classes == classes
    assert len(data.train_labels) == 20 and len(data.test_labels) == 20  # its own test split
    assert data.name == spec.replace("/", "-") and data.source.startswith(f"tfds:{spec}@")


def test_a_tfds_set_of_varying_sizes_is_brought_to_one(tfds_host_reachable):
    with tfds.testing.mock_data(num_examples=10):
        data = load_dataset("tfds:cats_vs_dogs")
        sized = load_dataset("tfds:cats_vs_dogs", options=FolderOptions(image_size=(16, 16), channels=1))
    assert data.input_shape == (64, 64, 3) and data.class_names == ("cat", "dog") and data.task == "multiclass"
    assert sized.input_shape == (16, 16, 1)


def test_a_tfds_set_without_a_test_split_has_one_drawn(tfds_host_reachable, monkeypatch):
    real_load = tfds.load

    def only_train(name, split, **kwargs):
        if "test" in split:
            raise ValueError("Unknown split 'test'. Should be one of ['train'].")
        return real_load(name, split=split, **kwargs)

    monkeypatch.setattr(tfds, "load", only_train)
    with tfds.testing.mock_data(num_examples=200):
        data = load_dataset("tfds:eurosat/rgb", options=FolderOptions(test_split=0.25))
    assert (len(data.train_labels), len(data.test_labels)) == (150, 50)


def test_a_tfds_set_that_is_not_image_classification_is_refused(tfds_host_reachable):
    with pytest.raises(DatasetError, match=r"^tfds:imdb_reviews: not an image classification set: it needs one image"):
        load_dataset("tfds:imdb_reviews")
    with pytest.raises(DatasetError, match=r"^tfds:no_such_set: not a tensorflow-datasets set \("):
        load_dataset("tfds:no_such_set")


def test_a_tfds_set_that_cannot_be_downloaded_is_one_line(tmp_path, monkeypatch):
    def no_route(address, timeout):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(tfds_source.socket, "create_connection", no_route)
    with pytest.raises(DatasetError) as e:
        load_dataset("tfds:fashion_mnist", data_dir=tmp_path)
    assert str(e.value).startswith(f"tfds:fashion_mnist: not prepared in {tmp_path} and its download host ")
    assert "\n" not in str(e.value)
