"""WeightedScorer: combined = Σ_a w_a·P(a), negatives squashed below positives.

X's rule: with N = −Σ(negative weights) and T = Σ(positive weights) + N, a
negative combined score c becomes (c + N)/T·ε, which lies in [0, ε) and keeps
the order among negatives; a non-negative c becomes c + ε, which is ≥ ε. So
every post the model expects to be net-harmful ranks below every post it
expects to be net-positive, whatever the magnitudes. The batch job and the
request pipeline (`scorers.weighted`) both score with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from phoenix.config import ScoringConfig


class WeightedScorer:
    def __init__(self, config: ScoringConfig, actions: Sequence[str]):
        # A weights file is a table over action names (X's covers all of X's heads): entries for
        # actions this model lacks are unused, but every head must be weighted on purpose.
        unweighted = [a for a in actions if a not in config.weights]
        if unweighted:
            raise ValueError(
                f"scoring.weights: no weight for head(s) {', '.join(unweighted)} in {config.source}; write a weights "
                "file with a weight for every head (0 to ignore one) and name it in pipeline.weights_file"
            )
        self.config = config
        self.actions = tuple(actions)
        self.weights = np.array([config.weights.get(a, 0.0) for a in actions], np.float64)  # [A]
        self.negative_total = float(-self.weights[self.weights < 0].sum())  # N
        self.total = float(self.weights[self.weights > 0].sum()) + self.negative_total  # T

    def combined(self, probs: np.ndarray) -> np.ndarray:  # [..., A] -> [...]
        probs = np.asarray(probs, np.float64)
        if probs.shape[-1] != self.weights.size:
            raise ValueError(f"probs: expected {self.weights.size} actions on the last axis, got {probs.shape}")
        return probs @ self.weights

    def __call__(self, probs: np.ndarray) -> np.ndarray:  # [..., A] -> [...]
        combined = self.combined(probs)
        eps = self.config.epsilon
        if self.total == 0:
            return np.maximum(combined, 0.0)
        return np.where(combined < 0, (combined + self.negative_total) / self.total * eps, combined + eps)
