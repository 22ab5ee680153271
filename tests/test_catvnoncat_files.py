import h5py
import numpy as np
import pytest
from format_writers import write_catvnoncat

from kerasreg.datasets import load_dataset
from kerasreg.errors import DatasetError


def test_reads_the_course_h5_files(tmp_path):
    arrays = write_catvnoncat(tmp_path)
    data = load_dataset("catvnoncat", source="files", data_dir=tmp_path)
    assert data.task == "binary" and data.class_names == ("non-cat", "cat")
    assert data.input_shape == (64, 64, 3)
    np.testing.assert_array_equal(data.train_images, arrays["train"][0])
    np.testing.assert_array_equal(data.test_labels, arrays["test"][1])


def test_missing_key_is_named(tmp_path):
    write_catvnoncat(tmp_path)
    with h5py.File(tmp_path / "test_catvnoncat.h5", "a") as f:
        del f["test_set_y"]
    with pytest.raises(DatasetError, match="missing dataset .*test_set_y.*expected keys test_set_x, test_set_y"):
        load_dataset("catvnoncat", data_dir=tmp_path)


def test_not_hdf5_is_one_clear_error(tmp_path):
    write_catvnoncat(tmp_path)
    (tmp_path / "train_catvnoncat.h5").write_bytes(b"<html>404</html>")
    with pytest.raises(DatasetError, match="train_catvnoncat.h5: not a readable HDF5 file"):
        load_dataset("catvnoncat", data_dir=tmp_path)


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_dataset("catvnoncat", data_dir=tmp_path)
    assert str(e.value) == (
        f"catvnoncat: train_catvnoncat.h5, test_catvnoncat.h5 not found in {tmp_path}; "
        "copy the course's week-2 datasets/ files there."
    )
