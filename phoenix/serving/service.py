"""Score one user's candidates with a trained ranker, from plain Python objects.

`RankerService.from_workdir(dir).score(user_id, history, candidates)` returns
P(action) for every candidate. Scoring goes through `PrefixScorer`: the
history runs once, candidates are scored against its cached keys and values,
and shapes are bucketed so requests of any size reuse a handful of compiled
programs; because of candidate isolation the padding never changes a real score.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from phoenix.config import ModelConfig
from phoenix.data.batch import RequestBatch, featurize
from phoenix.model.ranker import PhoenixRanker
from phoenix.serving.inputs import CandidatePost, Engagement, history_arrays
from phoenix.serving.prefix_scorer import PrefixScorer
from phoenix.workdir import load_model


class RankerService:
    """A loaded ranker that scores requests of raw ids."""

    def __init__(
        self,
        model: PhoenixRanker,
        config: ModelConfig,
        keep_recent_history: bool = False,
        scorer: PrefixScorer | None = None,
    ):
        self.model = model
        self.config = config
        self.keep_recent_history = keep_recent_history
        self.scorer = scorer or PrefixScorer(model)

    @classmethod
    def from_workdir(cls, workdir: str | Path, keep_recent_history: bool = False) -> RankerService:
        model, config, _ = load_model(workdir, compute_dtype="serving")
        return cls(model, config.model, keep_recent_history)

    def _history_arrays(self, history: Sequence[Engagement]) -> dict[str, np.ndarray]:
        return history_arrays(history, self.config, self.keep_recent_history)

    def score(
        self, user_id: int, history: Sequence[Engagement], candidates: Sequence[CandidatePost]
    ) -> np.ndarray:  # [C, A]
        """P(action) for each candidate, every candidate seeing the whole history."""
        if not candidates:
            raise ValueError("candidates: a request needs at least one candidate")
        for i, c in enumerate(candidates):
            if c.post_id <= 0:
                raise ValueError(f"candidates[{i}].post_id: must be a positive id, got {c.post_id}")
        hist = self._history_arrays(history)
        length = min(len(history), self.config.history_len)
        n = len(candidates)
        request = RequestBatch(
            user_id=np.array([user_id], np.int64),
            **hist,
            candidate_post_id=np.array([[c.post_id for c in candidates]], np.int64),
            candidate_author_id=np.array([[c.author_id for c in candidates]], np.int64),
            candidate_surface=np.array([[c.surface for c in candidates]], np.int64),
            candidate_cutoff=np.full((1, n), length, np.int64),
        )
        return self.scorer.probabilities(featurize(request, self.config))[0]  # [C, A]
