"""Post-selection filters: run on the top-K, where scores and the dropped set are known."""

from __future__ import annotations

from candidate_pipeline.stages import Filter, keep_first_per_key


class ConversationDedupFilter(Filter):
    """Keep the best-scored post of each conversation (candidates arrive best first)."""

    name = "conversation_dedup"

    def apply(self, query, candidates, dropped_post_ids):
        return keep_first_per_key(
            candidates,
            lambda c: c.conversation_id if c.conversation_id is not None else c.post_id,
            lambda conversation: f"a better-scored post of conversation {conversation} is shown",
        )


class DroppedRelativeFilter(Filter):
    """A reply, repost or quote whose parent, original or quoted post was dropped goes too."""

    name = "dropped_relatives"

    def reason(self, query, candidate, dropped_post_ids):
        for label, ref in (
            ("parent", candidate.reply_to_post_id),
            ("reposted", candidate.repost_of_post_id),
            ("quoted", candidate.quote_of_post_id),
        ):
            if ref is not None and ref in dropped_post_ids:
                return f"its {label} post {ref} was dropped"
        return None
