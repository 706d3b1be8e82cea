"""Count baselines of the next-item benchmark: most-popular and item-to-item co-occurrence.

Both count training interactions only (never a validation or test target).
Co-occurrence scores a candidate by how often it directly followed the user's
last item in training sequences; its many zero-count ties are broken by
popularity (scaled below one count), the usual fallback, so the baseline is
not handicapped by the rule that ties count against the target.
"""

from __future__ import annotations

import numpy as np

from phoenix.data.protocol import NextItemSplit


def popularity(split: NextItemSplit) -> np.ndarray:  # [I+1] training interactions per item
    return np.bincount(split.sequences.item[split.train_mask()], minlength=split.num_items + 1).astype(np.float64)


def popular_scores(split: NextItemSplit, which: str) -> np.ndarray:  # [E, 1+n]
    return popularity(split)[split.candidates(which)]


def transition_counts(split: NextItemSplit) -> tuple[np.ndarray, np.ndarray]:
    """Sorted pair keys prev·(I+1)+next of consecutive training items, and their counts."""
    seqs, train = split.sequences, split.train_mask()
    same_user = np.repeat(np.arange(seqs.lengths.size), seqs.lengths)
    prev, nxt = np.arange(seqs.item.size - 1), np.arange(1, seqs.item.size)
    keep = train[prev] & train[nxt] & (same_user[prev] == same_user[nxt])
    keys = seqs.item[prev[keep]] * (split.num_items + 1) + seqs.item[nxt[keep]]
    return np.unique(keys, return_counts=True)


def cooccurrence_scores(split: NextItemSplit, which: str) -> np.ndarray:  # [E, 1+n]
    candidates = split.candidates(which)  # [E, 1+n]
    last_row = split.sequences.offsets[split.eval_users - 1] + split.history_len(which) - 1  # [E]
    has_last = split.history_len(which) > 0
    last = np.where(has_last, split.sequences.item[np.maximum(last_row, 0)], 0)  # [E]
    keys, counts = transition_counts(split)
    query = last[:, None] * (split.num_items + 1) + candidates  # [E, 1+n]
    at = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    found = (keys.size > 0) & (keys[at] == query) & has_last[:, None]
    cooc = np.where(found, counts[at], 0).astype(np.float64)
    pop = popularity(split)
    return cooc + pop[candidates] / (pop.max() + 1.0)
