import pickle

import numpy as np
import pytest
from format_writers import cifar_batch_bytes, cifar_batches, write_cifar_folder, write_cifar_tarball

from kerasreg.datasets import load_dataset
from kerasreg.datasets.cifar_files import load_cifar10_files
from kerasreg.errors import DatasetError


def _expected(batches):
    train = [batches[n] for n in sorted(batches) if n.startswith("data_batch")]
    return np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])


def test_reads_batches_of_any_size_from_the_parent_folder(tmp_path):
    batches = cifar_batches(rows=(7, 5, 3))
    write_cifar_folder(tmp_path, batches)
    data = load_cifar10_files(tmp_path)
    images, labels = _expected(batches)
    assert data.train_images.shape == (15, 32, 32, 3)
    np.testing.assert_array_equal(data.train_images, images)  # channel planes -> HWC done right
    np.testing.assert_array_equal(data.train_labels, labels)
    np.testing.assert_array_equal(data.test_images, batches["test_batch"][0])
    assert data.class_names[3] == "cat"


@pytest.mark.parametrize("writer", [write_cifar_folder, write_cifar_tarball])
@pytest.mark.parametrize(("index", "count"), [(0, 2), (1, 2), (2, 3)])
def test_a_cluster_worker_reads_only_its_shard_of_the_images_and_every_label(tmp_path, writer, index, count):
    from kerasreg.datasets.container import Shard

    batches = cifar_batches(rows=(7, 5, 3))  # odd sizes: each batch starts the shard at another of its rows
    writer(tmp_path, batches)
    data = load_cifar10_files(tmp_path, Shard(index, count))
    images, labels = _expected(batches)
    np.testing.assert_array_equal(data.train_images, images[index::count])
    np.testing.assert_array_equal(data.train_labels, labels)
    assert data.shard == Shard(index, count) and data.train_images.ctypes.data % 64 == 0
    np.testing.assert_array_equal(data.test_images, batches["test_batch"][0])


def test_batches_load_into_one_aligned_array_and_too_many_are_refused_before_any_is_read(tmp_path, monkeypatch):
    from kerasreg.datasets import cifar_files, memory

    batches = cifar_batches(rows=(7, 5, 3))
    write_cifar_folder(tmp_path, batches)
    data = load_cifar10_files(tmp_path)
    assert data.train_images.ctypes.data % 64 == 0  # training reads the rows where they lie: no copy of the set
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)  # a machine of 1 MiB
    read = []
    monkeypatch.setattr(cifar_files, "load_cifar_batch", lambda *a: read.append(a))
    with pytest.raises(DatasetError) as refused:
        load_cifar10_files(tmp_path)
    assert read == []
    said = str(refused.value)
    bound = sum(f.stat().st_size for f in (tmp_path / "cifar-10-batches-py").glob("data_batch_*")) // 3072
    assert said.startswith(f"{tmp_path / 'cifar-10-batches-py'}: up to {bound} images of 32x32x3 need about ")
    assert said.endswith("Train on fewer data_batch_* files, or on a machine with more memory.")


def test_naming_the_batches_folder_itself_works(tmp_path):
    folder = write_cifar_folder(tmp_path, cifar_batches())
    assert len(load_cifar10_files(folder).train_labels) == 12


def test_reads_the_tarball_without_extracting(tmp_path):
    batches = cifar_batches(rows=(4, 4))
    write_cifar_tarball(tmp_path, batches)
    data = load_cifar10_files(tmp_path)
    np.testing.assert_array_equal(data.train_images, _expected(batches)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"]


def test_batches_sort_numerically(tmp_path):
    batches = cifar_batches(rows=(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2))  # data_batch_10 after _9
    write_cifar_folder(tmp_path, batches)
    data = load_cifar10_files(tmp_path)
    np.testing.assert_array_equal(
        data.train_labels[-3:], np.concatenate([batches["data_batch_10"][1], batches["data_batch_11"][1]])
    )


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    folder = write_cifar_folder(tmp_path, cifar_batches())
    marker = tmp_path / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": _Exploit(marker)}, protocol=2))
    with pytest.raises(DatasetError, match=r"refused to load \(global (posix|os)\.system is not allowed"):
        load_cifar10_files(tmp_path)
    assert not marker.exists()


def test_truncated_batch_is_one_clear_error(tmp_path):
    folder = write_cifar_folder(tmp_path, cifar_batches())
    data = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="test_batch: truncated or corrupt CIFAR-10 batch"):
        load_cifar10_files(tmp_path)


def test_wrong_shape_is_not_a_cifar_batch(tmp_path):
    folder = write_cifar_folder(tmp_path, cifar_batches())
    bad = {b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DatasetError, match=r"data must be uint8 \[N, 3072\], got \(3, 100\)"):
        load_cifar10_files(tmp_path)


def test_missing_data_names_the_download(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_dataset("cifar10", source="files", data_dir=tmp_path)
    assert str(e.value).startswith(
        f"cifar10: neither cifar-10-batches-py/ nor cifar-10-python.tar.gz found in {tmp_path}"
    )


def test_cat_is_cifar_cat_vs_the_rest(tmp_path):
    batches = cifar_batches(rows=(20,))
    write_cifar_folder(tmp_path, batches)
    data = load_dataset("cat", source="files", data_dir=tmp_path)
    assert data.task == "binary" and data.class_names == ("non-cat", "cat")
    np.testing.assert_array_equal(data.train_labels, (batches["data_batch_1"][1] == 3).astype(int))


def test_batch_pickled_by_python3_numpy2_loads(tmp_path):
    images = np.zeros((2, 32, 32, 3), np.uint8)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "test_batch"):
        (folder / name).write_bytes(cifar_batch_bytes(images, np.array([1, 2])))
    assert load_cifar10_files(tmp_path).test_labels.tolist() == [1, 2]
