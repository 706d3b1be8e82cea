"""The shared early-stopping rule: patience, the wall-clock budget, and the best epoch's parameters."""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np
from flax import nnx
from phoenix.training.early_stopping import fit_with_early_stopping


class Scalar(nnx.Module):
    def __init__(self):
        self.value = nnx.Param(jnp.zeros(()))


def _fit(scores: list[float], epoch_seconds: float = 0.0, **kwargs):
    model = Scalar()
    validated = []

    def run_epoch(epoch: int) -> float:
        model.value.value = jnp.asarray(float(epoch))  # the parameter records the epoch
        time.sleep(epoch_seconds)
        return 1.0

    def validate() -> dict[str, float]:
        epoch = int(model.value.value)
        validated.append(epoch)
        return {"ndcg@10": scores[epoch], "hr@10": scores[epoch]}

    fit = fit_with_early_stopping(model, run_epoch, validate, len(scores), progress=False, name="t", **kwargs)
    return fit, model, validated


def test_patience_stops_and_restores_the_best_epoch():
    fit, model, validated = _fit([0.1, 0.3, 0.2, 0.25, 0.2, 0.9], patience=3)
    assert validated == [0, 1, 2, 3, 4]  # epoch 4 is 3 epochs past the best (1): stop
    assert (fit.best_epoch, fit.stopped_by) == (1, "patience")
    assert float(model.value.value) == 1.0  # the best epoch's parameters, not the last


def test_time_budget_validates_the_epoch_it_stops_on():
    # Validation every 4 epochs; the budget runs out during epoch 1, which is validated anyway.
    # Wide margins (0.3 s epochs, a 0.45 s budget) so a slow machine cannot move the crossing epoch.
    fit, model, validated = _fit([0.1, 0.5, 0.9, 0.9], epoch_seconds=0.3, patience=10, eval_every=4,
                                 time_budget_s=0.45)
    assert validated == [1]
    assert (fit.best_epoch, fit.stopped_by) == (1, "time_budget")
    assert float(model.value.value) == 1.0
    assert fit.seconds < 0.45 + 0.3 + 0.5  # at most about one epoch past the budget


def test_no_budget_runs_to_max_epochs():
    fit, _, validated = _fit(list(np.linspace(0.1, 0.5, 5)), patience=10)
    assert validated == [0, 1, 2, 3, 4]
    assert (fit.best_epoch, fit.stopped_by) == (4, "max_epochs")
