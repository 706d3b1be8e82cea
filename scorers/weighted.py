"""The weighted-score stage of the request pipeline (the rule itself: `phoenix.model.weighted_score`)."""

from __future__ import annotations

from candidate_pipeline.action_probs import probability_matrix
from candidate_pipeline.stages import Scorer
from candidate_pipeline.types import Candidate, Query
from phoenix.model.weighted_score import WeightedScorer


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
