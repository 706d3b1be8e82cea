"""PhoenixScorer: the ranker's per-action probabilities for every candidate.

Candidate isolation means each candidate's probabilities depend only on the
viewer, the history and the candidate itself, so the scorer may batch
candidates however it likes (the service pads them to fixed buckets).
"""

from __future__ import annotations

from candidate_pipeline.action_probs import ActionProbs
from candidate_pipeline.stages import Scorer
from candidate_pipeline.types import Candidate, Query
from phoenix.serving.inputs import CandidatePost
from phoenix.serving.service import RankerService


class PhoenixScorer(Scorer):
    name = "phoenix"

    def __init__(self, service: RankerService):
        self.service = service

    def score(self, query: Query, candidates: list[Candidate]) -> None:
        if not candidates:
            return
        posts = []
        for c in candidates:
            if c.author_id is None:
                raise ValueError(f"candidate {c.post_id}: author_id is missing (core-data filter disabled?)")
            posts.append(CandidatePost(c.post_id, c.author_id, c.surface))
        probs = self.service.score(query.user_id, query.history, posts)  # [C, A]
        for c, row in zip(candidates, ActionProbs.rows_of(tuple(self.service.config.actions), probs)):
            c.action_probs = row
