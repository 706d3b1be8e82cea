"""The parameter average: its update rule by hand, the swap in and out, and early stopping keeping it."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from phoenix.training.early_stopping import fit_with_early_stopping

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
        ParameterAverage(Pair(), decay=1.0)


def test_early_stopping_keeps_the_validated_average_not_the_raw_parameters():
    model = Pair()
    average = ParameterAverage(nnx.state(model, nnx.Param), decay=0.5)
    scores = [0.2, 0.6, 0.3]

    def run_epoch(epoch: int) -> float:
        _set(model, [10.0 * (epoch + 1)] * 2)
        average.update(nnx.state(model, nnx.Param))
        return 1.0

    def validate() -> dict[str, float]:
        return {"ndcg@10": scores[average.steps - 1], "hr@10": 0.0}

    kept = []
    fit = fit_with_early_stopping(
        model, run_epoch, validate, len(scores), patience=5, name="t", progress=False,
        kept_state=lambda: kept.append(np.asarray(average.average["weight"].value)) or average.average,
    )
    assert fit.best_epoch == 1
    # Epoch 1's average: 0.9·10 = 9 after step 0, then decay 2/11: 2/11·9 + 9/11·20.
    np.testing.assert_allclose(np.asarray(model.weight.value), kept[1], rtol=1e-6)
    np.testing.assert_allclose(kept[1], [2 / 11 * 9 + 9 / 11 * 20] * 2, rtol=1e-6)
