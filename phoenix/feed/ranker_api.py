"""`Ranker`: the one call that turns a viewer and candidates into an explained feed.

    from phoenix import Ranker
    ranker = Ranker.load("runs/demo")
    feed = ranker.rank(user, candidates)   # dataclasses or plain dicts

Every returned item carries its final score, per-action probabilities,
weighted score, diversity and network multipliers and source; every dropped
candidate names the stage that dropped it and why.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from candidate_pipeline.in_network import InNetworkPostStore
from candidate_pipeline.pipeline import CandidatePipeline
from candidate_pipeline.types import Candidate, Query, candidate_from_dict, query_from_dict
from phoenix.config import PipelineConfig
from phoenix.feed.build import build_pipeline
from phoenix.retrieval.retriever import Retriever, default_index_path
from phoenix.serving.service import RankerService
from phoenix.workdir import load_model


@dataclasses.dataclass
class RankedItem:
    post_id: int
    author_id: int
    source: str
    final_score: float
    weighted_score: float
    diversity_multiplier: float
    network_multiplier: float
    action_probs: dict[str, float]


@dataclasses.dataclass
class DroppedItem:
    post_id: int
    stage: str
    reason: str
    source: str


@dataclasses.dataclass
class RankedFeed:
    user_id: int
    items: list[RankedItem]
    dropped: list[DroppedItem]
    timings_ms: dict[str, float]
    errors: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Ranker:
    def __init__(self, service: RankerService, pipeline: CandidatePipeline, config: PipelineConfig):
        self.service = service
        self.pipeline = pipeline
        self.config = config

    @classmethod
    def load(
        cls,
        workdir: str | Path,
        pipeline_config: PipelineConfig | None = None,
        in_network_store: InNetworkPostStore | None = None,
        retrieval: bool | None = None,
    ) -> Ranker:
        """Load the latest checkpoint of `workdir` and build the pipeline from its config.

        `retrieval`: None adds the out-of-network source when the workdir has a
        trained two-tower model and index (`phoenix train-retrieval`), True
        requires them, False leaves the source out.
        """
        model, config, _ = load_model(workdir, compute_dtype="serving")
        service = RankerService(model, config.model, keep_recent_history=True)
        pipeline_config = pipeline_config or config.pipeline
        retriever = None
        if retrieval or (retrieval is None and default_index_path(workdir).is_file()):
            retriever = Retriever.load(workdir)
        pipeline = build_pipeline(pipeline_config, service, in_network_store, retriever=retriever)
        return cls(service, pipeline, pipeline_config)

    def _check_actions(self, query: Query) -> None:
        known = set(self.service.config.actions)
        for i, item in enumerate(query.history):
            unknown = [a for a in item.actions if a not in known]
            if unknown:
                raise ValueError(f"user.history[{i}].actions: unknown action {unknown[0]!r}")

    def rank(self, user: Query | dict, candidates: Sequence[Candidate | dict] = ()) -> RankedFeed:
        query = user if isinstance(user, Query) else query_from_dict(user)
        self._check_actions(query)
        posts = [c if isinstance(c, Candidate) else candidate_from_dict(c, f"candidates[{i}]")
                 for i, c in enumerate(candidates)]
        result = self.pipeline.run(query, [copy.copy(c) for c in posts])  # the caller's objects stay untouched
        items = [
            RankedItem(
                c.post_id, c.author_id, c.source, c.final_score, c.weighted_score,
                c.diversity_multiplier, c.network_multiplier, dict(c.action_probs or {}),
            )
            for c in result.selected
        ]
        dropped = [DroppedItem(d.candidate.post_id, d.stage, d.reason, d.candidate.source) for d in result.dropped]
        return RankedFeed(query.user_id, items, dropped, result.timings_ms, result.errors)
