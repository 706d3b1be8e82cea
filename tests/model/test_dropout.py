"""Byte-drawn dropout: the rate it drops, the expectation it keeps, fresh masks, off for scoring."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from phoenix.model.dropout import Dropout, byte_threshold, without_dropout


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_drops_its_rate_and_keeps_the_mean(rate):
    layer = Dropout(rate, rngs=nnx.Rngs(dropout=3))
    x = jnp.full((1000, 103), 2.0)  # an odd size: the last word's spare bytes are cut off
    y = np.asarray(layer(x))
    dropped = (y == 0).mean()
    expected = byte_threshold(rate) / 256
    assert abs(expected - rate) <= 1 / 512
    assert abs(dropped - expected) < 0.005  # 103,000 draws: the standard error is about 0.0013
    assert abs(y.mean() - 2.0) < 0.02  # kept values are scaled by 256 / (256 - threshold)
    np.testing.assert_allclose(np.unique(y), [0.0, 2.0 * 256 / (256 - byte_threshold(rate))], rtol=1e-6)


def test_masks_are_fresh_per_call_and_independent_across_elements():
    layer = Dropout(0.5, rngs=nnx.Rngs(dropout=0))
    x = jnp.ones((64, 256))
    first, second = np.asarray(layer(x)) == 0, np.asarray(layer(x)) == 0
    assert 0.4 < (first != second).mean() < 0.6  # two independent masks disagree about half the time
    # Neighbouring bytes of one random word decide neighbouring elements: still uncorrelated.
    flat = first.reshape(-1).astype(float)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.02


def test_scoring_is_the_identity_and_training_comes_back():
    class Net(nnx.Module):
        def __init__(self):
            self.drop = Dropout(0.5, rngs=nnx.Rngs(dropout=1))

        def __call__(self, x):
            return self.drop(x)

    net, x = Net(), jnp.ones((8, 32))
    with without_dropout(net):
        np.testing.assert_array_equal(np.asarray(net(x)), np.ones((8, 32)))
    assert (np.asarray(net(x)) == 0).any()
    assert (np.asarray(Dropout(0.0, rngs=nnx.Rngs(0))(x)) == 1).all()
