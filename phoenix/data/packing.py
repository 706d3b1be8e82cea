"""Packed training examples: one forward pass trains many impressions of a user.

A packed example is a user's engagement history (the last H engaged
impressions before the window's last impression, oldest first) and up to C
consecutive impressions of that user from one split, each a candidate with its
own history cutoff: the number of history items that happened strictly before
it. Because history attention is causal and a candidate sees only items before
its cutoff, every candidate is scored exactly as if it had been its own
request at the moment it was shown, so no label leaks into its own input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from phoenix.data.batch import RequestBatch
from phoenix.data.dataset import SPLITS, ImpressionLog


@dataclasses.dataclass
class PackedExamples:
    """N packed examples; padding has id 0 (and impression id 0)."""

    request: RequestBatch  # arrays with leading dim N
    labels: np.ndarray  # [N, C, A] int8
    impression_id: np.ndarray  # [N, C]

    def __len__(self) -> int:
        return int(self.impression_id.shape[0])

    def take(self, rows: np.ndarray) -> PackedExamples:
        return PackedExamples(self.request.take(rows), self.labels[rows], self.impression_id[rows])


def user_event_groups(log: ImpressionLog, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(user id, that user's rows among `rows`, in time order) for each user, by user id."""
    order = rows[np.lexsort((rows, log.user_id[rows]))]  # log rows are time-ordered already
    users = log.user_id[order]
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        yield int(users[start]), order[start:end]


def half_overlapping_windows(n: int, window: int) -> list[tuple[int, int]]:
    """(start, first new position) of windows of `window` items over a sequence of n items.

    Windows advance by window/2; each after the first exists only while it adds new items and
    trains only its second half, so every position is trained exactly once and (except a
    user's first items) with at least window/2 items of context before it.
    """
    step = max(1, window // 2)
    return [(0, 0)] + [(start, window - step) for start in range(step, n - window + step, step)]


def _windows(log: ImpressionLog, split: int, history_len: int, num_candidates: int):
    """Yield (user id, history event rows, candidate event rows, cutoffs) per window."""
    engaged = log.labels.any(axis=1)
    for user, events in user_event_groups(log, np.arange(log.user_id.size)):  # events in time order
        candidate_pos = np.flatnonzero(log.split[events] == split)
        engaged_pos = np.flatnonzero(engaged[events])
        for w in range(0, candidate_pos.size, num_candidates):
            window = candidate_pos[w : w + num_candidates]
            history_pos = engaged_pos[engaged_pos < window[-1]][-history_len:]
            cutoff = np.searchsorted(history_pos, window, side="left")
            yield user, events[history_pos], events[window], cutoff


def pack_examples(log: ImpressionLog, split: str, history_len: int, num_candidates: int) -> PackedExamples:
    """Pack every impression of `split` into examples of H history items and C candidates."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    windows = list(_windows(log, SPLITS.index(split), history_len, num_candidates))
    n, h, c, a = len(windows), history_len, num_candidates, len(log.actions)
    if n == 0:
        raise ValueError(f"split {split!r} has no impressions to pack")
    arrays = {
        "user_id": np.zeros(n, np.int64),
        "history_post_id": np.zeros((n, h), np.int64),
        "history_author_id": np.zeros((n, h), np.int64),
        "history_actions": np.zeros((n, h, a), np.int8),
        "history_surface": np.zeros((n, h), np.int32),
        "candidate_post_id": np.zeros((n, c), np.int64),
        "candidate_author_id": np.zeros((n, c), np.int64),
        "candidate_surface": np.zeros((n, c), np.int32),
        "candidate_cutoff": np.zeros((n, c), np.int32),
    }
    labels = np.zeros((n, c, a), np.int8)
    impression_id = np.zeros((n, c), np.int64)
    for i, (user, hist, cand, cutoff) in enumerate(windows):
        arrays["user_id"][i] = user
        k, m = hist.size, cand.size
        arrays["history_post_id"][i, :k] = log.post_id[hist]
        arrays["history_author_id"][i, :k] = log.author_id[hist]
        arrays["history_actions"][i, :k] = log.labels[hist]
        arrays["history_surface"][i, :k] = log.surface[hist]
        arrays["candidate_post_id"][i, :m] = log.post_id[cand]
        arrays["candidate_author_id"][i, :m] = log.author_id[cand]
        arrays["candidate_surface"][i, :m] = log.surface[cand]
        arrays["candidate_cutoff"][i, :m] = cutoff
        labels[i, :m] = log.labels[cand]
        impression_id[i, :m] = log.impression_id[cand]
    return PackedExamples(RequestBatch(**arrays), labels, impression_id)


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Steps of one pass over the examples as `batch_rows` draws them (full batches; at least one)."""
    return max(1, num_examples // batch_size)


def batch_rows(num_examples: int, batch_size: int, seed: int, step: int, stream: int | None = None) -> np.ndarray:
    """Example rows of training step `step`: a fixed function of (seed, step, stream).

    Each epoch is a fresh permutation seeded by (seed, epoch), so a resumed run
    sees exactly the batches the uninterrupted run would have seen. `stream`
    (a process index) gives each process its own permutations of its own examples.
    """
    epoch, offset = divmod(step, steps_per_epoch(num_examples, batch_size))
    entropy = [seed, epoch] if stream is None else [seed, epoch, stream]
    perm = np.random.default_rng(entropy).permutation(num_examples)
    rows = perm[offset * batch_size : (offset + 1) * batch_size]
    if rows.size < batch_size:  # fewer examples than one batch: wrap around
        rows = np.resize(perm, batch_size)
    return rows
