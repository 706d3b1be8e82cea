"""The parameter average: its update rule by hand, the swap in and out, and early stopping keeping it."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from phoenix.training.parameter_average import ParameterAverage


class Pair(nnx.Module):
    def __init__(self):
        self.weight = nnx.Param(jnp.zeros((2,)))
        self.counter = nnx.Variable(jnp.zeros(()))  # not a Param: never averaged


def _set(model: Pair, values) -> None:
    model.weight.value = jnp.asarray(values, jnp.float32)


def test_average_follows_the_warmed_up_decay_by_hand():
    model = Pair()
    average = ParameterAverage(nnx.state(model, nnx.Param), decay=0.9)
    expected = np.zeros(2)
    for step, values in enumerate([[1.0, -1.0], [3.0, 0.0], [5.0, 2.0]]):
        _set(model, values)
        average.update(nnx.state(model, nnx.Param))
        decay = min(0.9, (1 + step) / (10 + step))  # 0.1, 2/11, 0.25
        expected = decay * expected + (1 - decay) * np.asarray(values)
    np.testing.assert_allclose(np.asarray(average.average["weight"].value), expected, rtol=1e-6)
    assert average.steps == 3
    np.testing.assert_allclose(np.asarray(model.weight.value), [5.0, 2.0])  # the model keeps its own


def test_swapped_in_restores_the_own_parameters_even_on_error():
    model = Pair()
    average = ParameterAverage(nnx.state(model, nnx.Param), decay=0.5)
    _set(model, [4.0, 4.0])
    average.update(nnx.state(model, nnx.Param))  # first decay 0.1: 0.1·0 + 0.9·4
    with average.swapped_in(model):
        np.testing.assert_allclose(np.asarray(model.weight.value), [3.6, 3.6], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model.weight.value), [4.0, 4.0])
    with pytest.raises(RuntimeError), average.swapped_in(model):
        raise RuntimeError("scoring failed")
    np.testing.assert_allclose(np.asarray(model.weight.value), [4.0, 4.0])


def test_decay_outside_the_open_interval_is_refused():
    with pytest.raises(ValueError, match="decay"):
        ParameterAverage(nnx.state(Pair(), nnx.Param), decay=1.0)
