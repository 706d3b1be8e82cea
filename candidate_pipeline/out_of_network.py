"""Out-of-network source: the two-tower retriever's top posts from accounts the viewer does not follow.

Excluded at query time, inside the index search (so they never take a slot):
posts the viewer has seen or was served this session, posts by followed
accounts (the in-network source covers them), by blocked or muted accounts,
and posts outside the age window or from the future.
"""

from __future__ import annotations

from candidate_pipeline.stages import Source
from candidate_pipeline.types import HOUR_S, Candidate, Query
from phoenix.retrieval.retriever import RetrievedPost, Retriever

FOR_YOU_SURFACE = 0  # retrieved posts are shown on the For You surface


def retrieve_for_query(retriever: Retriever, query: Query, k: int, max_age_s: int) -> list[RetrievedPost]:
    """The viewer's top-k unseen, unserved, non-followed posts created in (now - max_age, now]."""
    return retriever.retrieve(
        query.user_id,
        query.history,
        k,
        exclude_post_ids=query.seen_post_ids | query.served_post_ids,
        exclude_author_ids=query.following | query.blocked | query.muted,
        created_after=query.request_time_s - max_age_s,
        created_at_or_before=query.request_time_s,
    )


class OutOfNetworkSource(Source):
    name = "out_of_network"

    def __init__(self, retriever: Retriever, max_results: int = 1000, max_age_hours: float = 48.0):
        if retriever.index is None:
            raise ValueError("retriever: the out-of-network source needs a corpus index")
        self.retriever = retriever
        self.max_results = max_results
        self.max_age_s = int(max_age_hours * HOUR_S)

    def fetch(self, query: Query) -> list[Candidate]:
        k = min(self.max_results, len(self.retriever.index))
        found = retrieve_for_query(self.retriever, query, k, self.max_age_s)
        return [
            Candidate(p.post_id, p.author_id, p.created_s, source=self.name, in_network=False,
                      surface=FOR_YOU_SURFACE)
            for p in found
        ]
