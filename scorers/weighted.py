"""WeightedScorer: combined = Σ_a w_a·P(a), negatives squashed below positives.

X's rule: with N = −Σ(negative weights) and T = Σ(positive weights) + N, a
negative combined score c becomes (c + N)/T·ε, which lies in [0, ε) and keeps
the order among negatives; a non-negative c becomes c + ε, which is ≥ ε. So
every post the model expects to be net-harmful ranks below every post it
expects to be net-positive, whatever the magnitudes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from candidate_pipeline.action_probs import probability_matrix
from candidate_pipeline.stages import Scorer
from candidate_pipeline.types import Candidate, Query
from phoenix.config import ScoringConfig


class WeightedScorer:
    def __init__(self, config: ScoringConfig, actions: Sequence[str]):
        unknown = [a for a in config.weights if a not in actions]
        if unknown:
            raise ValueError(f"scoring.weights: no model head named {', '.join(unknown)} (heads: {', '.join(actions)})")
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


class WeightedScoreStage(Scorer):
    """Pipeline stage: sets `weighted_score` (and a provisional `final_score`) from `action_probs`."""

    name = "weighted"

    def __init__(self, scorer: WeightedScorer):
        self.scorer = scorer

    def score(self, query: Query, candidates: list[Candidate]) -> None:
        if not candidates:
            return
        missing = [c.post_id for c in candidates if c.action_probs is None]
        if missing:
            raise ValueError(f"candidates {missing[:5]} have no action probabilities (run the phoenix scorer first)")
        probs = probability_matrix([c.action_probs for c in candidates], self.scorer.actions)  # [C, A]
        for c, s in zip(candidates, self.scorer(probs).tolist()):
            c.weighted_score = s
            c.refresh_final_score()
