"""Per-head calibration: an affine map of each head's logit, fitted after training.

A ranker trained with dropout and selected on AUC ranks well but need not say
well-calibrated probabilities (rare heads least of all). `HeadCalibration`
holds one scale and one bias per head, applied to the logits on every path
(training, evaluation, serving). They are `Calibration` variables, not
parameters: the optimizer never moves them and checkpoints do not hold them;
training fits them on the validation split once it has its best step and
writes them beside the checkpoints (`phoenix.training.calibration`).
Until then they are the identity.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx


class Calibration(nnx.Variable):
    """A calibration constant: state of the model, never a trained parameter."""


class HeadCalibration(nnx.Module):
    def __init__(self, num_actions: int):
        self.scale = Calibration(jnp.ones((num_actions,), jnp.float32), axes=("actions",))  # [A]
        self.bias = Calibration(jnp.zeros((num_actions,), jnp.float32), axes=("actions",))  # [A]

    def __call__(self, logits: jnp.ndarray) -> jnp.ndarray:  # [..., A] -> [..., A]
        return logits * self.scale.value + self.bias.value

    def set(self, scale: np.ndarray, bias: np.ndarray) -> None:  # [A], [A]
        self.scale.value = jnp.asarray(scale, jnp.float32)
        self.bias.value = jnp.asarray(bias, jnp.float32)


CALIBRATION_FILE = "calibration.json"  # in the workdir, beside checkpoints/ and best/


def save_calibration(path: Path, step: int, actions: tuple[str, ...], scale: np.ndarray, bias: np.ndarray) -> None:
    """Write the fitted constants for the checkpoint `step` (atomically: a killed job leaves the old file)."""
    record = {"step": int(step), "actions": list(actions), "scale": [float(x) for x in scale],
              "bias": [float(x) for x in bias]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def load_calibration(model: nnx.Module, path: Path, step: int) -> bool:
    """Set `model.calibration` from `path` when it was fitted for `step` and these heads; True if set.
    Another step's constants are not applied: they were fitted to other parameters."""
    if not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
        scale, bias = np.asarray(record["scale"], np.float32), np.asarray(record["bias"], np.float32)
        fitted_for = (int(record["step"]), tuple(record["actions"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: unreadable calibration ({err}); delete it to serve uncalibrated") from err
    if fitted_for != (step, tuple(model.config.actions)):
        return False
    if scale.shape != bias.shape or scale.shape != (model.config.num_actions,) or not np.isfinite([scale, bias]).all():
        raise ValueError(f"{path}: calibration needs {model.config.num_actions} finite scales and biases")
    model.calibration.set(scale, bias)
    return True
