"""Muted keywords: case-insensitive whole words and phrases, in the post or the post it quotes."""

from __future__ import annotations

import re

from candidate_pipeline.stages import Filter


def phrase_pattern(phrase: str) -> re.Pattern:
    """Whole-word, case-insensitive match of a word or phrase (any whitespace between its words)."""
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class MutedKeywordFilter(Filter):
    name = "muted_keywords"

    def apply(self, query, candidates, dropped_post_ids):
        patterns = [(k, phrase_pattern(k)) for k in query.muted_keywords if k.strip()]
        if not patterns:
            return list(candidates), []
        kept, removed = [], []
        for c in candidates:
            why = None
            for keyword, pattern in patterns:
                if pattern.search(c.text):
                    why = f"muted keyword {keyword!r} in the post"
                elif pattern.search(c.quoted_text):
                    why = f"muted keyword {keyword!r} in the quoted post"
                if why:
                    break
            if why is None:
                kept.append(c)
            else:
                removed.append((c, why))
        return kept, removed
