import json
import os
import subprocess
import sys

import numpy as np
import pytest

from phoenix.data.hashing import hash_ids, hash_seeds


def test_padding_maps_to_zero_and_real_ids_never_do():
    ids = np.array([0, 1, 2, 3, 10**12, 2**62])
    buckets = hash_ids(ids, 7, hash_seeds(0, "post", 3))
    assert buckets.shape == (6, 3)
    assert np.all(buckets[0] == 0)
    assert np.all((buckets[1:] >= 1) & (buckets[1:] <= 6))


def test_hashes_spread_ids_and_differ_per_hash_and_table():
    ids = np.arange(1, 20_001)
    b = hash_ids(ids, 1001, hash_seeds(0, "post", 2))
    counts = np.bincount(b[:, 0], minlength=1001)[1:]
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()  # roughly uniform
    assert np.mean(b[:, 0] == b[:, 1]) < 0.01  # independent hash functions
    other_table = hash_ids(ids, 1001, hash_seeds(0, "user", 2))
    assert np.mean(other_table == b) < 0.01
    other_seed = hash_ids(ids, 1001, hash_seeds(1, "post", 2))
    assert np.mean(other_seed == b) < 0.01


def test_hashing_is_identical_in_another_process():
    code = (
        "import json, numpy as np; from phoenix.data.hashing import hash_ids, hash_seeds;"
        "print(json.dumps(hash_ids(np.arange(0, 50), 997, hash_seeds(7, 'author', 2)).ravel().tolist()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    here = hash_ids(np.arange(0, 50), 997, hash_seeds(7, "author", 2)).ravel().tolist()
    assert json.loads(out.stdout) == here


def test_bad_ids_name_the_field():
    with pytest.raises(ValueError, match="history_post_id"):
        hash_ids(np.array([3, -1]), 11, hash_seeds(0, "post", 2), field="history_post_id")
    with pytest.raises(ValueError, match="user_id"):
        hash_ids(np.array([1.5]), 11, hash_seeds(0, "user", 2), field="user_id")
