"""Per-head calibration: the fit recovers a known affine map, and a trained workdir serves
probabilities whose mean matches each head's validation rate."""

import json

import numpy as np
import pytest

from phoenix.data.dataset import read_impressions
from phoenix.data.packing import pack_examples
from phoenix.evaluation.ranker import predict_examples
from phoenix.model.calibration import CALIBRATION_FILE
from phoenix.training.calibration import fit_head
from phoenix.workdir import load_model, read_run_data_dir


def test_the_fit_recovers_the_map_that_made_the_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 200_000)
    labels = rng.random(z.size) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    a, b = fit_head(z, labels)
    assert a == pytest.approx(0.5, abs=0.02) and b == pytest.approx(-1.0, abs=0.03)


def test_a_head_with_one_class_stays_finite():
    a, b = fit_head(np.linspace(-3, 3, 1000), np.zeros(1000))
    assert np.isfinite([a, b]).all() and b < -3  # pushed down, not to minus infinity


def test_a_trained_workdir_serves_calibrated_heads(trained_workdir):
    record = json.loads((trained_workdir / CALIBRATION_FILE).read_text())
    model, config, step = load_model(trained_workdir)
    assert record["step"] == step and not np.allclose(record["bias"], 0)
    np.testing.assert_allclose(np.asarray(model.calibration.bias.value), record["bias"], rtol=1e-6)
    valid = pack_examples(read_impressions(read_run_data_dir(trained_workdir)), "valid", config.model.history_len,
                          config.model.num_candidates)
    _, probs = predict_examples(model, config.model, valid)
    labels = valid.labels[valid.impression_id > 0]
    ratio = probs.mean(axis=0) / np.maximum(labels.mean(axis=0), 1e-9)  # [A] predicted over observed
    assert np.all(np.abs(ratio - 1) < 0.02), ratio  # fitted with an intercept: the means match
    model.calibration.set(np.ones_like(record["scale"]), np.zeros_like(record["bias"]))  # raw, for contrast
    _, raw = predict_examples(model, config.model, valid)
    assert np.abs(raw.mean(axis=0) / np.maximum(labels.mean(axis=0), 1e-9) - 1).max() > 0.05


def test_constants_fitted_for_another_step_are_not_applied(trained_workdir):
    _, _, step = load_model(trained_workdir)
    checkpoints = sorted(int(p.name) for p in (trained_workdir / "checkpoints").iterdir() if p.name.isdigit())
    other = next(s for s in checkpoints if s != step)
    model, _, served = load_model(trained_workdir, step=other)
    assert served == other and np.allclose(np.asarray(model.calibration.scale.value), 1.0)
