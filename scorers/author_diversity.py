"""Author diversity: the k-th post of one author in a feed is worth less.

Walking candidates from the highest weighted score down, a post with k
higher-ranked posts by the same author is multiplied by
(1 - floor)·decay^k + floor: 1, 0.625, 0.4375, ... for decay 0.5, floor 0.25.
"""

from __future__ import annotations

import math

from candidate_pipeline.stages import Scorer
from candidate_pipeline.types import Candidate, Query


def diversity_multiplier(k: int, decay: float, floor: float) -> float:
    return (1.0 - floor) * decay**k + floor


class AuthorDiversityScorer(Scorer):
    name = "author_diversity"

    def __init__(self, decay: float = 0.5, floor: float = 0.25):
        if not (0 < decay <= 1 and 0 <= floor <= 1):
            raise ValueError(f"author diversity: decay must be in (0, 1] and floor in [0, 1], got {decay}, {floor}")
        self.decay, self.floor = decay, floor

    def score(self, query: Query, candidates: list[Candidate]) -> None:
        def key(c: Candidate) -> float:
            s = c.weighted_score
            return -s if s is not None and math.isfinite(s) else math.inf

        per_author: dict[int | None, int] = {}
        for c in sorted(candidates, key=key):
            k = per_author.get(c.author_id, 0)
            per_author[c.author_id] = k + 1
            c.diversity_multiplier = diversity_multiplier(k, self.decay, self.floor)
            c.refresh_final_score()
