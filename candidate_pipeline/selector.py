"""Selector: order candidates by final score and keep the top K."""

from __future__ import annotations

import math

from candidate_pipeline.stages import Stage
from candidate_pipeline.types import Candidate, Query


def sort_key(candidate: Candidate) -> tuple[int, float]:
    """Best first; a NaN, infinite or missing score sorts last (never on top by accident)."""
    score = candidate.final_score
    bad = score is None or not math.isfinite(score)
    return (1, 0.0) if bad else (0, -score)


class TopKSelector(Stage):
    name = "top_k"

    def __init__(self, k: int = 50):
        if k < 1:
            raise ValueError(f"top_k: must be at least 1, got {k}")
        self.k = k

    def select(self, query: Query, candidates: list[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
        ranked = sorted(candidates, key=sort_key)
        return ranked[: self.k], [(c, f"below the top {self.k}") for c in ranked[self.k :]]
