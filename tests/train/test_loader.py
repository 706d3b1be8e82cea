import threading

import numpy as np
import pytest

from phoenix.train.loader import BatchLoader
from phoenix.train.packing import batch_rows


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


def test_processes_split_each_global_batch_without_overlap():
    loaders = [BatchLoader(identity, 64, 8, 0, 0, 5, process_index=i, process_count=4) for i in range(4)]
    shares = [list(loader) for loader in loaders]
    for step in range(5):
        parts = [shares[i][step][1] for i in range(4)]
        assert all(p.size == 2 for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), batch_rows(64, 8, 0, step))
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
