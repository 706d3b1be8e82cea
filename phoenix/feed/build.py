"""Build the default For You pipeline from config, in X's August 2026 stage order."""

from __future__ import annotations

from collections.abc import Sequence

from candidate_pipeline.in_network import InNetworkPostStore, InNetworkSource
from candidate_pipeline.out_of_network import OutOfNetworkSource
from candidate_pipeline.pipeline import CandidatePipeline
from candidate_pipeline.selector import TopKSelector
from candidate_pipeline.session import RecordServedPosts, ServedPostsHydrator, SessionStore
from candidate_pipeline.stages import CandidateHydrator, Source
from candidate_pipeline.types import Candidate, Query
from filters.muted_keywords import MutedKeywordFilter
from filters.post_selection import ConversationDedupFilter, DroppedRelativeFilter
from filters.pre_scoring import (
    AgeFilter,
    BlockedMutedAuthorFilter,
    CoreDataFilter,
    DuplicateFilter,
    PreviouslySeenFilter,
    PreviouslyServedFilter,
    RepeatedRepostFilter,
    SelfPostFilter,
    UnfollowedReplyRepostFilter,
)
from phoenix.config import PipelineConfig, load_scoring_config
from phoenix.model.weighted_score import WeightedScorer
from phoenix.retrieval.retriever import Retriever
from phoenix.serving.service import RankerService
from scorers.author_diversity import AuthorDiversityScorer
from scorers.out_of_network import OutOfNetworkScorer
from scorers.phoenix_scorer import PhoenixScorer
from scorers.weighted import WeightedScoreStage


class NetworkHydrator(CandidateHydrator):
    """Marks each candidate in- or out-of-network from the viewer's follows."""

    name = "network"

    def hydrate(self, query: Query, candidates: Sequence[Candidate]) -> None:
        for c in candidates:
            if c.in_network is None:
                c.in_network = c.author_id in query.following


def build_pipeline(
    config: PipelineConfig,
    service: RankerService,
    in_network_store: InNetworkPostStore | None = None,
    extra_sources: Sequence[Source] = (),
    session_store: SessionStore | None = None,
    retriever: Retriever | None = None,
) -> CandidatePipeline:
    """The default pipeline; sessions (query option "session_id") remember what they were served.

    Sources: in-network (when a post store is given), out-of-network from the
    two-tower `retriever` (when given), then any `extra_sources`.
    """
    session_store = session_store or SessionStore()
    sources: list[Source] = list(extra_sources)
    if retriever is not None:
        max_results = retriever.config.retrieval.max_results
        sources.insert(0, OutOfNetworkSource(retriever, max_results, config.max_age_hours))
    if in_network_store is not None and config.in_network_max_results > 0:
        sources.insert(0, InNetworkSource(in_network_store, config.in_network_max_results))
    weighted = WeightedScorer(load_scoring_config(config.weights_path), service.config.actions)
    pipeline = CandidatePipeline(
        query_hydrators=[ServedPostsHydrator(session_store)],
        sources=sources,
        candidate_hydrators=[NetworkHydrator()],
        filters=[
            DuplicateFilter(),
            CoreDataFilter(),
            AgeFilter(config.max_age_hours),
            SelfPostFilter(),
            UnfollowedReplyRepostFilter(),
            RepeatedRepostFilter(),
            PreviouslySeenFilter(),
            PreviouslyServedFilter(),
            MutedKeywordFilter(),
            BlockedMutedAuthorFilter(),
        ],
        scorers=[
            PhoenixScorer(service),
            WeightedScoreStage(weighted),
            AuthorDiversityScorer(config.diversity_decay, config.diversity_floor),
            OutOfNetworkScorer(config.out_of_network_factor, config.discount_in_network_replies_reposts),
        ],
        selector=TopKSelector(config.top_k),
        post_selection_filters=[ConversationDedupFilter(), DroppedRelativeFilter()],
        side_effects=[RecordServedPosts(session_store)],
        result_size=config.result_size,
    )
    stages = [
        *pipeline.query_hydrators, *pipeline.sources, *pipeline.candidate_hydrators, *pipeline.filters,
        *pipeline.scorers, *pipeline.post_selection_filters, *pipeline.side_effects,
    ]
    names = {s.name for s in stages}
    unknown = sorted(set(config.disabled_stages) - names)
    if unknown:
        raise ValueError(f"pipeline.disabled_stages: no stage named {', '.join(unknown)} (stages: {sorted(names)})")
    for stage in stages:
        stage.enabled = stage.name not in config.disabled_stages
    return pipeline
