"""Popularity baseline: how often each post (else its author, else anyone) got each action.

Fitted on training impressions only. It knows every post's and author's
track record but nothing about the viewer, which is exactly what a
personalised ranker must beat.
"""

from __future__ import annotations

import numpy as np

from phoenix.data.dataset import ImpressionLog

PRIOR_STRENGTH = 20.0


def _smoothed_rates(keys: np.ndarray, labels: np.ndarray, prior: np.ndarray, size: int) -> np.ndarray:
    """Per-key action rates [size, A], shrunk toward `prior` ([A] or [size, A])."""
    counts = np.bincount(keys, minlength=size).astype(np.float64)[:, None]  # [size, 1]
    sums = np.stack([np.bincount(keys, labels[:, a], minlength=size) for a in range(labels.shape[1])], 1)
    return (sums + PRIOR_STRENGTH * prior) / (counts + PRIOR_STRENGTH)  # [size, A]


def popularity_probs(log: ImpressionLog, fit_rows: np.ndarray, score_rows: np.ndarray) -> np.ndarray:
    """P(action) [len(score_rows), A] from post -> author -> global rates on `fit_rows`."""
    labels = log.labels[fit_rows].astype(np.float64)  # [F, A]
    global_rate = labels.mean(axis=0)  # [A]
    # Ids may be 63-bit fingerprints: count over dense indices, not the ids themselves.
    authors, author_index = np.unique(log.author_id, return_inverse=True)  # [N] -> [0, num_authors)
    posts, post_index = np.unique(log.post_id, return_inverse=True)
    author_rate = _smoothed_rates(author_index[fit_rows], labels, global_rate, authors.size)
    # Each post's prior is its author's rate.
    post_author = np.zeros(posts.size, np.int64)
    post_author[post_index] = author_index
    post_rate = _smoothed_rates(post_index[fit_rows], labels, author_rate[post_author], posts.size)
    return post_rate[post_index[score_rows]].astype(np.float32)
