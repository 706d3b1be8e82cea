"""SASRec's packed training batches: the same loss and gradient as the left-padded batch, in fewer rows."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from phoenix.benchmark.sasrec import packed, sasrec_loss
from phoenix.config import SASRecConfig
from phoenix.model.dropout import without_dropout
from phoenix.model.sasrec import SASRec

CONFIG = SASRecConfig(model_dim=16, num_layers=2, num_heads=2, history_len=12, dropout_rate=0.2)


def padded_batch(lengths: list[int], width: int, num_items: int, seed: int) -> list[np.ndarray]:
    """(inputs, positives, negatives) [U, width]: each user's `n` real tokens last, zeros before."""
    rng = np.random.default_rng(seed)
    batch = [np.zeros((len(lengths), width), np.int64) for _ in range(3)]
    for user, n in enumerate(lengths):
        for array in batch:
            array[user, width - n:] = rng.integers(1, num_items + 1, n)
    return batch


def test_packing_fills_rows_and_keeps_every_token_with_its_user_and_position():
    lengths = [12, 3, 9, 0, 1, 4, 7, 2, 12, 5]
    batch = padded_batch(lengths, 12, 40, seed=0)
    inputs, positives, negatives, segments, positions = packed(batch, history_len=20, row_multiple=4)
    assert inputs.shape == (8, 12)  # 55 tokens in 5 rows of 12, rounded up to a multiple of 4
    assert (segments[:5] > 0).sum() == sum(lengths) and not segments[5:].any()
    found = set()
    for segment in range(1, 10):
        row, columns = np.nonzero(segments == segment)
        assert np.unique(row).size == 1 and np.array_equal(columns, np.arange(columns[0], columns[-1] + 1))
        row, n = row[0], columns.size
        (user,) = [u for u, length in enumerate(lengths)
                   if length == n and np.array_equal(inputs[row, columns], batch[0][u, 12 - n:])]
        for source, target in zip(batch[1:], (positives, negatives)):
            assert np.array_equal(target[row, columns], source[user, 12 - n:])
        assert np.array_equal(positions[row, columns], np.arange(20 - n, 20))
        found.add(user)
    assert found == {u for u, n in enumerate(lengths) if n}


def test_packed_loss_and_gradient_equal_the_padded_batchs():
    model = SASRec(40, CONFIG, rngs=nnx.Rngs(0))
    batch = padded_batch([12, 3, 9, 1, 4, 7, 2, 11, 5, 6, 8, 2], 12, 40, seed=1)
    packing = packed(batch, CONFIG.history_len, row_multiple=8)
    assert packing[0].shape[0] == 8 < len(batch[0])
    loss_and_grad = nnx.value_and_grad(lambda m, examples: sasrec_loss(m, examples, None, None))
    with without_dropout(model):
        padded_loss, padded_grad = loss_and_grad(model, tuple(batch))
        packed_loss, packed_grad = loss_and_grad(model, packing)
    np.testing.assert_allclose(packed_loss, padded_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(packed_grad), jax.tree.leaves(padded_grad)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
