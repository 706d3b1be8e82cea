"""The SASRec baseline: causal mask, padding invariance, scoring, and that it learns."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import nnx
from helpers import log_from_sequences

from phoenix.benchmark.sasrec import sasrec_scores, train_sasrec
from phoenix.config import SASRecConfig
from phoenix.data.protocol import hit_and_ndcg, split_next_item
from phoenix.model.dropout import without_dropout
from phoenix.model.sasrec import SASRec, sasrec_causal_mask

SMALL = SASRecConfig(model_dim=16, num_layers=2, num_heads=2, history_len=12, dropout_rate=0.2,
                     train=dataclasses.replace(SASRecConfig().train, batch_size=16))


def test_causal_mask_sees_only_earlier_real_items_and_itself():
    valid = jnp.array([[False, False, True, True]])
    mask = np.asarray(sasrec_causal_mask(valid))[0]
    expected = np.array([
        [1, 0, 0, 0],
        [0, 1, 0, 0],  # padding query: itself only, so softmax has a key
        [0, 0, 1, 0],
        [0, 0, 1, 1],
    ], bool)
    assert np.array_equal(mask, expected)


def test_a_state_never_depends_on_later_items():
    model = SASRec(50, SMALL, rngs=nnx.Rngs(0))
    seq = np.array([[0, 0, 3, 7, 9, 11, 4, 8, 2, 5, 6, 1]])
    changed = seq.copy()
    changed[0, 8:] = [40, 41, 42, 43]
    with without_dropout(model):
        a, b = np.asarray(model.states(seq)), np.asarray(model.states(changed))
    np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-5)
    assert np.abs(a[:, 8:] - b[:, 8:]).max() > 1e-3


def test_cutting_left_padding_and_scoring_agree():
    model = SASRec(50, SMALL, rngs=nnx.Rngs(1))
    seq = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 3, 7, 9, 11]])
    candidates = np.array([[1, 2, 3]])
    with without_dropout(model):
        full, cut = np.asarray(model.states(seq)), np.asarray(model.states(seq[:, -4:]))
        scored = np.asarray(model.score_next(seq, candidates))[0]
    np.testing.assert_allclose(full[:, -4:], cut, atol=1e-5)
    expected = np.einsum("d,cd->c", full[0, -1], np.asarray(model.item_embed(candidates))[0])
    np.testing.assert_allclose(scored, expected, rtol=1e-5, atol=1e-5)


def test_sasrec_learns_a_chain():
    chain = {u: [(u + t) % 60 + 1 for t in range(14)] for u in range(1, 61)}
    split = split_next_item(log_from_sequences(chain, 60), negatives=20)
    schedule = dataclasses.replace(SMALL.train, num_epochs=40, patience=40, learning_rate=1e-2)
    model, fit = train_sasrec(split, dataclasses.replace(SMALL, train=schedule), progress=False)
    losses = [r["loss"] for r in fit.records if "loss" in r]
    assert len(losses) == 40 and losses[-1] < losses[0]
    assert hit_and_ndcg(sasrec_scores(model, split, "test"))["ndcg@10"] > 0.6  # random: ~0.2 with 20 negatives
