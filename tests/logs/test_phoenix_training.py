"""Phoenix's training pieces on logs: the listwise loss by hand, and dropout only while training."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SMALL_MODEL, random_request

from phoenix.logs.phoenix_training import listwise_loss
from phoenix.model.batch import featurize
from phoenix.model.dropout import without_dropout
from phoenix.model.ranker import build_ranker


def test_listwise_loss_matches_a_hand_computed_softmax():
    # Two positions (P=2), two groups (true item, one negative): layout [true_0, true_1, neg_0, neg_1].
    logits = jnp.array([[2.0, 0.0, 1.0, 3.0]])
    valid = jnp.array([[True, True, True, True]])
    expected = -(np.log(np.exp(2) / (np.exp(2) + np.exp(1))) + np.log(1 / (1 + np.exp(3)))) / 2
    assert float(listwise_loss(logits, valid, groups=2)) == pytest.approx(expected, rel=1e-6)
    # A padded position (invalid true item and negative) does not count; an invalid negative is ignored.
    valid = jnp.array([[True, False, False, False]])
    assert float(listwise_loss(logits, valid, groups=2)) == pytest.approx(0.0, abs=1e-6)


def test_dropout_acts_in_training_mode_only():
    config = SMALL_MODEL.__class__(**{**SMALL_MODEL.__dict__, "dropout_rate": 0.3})
    model = build_ranker(config, seed=0)
    batch = featurize(random_request(np.random.default_rng(0), config, batch=2, lengths=[5, 9]), config)
    first, second = np.asarray(model.score_candidates(batch)), np.asarray(model.score_candidates(batch))
    assert np.abs(first - second).max() > 1e-4  # a fresh dropout mask per call
    with without_dropout(model):
        cached, full = np.asarray(model.score_candidates(batch)), np.asarray(model(batch))
        np.testing.assert_allclose(cached, np.asarray(model.score_candidates(batch)), atol=0)
    np.testing.assert_allclose(cached, full, atol=1e-4)  # both paths agree without dropout
    after = np.asarray(model.score_candidates(batch))
    assert np.abs(after - cached).max() > 1e-4  # dropout is back on after the block
