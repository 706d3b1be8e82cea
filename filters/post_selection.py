"""Post-selection filters: run on the top-K, where scores and the dropped set are known."""

from __future__ import annotations

from candidate_pipeline.stages import Filter


class ConversationDedupFilter(Filter):
    """Keep the best-scored post of each conversation (candidates arrive best first)."""

    name = "conversation_dedup"

    def apply(self, query, candidates, dropped_post_ids):
        seen: set[int] = set()
        kept, removed = [], []
        for c in candidates:
            conversation = c.conversation_id if c.conversation_id is not None else c.post_id
            if conversation in seen:
                removed.append((c, f"a better-scored post of conversation {conversation} is shown"))
            else:
                seen.add(conversation)
                kept.append(c)
        return kept, removed


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
