import gzip

import numpy as np
import pytest
from format_writers import idx_bytes, write_mnist

from kerasreg.datasets import load_dataset
from kerasreg.datasets.idx_files import load_mnist_files, read_idx
from kerasreg.errors import DatasetError


@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_files_gzip_and_raw(tmp_path, gz):
    arrays = write_mnist(tmp_path, n_train=30, n_test=10, gz=gz)
    data = load_mnist_files(tmp_path)
    assert data.train_images.shape == (30, 28, 28, 1) and data.train_images.dtype == np.uint8
    np.testing.assert_array_equal(data.train_images[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert data.class_names == tuple("0123456789")


def test_source_auto_uses_files_when_present(tmp_path):
    write_mnist(tmp_path)
    data = load_dataset("mnist", source="auto", data_dir=tmp_path)
    assert data.source == f"files:{tmp_path}"


def test_dotted_mirror_names_are_found(tmp_path):
    arrays = write_mnist(tmp_path, gz=False)
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.replace("-idx", ".idx"))
    assert len(load_mnist_files(tmp_path).train_labels) == len(arrays["train-labels-idx1-ubyte"])


def test_truncated_file_is_one_clear_error(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="truncated or corrupt, download it again"):
        load_mnist_files(tmp_path)


def test_truncated_gzip_is_one_clear_error(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DatasetError, match="cannot read this IDX file"):
        load_mnist_files(tmp_path)


def test_wrong_format_is_refused(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1]) + (3).to_bytes(4, "big") + b"\0" * 12))
    with pytest.raises(DatasetError, match=r"IDX data type 0x0d; expected 0x08"):
        read_idx(path)


def test_label_count_mismatch(tmp_path):
    write_mnist(tmp_path, n_train=30, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29, np.uint8)))
    with pytest.raises(DatasetError, match="has 30 images but train-labels-idx1-ubyte has 29 labels"):
        load_mnist_files(tmp_path)


def test_missing_files_say_what_and_where(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_mnist_files(tmp_path)
    assert str(e.value) == (
        f"mnist: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        f"t10k-labels-idx1-ubyte[.gz] not found in {tmp_path}; put the four MNIST IDX files there."
    )


def test_labels_out_of_range_are_refused(tmp_path):
    write_mnist(tmp_path, n_train=30, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(30, 12, np.uint8)))
    with pytest.raises(DatasetError, match=r"labels must lie in 0..9, got 12..12"):
        load_mnist_files(tmp_path)


def test_errors_through_load_dataset_name_the_dataset(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DatasetError) as e:
        load_dataset("mnist", source="files", data_dir=tmp_path)
    assert str(e.value).startswith(f"mnist: {path}: header says (20,) = 20 bytes but the file holds 17")
