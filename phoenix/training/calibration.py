"""Fitting each head's calibration (`phoenix.model.calibration`) on the validation split.

Per head, a scale a and bias b of the logit z minimise the log-loss of
sigmoid(a·z + b) over the validation impressions: logistic regression on one
feature, solved by Newton's method. A small pull towards the identity keeps a
head without positives (or without negatives) finite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from phoenix.config import ModelConfig
from phoenix.data.packing import PackedExamples
from phoenix.evaluation.ranker import predict_examples
from phoenix.model.calibration import CALIBRATION_FILE, save_calibration
from phoenix.model.ranker import PhoenixRanker

PULL = 0.01  # strength of the pull towards (1, 0): a hundredth of one example's curvature


def fit_head(logits: np.ndarray, labels: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    """(a, b) minimising the log-loss of sigmoid(a·z + b) for logits z [N] and 0/1 labels [N]."""
    z, y = logits.astype(np.float64), labels.astype(np.float64)
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a * z + b)))  # [N]
        w = p * (1.0 - p)  # [N] curvature of each example's loss
        grad = np.array([np.dot(p - y, z), np.sum(p - y)]) + PULL * np.array([a - 1.0, b])
        hess = np.array([[np.dot(w, z * z), np.dot(w, z)], [np.dot(w, z), np.sum(w)]]) + PULL * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    return float(a), float(b)


def fit_calibration(
    model: PhoenixRanker, config: ModelConfig, examples: PackedExamples, workdir: str | Path, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit every head on `examples` (validation) with the model as trained, set it, and write it for `step`."""
    _, probs = predict_examples(model, config, examples)  # [M, A] with the identity calibration
    labels = examples.labels[examples.impression_id > 0]  # [M, A]
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    logits = np.log(p) - np.log1p(-p)  # [M, A]
    fitted = [fit_head(logits[:, i], labels[:, i]) for i in range(labels.shape[1])]
    scale = np.array([a for a, _ in fitted], np.float32)
    bias = np.array([b for _, b in fitted], np.float32)
    save_calibration(Path(workdir) / CALIBRATION_FILE, step, config.actions, scale, bias)
    model.calibration.set(scale, bias)
    return scale, bias
