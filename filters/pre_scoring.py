"""Pre-scoring filters: cheap rules that remove posts the viewer must not see.

Each filter is one small class; the order they run in comes from config
(`phoenix.feed.build`), following X's August 2026 order.
"""

from __future__ import annotations

from candidate_pipeline.stages import Filter, keep_first_per_key
from candidate_pipeline.types import HOUR_S, Candidate, Query


class DuplicateFilter(Filter):
    """The same post from several sources: keep the first one (source priority order)."""

    name = "duplicates"

    def apply(self, query, candidates, dropped_post_ids):
        return keep_first_per_key(candidates, lambda c: c.post_id, lambda _: "duplicate of a post from another source")


class CoreDataFilter(Filter):
    """A post without an author cannot be scored or checked against blocks."""

    name = "core_data"

    def reason(self, query: Query, candidate: Candidate, dropped_post_ids: set[int]) -> str | None:
        return "missing author_id" if candidate.author_id is None else None


class AgeFilter(Filter):
    """Too old, from the future, or of unknown age: dropped (unknown age is never assumed fresh)."""

    name = "age"

    def __init__(self, max_age_hours: float = 48.0):
        self.max_age_s = max_age_hours * HOUR_S

    def reason(self, query, candidate, dropped_post_ids):
        age = candidate.age_s(query.request_time_s)
        if age is None:
            return "age unknown (no created_s)"
        if age < 0:
            return "created after the request time"
        if age > self.max_age_s:
            return f"older than {self.max_age_s / HOUR_S:g} h"
        return None


class SelfPostFilter(Filter):
    name = "self_posts"

    def reason(self, query, candidate, dropped_post_ids):
        return "the viewer's own post" if candidate.author_id == query.user_id else None


class UnfollowedReplyRepostFilter(Filter):
    """Replies and reposts only make sense from accounts the viewer follows."""

    name = "unfollowed_replies_reposts"

    def reason(self, query, candidate, dropped_post_ids):
        if candidate.author_id in query.following:
            return None
        if candidate.is_reply:
            return "reply from an account the viewer does not follow"
        if candidate.is_repost:
            return "repost from an account the viewer does not follow"
        return None


class RepeatedRepostFilter(Filter):
    """One post reposted by several accounts (or also present as itself) is shown once."""

    name = "repeated_reposts"

    def apply(self, query, candidates, dropped_post_ids):
        originals = {c.post_id for c in candidates if not c.is_repost}
        shown: set[int] = set()
        kept, removed = [], []
        for c in candidates:
            target = c.repost_of_post_id
            if target is None:
                kept.append(c)
            elif target in originals:
                removed.append((c, f"repost of post {target}, which is already a candidate"))
            elif target in shown:
                removed.append((c, f"another repost of post {target}"))
            else:
                shown.add(target)
                kept.append(c)
        return kept, removed


class BlockedMutedAuthorFilter(Filter):
    name = "blocked_muted_authors"

    def reason(self, query, candidate, dropped_post_ids):
        if candidate.author_id in query.blocked:
            return "author blocked by the viewer"
        if candidate.author_id in query.muted:
            return "author muted by the viewer"
        return None


class PreviouslySeenFilter(Filter):
    """Posts (or the original of a repost) the viewer has already seen."""

    name = "previously_seen"

    def reason(self, query, candidate, dropped_post_ids):
        if candidate.post_id in query.seen_post_ids or candidate.repost_of_post_id in query.seen_post_ids:
            return "already seen"
        return None


class PreviouslyServedFilter(Filter):
    name = "previously_served"

    def reason(self, query, candidate, dropped_post_ids):
        return "already served in this session" if candidate.post_id in query.served_post_ids else None
