"""The one training loop: validation cadence, early stopping with the best parameters kept,
the time budget, the parameter average, epochs, checkpoints and resume, non-finite losses."""

from __future__ import annotations

import dataclasses
import math
import shutil
import time

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from phoenix.config import MeshConfig, TrainConfig
from phoenix.model.axes import param
from phoenix.training.loader import epoch_steps
from phoenix.training.loop import fit
from phoenix.training.trainer import Trainer
from phoenix.workdir import best_manager, restore_params

LR = 0.01
# Adam on a constant gradient moves a parameter by the learning rate each step: value = LR · steps.
SCHEDULE = TrainConfig(num_steps=6, learning_rate=LR, warmup_steps=0, decay="constant", weight_decay=0.0,
                       grad_clip_norm=0.0, log_every=1, eval_every=1, checkpoint_every=2)


class Counter(nnx.Module):
    def __init__(self):
        self.value = param(jnp.zeros(()), ())


def climb(model: Counter, batch, shared, key):
    return -model.value.value * batch.mean()  # gradient -1 per step: the value counts the steps


def nan_loss(model: Counter, batch, shared, key):
    return model.value.value * jnp.nan


def _trainer(schedule: TrainConfig, loss=climb) -> Trainer:
    return Trainer("train", Counter, loss, schedule, MeshConfig())


def _batches(seconds: float = 0.0):
    def batches(start: int, end: int):
        for step in range(start, end):
            time.sleep(seconds)
            yield step, (np.ones(4, np.float32), None)

    return batches


def _fit(scores, schedule=SCHEDULE, seconds=0.0, **kwargs):
    trainer = _trainer(schedule)
    seen = []

    def validate(model):
        seen.append(round(float(model.value.value) / LR))  # the step whose parameters are scored
        return {"ndcg@10": scores[len(seen) - 1]}

    result = fit(trainer, _batches(seconds), validate, metric="valid_ndcg@10", progress=False, **kwargs)
    return result, trainer, seen


def test_patience_stops_and_the_model_ends_with_the_best_parameters():
    schedule = dataclasses.replace(SCHEDULE, patience=3)
    result, trainer, seen = _fit([0.1, 0.3, 0.2, 0.25, 0.2, 0.9], schedule)
    assert seen == [1, 2, 3, 4, 5]  # step 5 is 3 steps past the best (2): stop before step 6
    assert (result.best_step, result.stopped_by, result.steps) == (2, "patience", 5)
    assert float(trainer.model.value.value) == pytest.approx(2 * LR, rel=1e-4)  # the best, not the last


def test_without_patience_the_schedule_runs_out_and_validates_on_its_cadence():
    schedule = dataclasses.replace(SCHEDULE, eval_every=4)
    result, trainer, seen = _fit([0.5, 0.4], schedule)
    assert seen == [4, 6]  # every 4 steps, and the last step
    assert (result.best_step, result.stopped_by) == (4, "schedule")
    assert [r["step"] for r in result.records if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_the_time_budget_validates_the_step_that_crosses_it():
    # 1.5 s per step against a 2 s budget: step 2 crosses it, with a second of margin for compiling.
    schedule = dataclasses.replace(SCHEDULE, eval_every=5, time_budget_s=2.0)
    result, _, seen = _fit([0.7], schedule, seconds=1.5)
    assert seen == [2] and (result.best_step, result.stopped_by) == (2, "time_budget")


def test_validation_and_the_kept_state_use_the_parameter_average():
    schedule = dataclasses.replace(SCHEDULE, num_steps=2, eval_every=2, average_decay=0.5)
    trainer = _trainer(schedule)
    scored = []
    fit(trainer, _batches(), lambda m: scored.append(float(m.value.value)) or {"m": 1.0}, metric="valid_m",
        progress=False)
    # The average: decay 1/10 after step 1 (0.9·LR), then 2/11: 2/11·0.9·LR + 9/11·2·LR.
    expected = (2 / 11 * 0.9 + 9 / 11 * 2) * LR
    assert scored == pytest.approx([expected], rel=1e-4)
    assert float(trainer.model.value.value) == pytest.approx(expected, rel=1e-4)


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    with pytest.raises(FloatingPointError, match="train: training loss became nan by step 1"):
        fit(_trainer(SCHEDULE, nan_loss), _batches(), lambda m: {"m": 0.0}, metric="valid_m", progress=False)


def test_a_workdir_keeps_the_best_step_for_serving_and_resumes_where_it_stopped(tmp_path):
    scores = [0.1, 0.9, 0.2, 0.3, 0.4, 0.5]
    # Interrupted after 3 steps, then resumed: the same records and best step as one run.
    first, _, seen_a = _fit(scores, workdir=tmp_path / "a", max_steps=3)
    assert first.stopped_by == "max_steps" and seen_a == [1, 2, 3]
    resumed, trainer, seen_b = _fit(scores[3:], workdir=tmp_path / "a")
    assert seen_b == [4, 5, 6] and resumed.best_step == 2
    whole, _, _ = _fit(scores, workdir=tmp_path / "b")
    strip = lambda records: [{k: v for k, v in r.items()} for r in records]  # noqa: E731
    assert strip(resumed.records) == strip(whole.records)
    # best/ holds step 2's parameters; serving loads them rather than the last step's.
    assert best_manager(tmp_path / "a").latest_step() == 2
    model = Counter()
    assert restore_params(tmp_path / "a", model) == 2
    assert float(model.value.value) == pytest.approx(2 * LR, rel=1e-4)


def test_a_run_killed_between_saving_its_best_step_and_its_checkpoint_replays_that_step(tmp_path):
    scores = [0.1, 0.2, 0.9, 0.3, 0.4, 0.5]
    _fit(scores, workdir=tmp_path / "a", max_steps=3)
    shutil.rmtree(tmp_path / "a" / "checkpoints" / "3")  # killed after best/ took step 3, before its checkpoint
    assert best_manager(tmp_path / "a").latest_step() == 3
    resumed, _, seen = _fit(scores[2:], workdir=tmp_path / "a")  # replays step 3, which is best again
    assert seen == [3, 4, 5, 6] and resumed.best_step == 3
    model = Counter()
    assert restore_params(tmp_path / "a", model) == 3
    assert float(model.value.value) == pytest.approx(3 * LR, rel=1e-4)


def test_epochs_replay_their_plan_when_a_run_resumes_mid_epoch():
    plan = lambda epoch: iter([(epoch, i) for i in range(3)])  # noqa: E731
    whole = list(epoch_steps(0, 7, 3, plan))
    assert [batch for _, batch in whole] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    assert list(epoch_steps(4, 7, 3, plan)) == whole[4:]
    assert math.isclose(len(whole), 7)
