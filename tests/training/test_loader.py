import threading

import numpy as np
import pytest

from phoenix.data.packing import batch_rows
from phoenix.training.loader import BatchLoader


def identity(rows):
    return rows.copy()


def test_batches_are_a_function_of_seed_and_step_and_resume_exactly():
    straight = list(BatchLoader(identity, 100, 8, seed=3, start_step=0, end_step=30))
    assert [s for s, _ in straight] == list(range(30))
    for step, rows in straight:
        np.testing.assert_array_equal(rows, batch_rows(100, 8, 3, step))
    resumed = list(BatchLoader(identity, 100, 8, seed=3, start_step=17, end_step=30))
    for (s1, a), (s2, b) in zip(straight[17:], resumed):
        assert s1 == s2
        np.testing.assert_array_equal(a, b)
    epoch = np.concatenate([rows for _, rows in straight[:12]])  # 12 steps of 8 = one epoch of 100 (96 used)
    assert len(set(epoch.tolist())) == 96  # nothing twice within an epoch


def test_each_process_draws_its_share_from_its_own_examples_and_resumes():
    # 4 processes holding 40, 30, 20 and 10 examples of their own; global batch 8 = 2 per process.
    sizes = (40, 30, 20, 10)
    loaders = [BatchLoader(identity, n, 8, 0, 0, 40, process_index=i, process_count=4) for i, n in enumerate(sizes)]
    shares = [list(loader) for loader in loaders]
    for i, n in enumerate(sizes):
        rows = np.stack([r for _, r in shares[i]])  # [steps, 2]
        assert rows.shape == (40, 2) and rows.min() >= 0 and rows.max() < n
        per_epoch = n // 2
        first_epoch = rows[:per_epoch].ravel()
        assert len(set(first_epoch.tolist())) == per_epoch * 2  # no example twice within an epoch
        resumed = list(BatchLoader(identity, n, 8, 0, 13, 40, process_index=i, process_count=4))
        np.testing.assert_array_equal(np.stack([r for _, r in resumed]), rows[13:])
    # processes draw from different permutation streams, not copies of one another
    assert not np.array_equal(shares[0][0][1], shares[1][0][1]) or not np.array_equal(shares[0][1][1], shares[1][1][1])
    with pytest.raises(ValueError, match="batch_size: 10 does not split evenly over 4 processes"):
        BatchLoader(identity, 64, 10, 0, 0, 5, process_count=4)


def test_prefetches_ahead_and_surfaces_errors():
    built = {step: threading.Event() for step in range(4)}

    def make(rows):
        step = next(s for s in range(4) if not built[s].is_set())
        built[step].set()
        if step == 3:
            raise KeyError("row 17 missing")
        return rows

    loader = iter(BatchLoader(make, 50, 5, 0, 0, 4, prefetch=2))
    next(loader)  # consumer takes step 0 ...
    assert built[2].wait(timeout=5)  # ... while steps 1 and 2 are already being built
    next(loader)
    next(loader)
    with pytest.raises(RuntimeError, match="batch loader failed: 'row 17 missing'"):
        next(loader)
