"""Out-of-network discount: posts from accounts the viewer does not follow count less.

X's August 2026 home mixer applies the same factor to in-network replies and
reposts (switchable here).
"""

from __future__ import annotations

from candidate_pipeline.stages import Scorer
from candidate_pipeline.types import Candidate, Query


class OutOfNetworkScorer(Scorer):
    name = "out_of_network"

    def __init__(self, factor: float = 0.75, discount_in_network_replies_reposts: bool = True):
        if not 0 < factor <= 1:
            raise ValueError(f"out-of-network factor must be in (0, 1], got {factor}")
        self.factor = factor
        self.discount_in_network_replies_reposts = discount_in_network_replies_reposts

    def score(self, query: Query, candidates: list[Candidate]) -> None:
        for c in candidates:
            in_network = c.in_network if c.in_network is not None else c.author_id in query.following
            discounted = not in_network or (self.discount_in_network_replies_reposts and (c.is_reply or c.is_repost))
            c.network_multiplier = self.factor if discounted else 1.0
            c.refresh_final_score()
