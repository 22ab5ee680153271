"""A cluster worker's shard: which rows it holds, and taking them in place with the memory past them given back."""

import numpy as np
import pytest

from kerasreg.datasets.shards import Shard, take_shard
from kerasreg.datasets.views import aligned_empty


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_a_part_of_the_rows_splits_by_worker_and_maps_to_the_shard():
    rows = np.array([0, 1, 2, 5, 7, 8])
    shard = Shard(1, 2)
    assert shard.mine(rows).tolist() == [False, True, False, True, True, False]
    assert shard.local(rows[shard.mine(rows)]).tolist() == [0, 2, 3]  # rows 1, 5, 7 are the shard's 0th, 2nd, 3rd
    assert shard.sizes(rows) == (3, 3)
    assert Shard(2, 3).held(10) == 3 and Shard(0, 3).held(10) == 4


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_shard_is_taken_in_place_and_the_memory_past_it_is_released(index):
    images = aligned_empty((24_000, 32, 32, 3), np.uint8)  # 211 MiB
    images[...] = np.random.default_rng(index).integers(0, 256, images.shape, dtype=np.uint8)
    expected = images[index::3].copy()
    before = _resident_mib()
    taken = take_shard(images, Shard(index, 3), owned=True)
    released = before - _resident_mib()
    np.testing.assert_array_equal(taken, expected)
    assert np.shares_memory(taken, images) and taken.ctypes.data % 64 == 0
    assert released > 0.6 * images.nbytes / 2**20, released  # two thirds of it handed back


def test_images_the_run_does_not_own_are_copied_and_left_as_they_were():
    images = np.arange(10 * 4 * 4 * 1, dtype=np.uint8).reshape(10, 4, 4, 1)
    original = images.copy()
    taken = take_shard(images, Shard(1, 2), owned=False)
    np.testing.assert_array_equal(taken, original[1::2])
    np.testing.assert_array_equal(images, original)  # the caller's array, untouched
    assert not np.shares_memory(taken, images) and taken.ctypes.data % 64 == 0
    images.flags.writeable = False  # a read-only array (a file's bytes, say) is copied even when owned
    np.testing.assert_array_equal(take_shard(images, Shard(0, 2), owned=True), original[0::2])
